/*
 * Pod network setup and teardown (tcfilter model); see shim-net.h for the design.
 *
 * All netlink and tun work runs in a short-lived thread that has joined the pod's network
 * namespace with setns(): a namespace change is per thread, so the caller's thread and every
 * other thread of the shim stay in the host namespace whatever happens, and the joined
 * namespace ends with the thread.
 */
#include "shim/network/shim-net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/nsfs.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>
#include <linux/veth.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "cc/cleanup.h"
#include "cc/error.h"
#include "cc/log.h"
#include "cc/macro.h"
#include "cc/netlink.h"

#include "shim/network/shim-net-internal.h"

/* --- reading the namespace --- */

struct read_ctx {
        struct shim_net *net;
};

static struct shim_net_if *find_if(struct shim_net *net, int ifindex)
{
        for (size_t i = 0; i < net->n_ifs; i++)
                if (net->ifs[i].ifindex == ifindex)
                        return &net->ifs[i];
        return NULL;
}

/* The address in attribute a (4 bytes for IPv4, 16 for IPv6) as text; false if malformed. */
static bool addr_ntop(int family, const struct rtattr *a, char *buf, size_t size)
{
        size_t alen = family == AF_INET ? 4 : 16;
        return a && cc_nl_len(a) == alen && inet_ntop(family, cc_nl_data(a), buf, (socklen_t)size);
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
        struct read_ctx *ctx = data;
        const struct ifinfomsg *ifi = NLMSG_DATA(nlh);
        const struct rtattr *tb[IFLA_MAX + 1];
        int r = cc_nl_parse(nlh, sizeof(*ifi), tb, IFLA_MAX);
        if (r < 0)
                return r;

        /* Only Ethernet links are mirrored: loopback has no peer outside, and a tun/tap is our
         * own (or another VMM's) device, never a CNI interface. */
        char kind[16] = "";
        if (tb[IFLA_LINKINFO]) {
                const struct rtattr *li[IFLA_INFO_MAX + 1];
                r = cc_nl_parse_nested(tb[IFLA_LINKINFO], li, IFLA_INFO_MAX);
                if (r < 0)
                        return r;
                if (li[IFLA_INFO_KIND])
                        cc_nl_get_str(li[IFLA_INFO_KIND], kind, sizeof(kind));
        }
        if (ifi->ifi_type != ARPHRD_ETHER || strcmp(kind, "tun") == 0 || !tb[IFLA_IFNAME] ||
            !tb[IFLA_ADDRESS] || cc_nl_len(tb[IFLA_ADDRESS]) != ETH_ALEN)
                return 0;

        struct shim_net_if *nif = cc_array_grow(&ctx->net->ifs, &ctx->net->n_ifs, sizeof(*nif));
        if (!nif)
                return -ENOMEM;
        nif->tap_fd = -1;
        nif->ifindex = ifi->ifi_index;
        nif->raw_flags = ifi->ifi_flags;
        cc_nl_get_str(tb[IFLA_IFNAME], nif->name, sizeof(nif->name));
        snprintf(nif->kind, sizeof(nif->kind), "%s", kind);
        shim_net_format_mac(cc_nl_data(tb[IFLA_ADDRESS]), nif->mac);
        nif->mtu = 1500;
        if (tb[IFLA_MTU])
                (void)cc_nl_get_u32(tb[IFLA_MTU], &nif->mtu);
        return 0;
}

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
        struct read_ctx *ctx = data;
        const struct ifaddrmsg *ifa = NLMSG_DATA(nlh);
        const struct rtattr *tb[IFA_MAX + 1];
        int r = cc_nl_parse(nlh, sizeof(*ifa), tb, IFA_MAX);
        if (r < 0)
                return r;

        struct shim_net_if *nif = find_if(ctx->net, (int)ifa->ifa_index);
        /* IPv4 point-to-point links carry the peer in IFA_ADDRESS; IFA_LOCAL is ours. */
        const struct rtattr *a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
        if (!nif || !a || (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6))
                return 0;
        /* The guest makes its own IPv6 link-local address from the same MAC. */
        if (ifa->ifa_family == AF_INET6 && ifa->ifa_scope == RT_SCOPE_LINK)
                return 0;
        char text[INET6_ADDRSTRLEN];
        if (!addr_ntop(ifa->ifa_family, a, text, sizeof(text)))
                return -EBADMSG;

        struct shim_net_addr *ad = cc_array_grow(&nif->addrs, &nif->n_addrs, sizeof(*ad));
        if (!ad)
                return -ENOMEM;
        ad->family = ifa->ifa_family;
        ad->prefix_len = ifa->ifa_prefixlen;
        snprintf(ad->addr, sizeof(ad->addr), "%s", text);
        return 0;
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
        struct read_ctx *ctx = data;
        const struct rtmsg *rtm = NLMSG_DATA(nlh);
        const struct rtattr *tb[RTA_MAX + 1];
        int r = cc_nl_parse(nlh, sizeof(*rtm), tb, RTA_MAX);
        if (r < 0)
                return r;

        uint32_t table = rtm->rtm_table, oif = 0;
        if (tb[RTA_TABLE] && cc_nl_get_u32(tb[RTA_TABLE], &table) < 0)
                return -EBADMSG;
        if (table != RT_TABLE_MAIN || rtm->rtm_type != RTN_UNICAST || !tb[RTA_OIF] ||
            (rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6))
                return 0;
        if (cc_nl_get_u32(tb[RTA_OIF], &oif) < 0)
                return -EBADMSG;
        struct shim_net_if *nif = find_if(ctx->net, (int)oif);
        if (!nif)
                return 0;
        struct shim_net_route rt = {
                .family = rtm->rtm_family,
                .scope = rtm->rtm_scope,
                .dest_len = rtm->rtm_dst_len,
        };
        if ((tb[RTA_DST] && !addr_ntop(rtm->rtm_family, tb[RTA_DST], rt.dest, sizeof(rt.dest))) ||
            (tb[RTA_GATEWAY] &&
             !addr_ntop(rtm->rtm_family, tb[RTA_GATEWAY], rt.gateway, sizeof(rt.gateway))) ||
            (tb[RTA_PREFSRC] &&
             !addr_ntop(rtm->rtm_family, tb[RTA_PREFSRC], rt.source, sizeof(rt.source))))
                return -EBADMSG;
        /* fe80::/64 exists on every IPv6 link; the guest kernel adds its own. */
        if (rtm->rtm_family == AF_INET6 && tb[RTA_DST] &&
            IN6_IS_ADDR_LINKLOCAL((const struct in6_addr *)cc_nl_data(tb[RTA_DST])))
                return 0;
        snprintf(rt.device, sizeof(rt.device), "%s", nif->name);

        struct shim_net_route *el =
                cc_array_grow(&ctx->net->routes, &ctx->net->n_routes, sizeof(*el));
        if (!el)
                return -ENOMEM;
        *el = rt;
        return 0;
}

static int neigh_cb(const struct nlmsghdr *nlh, void *data)
{
        struct read_ctx *ctx = data;
        const struct ndmsg *nd = NLMSG_DATA(nlh);
        const struct rtattr *tb[NDA_MAX + 1];
        int r = cc_nl_parse(nlh, sizeof(*nd), tb, NDA_MAX);
        if (r < 0)
                return r;

        /* Only static entries are configuration; the rest is the pod namespace's own cache. */
        struct shim_net_if *nif = find_if(ctx->net, nd->ndm_ifindex);
        if (!nif || !(nd->ndm_state & NUD_PERMANENT) || !tb[NDA_DST] || !tb[NDA_LLADDR] ||
            cc_nl_len(tb[NDA_LLADDR]) != ETH_ALEN ||
            (nd->ndm_family != AF_INET && nd->ndm_family != AF_INET6))
                return 0;
        char text[INET6_ADDRSTRLEN];
        if (!addr_ntop(nd->ndm_family, tb[NDA_DST], text, sizeof(text)))
                return -EBADMSG;

        struct shim_net_neigh *ne =
                cc_array_grow(&ctx->net->neighs, &ctx->net->n_neighs, sizeof(*ne));
        if (!ne)
                return -ENOMEM;
        ne->family = nd->ndm_family;
        ne->state = nd->ndm_state;
        ne->flags = nd->ndm_flags;
        snprintf(ne->device, sizeof(ne->device), "%s", nif->name);
        snprintf(ne->addr, sizeof(ne->addr), "%s", text);
        shim_net_format_mac(cc_nl_data(tb[NDA_LLADDR]), ne->lladdr);
        return 0;
}

/* One dump request of `type` for `family`, the payload header being `hdrlen` zero bytes. */
static int dump(struct cc_nl *nl, uint16_t type, int family, size_t hdrlen, cc_nl_cb cb,
                struct read_ctx *ctx, const char *what, struct cc_error **err)
{
        int r = cc_nl_dump(nl, type, family, hdrlen, cb, ctx);
        if (r < 0)
                return cc_error_set(err, -r, "listing %s: %s", what, cc_nl_strerror(nl, r));
        return 0;
}

static int read_namespace(struct cc_nl *nl, struct shim_net *net, struct cc_error **err)
{
        struct read_ctx ctx = {.net = net};
        int r = dump(nl, RTM_GETLINK, AF_UNSPEC, sizeof(struct ifinfomsg), link_cb, &ctx, "links",
                     err);
        if (r >= 0)
                r = dump(nl, RTM_GETADDR, AF_UNSPEC, sizeof(struct ifaddrmsg), addr_cb, &ctx,
                         "addresses", err);
        if (r >= 0)
                r = dump(nl, RTM_GETROUTE, AF_INET, sizeof(struct rtmsg), route_cb, &ctx,
                         "IPv4 routes", err);
        if (r >= 0)
                r = dump(nl, RTM_GETROUTE, AF_INET6, sizeof(struct rtmsg), route_cb, &ctx,
                         "IPv6 routes", err);
        if (r >= 0)
                r = dump(nl, RTM_GETNEIGH, AF_UNSPEC, sizeof(struct ndmsg), neigh_cb, &ctx,
                         "neighbours", err);
        return r;
}

/* --- links and tc --- */

static int link_set(struct cc_nl *nl, int ifindex, unsigned mtu, bool up)
{
        uint32_t buf[256];
        struct cc_nl_msg m;
        struct ifinfomsg *ifi = cc_nl_msg_init(&m, buf, sizeof(buf), RTM_NEWLINK, 0, sizeof(*ifi));
        ifi->ifi_family = AF_UNSPEC;
        ifi->ifi_index = ifindex;
        ifi->ifi_change = IFF_UP;
        ifi->ifi_flags = up ? IFF_UP : 0;
        if (mtu)
                cc_nl_put_u32(&m, IFLA_MTU, mtu);
        return cc_nl_talk(nl, &m, NULL, NULL);
}

/*
 * Stops the pod namespace's kernel from giving the tap an IPv6 link-local address: without it
 * the tap sends no router solicitations or neighbour discovery of its own, so the guest sees
 * only the pod's traffic on its NIC. Ignored where the kernel has no IPv6.
 */
static int tap_no_ipv6_addrgen(struct cc_nl *nl, int ifindex)
{
        uint32_t buf[256];
        struct cc_nl_msg m;
        struct ifinfomsg *ifi = cc_nl_msg_init(&m, buf, sizeof(buf), RTM_NEWLINK, 0, sizeof(*ifi));
        ifi->ifi_family = AF_UNSPEC;
        ifi->ifi_index = ifindex;
        struct rtattr *spec = cc_nl_nest_start(&m, IFLA_AF_SPEC);
        struct rtattr *in6 = cc_nl_nest_start(&m, AF_INET6);
        cc_nl_put_u8(&m, IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE);
        cc_nl_nest_end(&m, in6);
        cc_nl_nest_end(&m, spec);
        int r = cc_nl_talk(nl, &m, NULL, NULL);
        return r == -EAFNOSUPPORT || r == -EOPNOTSUPP ? 0 : r;
}

static int link_del(struct cc_nl *nl, int ifindex)
{
        uint32_t buf[256];
        struct cc_nl_msg m;
        struct ifinfomsg *ifi = cc_nl_msg_init(&m, buf, sizeof(buf), RTM_DELLINK, 0, sizeof(*ifi));
        ifi->ifi_family = AF_UNSPEC;
        ifi->ifi_index = ifindex;
        return cc_nl_talk(nl, &m, NULL, NULL);
}

/* Deletes the link called name (our own names only: "cct<hex>" persistent taps). */
static int link_del_name(struct cc_nl *nl, const char *name)
{
        uint32_t buf[256];
        struct cc_nl_msg m;
        struct ifinfomsg *ifi = cc_nl_msg_init(&m, buf, sizeof(buf), RTM_DELLINK, 0, sizeof(*ifi));
        ifi->ifi_family = AF_UNSPEC;
        cc_nl_put_strz(&m, IFLA_IFNAME, name);
        return cc_nl_talk(nl, &m, NULL, NULL);
}

/*
 * Creates (exclusively) a veth pair: `name` in the calling thread's namespace and `peer` in the
 * namespace of peer_ns_fd, both with the given MTU, in one message, so that no half-made pair
 * is ever visible: what `ip link add NAME mtu M type veth peer name PEER netns NS` sends.
 */
static int veth_pair_add(struct cc_nl *nl, const char *name, const char *peer, int peer_ns_fd,
                         unsigned mtu)
{
        uint32_t buf[256];
        struct cc_nl_msg m;
        struct ifinfomsg *ifi = cc_nl_msg_init(&m, buf, sizeof(buf), RTM_NEWLINK,
                                               NLM_F_CREATE | NLM_F_EXCL, sizeof(*ifi));
        ifi->ifi_family = AF_UNSPEC;
        cc_nl_put_strz(&m, IFLA_IFNAME, name);
        cc_nl_put_u32(&m, IFLA_MTU, mtu);
        struct rtattr *li = cc_nl_nest_start(&m, IFLA_LINKINFO);
        cc_nl_put_strz(&m, IFLA_INFO_KIND, "veth");
        struct rtattr *data = cc_nl_nest_start(&m, IFLA_INFO_DATA);
        /* VETH_INFO_PEER holds an ifinfomsg followed by the peer's attributes: start it as an
         * attribute carrying the header, then stretch it over what follows like a nest. */
        struct rtattr *pa =
                m.overflow ? NULL
                           : (struct rtattr *)((char *)m.nlh + NLMSG_ALIGN(m.nlh->nlmsg_len));
        struct ifinfomsg pifi = {.ifi_family = AF_UNSPEC};
        cc_nl_put(&m, VETH_INFO_PEER, &pifi, sizeof(pifi));
        cc_nl_put_strz(&m, IFLA_IFNAME, peer);
        cc_nl_put_u32(&m, IFLA_MTU, mtu);
        cc_nl_put_u32(&m, IFLA_NET_NS_FD, (uint32_t)peer_ns_fd);
        cc_nl_nest_end(&m, pa);
        cc_nl_nest_end(&m, data);
        cc_nl_nest_end(&m, li);
        return cc_nl_talk(nl, &m, NULL, NULL);
}

/* Adds (add = true, exclusive) or deletes the ingress qdisc (handle ffff:) of ifindex. */
static int ingress_qdisc(struct cc_nl *nl, int ifindex, bool add)
{
        uint32_t buf[256];
        struct cc_nl_msg m;
        struct tcmsg *tcm = cc_nl_msg_init(&m, buf, sizeof(buf), add ? RTM_NEWQDISC : RTM_DELQDISC,
                                           add ? NLM_F_CREATE | NLM_F_EXCL : 0, sizeof(*tcm));
        tcm->tcm_family = AF_UNSPEC;
        tcm->tcm_ifindex = ifindex;
        tcm->tcm_handle = TC_H_MAKE(TC_H_INGRESS, 0);
        tcm->tcm_parent = TC_H_INGRESS;
        cc_nl_put_strz(&m, TCA_KIND, "ingress");
        return cc_nl_talk(nl, &m, NULL, NULL);
}

/*
 * Adds to the ingress of `ifindex` a u32 filter matching every frame (one key with mask 0)
 * whose single action, mirred, redirects the frame to the egress of `target` and steals it from
 * the local stack: what `tc filter add dev X ingress prio P protocol all u32 match u8 0 0
 * action mirred egress redirect dev Y` sends.
 */
static int redirect_filter_add(struct cc_nl *nl, int ifindex, int target)
{
        uint32_t buf[256];
        struct cc_nl_msg m;
        struct tcmsg *tcm = cc_nl_msg_init(&m, buf, sizeof(buf), RTM_NEWTFILTER,
                                           NLM_F_CREATE | NLM_F_EXCL, sizeof(*tcm));
        tcm->tcm_family = AF_UNSPEC;
        tcm->tcm_ifindex = ifindex;
        tcm->tcm_parent = TC_H_MAKE(TC_H_INGRESS, 0);
        tcm->tcm_info = TC_H_MAKE((uint32_t)SHIM_NET_TC_PRIO << 16, htons(ETH_P_ALL));
        cc_nl_put_strz(&m, TCA_KIND, "u32");

        struct rtattr *opts = cc_nl_nest_start(&m, TCA_OPTIONS);
        /* A selector with one key of value 0 and mask 0 at offset 0: matches everything. */
        uint32_t selbuf[(sizeof(struct tc_u32_sel) + sizeof(struct tc_u32_key)) / 4] = {0};
        struct tc_u32_sel *sel = (struct tc_u32_sel *)selbuf;
        sel->flags = TC_U32_TERMINAL;
        sel->nkeys = 1;
        cc_nl_put(&m, TCA_U32_SEL, selbuf, sizeof(selbuf));

        struct rtattr *acts = cc_nl_nest_start(&m, TCA_U32_ACT);
        struct rtattr *act = cc_nl_nest_start(&m, 1); /* action order 1 */
        cc_nl_put_strz(&m, TCA_ACT_KIND, "mirred");
        struct rtattr *aopts = cc_nl_nest_start(&m, TCA_ACT_OPTIONS);
        struct tc_mirred mirred = {
                .action = TC_ACT_STOLEN,
                .eaction = TCA_EGRESS_REDIR,
                .ifindex = (uint32_t)target,
        };
        cc_nl_put(&m, TCA_MIRRED_PARMS, &mirred, sizeof(mirred));
        cc_nl_nest_end(&m, aopts);
        cc_nl_nest_end(&m, act);
        cc_nl_nest_end(&m, acts);
        cc_nl_nest_end(&m, opts);
        return cc_nl_talk(nl, &m, NULL, NULL);
}

/* Deletes our filters (every filter at our priority) from the ingress of ifindex. */
static int redirect_filter_del(struct cc_nl *nl, int ifindex)
{
        uint32_t buf[256];
        struct cc_nl_msg m;
        struct tcmsg *tcm = cc_nl_msg_init(&m, buf, sizeof(buf), RTM_DELTFILTER, 0, sizeof(*tcm));
        tcm->tcm_family = AF_UNSPEC;
        tcm->tcm_ifindex = ifindex;
        tcm->tcm_parent = TC_H_MAKE(TC_H_INGRESS, 0);
        tcm->tcm_info = TC_H_MAKE((uint32_t)SHIM_NET_TC_PRIO << 16, htons(ETH_P_ALL));
        return cc_nl_talk(nl, &m, NULL, NULL);
}

/* What setup created for one interface, so teardown removes exactly that. */
enum {
        MADE_TAP = 1 << 0,
        MADE_VETH_QDISC = 1 << 1,
        MADE_TAP_QDISC = 1 << 2,
        MADE_VETH_FILTER = 1 << 3,
        MADE_TAP_FILTER = 1 << 4,
        /* SHIM_NET_HOST_TAP: the persistent tap in the caller's namespace (MADE_TAP is then
         * the veth pair, whose caller end takes its qdisc and filter along when it goes). */
        MADE_HOST_TAP = 1 << 5,
};

/* A 32-bit FNV-1a over the pod namespace's identity, the interface's position and a retry
 * counter: stable names per pod and interface, distinct between pods. */
static uint32_t name_hash(const struct shim_net *net, size_t i, unsigned salt, char kind)
{
        uint64_t parts[] = {net->ns_dev, net->ns_ino, i, salt, (uint64_t)(unsigned char)kind};
        uint32_t h = 2166136261u;
        const unsigned char *p = (const unsigned char *)parts;
        for (size_t k = 0; k < sizeof(parts); k++)
                h = (h ^ p[k]) * 16777619u;
        return h;
}

static int open_tap(const char *name, unsigned flags, int *ret_fd, struct cc_error **err)
{
        _cleanup_close_ int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return cc_error_set(err, errno, "open /dev/net/tun: %s", strerror(errno));
        struct ifreq ifr = {0};
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
        /* IFF_TUN_EXCL: never attach to a tap that exists already (someone else's, or a
         * persistent one left behind); the caller tries the next name instead. */
        unsigned tun_flags = IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL;
        if (flags & SHIM_NET_VNET_HDR)
                tun_flags |= IFF_VNET_HDR;
        /* ifr_flags is a short; IFF_TUN_EXCL (0x8000) is its sign bit. */
        ifr.ifr_flags = (short)(uint16_t)tun_flags;
        if (ioctl(fd, TUNSETIFF, &ifr) < 0)
                return errno == EBUSY ? -EBUSY
                                      : cc_error_set(err, errno, "creating tap %s: %s", name,
                                                     strerror(errno));
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Removes what `made` says was created for nif; returns the first error (-errno). */
static int undo_if(struct cc_nl *nl, struct shim_net_if *nif, unsigned *made, struct cc_error **err)
{
        int first = 0;
        /* Gone already (the CNI plugin deleted the veth first) counts as removed. */
#define STEP(bit, call, what)                                                                \
        do {                                                                                 \
                if (*made & (bit)) {                                                         \
                        int r_ = (call);                                                     \
                        if (r_ < 0 && r_ != -ENODEV && r_ != -ENOENT && first == 0)          \
                                first = cc_error_set(err, -r_, "%s %s: %s", what, nif->name, \
                                                     cc_nl_strerror(nl, r_));                \
                        *made &= ~(unsigned)(bit);                                           \
                }                                                                            \
        } while (0)
        STEP(MADE_VETH_FILTER, redirect_filter_del(nl, nif->ifindex), "removing the filter of");
        STEP(MADE_TAP_FILTER, redirect_filter_del(nl, nif->tap_ifindex),
             "removing the tap filter of");
        STEP(MADE_VETH_QDISC, ingress_qdisc(nl, nif->ifindex, false),
             "removing the ingress qdisc of");
        STEP(MADE_TAP_QDISC, ingress_qdisc(nl, nif->tap_ifindex, false),
             "removing the tap ingress qdisc of");
        STEP(MADE_TAP, link_del(nl, nif->tap_ifindex), "removing the tap of");
#undef STEP
        return first;
}

/* SHIM_NET_HOST_TAP: the veth pair ccp<hex> (here) / cch<hex> (the caller's namespace). */
static int make_pair(struct cc_nl *nl, const struct shim_net *net, struct shim_net_if *nif,
                     size_t i, int host_ns_fd, struct cc_error **err)
{
        int r = -EEXIST;
        for (unsigned salt = 0; r == -EEXIST && salt < 16; salt++) {
                snprintf(nif->tap_name, sizeof(nif->tap_name), "ccp%08x",
                         name_hash(net, i, salt, 'p'));
                snprintf(nif->host_veth, sizeof(nif->host_veth), "cch%08x",
                         name_hash(net, i, salt, 'h'));
                r = veth_pair_add(nl, nif->tap_name, nif->host_veth, host_ns_fd, nif->mtu);
        }
        if (r < 0)
                return cc_error_set(err, -r, "veth pair %s/%s for %s: %s", nif->tap_name,
                                    nif->host_veth, nif->name, cc_nl_strerror(nl, r));
        return 0;
}

static int setup_if(struct cc_nl *nl, struct shim_net *net, size_t i, unsigned flags,
                    int host_ns_fd, unsigned *made, struct cc_error **err)
{
        struct shim_net_if *nif = &net->ifs[i];
        int r = -EBUSY;
        if (flags & SHIM_NET_HOST_TAP) {
                r = make_pair(nl, net, nif, i, host_ns_fd, err);
        } else {
                /* tap<i>_cc, or the next free number when a device of that name exists. */
                for (unsigned n = (unsigned)i; r == -EBUSY && n < 4 * SHIM_NET_MAX_IFS; n++) {
                        snprintf(nif->tap_name, sizeof(nif->tap_name), "tap%u_cc",
                                 (unsigned short)n);
                        r = open_tap(nif->tap_name, flags, &nif->tap_fd, err);
                }
                if (r == -EBUSY)
                        return cc_error_set(err, EBUSY, "no free tap name for %s", nif->name);
        }
        if (r < 0)
                return r;
        *made |= MADE_TAP;
        nif->tap_ifindex = (int)if_nametoindex(nif->tap_name);
        if (nif->tap_ifindex == 0)
                return cc_error_set(err, errno, "tap %s has no index: %s", nif->tap_name,
                                    strerror(errno));
        r = tap_no_ipv6_addrgen(nl, nif->tap_ifindex);
        if (r < 0)
                return cc_error_set(err, -r, "IPv6 address generation off on %s: %s", nif->tap_name,
                                    cc_nl_strerror(nl, r));
        r = link_set(nl, nif->tap_ifindex, nif->mtu, true);
        if (r < 0)
                return cc_error_set(err, -r, "bringing up %s (mtu %u): %s", nif->tap_name, nif->mtu,
                                    cc_nl_strerror(nl, r));
        /* An ingress qdisc someone else put on the veth (a bandwidth plugin) is shared, and
         * left in place at teardown; only our own filter goes. */
        r = ingress_qdisc(nl, nif->ifindex, true);
        if (r < 0 && r != -EEXIST)
                return cc_error_set(err, -r, "ingress qdisc on %s: %s", nif->name,
                                    cc_nl_strerror(nl, r));
        if (r >= 0)
                *made |= MADE_VETH_QDISC;
        r = ingress_qdisc(nl, nif->tap_ifindex, true);
        if (r < 0)
                return cc_error_set(err, -r, "ingress qdisc on %s: %s", nif->tap_name,
                                    cc_nl_strerror(nl, r));
        *made |= MADE_TAP_QDISC;
        r = redirect_filter_add(nl, nif->tap_ifindex, nif->ifindex);
        if (r < 0)
                return cc_error_set(err, -r, "redirect filter %s -> %s: %s", nif->tap_name,
                                    nif->name, cc_nl_strerror(nl, r));
        *made |= MADE_TAP_FILTER;
        r = redirect_filter_add(nl, nif->ifindex, nif->tap_ifindex);
        if (r < 0)
                return cc_error_set(err, -r, "redirect filter %s -> %s: %s", nif->name,
                                    nif->tap_name, cc_nl_strerror(nl, r));
        *made |= MADE_VETH_FILTER;
        /* The veth must be up for frames to flow; CNI normally did it already. */
        r = link_set(nl, nif->ifindex, 0, true);
        if (r < 0)
                return cc_error_set(err, -r, "bringing up %s: %s", nif->name,
                                    cc_nl_strerror(nl, r));
        return 0;
}

/* --- running in the namespace --- */

enum op { OP_SETUP, OP_TEARDOWN };

struct ns_job {
        enum op op;
        struct shim_net *net;
        unsigned flags;
        int host_ns_fd; /* SHIM_NET_HOST_TAP: the caller's namespace, for the pair's far end */
        struct cc_error *err;
        int r;
};

/* A netlink socket in the calling thread's (the pod's) namespace. */
static int open_nl(struct cc_nl *nl, struct cc_error **err)
{
        int r = cc_nl_open(nl);
        if (r < 0)
                return cc_error_set(err, -r, "netlink: socket: %s", strerror(-r));
        return 0;
}

static int job_setup(struct ns_job *job)
{
        struct shim_net *net = job->net;
        _cleanup_cc_nl_ struct cc_nl nl = CC_NL_INIT;
        int r = open_nl(&nl, &job->err);
        if (r < 0)
                return r;
        r = read_namespace(&nl, net, &job->err);
        if (r < 0)
                return r;
        if (net->n_ifs > SHIM_NET_MAX_IFS)
                return cc_error_set(&job->err, E2BIG, "%zu interfaces in %s, at most %d",
                                    net->n_ifs, net->netns_path, SHIM_NET_MAX_IFS);
        net->made = calloc(net->n_ifs ? net->n_ifs : 1, sizeof(*net->made));
        if (!net->made)
                return cc_error_set(&job->err, ENOMEM, "out of memory");
        net->active = true;
        for (size_t i = 0; i < net->n_ifs; i++) {
                r = setup_if(&nl, net, i, job->flags, job->host_ns_fd, &net->made[i], &job->err);
                if (r < 0) {
                        /* Undo in this namespace now; the caller gets the setup error. */
                        for (size_t j = 0; j <= i; j++)
                                undo_if(&nl, &net->ifs[j], &net->made[j], NULL);
                        net->active = false;
                        return r;
                }
        }
        return 0;
}

static int job_teardown(struct ns_job *job)
{
        struct shim_net *net = job->net;
        _cleanup_cc_nl_ struct cc_nl nl = CC_NL_INIT;
        int r = open_nl(&nl, &job->err);
        if (r < 0)
                return r;
        int first = 0;
        for (size_t i = 0; i < net->n_ifs; i++) {
                r = undo_if(&nl, &net->ifs[i], &net->made[i], first ? NULL : &job->err);
                if (r < 0 && first == 0)
                        first = r;
        }
        net->active = false;
        return first;
}

static void *ns_thread(void *arg)
{
        struct ns_job *job = arg;
        if (setns(job->net->netns_fd, CLONE_NEWNET) < 0) {
                job->r = cc_error_set(&job->err, errno, "entering network namespace %s: %s",
                                      job->net->netns_path, strerror(errno));
                return NULL;
        }
        job->r = job->op == OP_SETUP ? job_setup(job) : job_teardown(job);
        return NULL;
}

/* Runs job in a new thread inside the pod namespace and waits for it. */
static int run_in_netns(struct ns_job *job, struct cc_error **err)
{
        pthread_t t;
        int r = pthread_create(&t, NULL, ns_thread, job);
        if (r != 0)
                return cc_error_set(err, r, "starting the netns thread: %s", strerror(r));
        pthread_join(t, NULL);
        if (job->r < 0) {
                if (err) {
                        cc_error_free(*err);
                        *err = job->err;
                } else {
                        cc_error_free(job->err);
                }
                return job->r;
        }
        cc_error_free(job->err);
        return 0;
}

/* --- SHIM_NET_HOST_TAP: the caller's namespace (run in the caller's thread) --- */

/* Creates the persistent tap cct<hex> for interface i (never one that exists). */
static int make_host_tap(struct shim_net *net, size_t i, struct cc_error **err)
{
        struct shim_net_if *nif = &net->ifs[i];
        int r = -EBUSY;
        _cleanup_close_ int fd = -1;
        for (unsigned salt = 0; r == -EBUSY && salt < 16; salt++) {
                snprintf(nif->host_tap, sizeof(nif->host_tap), "cct%08x",
                         name_hash(net, i, salt, 't'));
                r = open_tap(nif->host_tap, 0, &fd, err);
        }
        if (r == -EBUSY)
                return cc_error_set(err, EBUSY, "no free host tap name for %s", nif->name);
        if (r < 0)
                return r;
        net->made[i] |= MADE_HOST_TAP;
        /* Persistent: the tap outlives this fd until teardown deletes it; root keeps it (no
         * TUNSETOWNER), and libvirtd, root, attaches to it by name. */
        if (ioctl(fd, TUNSETPERSIST, 1) < 0)
                return cc_error_set(err, errno, "making %s persistent: %s", nif->host_tap,
                                    strerror(errno));
        return 0;
}

/* Brings up dev (index *ret) with mtu and no IPv6 address of its own. */
static int host_link_up(struct cc_nl *nl, const char *dev, unsigned mtu, int *ret,
                        struct cc_error **err)
{
        int ifindex = (int)if_nametoindex(dev);
        if (ifindex == 0)
                return cc_error_set(err, errno, "%s has no index: %s", dev, strerror(errno));
        int r = tap_no_ipv6_addrgen(nl, ifindex);
        if (r < 0)
                return cc_error_set(err, -r, "IPv6 address generation off on %s: %s", dev,
                                    cc_nl_strerror(nl, r));
        r = link_set(nl, ifindex, mtu, true);
        if (r < 0)
                return cc_error_set(err, -r, "bringing up %s (mtu %u): %s", dev, mtu,
                                    cc_nl_strerror(nl, r));
        *ret = ifindex;
        return 0;
}

/* The tap and the pair's caller end, mirrored both ways (both devices are new and ours). */
static int host_setup_if(struct cc_nl *nl, struct shim_net *net, size_t i, struct cc_error **err)
{
        struct shim_net_if *nif = &net->ifs[i];
        int tap = 0, veth = 0;
        int r = make_host_tap(net, i, err);
        if (r < 0)
                return r;
        if ((r = host_link_up(nl, nif->host_tap, nif->mtu, &tap, err)) < 0 ||
            (r = host_link_up(nl, nif->host_veth, nif->mtu, &veth, err)) < 0)
                return r;
        const char *dev[2] = {nif->host_veth, nif->host_tap};
        const int idx[2] = {veth, tap};
        for (int k = 0; k < 2; k++)
                if ((r = ingress_qdisc(nl, idx[k], true)) < 0)
                        return cc_error_set(err, -r, "ingress qdisc on %s: %s", dev[k],
                                            cc_nl_strerror(nl, r));
        for (int k = 0; k < 2; k++)
                if ((r = redirect_filter_add(nl, idx[k], idx[1 - k])) < 0)
                        return cc_error_set(err, -r, "redirect filter %s -> %s: %s", dev[k],
                                            dev[1 - k], cc_nl_strerror(nl, r));
        return 0;
}

/* Deletes the persistent taps (by name: after a crash the index may be someone else's). */
static int host_teardown(struct shim_net *net, struct cc_error **err)
{
        bool any = false;
        for (size_t i = 0; i < net->n_ifs; i++)
                any |= (net->made[i] & MADE_HOST_TAP) != 0;
        if (!any)
                return 0;
        _cleanup_cc_nl_ struct cc_nl nl = CC_NL_INIT;
        int r = open_nl(&nl, err);
        if (r < 0)
                return r;
        int first = 0;
        for (size_t i = 0; i < net->n_ifs; i++) {
                if (!(net->made[i] & MADE_HOST_TAP))
                        continue;
                r = link_del_name(&nl, net->ifs[i].host_tap);
                if (r < 0 && r != -ENODEV && r != -ENOENT && first == 0)
                        first = cc_error_set(err, -r, "removing the host tap %s of %s: %s",
                                             net->ifs[i].host_tap, net->ifs[i].name,
                                             cc_nl_strerror(&nl, r));
                net->made[i] &= ~(unsigned)MADE_HOST_TAP;
        }
        return first;
}

static int host_setup(struct shim_net *net, struct cc_error **err)
{
        _cleanup_cc_nl_ struct cc_nl nl = CC_NL_INIT;
        int r = open_nl(&nl, err);
        for (size_t i = 0; r >= 0 && i < net->n_ifs; i++)
                r = host_setup_if(&nl, net, i, err);
        return r;
}

/* True when fd is the same namespace as the one at path (nsfs inode and device). */
static bool same_ns(const struct stat *st, const char *path)
{
        struct stat other;
        return stat(path, &other) == 0 && other.st_dev == st->st_dev && other.st_ino == st->st_ino;
}

int shim_net_setup(const char *netns_path, unsigned flags, struct shim_net **ret,
                   struct cc_error **err)
{
        _cleanup_shim_net_ struct shim_net *net = calloc(1, sizeof(*net));
        if (!net)
                return cc_error_set(err, ENOMEM, "out of memory");
        net->netns_fd = -1;
        net->flags = flags;

        if (cc_isempty(netns_path)) {
                if (flags & SHIM_NET_CONFIDENTIAL)
                        return cc_error_set(err, EPERM,
                                            "host networking is not supported for confidential "
                                            "pods: the spec has no network namespace path, and a "
                                            "VM cannot share the host's network namespace");
                *ret = TAKE_PTR(net);
                return 0;
        }
        net->netns_path = strdup(netns_path);
        if (!net->netns_path)
                return cc_error_set(err, ENOMEM, "out of memory");
        net->netns_fd = open(netns_path, O_RDONLY | O_CLOEXEC);
        if (net->netns_fd < 0)
                return cc_error_set(err, errno, "network namespace %s: %s", netns_path,
                                    strerror(errno));
        int type = ioctl(net->netns_fd, NS_GET_NSTYPE);
        if (type >= 0 && type != CLONE_NEWNET)
                return cc_error_set(err, EINVAL, "%s is not a network namespace", netns_path);
        struct stat st;
        if (fstat(net->netns_fd, &st) < 0)
                return cc_error_set(err, errno, "stat %s: %s", netns_path, strerror(errno));
        /* The host's namespace (PID 1's), or the shim's own: mirroring those NICs into a VM
         * would hand the host's traffic to the guest. */
        if (same_ns(&st, "/proc/1/ns/net") || same_ns(&st, "/proc/self/ns/net")) {
                if (flags & SHIM_NET_CONFIDENTIAL)
                        return cc_error_set(err, EPERM,
                                            "host networking is not supported for confidential "
                                            "pods: %s is the host's network namespace",
                                            netns_path);
                cc_log_debug("network namespace %s is the host's; no pod network", netns_path);
                *ret = TAKE_PTR(net);
                return 0;
        }

        net->ns_dev = st.st_dev;
        net->ns_ino = st.st_ino;

        _cleanup_close_ int host_ns_fd = -1;
        if (flags & SHIM_NET_HOST_TAP) {
                /* This thread's namespace (the process's may differ in a test harness). */
                host_ns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
                if (host_ns_fd < 0)
                        return cc_error_set(err, errno, "/proc/thread-self/ns/net: %s",
                                            strerror(errno));
        }
        struct ns_job job = {.op = OP_SETUP, .net = net, .flags = flags, .host_ns_fd = host_ns_fd};
        int r = run_in_netns(&job, err);
        if (r < 0)
                return r;
        if ((flags & SHIM_NET_HOST_TAP) && (r = host_setup(net, err)) < 0) {
                shim_net_teardown(net, NULL);
                return r;
        }
        *ret = TAKE_PTR(net);
        return 0;
}

int shim_net_teardown(struct shim_net *net, struct cc_error **err)
{
        if (!net || !net->active)
                return 0;
        /* Close our tap fds first: the VMM holds its own duplicates, and the taps go with the
         * RTM_DELLINK below whoever holds them. */
        for (size_t i = 0; i < net->n_ifs; i++)
                net->ifs[i].tap_fd = cc_close(net->ifs[i].tap_fd);
        /* The caller's namespace first: the persistent taps outlive the pod namespace. */
        int first = net->made ? host_teardown(net, err) : 0;
        if (net->netns_fd < 0) {
                /* The pod namespace is gone, and with it everything setup made there. */
                for (size_t i = 0; net->made && i < net->n_ifs; i++)
                        net->made[i] = 0;
                net->active = false;
                return first;
        }
        struct ns_job job = {.op = OP_TEARDOWN, .net = net};
        int r = run_in_netns(&job, first < 0 ? NULL : err);
        return first < 0 ? first : r;
}

int shim_net_take_tap_fd(struct shim_net *net, size_t i)
{
        if (!net || i >= net->n_ifs)
                return -1;
        return TAKE_FD(net->ifs[i].tap_fd);
}

struct shim_net *shim_net_free(struct shim_net *net)
{
        if (!net)
                return NULL;
        for (size_t i = 0; i < net->n_ifs; i++) {
                cc_close(net->ifs[i].tap_fd);
                free(net->ifs[i].addrs);
        }
        free(net->ifs);
        free(net->routes);
        free(net->neighs);
        free(net->made);
        cc_close(net->netns_fd);
        free(net->netns_path);
        free(net);
        return NULL;
}
