/*
 * The pod network of the sandbox (issue 8): the glue between the sandbox's start and stop and
 * libshimnet (shim/network/, Kata's tcfilter model).
 *
 * network_model tcfilter: the VM joins the network namespace named in the sandbox spec
 * (linux.namespaces "network" path, what CNI made): libshimnet creates a tap per interface
 * there, mirrors it with the veth through tc, and the VMM gets the tap fds with the veth's MAC.
 * Once the agent answers, it gets the interfaces, routes and permanent neighbours (Kata's order:
 * UpdateInterface per interface, UpdateRoutes, AddARPNeighbors), then CreateSandbox carries the
 * pod's resolver lines. A spec without a network namespace entry shares the host's namespace:
 * refused for a TEE profile, and no NIC otherwise (the host's NICs are never mirrored). A
 * network entry without a path (a new, empty namespace: `ctr run` without --with-ns) gives no
 * NIC either. network_model none: no NIC; user: QEMU's slirp (development only), the guest NIC
 * configured as slirp expects (10.0.2.15/24, default via 10.0.2.2, the host's loopback).
 *
 * What setup created is written to <run_dir>/network, so that `shim delete` after a crash can
 * remove the tc filters (and our qdiscs) it left on the veth: the taps die with their fds, the
 * filters on the veth do not.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/fileio.h"
#include "cc/log.h"

#include "kata/agent.pb-c.h"
#include "shim/shim.h"

#define AGENT_SERVICE        "grpc.AgentService"
#define NET_STATE            "network"
#define RESOLV_MAX           (64u << 10)
#define DNS_MAX_LINES        16                    /* what the agent accepts */
#define DNS_MAX_LEN          256                   /* per line, ditto */
#define USER_NET_MAC         "52:54:00:12:34:56"   /* QEMU's own default for the first NIC */
#define GUEST_NET_TIMEOUT_NS (30ll * 1000000000ll) /* each agent call configuring the guest */

/* True when the spec has a linux.namespaces entry of type network (with or without a path). */
static bool spec_has_netns_entry(struct json_object *spec)
{
        struct json_object *l = NULL, *nss = NULL;
        if (!spec || !json_object_object_get_ex(spec, "linux", &l) ||
            !json_object_object_get_ex(l, "namespaces", &nss) ||
            !json_object_is_type(nss, json_type_array))
                return false;
        for (size_t i = 0; i < json_object_array_length(nss); i++) {
                struct json_object *t = NULL;
                if (json_object_object_get_ex(json_object_array_get_idx(nss, i), "type", &t) &&
                    cc_streq(json_object_get_string(t), "network"))
                        return true;
        }
        return false;
}

static char *state_path(const char *run_dir)
{
        char *p = NULL;
        return asprintf(&p, "%s/" NET_STATE, run_dir) < 0 ? NULL : p;
}

/* <run_dir>/network: "netns PATH", then per interface "if IFINDEX TAPINDEX MADE NAME TAP",
 * followed by " HOSTTAP" for libvirt's persistent tap in the host namespace. */
static int state_write(const char *run_dir, const struct shim_net *net, struct cc_error **err)
{
        _cleanup_free_ char *path = state_path(run_dir), *tmp = NULL;
        if (!path || asprintf(&tmp, "%s.tmp", path) < 0)
                return -ENOMEM;
        _cleanup_fclose_ FILE *f = fopen(tmp, "we");
        if (!f)
                return cc_error_set(err, errno, "%s: %m", tmp);
        fprintf(f, "netns %s\n", net->netns_path);
        for (size_t i = 0; i < net->n_ifs; i++)
                fprintf(f, "if %d %d %u %s %s%s%s\n", net->ifs[i].ifindex, net->ifs[i].tap_ifindex,
                        net->made ? net->made[i] : 0, net->ifs[i].name, net->ifs[i].tap_name,
                        net->ifs[i].host_tap[0] ? " " : "", net->ifs[i].host_tap);
        if (fflush(f) != 0 || fsync(fileno(f)) < 0 || rename(tmp, path) < 0) {
                int e = errno;
                unlink(tmp);
                return cc_error_set(err, e, "writing %s: %s", path, strerror(e));
        }
        return 0;
}

/* The state a crashed shim left, as a struct shim_net that shim_net_teardown() accepts. */
static int state_read(const char *path, struct shim_net **ret)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        _cleanup_shim_net_ struct shim_net *net = calloc(1, sizeof(*net));
        if (!net)
                return -ENOMEM;
        net->netns_fd = -1;
        char line[PATH_MAX + 64];
        while (fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = '\0';
                if (strncmp(line, "netns ", 6) == 0 && !net->netns_path) {
                        if (!(net->netns_path = strdup(line + 6)))
                                return -ENOMEM;
                        continue;
                }
                int ifindex, tap_ifindex;
                unsigned made;
                char name[IFNAMSIZ], tap[IFNAMSIZ], host_tap[IFNAMSIZ] = "";
                int n = sscanf(line, "if %d %d %u %15s %15s %15s", &ifindex, &tap_ifindex, &made,
                               name, tap, host_tap);
                if ((n != 5 && n != 6) || net->n_ifs >= 64)
                        return -EINVAL;
                struct shim_net_if *ifs = realloc(net->ifs, (net->n_ifs + 1) * sizeof(*ifs));
                if (!ifs)
                        return -ENOMEM;
                net->ifs = ifs;
                unsigned *m = realloc(net->made, (net->n_ifs + 1) * sizeof(*m));
                if (!m)
                        return -ENOMEM;
                net->made = m;
                struct shim_net_if *nif = &net->ifs[net->n_ifs];
                *nif = (struct shim_net_if){
                        .ifindex = ifindex, .tap_ifindex = tap_ifindex, .tap_fd = -1};
                snprintf(nif->name, sizeof(nif->name), "%s", name);
                snprintf(nif->tap_name, sizeof(nif->tap_name), "%s", tap);
                snprintf(nif->host_tap, sizeof(nif->host_tap), "%s", host_tap);
                net->made[net->n_ifs++] = made;
        }
        if (!net->netns_path)
                return -EINVAL;
        *ret = TAKE_PTR(net);
        return 0;
}

/*
 * network_model user: QEMU's slirp network is 10.0.2.0/24 with the host (its loopback) at
 * 10.0.2.2 and the guest at 10.0.2.15 by convention. The guest NIC gets that address and a
 * default route through the same agent calls as a pod interface (a description with no tap:
 * nothing to tear down).
 */
static int user_net_describe(struct shim_net **ret, struct cc_error **err)
{
        _cleanup_shim_net_ struct shim_net *net = calloc(1, sizeof(*net));
        if (!net || !(net->ifs = calloc(1, sizeof(*net->ifs))) ||
            !(net->ifs[0].addrs = calloc(1, sizeof(*net->ifs[0].addrs))) ||
            !(net->routes = calloc(1, sizeof(*net->routes))))
                return cc_error_set(err, ENOMEM, "out of memory");
        net->netns_fd = -1;
        struct shim_net_if *nif = &net->ifs[0];
        nif->tap_fd = -1;
        snprintf(nif->name, sizeof(nif->name), "eth0");
        snprintf(nif->mac, sizeof(nif->mac), "%s", USER_NET_MAC);
        nif->mtu = 1500;
        nif->addrs[0] = (struct shim_net_addr){.family = AF_INET, .prefix_len = 24};
        snprintf(nif->addrs[0].addr, sizeof(nif->addrs[0].addr), "10.0.2.15");
        nif->n_addrs = 1;
        net->n_ifs = 1;
        net->routes[0] = (struct shim_net_route){.family = AF_INET, .scope = RT_SCOPE_UNIVERSE};
        snprintf(net->routes[0].gateway, sizeof(net->routes[0].gateway), "10.0.2.2");
        snprintf(net->routes[0].device, sizeof(net->routes[0].device), "eth0");
        net->n_routes = 1;
        *ret = TAKE_PTR(net);
        return 0;
}

int shim_pod_net_setup(const struct shim_config *c, const char *sandbox_id, const char *run_dir,
                       struct json_object *spec, struct hv_config *hc, struct shim_net **ret_net,
                       struct hv_net **ret_nets, struct cc_error **err)
{
        bool confidential = c->tee != HV_TEE_NONE;
        *ret_nets = NULL;
        /* No network namespace entry: the container would share the host's namespace. A VM
         * cannot, and a confidential pod must not get the host's traffic. */
        if (!spec_has_netns_entry(spec)) {
                if (confidential)
                        return cc_error_set(err, EPERM,
                                            "host networking is not supported for confidential "
                                            "pods (TEE profile %s): the spec has no network "
                                            "namespace, and a VM cannot share the host's",
                                            hv_tee_to_string(c->tee));
                cc_log_info("sandbox %s: host networking requested; the VM gets no NIC",
                            sandbox_id);
                return 0;
        }
        if (c->network_model == SHIM_NET_MODEL_NONE)
                return 0;
        if (c->network_model == SHIM_NET_MODEL_USER) {
                hc->user_net = true;
                hc->user_net_mac = USER_NET_MAC;
                return user_net_describe(ret_net, err);
        }
        const char *netns = NULL;
        int r = shim_net_spec_netns(spec, &netns, err);
        if (r < 0)
                return r;
        if (cc_isempty(netns)) {
                cc_log_info("sandbox %s: no network namespace path; the VM gets no NIC",
                            sandbox_id);
                return 0;
        }
        /* QEMU and Cloud Hypervisor both run virtio-net on the tap with the virtio-net header
         * (offloads); only the mock backend reads nothing from it. */
        /* libvirtd takes no fds: it opens a persistent tap by name in the host namespace. */
        unsigned flags =
                (confidential ? SHIM_NET_CONFIDENTIAL : 0) |
                (cc_streq(c->backend, "qemu") || cc_streq(c->backend, "clh") ? SHIM_NET_VNET_HDR
                                                                             : 0) |
                (cc_streq(c->backend, "libvirt") ? SHIM_NET_HOST_TAP : 0);
        if ((r = shim_net_setup(netns, flags, ret_net, err)) < 0)
                return cc_error_wrap(err, -r, "pod network (network_model %s)",
                                     shim_net_model_to_string(c->network_model));
        const struct shim_net *net = *ret_net;
        if (net->active && (r = state_write(run_dir, net, err)) < 0)
                return r; /* the caller tears *ret_net down (shim_pod_net_teardown) */
        size_t n = 0;
        if ((r = shim_net_hv_nets(net, ret_nets, &n, err)) < 0)
                return r;
        hc->nets = *ret_nets;
        hc->n_nets = n;
        for (size_t i = 0; i < net->n_ifs; i++)
                cc_log_info("sandbox %s: %s (%s, mtu %u) -> %s in %s%s%s", sandbox_id,
                            net->ifs[i].name, net->ifs[i].mac, net->ifs[i].mtu,
                            net->ifs[i].tap_name, netns,
                            net->ifs[i].host_tap[0] ? " -> host tap " : "", net->ifs[i].host_tap);
        return 0;
}

int shim_pod_net_configure_guest(const struct shim_net *net, struct cc_ttrpc_client *agent,
                                 struct cc_error **err)
{
        if (!net || net->n_ifs == 0)
                return 0;
        int r;
        for (size_t i = 0; i < net->n_ifs; i++) {
                Types__Interface *itf = NULL;
                if ((r = shim_net_interface_to_proto(&net->ifs[i], &itf, err)) < 0)
                        return r;
                Grpc__UpdateInterfaceRequest req = GRPC__UPDATE_INTERFACE_REQUEST__INIT;
                req.interface = itf;
                r = shim_agent_rpc(agent, AGENT_SERVICE, "UpdateInterface", &req.base, NULL, NULL,
                                   GUEST_NET_TIMEOUT_NS, err);
                protobuf_c_message_free_unpacked(&itf->base, NULL);
                if (r < 0)
                        return cc_error_wrap(err, -r, "interface %s", net->ifs[i].name);
        }
        /* Then the routes and the permanent neighbours, each call only when there are any. */
        Grpc__UpdateRoutesRequest routes = GRPC__UPDATE_ROUTES_REQUEST__INIT;
        Grpc__AddARPNeighborsRequest neighs = GRPC__ADD_ARPNEIGHBORS_REQUEST__INIT;
        r = shim_net_routes_to_proto(net, &routes.routes, err);
        if (r >= 0)
                r = shim_net_neighbors_to_proto(net, &neighs.neighbors, err);
        const struct {
                const char *method;
                const ProtobufCMessage *req;
                size_t n;
        } calls[] = {
                {"UpdateRoutes", &routes.base, routes.routes ? routes.routes->n_routes : 0},
                {"AddARPNeighbors", &neighs.base,
                 neighs.neighbors ? neighs.neighbors->n_arpneighbors : 0},
        };
        for (size_t i = 0; r >= 0 && i < CC_ARRAY_SIZE(calls); i++)
                if (calls[i].n)
                        r = shim_agent_rpc(agent, AGENT_SERVICE, calls[i].method, calls[i].req,
                                           NULL, NULL, GUEST_NET_TIMEOUT_NS, err);
        if (routes.routes)
                protobuf_c_message_free_unpacked(&routes.routes->base, NULL);
        if (neighs.neighbors)
                protobuf_c_message_free_unpacked(&neighs.neighbors->base, NULL);
        return r < 0 ? r : 0;
}

void shim_pod_net_teardown(struct shim_net *net, const char *sandbox_id, const char *run_dir)
{
        if (!net)
                return;
        _cleanup_error_ struct cc_error *e = NULL;
        if (shim_net_teardown(net, &e) < 0) {
                cc_log_warn("sandbox %s: pod network teardown: %s", sandbox_id,
                            cc_error_message(e));
                return;
        }
        _cleanup_free_ char *path = run_dir ? state_path(run_dir) : NULL;
        if (path)
                unlink(path);
}

void shim_pod_net_cleanup_dead(const char *run_dir)
{
        _cleanup_free_ char *path = state_path(run_dir);
        if (!path)
                return;
        _cleanup_shim_net_ struct shim_net *net = NULL;
        int r = state_read(path, &net);
        if (r == -ENOENT)
                return;
        if (r < 0) {
                fprintf(stderr, "%s: unreadable pod network state (%s); left as is\n", path,
                        strerror(-r));
                return;
        }
        /* The namespace may be gone already (CNI removed it): then so is everything in it,
         * but not a persistent host tap (libvirt), which teardown removes either way. */
        net->netns_fd = open(net->netns_path, O_RDONLY | O_CLOEXEC);
        net->active = true;
        _cleanup_error_ struct cc_error *e = NULL;
        if (shim_net_teardown(net, &e) < 0)
                fprintf(stderr, "pod network in %s: %s\n", net->netns_path, cc_error_message(e));
        unlink(path);
}

/* One resolv.conf line the guest may have: nameserver, search, domain or options. */
static bool dns_line_wanted(const char *l)
{
        static const char *const keys[] = {"nameserver", "search", "domain", "options"};
        for (size_t i = 0; i < CC_ARRAY_SIZE(keys); i++) {
                size_t n = strlen(keys[i]);
                if (strncmp(l, keys[i], n) == 0 && (l[n] == ' ' || l[n] == '\t'))
                        return true;
        }
        return false;
}

int shim_pod_dns(struct json_object *spec, char ***ret, size_t *ret_n)
{
        *ret = NULL;
        *ret_n = 0;
        struct json_object *ms = NULL;
        if (!spec || !json_object_object_get_ex(spec, "mounts", &ms) ||
            !json_object_is_type(ms, json_type_array))
                return 0;
        const char *src = NULL;
        for (size_t i = 0; i < json_object_array_length(ms); i++) {
                struct json_object *m = json_object_array_get_idx(ms, i), *d = NULL, *s = NULL;
                if (json_object_object_get_ex(m, "destination", &d) &&
                    cc_streq(json_object_get_string(d), "/etc/resolv.conf") &&
                    json_object_object_get_ex(m, "source", &s) &&
                    json_object_is_type(s, json_type_string))
                        src = json_object_get_string(s);
        }
        if (!src)
                return 0;
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = cc_read_file(src, RESOLV_MAX, &text, &len, NULL);
        if (r < 0) {
                cc_log_warn("the pod's resolv.conf %s: %s; the guest keeps its own", src,
                            strerror(-r));
                return 0;
        }
        char **lines = calloc(DNS_MAX_LINES, sizeof(*lines));
        if (!lines)
                return -ENOMEM;
        size_t n = 0;
        char *save = NULL;
        for (char *l = strtok_r(text, "\n", &save); l && n < DNS_MAX_LINES;
             l = strtok_r(NULL, "\n", &save)) {
                l += strspn(l, " \t");
                size_t ll = strcspn(l, "\r");
                l[ll] = '\0';
                while (ll && (l[ll - 1] == ' ' || l[ll - 1] == '\t'))
                        l[--ll] = '\0';
                if (!dns_line_wanted(l))
                        continue;
                if (ll > DNS_MAX_LEN) {
                        cc_log_warn("%s: a line longer than %u bytes is not passed on", src,
                                    DNS_MAX_LEN);
                        continue;
                }
                if (!(lines[n] = strdup(l))) {
                        shim_strv_free(lines, n);
                        return -ENOMEM;
                }
                n++;
        }
        *ret = lines;
        *ret_n = n;
        return 0;
}

void shim_strv_free(char **v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                free(v[i]);
        free(v);
}
