/*
 * Disk hot-plug into a real VM through libhv (QEMU under TCG here). Driven by
 * test/integration/hv-hotplug.sh, which provides a kernel, an initramfs whose /init answers on
 * the virtio-serial port agent.channel.0 ("ping" -> "pong:ping", "blk" -> "blk: vda=<serial>
 * ...", the serials the guest sees in /sys/block/vd* /serial), a sparse file and a loop device.
 * Without HV_HOTPLUG_* in the environment (plain `make test-unit`) every test is skipped.
 *
 * HV_HOTPLUG_BACKEND=libvirt (with HV_HOTPLUG_URI) runs the same through libvirtd.
 *
 * Shown: the guest sees each disk by its serial; after removal the guest no longer sees it and
 * QEMU no longer holds the file or device open (/proc/<pid>/fd); a bad serial, a missing path,
 * a duplicate serial and a full slot table fail with clear errors and attach nothing; kill -9
 * of the VMM leaves nothing behind. Prints the time of hv_vm_disk_add and hv_vm_disk_remove.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

#include "hypervisor/hv.h"

static const char *kernel, *initrd, *run_dir, *file_path, *loop_path, *backend = "qemu", *uri;

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A line-oriented connection to the test init on agent.channel.0. */
struct guest {
        int fd;
        char buf[1024];
        size_t len;
};

/* The next line (without '\n') into out, or false after timeout_ms. */
static bool guest_line(struct guest *g, char *out, size_t out_len, int timeout_ms)
{
        int64_t deadline = now_ms() + timeout_ms;
        for (;;) {
                char *nl = memchr(g->buf, '\n', g->len);
                if (nl) {
                        size_t n = (size_t)(nl - g->buf);
                        snprintf(out, out_len, "%.*s", (int)n, g->buf);
                        memmove(g->buf, nl + 1, g->len - n - 1);
                        g->len -= n + 1;
                        return true;
                }
                if (g->len == sizeof(g->buf))
                        g->len = 0;
                int left = (int)(deadline - now_ms());
                struct pollfd pfd = {.fd = g->fd, .events = POLLIN};
                if (left <= 0 || poll(&pfd, 1, left) <= 0)
                        return false;
                ssize_t n = read(g->fd, g->buf + g->len, sizeof(g->buf) - g->len);
                assert_true(n > 0);
                g->len += (size_t)n;
        }
}

/* Connects and pings until the init answers (the port opens while the guest boots). */
static void guest_connect(struct hv_vm *vm, struct guest *g)
{
        _cleanup_free_ char *addr = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(hv_vm_agent_address(vm, &addr, &err), 0);
        g->fd = hv_agent_dial(addr, 5000, &err);
        if (g->fd < 0)
                fail_msg("dial %s: %s", addr, cc_error_message(err));
        g->len = 0;
        int64_t deadline = now_ms() + 90000;
        char line[1024];
        while (now_ms() < deadline) {
                assert_int_equal(write(g->fd, "ping\n", 5), 5);
                if (guest_line(g, line, sizeof(line), 300) && strcmp(line, "pong:ping") == 0)
                        break;
        }
        assert_true(now_ms() < deadline);
        /* Drop the answers to the earlier pings. */
        while (guest_line(g, line, sizeof(line), 200))
                ;
}

/*
 * What the guest sees now: "blk: vda=<serial> ...". The test init reopens the port for every
 * line, and what arrives while it is closed is lost: ask again until an answer comes. An
 * answer to an earlier question shows an older state, which the callers' loops tolerate.
 */
static void guest_blk(struct guest *g, char *out, size_t out_len)
{
        int64_t deadline = now_ms() + 20000;
        while (now_ms() < deadline) {
                assert_int_equal(write(g->fd, "blk\n", 4), 4);
                while (guest_line(g, out, out_len, 500))
                        if (strncmp(out, "blk:", 4) == 0)
                                return;
        }
        fail_msg("no answer to blk from the guest");
}

/* Waits until the guest's view has (want) or has not (!want) a disk with `serial`. */
static void guest_wait_serial(struct guest *g, const char *serial, bool want)
{
        char needle[64], line[1024];
        snprintf(needle, sizeof(needle), "=%s", serial);
        int64_t deadline = now_ms() + 60000;
        for (;;) {
                guest_blk(g, line, sizeof(line));
                /* "=<serial>" followed by a space or the end. */
                const char *p = strstr(line, needle);
                bool has = p && (p[strlen(needle)] == ' ' || p[strlen(needle)] == 0);
                if (has == want) {
                        printf("# guest: %s\n", line);
                        return;
                }
                if (now_ms() > deadline)
                        fail_msg("guest %s disk '%s' after 60 s: %s", want ? "lacks" : "still has",
                                 serial, line);
                usleep(300 * 1000);
        }
}

/* How many of the VMM's fds point at `path` (the loop device or the file); `expect` when the
 * VMM's pid is unknown (libvirtd's pidfile unreadable: nothing to look at). */
static int vmm_open_count(struct hv_vm *vm, const char *path, int expect)
{
        pid_t pid;
        if (hv_vm_pids(vm, &pid, 1) != 1)
                return strcmp(backend, "libvirt") == 0 ? expect : -1;
        char dir[64], link[PATH_MAX + 1], target[PATH_MAX + 1];
        snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
        DIR *d = opendir(dir);
        if (!d)
                return -1;
        int count = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                snprintf(link, sizeof(link), "%s/%s", dir, de->d_name);
                ssize_t n = readlink(link, target, sizeof(target) - 1);
                if (n > 0) {
                        target[n] = 0;
                        count += strcmp(target, path) == 0;
                }
        }
        closedir(d);
        return count;
}

/* Each test its own run directory, so that a failed one (its VM left to the shell's trap)
 * does not disturb the next. */
static char vm_dir[PATH_MAX];

static struct hv_config config(void)
{
        static unsigned n;
        snprintf(vm_dir, sizeof(vm_dir), "%s/%u", run_dir, ++n);
        assert_int_equal(mkdir(vm_dir, 0700), 0);
        /* libvirt may run QEMU as its own user, which creates the agent socket here. */
        if (strcmp(backend, "libvirt") == 0)
                chmod(vm_dir, 0777);
        return (struct hv_config){
                .backend = backend,
                .libvirt_uri = uri,
                .name = "hv-hotplug-test",
                .run_dir = vm_dir,
                .vcpus = 1,
                .memory_mib = 256,
                .kernel = kernel,
                .initrd = initrd,
                .kernel_params = "quiet",
                .accel = HV_ACCEL_TCG,
                .channel = HV_CHANNEL_SERIAL,
                .hotplug_slots = 2,
        };
}

#define REQUIRE_ENV()           \
        do {                    \
                if (!kernel)    \
                        skip(); \
        } while (0)

static void start(struct hv_vm **vm, struct guest *g)
{
        struct hv_config c = config();
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(hv_vm_new(&c, vm, &err), 0);
        if (hv_vm_start(*vm, 60000, &err) < 0)
                fail_msg("start: %s", cc_error_message(err));
        guest_connect(*vm, g);
}

static void test_add_remove(void **state)
{
        REQUIRE_ENV();
        _cleanup_hv_vm_ struct hv_vm *vm = NULL;
        struct guest g;
        start(&vm, &g);
        _cleanup_error_ struct cc_error *err = NULL;
        char line[1024];
        guest_blk(&g, line, sizeof(line));
        printf("# guest before: %s\n", line);
        assert_string_equal(line, "blk:");

        struct hv_disk file = {.path = file_path, .serial = "cc-scratch"};
        struct hv_disk loop = {.path = loop_path, .serial = "vol-loop0", .readonly = true};
        int64_t t0 = now_ms();
        if (hv_vm_disk_add(vm, &file, 30000, &err) < 0)
                fail_msg("add %s: %s", file.path, cc_error_message(err));
        int64_t t_add = now_ms() - t0;
        t0 = now_ms();
        if (hv_vm_disk_add(vm, &loop, 30000, &err) < 0)
                fail_msg("add %s: %s", loop.path, cc_error_message(err));
        int64_t t_add2 = now_ms() - t0;
        guest_wait_serial(&g, "cc-scratch", true);
        guest_wait_serial(&g, "vol-loop0", true);
        assert_int_equal(vmm_open_count(vm, file_path, 1), 1);
        assert_int_equal(vmm_open_count(vm, loop_path, 1), 1);

        /* Refusals: each names what was wrong, and nothing more is attached. */
        struct hv_disk bad = {.path = file_path, .serial = "bad serial"};
        assert_int_equal(hv_vm_disk_add(vm, &bad, 10000, &err), -EINVAL);
        printf("# bad serial: %s\n", cc_error_message(err));
        struct hv_disk missing = {.path = "/nonexistent/disk.img", .serial = "missing"};
        assert_int_equal(hv_vm_disk_add(vm, &missing, 10000, &err), -ENOENT);
        printf("# missing path: %s\n", cc_error_message(err));
        assert_non_null(strstr(cc_error_message(err), "/nonexistent/disk.img"));
        struct hv_disk dup = {.path = loop_path, .serial = "cc-scratch"};
        assert_int_equal(hv_vm_disk_add(vm, &dup, 10000, &err), -EEXIST);
        printf("# duplicate: %s\n", cc_error_message(err));
        struct hv_disk third = {.path = file_path, .serial = "third"};
        assert_int_equal(hv_vm_disk_add(vm, &third, 10000, &err), -ENOSPC);
        printf("# no slot: %s\n", cc_error_message(err));
        assert_int_equal(vmm_open_count(vm, file_path, 1), 1);
        assert_int_equal(vmm_open_count(vm, loop_path, 1), 1);
        guest_blk(&g, line, sizeof(line));
        assert_null(strstr(line, "=third"));
        assert_null(strstr(line, "=missing"));

        /* Removal: on return QEMU has let go of the file and the device. */
        t0 = now_ms();
        if (hv_vm_disk_remove(vm, "cc-scratch", 60000, &err) < 0)
                fail_msg("remove cc-scratch: %s", cc_error_message(err));
        int64_t t_rm = now_ms() - t0;
        assert_int_equal(vmm_open_count(vm, file_path, 0), 0);
        t0 = now_ms();
        if (hv_vm_disk_remove(vm, "vol-loop0", 60000, &err) < 0)
                fail_msg("remove vol-loop0: %s", cc_error_message(err));
        int64_t t_rm2 = now_ms() - t0;
        assert_int_equal(vmm_open_count(vm, loop_path, 0), 0);
        guest_wait_serial(&g, "cc-scratch", false);
        guest_wait_serial(&g, "vol-loop0", false);
        assert_int_equal(hv_vm_disk_remove(vm, "vol-loop0", 1000, &err), -ENOENT);
        printf("# removed twice: %s\n", cc_error_message(err));
        printf("# hv_vm_disk_add: %lld ms (file), %lld ms (loop); hv_vm_disk_remove: %lld ms "
               "(file), %lld ms (loop)\n",
               (long long)t_add, (long long)t_add2, (long long)t_rm, (long long)t_rm2);

        /* A freed slot takes a disk again. */
        if (hv_vm_disk_add(vm, &third, 30000, &err) < 0)
                fail_msg("add again: %s", cc_error_message(err));
        guest_wait_serial(&g, "third", true);
        assert_int_equal(hv_vm_disk_remove(vm, "third", 60000, &err), 0);
        close(g.fd);
        assert_int_equal(hv_vm_stop(vm, 0, &err), 0);
}

/* kill -9 of the VMM with disks attached: the exit fires, the files are free again. */
static void test_kill9_with_disks(void **state)
{
        REQUIRE_ENV();
        _cleanup_hv_vm_ struct hv_vm *vm = NULL;
        struct guest g;
        start(&vm, &g);
        _cleanup_error_ struct cc_error *err = NULL;
        struct hv_disk file = {.path = file_path, .serial = "cc-scratch"};
        struct hv_disk loop = {.path = loop_path, .serial = "vol-loop0"};
        if (hv_vm_disk_add(vm, &file, 30000, &err) < 0 ||
            hv_vm_disk_add(vm, &loop, 30000, &err) < 0)
                fail_msg("add: %s", cc_error_message(err));
        guest_wait_serial(&g, "vol-loop0", true);
        pid_t pid;
        if (hv_vm_pids(vm, &pid, 1) != 1)
                skip(); /* libvirt without a readable pidfile: no QEMU pid to kill */
        assert_int_equal(kill(pid, SIGKILL), 0);
        struct hv_exit ex;
        if (hv_vm_wait(vm, 10000, &ex, &err) < 0)
                fail_msg("wait: %s", cc_error_message(err));
        /* libvirt cannot tell how a transient domain's QEMU ended. */
        assert_int_equal(ex.signal, strcmp(backend, "libvirt") == 0 ? 0 : SIGKILL);
        /* The VM is gone: a hot-plug is refused, not attempted. */
        assert_true(hv_vm_disk_add(vm, &file, 1000, &err) < 0);
        printf("# after kill -9: %s\n", cc_error_message(err));
        close(g.fd);
}

int main(void)
{
        kernel = getenv("HV_HOTPLUG_KERNEL");
        initrd = getenv("HV_HOTPLUG_INITRD");
        run_dir = getenv("HV_HOTPLUG_DIR");
        file_path = getenv("HV_HOTPLUG_FILE");
        loop_path = getenv("HV_HOTPLUG_LOOP");
        if (getenv("HV_HOTPLUG_BACKEND"))
                backend = getenv("HV_HOTPLUG_BACKEND");
        uri = getenv("HV_HOTPLUG_URI");
        if (!initrd || !run_dir || !file_path || !loop_path)
                kernel = NULL;
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_add_remove),
                cmocka_unit_test(test_kill9_with_disks),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
