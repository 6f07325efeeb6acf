/*
 * Real QEMU boots through libhv (TCG on machines without hardware KVM). Needs a guest kernel
 * and an initramfs whose /init answers "ping" with "pong:ping" and "poweroff" with "bye" and a
 * power-off on the virtio-serial port agent.channel.0, so it is driven by
 * test/integration/hv-qemu.sh, which sets HV_BOOT_KERNEL, HV_BOOT_INITRD and HV_BOOT_DIR.
 * Without them (plain `make test-unit`) every test is skipped.
 *
 * With HV_BOOT_GUEST_DIR (the project's guest image, build/guest: vmlinuz + initrd.img with
 * cc-agent as /init) one more test boots it and calls the agent's grpc.Health/Check over ttrpc
 * on the virtio-serial channel.
 *
 * Each test checks the end state too: no QEMU left and nothing left in the run directory.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
/* clang-format off: cmocka.h needs the headers above first */
#include <cmocka.h>
/* clang-format on */

#include "cc/cleanup.h"
#include "cc/error.h"
#include "cc/ttrpc.h"

#include "hypervisor/hv.h"
#include "kata/agent.pb-c.h"
#include "kata/health.pb-c.h"
#include "kata/types.pb-c.h"

static const char *kernel, *initrd, *base_dir;
/* HV_BOOT_BACKEND=libvirt (with HV_BOOT_URI) runs the same tests through libvirtd. */
static const char *backend = "qemu", *uri;
static bool lv;
static unsigned counter;

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct fixture {
        char run_dir[256];
        struct hv_config cfg;
};

static int setup(void **state)
{
        if (!kernel || !initrd || !base_dir)
                return 0;
        struct fixture *f = calloc(1, sizeof(*f));
        snprintf(f->run_dir, sizeof(f->run_dir), "%s/vm%u", base_dir, ++counter);
        /* libvirt runs QEMU as its own user, which must create the agent socket here. */
        assert_int_equal(mkdir(f->run_dir, 0700), 0);
        if (lv)
                chmod(f->run_dir, 0777);
        f->cfg = (struct hv_config){
                .backend = backend,
                .libvirt_uri = uri,
                .name = "hv-boot-test",
                .run_dir = f->run_dir,
                .vcpus = 1,
                .memory_mib = 256,
                .kernel = kernel,
                .initrd = initrd,
                .kernel_params = "quiet",
                .accel = getenv("HV_BOOT_ACCEL") && strcmp(getenv("HV_BOOT_ACCEL"), "kvm") == 0
                                 ? HV_ACCEL_KVM
                                 : HV_ACCEL_TCG,
                .channel = HV_CHANNEL_SERIAL,
        };
        *state = f;
        return 0;
}

/* The run directory must be empty: every socket, pidfile and log removed. */
static void assert_run_dir_empty(const char *dir)
{
        DIR *d = opendir(dir);
        assert_non_null(d);
        struct dirent *de;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        fail_msg("left in %s: %s", dir, de->d_name);
        closedir(d);
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        if (!f)
                return 0;
        assert_run_dir_empty(f->run_dir);
        rmdir(f->run_dir);
        free(f);
        return 0;
}

#define REQUIRE_GUEST()         \
        do {                    \
                if (!*state)    \
                        skip(); \
        } while (0)

static bool pid_alive(pid_t pid)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return false;
        char buf[512];
        if (!fgets(buf, sizeof(buf), f))
                return false;
        const char *rp = strrchr(buf, ')');
        return rp && rp[2] != 'Z';
}

/* Connects to "unix:<path>" and sends `msg` until a line starting with `want` comes back. */
static int64_t exchange(const char *addr, const char *msg, const char *want, int timeout_ms)
{
        assert_memory_equal(addr, "unix:", 5);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", addr + 5);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        int64_t start = now_ms(), last_send = 0;
        char buf[256];
        size_t len = 0;
        for (;;) {
                if (now_ms() - last_send >= 200) {
                        ssize_t w = write(fd, msg, strlen(msg));
                        assert_true(w > 0);
                        last_send = now_ms();
                }
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                if (poll(&pfd, 1, 50) > 0) {
                        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
                        assert_true(n > 0);
                        len += (size_t)n;
                        buf[len] = 0;
                        if (strstr(buf, want))
                                break;
                        if (len > sizeof(buf) / 2)
                                len = 0;
                }
                if (now_ms() - start > timeout_ms)
                        fail_msg("no '%s' from the guest in %d ms", want, timeout_ms);
        }
        close(fd);
        return now_ms() - start;
}

static void test_boot_ping_stop(void **state)
{
        REQUIRE_GUEST();
        struct fixture *f = *state;
        _cleanup_error_ struct cc_error *err = NULL;
        struct hv_vm *vm = NULL;
        assert_int_equal(hv_vm_new(&f->cfg, &vm, &err), 0);
        int64_t t0 = now_ms();
        if (hv_vm_start(vm, 30000, &err) < 0)
                fail_msg("start: %s", cc_error_message(err));
        int64_t t_start = now_ms() - t0;
        _cleanup_free_ char *addr = NULL;
        assert_int_equal(hv_vm_agent_address(vm, &addr, &err), 0);
        char expect[300];
        snprintf(expect, sizeof(expect), "unix:%s/agent.sock", f->run_dir);
        assert_string_equal(addr, expect);
        pid_t pids[4];
        int npids = hv_vm_pids(vm, pids, 4);
        if (lv && npids == 0)
                pids[0] = 0; /* libvirtd's pidfile not readable: nothing to compare */
        else
                assert_int_equal(npids, 1);
        if (pids[0])
                assert_true(pid_alive(pids[0]));
        if (!lv) {
                /* The pidfile names the same process. */
                char pidfile[300];
                snprintf(pidfile, sizeof(pidfile), "%s/qemu.pid", f->run_dir);
                _cleanup_fclose_ FILE *pf = fopen(pidfile, "re");
                assert_non_null(pf);
                int filepid = 0;
                assert_int_equal(fscanf(pf, "%d", &filepid), 1);
                assert_int_equal(filepid, pids[0]);
        }
        int64_t t_agent = exchange(addr, "ping\n", "pong:ping", 60000);
        printf("# start returned after %lld ms; agent answered %lld ms later\n", (long long)t_start,
               (long long)t_agent);
        /* Still running: wait(0) times out. */
        struct hv_exit ex;
        assert_int_equal(hv_vm_wait(vm, 0, &ex, &err), -ETIMEDOUT);
        /* The test init ignores the ACPI button: stop falls back to quit after the grace. */
        assert_int_equal(hv_vm_stop(vm, 300, &err), 0);
        if (pids[0])
                assert_false(pid_alive(pids[0]));
        assert_int_equal(hv_vm_wait(vm, 0, &ex, &err), 0);
        /* QEMU obeys "quit" (exit 0); libvirt destroys after the grace (reported as a kill). */
        if (lv)
                assert_int_equal(ex.signal, SIGKILL);
        else
                assert_int_equal(ex.code, 0);
        if (!lv)
                assert_int_equal(hv_vm_exit_fd(vm) >= 0, 1);
        hv_vm_free(vm);
}

static void test_guest_poweroff(void **state)
{
        REQUIRE_GUEST();
        struct fixture *f = *state;
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_hv_vm_ struct hv_vm *vm = NULL;
        assert_int_equal(hv_vm_new(&f->cfg, &vm, &err), 0);
        if (hv_vm_start(vm, 30000, &err) < 0)
                fail_msg("start: %s", cc_error_message(err));
        _cleanup_free_ char *addr = NULL;
        assert_int_equal(hv_vm_agent_address(vm, &addr, &err), 0);
        exchange(addr, "ping\n", "pong:ping", 60000);
        exchange(addr, "poweroff\n", "bye", 10000);
        struct hv_exit ex;
        if (hv_vm_wait(vm, 20000, &ex, &err) < 0)
                fail_msg("wait: %s", cc_error_message(err));
        assert_int_equal(ex.signal, 0);
        /* A transient libvirt domain vanishes with its status; QEMU's is 0. */
        if (!lv)
                assert_int_equal(ex.code, 0);
}

/* kill -9 of QEMU: the exit fd fires and wait reports the signal. */
static void test_kill9(void **state)
{
        REQUIRE_GUEST();
        struct fixture *f = *state;
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_hv_vm_ struct hv_vm *vm = NULL;
        assert_int_equal(hv_vm_new(&f->cfg, &vm, &err), 0);
        if (hv_vm_start(vm, 30000, &err) < 0)
                fail_msg("start: %s", cc_error_message(err));
        pid_t pid;
        if (lv && hv_vm_pids(vm, &pid, 1) == 0)
                skip(); /* no QEMU pid to kill */
        assert_int_equal(hv_vm_pids(vm, &pid, 1), 1);
        int efd = hv_vm_exit_fd(vm);
        assert_true(efd >= 0);
        struct pollfd pfd = {.fd = efd, .events = POLLIN};
        assert_int_equal(poll(&pfd, 1, 0), 0);
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(poll(&pfd, 1, 10000), 1);
        struct hv_exit ex;
        /* libvirt may notice a moment after the process is gone. */
        if (hv_vm_wait(vm, 5000, &ex, &err) < 0)
                fail_msg("wait: %s", cc_error_message(err));
        assert_int_equal(ex.code, -1);
        if (!lv)
                assert_int_equal(ex.signal, SIGKILL);
        assert_false(pid_alive(pid));
}

/* A kernel path that does not exist is refused before anything starts. */
static void test_missing_kernel(void **state)
{
        REQUIRE_GUEST();
        struct fixture *f = *state;
        f->cfg.kernel = "/nonexistent/vmlinuz";
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_hv_vm_ struct hv_vm *vm = NULL;
        assert_int_equal(hv_vm_new(&f->cfg, &vm, &err), 0);
        assert_int_equal(hv_vm_start(vm, 30000, &err), -ENOENT);
        assert_non_null(strstr(cc_error_message(err), "kernel /nonexistent/vmlinuz"));
}

/* QEMU exits during start (a "kernel" it cannot load): the error quotes QEMU's message. */
static void test_qemu_exits_early(void **state)
{
        REQUIRE_GUEST();
        struct fixture *f = *state;
        char bad[300];
        snprintf(bad, sizeof(bad), "%s/../not-a-kernel", f->run_dir);
        FILE *b = fopen(bad, "we");
        assert_non_null(b);
        fputs("this is not a kernel\n", b);
        fclose(b);
        f->cfg.kernel = bad;
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_hv_vm_ struct hv_vm *vm = NULL;
        assert_int_equal(hv_vm_new(&f->cfg, &vm, &err), 0);
        int r = hv_vm_start(vm, 30000, &err);
        unlink(bad);
        printf("# early exit reported as: %s\n", cc_error_message(err));
        if (lv) {
                assert_int_equal(r, -EIO);
                assert_non_null(strstr(cc_error_message(err), "libvirt: create domain"));
        } else {
                assert_int_equal(r, -ECHILD);
                assert_non_null(
                        strstr(cc_error_message(err), "QEMU exited with status 1 during start"));
        }
        assert_int_equal(hv_vm_pids(vm, &(pid_t){0}, 1), 0);
}

/* An impossible start deadline: start fails with ETIMEDOUT and leaves nothing behind. */
static void test_start_timeout(void **state)
{
        REQUIRE_GUEST();
        if (lv)
                skip(); /* virDomainCreateXML has no deadline */
        struct fixture *f = *state;
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_hv_vm_ struct hv_vm *vm = NULL;
        assert_int_equal(hv_vm_new(&f->cfg, &vm, &err), 0);
        int r = hv_vm_start(vm, 1, &err);
        if (r == 0)
                skip(); /* a very fast host */
        assert_int_equal(r, -ETIMEDOUT);
}

/* Whether the agent behind c lists a NIC with this MAC (grpc.AgentService/ListInterfaces). */
static bool agent_has_nic(struct cc_ttrpc_client *c, const char *mac)
{
        Grpc__ListInterfacesRequest req = GRPC__LIST_INTERFACES_REQUEST__INIT;
        Grpc__Interfaces *resp = NULL;
        struct cc_ttrpc_call_opts o = {.timeout_ns = 5000000000ll};
        _cleanup_error_ struct cc_error *e = NULL;
        if (cc_ttrpc_client_call(c, "grpc.AgentService", "ListInterfaces", &req.base,
                                 &grpc__interfaces__descriptor, (ProtobufCMessage **)&resp, &o,
                                 &e) < 0)
                fail_msg("ListInterfaces: %s", cc_error_message(e));
        bool found = false;
        for (size_t i = 0; i < resp->n_interfaces; i++)
                found |= strcasecmp(resp->interfaces[i]->hwaddr, mac) == 0;
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        return found;
}

/*
 * The project's guest image: cc-agent answers Health.Check SERVING over the serial channel,
 * and the development NIC (hv_config.user_net, with virtio_net in the image) is in the guest.
 */
static void test_guest_image_health(void **state)
{
        REQUIRE_GUEST();
        const char *gdir = getenv("HV_BOOT_GUEST_DIR");
        if (!gdir || !*gdir || lv)
                skip();
        struct fixture *f = *state;
        char k[512], i[512];
        snprintf(k, sizeof(k), "%s/vmlinuz", gdir);
        snprintf(i, sizeof(i), "%s/initrd.img", gdir);
        f->cfg.kernel = k;
        f->cfg.initrd = i;
        f->cfg.memory_mib = 512;
        f->cfg.kernel_params = "quiet agent.server_addr=serial://" HV_AGENT_SERIAL_NAME;
        f->cfg.user_net = true;
        f->cfg.user_net_mac = "52:54:00:c0:ff:ee";
        bool nic = false;
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_hv_vm_ struct hv_vm *vm = NULL;
        assert_int_equal(hv_vm_new(&f->cfg, &vm, &err), 0);
        int64_t t0 = now_ms();
        if (hv_vm_start(vm, 30000, &err) < 0)
                fail_msg("start: %s", cc_error_message(err));
        _cleanup_free_ char *addr = NULL;
        assert_int_equal(hv_vm_agent_address(vm, &addr, &err), 0);
        bool serving = false;
        while (!serving && now_ms() - t0 < 90000) {
                struct hv_exit ex;
                if (hv_vm_wait(vm, 0, &ex, NULL) == 0)
                        fail_msg("the guest exited (code %d signal %d) before its agent answered",
                                 ex.code, ex.signal);
                int fd = hv_agent_dial(addr, 1000, NULL);
                if (fd < 0) {
                        usleep(100000);
                        continue;
                }
                struct cc_ttrpc_client *c = NULL;
                assert_int_equal(cc_ttrpc_client_new(fd, &c), 0);
                Grpc__CheckRequest req = GRPC__CHECK_REQUEST__INIT;
                Grpc__HealthCheckResponse *resp = NULL;
                struct cc_ttrpc_call_opts o = {.timeout_ns = 2000000000ll};
                _cleanup_error_ struct cc_error *e = NULL;
                int r = cc_ttrpc_client_call(c, "grpc.Health", "Check", &req.base,
                                             &grpc__health_check_response__descriptor,
                                             (ProtobufCMessage **)&resp, &o, &e);
                serving = r == 0 &&
                          resp->status == GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
                if (resp)
                        protobuf_c_message_free_unpacked(&resp->base, NULL);
                /* Same connection: the serial channel serves one host connection at a time. */
                if (serving)
                        nic = agent_has_nic(c, f->cfg.user_net_mac);
                cc_ttrpc_client_free(c);
                if (!serving)
                        usleep(200000);
        }
        if (!serving)
                fail_msg("cc-agent did not answer Health.Check in 90 s");
        if (!nic)
                fail_msg("the guest has no NIC with the user-mode NIC's MAC %s",
                         f->cfg.user_net_mac);
        printf("# cc-agent answered Health.Check SERVING %lld ms after start\n",
               (long long)(now_ms() - t0));
        assert_int_equal(hv_vm_stop(vm, 0, &err), 0);
}

int main(void)
{
        kernel = getenv("HV_BOOT_KERNEL");
        initrd = getenv("HV_BOOT_INITRD");
        base_dir = getenv("HV_BOOT_DIR");
        if (getenv("HV_BOOT_BACKEND"))
                backend = getenv("HV_BOOT_BACKEND");
        uri = getenv("HV_BOOT_URI");
        lv = strcmp(backend, "libvirt") == 0;
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_boot_ping_stop, setup, teardown),
                cmocka_unit_test_setup_teardown(test_guest_poweroff, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kill9, setup, teardown),
                cmocka_unit_test_setup_teardown(test_missing_kernel, setup, teardown),
                cmocka_unit_test_setup_teardown(test_qemu_exits_early, setup, teardown),
                cmocka_unit_test_setup_teardown(test_start_timeout, setup, teardown),
                cmocka_unit_test_setup_teardown(test_guest_image_health, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
