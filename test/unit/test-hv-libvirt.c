/*
 * The libvirt backend against libvirt's in-process test driver (test:///default): lifecycle
 * through hv.h, our rendered XML accepted (sev) or rejected (sev-snp on libvirt < 10.5) by
 * the installed libvirt, the version gate in the host check, and a connection failure.
 */
#include <errno.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
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
#include "hypervisor/libvirt/libvirt.h"

static void quiet(void *data, virErrorPtr e)
{
}

static struct hv_config test_config(void)
{
        return (struct hv_config){
                .backend = "libvirt",
                .libvirt_uri = "test:///default",
                .name = "hv-unit",
                .run_dir = "/tmp",
                .vcpus = 1,
                .memory_mib = 128,
                .kernel = "/bin/sh", /* the test driver never reads it; the host check does */
                .accel = HV_ACCEL_TCG,
                .channel = HV_CHANNEL_SERIAL,
        };
}

static void test_lifecycle(void **state)
{
        struct hv_config c = test_config();
        _cleanup_error_ struct cc_error *err = NULL;
        struct hv_vm *vm = NULL;
        assert_int_equal(hv_vm_new(&c, &vm, &err), 0);
        if (hv_vm_start(vm, 5000, &err) < 0)
                fail_msg("start: %s", cc_error_message(err));
        _cleanup_free_ char *addr = NULL;
        assert_int_equal(hv_vm_agent_address(vm, &addr, &err), 0);
        assert_string_equal(addr, "unix:/tmp/agent.sock");
        struct hv_exit ex;
        assert_int_equal(hv_vm_wait(vm, 0, &ex, &err), -ETIMEDOUT);
        assert_int_equal(hv_vm_wait(vm, 100, &ex, &err), -ETIMEDOUT);
        /* The test driver "shuts down" at once on the ACPI request: a clean exit. */
        assert_int_equal(hv_vm_stop(vm, 1000, &err), 0);
        assert_int_equal(hv_vm_wait(vm, 0, &ex, &err), 0);
        assert_int_equal(ex.code, 0);
        assert_int_equal(ex.signal, 0);
        hv_vm_free(vm);

        /* No grace: destroyed, reported like a kill. */
        vm = NULL;
        assert_int_equal(hv_vm_new(&c, &vm, &err), 0);
        assert_int_equal(hv_vm_start(vm, 5000, &err), 0);
        assert_int_equal(hv_vm_stop(vm, 0, &err), 0);
        assert_int_equal(hv_vm_wait(vm, 0, &ex, &err), 0);
        assert_int_equal(ex.code, -1);
        assert_int_equal(ex.signal, SIGKILL);
        hv_vm_free(vm);
}

/* Our SEV XML is valid for libvirt 9.0: the test driver creates it and keeps launchSecurity. */
static void test_sev_xml_accepted(void **state)
{
        virSetErrorFunc(NULL, quiet);
        virConnectPtr conn = virConnectOpen("test:///default");
        assert_non_null(conn);
        unsigned long version = 0;
        assert_int_equal(virConnectGetLibVersion(conn, &version), 0);
        struct hv_config c = test_config();
        c.name = "hv-sev";
        c.firmware = "/usr/share/OVMF/OVMF_CODE.fd";
        c.tee.kind = HV_TEE_SEV;
        c.tee.cbitpos = 51;
        struct hv_libvirt_plan plan = {.cfg = &c,
                                       .console_log = "/tmp/c.log",
                                       .accel = HV_ACCEL_KVM,
                                       .channel = HV_CHANNEL_VSOCK,
                                       .cbitpos = 51,
                                       .libvirt_version = version};
        _cleanup_free_ char *xml = NULL;
        assert_int_equal(hv_libvirt_domain_xml(&plan, &xml, NULL), 0);
        virDomainPtr dom = virDomainCreateXML(conn, xml, 0);
        if (!dom)
                fail_msg("libvirt rejected our SEV XML: %s", virGetLastErrorMessage());
        _cleanup_free_ char *back = virDomainGetXMLDesc(dom, 0);
        assert_non_null(strstr(back, "<launchSecurity type='sev' kernelHashes='yes'>"));
        assert_non_null(strstr(back, "<policy>0x0001</policy>"));
        assert_non_null(strstr(back, "<vsock model='virtio'>"));
        assert_int_equal(virDomainDestroy(dom), 0);
        virDomainFree(dom);

        /* The same for SNP where libvirt is too old: it rejects the type, which is why the
         * renderer refuses first with a message naming the version. */
        if (version < 10005000) {
                c.tee.kind = HV_TEE_SEV_SNP;
                plan.libvirt_version = 10005000; /* pretend, to see what 9.0 says */
                _cleanup_free_ char *snp = NULL;
                assert_int_equal(hv_libvirt_domain_xml(&plan, &snp, NULL), 0);
                dom = virDomainCreateXML(conn, snp, 0);
                assert_null(dom);
                assert_non_null(strstr(virGetLastErrorMessage(), "sev-snp"));
        }
        virConnectClose(conn);
}

/* A pod NIC through hv.h: the tap by name reaches the domain as <interface type='ethernet'>
 * with managed='no' and the MAC; a tap fd alone, or a name for another backend, is refused. */
static void test_nic_by_name(void **state)
{
        virSetErrorFunc(NULL, quiet);
        struct hv_config c = test_config();
        c.name = "hv-nic";
        struct hv_net nic = {.tap_fd = -1, .mac = "0a:58:0a:58:4d:02", .tap_name = "cct0badf00d"};
        c.nets = &nic;
        c.n_nets = 1;
        _cleanup_error_ struct cc_error *err = NULL;
        struct hv_vm *vm = NULL;
        assert_int_equal(hv_vm_new(&c, &vm, &err), 0);
        if (hv_vm_start(vm, 5000, &err) < 0)
                fail_msg("start: %s", cc_error_message(err));
        virConnectPtr conn = virConnectOpen("test:///default");
        assert_non_null(conn);
        virDomainPtr dom = virDomainLookupByName(conn, "hv-nic");
        assert_non_null(dom);
        _cleanup_free_ char *back = virDomainGetXMLDesc(dom, 0);
        assert_non_null(strstr(back, "<interface type='ethernet'>"));
        assert_non_null(strstr(back, "<mac address='0a:58:0a:58:4d:02'/>"));
        assert_non_null(strstr(back, "<target dev='cct0badf00d' managed='no'/>"));
        virDomainFree(dom);
        virConnectClose(conn);
        assert_int_equal(hv_vm_stop(vm, 0, &err), 0);
        hv_vm_free(vm);

        nic = (struct hv_net){.tap_fd = 2, .mac = "0a:58:0a:58:4d:02"};
        vm = NULL;
        int r = hv_vm_new(&c, &vm, &err);
        if (r == 0)
                r = hv_vm_start(vm, 5000, &err);
        assert_int_equal(r, -EOPNOTSUPP);
        assert_non_null(strstr(cc_error_message(err), "tap fds cannot be handed to libvirtd"));
        hv_vm_free(vm);

        nic = (struct hv_net){.tap_fd = -1, .tap_name = "cct0badf00d"};
        c.backend = "qemu";
        vm = NULL;
        assert_int_equal(hv_vm_new(&c, &vm, &err), -EINVAL);
        assert_non_null(strstr(cc_error_message(err), "a tap by name (cct0badf00d) is for the "
                                                      "libvirt backend"));
        c.backend = "libvirt";
        nic.tap_name = "bad/name";
        assert_int_equal(hv_vm_new(&c, &vm, &err), -EINVAL);
        assert_non_null(strstr(cc_error_message(err), "invalid tap name 'bad/name'"));
}

static void test_check_version_gate(void **state)
{
        unsigned long version = 0;
        virGetVersion(&version, NULL, NULL);
        if (version >= 10005000)
                skip();
        struct hv_config c = test_config();
        c.tee.kind = HV_TEE_SEV_SNP;
        c.accel = HV_ACCEL_AUTO;
        c.firmware = "/bin/sh";
        _cleanup_error_ struct cc_error *err = NULL;
        assert_true(hv_check(&c, &err) < 0);
        assert_non_null(strstr(cc_error_message(err), "does not support <launchSecurity "
                                                      "type='sev-snp'> (sev-snp needs libvirt >= "
                                                      "10.5.0)"));
}

static void test_connect_failure(void **state)
{
        struct hv_config c = test_config();
        c.libvirt_uri = "qemu+unix:///system?socket=/nonexistent/libvirt-sock";
        _cleanup_error_ struct cc_error *err = NULL;
        assert_true(hv_check(&c, &err) < 0);
        assert_non_null(strstr(cc_error_message(err), "cannot connect to libvirt at "
                                                      "qemu+unix:///system"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_lifecycle),       cmocka_unit_test(test_sev_xml_accepted),
                cmocka_unit_test(test_nic_by_name),     cmocka_unit_test(test_check_version_gate),
                cmocka_unit_test(test_connect_failure),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
