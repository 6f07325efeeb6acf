/*
 * Unit tests: lib/netlink.c, the raw rtnetlink client. The builder's wire layout, nesting and
 * overflow; the attribute parser on crafted and truncated buffers; the answer reader on crafted
 * datagrams (acks, extended acks, dumps over several datagrams, stale and foreign messages,
 * interrupted dumps, truncation); and one real dump of this namespace's links.
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "cc/netlink.h"

/* --- building --- */

static void test_builder_layout(void **state)
{
        (void)state;
        uint32_t buf[64];
        memset(buf, 0xaa, sizeof(buf)); /* padding must come out zeroed */
        struct cc_nl_msg m;
        struct ifinfomsg *ifi =
                cc_nl_msg_init(&m, buf, sizeof(buf), RTM_NEWLINK, NLM_F_CREATE, sizeof(*ifi));
        assert_non_null(ifi);
        assert_ptr_equal(m.nlh, buf);
        assert_int_equal(m.nlh->nlmsg_len, NLMSG_LENGTH(sizeof(*ifi)));
        assert_int_equal(m.nlh->nlmsg_type, RTM_NEWLINK);
        assert_int_equal(m.nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_CREATE);
        assert_int_equal(ifi->ifi_index, 0);
        ifi->ifi_index = 7;

        cc_nl_put_u32(&m, IFLA_MTU, 1450);
        cc_nl_put_strz(&m, IFLA_IFNAME, "eth0"); /* 5 bytes + 3 of padding */
        cc_nl_put_u8(&m, IFLA_OPERSTATE, 6);
        cc_nl_put_u16(&m, IFLA_GROUP, 0x1234);
        cc_nl_put(&m, IFLA_ADDRESS, "\x0a\x58\x0a\x58\x00\x05", 6);
        assert_false(m.overflow);
        /* 16 + 16 family header + 8 (u32) + 12 (strz) + 8 (u8) + 8 (u16) + 12 (6 bytes). */
        assert_int_equal(m.nlh->nlmsg_len, 16 + 16 + 8 + 12 + 8 + 8 + 12);

        const unsigned char *p = (const unsigned char *)buf + 32;
        const struct rtattr *a = (const struct rtattr *)p;
        assert_int_equal(a->rta_type, IFLA_MTU);
        assert_int_equal(a->rta_len, 8);
        uint32_t mtu;
        memcpy(&mtu, p + 4, 4);
        assert_int_equal(mtu, 1450);
        a = (const struct rtattr *)(p + 8);
        assert_int_equal(a->rta_type, IFLA_IFNAME);
        assert_int_equal(a->rta_len, 9);
        assert_memory_equal(p + 12, "eth0\0\0\0\0", 8); /* NUL then zero padding */
        a = (const struct rtattr *)(p + 20);
        assert_int_equal(a->rta_len, 5);
        assert_memory_equal(p + 24, "\x06\0\0\0", 4);
        a = (const struct rtattr *)(p + 28);
        assert_int_equal(a->rta_len, 6);
        assert_memory_equal(p + 32, "\x34\x12\0\0", 4);
        a = (const struct rtattr *)(p + 36);
        assert_int_equal(a->rta_len, 10);
        assert_memory_equal(p + 40, "\x0a\x58\x0a\x58\x00\x05\0\0", 8);

        /* And the parser reads back what the builder wrote. */
        const struct rtattr *tb[IFLA_MAX + 1];
        assert_int_equal(cc_nl_parse(m.nlh, sizeof(*ifi), tb, IFLA_MAX), 0);
        assert_non_null(tb[IFLA_MTU]);
        assert_int_equal(cc_nl_get_u32(tb[IFLA_MTU], &mtu), 0);
        assert_int_equal(mtu, 1450);
        char name[IFNAMSIZ];
        cc_nl_get_str(tb[IFLA_IFNAME], name, sizeof(name));
        assert_string_equal(name, "eth0");
        assert_int_equal(cc_nl_len(tb[IFLA_ADDRESS]), 6);
        assert_null(tb[IFLA_LINKINFO]);
        /* A u8 is not a u32. */
        assert_int_equal(cc_nl_get_u32(tb[IFLA_OPERSTATE], &mtu), -EBADMSG);
        assert_int_equal(mtu, 1450);
}

static void test_builder_nesting(void **state)
{
        (void)state;
        uint32_t buf[64];
        struct cc_nl_msg m;
        struct ifinfomsg *ifi = cc_nl_msg_init(&m, buf, sizeof(buf), RTM_NEWLINK, 0, sizeof(*ifi));
        assert_non_null(ifi);
        struct rtattr *spec = cc_nl_nest_start(&m, IFLA_AF_SPEC);
        struct rtattr *in6 = cc_nl_nest_start(&m, AF_INET6);
        cc_nl_put_u8(&m, IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE);
        cc_nl_nest_end(&m, in6);
        cc_nl_put_u32(&m, 99, 1); /* a sibling inside spec, after in6 */
        cc_nl_nest_end(&m, spec);
        cc_nl_put_u32(&m, IFLA_MTU, 1500); /* outside both */
        assert_false(m.overflow);
        assert_int_equal(in6->rta_len, 4 + 8);
        assert_int_equal(spec->rta_len, 4 + 12 + 8);
        assert_int_equal(m.nlh->nlmsg_len, 32 + 24 + 8);

        const struct rtattr *tb[IFLA_MAX + 1], *nb[AF_INET6 + 1], *ib[IFLA_INET6_MAX + 1];
        assert_int_equal(cc_nl_parse(m.nlh, sizeof(*ifi), tb, IFLA_MAX), 0);
        assert_ptr_equal(tb[IFLA_AF_SPEC], spec);
        assert_non_null(tb[IFLA_MTU]);
        assert_int_equal(cc_nl_parse_nested(tb[IFLA_AF_SPEC], nb, AF_INET6), 0);
        assert_ptr_equal(nb[AF_INET6], in6);
        assert_int_equal(cc_nl_parse_nested(nb[AF_INET6], ib, IFLA_INET6_MAX), 0);
        assert_non_null(ib[IFLA_INET6_ADDR_GEN_MODE]);
        assert_int_equal(*(const uint8_t *)cc_nl_data(ib[IFLA_INET6_ADDR_GEN_MODE]),
                         IN6_ADDR_GEN_MODE_NONE);
}

static void test_builder_overflow(void **state)
{
        (void)state;
        struct cc_nl nl = CC_NL_INIT; /* never opened: an overflowed request is not sent */
        uint32_t buf[12];             /* 48 bytes */
        struct cc_nl_msg m;
        struct rtmsg *rtm = cc_nl_msg_init(&m, buf, sizeof(buf), RTM_NEWROUTE, 0, sizeof(*rtm));
        assert_non_null(rtm);
        cc_nl_put_u32(&m, RTA_OIF, 2); /* 28 + 8 = 36 */
        assert_false(m.overflow);
        cc_nl_put(&m, RTA_DST, "0123456789abcdef", 16); /* 36 + 20 > 48 */
        assert_true(m.overflow);
        assert_int_equal(m.nlh->nlmsg_len, 36); /* nothing half-written */
        cc_nl_put_u32(&m, RTA_TABLE, 254);      /* would fit, but the request is lost already */
        assert_int_equal(m.nlh->nlmsg_len, 36);
        assert_int_equal(cc_nl_talk(&nl, &m, NULL, NULL), -EMSGSIZE);

        /* A nest that does not fit gives NULL, and ending it is harmless. */
        cc_nl_msg_init(&m, buf, sizeof(buf), RTM_NEWROUTE, 0, sizeof(*rtm));
        cc_nl_put(&m, RTA_DST, "0123456789ab", 12); /* 28 + 16 = 44 */
        struct rtattr *nest = cc_nl_nest_start(&m, RTA_MULTIPATH);
        assert_non_null(nest); /* 44 + 4 = 48: fits exactly */
        cc_nl_put_u32(&m, RTA_OIF, 1);
        assert_true(m.overflow);
        cc_nl_nest_end(&m, nest);
        assert_int_equal(cc_nl_talk(&nl, &m, NULL, NULL), -EMSGSIZE);

        /* An attribute longer than rta_len can say. */
        static uint32_t big[25000];
        static char payload[70000];
        cc_nl_msg_init(&m, big, sizeof(big), RTM_NEWROUTE, 0, sizeof(*rtm));
        cc_nl_put(&m, RTA_DST, payload, sizeof(payload));
        assert_true(m.overflow);
        /* A nest whose content outgrows 65535 bytes. */
        cc_nl_msg_init(&m, big, sizeof(big), RTM_NEWROUTE, 0, sizeof(*rtm));
        nest = cc_nl_nest_start(&m, RTA_MULTIPATH);
        cc_nl_put(&m, RTA_DST, payload, 40000);
        cc_nl_put(&m, RTA_DST, payload, 40000);
        assert_false(m.overflow);
        cc_nl_nest_end(&m, nest);
        assert_true(m.overflow);

        /* A buffer too small for the headers, or misaligned: no request at all. */
        assert_null(cc_nl_msg_init(&m, buf, 20, RTM_NEWROUTE, 0, sizeof(*rtm)));
        assert_true(m.overflow);
        cc_nl_put_u32(&m, RTA_OIF, 1); /* safe on a failed init */
        assert_int_equal(cc_nl_talk(&nl, &m, NULL, NULL), -EMSGSIZE);
        assert_null(cc_nl_msg_init(&m, (char *)buf + 1, 40, RTM_NEWROUTE, 0, sizeof(*rtm)));
        assert_true(m.overflow);
}

/* --- parsing --- */

/* A message of `type` with a 4-byte family header and raw attribute bytes after it. */
static struct nlmsghdr *craft(uint32_t *buf, const void *attrs, size_t len)
{
        struct nlmsghdr *h = (struct nlmsghdr *)buf;
        memset(buf, 0, NLMSG_SPACE(4));
        h->nlmsg_len = (uint32_t)(NLMSG_SPACE(4) + len);
        h->nlmsg_type = RTM_NEWADDR;
        memcpy((char *)buf + NLMSG_SPACE(4), attrs, len);
        return h;
}

static void test_parse_crafted(void **state)
{
        (void)state;
        uint32_t buf[32];
        const struct rtattr *tb[4];

        /* Type 2, then type 9 (above max: ignored), then type 2 again (last wins), then a
         * nested-flagged type 3 whose flag is masked off. */
        const unsigned char good[] = {8, 0, 2, 0, 1, 0, 0, 0, 5, 0, 9, 0, 'x', 0,
                                      0, 0, 8, 0, 2, 0, 2, 0, 0, 0, 4, 0, 3,   0x80};
        struct nlmsghdr *h = craft(buf, good, sizeof(good));
        assert_int_equal(cc_nl_parse(h, 4, tb, 3), 0);
        assert_null(tb[0]);
        assert_null(tb[1]);
        uint32_t v = 0;
        assert_int_equal(cc_nl_get_u32(tb[2], &v), 0);
        assert_int_equal(v, 2);
        assert_non_null(tb[3]);
        assert_int_equal(cc_nl_len(tb[3]), 0);

        /* An attribute claiming more than the message holds. */
        const unsigned char longer[] = {8, 0, 1, 0, 1, 0, 0, 0, 12, 0, 2, 0, 1, 0, 0, 0};
        h = craft(buf, longer, sizeof(longer));
        assert_int_equal(cc_nl_parse(h, 4, tb, 3), -EBADMSG);
        for (int i = 0; i <= 3; i++)
                assert_null(tb[i]); /* nothing half-parsed */
        /* An attribute shorter than its own header (would loop forever if trusted). */
        const unsigned char shorter[] = {8, 0, 1, 0, 1, 0, 0, 0, 2, 0, 2, 0};
        h = craft(buf, shorter, sizeof(shorter));
        assert_int_equal(cc_nl_parse(h, 4, tb, 3), -EBADMSG);
        const unsigned char zero[] = {0, 0, 1, 0};
        h = craft(buf, zero, sizeof(zero));
        assert_int_equal(cc_nl_parse(h, 4, tb, 3), -EBADMSG);
        /* Trailing bytes too few for an attribute header. */
        const unsigned char trail[] = {8, 0, 1, 0, 1, 0, 0, 0, 4, 0};
        h = craft(buf, trail, sizeof(trail));
        assert_int_equal(cc_nl_parse(h, 4, tb, 3), -EBADMSG);
        /* A message shorter than its family header. */
        h = craft(buf, "", 0);
        h->nlmsg_len = NLMSG_LENGTH(2);
        assert_int_equal(cc_nl_parse(h, 4, tb, 3), -EBADMSG);
        /* No attributes at all is fine. */
        h->nlmsg_len = NLMSG_LENGTH(4);
        assert_int_equal(cc_nl_parse(h, 4, tb, 3), 0);

        /* A nest whose inner attribute overruns the nest (but not the message). */
        const unsigned char nest[] = {12, 0, 1, 0, 12, 0, 1, 0, 0, 0, 0, 0, 8, 0, 2, 0, 0, 0, 0, 0};
        h = craft(buf, nest, sizeof(nest));
        assert_int_equal(cc_nl_parse(h, 4, tb, 3), 0);
        const struct rtattr *nb[4];
        assert_int_equal(cc_nl_parse_nested(tb[1], nb, 3), -EBADMSG);

        /* Strings: cut at the first NUL, or at the payload's end when there is none, and to
         * the caller's size. */
        const unsigned char strs[] = {9, 0, 1, 0, 'a', 'b', 0,   'c', 'd', 0,
                                      0, 0, 7, 0, 2,   0,   'x', 'y', 'z', 0};
        h = craft(buf, strs, sizeof(strs));
        assert_int_equal(cc_nl_parse(h, 4, tb, 3), 0);
        char s[8];
        cc_nl_get_str(tb[1], s, sizeof(s));
        assert_string_equal(s, "ab");
        cc_nl_get_str(tb[2], s, sizeof(s));
        assert_string_equal(s, "xyz");
        cc_nl_get_str(tb[2], s, 3);
        assert_string_equal(s, "xy");
}

/* --- reading answers --- */

/* One datagram being crafted. */
struct dgram {
        uint32_t buf[512];
        size_t len;
};

static struct nlmsghdr *add(struct dgram *d, uint16_t type, uint16_t flags, uint32_t seq,
                            uint32_t pid, const void *payload, size_t len)
{
        struct nlmsghdr *h = (struct nlmsghdr *)((char *)d->buf + d->len);
        assert_true(d->len + NLMSG_SPACE(len) <= sizeof(d->buf));
        memset(h, 0, NLMSG_SPACE(len));
        h->nlmsg_len = (uint32_t)NLMSG_LENGTH(len);
        h->nlmsg_type = type;
        h->nlmsg_flags = flags;
        h->nlmsg_seq = seq;
        h->nlmsg_pid = pid;
        if (len)
                memcpy(NLMSG_DATA(h), payload, len);
        d->len += NLMSG_SPACE(len);
        return h;
}

static void add_link(struct dgram *d, uint16_t flags, uint32_t seq, uint32_t pid, int index)
{
        struct ifinfomsg ifi = {.ifi_index = index};
        add(d, RTM_NEWLINK, flags, seq, pid, &ifi, sizeof(ifi));
}

static void add_error(struct dgram *d, uint16_t flags, uint32_t seq, uint32_t pid, int error)
{
        struct nlmsgerr e = {.error = error};
        add(d, NLMSG_ERROR, flags, seq, pid, &e, sizeof(e));
}

static void add_done(struct dgram *d, uint32_t seq, uint32_t pid, int error)
{
        add(d, NLMSG_DONE, NLM_F_MULTI, seq, pid, &error, sizeof(error));
}

struct seen {
        int n;
        int indexes[8];
        int fail_at; /* 1-based message that the callback refuses, or 0 */
};

static int link_cb(const struct nlmsghdr *h, void *data)
{
        struct seen *s = data;
        const struct rtattr *tb[IFLA_MAX + 1];
        int r = cc_nl_parse(h, sizeof(struct ifinfomsg), tb, IFLA_MAX);
        if (r < 0)
                return r;
        const struct ifinfomsg *ifi = NLMSG_DATA(h);
        if (s->n < 8)
                s->indexes[s->n] = ifi->ifi_index;
        s->n++;
        return s->n == s->fail_at ? -ENOMEM : 0;
}

/* A socket that was never opened, as if request `seq` had just been sent from port 4242. */
static struct cc_nl fake_nl(uint32_t seq)
{
        struct cc_nl nl = CC_NL_INIT;
        nl.portid = 4242;
        nl.seq = seq;
        return nl;
}

static void test_receive_dump(void **state)
{
        (void)state;
        struct cc_nl nl = fake_nl(7);
        struct seen s = {0};
        /* Datagram 1: two links of ours, one of an earlier request, one of another port. */
        struct dgram d1 = {0};
        add_link(&d1, NLM_F_MULTI, 7, 4242, 1);
        add_link(&d1, NLM_F_MULTI, 6, 4242, 99);
        add_link(&d1, NLM_F_MULTI, 7, 1111, 98);
        add(&d1, NLMSG_NOOP, 0, 7, 4242, NULL, 0);
        add_link(&d1, NLM_F_MULTI, 7, 4242, 2);
        assert_int_equal(cc_nl_receive(&nl, d1.buf, d1.len, link_cb, &s), 0); /* go on */
        /* Datagram 2: one more, then the end (a stale DONE first must not end it). */
        struct dgram d2 = {0};
        add_done(&d2, 6, 4242, 0);
        add_link(&d2, NLM_F_MULTI, 7, 4242, 3);
        add_done(&d2, 7, 4242, 0);
        assert_int_equal(cc_nl_receive(&nl, d2.buf, d2.len, link_cb, &s), 1);
        assert_int_equal(s.n, 3);
        assert_int_equal(s.indexes[0], 1);
        assert_int_equal(s.indexes[1], 2);
        assert_int_equal(s.indexes[2], 3);

        /* A callback error stops the callbacks, is kept to the end and returned. */
        nl = fake_nl(8);
        s = (struct seen){.fail_at = 1};
        struct dgram d3 = {0};
        add_link(&d3, NLM_F_MULTI, 8, 4242, 1);
        add_link(&d3, NLM_F_MULTI, 8, 4242, 2);
        assert_int_equal(cc_nl_receive(&nl, d3.buf, d3.len, link_cb, &s), 0);
        struct dgram d4 = {0};
        add_done(&d4, 8, 4242, 0);
        assert_int_equal(cc_nl_receive(&nl, d4.buf, d4.len, link_cb, &s), -ENOMEM);
        assert_int_equal(s.n, 1);

        /* A data message too short for its family header reaches the callback, whose parse
         * refuses it. */
        nl = fake_nl(9);
        s = (struct seen){0};
        struct dgram d5 = {0};
        add(&d5, RTM_NEWLINK, NLM_F_MULTI, 9, 4242, "ab", 2);
        add_done(&d5, 9, 4242, 0);
        assert_int_equal(cc_nl_receive(&nl, d5.buf, d5.len, link_cb, &s), -EBADMSG);
        assert_int_equal(s.n, 0);

        /* An interrupted dump (the tables changed meanwhile): -EINTR at its end. */
        nl = fake_nl(10);
        s = (struct seen){0};
        struct dgram d6 = {0};
        add_link(&d6, NLM_F_MULTI | NLM_F_DUMP_INTR, 10, 4242, 1);
        add_done(&d6, 10, 4242, 0);
        assert_int_equal(cc_nl_receive(&nl, d6.buf, d6.len, link_cb, &s), -EINTR);
        assert_int_equal(s.n, 1);

        /* A dump that fails: the error in NLMSG_DONE. */
        nl = fake_nl(11);
        struct dgram d7 = {0};
        add_done(&d7, 11, 4242, -EOPNOTSUPP);
        assert_int_equal(cc_nl_receive(&nl, d7.buf, d7.len, NULL, NULL), -EOPNOTSUPP);
        /* An old kernel's NLMSG_DONE without the error code. */
        nl = fake_nl(12);
        struct dgram d8 = {0};
        add(&d8, NLMSG_DONE, NLM_F_MULTI, 12, 4242, NULL, 0);
        assert_int_equal(cc_nl_receive(&nl, d8.buf, d8.len, NULL, NULL), 1);
}

static void test_receive_ack(void **state)
{
        (void)state;
        /* A plain acknowledgement. */
        struct cc_nl nl = fake_nl(3);
        struct dgram d = {0};
        add_error(&d, NLM_F_CAPPED, 3, 4242, 0);
        assert_int_equal(cc_nl_receive(&nl, d.buf, d.len, NULL, NULL), 1);
        assert_string_equal(cc_nl_strerror(&nl, -ENODEV), strerror(ENODEV));

        /* A refusal with an extended ack after the echoed request (not capped). */
        nl = fake_nl(4);
        d = (struct dgram){0};
        struct {
                struct nlmsgerr e;
                struct ifinfomsg ifi; /* the request's payload, echoed */
                struct rtattr a1;
                char msg[20];
                struct rtattr a2;
                uint32_t off;
        } ack = {
                .e = {.error = -EINVAL,
                      .msg = {.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg)),
                              .nlmsg_type = RTM_NEWLINK}},
                .a1 = {.rta_len = RTA_LENGTH(20), .rta_type = NLMSGERR_ATTR_MSG},
                .msg = "Invalid MTU value",
                .a2 = {.rta_len = RTA_LENGTH(4), .rta_type = NLMSGERR_ATTR_OFFS},
                .off = 32,
        };
        add(&d, NLMSG_ERROR, NLM_F_ACK_TLVS, 4, 4242, &ack, sizeof(ack));
        assert_int_equal(cc_nl_receive(&nl, d.buf, d.len, NULL, NULL), -EINVAL);
        assert_string_equal(cc_nl_strerror(&nl, -EINVAL), "Invalid MTU value");

        /* The same, capped (no echoed payload). */
        nl = fake_nl(5);
        d = (struct dgram){0};
        struct {
                struct nlmsgerr e;
                struct rtattr a;
                char msg[8];
        } capped = {
                .e = {.error = -EEXIST, .msg = {.nlmsg_len = 9999}},
                .a = {.rta_len = RTA_LENGTH(8), .rta_type = NLMSGERR_ATTR_MSG},
                .msg = {'t', 'a', 'k', 'e', 'n', '!', '!', '!'}, /* no NUL */
        };
        add(&d, NLMSG_ERROR, NLM_F_ACK_TLVS | NLM_F_CAPPED, 5, 4242, &capped, sizeof(capped));
        assert_int_equal(cc_nl_receive(&nl, d.buf, d.len, NULL, NULL), -EEXIST);
        assert_string_equal(cc_nl_strerror(&nl, -EEXIST), "taken!!!");

        /* An echoed length pointing past the message: no text, still the error. */
        nl = fake_nl(6);
        d = (struct dgram){0};
        capped.e.error = -EPERM;
        add(&d, NLMSG_ERROR, NLM_F_ACK_TLVS, 6, 4242, &capped, sizeof(capped));
        assert_int_equal(cc_nl_receive(&nl, d.buf, d.len, NULL, NULL), -EPERM);
        assert_string_equal(cc_nl_strerror(&nl, -EPERM), strerror(EPERM));

        /* An error message too short for struct nlmsgerr, or with an impossible code. */
        nl = fake_nl(7);
        d = (struct dgram){0};
        int e = -EINVAL;
        add(&d, NLMSG_ERROR, 0, 7, 4242, &e, sizeof(e));
        assert_int_equal(cc_nl_receive(&nl, d.buf, d.len, NULL, NULL), -EBADMSG);
        d = (struct dgram){0};
        add_error(&d, 0, 7, 4242, 5);
        assert_int_equal(cc_nl_receive(&nl, d.buf, d.len, NULL, NULL), -EBADMSG);
        d = (struct dgram){0};
        add_error(&d, 0, 7, 4242, -100000);
        assert_int_equal(cc_nl_receive(&nl, d.buf, d.len, NULL, NULL), -EBADMSG);
        d = (struct dgram){0};
        add_done(&d, 7, 4242, 1);
        assert_int_equal(cc_nl_receive(&nl, d.buf, d.len, NULL, NULL), -EBADMSG);
}

static void test_receive_truncated(void **state)
{
        (void)state;
        struct cc_nl nl = fake_nl(2);
        struct dgram d = {0};
        add_link(&d, NLM_F_MULTI, 2, 4242, 1);
        add_done(&d, 2, 4242, 0);
        struct seen s = {0};
        /* Cut inside the second message's header, and inside its payload. */
        size_t first = NLMSG_SPACE(sizeof(struct ifinfomsg));
        assert_int_equal(cc_nl_receive(&nl, d.buf, first + 8, link_cb, &s), -EBADMSG);
        assert_int_equal(cc_nl_receive(&nl, d.buf, d.len - 2, link_cb, &s), -EBADMSG);
        /* A length shorter than the header itself, and one past the datagram. */
        struct nlmsghdr *h = (struct nlmsghdr *)d.buf;
        h->nlmsg_len = 8;
        assert_int_equal(cc_nl_receive(&nl, d.buf, d.len, link_cb, &s), -EBADMSG);
        h->nlmsg_len = (uint32_t)d.len + 4;
        assert_int_equal(cc_nl_receive(&nl, d.buf, d.len, link_cb, &s), -EBADMSG);
        h->nlmsg_len = UINT32_MAX;
        assert_int_equal(cc_nl_receive(&nl, d.buf, d.len, link_cb, &s), -EBADMSG);
        /* An empty datagram: nothing yet. */
        assert_int_equal(cc_nl_receive(&nl, d.buf, 0, link_cb, &s), 0);
}

/* --- against the kernel --- */

struct names {
        bool lo;
        int n;
};

static int name_cb(const struct nlmsghdr *h, void *data)
{
        struct names *names = data;
        const struct rtattr *tb[IFLA_MAX + 1];
        int r = cc_nl_parse(h, sizeof(struct ifinfomsg), tb, IFLA_MAX);
        if (r < 0)
                return r;
        if (h->nlmsg_type != RTM_NEWLINK || !tb[IFLA_IFNAME])
                return -EBADMSG;
        char name[IFNAMSIZ];
        cc_nl_get_str(tb[IFLA_IFNAME], name, sizeof(name));
        names->lo |= strcmp(name, "lo") == 0;
        names->n++;
        return 0;
}

static void test_kernel(void **state)
{
        (void)state;
        _cleanup_cc_nl_ struct cc_nl nl = CC_NL_INIT;
        int r = cc_nl_open(&nl);
        if (r == -EAFNOSUPPORT || r == -EPROTONOSUPPORT)
                skip();
        assert_int_equal(r, 0);
        assert_true(nl.fd >= 0);

        uint32_t buf[256];
        struct cc_nl_msg m;
        struct ifinfomsg *ifi =
                cc_nl_msg_init(&m, buf, sizeof(buf), RTM_GETLINK, NLM_F_DUMP, sizeof(*ifi));
        ifi->ifi_family = AF_UNSPEC;
        struct names names = {0};
        assert_int_equal(cc_nl_talk(&nl, &m, name_cb, &names), 0);
        assert_true(names.lo);
        /* The socket is still in step for a second request. */
        int first = names.n;
        names = (struct names){0};
        cc_nl_msg_init(&m, buf, sizeof(buf), RTM_GETLINK, NLM_F_DUMP, sizeof(*ifi));
        assert_int_equal(cc_nl_talk(&nl, &m, name_cb, &names), 0);
        assert_int_equal(names.n, first);
        /* cc_nl_dump: the same table through the one-call form. */
        names = (struct names){0};
        assert_int_equal(cc_nl_dump(&nl, RTM_GETLINK, AF_UNSPEC, sizeof(*ifi), name_cb, &names), 0);
        assert_int_equal(names.n, first);
        assert_true(names.lo);

        /* A request the kernel refuses: a link that does not exist. */
        ifi = cc_nl_msg_init(&m, buf, sizeof(buf), RTM_NEWLINK, 0, sizeof(*ifi));
        ifi->ifi_index = 0x7ffffff0;
        cc_nl_put_u32(&m, IFLA_MTU, 1400);
        r = cc_nl_talk(&nl, &m, NULL, NULL);
        assert_true(r == -ENODEV || r == -EPERM);
        assert_non_null(cc_nl_strerror(&nl, r));
        /* An attribute the kernel's policy refuses (a name longer than IFNAMSIZ): nothing is
         * changed, and as root the kernel explains itself in an extended ack. */
        ifi = cc_nl_msg_init(&m, buf, sizeof(buf), RTM_NEWLINK, 0, sizeof(*ifi));
        ifi->ifi_index = (int)if_nametoindex("lo");
        cc_nl_put_strz(&m, IFLA_IFNAME, "a-name-far-longer-than-ifnamsiz");
        r = cc_nl_talk(&nl, &m, NULL, NULL);
        assert_true(r == -EINVAL || r == -ERANGE || r == -EPERM); /* ERANGE since Linux 5.x */
        if (r != -EPERM) {
                print_message("kernel: %s\n", cc_nl_strerror(&nl, r));
                assert_string_not_equal(cc_nl_strerror(&nl, r), strerror(-r));
        }
        /* A forged refusal of the next request, sent to our port by another socket before the
         * kernel answers: only the kernel (port 0) is believed. */
        _cleanup_cc_nl_ struct cc_nl other = CC_NL_INIT;
        assert_int_equal(cc_nl_open(&other), 0);
        struct {
                struct nlmsghdr h;
                struct nlmsgerr e;
        } forged = {
                .h = {.nlmsg_len = sizeof(forged),
                      .nlmsg_type = NLMSG_ERROR,
                      .nlmsg_seq = nl.seq + 1,
                      .nlmsg_pid = nl.portid},
                .e = {.error = -EHWPOISON},
        };
        struct sockaddr_nl to = {.nl_family = AF_NETLINK, .nl_pid = nl.portid};
        assert_int_equal(
                sendto(other.fd, &forged, sizeof(forged), 0, (struct sockaddr *)&to, sizeof(to)),
                (ssize_t)sizeof(forged));
        /* A GET of one link by index: the answer is a data message and an ack. */
        ifi = cc_nl_msg_init(&m, buf, sizeof(buf), RTM_GETLINK, 0, sizeof(*ifi));
        ifi->ifi_index = (int)if_nametoindex("lo");
        names = (struct names){0};
        assert_int_equal(cc_nl_talk(&nl, &m, name_cb, &names), 0);
        assert_int_equal(names.n, 1);
        assert_true(names.lo);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_builder_layout),    cmocka_unit_test(test_builder_nesting),
                cmocka_unit_test(test_builder_overflow),  cmocka_unit_test(test_parse_crafted),
                cmocka_unit_test(test_receive_dump),      cmocka_unit_test(test_receive_ack),
                cmocka_unit_test(test_receive_truncated), cmocka_unit_test(test_kernel),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
