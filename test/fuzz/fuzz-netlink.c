/*
 * Fuzz target: lib/netlink.c reading the kernel's answers (cc_nl_receive, the dump walker) and
 * the attribute parser the callbacks use on them. A reply is input like any other: nothing in
 * it may make the reader crash, loop or read outside the datagram.
 *
 * The input is a sequence of datagrams, each a 2-byte little-endian length and that many bytes,
 * read for request seq 1 of port 1 until the answer is complete or fails. The callback parses
 * each data message the way shim/network and guest-agent/network do (family header by type,
 * nested IFLA_LINKINFO, strings, u32s). The corpus (test/fuzz/corpus/netlink/) holds real link,
 * address, route and neighbour dumps and acks, renumbered to seq 1 / port 1, and crafted
 * refusals with extended acks.
 */
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <net/if.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cc/netlink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned sink; /* keeps the reads of read_cb */

static size_t family_header(uint16_t type)
{
        switch (type) {
        case RTM_NEWLINK:
        case RTM_DELLINK:
                return sizeof(struct ifinfomsg);
        case RTM_NEWADDR:
        case RTM_DELADDR:
                return sizeof(struct ifaddrmsg);
        case RTM_NEWROUTE:
        case RTM_DELROUTE:
                return sizeof(struct rtmsg);
        case RTM_NEWNEIGH:
        case RTM_DELNEIGH:
                return sizeof(struct ndmsg);
        default:
                return sizeof(struct rtgenmsg);
        }
}

static int read_cb(const struct nlmsghdr *nlh, void *data)
{
        unsigned *sum = data;
        const struct rtattr *tb[IFLA_MAX + 1];
        int r = cc_nl_parse(nlh, family_header(nlh->nlmsg_type), tb, IFLA_MAX);
        if (r < 0)
                return r;
        char s[IFNAMSIZ];
        uint32_t v = 0;
        for (unsigned i = 0; i <= IFLA_MAX; i++) {
                if (!tb[i])
                        continue;
                cc_nl_get_str(tb[i], s, sizeof(s));
                (void)cc_nl_get_u32(tb[i], &v);
                const unsigned char *p = cc_nl_data(tb[i]);
                for (size_t k = 0; k < cc_nl_len(tb[i]); k++)
                        *sum += p[k]; /* every byte the parser hands out must be readable */
        }
        if (nlh->nlmsg_type == RTM_NEWLINK && tb[IFLA_LINKINFO]) {
                const struct rtattr *li[IFLA_INFO_MAX + 1];
                if (cc_nl_parse_nested(tb[IFLA_LINKINFO], li, IFLA_INFO_MAX) == 0 &&
                    li[IFLA_INFO_KIND])
                        cc_nl_get_str(li[IFLA_INFO_KIND], s, sizeof(s));
        }
        *sum += v + (unsigned)strlen(s);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static uint32_t buf[65536 / 4]; /* aligned, as a receive buffer is */
        struct cc_nl nl = CC_NL_INIT;
        nl.portid = 1;
        nl.seq = 1;
        unsigned sum = 0;
        while (size >= 2) {
                size_t len = (size_t)data[0] | (size_t)data[1] << 8;
                data += 2;
                size -= 2;
                if (len > size)
                        len = size;
                memcpy(buf, data, len);
                data += len;
                size -= len;
                if (cc_nl_receive(&nl, buf, len, read_cb, &sum) != 0)
                        break;
        }
        (void)cc_nl_strerror(&nl, -22);
        sink = sum;
        return 0;
}
