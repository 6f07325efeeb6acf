#pragma once
/*
 * The agent's network requests, applied with rtnetlink in the calling thread's network namespace
 * (in the guest: the VM's only one, which every container shares):
 *
 *   UpdateInterface  -> agent_net_update_interface()  find the NIC by MAC, rename, MTU,
 *                                                     addresses (exactly the requested set), up
 *   UpdateRoutes     -> agent_net_update_routes()     replace the routes of the named devices
 *   AddARPNeighbors  -> agent_net_add_neighbors()     static neighbour entries
 *   ListInterfaces   -> agent_net_list_interfaces()
 *   ListRoutes       -> agent_net_list_routes()
 *   CreateSandbox.dns -> agent_net_write_resolv_conf()
 *
 * The host is not trusted: every request is validated completely before anything is changed
 * (names as the kernel accepts them, addresses that parse strictly, prefix lengths within the
 * family, families that match the address, bounded counts), and an invalid one is refused with
 * -EINVAL and a message naming the field. Kernel errors come back as -errno with context.
 *
 * Plain netlink sockets, no library: the agent is linked -static-pie for the guest image, and
 * the few message types needed here fit in one small file (nl.c).
 *
 * Conventions of Kata's API: IPAddress.mask is the prefix length in decimal ("" = the full
 * length); Route.dest is "addr/len", "addr" (a host route), or "" / "default"; Route.scope is an
 * RT_SCOPE_* value; ARPNeighbor.state is NUD_* bits (0 = permanent).
 *
 * Replies are freed with protobuf_c_message_free_unpacked(&msg->base, NULL).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cc_error;
struct Types__Interface;
struct Types__IPAddress;
struct Types__Route;
struct Types__ARPNeighbor;
struct Grpc__Interfaces;
struct Grpc__Routes;
struct Grpc__ARPNeighbors;

/* Bounds on what one request may carry. */
#define AGENT_NET_MAX_ADDRS    64
#define AGENT_NET_MAX_ROUTES   1024
#define AGENT_NET_MAX_NEIGHS   1024
#define AGENT_NET_MAX_DNS      64
#define AGENT_NET_MAX_DNS_LINE 1024

struct agent_net_ip {
        int family; /* AF_INET or AF_INET6 */
        unsigned char addr[16];
        unsigned prefix_len;
};

/* --- validation and parsing (no side effects; unit-tested) --- */

/* An interface name the kernel accepts: 1-15 bytes, not "." or "..", no '/', ':' or space. */
int agent_net_validate_ifname(const char *name, const char *what, struct cc_error **err);
/* "aa:bb:cc:dd:ee:ff" (either case), exactly. */
int agent_net_parse_mac(const char *s, unsigned char mac[6], struct cc_error **err);
/* An IPAddress: family 0 (v4) or 1 (v6) matching the address, mask "" or 0..32 / 0..128. */
int agent_net_parse_ipaddress(const struct Types__IPAddress *ip, struct agent_net_ip *ret,
                              struct cc_error **err);
/* "" or "default" (prefix 0 of `family`), "addr", or "addr/len"; proto_family 0/1 or -1 = any. */
int agent_net_parse_dest(const char *s, int proto_family, struct agent_net_ip *ret,
                         struct cc_error **err);
int agent_net_validate_interface(const struct Types__Interface *itf, struct cc_error **err);
int agent_net_validate_route(const struct Types__Route *rt, struct cc_error **err);
int agent_net_validate_neighbor(const struct Types__ARPNeighbor *ne, struct cc_error **err);
/* One resolv.conf line: "nameserver <ip>", "search ...", "options ...", "domain ...". */
int agent_net_validate_dns(const char *line, struct cc_error **err);

/* --- requests --- */

int agent_net_update_interface(const struct Types__Interface *req, struct Types__Interface **ret,
                               struct cc_error **err);
int agent_net_update_routes(const struct Grpc__Routes *req, struct Grpc__Routes **ret,
                            struct cc_error **err);
int agent_net_add_neighbors(const struct Grpc__ARPNeighbors *req, struct cc_error **err);
int agent_net_list_interfaces(struct Grpc__Interfaces **ret, struct cc_error **err);
int agent_net_list_routes(struct Grpc__Routes **ret, struct cc_error **err);

/*
 * Writes the lines of CreateSandbox.dns to path (normally /etc/resolv.conf) atomically (a
 * temporary file in the same directory, then rename), mode 0644. With no lines nothing is
 * written. Every line is validated first.
 */
int agent_net_write_resolv_conf(const char *path, char *const *dns, size_t n_dns,
                                struct cc_error **err);
