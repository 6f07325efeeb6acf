/*
 * From what shim_net_setup() read to the agent API's messages (UpdateInterface, UpdateRoutes,
 * AddARPNeighbors), and the network namespace path of an OCI spec.
 *
 * Kata's conventions, which the agent parses: IPAddress.mask is the prefix length in decimal;
 * Route.dest is "addr/len", or "" for the default route; the guest NIC is found by hwAddr and
 * renamed to name.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cc/cleanup.h"
#include "cc/error.h"

#include "hypervisor/hv.h"
#include "kata/agent.pb-c.h"
#include "kata/types.pb-c.h"
#include "shim/network/shim-net.h"

void shim_net_format_mac(const unsigned char *mac, char *out)
{
        snprintf(out, SHIM_NET_MAC_MAX, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
                 mac[3], mac[4], mac[5]);
}

static const char *const model_names[_SHIM_NET_MODEL_MAX] = {
        [SHIM_NET_MODEL_TCFILTER] = "tcfilter",
        [SHIM_NET_MODEL_NONE] = "none",
        [SHIM_NET_MODEL_USER] = "user",
};

int shim_net_model_from_string(const char *s, enum shim_net_model *ret, struct cc_error **err)
{
        if (!s || !*s) {
                *ret = SHIM_NET_MODEL_TCFILTER;
                return 0;
        }
        for (int i = 0; i < _SHIM_NET_MODEL_MAX; i++)
                if (strcmp(s, model_names[i]) == 0) {
                        *ret = (enum shim_net_model)i;
                        return 0;
                }
        return cc_error_set(err, EINVAL, "network_model '%s' is not one of tcfilter, none, user",
                            s);
}

const char *shim_net_model_to_string(enum shim_net_model m)
{
        return (unsigned)m < _SHIM_NET_MODEL_MAX ? model_names[m] : "unknown";
}

int shim_net_hv_nets(const struct shim_net *net, struct hv_net **ret, size_t *ret_n,
                     struct cc_error **err)
{
        *ret = NULL;
        *ret_n = 0;
        if (!net || net->n_ifs == 0)
                return 0;
        struct hv_net *nets = calloc(net->n_ifs, sizeof(*nets));
        if (!nets)
                return cc_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < net->n_ifs; i++) {
                if (net->flags & SHIM_NET_HOST_TAP) {
                        /* libvirtd opens the persistent tap by name; no fd to hand over. */
                        if (cc_isempty(net->ifs[i].host_tap)) {
                                free(nets);
                                return cc_error_set(err, ENODEV, "%s has no host tap",
                                                    net->ifs[i].name);
                        }
                        nets[i].tap_fd = -1;
                        nets[i].tap_name = net->ifs[i].host_tap;
                        nets[i].mac = net->ifs[i].mac;
                        continue;
                }
                if (net->ifs[i].tap_fd < 0) {
                        free(nets);
                        return cc_error_set(err, EBADF, "the tap of %s is closed or taken",
                                            net->ifs[i].name);
                }
                nets[i].tap_fd = net->ifs[i].tap_fd;
                nets[i].mac = net->ifs[i].mac;
        }
        *ret = nets;
        *ret_n = net->n_ifs;
        return 0;
}

int shim_net_spec_netns(struct json_object *spec, const char **ret, struct cc_error **err)
{
        struct json_object *linux_obj, *nss;
        *ret = NULL;
        if (!spec || !json_object_object_get_ex(spec, "linux", &linux_obj) ||
            !json_object_object_get_ex(linux_obj, "namespaces", &nss))
                return 0;
        if (!json_object_is_type(nss, json_type_array))
                return cc_error_set(err, EINVAL, "linux.namespaces is not an array");
        for (size_t i = 0; i < json_object_array_length(nss); i++) {
                struct json_object *ns = json_object_array_get_idx(nss, i), *type, *path;
                if (!json_object_is_type(ns, json_type_object) ||
                    !json_object_object_get_ex(ns, "type", &type))
                        return cc_error_set(err, EINVAL, "linux.namespaces[%zu] has no type", i);
                if (strcmp(json_object_get_string(type), "network") != 0)
                        continue;
                if (json_object_object_get_ex(ns, "path", &path)) {
                        if (!json_object_is_type(path, json_type_string))
                                return cc_error_set(err, EINVAL,
                                                    "the network namespace path is not a string");
                        *ret = json_object_get_string(path);
                }
                return 0;
        }
        return 0;
}

/* strdup that never returns NULL for a NULL input (protobuf-c wants every string set). */
static char *dup_str(const char *s)
{
        return strdup(s ? s : "");
}

static Types__IPFamily family_of(int af)
{
        return af == AF_INET6 ? TYPES__IPFAMILY__v6 : TYPES__IPFAMILY__v4;
}

static Types__IPAddress *ipaddress_new(int family, const char *addr, const char *mask)
{
        Types__IPAddress *ip = malloc(sizeof(*ip));
        if (!ip)
                return NULL;
        types__ipaddress__init(ip);
        ip->family = family_of(family);
        ip->address = dup_str(addr);
        ip->mask = dup_str(mask);
        if (!ip->address || !ip->mask) {
                protobuf_c_message_free_unpacked(&ip->base, NULL);
                return NULL;
        }
        return ip;
}

static void free_msg(void *p)
{
        ProtobufCMessage *m = *(ProtobufCMessage **)p;
        if (m)
                protobuf_c_message_free_unpacked(m, NULL);
}
#define _cleanup_msg_ __attribute__((cleanup(free_msg)))

int shim_net_interface_to_proto(const struct shim_net_if *nif, Types__Interface **ret,
                                struct cc_error **err)
{
        _cleanup_msg_ Types__Interface *m = malloc(sizeof(*m));
        if (!m)
                return cc_error_set(err, ENOMEM, "out of memory");
        types__interface__init(m);
        m->device = dup_str(nif->name);
        m->name = dup_str(nif->name);
        m->hwaddr = dup_str(nif->mac);
        m->pcipath = dup_str("");
        m->type = dup_str(nif->kind);
        m->mtu = nif->mtu;
        m->raw_flags = nif->raw_flags;
        if (!m->device || !m->name || !m->hwaddr || !m->pcipath || !m->type)
                return cc_error_set(err, ENOMEM, "out of memory");
        if (nif->n_addrs) {
                m->ipaddresses = calloc(nif->n_addrs, sizeof(*m->ipaddresses));
                if (!m->ipaddresses)
                        return cc_error_set(err, ENOMEM, "out of memory");
                for (size_t i = 0; i < nif->n_addrs; i++) {
                        char mask[8];
                        snprintf(mask, sizeof(mask), "%u", nif->addrs[i].prefix_len);
                        m->ipaddresses[i] =
                                ipaddress_new(nif->addrs[i].family, nif->addrs[i].addr, mask);
                        if (!m->ipaddresses[i])
                                return cc_error_set(err, ENOMEM, "out of memory");
                        m->n_ipaddresses++;
                }
        }
        *ret = TAKE_PTR(m);
        return 0;
}

int shim_net_routes_to_proto(const struct shim_net *net, Grpc__Routes **ret, struct cc_error **err)
{
        _cleanup_msg_ Grpc__Routes *m = malloc(sizeof(*m));
        if (!m)
                return cc_error_set(err, ENOMEM, "out of memory");
        grpc__routes__init(m);
        if (net->n_routes) {
                m->routes = calloc(net->n_routes, sizeof(*m->routes));
                if (!m->routes)
                        return cc_error_set(err, ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < net->n_routes; i++) {
                const struct shim_net_route *r = &net->routes[i];
                Types__Route *rt = malloc(sizeof(*rt));
                if (!rt)
                        return cc_error_set(err, ENOMEM, "out of memory");
                types__route__init(rt);
                m->routes[m->n_routes++] = rt;
                char dest[SHIM_NET_ADDR_MAX + 8] = "";
                if (r->dest[0])
                        snprintf(dest, sizeof(dest), "%s/%u", r->dest, r->dest_len);
                rt->dest = dup_str(dest);
                rt->gateway = dup_str(r->gateway);
                rt->device = dup_str(r->device);
                rt->source = dup_str(r->source);
                rt->scope = r->scope;
                rt->family = family_of(r->family);
                if (!rt->dest || !rt->gateway || !rt->device || !rt->source)
                        return cc_error_set(err, ENOMEM, "out of memory");
        }
        *ret = TAKE_PTR(m);
        return 0;
}

int shim_net_neighbors_to_proto(const struct shim_net *net, Grpc__ARPNeighbors **ret,
                                struct cc_error **err)
{
        _cleanup_msg_ Grpc__ARPNeighbors *m = malloc(sizeof(*m));
        if (!m)
                return cc_error_set(err, ENOMEM, "out of memory");
        grpc__arpneighbors__init(m);
        if (net->n_neighs) {
                m->arpneighbors = calloc(net->n_neighs, sizeof(*m->arpneighbors));
                if (!m->arpneighbors)
                        return cc_error_set(err, ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < net->n_neighs; i++) {
                const struct shim_net_neigh *n = &net->neighs[i];
                Types__ARPNeighbor *ne = malloc(sizeof(*ne));
                if (!ne)
                        return cc_error_set(err, ENOMEM, "out of memory");
                types__arpneighbor__init(ne);
                m->arpneighbors[m->n_arpneighbors++] = ne;
                ne->device = dup_str(n->device);
                ne->lladdr = dup_str(n->lladdr);
                ne->state = n->state;
                ne->flags = n->flags;
                ne->toipaddress = ipaddress_new(n->family, n->addr, "");
                if (!ne->device || !ne->lladdr || !ne->toipaddress)
                        return cc_error_set(err, ENOMEM, "out of memory");
        }
        *ret = TAKE_PTR(m);
        return 0;
}
