/*
 * A small rtnetlink request/dump layer over libmnl for the shim's pod network: one socket per
 * namespace, a request with an acknowledgement, or a dump with a callback per message.
 */
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cc/error.h"

#include "shim/network/shim-net-internal.h"

int shim_net__nl_open(struct shim_net_nl **ret, struct cc_error **err)
{
        struct shim_net_nl *nl = calloc(1, sizeof(*nl));
        if (!nl)
                return cc_error_set(err, ENOMEM, "netlink: out of memory");
        /* The socket belongs to the namespace of the thread that opens it. */
        nl->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
        if (!nl->sock) {
                int r = errno;
                free(nl);
                return cc_error_set(err, r, "netlink: socket: %s", strerror(r));
        }
        if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
                int r = errno;
                mnl_socket_close(nl->sock);
                free(nl);
                return cc_error_set(err, r, "netlink: bind: %s", strerror(r));
        }
        nl->portid = mnl_socket_get_portid(nl->sock);
        nl->seq = (unsigned)time(NULL);
        *ret = nl;
        return 0;
}

struct shim_net_nl *shim_net__nl_close(struct shim_net_nl *nl)
{
        if (nl) {
                mnl_socket_close(nl->sock);
                free(nl);
        }
        return NULL;
}

struct nlmsghdr *shim_net__nl_msg(struct shim_net_nl *nl, uint16_t type, uint16_t flags)
{
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->buf);
        nlh->nlmsg_type = type;
        nlh->nlmsg_flags = NLM_F_REQUEST | flags;
        nlh->nlmsg_seq = ++nl->seq;
        return nlh;
}

/*
 * Sends nlh and reads answers until the kernel's acknowledgement or the end of a dump, calling
 * cb (may be NULL) for each data message. Returns 0 or -errno (the kernel's error).
 */
int shim_net__nl_talk(struct shim_net_nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
        unsigned seq = nlh->nlmsg_seq;
        if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
                return -errno;
        for (;;) {
                ssize_t n = mnl_socket_recvfrom(nl->sock, nl->buf, sizeof(nl->buf));
                if (n < 0)
                        return -errno;
                int r = mnl_cb_run(nl->buf, (size_t)n, seq, nl->portid, cb, data);
                if (r < 0)
                        return errno ? -errno : -EIO;
                if (r == MNL_CB_STOP)
                        return 0;
        }
}
