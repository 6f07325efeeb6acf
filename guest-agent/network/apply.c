/*
 * UpdateInterface, UpdateRoutes, AddARPNeighbors, ListInterfaces and ListRoutes, applied with
 * rtnetlink in the current network namespace. Each request is validated as a whole first
 * (validate.c), so a hostile request changes nothing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/error.h"
#include "cc/macro.h"
#include "cc/netlink.h"

#include "guest-agent/network/agent-net.h"
#include "kata/agent.pb-c.h"
#include "kata/types.pb-c.h"

/* --- what the kernel has --- */

struct link {
        int index;
        char name[IFNAMSIZ];
        char kind[16];
        unsigned char mac[6];
        bool has_mac;
        unsigned mtu, flags, type;
};

struct addr {
        int index;
        struct agent_net_ip ip;
        unsigned scope;
};

struct route {
        struct agent_net_ip dst; /* prefix_len = rtm_dst_len */
        unsigned char gw[16], src[16];
        bool has_gw, has_src;
        int oif;
        unsigned scope, protocol;
};

struct state {
        struct link *links;
        size_t n_links;
        struct addr *addrs;
        size_t n_addrs;
        struct route *routes;
        size_t n_routes;
};

static void state_done(struct state *s)
{
        free(s->links);
        free(s->addrs);
        free(s->routes);
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
        struct state *s = data;
        const struct ifinfomsg *ifi = NLMSG_DATA(nlh);
        const struct rtattr *tb[IFLA_MAX + 1];
        int e = cc_nl_parse(nlh, sizeof(*ifi), tb, IFLA_MAX);
        if (e < 0)
                return e;
        if (!tb[IFLA_IFNAME])
                return 0;
        struct link *l = cc_array_grow(&s->links, &s->n_links, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->index = ifi->ifi_index;
        l->flags = ifi->ifi_flags;
        l->type = ifi->ifi_type;
        cc_nl_get_str(tb[IFLA_IFNAME], l->name, sizeof(l->name));
        if (tb[IFLA_ADDRESS] && RTA_PAYLOAD(tb[IFLA_ADDRESS]) == 6) {
                memcpy(l->mac, RTA_DATA(tb[IFLA_ADDRESS]), 6);
                l->has_mac = true;
        }
        if (tb[IFLA_MTU] && RTA_PAYLOAD(tb[IFLA_MTU]) == 4)
                memcpy(&l->mtu, RTA_DATA(tb[IFLA_MTU]), 4);
        if (tb[IFLA_LINKINFO]) {
                const struct rtattr *li[IFLA_INFO_MAX + 1];
                e = cc_nl_parse_nested(tb[IFLA_LINKINFO], li, IFLA_INFO_MAX);
                if (e < 0)
                        return e;
                if (li[IFLA_INFO_KIND])
                        cc_nl_get_str(li[IFLA_INFO_KIND], l->kind, sizeof(l->kind));
        }
        return 0;
}

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
        struct state *s = data;
        const struct ifaddrmsg *ifa = NLMSG_DATA(nlh);
        const struct rtattr *tb[IFA_MAX + 1];
        int e = cc_nl_parse(nlh, sizeof(*ifa), tb, IFA_MAX);
        if (e < 0)
                return e;
        const struct rtattr *a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
        size_t alen = ifa->ifa_family == AF_INET ? 4 : 16;
        if (!a || (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6) ||
            RTA_PAYLOAD(a) != alen)
                return 0;
        struct addr *ad = cc_array_grow(&s->addrs, &s->n_addrs, sizeof(*ad));
        if (!ad)
                return -ENOMEM;
        ad->index = (int)ifa->ifa_index;
        ad->scope = ifa->ifa_scope;
        ad->ip.family = ifa->ifa_family;
        ad->ip.prefix_len = ifa->ifa_prefixlen;
        memcpy(ad->ip.addr, RTA_DATA(a), alen);
        return 0;
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
        struct state *s = data;
        const struct rtmsg *rtm = NLMSG_DATA(nlh);
        const struct rtattr *tb[RTA_MAX + 1];
        int e = cc_nl_parse(nlh, sizeof(*rtm), tb, RTA_MAX);
        if (e < 0)
                return e;
        uint32_t table = rtm->rtm_table;
        if (tb[RTA_TABLE] && RTA_PAYLOAD(tb[RTA_TABLE]) == 4)
                memcpy(&table, RTA_DATA(tb[RTA_TABLE]), 4);
        size_t alen = rtm->rtm_family == AF_INET ? 4 : 16;
        if (table != RT_TABLE_MAIN || rtm->rtm_type != RTN_UNICAST ||
            (rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6))
                return 0;
        struct route *r = cc_array_grow(&s->routes, &s->n_routes, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->dst.family = rtm->rtm_family;
        r->dst.prefix_len = rtm->rtm_dst_len;
        r->scope = rtm->rtm_scope;
        r->protocol = rtm->rtm_protocol;
        if (tb[RTA_DST] && RTA_PAYLOAD(tb[RTA_DST]) == alen)
                memcpy(r->dst.addr, RTA_DATA(tb[RTA_DST]), alen);
        if (tb[RTA_GATEWAY] && RTA_PAYLOAD(tb[RTA_GATEWAY]) == alen) {
                memcpy(r->gw, RTA_DATA(tb[RTA_GATEWAY]), alen);
                r->has_gw = true;
        }
        if (tb[RTA_PREFSRC] && RTA_PAYLOAD(tb[RTA_PREFSRC]) == alen) {
                memcpy(r->src, RTA_DATA(tb[RTA_PREFSRC]), alen);
                r->has_src = true;
        }
        if (tb[RTA_OIF] && RTA_PAYLOAD(tb[RTA_OIF]) == 4)
                memcpy(&r->oif, RTA_DATA(tb[RTA_OIF]), 4);
        return 0;
}

static int dump(struct cc_nl *nl, uint16_t type, int family, size_t hdrlen, cc_nl_cb cb,
                struct state *s, const char *what, struct cc_error **err)
{
        int r;
        for (int tries = 0;; tries++) {
                size_t n_links = s->n_links, n_addrs = s->n_addrs, n_routes = s->n_routes;
                r = cc_nl_dump(nl, type, family, hdrlen, cb, s);
                if (r != -EINTR || tries == 2)
                        break;
                /* The tables changed during the dump (NLM_F_DUMP_INTR): read them again. */
                s->n_links = n_links;
                s->n_addrs = n_addrs;
                s->n_routes = n_routes;
        }
        if (r < 0)
                return cc_error_set(err, -r, "listing %s: %s", what, cc_nl_strerror(nl, r));
        return 0;
}

static int read_state(struct cc_nl *nl, struct state *s, bool addrs, bool routes,
                      struct cc_error **err)
{
        int r = dump(nl, RTM_GETLINK, AF_UNSPEC, sizeof(struct ifinfomsg), link_cb, s, "links",
                     err);
        if (r >= 0 && addrs)
                r = dump(nl, RTM_GETADDR, AF_UNSPEC, sizeof(struct ifaddrmsg), addr_cb, s,
                         "addresses", err);
        if (r >= 0 && routes)
                r = dump(nl, RTM_GETROUTE, AF_INET, sizeof(struct rtmsg), route_cb, s, "routes",
                         err);
        if (r >= 0 && routes)
                r = dump(nl, RTM_GETROUTE, AF_INET6, sizeof(struct rtmsg), route_cb, s, "routes",
                         err);
        return r;
}

static const struct link *link_by_name(const struct state *s, const char *name)
{
        for (size_t i = 0; i < s->n_links; i++)
                if (strcmp(s->links[i].name, name) == 0)
                        return &s->links[i];
        return NULL;
}

static const struct link *link_by_index(const struct state *s, int index)
{
        for (size_t i = 0; i < s->n_links; i++)
                if (s->links[i].index == index)
                        return &s->links[i];
        return NULL;
}

/* --- to the agent API's messages --- */

static void free_msg(void *p)
{
        ProtobufCMessage *m = *(ProtobufCMessage **)p;
        if (m)
                protobuf_c_message_free_unpacked(m, NULL);
}
#define _cleanup_msg_ __attribute__((cleanup(free_msg)))

static char *ntop(const struct agent_net_ip *ip)
{
        char buf[INET6_ADDRSTRLEN];
        inet_ntop(ip->family, ip->addr, buf, sizeof(buf));
        return strdup(buf);
}

static Types__IPFamily proto_family(int af)
{
        return af == AF_INET6 ? TYPES__IPFAMILY__v6 : TYPES__IPFAMILY__v4;
}

static int link_to_proto(const struct state *s, const struct link *l, Types__Interface **ret)
{
        _cleanup_msg_ Types__Interface *m = malloc(sizeof(*m));
        if (!m)
                return -ENOMEM;
        types__interface__init(m);
        char mac[18] = "";
        if (l->has_mac)
                snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", l->mac[0], l->mac[1],
                         l->mac[2], l->mac[3], l->mac[4], l->mac[5]);
        m->device = strdup(l->name);
        m->name = strdup(l->name);
        m->hwaddr = strdup(mac);
        m->pcipath = strdup("");
        m->type = strdup(l->kind);
        m->mtu = l->mtu;
        m->raw_flags = l->flags;
        if (!m->device || !m->name || !m->hwaddr || !m->pcipath || !m->type)
                return -ENOMEM;
        size_t n = 0;
        for (size_t i = 0; i < s->n_addrs; i++)
                n += s->addrs[i].index == l->index;
        if (n) {
                m->ipaddresses = calloc(n, sizeof(*m->ipaddresses));
                if (!m->ipaddresses)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < s->n_addrs; i++) {
                if (s->addrs[i].index != l->index)
                        continue;
                Types__IPAddress *ip = malloc(sizeof(*ip));
                if (!ip)
                        return -ENOMEM;
                types__ipaddress__init(ip);
                m->ipaddresses[m->n_ipaddresses++] = ip;
                char mask[8];
                snprintf(mask, sizeof(mask), "%u", s->addrs[i].ip.prefix_len);
                ip->family = proto_family(s->addrs[i].ip.family);
                ip->address = ntop(&s->addrs[i].ip);
                ip->mask = strdup(mask);
                if (!ip->address || !ip->mask)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(m);
        return 0;
}

static int routes_to_proto(const struct state *s, Grpc__Routes **ret)
{
        _cleanup_msg_ Grpc__Routes *m = malloc(sizeof(*m));
        if (!m)
                return -ENOMEM;
        grpc__routes__init(m);
        if (s->n_routes) {
                m->routes = calloc(s->n_routes, sizeof(*m->routes));
                if (!m->routes)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < s->n_routes; i++) {
                const struct route *r = &s->routes[i];
                Types__Route *rt = malloc(sizeof(*rt));
                if (!rt)
                        return -ENOMEM;
                types__route__init(rt);
                m->routes[m->n_routes++] = rt;
                char dest[INET6_ADDRSTRLEN + 8] = "", gw[INET6_ADDRSTRLEN] = "",
                                             src[INET6_ADDRSTRLEN] = "";
                if (r->dst.prefix_len > 0) {
                        char a[INET6_ADDRSTRLEN];
                        inet_ntop(r->dst.family, r->dst.addr, a, sizeof(a));
                        snprintf(dest, sizeof(dest), "%s/%u", a, r->dst.prefix_len);
                }
                if (r->has_gw)
                        inet_ntop(r->dst.family, r->gw, gw, sizeof(gw));
                if (r->has_src)
                        inet_ntop(r->dst.family, r->src, src, sizeof(src));
                const struct link *l = link_by_index(s, r->oif);
                rt->dest = strdup(dest);
                rt->gateway = strdup(gw);
                rt->source = strdup(src);
                rt->device = strdup(l ? l->name : "");
                rt->scope = r->scope;
                rt->family = proto_family(r->dst.family);
                if (!rt->dest || !rt->gateway || !rt->source || !rt->device)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(m);
        return 0;
}

/* --- changes --- */

static int link_change(struct cc_nl *nl, int index, const char *name, unsigned mtu, int up)
{
        uint32_t buf[1024];
        struct cc_nl_msg msg;
        struct ifinfomsg *ifi =
                cc_nl_msg_init(&msg, buf, sizeof(buf), RTM_NEWLINK, 0, sizeof(*ifi));
        ifi->ifi_family = AF_UNSPEC;
        ifi->ifi_index = index;
        if (up >= 0) {
                ifi->ifi_change = IFF_UP;
                ifi->ifi_flags = up ? IFF_UP : 0;
        }
        if (name)
                cc_nl_put_strz(&msg, IFLA_IFNAME, name);
        if (mtu)
                cc_nl_put_u32(&msg, IFLA_MTU, mtu);
        return cc_nl_talk(nl, &msg, NULL, NULL);
}

static int addr_change(struct cc_nl *nl, int index, const struct agent_net_ip *ip, bool add)
{
        uint32_t buf[1024];
        struct cc_nl_msg msg;
        struct ifaddrmsg *ifa =
                cc_nl_msg_init(&msg, buf, sizeof(buf), add ? RTM_NEWADDR : RTM_DELADDR,
                               add ? NLM_F_CREATE | NLM_F_REPLACE : 0, sizeof(*ifa));
        size_t alen = ip->family == AF_INET ? 4 : 16;
        ifa->ifa_family = (unsigned char)ip->family;
        ifa->ifa_prefixlen = (unsigned char)ip->prefix_len;
        ifa->ifa_index = (unsigned)index;
        /* The host assigned the address and checked it; duplicate address detection would only
         * keep it tentative (unusable as a source) for a second after boot. */
        if (ip->family == AF_INET6)
                ifa->ifa_flags = IFA_F_NODAD;
        cc_nl_put(&msg, IFA_LOCAL, ip->addr, alen);
        cc_nl_put(&msg, IFA_ADDRESS, ip->addr, alen);
        return cc_nl_talk(nl, &msg, NULL, NULL);
}

static bool same_ip(const struct agent_net_ip *a, const struct agent_net_ip *b)
{
        return a->family == b->family && a->prefix_len == b->prefix_len &&
               memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16) == 0;
}

static bool is_v6_linklocal(const struct agent_net_ip *ip)
{
        return ip->family == AF_INET6 && ip->addr[0] == 0xfe && (ip->addr[1] & 0xc0) == 0x80;
}

static int open_nl(struct cc_nl *nl, struct cc_error **err)
{
        int r = cc_nl_open(nl);
        if (r < 0)
                return cc_error_set(err, -r, "netlink socket: %s", strerror(-r));
        return 0;
}

static void state_donep(struct state *s)
{
        state_done(s);
}
#define _cleanup_state_ __attribute__((cleanup(state_donep)))

int agent_net_update_interface(const Types__Interface *req, Types__Interface **ret,
                               struct cc_error **err)
{
        int r = agent_net_validate_interface(req, err);
        if (r < 0)
                return r;
        unsigned char mac[6];
        agent_net_parse_mac(req->hwaddr, mac, NULL);
        struct agent_net_ip want[AGENT_NET_MAX_ADDRS];
        for (size_t i = 0; i < req->n_ipaddresses; i++)
                agent_net_parse_ipaddress(req->ipaddresses[i], &want[i], NULL);

        _cleanup_cc_nl_ struct cc_nl nl = CC_NL_INIT;
        if ((r = open_nl(&nl, err)) < 0)
                return r;
        _cleanup_state_ struct state s = {0};
        if ((r = read_state(&nl, &s, true, false, err)) < 0)
                return r;
        const struct link *l = NULL;
        for (size_t i = 0; i < s.n_links && !l; i++)
                if (s.links[i].has_mac && s.links[i].type == ARPHRD_ETHER &&
                    memcmp(s.links[i].mac, mac, 6) == 0)
                        l = &s.links[i];
        if (!l)
                return cc_error_set(err, ENOENT, "no interface with MAC %s", req->hwaddr);
        int index = l->index;

        if (strcmp(l->name, req->name) != 0) {
                const struct link *other = link_by_name(&s, req->name);
                if (other)
                        return cc_error_set(err, EEXIST,
                                            "cannot rename %s to %s: another interface has "
                                            "that name",
                                            l->name, req->name);
                /* The kernel renames only an interface that is down. */
                r = link_change(&nl, index, NULL, 0, 0);
                if (r >= 0)
                        r = link_change(&nl, index, req->name, 0, -1);
                if (r < 0)
                        return cc_error_set(err, -r, "renaming %s to %s: %s", l->name, req->name,
                                            cc_nl_strerror(&nl, r));
        }
        if (req->mtu && req->mtu != l->mtu) {
                r = link_change(&nl, index, NULL, (unsigned)req->mtu, -1);
                if (r < 0)
                        return cc_error_set(err, -r, "MTU %llu on %s: %s",
                                            (unsigned long long)req->mtu, req->name,
                                            cc_nl_strerror(&nl, r));
        }
        /* The interface ends with exactly the requested addresses (its IPv6 link-local address
         * aside, which the kernel derives from the MAC). */
        for (size_t i = 0; i < s.n_addrs; i++) {
                const struct addr *a = &s.addrs[i];
                bool keep = is_v6_linklocal(&a->ip);
                for (size_t j = 0; j < req->n_ipaddresses && !keep; j++)
                        keep = same_ip(&a->ip, &want[j]);
                if (a->index != index || keep)
                        continue;
                r = addr_change(&nl, index, &a->ip, false);
                if (r < 0 && r != -EADDRNOTAVAIL)
                        return cc_error_set(err, -r, "removing an old address of %s: %s", req->name,
                                            cc_nl_strerror(&nl, r));
        }
        for (size_t j = 0; j < req->n_ipaddresses; j++) {
                r = addr_change(&nl, index, &want[j], true);
                if (r < 0)
                        return cc_error_set(err, -r, "adding %s/%u to %s: %s",
                                            req->ipaddresses[j]->address, want[j].prefix_len,
                                            req->name, cc_nl_strerror(&nl, r));
        }
        r = link_change(&nl, index, NULL, 0, 1);
        if (r < 0)
                return cc_error_set(err, -r, "bringing up %s: %s", req->name,
                                    cc_nl_strerror(&nl, r));

        if (!ret)
                return 0;
        _cleanup_state_ struct state now = {0};
        if ((r = read_state(&nl, &now, true, false, err)) < 0)
                return r;
        l = link_by_index(&now, index);
        if (!l)
                return cc_error_set(err, ENODEV, "interface %s vanished", req->name);
        r = link_to_proto(&now, l, ret);
        if (r < 0)
                return cc_error_set(err, -r, "out of memory");
        return 0;
}

static int route_add(struct cc_nl *nl, const Types__Route *rt, int oif)
{
        struct agent_net_ip dst, gw, src;
        agent_net_parse_dest(rt->dest, (int)rt->family, &dst, NULL);
        uint32_t buf[1024];
        struct cc_nl_msg msg;
        struct rtmsg *rtm = cc_nl_msg_init(&msg, buf, sizeof(buf), RTM_NEWROUTE,
                                           NLM_F_CREATE | NLM_F_REPLACE, sizeof(*rtm));
        size_t alen = dst.family == AF_INET ? 4 : 16;
        rtm->rtm_family = (unsigned char)dst.family;
        rtm->rtm_dst_len = (unsigned char)dst.prefix_len;
        rtm->rtm_table = RT_TABLE_MAIN;
        rtm->rtm_protocol = RTPROT_BOOT;
        rtm->rtm_type = RTN_UNICAST;
        rtm->rtm_scope = (unsigned char)rt->scope;
        if (dst.prefix_len > 0)
                cc_nl_put(&msg, RTA_DST, dst.addr, alen);
        if (rt->gateway && *rt->gateway) {
                inet_pton(dst.family, rt->gateway, gw.addr);
                cc_nl_put(&msg, RTA_GATEWAY, gw.addr, alen);
        }
        if (rt->source && *rt->source) {
                inet_pton(dst.family, rt->source, src.addr);
                cc_nl_put(&msg, RTA_PREFSRC, src.addr, alen);
        }
        if (oif > 0)
                cc_nl_put_u32(&msg, RTA_OIF, (uint32_t)oif);
        return cc_nl_talk(nl, &msg, NULL, NULL);
}

/* Puts back a route read from the kernel, with its own protocol and scope. */
static int route_restore(struct cc_nl *nl, const struct route *r)
{
        uint32_t buf[1024];
        struct cc_nl_msg msg;
        struct rtmsg *rtm = cc_nl_msg_init(&msg, buf, sizeof(buf), RTM_NEWROUTE,
                                           NLM_F_CREATE | NLM_F_REPLACE, sizeof(*rtm));
        size_t alen = r->dst.family == AF_INET ? 4 : 16;
        rtm->rtm_family = (unsigned char)r->dst.family;
        rtm->rtm_dst_len = (unsigned char)r->dst.prefix_len;
        rtm->rtm_table = RT_TABLE_MAIN;
        rtm->rtm_protocol = (unsigned char)r->protocol;
        rtm->rtm_type = RTN_UNICAST;
        rtm->rtm_scope = (unsigned char)r->scope;
        if (r->dst.prefix_len > 0)
                cc_nl_put(&msg, RTA_DST, r->dst.addr, alen);
        if (r->has_gw)
                cc_nl_put(&msg, RTA_GATEWAY, r->gw, alen);
        if (r->has_src)
                cc_nl_put(&msg, RTA_PREFSRC, r->src, alen);
        cc_nl_put_u32(&msg, RTA_OIF, (uint32_t)r->oif);
        return cc_nl_talk(nl, &msg, NULL, NULL);
}

static int route_del(struct cc_nl *nl, const struct route *r)
{
        uint32_t buf[1024];
        struct cc_nl_msg msg;
        struct rtmsg *rtm = cc_nl_msg_init(&msg, buf, sizeof(buf), RTM_DELROUTE, 0, sizeof(*rtm));
        size_t alen = r->dst.family == AF_INET ? 4 : 16;
        rtm->rtm_family = (unsigned char)r->dst.family;
        rtm->rtm_dst_len = (unsigned char)r->dst.prefix_len;
        rtm->rtm_table = RT_TABLE_MAIN;
        rtm->rtm_scope = RT_SCOPE_NOWHERE; /* any */
        if (r->dst.prefix_len > 0)
                cc_nl_put(&msg, RTA_DST, r->dst.addr, alen);
        if (r->has_gw)
                cc_nl_put(&msg, RTA_GATEWAY, r->gw, alen);
        cc_nl_put_u32(&msg, RTA_OIF, (uint32_t)r->oif);
        return cc_nl_talk(nl, &msg, NULL, NULL);
}

int agent_net_update_routes(const Grpc__Routes *req, Grpc__Routes **ret, struct cc_error **err)
{
        size_t n = req ? req->n_routes : 0;
        if (n > AGENT_NET_MAX_ROUTES)
                return cc_error_set(err, EINVAL, "%zu routes (at most %d)", n,
                                    AGENT_NET_MAX_ROUTES);
        for (size_t i = 0; i < n; i++) {
                int r = agent_net_validate_route(req->routes[i], err);
                if (r < 0)
                        return cc_error_wrap(err, EINVAL, "route %zu", i);
        }
        _cleanup_cc_nl_ struct cc_nl nl = CC_NL_INIT;
        int r = open_nl(&nl, err);
        if (r < 0)
                return r;
        _cleanup_state_ struct state s = {0};
        if ((r = read_state(&nl, &s, false, true, err)) < 0)
                return r;
        _cleanup_free_ int *oif = calloc(n ? n : 1, sizeof(*oif));
        _cleanup_free_ bool *named = calloc(s.n_links ? s.n_links : 1, sizeof(*named));
        if (!oif || !named)
                return cc_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
                const char *dev = req->routes[i]->device;
                if (!dev || !*dev)
                        continue;
                const struct link *l = link_by_name(&s, dev);
                if (!l)
                        return cc_error_set(err, ENODEV, "route %s: no interface %s",
                                            req->routes[i]->dest, dev);
                oif[i] = l->index;
                named[l - s.links] = true;
        }
        /* The routes of the named interfaces become exactly the requested ones; those the
         * kernel made for the interfaces' own addresses stay (a request may repeat them). */
        _cleanup_free_ bool *removed = calloc(s.n_routes ? s.n_routes : 1, sizeof(*removed));
        if (!removed)
                return cc_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < s.n_routes && r >= 0; i++) {
                const struct link *l = link_by_index(&s, s.routes[i].oif);
                if (!l || !named[l - s.links] || s.routes[i].protocol == RTPROT_KERNEL)
                        continue;
                r = route_del(&nl, &s.routes[i]);
                if (r == -ESRCH)
                        r = 0;
                else if (r < 0)
                        cc_error_set(err, -r, "removing an old route of %s: %s", l->name,
                                     cc_nl_strerror(&nl, r));
                else
                        removed[i] = true;
        }
        /* Routes without a gateway first: a gateway must be reachable when its route goes in. */
        for (int pass = 0; pass < 2 && r >= 0; pass++) {
                for (size_t i = 0; i < n && r >= 0; i++) {
                        const Types__Route *rt = req->routes[i];
                        bool has_gw = rt->gateway && *rt->gateway;
                        if (has_gw != (pass == 1))
                                continue;
                        r = route_add(&nl, rt, oif[i]);
                        if (r < 0)
                                cc_error_set(err, -r, "adding route '%s' via '%s' dev %s: %s",
                                             rt->dest, rt->gateway, rt->device,
                                             cc_nl_strerror(&nl, r));
                }
        }
        if (r < 0) {
                /* A refused request must not leave the guest without its old routes (its
                 * default route, say): put back what was removed, device routes first. Best
                 * effort; the request's error is what the host gets. */
                for (int pass = 0; pass < 2; pass++)
                        for (size_t i = 0; i < s.n_routes; i++)
                                if (removed[i] && s.routes[i].has_gw == (pass == 1))
                                        (void)route_restore(&nl, &s.routes[i]);
                return r;
        }
        return ret ? agent_net_list_routes(ret, err) : 0;
}

int agent_net_add_neighbors(const Grpc__ARPNeighbors *req, struct cc_error **err)
{
        size_t n = req ? req->n_arpneighbors : 0;
        if (n > AGENT_NET_MAX_NEIGHS)
                return cc_error_set(err, EINVAL, "%zu neighbours (at most %d)", n,
                                    AGENT_NET_MAX_NEIGHS);
        for (size_t i = 0; i < n; i++) {
                int r = agent_net_validate_neighbor(req->arpneighbors[i], err);
                if (r < 0)
                        return r;
        }
        if (n == 0)
                return 0;
        _cleanup_cc_nl_ struct cc_nl nl = CC_NL_INIT;
        int r = open_nl(&nl, err);
        if (r < 0)
                return r;
        _cleanup_state_ struct state s = {0};
        if ((r = read_state(&nl, &s, false, false, err)) < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                const Types__ARPNeighbor *ne = req->arpneighbors[i];
                const struct link *l = link_by_name(&s, ne->device);
                if (!l)
                        return cc_error_set(err, ENODEV, "neighbour %s: no interface %s",
                                            ne->toipaddress->address, ne->device);
                struct agent_net_ip ip;
                unsigned char mac[6];
                agent_net_parse_ipaddress(ne->toipaddress, &ip, NULL);
                agent_net_parse_mac(ne->lladdr, mac, NULL);
                uint32_t buf[1024];
                struct cc_nl_msg msg;
                struct ndmsg *nd = cc_nl_msg_init(&msg, buf, sizeof(buf), RTM_NEWNEIGH,
                                                  NLM_F_CREATE | NLM_F_REPLACE, sizeof(*nd));
                nd->ndm_family = (unsigned char)ip.family;
                nd->ndm_ifindex = l->index;
                nd->ndm_state = (uint16_t)(ne->state ? ne->state : NUD_PERMANENT);
                nd->ndm_flags = (uint8_t)ne->flags;
                cc_nl_put(&msg, NDA_DST, ip.addr, ip.family == AF_INET ? 4 : 16);
                cc_nl_put(&msg, NDA_LLADDR, mac, 6);
                r = cc_nl_talk(&nl, &msg, NULL, NULL);
                if (r < 0)
                        return cc_error_set(err, -r, "adding neighbour %s on %s: %s",
                                            ne->toipaddress->address, ne->device,
                                            cc_nl_strerror(&nl, r));
        }
        return 0;
}

/* The guest's links, with their addresses or the routes, read on a netlink socket of its own. */
static int snapshot(struct state *s, bool addrs, bool routes, struct cc_error **err)
{
        _cleanup_cc_nl_ struct cc_nl nl = CC_NL_INIT;
        int r = open_nl(&nl, err);
        if (r < 0)
                return r;
        return read_state(&nl, s, addrs, routes, err);
}

int agent_net_list_interfaces(Grpc__Interfaces **ret, struct cc_error **err)
{
        _cleanup_state_ struct state s = {0};
        int r = snapshot(&s, true, false, err);
        if (r < 0)
                return r;
        _cleanup_msg_ Grpc__Interfaces *m = malloc(sizeof(*m));
        if (!m)
                return cc_error_set(err, ENOMEM, "out of memory");
        grpc__interfaces__init(m);
        if (s.n_links) {
                m->interfaces = calloc(s.n_links, sizeof(*m->interfaces));
                if (!m->interfaces)
                        return cc_error_set(err, ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < s.n_links; i++) {
                if (s.links[i].type == ARPHRD_LOOPBACK)
                        continue;
                r = link_to_proto(&s, &s.links[i], &m->interfaces[m->n_interfaces]);
                if (r < 0)
                        return cc_error_set(err, -r, "out of memory");
                m->n_interfaces++;
        }
        *ret = TAKE_PTR(m);
        return 0;
}

int agent_net_list_routes(Grpc__Routes **ret, struct cc_error **err)
{
        _cleanup_state_ struct state s = {0};
        int r = snapshot(&s, false, true, err);
        if (r < 0)
                return r;
        r = routes_to_proto(&s, ret);
        if (r < 0)
                return cc_error_set(err, -r, "out of memory");
        return 0;
}
