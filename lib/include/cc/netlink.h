#pragma once
/*
 * cc_nl_: a small raw rtnetlink (NETLINK_ROUTE) client, shared by the shim's pod network
 * (shim/network) and the agent's network requests (guest-agent/network).
 *
 * Hand-written rather than libmnl or libnl: Debian 12 ships no static libmnl.a, and both the
 * shim and the guest agent are linked -static-pie. The wire format is small enough to write
 * over the kernel's own NLMSG_* and RTA_* macros: a request builder in a caller's buffer, a
 * synchronous send that reads to the acknowledgement or the end of a dump, and an attribute
 * parser. Everything the kernel answers is input: every length is checked before use.
 *
 * Requests are synchronous, one at a time per socket; a socket belongs to the network
 * namespace of the thread that opened it.
 */

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One socket. Initialise with CC_NL_INIT so cc_nl_close() is safe before cc_nl_open(). */
struct cc_nl {
        int fd;
        uint32_t portid;   /* our netlink address, from the kernel */
        uint32_t seq;      /* of the request in flight (or the last one) */
        char ext_msg[160]; /* the kernel's extended-ack text for the last refused request */
        /* The answer being read: first callback error, and whether the dump was interrupted. */
        int cb_err;
        bool dump_intr;
        char *rbuf; /* receive buffer, CC_NL_RBUF_SIZE bytes, allocated by cc_nl_open() */
};
#define CC_NL_INIT       \
        {                \
                .fd = -1 \
        }
/* The kernel sizes dump datagrams to the reader's buffer up to 32 KiB; a datagram larger than
 * this (one huge message) fails the request with -EMSGSIZE rather than being read cut short. */
#define CC_NL_RBUF_SIZE 32768

/* Opens a NETLINK_ROUTE socket (close-on-exec, extended acks on); 0 or -errno. */
int cc_nl_open(struct cc_nl *nl);
void cc_nl_close(struct cc_nl *nl);
static inline void cc_nl_closep(struct cc_nl *nl)
{
        cc_nl_close(nl);
}
#define _cleanup_cc_nl_ __attribute__((cleanup(cc_nl_closep)))

/* The kernel's own words for error r of the last request when it gave some, else strerror(-r). */
const char *cc_nl_strerror(const struct cc_nl *nl, int r);

/*
 * A request built in the caller's buffer (4-byte aligned, e.g. a uint32_t array or a union with
 * struct nlmsghdr). An attribute that does not fit sets `overflow`; the request is then refused
 * by cc_nl_talk() with -EMSGSIZE, so builders need no error checks of their own.
 */
struct cc_nl_msg {
        struct nlmsghdr *nlh;
        size_t cap;
        bool overflow;
};

/*
 * Starts a request of `type` (NLM_F_REQUEST | flags) followed by a zeroed family header of
 * hdrlen bytes, which it returns. NULL (and overflow set) when buf cannot hold even that.
 */
void *cc_nl_msg_init(struct cc_nl_msg *m, void *buf, size_t cap, uint16_t type, uint16_t flags,
                     size_t hdrlen);
void cc_nl_put(struct cc_nl_msg *m, uint16_t type, const void *data, size_t len);
void cc_nl_put_u8(struct cc_nl_msg *m, uint16_t type, uint8_t v);
void cc_nl_put_u16(struct cc_nl_msg *m, uint16_t type, uint16_t v);
void cc_nl_put_u32(struct cc_nl_msg *m, uint16_t type, uint32_t v);
void cc_nl_put_strz(struct cc_nl_msg *m, uint16_t type, const char *s); /* with its NUL */
/* A nested attribute: the attributes put until cc_nl_nest_end() are its payload. */
struct rtattr *cc_nl_nest_start(struct cc_nl_msg *m, uint16_t type);
void cc_nl_nest_end(struct cc_nl_msg *m, struct rtattr *nest);

/* Called for each data message of the answer; 0 to go on, -errno to fail the request. */
typedef int (*cc_nl_cb)(const struct nlmsghdr *nlh, void *data);

/*
 * Sends m and reads the answer: to the acknowledgement (NLM_F_ACK is added unless m is a
 * dump) or to NLMSG_DONE, calling cb (may be NULL) for each data message. Returns 0, the
 * kernel's -errno (text in cc_nl_strerror()), the first error of cb (the rest of the answer is
 * still read, so the socket stays usable), -EINTR when the kernel flagged the dump inconsistent
 * (NLM_F_DUMP_INTR: the caller may retry), -EBADMSG for a malformed answer, or -EMSGSIZE.
 */
int cc_nl_talk(struct cc_nl *nl, struct cc_nl_msg *m, cc_nl_cb cb, void *data);

/*
 * A dump of one rtnetlink table: a request of `type` (RTM_GETLINK, RTM_GETADDR, ...) whose family
 * header of hdrlen bytes is zero but for its first byte, the address family (every rtnetlink
 * family header starts with it), answered through cb as by cc_nl_talk() (-EINTR included).
 */
int cc_nl_dump(struct cc_nl *nl, uint16_t type, int family, size_t hdrlen, cc_nl_cb cb, void *data);

/*
 * Reads one received datagram (buf 4-byte aligned) of the answer to request nl->seq; what
 * cc_nl_talk() does for each. Messages of other requests or ports are skipped. Returns 0 when
 * more datagrams are to come, 1 when the answer is complete and good, or -errno (final).
 * nl->cb_err, nl->dump_intr and nl->ext_msg must be cleared before the first datagram.
 */
int cc_nl_receive(struct cc_nl *nl, const void *buf, size_t len, cc_nl_cb cb, void *data);

/*
 * Fills tb[0..max] with the attributes that follow the family header of hdrlen bytes (the last
 * of a repeated type wins; types above max are ignored). -EBADMSG when the message is shorter
 * than its family header or an attribute's length is wrong; tb is then all NULL.
 */
int cc_nl_parse(const struct nlmsghdr *nlh, size_t hdrlen, const struct rtattr **tb, unsigned max);
/* The same for the payload of a nested attribute. */
int cc_nl_parse_nested(const struct rtattr *nest, const struct rtattr **tb, unsigned max);

static inline const void *cc_nl_data(const struct rtattr *a)
{
        return RTA_DATA(a);
}
static inline size_t cc_nl_len(const struct rtattr *a)
{
        return RTA_PAYLOAD(a);
}
/* *v from an attribute of exactly 4 bytes; -EBADMSG (v unchanged) otherwise. */
int cc_nl_get_u32(const struct rtattr *a, uint32_t *v);
/* The attribute's string (up to its first NUL, NUL or not) into buf, truncated to size - 1. */
void cc_nl_get_str(const struct rtattr *a, char *buf, size_t size);
