/*
 * A raw rtnetlink client (see cc/netlink.h for why it is hand-written): requests built in the
 * caller's buffer, answers read with every length checked, since a reply is input too.
 */
#include "cc/netlink.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

int cc_nl_open(struct cc_nl *nl)
{
        *nl = (struct cc_nl)CC_NL_INIT;
        nl->rbuf = malloc(CC_NL_RBUF_SIZE);
        if (!nl->rbuf)
                return -ENOMEM;
        nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        if (nl->fd < 0) {
                int r = -errno;
                cc_nl_close(nl);
                return r;
        }
        /* Extended acks carry the kernel's own message for a refused request; a kernel
         * without them (before 4.12) still answers with the errno alone. */
        int one = 1;
        (void)setsockopt(nl->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
        struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
        socklen_t len = sizeof(sa);
        if (bind(nl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            getsockname(nl->fd, (struct sockaddr *)&sa, &len) < 0) {
                int r = -errno;
                cc_nl_close(nl);
                return r;
        }
        nl->portid = sa.nl_pid;
        return 0;
}

void cc_nl_close(struct cc_nl *nl)
{
        if (nl->fd >= 0)
                close(nl->fd);
        nl->fd = -1;
        free(nl->rbuf);
        nl->rbuf = NULL;
}

const char *cc_nl_strerror(const struct cc_nl *nl, int r)
{
        return nl->ext_msg[0] ? nl->ext_msg : strerror(r < 0 ? -r : r);
}

/* --- building --- */

void *cc_nl_msg_init(struct cc_nl_msg *m, void *buf, size_t cap, uint16_t type, uint16_t flags,
                     size_t hdrlen)
{
        *m = (struct cc_nl_msg){.cap = cap};
        if (!buf || (uintptr_t)buf % NLMSG_ALIGNTO || hdrlen > UINT16_MAX ||
            cap < NLMSG_SPACE(hdrlen)) {
                m->overflow = true;
                return NULL;
        }
        m->nlh = buf;
        memset(buf, 0, NLMSG_SPACE(hdrlen));
        m->nlh->nlmsg_len = (uint32_t)NLMSG_LENGTH(hdrlen);
        m->nlh->nlmsg_type = type;
        m->nlh->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
        return NLMSG_DATA(m->nlh);
}

/* Appends an attribute with room for len bytes of payload (zeroed); NULL on overflow. */
static struct rtattr *reserve(struct cc_nl_msg *m, uint16_t type, size_t len)
{
        if (m->overflow)
                return NULL;
        size_t off = NLMSG_ALIGN(m->nlh->nlmsg_len);
        if (len > UINT16_MAX - RTA_LENGTH(0) || off > m->cap || m->cap - off < RTA_SPACE(len)) {
                m->overflow = true;
                return NULL;
        }
        struct rtattr *a = (struct rtattr *)((char *)m->nlh + off);
        memset(a, 0, RTA_SPACE(len));
        a->rta_type = type;
        a->rta_len = (unsigned short)RTA_LENGTH(len);
        m->nlh->nlmsg_len = (uint32_t)(off + RTA_SPACE(len));
        return a;
}

void cc_nl_put(struct cc_nl_msg *m, uint16_t type, const void *data, size_t len)
{
        struct rtattr *a = reserve(m, type, len);
        if (a && len)
                memcpy(RTA_DATA(a), data, len);
}

void cc_nl_put_u8(struct cc_nl_msg *m, uint16_t type, uint8_t v)
{
        cc_nl_put(m, type, &v, sizeof(v));
}

void cc_nl_put_u16(struct cc_nl_msg *m, uint16_t type, uint16_t v)
{
        cc_nl_put(m, type, &v, sizeof(v));
}

void cc_nl_put_u32(struct cc_nl_msg *m, uint16_t type, uint32_t v)
{
        cc_nl_put(m, type, &v, sizeof(v));
}

void cc_nl_put_strz(struct cc_nl_msg *m, uint16_t type, const char *s)
{
        cc_nl_put(m, type, s, strlen(s) + 1);
}

struct rtattr *cc_nl_nest_start(struct cc_nl_msg *m, uint16_t type)
{
        /* NLA_F_NESTED is not set: the classic rtnetlink and tc families accept both. */
        return reserve(m, type, 0);
}

void cc_nl_nest_end(struct cc_nl_msg *m, struct rtattr *nest)
{
        if (m->overflow || !nest)
                return;
        size_t len = (size_t)((char *)m->nlh + m->nlh->nlmsg_len - (char *)nest);
        if (len > UINT16_MAX)
                m->overflow = true;
        else
                nest->rta_len = (unsigned short)len;
}

/* --- parsing --- */

/* Fills tb from the attributes in [p, p + len); p is 4-byte aligned. */
static int parse_attrs(const void *p, size_t len, const struct rtattr **tb, unsigned max)
{
        memset(tb, 0, sizeof(*tb) * ((size_t)max + 1));
        size_t off = 0;
        while (off < len) {
                const struct rtattr *a = (const struct rtattr *)((const char *)p + off);
                if (len - off < sizeof(*a) || a->rta_len < sizeof(*a) || a->rta_len > len - off) {
                        memset(tb, 0, sizeof(*tb) * ((size_t)max + 1));
                        return -EBADMSG;
                }
                off += RTA_ALIGN(a->rta_len);
                /* The kernel may flag nested attributes (NLA_F_NESTED); the type is below. */
                unsigned type = a->rta_type & NLA_TYPE_MASK;
                if (type <= max)
                        tb[type] = a;
        }
        return 0;
}

int cc_nl_parse(const struct nlmsghdr *nlh, size_t hdrlen, const struct rtattr **tb, unsigned max)
{
        if (nlh->nlmsg_len < NLMSG_LENGTH(hdrlen)) {
                memset(tb, 0, sizeof(*tb) * ((size_t)max + 1));
                return -EBADMSG;
        }
        size_t start = NLMSG_SPACE(hdrlen);
        size_t len = nlh->nlmsg_len > start ? nlh->nlmsg_len - start : 0;
        return parse_attrs((const char *)nlh + start, len, tb, max);
}

int cc_nl_parse_nested(const struct rtattr *nest, const struct rtattr **tb, unsigned max)
{
        return parse_attrs(RTA_DATA(nest), RTA_PAYLOAD(nest), tb, max);
}

int cc_nl_get_u32(const struct rtattr *a, uint32_t *v)
{
        if (RTA_PAYLOAD(a) != sizeof(*v))
                return -EBADMSG;
        memcpy(v, RTA_DATA(a), sizeof(*v));
        return 0;
}

void cc_nl_get_str(const struct rtattr *a, char *buf, size_t size)
{
        if (size == 0)
                return;
        size_t n = strnlen(RTA_DATA(a), RTA_PAYLOAD(a));
        if (n >= size)
                n = size - 1;
        memcpy(buf, RTA_DATA(a), n);
        buf[n] = '\0';
}

/* --- answers --- */

/*
 * Keeps NLMSGERR_ATTR_MSG of an extended ack: the attributes start `off` bytes into the payload
 * of h (after struct nlmsgerr and the echoed request, or after NLMSG_DONE's error code).
 */
static void read_ext_ack(struct cc_nl *nl, const struct nlmsghdr *h, size_t off)
{
        if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
                return;
        size_t payload = h->nlmsg_len - NLMSG_HDRLEN;
        off = NLMSG_ALIGN(off);
        if (off >= payload)
                return;
        const struct rtattr *tb[NLMSGERR_ATTR_MSG + 1];
        if (parse_attrs((const char *)NLMSG_DATA(h) + off, payload - off, tb, NLMSGERR_ATTR_MSG) <
                    0 ||
            !tb[NLMSGERR_ATTR_MSG])
                return;
        cc_nl_get_str(tb[NLMSGERR_ATTR_MSG], nl->ext_msg, sizeof(nl->ext_msg));
}

/* A kernel error code: 0 or -1..-4095. */
static bool valid_error(int32_t e)
{
        return e <= 0 && e >= -4095;
}

/* The end of the answer: the first callback error, or the dump's inconsistency. */
static int finish(const struct cc_nl *nl)
{
        if (nl->cb_err < 0)
                return nl->cb_err;
        return nl->dump_intr ? -EINTR : 1;
}

int cc_nl_receive(struct cc_nl *nl, const void *buf, size_t len, cc_nl_cb cb, void *data)
{
        size_t off = 0;
        while (off < len) {
                const struct nlmsghdr *h = (const struct nlmsghdr *)((const char *)buf + off);
                if (len - off < sizeof(*h) || h->nlmsg_len < sizeof(*h) || h->nlmsg_len > len - off)
                        return -EBADMSG; /* truncated */
                off += NLMSG_ALIGN(h->nlmsg_len);
                /* An answer to an earlier request, or not for us. */
                if (h->nlmsg_seq != nl->seq || h->nlmsg_pid != nl->portid)
                        continue;
                if (h->nlmsg_flags & NLM_F_DUMP_INTR)
                        nl->dump_intr = true;
                if (h->nlmsg_type == NLMSG_ERROR) {
                        const struct nlmsgerr *e = NLMSG_DATA(h);
                        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)) || !valid_error(e->error))
                                return -EBADMSG;
                        if (e->error == 0)
                                return finish(nl);
                        size_t ext = sizeof(*e);
                        if (!(h->nlmsg_flags & NLM_F_CAPPED) && e->msg.nlmsg_len >= NLMSG_HDRLEN)
                                ext += e->msg.nlmsg_len - NLMSG_HDRLEN;
                        read_ext_ack(nl, h, ext);
                        return nl->cb_err < 0 ? nl->cb_err : e->error;
                }
                if (h->nlmsg_type == NLMSG_DONE) {
                        /* Since Linux 2.6 the end of a dump carries the dump's error code. */
                        int32_t e = 0;
                        if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(e)))
                                memcpy(&e, NLMSG_DATA(h), sizeof(e));
                        if (!valid_error(e))
                                return -EBADMSG;
                        if (e == 0)
                                return finish(nl);
                        read_ext_ack(nl, h, sizeof(e));
                        return nl->cb_err < 0 ? nl->cb_err : e;
                }
                if (h->nlmsg_type < NLMSG_MIN_TYPE)
                        continue; /* NLMSG_NOOP, NLMSG_OVERRUN: nothing to read */
                if (cb && nl->cb_err == 0) {
                        int r = cb(h, data);
                        nl->cb_err = r < 0 ? r : 0;
                }
        }
        return 0;
}

int cc_nl_talk(struct cc_nl *nl, struct cc_nl_msg *m, cc_nl_cb cb, void *data)
{
        if (m->overflow)
                return -EMSGSIZE;
        if (nl->fd < 0 || !nl->rbuf)
                return -EBADF;
        /* A dump ends with NLMSG_DONE; anything else is answered by an acknowledgement. */
        if ((m->nlh->nlmsg_flags & NLM_F_DUMP) != NLM_F_DUMP)
                m->nlh->nlmsg_flags |= NLM_F_ACK;
        m->nlh->nlmsg_seq = ++nl->seq;
        m->nlh->nlmsg_pid = 0;
        nl->ext_msg[0] = '\0';
        nl->cb_err = 0;
        nl->dump_intr = false;
        struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
        while (sendto(nl->fd, m->nlh, m->nlh->nlmsg_len, 0, (struct sockaddr *)&kernel,
                      sizeof(kernel)) < 0)
                if (errno != EINTR)
                        return -errno;
        for (;;) {
                struct sockaddr_nl from;
                struct iovec iov = {.iov_base = nl->rbuf, .iov_len = CC_NL_RBUF_SIZE};
                struct msghdr mh = {
                        .msg_name = &from,
                        .msg_namelen = sizeof(from),
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                };
                ssize_t n = recvmsg(nl->fd, &mh, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (mh.msg_flags & MSG_TRUNC)
                        return -EMSGSIZE;
                /* Only the kernel (port 0) answers requests; ignore anyone else. */
                if (mh.msg_namelen != sizeof(from) || from.nl_pid != 0)
                        continue;
                int r = cc_nl_receive(nl, nl->rbuf, (size_t)n, cb, data);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
}

int cc_nl_dump(struct cc_nl *nl, uint16_t type, int family, size_t hdrlen, cc_nl_cb cb, void *data)
{
        uint32_t buf[64];
        struct cc_nl_msg m;
        unsigned char *hdr = cc_nl_msg_init(&m, buf, sizeof(buf), type, NLM_F_DUMP, hdrlen);
        if (hdrlen)
                hdr[0] = (unsigned char)family;
        return cc_nl_talk(nl, &m, cb, data);
}
