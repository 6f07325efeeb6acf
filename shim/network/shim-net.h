#pragma once
/*
 * Pod networking for the shim, Kata's `tcfilter` model.
 *
 * The CNI plugin gives the pod a network namespace holding a veth (usually eth0) with addresses
 * and routes. shim_net_setup() enters that namespace in a dedicated thread (the caller's
 * namespace never changes), reads every interface except loopback with its addresses, MTU and
 * MAC, the routes of the main table and the permanent neighbours, then creates one tap per
 * interface in the same namespace, brings it up with the veth's MTU and mirrors traffic both
 * ways with tc: an ingress qdisc on the veth and on the tap, each with a u32 match-all filter
 * whose mirred action redirects every frame to the egress of the other device. The tap fd goes
 * to the VMM (struct hv_net), the guest NIC gets the veth's MAC, and the description goes to the
 * agent (UpdateInterface, UpdateRoutes, AddARPNeighbors) through the converters below.
 *
 * Netlink goes through libcc's raw rtnetlink client (cc/netlink.h, shared with the guest
 * agent), not libmnl or libnl-route-3: Debian ships neither as a static library for the
 * -static-pie shim, and the tc messages (u32 selector, mirred parameters) are written from the
 * kernel's UAPI headers directly anyway; libnl-route-3 would also add its own object cache and
 * allocation model, and its tc action API differs between releases. The u32 classifier is used, not
 * matchall, because kernels built without CONFIG_NET_CLS_MATCHALL (like the development
 * machines') still have u32.
 *
 * Nothing here logs above debug; errors come back as -errno with a message in *err.
 */

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>

struct cc_error;
struct hv_net;
struct json_object;
struct Types__Interface;
struct Grpc__Routes;
struct Grpc__ARPNeighbors;

/*
 * The `network_model` configuration key: tcfilter (the default: the pod namespace's interfaces,
 * mirrored into the VM), none (no NIC, for pods that need no network) and user (QEMU user
 * networking, for development without CNI; the guest reaches the host's loopback at 10.0.2.2).
 * Only tcfilter uses this library; the others are for the shim and the hypervisor config.
 */
enum shim_net_model {
        SHIM_NET_MODEL_TCFILTER,
        SHIM_NET_MODEL_NONE,
        SHIM_NET_MODEL_USER,
        _SHIM_NET_MODEL_MAX,
};

/* NULL or "" is tcfilter; an unknown name is -EINVAL with the accepted names in *err. */
int shim_net_model_from_string(const char *s, enum shim_net_model *ret, struct cc_error **err);
const char *shim_net_model_to_string(enum shim_net_model m);

/* Flags of shim_net_setup(). */
enum {
        /* A confidential profile: host networking is refused with an error (the VM cannot share
         * the host's namespace, and mirroring the host's NICs into a TEE makes no sense). */
        SHIM_NET_CONFIDENTIAL = 1 << 0,
        /* Open the taps with IFF_VNET_HDR (QEMU then uses the virtio-net header offloads). */
        SHIM_NET_VNET_HDR = 1 << 1,
        /*
         * For a VMM that opens its tap by name in its own namespace, the caller's (libvirtd:
         * `<interface type='ethernet'>` with `<target dev=NAME managed='no'/>`, which takes no
         * fd). Per interface, a persistent tap "cct<8 hex>" (owned by root, no IPv6 address
         * generation, the veth's MTU, up) is made in the CALLER's namespace, and a veth pair
         * joins the two namespaces: "ccp<8 hex>" in the pod namespace, mirrored with the pod's
         * veth by the same tc filters a pod tap gets, and "cch<8 hex>" in the caller's,
         * mirrored with the persistent tap there. The hex is a hash of the pod namespace's
         * inode, the interface's position and a retry counter (a name in use is never taken).
         * No tap fd is held (tap_fd -1); shim_net_hv_nets() gives the tap's name instead.
         * Teardown deletes the pair and the persistent tap, even when the pod namespace is
         * gone already (the tap lives on in the caller's namespace until deleted).
         */
        SHIM_NET_HOST_TAP = 1 << 2,
};

#define SHIM_NET_ADDR_MAX 46 /* INET6_ADDRSTRLEN */
#define SHIM_NET_MAC_MAX  18 /* "aa:bb:cc:dd:ee:ff" + NUL */

struct shim_net_addr {
        int family; /* AF_INET or AF_INET6 */
        char addr[SHIM_NET_ADDR_MAX];
        unsigned prefix_len;
};

struct shim_net_route {
        int family;
        char dest[SHIM_NET_ADDR_MAX]; /* "" for the default route */
        unsigned dest_len;
        char gateway[SHIM_NET_ADDR_MAX]; /* "" for a device route */
        char source[SHIM_NET_ADDR_MAX];  /* preferred source, or "" */
        char device[IFNAMSIZ];
        unsigned scope; /* RT_SCOPE_* */
};

struct shim_net_neigh {
        int family;
        char addr[SHIM_NET_ADDR_MAX];
        char lladdr[SHIM_NET_MAC_MAX];
        char device[IFNAMSIZ];
        int state; /* NUD_* */
        int flags; /* NTF_* */
};

struct shim_net_if {
        char name[IFNAMSIZ]; /* the veth, also the name the guest NIC gets */
        int ifindex;
        char mac[SHIM_NET_MAC_MAX]; /* the veth's MAC: the guest NIC must have it */
        unsigned mtu;
        char kind[16]; /* IFLA_INFO_KIND ("veth", ...) or "" */
        unsigned raw_flags;
        struct shim_net_addr *addrs;
        size_t n_addrs;
        /* "tap<N>_cc"; with SHIM_NET_HOST_TAP the pod end of the veth pair ("ccp<hex>"),
         * which then takes the tap's place in the pod namespace's filters */
        char tap_name[IFNAMSIZ];
        int tap_ifindex;
        int tap_fd; /* O_CLOEXEC; owned by the struct, -1 once taken (always, HOST_TAP) */
        /* SHIM_NET_HOST_TAP only, "" otherwise: the persistent tap in the caller's namespace
         * (what the VMM opens) and the caller's end of the veth pair. */
        char host_tap[IFNAMSIZ];
        char host_veth[IFNAMSIZ];
};

struct shim_net {
        char *netns_path;
        int netns_fd; /* kept open so teardown reaches the namespace even if the path goes */
        struct shim_net_if *ifs;
        size_t n_ifs;
        struct shim_net_route *routes;
        size_t n_routes;
        struct shim_net_neigh *neighs;
        size_t n_neighs;
        unsigned *made; /* per interface: what setup created, so teardown removes only that */
        bool active;    /* taps and filters exist and teardown has work to do */
        unsigned flags; /* shim_net_setup()'s */
        /* the pod namespace's identity (nsfs device and inode), for the HOST_TAP names */
        unsigned long long ns_dev, ns_ino;
};

/*
 * The network namespace path of an OCI spec (linux.namespaces entry of type "network"), or NULL
 * in *ret when there is none (host networking, or a new empty namespace). Borrowed from spec.
 */
int shim_net_spec_netns(struct json_object *spec, const char **ret, struct cc_error **err);

/*
 * Sets up the pod network of the namespace at netns_path (see the file comment). With no path,
 * or the path of the host's own namespace (the namespace of PID 1): an error (-EPERM) when flags
 * has SHIM_NET_CONFIDENTIAL, else an empty network (no interfaces). Interfaces that are not
 * Ethernet (loopback, tun/tap, ...) are skipped. On failure everything created is removed again.
 * Free the result with shim_net_free() after shim_net_teardown().
 */
int shim_net_setup(const char *netns_path, unsigned flags, struct shim_net **ret,
                   struct cc_error **err);

/*
 * Removes what setup created (filters, qdiscs, taps; with SHIM_NET_HOST_TAP also the veth pair
 * and the persistent tap in the caller's namespace, deleted by name) and closes the tap fds
 * still held. Safe to call twice and on a partially set up network; the first error is
 * returned, but every step is tried. netns_fd -1 (the pod namespace is gone, with everything
 * that was in it): only the caller's namespace is cleaned.
 */
int shim_net_teardown(struct shim_net *net, struct cc_error **err);

/* Closes the fds still held and frees; does not tear down. Returns NULL. */
struct shim_net *shim_net_free(struct shim_net *net);
static inline void shim_net_freep(struct shim_net **p)
{
        shim_net_free(*p);
}
#define _cleanup_shim_net_ __attribute__((cleanup(shim_net_freep)))

/* Hands the tap fd of interface i to the caller (who closes it); -1 if taken already. */
int shim_net_take_tap_fd(struct shim_net *net, size_t i);

/*
 * The VMM's view: one struct hv_net per interface, in order, borrowing the tap fd (the hv
 * library duplicates it for the VMM), or with SHIM_NET_HOST_TAP the persistent tap's name
 * (tap_fd -1), and the MAC from net, so net must outlive the VM's creation. *ret is malloc'ed
 * (free it); *ret_n may be 0.
 */
int shim_net_hv_nets(const struct shim_net *net, struct hv_net **ret, size_t *ret_n,
                     struct cc_error **err);

/*
 * Converters to the agent API's messages. Every string and array is malloc'ed, so the result
 * is freed with protobuf_c_message_free_unpacked(&msg->base, NULL).
 */
int shim_net_interface_to_proto(const struct shim_net_if *nif, struct Types__Interface **ret,
                                struct cc_error **err);
int shim_net_routes_to_proto(const struct shim_net *net, struct Grpc__Routes **ret,
                             struct cc_error **err);
int shim_net_neighbors_to_proto(const struct shim_net *net, struct Grpc__ARPNeighbors **ret,
                                struct cc_error **err);

/* "aa:bb:cc:dd:ee:ff" from 6 bytes (out has SHIM_NET_MAC_MAX bytes). */
void shim_net_format_mac(const unsigned char *mac, char *out);
