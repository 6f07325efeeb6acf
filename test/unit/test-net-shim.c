/*
 * Unit tests: shim/network's converters to the agent messages, the OCI spec's network namespace
 * path, and the refusals of host networking (none of which needs root or a namespace).
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cc/error.h"

#include "hypervisor/hv.h"
#include "kata/agent.pb-c.h"
#include "kata/types.pb-c.h"
#include "shim/network/shim-net.h"

/* A network as shim_net_setup() would have read it, built by hand. */
static struct shim_net *sample_net(void)
{
        struct shim_net *net = calloc(1, sizeof(*net));
        net->netns_fd = -1;
        net->n_ifs = 1;
        net->ifs = calloc(1, sizeof(*net->ifs));
        struct shim_net_if *nif = &net->ifs[0];
        strcpy(nif->name, "eth0");
        strcpy(nif->mac, "0a:58:0a:58:00:05");
        strcpy(nif->kind, "veth");
        nif->mtu = 1450;
        nif->tap_fd = -1;
        nif->n_addrs = 2;
        nif->addrs = calloc(2, sizeof(*nif->addrs));
        nif->addrs[0] = (struct shim_net_addr){AF_INET, "10.88.0.5", 16};
        nif->addrs[1] = (struct shim_net_addr){AF_INET6, "fd00:88::5", 64};
        net->n_routes = 3;
        net->routes = calloc(3, sizeof(*net->routes));
        net->routes[0] = (struct shim_net_route){
                .family = AF_INET, .gateway = "10.88.0.1", .device = "eth0"};
        net->routes[1] = (struct shim_net_route){.family = AF_INET,
                                                 .dest = "10.88.0.0",
                                                 .dest_len = 16,
                                                 .source = "10.88.0.5",
                                                 .device = "eth0",
                                                 .scope = 253};
        net->routes[2] = (struct shim_net_route){
                .family = AF_INET6, .gateway = "fd00:88::1", .device = "eth0"};
        net->n_neighs = 1;
        net->neighs = calloc(1, sizeof(*net->neighs));
        net->neighs[0] = (struct shim_net_neigh){.family = AF_INET,
                                                 .addr = "10.88.0.1",
                                                 .lladdr = "02:00:00:00:00:01",
                                                 .device = "eth0",
                                                 .state = 0x80};
        return net;
}

/* Packs and unpacks m: the message must be a valid one for protobuf-c. */
static ProtobufCMessage *roundtrip(const ProtobufCMessage *m)
{
        size_t len = protobuf_c_message_get_packed_size(m);
        uint8_t *buf = malloc(len ? len : 1);
        protobuf_c_message_pack(m, buf);
        ProtobufCMessage *out = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
        free(buf);
        assert_non_null(out);
        return out;
}

static void test_interface_proto(void **state)
{
        _cleanup_shim_net_ struct shim_net *net = sample_net();
        _cleanup_error_ struct cc_error *err = NULL;
        Types__Interface *m = NULL;
        assert_int_equal(shim_net_interface_to_proto(&net->ifs[0], &m, &err), 0);
        Types__Interface *u = (Types__Interface *)roundtrip(&m->base);
        protobuf_c_message_free_unpacked(&m->base, NULL);
        assert_string_equal(u->name, "eth0");
        assert_string_equal(u->device, "eth0");
        assert_string_equal(u->hwaddr, "0a:58:0a:58:00:05");
        assert_string_equal(u->type, "veth");
        assert_int_equal(u->mtu, 1450);
        assert_int_equal(u->n_ipaddresses, 2);
        assert_int_equal(u->ipaddresses[0]->family, TYPES__IPFAMILY__v4);
        assert_string_equal(u->ipaddresses[0]->address, "10.88.0.5");
        assert_string_equal(u->ipaddresses[0]->mask, "16");
        assert_int_equal(u->ipaddresses[1]->family, TYPES__IPFAMILY__v6);
        assert_string_equal(u->ipaddresses[1]->mask, "64");
        protobuf_c_message_free_unpacked(&u->base, NULL);
}

static void test_routes_proto(void **state)
{
        _cleanup_shim_net_ struct shim_net *net = sample_net();
        _cleanup_error_ struct cc_error *err = NULL;
        Grpc__Routes *m = NULL;
        assert_int_equal(shim_net_routes_to_proto(net, &m, &err), 0);
        Grpc__Routes *u = (Grpc__Routes *)roundtrip(&m->base);
        protobuf_c_message_free_unpacked(&m->base, NULL);
        assert_int_equal(u->n_routes, 3);
        /* The default route has an empty dest (Kata's convention). */
        assert_string_equal(u->routes[0]->dest, "");
        assert_string_equal(u->routes[0]->gateway, "10.88.0.1");
        assert_string_equal(u->routes[0]->device, "eth0");
        assert_string_equal(u->routes[1]->dest, "10.88.0.0/16");
        assert_string_equal(u->routes[1]->gateway, "");
        assert_string_equal(u->routes[1]->source, "10.88.0.5");
        assert_int_equal(u->routes[1]->scope, 253);
        assert_int_equal(u->routes[2]->family, TYPES__IPFAMILY__v6);
        protobuf_c_message_free_unpacked(&u->base, NULL);
}

static void test_neighbors_proto(void **state)
{
        _cleanup_shim_net_ struct shim_net *net = sample_net();
        _cleanup_error_ struct cc_error *err = NULL;
        Grpc__ARPNeighbors *m = NULL;
        assert_int_equal(shim_net_neighbors_to_proto(net, &m, &err), 0);
        Grpc__ARPNeighbors *u = (Grpc__ARPNeighbors *)roundtrip(&m->base);
        protobuf_c_message_free_unpacked(&m->base, NULL);
        assert_int_equal(u->n_arpneighbors, 1);
        assert_string_equal(u->arpneighbors[0]->toipaddress->address, "10.88.0.1");
        assert_string_equal(u->arpneighbors[0]->lladdr, "02:00:00:00:00:01");
        assert_string_equal(u->arpneighbors[0]->device, "eth0");
        assert_int_equal(u->arpneighbors[0]->state, 0x80);
        protobuf_c_message_free_unpacked(&u->base, NULL);

        /* An empty network gives empty messages. */
        struct shim_net empty = {.netns_fd = -1};
        assert_int_equal(shim_net_neighbors_to_proto(&empty, &m, &err), 0);
        assert_int_equal(m->n_arpneighbors, 0);
        protobuf_c_message_free_unpacked(&m->base, NULL);
        Grpc__Routes *r = NULL;
        assert_int_equal(shim_net_routes_to_proto(&empty, &r, &err), 0);
        assert_int_equal(r->n_routes, 0);
        protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void test_format_mac(void **state)
{
        const unsigned char mac[6] = {0x0a, 0x58, 0xff, 0x00, 0x01, 0xab};
        char out[SHIM_NET_MAC_MAX];
        shim_net_format_mac(mac, out);
        assert_string_equal(out, "0a:58:ff:00:01:ab");
}

static void test_spec_netns(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        const char *path = "x";
        struct json_object *spec = json_tokener_parse(
                "{\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\","
                "\"path\":\"/var/run/netns/cni-1234\"},{\"type\":\"ipc\"}]}}");
        assert_int_equal(shim_net_spec_netns(spec, &path, &err), 0);
        assert_string_equal(path, "/var/run/netns/cni-1234");
        json_object_put(spec);

        /* A network namespace without a path, none at all, no linux section: no path. */
        const char *nopath[] = {"{\"linux\":{\"namespaces\":[{\"type\":\"network\"}]}}",
                                "{\"linux\":{\"namespaces\":[{\"type\":\"pid\"}]}}", "{}"};
        for (size_t i = 0; i < 3; i++) {
                spec = json_tokener_parse(nopath[i]);
                path = "x";
                assert_int_equal(shim_net_spec_netns(spec, &path, &err), 0);
                assert_null(path);
                json_object_put(spec);
        }
        const char *bad[] = {"{\"linux\":{\"namespaces\":{}}}",
                             "{\"linux\":{\"namespaces\":[{\"path\":\"/x\"}]}}",
                             "{\"linux\":{\"namespaces\":[{\"type\":\"network\",\"path\":1}]}}"};
        for (size_t i = 0; i < 3; i++) {
                spec = json_tokener_parse(bad[i]);
                assert_int_equal(shim_net_spec_netns(spec, &path, &err), -EINVAL);
                json_object_put(spec);
        }
}

static void test_refusals(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        struct shim_net *net = NULL;
        /* Confidential: no namespace path, or the shim's own namespace, is host networking. */
        assert_int_equal(shim_net_setup(NULL, SHIM_NET_CONFIDENTIAL, &net, &err), -EPERM);
        assert_non_null(strstr(cc_error_message(err), "host networking is not supported"));
        assert_int_equal(shim_net_setup("", SHIM_NET_CONFIDENTIAL, &net, &err), -EPERM);
        assert_int_equal(shim_net_setup("/proc/self/ns/net", SHIM_NET_CONFIDENTIAL, &net, &err),
                         -EPERM);
        assert_non_null(strstr(cc_error_message(err), "host's network namespace"));
        assert_null(net);
        /* Not confidential: no pod network, and nothing touched. */
        assert_int_equal(shim_net_setup(NULL, 0, &net, &err), 0);
        assert_int_equal(net->n_ifs, 0);
        assert_int_equal(shim_net_teardown(net, &err), 0);
        net = shim_net_free(net);
        assert_int_equal(shim_net_setup("/proc/self/ns/net", 0, &net, &err), 0);
        assert_int_equal(net->n_ifs, 0);
        net = shim_net_free(net);
        /* Not a network namespace, or missing. */
        assert_int_equal(shim_net_setup("/proc/self/ns/uts", 0, &net, &err), -EINVAL);
        assert_int_equal(shim_net_setup("/nonexistent/netns", 0, &net, &err), -ENOENT);
        assert_null(net);
        /* NULL is fine everywhere at teardown. */
        assert_int_equal(shim_net_teardown(NULL, &err), 0);
        assert_null(shim_net_free(NULL));
        assert_int_equal(shim_net_take_tap_fd(NULL, 0), -1);
}

static void test_model(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        enum shim_net_model m = SHIM_NET_MODEL_USER;
        assert_int_equal(shim_net_model_from_string(NULL, &m, &err), 0);
        assert_int_equal(m, SHIM_NET_MODEL_TCFILTER);
        assert_int_equal(shim_net_model_from_string("none", &m, &err), 0);
        assert_int_equal(m, SHIM_NET_MODEL_NONE);
        assert_int_equal(shim_net_model_from_string("user", &m, &err), 0);
        assert_int_equal(m, SHIM_NET_MODEL_USER);
        assert_int_equal(shim_net_model_from_string("tcfilter", &m, &err), 0);
        assert_int_equal(m, SHIM_NET_MODEL_TCFILTER);
        assert_int_equal(shim_net_model_from_string("macvtap", &m, &err), -EINVAL);
        assert_non_null(strstr(cc_error_message(err), "tcfilter, none, user"));
        assert_string_equal(shim_net_model_to_string(SHIM_NET_MODEL_USER), "user");
        assert_string_equal(shim_net_model_to_string(_SHIM_NET_MODEL_MAX), "unknown");
}

static void test_hv_nets(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_shim_net_ struct shim_net *net = sample_net();
        struct hv_net *nets = NULL;
        size_t n = 9;
        /* A tap already taken (or closed) cannot go to the VMM. */
        assert_int_equal(shim_net_hv_nets(net, &nets, &n, &err), -EBADF);
        net->ifs[0].tap_fd = dup(2);
        assert_int_equal(shim_net_hv_nets(net, &nets, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_int_equal(nets[0].tap_fd, net->ifs[0].tap_fd);
        assert_string_equal(nets[0].mac, "0a:58:0a:58:00:05");
        free(nets);
        int fd = shim_net_take_tap_fd(net, 0);
        assert_true(fd >= 0);
        assert_int_equal(net->ifs[0].tap_fd, -1);
        close(fd);
        struct shim_net empty = {.netns_fd = -1};
        assert_int_equal(shim_net_hv_nets(&empty, &nets, &n, &err), 0);
        assert_int_equal(n, 0);
        assert_null(nets);
}

/* SHIM_NET_HOST_TAP (libvirt): the VMM gets the persistent tap's name and no fd. */
static void test_hv_nets_host_tap(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_shim_net_ struct shim_net *net = sample_net();
        net->flags = SHIM_NET_HOST_TAP;
        struct hv_net *nets = NULL;
        size_t n = 9;
        /* Setup that made no host tap cannot give one. */
        assert_int_equal(shim_net_hv_nets(net, &nets, &n, &err), -ENODEV);
        assert_non_null(strstr(cc_error_message(err), "eth0 has no host tap"));
        snprintf(net->ifs[0].host_tap, sizeof(net->ifs[0].host_tap), "cct0123abcd");
        assert_int_equal(shim_net_hv_nets(net, &nets, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_int_equal(nets[0].tap_fd, -1);
        assert_string_equal(nets[0].tap_name, "cct0123abcd");
        assert_string_equal(nets[0].mac, "0a:58:0a:58:00:05");
        free(nets);
        /* The default mode never gives a name. */
        net->flags = 0;
        net->ifs[0].tap_fd = dup(2);
        assert_int_equal(shim_net_hv_nets(net, &nets, &n, &err), 0);
        assert_null(nets[0].tap_name);
        free(nets);
}

/* Teardown with the pod namespace gone (crash cleanup): nothing to do there, no error. */
static void test_teardown_without_netns(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_shim_net_ struct shim_net *net = sample_net();
        net->made = calloc(1, sizeof(*net->made));
        assert_non_null(net->made);
        net->made[0] = 1; /* the pod's tap: went with the namespace */
        net->active = true;
        assert_int_equal(shim_net_teardown(net, &err), 0);
        assert_false(net->active);
        assert_int_equal(net->made[0], 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_interface_proto),
                cmocka_unit_test(test_routes_proto),
                cmocka_unit_test(test_neighbors_proto),
                cmocka_unit_test(test_format_mac),
                cmocka_unit_test(test_spec_netns),
                cmocka_unit_test(test_refusals),
                cmocka_unit_test(test_model),
                cmocka_unit_test(test_hv_nets),
                cmocka_unit_test(test_hv_nets_host_tap),
                cmocka_unit_test(test_teardown_without_netns),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
