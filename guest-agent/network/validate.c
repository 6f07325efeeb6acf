/*
 * Validation of the network requests the host sends. Nothing here touches the system, so the
 * unit tests and fuzzers can feed it anything. Every check says which field is wrong: the
 * message reaches the host's logs, and a silent refusal would be impossible to debug.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <linux/neighbour.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cc/error.h"

#include "guest-agent/network/agent-net.h"
#include "kata/agent.pb-c.h"
#include "kata/types.pb-c.h"

int agent_net_validate_ifname(const char *name, const char *what, struct cc_error **err)
{
        if (!name || !*name)
                return cc_error_set(err, EINVAL, "%s: empty interface name", what);
        size_t len = strlen(name);
        if (len >= IFNAMSIZ)
                return cc_error_set(err, EINVAL, "%s: interface name of %zu bytes (at most %d)",
                                    what, len, IFNAMSIZ - 1);
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return cc_error_set(err, EINVAL, "%s: interface name '%s'", what, name);
        for (const char *p = name; *p; p++)
                if (*p == '/' || *p == ':' || isspace((unsigned char)*p) ||
                    !isprint((unsigned char)*p))
                        return cc_error_set(err, EINVAL,
                                            "%s: interface name with a '/', ':', space or "
                                            "control character",
                                            what);
        return 0;
}

int agent_net_parse_mac(const char *s, unsigned char mac[6], struct cc_error **err)
{
        if (!s || strlen(s) != 17)
                return cc_error_set(err, EINVAL, "MAC address '%s' is not aa:bb:cc:dd:ee:ff",
                                    s ? s : "");
        for (int i = 0; i < 6; i++) {
                const char *p = s + i * 3;
                if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]) ||
                    (i < 5 && p[2] != ':'))
                        return cc_error_set(err, EINVAL,
                                            "MAC address '%s' is not aa:bb:cc:dd:ee:ff", s);
                char hex[3] = {p[0], p[1], 0};
                mac[i] = (unsigned char)strtoul(hex, NULL, 16);
        }
        return 0;
}

/* Decimal 0..max with no sign, space or leading garbage. */
static int parse_prefix(const char *s, unsigned max, unsigned *ret)
{
        if (!*s || strlen(s) > 3)
                return -EINVAL;
        unsigned v = 0;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned)(*p - '0');
        }
        if (v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* The address family of a proto IPFamily value, or -1 for an unknown one. */
static int af_of(int proto_family)
{
        return proto_family == TYPES__IPFAMILY__v4   ? AF_INET
               : proto_family == TYPES__IPFAMILY__v6 ? AF_INET6
                                                     : -1;
}

/* Parses a bare address of either family, strictly (inet_pton). */
static int parse_addr(const char *s, struct agent_net_ip *ip)
{
        memset(ip, 0, sizeof(*ip));
        if (!s || strlen(s) >= 46)
                return -EINVAL;
        if (inet_pton(AF_INET, s, ip->addr) == 1)
                ip->family = AF_INET;
        else if (inet_pton(AF_INET6, s, ip->addr) == 1)
                ip->family = AF_INET6;
        else
                return -EINVAL;
        ip->prefix_len = ip->family == AF_INET ? 32 : 128;
        return 0;
}

int agent_net_parse_ipaddress(const Types__IPAddress *ip, struct agent_net_ip *ret,
                              struct cc_error **err)
{
        if (!ip)
                return cc_error_set(err, EINVAL, "missing IP address");
        struct agent_net_ip p;
        if (parse_addr(ip->address, &p) < 0)
                return cc_error_set(err, EINVAL, "IP address '%s' does not parse",
                                    ip->address ? ip->address : "");
        int af = af_of(ip->family);
        if (af < 0)
                return cc_error_set(err, EINVAL, "IP address %s: unknown family %d", ip->address,
                                    ip->family);
        if (af != p.family)
                return cc_error_set(err, EINVAL, "IP address %s is not of family %s", ip->address,
                                    af == AF_INET ? "v4" : "v6");
        if (ip->mask && *ip->mask &&
            parse_prefix(ip->mask, p.family == AF_INET ? 32 : 128, &p.prefix_len) < 0)
                return cc_error_set(err, EINVAL,
                                    "IP address %s: mask '%s' is not a prefix length 0..%d",
                                    ip->address, ip->mask, p.family == AF_INET ? 32 : 128);
        *ret = p;
        return 0;
}

int agent_net_parse_dest(const char *s, int proto_family, struct agent_net_ip *ret,
                         struct cc_error **err)
{
        struct agent_net_ip p = {0};
        int af = proto_family < 0 ? AF_UNSPEC : af_of(proto_family);
        if (af < 0)
                return cc_error_set(err, EINVAL, "route: unknown family %d", proto_family);
        if (!s || !*s || strcmp(s, "default") == 0) {
                p.family = af == AF_UNSPEC ? AF_INET : af;
                *ret = p;
                return 0;
        }
        char buf[64];
        if (strlen(s) >= sizeof(buf))
                return cc_error_set(err, EINVAL, "route destination of %zu bytes", strlen(s));
        snprintf(buf, sizeof(buf), "%s", s);
        char *slash = strchr(buf, '/');
        if (slash)
                *slash = 0;
        if (parse_addr(buf, &p) < 0)
                return cc_error_set(err, EINVAL, "route destination '%s' does not parse", s);
        if (slash && parse_prefix(slash + 1, p.family == AF_INET ? 32 : 128, &p.prefix_len) < 0)
                return cc_error_set(err, EINVAL,
                                    "route destination '%s': prefix length not in 0..%d", s,
                                    p.family == AF_INET ? 32 : 128);
        if (af != AF_UNSPEC && af != p.family)
                return cc_error_set(err, EINVAL, "route destination '%s' is not of family %s", s,
                                    af == AF_INET ? "v4" : "v6");
        *ret = p;
        return 0;
}

int agent_net_validate_interface(const Types__Interface *itf, struct cc_error **err)
{
        if (!itf)
                return cc_error_set(err, EINVAL, "UpdateInterface without an interface");
        unsigned char mac[6];
        int r = agent_net_parse_mac(itf->hwaddr, mac, err);
        if (r < 0)
                return cc_error_wrap(err, EINVAL, "interface hwAddr");
        r = agent_net_validate_ifname(itf->name, "interface name", err);
        if (r < 0)
                return r;
        /* 68 is IPv4's minimum; 0 keeps the NIC's MTU. */
        if (itf->mtu != 0 && (itf->mtu < 68 || itf->mtu > 65535))
                return cc_error_set(err, EINVAL, "interface %s: MTU %llu not in 68..65535",
                                    itf->name, (unsigned long long)itf->mtu);
        if (itf->n_ipaddresses > AGENT_NET_MAX_ADDRS)
                return cc_error_set(err, EINVAL, "interface %s: %zu addresses (at most %d)",
                                    itf->name, itf->n_ipaddresses, AGENT_NET_MAX_ADDRS);
        for (size_t i = 0; i < itf->n_ipaddresses; i++) {
                struct agent_net_ip ip;
                r = agent_net_parse_ipaddress(itf->ipaddresses[i], &ip, err);
                if (r < 0)
                        return cc_error_wrap(err, EINVAL, "interface %s", itf->name);
                if (ip.family == AF_INET6 && itf->mtu != 0 && itf->mtu < 1280)
                        return cc_error_set(err, EINVAL,
                                            "interface %s: MTU %llu below IPv6's 1280 with an "
                                            "IPv6 address",
                                            itf->name, (unsigned long long)itf->mtu);
        }
        return 0;
}

int agent_net_validate_route(const Types__Route *rt, struct cc_error **err)
{
        if (!rt)
                return cc_error_set(err, EINVAL, "missing route");
        const char *name = rt->dest && *rt->dest ? rt->dest : "default";
        struct agent_net_ip dst, gw, src;
        int r = agent_net_parse_dest(rt->dest, (int)rt->family, &dst, err);
        if (r < 0)
                return r;
        if (rt->gateway && *rt->gateway) {
                if (parse_addr(rt->gateway, &gw) < 0)
                        return cc_error_set(err, EINVAL, "route %s: gateway '%s' does not parse",
                                            name, rt->gateway);
                if (gw.family != dst.family)
                        return cc_error_set(err, EINVAL, "route %s: gateway %s of another family",
                                            name, rt->gateway);
        } else if (!rt->device || !*rt->device) {
                return cc_error_set(err, EINVAL, "route %s: neither a gateway nor a device", name);
        }
        if (rt->device && *rt->device) {
                r = agent_net_validate_ifname(rt->device, "route device", err);
                if (r < 0)
                        return r;
        }
        if (rt->source && *rt->source) {
                if (parse_addr(rt->source, &src) < 0 || src.family != dst.family)
                        return cc_error_set(err, EINVAL,
                                            "route %s: source '%s' is not an address of the "
                                            "route's family",
                                            name, rt->source);
        }
        if (rt->scope > 255)
                return cc_error_set(err, EINVAL, "route %s: scope %u not in 0..255", name,
                                    rt->scope);
        return 0;
}

int agent_net_validate_neighbor(const Types__ARPNeighbor *ne, struct cc_error **err)
{
        if (!ne)
                return cc_error_set(err, EINVAL, "missing neighbour");
        struct agent_net_ip ip;
        int r = agent_net_parse_ipaddress(ne->toipaddress, &ip, err);
        if (r < 0)
                return cc_error_wrap(err, EINVAL, "neighbour");
        r = agent_net_validate_ifname(ne->device, "neighbour device", err);
        if (r < 0)
                return r;
        unsigned char mac[6];
        r = agent_net_parse_mac(ne->lladdr, mac, err);
        if (r < 0)
                return cc_error_wrap(err, EINVAL, "neighbour %s lladdr", ne->toipaddress->address);
        /* NUD_* and NTF_* are 8-bit (ndm_state is 16-bit, but only these bits mean anything). */
        if (ne->state < 0 || ne->state > 0xff || ne->flags < 0 || ne->flags > 0xff)
                return cc_error_set(err, EINVAL, "neighbour %s: state 0x%x / flags 0x%x",
                                    ne->toipaddress->address, (unsigned)ne->state,
                                    (unsigned)ne->flags);
        return 0;
}

int agent_net_validate_dns(const char *line, struct cc_error **err)
{
        if (!line || !*line)
                return cc_error_set(err, EINVAL, "empty DNS line");
        size_t len = strlen(line);
        if (len > AGENT_NET_MAX_DNS_LINE)
                return cc_error_set(err, EINVAL, "DNS line of %zu bytes (at most %d)", len,
                                    AGENT_NET_MAX_DNS_LINE);
        /* One line each: a newline would let the host inject other resolver directives. */
        for (const char *p = line; *p; p++)
                if (*p == '\n' || *p == '\r' || (!isprint((unsigned char)*p) && *p != '\t'))
                        return cc_error_set(err, EINVAL,
                                            "DNS line with a newline or control character");
        static const char *const keys[] = {"nameserver", "search", "options", "domain", "sortlist"};
        const char *key = NULL;
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                size_t kl = strlen(keys[i]);
                if (strncmp(line, keys[i], kl) == 0 && (line[kl] == ' ' || line[kl] == '\t')) {
                        key = keys[i];
                        break;
                }
        }
        if (!key)
                return cc_error_set(err, EINVAL,
                                    "DNS line '%.40s' is not nameserver, search, options, domain "
                                    "or sortlist",
                                    line);
        const char *val = line + strlen(key);
        while (*val == ' ' || *val == '\t')
                val++;
        if (!*val)
                return cc_error_set(err, EINVAL, "DNS line '%s' has no value", line);
        if (strcmp(key, "nameserver") == 0) {
                char addr[64];
                size_t n = strcspn(val, " \t");
                struct agent_net_ip ip;
                if (n >= sizeof(addr) || val[n + strspn(val + n, " \t")] != 0)
                        return cc_error_set(err, EINVAL, "nameserver '%.40s' is not one address",
                                            val);
                memcpy(addr, val, n);
                addr[n] = 0;
                if (parse_addr(addr, &ip) < 0)
                        return cc_error_set(err, EINVAL, "nameserver '%s' is not an IP address",
                                            addr);
        }
        return 0;
}
