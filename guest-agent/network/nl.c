/*
 * A minimal rtnetlink client: one socket, requests built in a fixed buffer, answers read with
 * the kernel's own NLMSG_* and RTA_* macros. Requests are synchronous; the answer that
 * matters is the acknowledgement (or the end of a dump) with our sequence number.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "guest-agent/network/agent-net-internal.h"

int agent_net__nl_open(struct agent_net_nl *nl)
{
        nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        if (nl->fd < 0)
                return -errno;
        struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
        socklen_t len = sizeof(sa);
        int one = 1;
        /* Extended acks carry the kernel's own message for a refused request. */
        setsockopt(nl->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
        if (bind(nl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            getsockname(nl->fd, (struct sockaddr *)&sa, &len) < 0) {
                int r = -errno;
                close(nl->fd);
                nl->fd = -1;
                return r;
        }
        nl->portid = sa.nl_pid;
        nl->seq = 1;
        return 0;
}

void agent_net__nl_close(struct agent_net_nl *nl)
{
        if (nl->fd >= 0)
                close(nl->fd);
        nl->fd = -1;
}

void *agent_net__msg_init(struct agent_net_msg *msg, uint16_t type, uint16_t flags, size_t hdrlen)
{
        memset(msg, 0, sizeof(*msg));
        msg->nlh.nlmsg_len = (uint32_t)NLMSG_LENGTH(hdrlen);
        msg->nlh.nlmsg_type = type;
        msg->nlh.nlmsg_flags = NLM_F_REQUEST | flags;
        return NLMSG_DATA(&msg->nlh);
}

void agent_net__put(struct agent_net_msg *msg, uint16_t type, const void *data, size_t len)
{
        size_t off = NLMSG_ALIGN(msg->nlh.nlmsg_len);
        if (off + RTA_SPACE(len) > sizeof(msg->buf)) {
                msg->overflow = 1;
                return;
        }
        struct rtattr *rta = (struct rtattr *)(msg->buf + off);
        rta->rta_type = type;
        rta->rta_len = (unsigned short)RTA_LENGTH(len);
        if (len)
                memcpy(RTA_DATA(rta), data, len);
        msg->nlh.nlmsg_len = (uint32_t)(off + RTA_SPACE(len));
}

void agent_net__put_u32(struct agent_net_msg *msg, uint16_t type, uint32_t v)
{
        agent_net__put(msg, type, &v, sizeof(v));
}

void agent_net__put_str(struct agent_net_msg *msg, uint16_t type, const char *s)
{
        agent_net__put(msg, type, s, strlen(s) + 1);
}

void agent_net__parse(const struct nlmsghdr *nlh, size_t hdrlen, const struct rtattr **tb, int max)
{
        memset(tb, 0, sizeof(*tb) * (size_t)(max + 1));
        if (nlh->nlmsg_len < NLMSG_LENGTH(hdrlen))
                return;
        const struct rtattr *rta =
                (const struct rtattr *)((const char *)NLMSG_DATA(nlh) + NLMSG_ALIGN(hdrlen));
        unsigned len = nlh->nlmsg_len - (unsigned)NLMSG_LENGTH(NLMSG_ALIGN(hdrlen));
        for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len))
                if (rta->rta_type <= max)
                        tb[rta->rta_type] = rta;
}

const char *agent_net__nl_strerror(const struct agent_net_nl *nl, int r)
{
        return nl->ext_msg[0] ? nl->ext_msg : strerror(-r);
}

/* Copies NLMSGERR_ATTR_MSG of an extended ack (NLM_F_ACK_TLVS) into nl->ext_msg. */
static void read_ext_ack(struct agent_net_nl *nl, const struct nlmsghdr *h)
{
        const struct nlmsgerr *e = NLMSG_DATA(h);
        if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
                return;
        size_t off = sizeof(*e);
        if (!(h->nlmsg_flags & NLM_F_CAPPED) && e->msg.nlmsg_len >= NLMSG_HDRLEN)
                off += e->msg.nlmsg_len - NLMSG_HDRLEN;
        off = NLMSG_ALIGN(off);
        size_t payload = h->nlmsg_len - NLMSG_HDRLEN;
        if (off >= payload)
                return;
        const struct rtattr *a = (const struct rtattr *)((const char *)e + off);
        unsigned len = (unsigned)(payload - off);
        for (; RTA_OK(a, len); a = RTA_NEXT(a, len))
                if (a->rta_type == NLMSGERR_ATTR_MSG && RTA_PAYLOAD(a) > 0)
                        snprintf(nl->ext_msg, sizeof(nl->ext_msg), "%.*s",
                                 (int)strnlen(RTA_DATA(a), RTA_PAYLOAD(a)),
                                 (const char *)RTA_DATA(a));
}

int agent_net__talk(struct agent_net_nl *nl, struct agent_net_msg *msg, agent_net_cb cb, void *data)
{
        if (msg->overflow)
                return -EMSGSIZE;
        int dump = (msg->nlh.nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
        if (!dump)
                msg->nlh.nlmsg_flags |= NLM_F_ACK;
        msg->nlh.nlmsg_seq = ++nl->seq;
        nl->ext_msg[0] = 0;
        struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
        if (sendto(nl->fd, msg->buf, msg->nlh.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -errno;
        int first_err = 0;
        for (;;) {
                static __thread char rbuf[32768];
                ssize_t n = recv(nl->fd, rbuf, sizeof(rbuf), 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                unsigned len = (unsigned)n;
                for (struct nlmsghdr *h = (struct nlmsghdr *)rbuf; NLMSG_OK(h, len);
                     h = NLMSG_NEXT(h, len)) {
                        if (h->nlmsg_seq != nl->seq || h->nlmsg_pid != nl->portid)
                                continue;
                        if (h->nlmsg_type == NLMSG_DONE)
                                return first_err;
                        if (h->nlmsg_type == NLMSG_ERROR) {
                                const struct nlmsgerr *e = NLMSG_DATA(h);
                                if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
                                        return -EBADMSG;
                                if (e->error < 0)
                                        read_ext_ack(nl, h);
                                return e->error;
                        }
                        if (cb && first_err == 0)
                                first_err = cb(h, data);
                }
        }
}
