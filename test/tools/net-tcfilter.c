/*
 * net-tcfilter POD_NS NODE_NS: drives shim_net (test/integration/net-tcfilter.sh).
 *
 * POD_NS and NODE_NS are names under /run/netns created by the test (a veth joins them, the pod
 * end has an IPv4 address and a default route). The tool:
 *  1. checks the refusals of host networking for confidential pods;
 *  2. runs shim_net_setup() on the pod namespace and prints what it read, the agent messages
 *     the converters make, and `tc -n POD filter show` of the veth;
 *  3. plays the guest on the tap fd, with the veth's MAC and the pod's first IPv4 address: it
 *     answers ARP requests and ICMP echo requests it reads there;
 *  4. meanwhile a child in the node namespace sends 3 ICMP echo requests to the pod's address
 *     over a raw socket and expects exactly 3 replies (a duplicate would mean the pod's own
 *     kernel answered too, i.e. the frames did not go through the tap);
 *  5. tears down. Exit 0 when every step held.
 * NET_TCFILTER_HOST_TAP=1: the libvirt mode (SHIM_NET_HOST_TAP): the guest is played on the
 * persistent tap setup made in the tool's own namespace (run it in a test namespace standing for
 * the host), attached by name as libvirtd does, so frames cross pod veth -> ccp -> cch -> tap.
 * With --bench COUNT it measures instead: setup and teardown latency, and the round-trip time
 * node -> pod with the pod's kernel answering, then through tc and the tap (bench/net-tcfilter.sh).
 * All traffic stays between the two namespaces.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/error.h"

#include "hypervisor/hv.h"
#include "kata/agent.pb-c.h"
#include "kata/types.pb-c.h"
#include "shim/network/shim-net.h"

#define N_PINGS 3

static int fail(const char *what, int r, struct cc_error *err)
{
        fprintf(stderr, "FAIL: %s: %d %s\n", what, r, cc_error_message(err));
        return 1;
}

static uint16_t csum(const void *data, size_t len)
{
        const uint8_t *p = data;
        uint32_t sum = 0;
        for (size_t i = 0; i + 1 < len; i += 2)
                sum += (uint32_t)(p[i] << 8 | p[i + 1]);
        if (len & 1)
                sum += (uint32_t)(p[len - 1] << 8);
        while (sum >> 16)
                sum = (sum & 0xffff) + (sum >> 16);
        return htons((uint16_t)~sum);
}

/* The node: N_PINGS echo requests to `dst` from NODE_NS; exit status 0 = all answered once. */
static int node_pinger(const char *node_ns, struct in_addr dst)
{
        char path[256];
        snprintf(path, sizeof(path), "/run/netns/%s", node_ns);
        _cleanup_close_ int nsfd = open(path, O_RDONLY | O_CLOEXEC);
        if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0) {
                perror("node: setns");
                return 10;
        }
        _cleanup_close_ int s = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
        if (s < 0) {
                perror("node: raw socket");
                return 10;
        }
        struct timeval tv = {.tv_sec = 3};
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        uint16_t id = (uint16_t)getpid();
        int replies[N_PINGS + 1] = {0};
        for (int seq = 1; seq <= N_PINGS; seq++) {
                struct {
                        struct icmphdr h;
                        char payload[16];
                } req = {.h = {.type = ICMP_ECHO}};
                req.h.un.echo.id = htons(id);
                req.h.un.echo.sequence = htons((uint16_t)seq);
                memcpy(req.payload, "cc-net-tcfilter", 16);
                req.h.checksum = csum(&req, sizeof(req));
                struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = dst};
                if (sendto(s, &req, sizeof(req), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                        perror("node: sendto");
                        return 11;
                }
                /* Read until this sequence's reply, counting every reply (duplicates too). */
                for (;;) {
                        _Alignas(4) char buf[1500];
                        ssize_t n = recv(s, buf, sizeof(buf), 0);
                        if (n < 0) {
                                fprintf(stderr, "node: no reply to seq %d\n", seq);
                                return 12;
                        }
                        const struct iphdr *ip = (const void *)buf;
                        if ((size_t)n < sizeof(*ip) + sizeof(struct icmphdr))
                                continue;
                        const struct icmphdr *ic = (const void *)(buf + ip->ihl * 4);
                        if (ic->type != ICMP_ECHOREPLY || ntohs(ic->un.echo.id) != id)
                                continue;
                        unsigned rs = ntohs(ic->un.echo.sequence);
                        if (rs >= 1 && rs <= N_PINGS)
                                replies[rs]++;
                        if (rs == (unsigned)seq)
                                break;
                }
        }
        /* Late duplicates. */
        tv = (struct timeval){.tv_usec = 500000};
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        _Alignas(4) char buf[1500];
        ssize_t n;
        while ((n = recv(s, buf, sizeof(buf), 0)) > 0) {
                if ((size_t)n < sizeof(struct iphdr) + sizeof(struct icmphdr))
                        continue;
                const struct iphdr *ip = (const void *)buf;
                const struct icmphdr *ic = (const void *)(buf + ip->ihl * 4);
                unsigned rs = ntohs(ic->un.echo.sequence);
                if (ic->type == ICMP_ECHOREPLY && ntohs(ic->un.echo.id) == id && rs >= 1 &&
                    rs <= N_PINGS)
                        replies[rs]++;
        }
        int bad = 0;
        for (int i = 1; i <= N_PINGS; i++) {
                printf("node: seq %d: %d repl%s\n", i, replies[i], replies[i] == 1 ? "y" : "ies");
                bad += replies[i] != 1;
        }
        return bad ? 13 : 0;
}

struct guest {
        uint8_t mac[6];
        struct in_addr ip;
        size_t hdr_len; /* 10 with IFF_VNET_HDR: struct virtio_net_hdr before each frame */
        int arp_replies, echo_replies, frames;
};

/* Answers an ARP request for our address; returns the reply length or 0. */
static size_t arp_answer(struct guest *g, const uint8_t *f, size_t n, uint8_t *out)
{
        if (n < 42 || f[12] != 0x08 || f[13] != 0x06)
                return 0;
        const uint8_t *a = f + 14; /* htype(2) ptype(2) hlen plen oper(2) sha spa tha tpa */
        if (a[6] != 0 || a[7] != ARPOP_REQUEST || memcmp(a + 24, &g->ip, 4) != 0)
                return 0;
        memcpy(out, f + 6, 6); /* to the asker */
        memcpy(out + 6, g->mac, 6);
        out[12] = 0x08, out[13] = 0x06;
        uint8_t *r = out + 14;
        memcpy(r, a, 6); /* htype, ptype, hlen, plen */
        r[6] = 0, r[7] = ARPOP_REPLY;
        memcpy(r + 8, g->mac, 6);  /* sha */
        memcpy(r + 14, &g->ip, 4); /* spa */
        memcpy(r + 18, a + 8, 10); /* tha, tpa = the asker's sha, spa */
        return 42;
}

/*
 * Answers an ICMP echo request to our address; returns the reply length or 0. The IP header sits
 * at offset 14 of the frame, not 4-aligned, so fields are copied out and written back bytewise.
 */
static size_t echo_answer(struct guest *g, const uint8_t *f, size_t n, uint8_t *out)
{
        struct iphdr ip;
        if (n < 14 + sizeof(ip) + sizeof(struct icmphdr) || f[12] != 0x08 || f[13] != 0)
                return 0;
        memcpy(&ip, f + 14, sizeof(ip));
        size_t ihl = ip.ihl * 4u, tot = ntohs(ip.tot_len);
        if (ip.protocol != IPPROTO_ICMP || ip.daddr != g->ip.s_addr || tot > n - 14 ||
            ihl < sizeof(ip) || tot < ihl + sizeof(struct icmphdr) || f[14 + ihl] != ICMP_ECHO)
                return 0;
        memcpy(out, f, 14 + tot);
        memcpy(out, f + 6, 6);
        memcpy(out + 6, g->mac, 6);
        uint8_t *rip = out + 14;
        memcpy(rip + 12, &ip.daddr, 4); /* source: us */
        memcpy(rip + 16, &ip.saddr, 4); /* destination: the asker */
        rip[10] = rip[11] = 0;
        uint16_t c = csum(rip, ihl);
        memcpy(rip + 10, &c, 2);
        uint8_t *ric = rip + ihl;
        ric[0] = ICMP_ECHOREPLY;
        ric[2] = ric[3] = 0;
        c = csum(ric, tot - ihl);
        memcpy(ric + 2, &c, 2);
        return 14 + tot;
}

static int parse_mac(const char *s, uint8_t *mac)
{
        return sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3],
                      &mac[4], &mac[5]) == 6
                       ? 0
                       : -EINVAL;
}

/*
 * Hands tap_fd to QEMU as `-netdev tap,fd=3` with a virtio-net device of the guest MAC, the way
 * the hypervisor library does, and asks its monitor for the network: QEMU must accept the fd
 * (it probes the tap's flags and vnet header support). QEMU stays paused (-S): no guest runs.
 */
static int qemu_check(const char *qemu, int tap_fd, const char *mac)
{
        int in[2], out[2];
        if (pipe2(in, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(out, O_CLOEXEC) < 0) {
                close(in[0]);
                close(in[1]);
                return -errno;
        }
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(tap_fd, 3) < 0)
                        _exit(127);
                char dev[128];
                snprintf(dev, sizeof(dev), "virtio-net-pci,netdev=n0,mac=%s", mac);
                execlp(qemu, qemu, "-machine", "q35,accel=tcg", "-S", "-display", "none",
                       "-nodefaults", "-netdev", "tap,id=n0,fd=3", "-device", dev, "-monitor",
                       "stdio", (char *)NULL);
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        static const char cmds[] = "info network\nquit\n";
        if (write(in[1], cmds, sizeof(cmds) - 1) < 0)
                perror("qemu monitor");
        close(in[1]);
        /* The monitor echoes its input with terminal escapes; keep the answer's lines only. */
        FILE *f = fdopen(out[0], "r");
        char line[512];
        while (f && fgets(line, sizeof(line), f))
                if (strstr(line, "index="))
                        printf("qemu: %s", line + strspn(line, " "));
        if (f)
                fclose(f);
        else
                close(out[0]);
        int status;
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* Attaches to the existing tap `name` as libvirtd does (no IFF_TUN_EXCL); -errno on failure. */
static int attach_tap(const char *name)
{
        int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI};
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
        if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
                int e = errno;
                close(fd);
                return -e;
        }
        return fd;
}

static int check_refusals(void)
{
        _cleanup_error_ struct cc_error *err = NULL;
        struct shim_net *net = NULL;
        int r = shim_net_setup(NULL, SHIM_NET_CONFIDENTIAL, &net, &err);
        printf("refusal (no netns path): %d %s\n", r, cc_error_message(err));
        if (r != -EPERM)
                return 1;
        r = shim_net_setup("/proc/self/ns/net", SHIM_NET_CONFIDENTIAL, &net, &err);
        printf("refusal (host netns): %d %s\n", r, cc_error_message(err));
        if (r != -EPERM)
                return 1;
        r = shim_net_setup(NULL, 0, &net, &err);
        if (r < 0 || net->n_ifs != 0)
                return 1;
        shim_net_free(net);
        return 0;
}

static void print_agent_messages(struct shim_net *net)
{
        for (size_t i = 0; i < net->n_ifs; i++) {
                Types__Interface *m = NULL;
                if (shim_net_interface_to_proto(&net->ifs[i], &m, NULL) < 0)
                        continue;
                printf("agent Interface: name=%s hwAddr=%s mtu=%lu type=%s", m->name, m->hwaddr,
                       (unsigned long)m->mtu, m->type);
                for (size_t j = 0; j < m->n_ipaddresses; j++)
                        printf(" ip=%s/%s", m->ipaddresses[j]->address, m->ipaddresses[j]->mask);
                printf("\n");
                protobuf_c_message_free_unpacked(&m->base, NULL);
        }
        Grpc__Routes *rs = NULL;
        if (shim_net_routes_to_proto(net, &rs, NULL) == 0) {
                for (size_t j = 0; j < rs->n_routes; j++)
                        printf("agent Route: dest='%s' gateway='%s' device=%s scope=%u\n",
                               rs->routes[j]->dest, rs->routes[j]->gateway, rs->routes[j]->device,
                               rs->routes[j]->scope);
                protobuf_c_message_free_unpacked(&rs->base, NULL);
        }
        Grpc__ARPNeighbors *ns = NULL;
        if (shim_net_neighbors_to_proto(net, &ns, NULL) == 0) {
                for (size_t j = 0; j < ns->n_arpneighbors; j++)
                        printf("agent ARPNeighbor: %s lladdr %s dev %s\n",
                               ns->arpneighbors[j]->toipaddress->address,
                               ns->arpneighbors[j]->lladdr, ns->arpneighbors[j]->device);
                protobuf_c_message_free_unpacked(&ns->base, NULL);
        }
}

/* Plays the guest on tap_fd until the pinger child exits (or 20 s pass). */
static int serve_guest(struct guest *g, int tap_fd, pid_t child)
{
        time_t deadline = time(NULL) + 20;
        while (time(NULL) < deadline) {
                int status;
                if (waitpid(child, &status, WNOHANG) == child)
                        return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
                struct pollfd p = {.fd = tap_fd, .events = POLLIN};
                if (poll(&p, 1, 100) <= 0)
                        continue;
                /* With a vnet header, frames come after it; the replies get an all-zero one
                 * (no checksum offload, no GSO), as a guest's virtio-net driver would send. */
                uint8_t buf[2048], reply[2048] = {0};
                ssize_t n = read(tap_fd, buf, sizeof(buf));
                if (n <= (ssize_t)g->hdr_len)
                        continue;
                const uint8_t *f = buf + g->hdr_len;
                uint8_t *out = reply + g->hdr_len;
                size_t flen = (size_t)n - g->hdr_len;
                g->frames++;
                size_t len;
                if ((len = arp_answer(g, f, flen, out)) > 0) {
                        len += g->hdr_len;
                        if (write(tap_fd, reply, len) == (ssize_t)len)
                                g->arp_replies++;
                } else if ((len = echo_answer(g, f, flen, out)) > 0) {
                        len += g->hdr_len;
                        if (write(tap_fd, reply, len) == (ssize_t)len)
                                g->echo_replies++;
                }
        }
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        return 101;
}

/* --- benchmark mode (bench/net-tcfilter.sh) --- */

static double now_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/* From the node: `count` echo requests one after the other; prints the round-trip times. */
static int rtt_pinger(const char *node_ns, struct in_addr dst, int count, const char *label)
{
        char path[256];
        snprintf(path, sizeof(path), "/run/netns/%s", node_ns);
        _cleanup_close_ int nsfd = open(path, O_RDONLY | O_CLOEXEC);
        if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0)
                return 10;
        _cleanup_close_ int s = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
        if (s < 0)
                return 10;
        struct timeval tv = {.tv_sec = 2};
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        uint16_t id = (uint16_t)getpid();
        double *rtt = calloc((size_t)count, sizeof(*rtt));
        if (!rtt)
                return 10;
        for (int seq = 1; seq <= count; seq++) {
                struct {
                        struct icmphdr h;
                        char payload[56];
                } req = {.h = {.type = ICMP_ECHO}};
                req.h.un.echo.id = htons(id);
                req.h.un.echo.sequence = htons((uint16_t)seq);
                req.h.checksum = csum(&req, sizeof(req));
                struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = dst};
                double t0 = now_us();
                if (sendto(s, &req, sizeof(req), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                        return 11;
                for (;;) {
                        _Alignas(4) char buf[1500];
                        ssize_t n = recv(s, buf, sizeof(buf), 0);
                        if (n < 0) {
                                free(rtt);
                                return 12;
                        }
                        if ((size_t)n < sizeof(struct iphdr) + sizeof(struct icmphdr))
                                continue;
                        const struct iphdr *ip = (const void *)buf;
                        const struct icmphdr *ic = (const void *)(buf + ip->ihl * 4);
                        if (ic->type == ICMP_ECHOREPLY && ntohs(ic->un.echo.id) == id &&
                            ntohs(ic->un.echo.sequence) == (uint16_t)seq)
                                break;
                }
                rtt[seq - 1] = now_us() - t0;
        }
        qsort(rtt, (size_t)count, sizeof(*rtt), cmp_double);
        printf("%-28s n=%d median=%.1f us p90=%.1f us\n", label, count, rtt[count / 2],
               rtt[count * 9 / 10]);
        free(rtt);
        return 0;
}

static int bench(int count, const char *pod, const char *node)
{
        char pod_path[256];
        snprintf(pod_path, sizeof(pod_path), "/run/netns/%s", pod);
        _cleanup_error_ struct cc_error *err = NULL;
        /* NET_TCFILTER_HOST_TAP=1: libvirt's mode (veth pair + persistent tap here). */
        const char *ht = getenv("NET_TCFILTER_HOST_TAP");
        bool host_tap = ht && strcmp(ht, "1") == 0;
        unsigned flags = SHIM_NET_CONFIDENTIAL | (host_tap ? SHIM_NET_HOST_TAP : 0);
        printf("mode: %s\n", host_tap ? "host tap (libvirt)" : "pod tap (qemu, clh)");

        /* Setup and teardown latency (each adds to pod start or stop). */
        enum { ROUNDS = 15 };
        double up[ROUNDS], down[ROUNDS];
        for (int i = 0; i < ROUNDS; i++) {
                struct shim_net *net = NULL;
                double t0 = now_us();
                int r = shim_net_setup(pod_path, flags, &net, &err);
                double t1 = now_us();
                if (r < 0)
                        return fail("setup", r, err);
                r = shim_net_teardown(net, &err);
                double t2 = now_us();
                shim_net_free(net);
                if (r < 0)
                        return fail("teardown", r, err);
                up[i] = (t1 - t0) / 1e3;
                down[i] = (t2 - t1) / 1e3;
        }
        qsort(up, ROUNDS, sizeof(double), cmp_double);
        qsort(down, ROUNDS, sizeof(double), cmp_double);
        printf("shim_net_setup               n=%d median=%.2f ms max=%.2f ms\n", ROUNDS,
               up[ROUNDS / 2], up[ROUNDS - 1]);
        printf("shim_net_teardown            n=%d median=%.2f ms max=%.2f ms\n", ROUNDS,
               down[ROUNDS / 2], down[ROUNDS - 1]);

        struct shim_net *net = NULL;
        int r = shim_net_setup(pod_path, flags, &net, &err);
        if (r < 0)
                return fail("setup", r, err);
        struct guest g = {0};
        if (net->n_ifs < 1 || net->ifs[0].n_addrs < 1 || parse_mac(net->ifs[0].mac, g.mac) < 0 ||
            inet_pton(AF_INET, net->ifs[0].addrs[0].addr, &g.ip) != 1) {
                shim_net_teardown(net, NULL);
                shim_net_free(net);
                fprintf(stderr, "bench: the pod needs eth0 with an IPv4 address\n");
                return 1;
        }
        r = shim_net_teardown(net, &err);

        /* Baseline: the pod namespace's own kernel answers (no taps, no filters). */
        fflush(stdout);
        pid_t child = fork();
        if (child == 0)
                _exit(rtt_pinger(node, g.ip, count, "node -> pod kernel (veth)"));
        int status;
        waitpid(child, &status, 0);
        int rc = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;

        /* Through tc mirred and the tap, answered by this process as the guest. */
        net = NULL;
        r = shim_net_setup(pod_path, flags, &net, &err);
        if (r < 0)
                return fail("setup", r, err);
        /* The guest's side: the pod tap's fd, or the host tap attached by name (libvirt). */
        int guest_fd = host_tap ? attach_tap(net->ifs[0].host_tap) : net->ifs[0].tap_fd;
        fflush(stdout);
        child = guest_fd < 0 ? -1 : fork();
        if (child == 0)
                _exit(rtt_pinger(node, g.ip, count,
                                 host_tap ? "node -> host tap -> user space"
                                          : "node -> tap -> user space"));
        if (guest_fd < 0 || serve_guest(&g, guest_fd, child) != 0)
                rc = 1;
        if (host_tap && guest_fd >= 0)
                close(guest_fd);
        if (shim_net_teardown(net, &err) < 0)
                rc = 1;
        shim_net_free(net);
        return rc;
}

int main(int argc, char **argv)
{
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc == 5 && strcmp(argv[1], "--bench") == 0)
                return bench(atoi(argv[2]), argv[3], argv[4]);
        if (argc != 3) {
                fprintf(stderr, "usage: %s POD_NS NODE_NS | --bench COUNT POD_NS NODE_NS\n",
                        argv[0]);
                return 2;
        }
        if (check_refusals() != 0) {
                fprintf(stderr, "FAIL: host networking was not refused\n");
                return 1;
        }

        char pod_path[256];
        snprintf(pod_path, sizeof(pod_path), "/run/netns/%s", argv[1]);
        _cleanup_error_ struct cc_error *err = NULL;
        struct shim_net *net = NULL;
        /* NET_TCFILTER_VNET_HDR=1: taps with IFF_VNET_HDR, as QEMU's virtio-net uses them. */
        const char *vh = getenv("NET_TCFILTER_VNET_HDR");
        bool vnet_hdr = vh && strcmp(vh, "1") == 0;
        const char *ht = getenv("NET_TCFILTER_HOST_TAP");
        bool host_tap = ht && strcmp(ht, "1") == 0;
        int r = shim_net_setup(pod_path,
                               SHIM_NET_CONFIDENTIAL | (vnet_hdr ? SHIM_NET_VNET_HDR : 0) |
                                       (host_tap ? SHIM_NET_HOST_TAP : 0),
                               &net, &err);
        if (r < 0)
                return fail("shim_net_setup", r, err);
        printf("taps with a vnet header: %s\n", vnet_hdr ? "yes" : "no");
        for (size_t i = 0; i < net->n_ifs; i++) {
                const struct shim_net_if *nif = &net->ifs[i];
                printf("interface %s mac %s mtu %u kind %s tap %s fd %d", nif->name, nif->mac,
                       nif->mtu, nif->kind, nif->tap_name, nif->tap_fd);
                if (host_tap)
                        printf(" host veth %s host tap %s", nif->host_veth, nif->host_tap);
                printf("\n");
                for (size_t j = 0; j < nif->n_addrs; j++)
                        printf("  address %s/%u\n", nif->addrs[j].addr, nif->addrs[j].prefix_len);
        }
        print_agent_messages(net);
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "tc -n %s filter show ingress dev %s; tc -n %s qdisc show",
                 argv[1], net->n_ifs ? net->ifs[0].name : "lo", argv[1]);
        fflush(stdout);
        if (system(cmd) != 0)
                fprintf(stderr, "tc show failed\n");

        int rc = 0;
        struct guest g = {.hdr_len = vnet_hdr ? 10 : 0};
        /* The guest answers on the tap of eth0 (the CNI interface; others may exist). */
        const struct shim_net_if *eth0 = NULL;
        const struct shim_net_addr *a4 = NULL;
        for (size_t i = 0; i < net->n_ifs; i++)
                if (strcmp(net->ifs[i].name, "eth0") == 0)
                        eth0 = &net->ifs[i];
        for (size_t j = 0; eth0 && j < eth0->n_addrs; j++)
                if (eth0->addrs[j].family == AF_INET && !a4)
                        a4 = &eth0->addrs[j];
        if (!a4 || parse_mac(eth0->mac, g.mac) < 0 || inet_pton(AF_INET, a4->addr, &g.ip) != 1) {
                fprintf(stderr, "FAIL: expected eth0 with an IPv4 address\n");
                rc = 1;
        } else {
                /* libvirt mode: the guest side is the persistent tap here, by name. */
                int guest_fd = host_tap ? attach_tap(eth0->host_tap) : eth0->tap_fd;
                if (guest_fd < 0)
                        fprintf(stderr, "FAIL: attaching to %s: %s\n", eth0->host_tap,
                                strerror(-guest_fd));
                fflush(stdout);
                pid_t child = guest_fd < 0 ? -1 : fork();
                if (child == 0)
                        _exit(node_pinger(argv[2], g.ip));
                int pr = guest_fd < 0 ? 102 : serve_guest(&g, guest_fd, child);
                if (host_tap && guest_fd >= 0)
                        close(guest_fd);
                printf("guest: %d frames read on the tap, %d ARP replies, %d echo replies "
                       "written; node pinger exit %d\n",
                       g.frames, g.arp_replies, g.echo_replies, pr);
                if (pr != 0 || g.echo_replies != N_PINGS || g.arp_replies < 1)
                        rc = 1;
        }

        const char *qemu = getenv("NET_TCFILTER_QEMU");
        if (qemu && *qemu && eth0 && !host_tap) {
                r = qemu_check(qemu, eth0->tap_fd, eth0->mac);
                printf("qemu with the tap fd: %s\n", r == 0 ? "ok" : "failed");
                if (r < 0)
                        rc = 1;
        }

        /* What the VMM would hold: a duplicate of each tap fd. Teardown must remove the taps
         * even while those are open. */
        struct hv_net *nets = NULL;
        size_t n_nets = 0;
        r = shim_net_hv_nets(net, &nets, &n_nets, &err);
        if (r < 0 || n_nets != net->n_ifs)
                rc = fail("shim_net_hv_nets", r, err);
        int vmm_fds[64];
        for (size_t i = 0; i < n_nets && i < 64; i++) {
                if (host_tap) {
                        /* What libvirtd would hold: the tap attached by name. */
                        vmm_fds[i] = attach_tap(nets[i].tap_name ? nets[i].tap_name : "");
                        printf("VMM NIC %zu: tap name %s fd %d mac %s\n", i,
                               nets[i].tap_name ? nets[i].tap_name : "(none)", vmm_fds[i],
                               nets[i].mac);
                        if (nets[i].tap_fd != -1 || vmm_fds[i] < 0)
                                rc = 1;
                        continue;
                }
                vmm_fds[i] = fcntl(nets[i].tap_fd, F_DUPFD_CLOEXEC, 3);
                printf("VMM NIC %zu: tap fd %d mac %s\n", i, vmm_fds[i], nets[i].mac);
        }
        free(nets);

        r = shim_net_teardown(net, &err);
        if (r < 0)
                rc = fail("shim_net_teardown", r, err);
        /* A second teardown has nothing left to do. */
        if (shim_net_teardown(net, &err) < 0)
                rc = 1;
        for (size_t i = 0; i < net->n_ifs; i++) {
                snprintf(cmd, sizeof(cmd), "ip -n %s link show %s >/dev/null 2>&1", argv[1],
                         net->ifs[i].tap_name);
                if (system(cmd) == 0) {
                        fprintf(stderr, "FAIL: %s survived teardown while the VMM held its fd\n",
                                net->ifs[i].tap_name);
                        rc = 1;
                }
                if (!host_tap)
                        continue;
                /* The host side: the persistent tap (held by "libvirtd") and the pair's end. */
                if (if_nametoindex(net->ifs[i].host_tap) || if_nametoindex(net->ifs[i].host_veth)) {
                        fprintf(stderr, "FAIL: %s or %s survived teardown\n", net->ifs[i].host_tap,
                                net->ifs[i].host_veth);
                        rc = 1;
                }
        }
        for (size_t i = 0; i < n_nets && i < 64; i++)
                close(vmm_fds[i]);
        shim_net_free(net);
        printf("%s\n", rc == 0 ? "net-tcfilter: OK" : "net-tcfilter: FAILED");
        return rc;
}
