/*
 * The mock backend (the shim's test double) through the public interface: lifecycle, the exit
 * fd, simulated crashes, armed failures, the call log; and the generic wrappers' argument
 * checks, which every backend shares.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
/* clang-format off: cmocka.h needs the headers above first */
#include <cmocka.h>
/* clang-format on */

#include "cc/cleanup.h"
#include "cc/error.h"

#include "hypervisor/hv.h"
#include "hypervisor/mock/mock.h"

static struct hv_config mock_config(void)
{
        return (struct hv_config){
                .backend = "mock",
                .name = "pod-1",
                .run_dir = "/run/test/pod-1",
                .kernel = "/vmlinuz",
        };
}

static void test_lifecycle(void **state)
{
        hv_mock_reset();
        struct hv_config c = mock_config();
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_hv_vm_ struct hv_vm *vm = NULL;
        assert_int_equal(hv_vm_new(&c, &vm, &err), 0);
        assert_string_equal(hv_vm_backend(vm), "mock");
        assert_string_equal(hv_vm_console_log(vm), "/run/test/pod-1/console.log");
        assert_int_equal(hv_vm_exit_fd(vm), -ESRCH);
        struct hv_exit ex;
        assert_int_equal(hv_vm_wait(vm, 0, &ex, &err), -ESRCH);
        assert_int_equal(hv_vm_start(vm, 1000, &err), 0);
        assert_int_equal(hv_vm_start(vm, 1000, &err), -EEXIST);
        _cleanup_free_ char *addr = NULL;
        assert_int_equal(hv_vm_agent_address(vm, &addr, &err), 0);
        assert_string_equal(addr, "unix:/run/test/pod-1/agent.sock");
        int efd = hv_vm_exit_fd(vm);
        assert_true(efd >= 0);
        struct pollfd pfd = {.fd = efd, .events = POLLIN};
        assert_int_equal(poll(&pfd, 1, 0), 0);
        assert_int_equal(hv_vm_wait(vm, 0, &ex, &err), -ETIMEDOUT);
        assert_int_equal(hv_vm_stop(vm, 100, &err), 0);
        assert_int_equal(poll(&pfd, 1, 0), 1);
        assert_int_equal(hv_vm_wait(vm, 0, &ex, &err), 0);
        assert_int_equal(ex.code, 0);
        _cleanup_free_ char *calls = hv_mock_calls();
        assert_string_equal(calls, "start:pod-1 agent_address:pod-1 wait:pod-1 stop:pod-1 "
                                   "wait:pod-1");
}

static void test_crash_and_failures(void **state)
{
        hv_mock_reset();
        struct hv_config c = mock_config();
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_hv_vm_ struct hv_vm *vm = NULL;
        assert_int_equal(hv_vm_new(&c, &vm, &err), 0);
        hv_mock_fail_next("start", EIO);
        assert_int_equal(hv_vm_start(vm, 1000, &err), -EIO);
        assert_non_null(strstr(cc_error_message(err), "start VM pod-1 (mock)"));
        assert_int_equal(hv_vm_start(vm, 1000, &err), 0);
        assert_int_equal(hv_mock_exit(vm, 0, SIGKILL), 0);
        assert_int_equal(hv_mock_exit(vm, 0, SIGKILL), -ESRCH);
        struct hv_exit ex;
        assert_int_equal(hv_vm_wait(vm, -1, &ex, &err), 0);
        assert_int_equal(ex.signal, SIGKILL);
        assert_int_equal(ex.code, -1);
        hv_mock_fail_next("agent_address", ENOTCONN);
        char *addr = NULL;
        assert_int_equal(hv_vm_agent_address(vm, &addr, &err), -ENOTCONN);
        assert_null(addr);
}

static void test_validation(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        struct hv_vm *vm = NULL;
        struct hv_config c = mock_config();
        c.backend = "firecracker";
        assert_int_equal(hv_vm_new(&c, &vm, &err), -EINVAL);
        assert_non_null(strstr(cc_error_message(err), "unknown hypervisor backend 'firecracker'"));
        c = mock_config();
        c.name = "bad name;rm";
        assert_int_equal(hv_vm_new(&c, &vm, &err), -EINVAL);
        c = mock_config();
        c.run_dir = "relative";
        assert_int_equal(hv_vm_new(&c, &vm, &err), -EINVAL);
        c = mock_config();
        c.vsock_cid = 2;
        assert_int_equal(hv_vm_new(&c, &vm, &err), -EINVAL);
        /* Values that go into QEMU option strings cannot carry options of their own. */
        c = mock_config();
        c.tee.kind = HV_TEE_SEV_SNP;
        c.tee.host_data = "AAAA,id-auth=x";
        assert_int_equal(hv_vm_new(&c, &vm, &err), -EINVAL);
        assert_non_null(strstr(cc_error_message(err), "must be base64"));
        c.tee.host_data = "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=";
        const struct hv_net bad_mac[] = {{.tap_fd = 0, .mac = "52:54:00:12:34:56,romfile=/x"}};
        c.nets = bad_mac;
        c.n_nets = 1;
        assert_int_equal(hv_vm_new(&c, &vm, &err), -EINVAL);
        const struct hv_net good_mac[] = {{.tap_fd = 0, .mac = "52:54:00:12:34:56"}};
        c.nets = good_mac;
        struct hv_vm *ok = NULL;
        assert_int_equal(hv_vm_new(&c, &ok, &err), 0);
        hv_vm_free(ok);
        c = mock_config();
        c.kernel = NULL;
        assert_int_equal(hv_vm_new(&c, &vm, &err), -EINVAL);
        assert_null(vm);
        assert_null(hv_vm_free(NULL));
        const char *const *names = hv_backend_names();
        assert_string_equal(names[0], "qemu");
        assert_string_equal(names[3], "mock");
        assert_null(names[4]);
}

static void test_agent_dial_addresses(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(hv_agent_dial(NULL, 100, &err), -EINVAL);
        assert_int_equal(hv_agent_dial("tcp:1.2.3.4:1", 100, &err), -EINVAL);
        assert_int_equal(hv_agent_dial("vsock:x:1024", 100, &err), -EINVAL);
        assert_int_equal(hv_agent_dial("vsock:3:1024junk", 100, &err), -EINVAL);
        assert_int_equal(hv_agent_dial("hvsock:/tmp/x", 100, &err), -EINVAL);
        assert_int_equal(hv_agent_dial("hvsock:/tmp/x:port", 100, &err), -EINVAL);
        assert_int_equal(hv_agent_dial("unix:/nonexistent/agent.sock", 100, &err), -ENOENT);
        assert_int_equal(hv_agent_dial("hvsock:/nonexistent/clh.vsock:1024", 100, &err), -ENOENT);
}

/* The configuration is copied: the caller's strings may go away after hv_vm_new. */
static void test_config_copied(void **state)
{
        char name[] = "pod-2";
        char dir[] = "/run/test/pod-2";
        struct hv_config c = mock_config();
        c.name = name;
        c.run_dir = dir;
        struct hv_disk disks[] = {{.path = "/img", .serial = "bad serial"}};
        c.disks = disks;
        c.n_disks = 1;
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_hv_vm_ struct hv_vm *vm = NULL;
        /* A disk's serial is checked (the guest looks it up; QEMU takes it in an option). */
        static const char *const bad[] = {"bad serial", "", "a,b", "123456789012345678901"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                disks[0].serial = bad[i];
                assert_int_equal(hv_vm_new(&c, &vm, &err), -EINVAL);
                assert_non_null(strstr(cc_error_message(err), "invalid serial"));
                cc_error_free(err);
                err = NULL;
        }
        disks[0].serial = "cc-trusted-store";
        assert_int_equal(hv_vm_new(&c, &vm, &err), 0);
        memset(name, 'x', sizeof(name) - 1);
        memset(dir, 'x', sizeof(dir) - 1);
        assert_int_equal(hv_vm_start(vm, 1000, &err), 0);
        _cleanup_free_ char *addr = NULL;
        assert_int_equal(hv_vm_agent_address(vm, &addr, &err), 0);
        assert_string_equal(addr, "unix:/run/test/pod-2/agent.sock");
}

/* Hot-plug through the generic wrappers into the mock: recorded, and its errors as QEMU's. */
static void test_disk_hotplug(void **state)
{
        hv_mock_reset();
        struct hv_config c = mock_config();
        c.hotplug_slots = 2;
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_hv_vm_ struct hv_vm *vm = NULL;
        assert_int_equal(hv_vm_new(&c, &vm, &err), 0);
        struct hv_disk a = {.path = "/dev/loop7", .serial = "vol-a"};
        struct hv_disk b = {.path = "/run/x/scratch.img", .serial = "cc-trusted", .readonly = true};
        struct hv_disk d = {.path = "/dev/loop8", .serial = "vol-d"};
        assert_int_equal(hv_vm_disk_add(vm, &a, 1000, &err), -ESRCH);
        assert_int_equal(hv_vm_start(vm, 1000, &err), 0);
        assert_int_equal(hv_vm_disk_add(vm, &a, 1000, &err), 0);
        assert_int_equal(hv_vm_disk_add(vm, &a, 1000, &err), -EEXIST);
        assert_non_null(strstr(cc_error_message(err), "vol-a"));
        assert_int_equal(hv_vm_disk_add(vm, &b, 1000, &err), 0);
        assert_int_equal(hv_vm_disk_add(vm, &d, 1000, &err), -ENOSPC);
        _cleanup_free_ char *disks = hv_mock_disks(vm);
        assert_string_equal(disks, "vol-a=/dev/loop7 cc-trusted=/run/x/scratch.img,ro");
        assert_int_equal(hv_vm_disk_remove(vm, "vol-d", 1000, &err), -ENOENT);
        assert_int_equal(hv_vm_disk_remove(vm, "vol-a", 1000, &err), 0);
        assert_int_equal(hv_vm_disk_add(vm, &d, 1000, &err), 0);
        hv_mock_fail_next("disk_remove", EIO);
        assert_int_equal(hv_vm_disk_remove(vm, "vol-d", 1000, &err), -EIO);
        _cleanup_free_ char *disks2 = hv_mock_disks(vm);
        assert_string_equal(disks2, "vol-d=/dev/loop8 cc-trusted=/run/x/scratch.img,ro");
        /* The generic checks: a serial is required and must be one the guest can match. */
        struct hv_disk bad = {.path = "/dev/loop9", .serial = "a/b"};
        assert_int_equal(hv_vm_disk_add(vm, &bad, 1000, &err), -EINVAL);
        bad.serial = NULL;
        assert_int_equal(hv_vm_disk_add(vm, &bad, 1000, &err), -EINVAL);
        assert_int_equal(hv_vm_disk_remove(vm, "012345678901234567890", 1000, &err), -EINVAL);
        /* The VM's end releases its disks. */
        assert_int_equal(hv_vm_stop(vm, 0, &err), 0);
        _cleanup_free_ char *disks3 = hv_mock_disks(vm);
        assert_string_equal(disks3, "");
        _cleanup_free_ char *calls = hv_mock_calls();
        assert_string_equal(calls, "start:pod-1 disk_add:pod-1:vol-a disk_add:pod-1:vol-a "
                                   "disk_add:pod-1:cc-trusted disk_add:pod-1:vol-d "
                                   "disk_remove:pod-1:vol-d disk_remove:pod-1:vol-a "
                                   "disk_add:pod-1:vol-d disk_remove:pod-1:vol-d stop:pod-1");
        /* No slots configured: every hot-plug is refused. */
        c.hotplug_slots = 0;
        _cleanup_hv_vm_ struct hv_vm *vm0 = NULL;
        assert_int_equal(hv_vm_new(&c, &vm0, &err), 0);
        assert_int_equal(hv_vm_start(vm0, 1000, &err), 0);
        assert_int_equal(hv_vm_disk_add(vm0, &a, 1000, &err), -ENOSPC);
        c.hotplug_slots = 17;
        _cleanup_hv_vm_ struct hv_vm *vm17 = NULL;
        assert_int_equal(hv_vm_new(&c, &vm17, &err), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_lifecycle),
                cmocka_unit_test(test_disk_hotplug),
                cmocka_unit_test(test_crash_and_failures),
                cmocka_unit_test(test_validation),
                cmocka_unit_test(test_config_copied),
                cmocka_unit_test(test_agent_dial_addresses),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
