#pragma once
/* Raw rtnetlink for guest-agent/network/ only: building requests and reading answers. */

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stddef.h>
#include <stdint.h>

struct agent_net_nl {
        int fd;
        uint32_t seq;
        uint32_t portid;
        char ext_msg[160]; /* the kernel's extended-ack text for the last refused request */
};

/* The kernel's own words for error r of the last request, else strerror(-r). */
const char *agent_net__nl_strerror(const struct agent_net_nl *nl, int r);

/* One request being built: the header and its attributes in a fixed buffer. */
struct agent_net_msg {
        union {
                struct nlmsghdr nlh;
                char buf[4096];
        };
        int overflow; /* an attribute did not fit; sending fails with -EMSGSIZE */
};

int agent_net__nl_open(struct agent_net_nl *nl);
void agent_net__nl_close(struct agent_net_nl *nl);

/* Starts msg with a zeroed family header of hdrlen bytes; returns that header. */
void *agent_net__msg_init(struct agent_net_msg *msg, uint16_t type, uint16_t flags, size_t hdrlen);
void agent_net__put(struct agent_net_msg *msg, uint16_t type, const void *data, size_t len);
void agent_net__put_u32(struct agent_net_msg *msg, uint16_t type, uint32_t v);
void agent_net__put_str(struct agent_net_msg *msg, uint16_t type, const char *s);

/* Called for each answer of a dump; returns 0 to go on or -errno to stop with that error. */
typedef int (*agent_net_cb)(const struct nlmsghdr *nlh, void *data);

/* Sends msg (NLM_F_ACK is added unless it is a dump) and reads to the ack or NLMSG_DONE. */
int agent_net__talk(struct agent_net_nl *nl, struct agent_net_msg *msg, agent_net_cb cb,
                    void *data);

/* Fills tb[0..max] with the attributes after the family header of hdrlen bytes. */
void agent_net__parse(const struct nlmsghdr *nlh, size_t hdrlen, const struct rtattr **tb, int max);
