/*
 * net-agent NS MAC RESOLV_PATH: drives guest-agent/network (test/integration/net-agent.sh).
 *
 * Joins the network namespace /run/netns/NS (created by the test, holding an Ethernet
 * interface with MAC), sends hostile requests that must be refused, then the requests a shim
 * sends at sandbox start, as the agent's handlers would pass them on:
 *   UpdateInterface  MAC -> eth0, MTU 1300, 10.99.0.2/24 and fd00:99::2/64
 *   UpdateRoutes     10.99.0.0/24 dev eth0, default via 10.99.0.1, 10.100.0.0/16 via
 *                    10.99.0.254, default via fd00:99::1 (twice: it must be repeatable)
 *   AddARPNeighbors  10.99.0.1 lladdr 02:00:00:00:99:01
 *   CreateSandbox.dns into RESOLV_PATH
 * and prints ListInterfaces and ListRoutes. The test checks the result with `ip -n`.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/error.h"

#include "guest-agent/network/agent-net.h"
#include "kata/agent.pb-c.h"
#include "kata/types.pb-c.h"

static int failures;

static void expect(const char *what, int r, int want, struct cc_error **err)
{
        printf("%s: %d %s\n", what, r, r < 0 ? cc_error_message(*err) : "ok");
        if (r != want) {
                printf("FAIL: %s: expected %d\n", what, want);
                failures++;
        }
        cc_error_free(*err);
        *err = NULL;
}

static Types__IPAddress ip4 = TYPES__IPADDRESS__INIT, ip6 = TYPES__IPADDRESS__INIT,
                        bad_ip = TYPES__IPADDRESS__INIT;

static void make_interface(Types__Interface *itf, const char *mac, const char *name,
                           Types__IPAddress **ips, size_t n)
{
        types__interface__init(itf);
        itf->hwaddr = (char *)mac;
        itf->name = (char *)name;
        itf->device = (char *)name;
        itf->mtu = 1300;
        itf->ipaddresses = ips;
        itf->n_ipaddresses = n;
}

static Types__Route *route(Types__Route *rt, const char *dest, const char *gw, const char *dev,
                           unsigned scope, Types__IPFamily family)
{
        types__route__init(rt);
        rt->dest = (char *)dest;
        rt->gateway = (char *)gw;
        rt->device = (char *)dev;
        rt->scope = scope;
        rt->family = family;
        return rt;
}

static void hostile(const char *mac)
{
        _cleanup_error_ struct cc_error *err = NULL;
        Types__Interface itf;
        Types__IPAddress *ips[] = {&ip4};
        Types__IPAddress *bad[] = {&bad_ip};

        make_interface(&itf, mac, "a/b", ips, 1);
        expect("refuse name with '/'", agent_net_update_interface(&itf, NULL, &err), -EINVAL, &err);
        make_interface(&itf, mac, "sixteen-chars-xx", ips, 1);
        expect("refuse 16-byte name", agent_net_update_interface(&itf, NULL, &err), -EINVAL, &err);
        make_interface(&itf, "02:00:zz:00:00:01", "eth0", ips, 1);
        expect("refuse bad MAC", agent_net_update_interface(&itf, NULL, &err), -EINVAL, &err);
        make_interface(&itf, mac, "eth0", ips, 1);
        itf.mtu = 20;
        expect("refuse MTU 20", agent_net_update_interface(&itf, NULL, &err), -EINVAL, &err);
        bad_ip.family = TYPES__IPFAMILY__v4;
        bad_ip.address = "10.99.0.2";
        bad_ip.mask = "33";
        make_interface(&itf, mac, "eth0", bad, 1);
        expect("refuse prefix 33", agent_net_update_interface(&itf, NULL, &err), -EINVAL, &err);
        bad_ip.address = "fd00::5";
        bad_ip.mask = "64";
        expect("refuse family mismatch", agent_net_update_interface(&itf, NULL, &err), -EINVAL,
               &err);
        make_interface(&itf, "02:00:00:00:00:99", "eth0", ips, 1);
        expect("unknown MAC", agent_net_update_interface(&itf, NULL, &err), -ENOENT, &err);

        Types__Route r1, *rts[] = {&r1};
        Grpc__Routes routes = GRPC__ROUTES__INIT;
        routes.routes = rts;
        routes.n_routes = 1;
        route(&r1, "", "fd00::1", "eth0", 0, TYPES__IPFAMILY__v4);
        expect("refuse v6 gateway for a v4 route", agent_net_update_routes(&routes, NULL, &err),
               -EINVAL, &err);
        route(&r1, "10.0.0.0/8", "", "nosuchdev", 253, TYPES__IPFAMILY__v4);
        expect("route on a missing device", agent_net_update_routes(&routes, NULL, &err), -ENODEV,
               &err);

        char *dns[] = {"nameserver 10.99.0.1\nnameserver 6.6.6.6"};
        expect("refuse DNS line with a newline",
               agent_net_write_resolv_conf("/nonexistent/resolv.conf", dns, 1, &err), -EINVAL,
               &err);
}

int main(int argc, char **argv)
{
        if (argc != 4) {
                fprintf(stderr, "usage: %s NS MAC RESOLV_PATH\n", argv[0]);
                return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        char path[256];
        snprintf(path, sizeof(path), "/run/netns/%s", argv[1]);
        _cleanup_close_ int nsfd = open(path, O_RDONLY | O_CLOEXEC);
        if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0) {
                perror(path);
                return 1;
        }
        const char *mac = argv[2];
        ip4.family = TYPES__IPFAMILY__v4;
        ip4.address = "10.99.0.2";
        ip4.mask = "24";
        ip6.family = TYPES__IPFAMILY__v6;
        ip6.address = "fd00:99::2";
        ip6.mask = "64";

        hostile(mac);

        _cleanup_error_ struct cc_error *err = NULL;
        Types__Interface itf;
        Types__IPAddress *ips[] = {&ip4, &ip6};
        make_interface(&itf, mac, "eth0", ips, 2);
        Types__Interface *got = NULL;
        int r = agent_net_update_interface(&itf, &got, &err);
        expect("UpdateInterface", r, 0, &err);
        if (r == 0) {
                printf("UpdateInterface reply: name=%s hwAddr=%s mtu=%llu addresses=%zu\n",
                       got->name, got->hwaddr, (unsigned long long)got->mtu, got->n_ipaddresses);
                protobuf_c_message_free_unpacked(&got->base, NULL);
        }

        Types__Route r1, r2, r3, r4;
        Types__Route *rts[] = {
                route(&r2, "", "10.99.0.1", "eth0", 0, TYPES__IPFAMILY__v4),
                route(&r1, "10.99.0.0/24", "", "eth0", 253, TYPES__IPFAMILY__v4),
                route(&r3, "10.100.0.0/16", "10.99.0.254", "eth0", 0, TYPES__IPFAMILY__v4),
                route(&r4, "default", "fd00:99::1", "eth0", 0, TYPES__IPFAMILY__v6),
        };
        Grpc__Routes routes = GRPC__ROUTES__INIT;
        routes.routes = rts;
        routes.n_routes = 4;
        for (int i = 0; i < 2; i++) {
                Grpc__Routes *now = NULL;
                expect("UpdateRoutes", agent_net_update_routes(&routes, &now, &err), 0, &err);
                if (now)
                        protobuf_c_message_free_unpacked(&now->base, NULL);
        }

        /* A gateway that is not on any link: the kernel refuses, and says why. */
        Types__Route bad_gw, *bad_rts[] = {route(&bad_gw, "10.200.0.0/16", "10.50.0.1", "eth0", 0,
                                                 TYPES__IPFAMILY__v4)};
        Grpc__Routes bad_routes = GRPC__ROUTES__INIT;
        bad_routes.routes = bad_rts;
        bad_routes.n_routes = 1;
        expect("route via an unreachable gateway", agent_net_update_routes(&bad_routes, NULL, &err),
               -ENETUNREACH, &err);

        Types__IPAddress nip = TYPES__IPADDRESS__INIT;
        nip.family = TYPES__IPFAMILY__v4;
        nip.address = "10.99.0.1";
        Types__ARPNeighbor ne = TYPES__ARPNEIGHBOR__INIT, *nes[] = {&ne};
        ne.toipaddress = &nip;
        ne.device = "eth0";
        ne.lladdr = "02:00:00:00:99:01";
        Grpc__ARPNeighbors neighs = GRPC__ARPNEIGHBORS__INIT;
        neighs.arpneighbors = nes;
        neighs.n_arpneighbors = 1;
        expect("AddARPNeighbors", agent_net_add_neighbors(&neighs, &err), 0, &err);

        Grpc__Interfaces *ifs = NULL;
        expect("ListInterfaces", agent_net_list_interfaces(&ifs, &err), 0, &err);
        for (size_t i = 0; ifs && i < ifs->n_interfaces; i++) {
                Types__Interface *m = ifs->interfaces[i];
                printf("interface %s hwAddr=%s mtu=%llu type=%s", m->name, m->hwaddr,
                       (unsigned long long)m->mtu, m->type);
                for (size_t j = 0; j < m->n_ipaddresses; j++)
                        printf(" %s/%s", m->ipaddresses[j]->address, m->ipaddresses[j]->mask);
                printf("\n");
        }
        if (ifs)
                protobuf_c_message_free_unpacked(&ifs->base, NULL);
        Grpc__Routes *rl = NULL;
        expect("ListRoutes", agent_net_list_routes(&rl, &err), 0, &err);
        for (size_t i = 0; rl && i < rl->n_routes; i++)
                printf("route dest='%s' gateway='%s' device=%s scope=%u family=%d\n",
                       rl->routes[i]->dest, rl->routes[i]->gateway, rl->routes[i]->device,
                       rl->routes[i]->scope, rl->routes[i]->family);
        if (rl)
                protobuf_c_message_free_unpacked(&rl->base, NULL);

        char *dns[] = {"nameserver 10.99.0.1", "search svc.cluster.local cluster.local",
                       "options ndots:5"};
        expect("resolv.conf", agent_net_write_resolv_conf(argv[3], dns, 3, &err), 0, &err);

        printf("%s\n", failures ? "net-agent: FAILED" : "net-agent: OK");
        return failures ? 1 : 0;
}
