#pragma once
/* Helpers shared by the files of shim/network/ only. */

#include <libmnl/libmnl.h>
#include <stdint.h>

struct cc_error;

struct shim_net_nl {
        struct mnl_socket *sock;
        unsigned portid;
        unsigned seq;
        char buf[32768]; /* MNL_SOCKET_DUMP_SIZE: the most one dump datagram holds */
};

int shim_net__nl_open(struct shim_net_nl **ret, struct cc_error **err);
struct shim_net_nl *shim_net__nl_close(struct shim_net_nl *nl);
static inline void shim_net__nl_closep(struct shim_net_nl **p)
{
        shim_net__nl_close(*p);
}
#define _cleanup_nl_ __attribute__((cleanup(shim_net__nl_closep)))

/* A new message in the socket's buffer (NLM_F_REQUEST is added to flags). */
struct nlmsghdr *shim_net__nl_msg(struct shim_net_nl *nl, uint16_t type, uint16_t flags);
int shim_net__nl_talk(struct shim_net_nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data);

/* tc priority of our filters: distinctive, so an ingress qdisc shared with others is safe. */
#define SHIM_NET_TC_PRIO 0xcc00

/* More NICs than a VM is given in practice; also keeps tap names ("tap<N>_cc") short. */
#define SHIM_NET_MAX_IFS 64
