/*
 * Boot latency: time from "start" until the agent channel is connectable and until the guest
 * answers on it, for
 *   lib-qemu   our QEMU backend (hv_vm_new + hv_vm_start, then connect)
 *   hand-qemu  QEMU started by hand with the same argv (rendered by the same code), the agent
 *              socket polled every millisecond, QMP driven by hand
 * Three times per run: "socket" (agent socket connectable), "ready" (QEMU's main loop runs:
 * a QMP command answered by hand, hv_vm_start() returned for the library) and "agent" (the
 * guest answered on the channel).
 *   lib-libvirt / hand-libvirt   the same through libvirtd (virDomainCreateXML by hand), when
 *              a libvirt URI is given
 * Rounds alternate the modes so that machine load hits them alike; medians are printed.
 *
 *   hv-boot KERNEL INITRD DIR ROUNDS [LIBVIRT_URI]
 *
 * The guest's /init must answer "ping" with "pong:ping" on the port agent.channel.0
 * (test/integration/hv-guest.sh builds one).
 */
#include <errno.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/error.h"
#include "cc/log.h"

#include "hypervisor/hv-internal.h"
#include "hypervisor/libvirt/libvirt.h"
#include "hypervisor/qemu/qemu.h"

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int try_connect(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                return fd;
        if (fd >= 0)
                close(fd);
        return -1;
}

/* Sends "ping" every 20 ms until "pong:ping" comes back; 0 or -ETIMEDOUT. */
static int ping(int fd, int timeout_ms)
{
        double start = now(), last = 0;
        char buf[256];
        size_t len = 0;
        while (now() - start < timeout_ms) {
                if (now() - last >= 20) {
                        if (write(fd, "ping\n", 5) != 5)
                                return -EIO;
                        last = now();
                }
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                if (poll(&pfd, 1, 5) > 0) {
                        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
                        if (n <= 0)
                                return -EIO;
                        len += (size_t)n;
                        buf[len] = 0;
                        if (strstr(buf, "pong:ping"))
                                return 0;
                        if (len > 128)
                                len = 0;
                }
        }
        return -ETIMEDOUT;
}

struct sample {
        double sock;  /* start -> agent socket connectable */
        double ready; /* start -> QEMU initialised: QMP greeting (hand) or start returned (lib) */
        double agent; /* start -> guest answered */
};

static struct hv_config config(const char *kernel, const char *initrd, const char *dir,
                               const char *backend, const char *uri)
{
        return (struct hv_config){
                .backend = backend,
                .name = "hv-bench",
                .run_dir = dir,
                .libvirt_uri = uri,
                .vcpus = 1,
                .memory_mib = 256,
                .kernel = kernel,
                .initrd = initrd,
                .kernel_params = "quiet",
                .accel = HV_ACCEL_TCG,
                .channel = HV_CHANNEL_SERIAL,
        };
}

static int run_lib(const struct hv_config *c, struct sample *s)
{
        _cleanup_error_ struct cc_error *err = NULL;
        struct hv_vm *vm = NULL;
        double t0 = now();
        cc_log_debug("bench: lib start");
        if (hv_vm_new(c, &vm, &err) < 0 || hv_vm_start(vm, 60000, &err) < 0) {
                fprintf(stderr, "hv-boot: %s\n", cc_error_message(err));
                hv_vm_free(vm);
                return -1;
        }
        s->ready = now() - t0;
        _cleanup_free_ char *addr = NULL;
        int fd = -1;
        if (hv_vm_agent_address(vm, &addr, &err) == 0)
                fd = hv_agent_dial(addr, 1000, &err);
        s->sock = now() - t0;
        int r = fd >= 0 ? ping(fd, 60000) : -1;
        s->agent = now() - t0;
        if (r < 0) {
                _cleanup_free_ char *last = hv__file_last_line(hv_vm_console_log(vm));
                struct hv_exit ex = {0};
                int w = hv_vm_wait(vm, 0, &ex, NULL);
                fprintf(stderr, "hv-boot: no answer (%s); VM %s (code %d signal %d); console: %s\n",
                        strerror(-r), w == 0 ? "exited" : "running", ex.code, ex.signal,
                        last ? last : "");
        }
        if (fd >= 0)
                close(fd);
        hv_vm_stop(vm, 0, NULL);
        hv_vm_free(vm);
        return r;
}

/*
 * Waits for the agent socket (polled every millisecond) and, when qmp_fd >= 0, at the same
 * time for QEMU's QMP greeting; then for the guest's answer.
 */
static int wait_agent(const char *sock, int qmp_fd, double t0, struct sample *s)
{
        int fd = -1;
        /* QMP by hand: greeting, then qmp_capabilities; "ready" when that is answered, the
         * point where QEMU's main loop runs (the library's start returns at the same point). */
        int qmp_state = qmp_fd >= 0 ? 0 : 2;
        char buf[4096];
        size_t len = 0;
        while (fd < 0 || qmp_state < 2) {
                if (now() - t0 > 60000)
                        return -1;
                if (fd < 0 && (fd = try_connect(sock)) >= 0)
                        s->sock = now() - t0;
                if (qmp_state < 2) {
                        struct pollfd pfd = {.fd = qmp_fd, .events = POLLIN};
                        if (poll(&pfd, 1, 1) > 0) {
                                ssize_t n = read(qmp_fd, buf + len, sizeof(buf) - 1 - len);
                                if (n <= 0)
                                        return -1;
                                len += (size_t)n;
                                buf[len] = 0;
                                if (qmp_state == 0 && strchr(buf, '\n')) {
                                        const char *cmd = "{\"execute\":\"qmp_capabilities\"}\n";
                                        if (write(qmp_fd, cmd, strlen(cmd)) < 0)
                                                return -1;
                                        len = 0;
                                        qmp_state = 1;
                                } else if (qmp_state == 1 && strstr(buf, "\"return\"")) {
                                        s->ready = now() - t0;
                                        qmp_state = 2;
                                }
                        }
                } else if (fd < 0) {
                        usleep(1000);
                }
        }
        int r = ping(fd, 60000);
        s->agent = now() - t0;
        close(fd);
        return r;
}

static int run_hand_qemu(const struct hv_config *c, struct sample *s)
{
        _cleanup_free_ char *console = hv__path(c->run_dir, "console.log");
        _cleanup_free_ char *qmp = hv__path(c->run_dir, "qmp.sock");
        _cleanup_free_ char *sock = hv__path(c->run_dir, HV_QEMU_AGENT_SOCK);
        struct hv_qemu_plan plan = {.cfg = c,
                                    .console_log = console,
                                    .accel = HV_ACCEL_TCG,
                                    .channel = HV_CHANNEL_SERIAL,
                                    .qmp_fd = 3,
                                    .vhost_fd = -1};
        struct hv_argv a = {0};
        if (hv_qemu_argv(&plan, &a, NULL) < 0)
                return -1;
        unlink(sock);
        /* The same argv needs its QMP socket on fd 3, as the library provides it. */
        double t0 = now();
        int lfd = hv__unix_listen(qmp, NULL);
        int qfd = hv__unix_connect(qmp, NULL);
        struct hv_proc p = HV_PROC_INIT;
        int r = hv__proc_spawn(&p, a.v, &lfd, 1, NULL, NULL);
        close(lfd);
        hv__argv_done(&a);
        if (r == 0)
                r = wait_agent(sock, qfd, t0, s);
        close(qfd);
        hv__proc_done(&p);
        unlink(qmp);
        unlink(sock);
        unlink(console);
        char pid[300];
        snprintf(pid, sizeof(pid), "%s/qemu.pid", c->run_dir);
        unlink(pid);
        return r;
}

static void quiet(void *data, virErrorPtr e)
{
}

static int run_hand_libvirt(const struct hv_config *c, virConnectPtr conn, struct sample *s)
{
        _cleanup_free_ char *console = hv__path(c->run_dir, "console.log");
        _cleanup_free_ char *sock = hv__path(c->run_dir, HV_QEMU_AGENT_SOCK);
        unsigned long version = 0;
        virConnectGetLibVersion(conn, &version);
        struct hv_libvirt_plan plan = {.cfg = c,
                                       .console_log = console,
                                       .accel = HV_ACCEL_TCG,
                                       .channel = HV_CHANNEL_SERIAL,
                                       .libvirt_version = version};
        _cleanup_free_ char *xml = NULL;
        if (hv_libvirt_domain_xml(&plan, &xml, NULL) < 0)
                return -1;
        double t0 = now();
        virDomainPtr dom = virDomainCreateXML(conn, xml, VIR_DOMAIN_START_AUTODESTROY);
        if (!dom) {
                fprintf(stderr, "hv-boot: libvirt: %s\n", virGetLastErrorMessage());
                return -1;
        }
        s->ready = now() - t0; /* virDomainCreateXML returns with QEMU initialised */
        int r = wait_agent(sock, -1, t0, s);
        virDomainDestroy(dom);
        virDomainFree(dom);
        unlink(sock);
        unlink(console);
        return r;
}

static int cmp(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
        qsort(v, (size_t)n, sizeof(*v), cmp);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

enum { LIB_QEMU, HAND_QEMU, LIB_LIBVIRT, HAND_LIBVIRT, MODES };
static const char *names[MODES] = {"lib-qemu", "hand-qemu", "lib-libvirt", "hand-libvirt"};

int main(int argc, char **argv)
{
        if (argc < 5) {
                fprintf(stderr, "usage: hv-boot KERNEL INITRD DIR ROUNDS [LIBVIRT_URI]\n");
                return 2;
        }
        int rounds = atoi(argv[4]);
        const char *uri = argc > 5 ? argv[5] : NULL;
        if (rounds < 1 || rounds > 100)
                return 2;
        if (getenv("HV_BENCH_DEBUG"))
                cc_log_set_level(CC_LOG_DEBUG);
        virConnectPtr conn = NULL;
        if (uri) {
                virSetErrorFunc(NULL, quiet);
                conn = virConnectOpen(uri);
                if (!conn) {
                        fprintf(stderr, "hv-boot: libvirt %s: %s\n", uri, virGetLastErrorMessage());
                        return 1;
                }
        }
        int modes = uri ? MODES : 2;
        double sock[MODES][100], ready[MODES][100], agent[MODES][100];
        for (int i = 0; i < rounds; i++) {
                for (int k = 0; k < modes; k++) {
                        /* Alternate the order every round. */
                        int m = i % 2 ? modes - 1 - k : k;
                        struct hv_config c = config(argv[1], argv[2], argv[3],
                                                    m >= LIB_LIBVIRT ? "libvirt" : "qemu", uri);
                        struct sample s;
                        int r = m == LIB_QEMU || m == LIB_LIBVIRT ? run_lib(&c, &s)
                                : m == HAND_QEMU                  ? run_hand_qemu(&c, &s)
                                                                  : run_hand_libvirt(&c, conn, &s);
                        if (r < 0) {
                                fprintf(stderr, "hv-boot: %s round %d failed\n", names[m], i);
                                return 1;
                        }
                        sock[m][i] = s.sock;
                        ready[m][i] = s.ready;
                        agent[m][i] = s.agent;
                        fprintf(stderr,
                                "round %d %-12s socket %7.1f ms  ready %7.1f ms  agent %7.1f ms\n",
                                i, names[m], s.sock, s.ready, s.agent);
                }
        }
        double ms[MODES], mr[MODES], ma[MODES];
        printf("%-14s %10s %10s %10s   (medians of %d rounds, TCG, 1 vCPU, 256 MiB)\n", "mode",
               "socket_ms", "ready_ms", "agent_ms", rounds);
        for (int m = 0; m < modes; m++) {
                ms[m] = median(sock[m], rounds);
                mr[m] = median(ready[m], rounds);
                ma[m] = median(agent[m], rounds);
                printf("%-14s %10.1f %10.1f %10.1f\n", names[m], ms[m], mr[m], ma[m]);
        }
        printf("library - by hand, qemu:    socket %+.1f ms, ready %+.1f ms, agent %+.1f ms\n",
               ms[LIB_QEMU] - ms[HAND_QEMU], mr[LIB_QEMU] - mr[HAND_QEMU],
               ma[LIB_QEMU] - ma[HAND_QEMU]);
        if (uri) {
                printf("library - by hand, libvirt: socket %+.1f ms, ready %+.1f ms, agent %+.1f "
                       "ms\n",
                       ms[LIB_LIBVIRT] - ms[HAND_LIBVIRT], mr[LIB_LIBVIRT] - mr[HAND_LIBVIRT],
                       ma[LIB_LIBVIRT] - ma[HAND_LIBVIRT]);
                printf("libvirt - direct QEMU (lib): socket %+.1f ms, ready %+.1f ms, agent %+.1f "
                       "ms\n",
                       ms[LIB_LIBVIRT] - ms[LIB_QEMU], mr[LIB_LIBVIRT] - mr[LIB_QEMU],
                       ma[LIB_LIBVIRT] - ma[LIB_QEMU]);
                virConnectClose(conn);
        }
        return 0;
}
