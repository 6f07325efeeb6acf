/*
 * Golden tests: for each backend and TEE profile, the rendered QEMU argv (one argument a line),
 * Cloud Hypervisor VmConfig JSON or libvirt domain XML is compared with a reviewed file in
 * test/golden/hv/. Lines starting with '#' (or '<!--' in XML files) in a golden file are the
 * review comments citing the reference facts; they are not compared.
 *
 * HV_GOLDEN_UPDATE=<dir> writes what was rendered to <dir>/<name> (without comments) for review.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* clang-format off: cmocka.h needs the headers above first */
#include <cmocka.h>
/* clang-format on */

#include "cc/cleanup.h"
#include "cc/error.h"
#include "cc/macro.h"

#include "hypervisor/clh/clh.h"
#include "hypervisor/hv.h"
#include "hypervisor/libvirt/libvirt.h"
#include "hypervisor/qemu/qemu.h"

#define RUN_DIR "/run/cc/vm/0123"

static char *read_golden(const char *name)
{
        const char *dir = getenv("HV_GOLDEN_DIR");
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir ? dir : "test/golden/hv", name);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f) {
                fail_msg("cannot open golden file %s", path);
                return NULL;
        }
        char *out = NULL;
        size_t size = 0;
        FILE *mem = open_memstream(&out, &size);
        char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, f) > 0)
                if (line[0] != '#' && strncmp(line, "<!--", 4) != 0)
                        fputs(line, mem);
        free(line);
        fclose(mem);
        return out;
}

static void compare(const char *name, const char *actual)
{
        const char *upd = getenv("HV_GOLDEN_UPDATE");
        if (upd) {
                char path[512];
                snprintf(path, sizeof(path), "%s/%s", upd, name);
                FILE *f = fopen(path, "we");
                assert_non_null(f);
                fputs(actual, f);
                fclose(f);
        }
        _cleanup_free_ char *expected = read_golden(name);
        if (strcmp(expected, actual) != 0) {
                /* Show the first differing line. */
                const char *e = expected, *a = actual;
                unsigned line = 1;
                while (*e && *e == *a) {
                        if (*e == '\n')
                                line++;
                        e++;
                        a++;
                }
                print_error("%s differs at line %u\nexpected: %.120s\nactual:   %.120s\n", name,
                            line, e, a);
                fail();
        }
}

/* The configuration every golden file renders, varied per profile. */
static struct hv_config base_config(enum hv_tee tee)
{
        struct hv_config c = {
                .backend = "qemu",
                .name = "sandbox-0123",
                .run_dir = RUN_DIR,
                .vcpus = 2,
                .memory_mib = 2048,
                .kernel = "/opt/confidential-containers/share/kata-containers/vmlinuz",
                .initrd = "/opt/confidential-containers/share/kata-containers/initrd.img",
                .kernel_params = "agent.log=debug",
                .tee = {.kind = tee},
        };
        switch (tee) {
        case HV_TEE_TDX:
                c.firmware = "/opt/confidential-containers/share/ovmf/OVMF.inteltdx.fd";
                /* 48 bytes: an initdata digest, zero-padded. */
                c.tee.mrconfigid =
                        "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4mrze8BI0VniavN7wEjRWeJ";
                c.tee.qgs_socket = "/var/run/tdx-qgs/qgs.socket";
                break;
        case HV_TEE_SEV:
        case HV_TEE_SEV_ES:
                c.firmware = "/opt/confidential-containers/share/ovmf/AMDSEV.fd";
                c.tee.cbitpos = 51;
                break;
        case HV_TEE_SEV_SNP:
                c.firmware = "/opt/confidential-containers/share/ovmf/AMDSEV.fd";
                c.tee.cbitpos = 51;
                /* 32 bytes. */
                c.tee.host_data = "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=";
                break;
        default:
                break;
        }
        return c;
}

static char *join_argv(char **v)
{
        char *out = NULL;
        size_t size = 0;
        FILE *mem = open_memstream(&out, &size);
        for (; *v; v++)
                fprintf(mem, "%s\n", *v);
        fclose(mem);
        return out;
}

static void qemu_golden(const char *name, const struct hv_config *c, enum hv_accel accel,
                        enum hv_channel channel)
{
        _cleanup_free_ char *console = NULL;
        assert_true(asprintf(&console, "%s/console.log", c->run_dir) > 0);
        struct hv_qemu_plan plan = {
                .cfg = c,
                .console_log = console,
                .accel = accel,
                .channel = channel,
                .cid = 3,
                .cbitpos = c->tee.cbitpos ? c->tee.cbitpos : 51,
                .qmp_fd = 3,
                .vhost_fd = channel == HV_CHANNEL_VSOCK ? 4 : -1,
                .tap_fd_base = channel == HV_CHANNEL_VSOCK ? 5 : 4,
        };
        struct hv_argv a = {0};
        _cleanup_error_ struct cc_error *err = NULL;
        int r = hv_qemu_argv(&plan, &a, &err);
        if (r < 0)
                fail_msg("%s: %s", name, cc_error_message(err));
        _cleanup_free_ char *text = join_argv(a.v);
        hv__argv_done(&a);
        compare(name, text);
}

static void test_qemu_none(void **state)
{
        struct hv_config c = base_config(HV_TEE_NONE);
        qemu_golden("qemu-none.args", &c, HV_ACCEL_TCG, HV_CHANNEL_SERIAL);
}

static void test_qemu_none_devices(void **state)
{
        struct hv_config c = base_config(HV_TEE_NONE);
        const struct hv_disk disks[] = {
                {.path = "/run/cc/vm/0123/scratch,1.img", .serial = "cc-trusted-store"},
                {.path = "/dev/mapper/rootfs", .readonly = true}};
        const struct hv_net nets[] = {{.tap_fd = 99, .mac = "52:54:00:12:34:56"}};
        c.disks = disks;
        c.n_disks = 2;
        c.nets = nets;
        c.n_nets = 1;
        c.firmware = "/usr/share/ovmf/OVMF.fd";
        qemu_golden("qemu-none-kvm-vsock.args", &c, HV_ACCEL_KVM, HV_CHANNEL_VSOCK);
}

/* Development NIC on QEMU's user-mode network (network_model = user), TCG, serial channel. */
static void test_qemu_none_user_net(void **state)
{
        struct hv_config c = base_config(HV_TEE_NONE);
        c.user_net = true;
        c.user_net_mac = "52:54:00:12:34:57";
        qemu_golden("qemu-none-user.args", &c, HV_ACCEL_TCG, HV_CHANNEL_SERIAL);
}

/* The debug console's port: only when asked, on its own socket in the run dir; with the vsock
 * channel the virtio-serial bus comes with it. */
static char *qemu_text(const struct hv_config *c, enum hv_channel channel)
{
        struct hv_qemu_plan plan = {.cfg = c,
                                    .console_log = "/x",
                                    .accel = HV_ACCEL_TCG,
                                    .channel = channel,
                                    .cid = 3,
                                    .cbitpos = 51,
                                    .qmp_fd = 3,
                                    .vhost_fd = -1,
                                    .tap_fd_base = 4};
        struct hv_argv a = {0};
        _cleanup_error_ struct cc_error *err = NULL;
        if (hv_qemu_argv(&plan, &a, &err) < 0)
                fail_msg("%s", cc_error_message(err));
        char *text = join_argv(a.v);
        hv__argv_done(&a);
        return text;
}

static void test_qemu_debug_console(void **state)
{
        struct hv_config c = base_config(HV_TEE_NONE);
        char want[512];
        snprintf(want, sizeof(want),
                 "-chardev\nsocket,id=dbgcon0,path=%s/console.sock,server=on,wait=off\n-device\n"
                 "virtserialport,bus=serial0.0,chardev=dbgcon0,id=channel1,"
                 "name=agent.debug_console",
                 c.run_dir);
        _cleanup_free_ char *off = qemu_text(&c, HV_CHANNEL_SERIAL);
        assert_null(strstr(off, "debug_console"));
        assert_null(strstr(off, "dbgcon"));
        c.debug_console = true;
        _cleanup_free_ char *serial = qemu_text(&c, HV_CHANNEL_SERIAL);
        if (!strstr(serial, want))
                fail_msg("serial: %s lacks %s", serial, want);
        /* With vsock the agent serves it on vsock port 1026, as Kata's does: no port of its own. */
        _cleanup_free_ char *vsock = qemu_text(&c, HV_CHANNEL_VSOCK);
        if (strstr(vsock, "dbgcon") || strstr(vsock, "virtio-serial"))
                fail_msg("vsock: %s", vsock);
}

/* The user-mode network is never rendered for, or accepted with, a TEE profile. */
static void test_qemu_user_net_refused_for_tee(void **state)
{
        enum hv_tee tees[] = {HV_TEE_TDX, HV_TEE_SEV, HV_TEE_SEV_ES, HV_TEE_SEV_SNP};
        for (size_t i = 0; i < CC_ARRAY_SIZE(tees); i++) {
                struct hv_config c = base_config(tees[i]);
                c.user_net = true;
                struct hv_qemu_plan plan = {.cfg = &c,
                                            .console_log = "/x",
                                            .accel = HV_ACCEL_KVM,
                                            .channel = HV_CHANNEL_VSOCK,
                                            .cbitpos = 51,
                                            .qmp_fd = 3,
                                            .vhost_fd = 4};
                struct hv_argv a = {0};
                _cleanup_error_ struct cc_error *err = NULL;
                assert_int_equal(hv_qemu_argv(&plan, &a, &err), -EINVAL);
                assert_non_null(strstr(cc_error_message(err), "user-mode network"));
                hv__argv_done(&a);

                struct hv_vm *vm = NULL;
                _cleanup_error_ struct cc_error *err2 = NULL;
                assert_int_equal(hv_vm_new(&c, &vm, &err2), -EINVAL);
                assert_null(vm);
                assert_non_null(strstr(cc_error_message(err2), "development only"));
        }
        /* A MAC without the NIC, and a malformed MAC, are refused too. */
        struct hv_config c = base_config(HV_TEE_NONE);
        struct hv_vm *vm = NULL;
        c.user_net_mac = "52:54:00:12:34:57";
        assert_int_equal(hv_vm_new(&c, &vm, NULL), -EINVAL);
        c.user_net = true;
        c.user_net_mac = "52:54:00:12:34:57,x=y";
        assert_int_equal(hv_vm_new(&c, &vm, NULL), -EINVAL);
        assert_null(vm);
}

static void test_qemu_tdx(void **state)
{
        struct hv_config c = base_config(HV_TEE_TDX);
        qemu_golden("qemu-tdx.args", &c, HV_ACCEL_KVM, HV_CHANNEL_VSOCK);
}

/* Pre-allocated PCIe root ports for disk hot-plug (hotplug_slots): without a TEE, and for the
 * TEE profiles whose guests take hot-plugged virtio-blk through them. */
static void test_qemu_hotplug(void **state)
{
        struct hv_config c = base_config(HV_TEE_NONE);
        c.hotplug_slots = 3;
        qemu_golden("qemu-none-hotplug.args", &c, HV_ACCEL_TCG, HV_CHANNEL_SERIAL);
        c = base_config(HV_TEE_TDX);
        c.hotplug_slots = 2;
        qemu_golden("qemu-tdx-hotplug.args", &c, HV_ACCEL_KVM, HV_CHANNEL_VSOCK);
        c = base_config(HV_TEE_SEV_SNP);
        c.hotplug_slots = 2;
        qemu_golden("qemu-sev-snp-hotplug.args", &c, HV_ACCEL_KVM, HV_CHANNEL_VSOCK);
        /* Beyond the limit the renderer refuses too (hv_vm_new() does first). */
        c.hotplug_slots = 17;
        struct hv_qemu_plan plan = {.cfg = &c,
                                    .console_log = "/x",
                                    .accel = HV_ACCEL_KVM,
                                    .channel = HV_CHANNEL_VSOCK,
                                    .cid = 3,
                                    .cbitpos = 51,
                                    .qmp_fd = 3,
                                    .vhost_fd = 4,
                                    .tap_fd_base = 5};
        struct hv_argv a = {0};
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(hv_qemu_argv(&plan, &a, &err), -EINVAL);
        hv__argv_done(&a);
}

static void test_qemu_sev(void **state)
{
        struct hv_config c = base_config(HV_TEE_SEV);
        qemu_golden("qemu-sev.args", &c, HV_ACCEL_KVM, HV_CHANNEL_VSOCK);
}

static void test_qemu_sev_es(void **state)
{
        struct hv_config c = base_config(HV_TEE_SEV_ES);
        qemu_golden("qemu-sev-es.args", &c, HV_ACCEL_KVM, HV_CHANNEL_VSOCK);
}

static void test_qemu_sev_snp(void **state)
{
        struct hv_config c = base_config(HV_TEE_SEV_SNP);
        qemu_golden("qemu-sev-snp.args", &c, HV_ACCEL_KVM, HV_CHANNEL_VSOCK);
}

/* A TEE never renders under TCG. */
static void test_qemu_tee_refuses_tcg(void **state)
{
        struct hv_config c = base_config(HV_TEE_SEV);
        struct hv_qemu_plan plan = {.cfg = &c,
                                    .console_log = "/x",
                                    .accel = HV_ACCEL_TCG,
                                    .channel = HV_CHANNEL_SERIAL,
                                    .qmp_fd = 3,
                                    .vhost_fd = -1};
        struct hv_argv a = {0};
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(hv_qemu_argv(&plan, &a, &err), -EINVAL);
        hv__argv_done(&a);
}

static void libvirt_golden(const char *name, enum hv_tee tee, unsigned long version)
{
        struct hv_config c = base_config(tee);
        c.backend = "libvirt";
        struct hv_libvirt_plan plan = {
                .cfg = &c,
                .console_log = RUN_DIR "/console.log",
                .accel = tee == HV_TEE_NONE ? HV_ACCEL_TCG : HV_ACCEL_KVM,
                .channel = tee == HV_TEE_NONE ? HV_CHANNEL_SERIAL : HV_CHANNEL_VSOCK,
                .cbitpos = 51,
                .libvirt_version = version,
        };
        _cleanup_free_ char *xml = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        if (hv_libvirt_domain_xml(&plan, &xml, &err) < 0)
                fail_msg("%s: %s", name, cc_error_message(err));
        compare(name, xml);
}

/* Spare PCIe root ports for hot-plug, and the <disk> hv_vm_disk_add() attaches. */
static void test_libvirt_hotplug(void **state)
{
        struct hv_config c = base_config(HV_TEE_NONE);
        c.backend = "libvirt";
        c.hotplug_slots = 2;
        struct hv_libvirt_plan plan = {.cfg = &c,
                                       .console_log = RUN_DIR "/console.log",
                                       .accel = HV_ACCEL_TCG,
                                       .channel = HV_CHANNEL_SERIAL,
                                       .libvirt_version = 9000000};
        _cleanup_free_ char *xml = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        if (hv_libvirt_domain_xml(&plan, &xml, &err) < 0)
                fail_msg("%s", cc_error_message(err));
        compare("libvirt-none-hotplug.xml", xml);
        struct hv_disk d = {.path = "/dev/loop3", .serial = "vol-1", .readonly = true};
        _cleanup_free_ char *blk = NULL, *file = NULL;
        assert_int_equal(hv_libvirt_disk_xml(&d, true, "vdb", &blk, &err), 0);
        assert_string_equal(blk, "<disk type='block' device='disk'>\n"
                                 "  <driver name='qemu' type='raw'/>\n"
                                 "  <source dev='/dev/loop3'/>\n"
                                 "  <target dev='vdb' bus='virtio'/>\n"
                                 "  <serial>vol-1</serial>\n"
                                 "  <readonly/>\n"
                                 "</disk>\n");
        struct hv_disk f = {.path = "/run/pod/a'b.img", .serial = "cc-scratch"};
        assert_int_equal(hv_libvirt_disk_xml(&f, false, "vdc", &file, &err), 0);
        assert_string_equal(file, "<disk type='file' device='disk'>\n"
                                  "  <driver name='qemu' type='raw'/>\n"
                                  "  <source file='/run/pod/a&apos;b.img'/>\n"
                                  "  <target dev='vdc' bus='virtio'/>\n"
                                  "  <serial>cc-scratch</serial>\n"
                                  "</disk>\n");
}

/* A pod NIC: the shim's persistent host tap, opened by name by libvirtd. */
static void test_libvirt_none_nic(void **state)
{
        struct hv_config c = base_config(HV_TEE_NONE);
        c.backend = "libvirt";
        const struct hv_net nic = {
                .tap_fd = -1, .mac = "0a:58:0a:58:4d:02", .tap_name = "cct1a2b3c4d"};
        c.nets = &nic;
        c.n_nets = 1;
        struct hv_libvirt_plan plan = {.cfg = &c,
                                       .console_log = RUN_DIR "/console.log",
                                       .accel = HV_ACCEL_TCG,
                                       .channel = HV_CHANNEL_SERIAL,
                                       .libvirt_version = 9000000};
        _cleanup_free_ char *xml = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        if (hv_libvirt_domain_xml(&plan, &xml, &err) < 0)
                fail_msg("%s", cc_error_message(err));
        compare("libvirt-none-nic.xml", xml);
        /* A tap fd alone: libvirtd cannot take it; an old libvirt cannot use an existing tap. */
        const struct hv_net fd_nic = {.tap_fd = 0, .mac = "0a:58:0a:58:4d:02"};
        c.nets = &fd_nic;
        free(TAKE_PTR(xml));
        assert_int_equal(hv_libvirt_domain_xml(&plan, &xml, &err), -EOPNOTSUPP);
        assert_non_null(strstr(cc_error_message(err), "tap fds cannot be handed to libvirtd"));
        c.nets = &nic;
        plan.libvirt_version = 5006000;
        assert_int_equal(hv_libvirt_domain_xml(&plan, &xml, &err), -EOPNOTSUPP);
        assert_non_null(strstr(cc_error_message(err), "needs libvirt >= 5.7.0"));
}

static void test_libvirt_none(void **state)
{
        libvirt_golden("libvirt-none.xml", HV_TEE_NONE, 9000000);
}

static void test_libvirt_sev(void **state)
{
        libvirt_golden("libvirt-sev.xml", HV_TEE_SEV, 9000000);
}

static void test_libvirt_sev_es(void **state)
{
        libvirt_golden("libvirt-sev-es.xml", HV_TEE_SEV_ES, 9000000);
}

static void test_libvirt_sev_snp(void **state)
{
        libvirt_golden("libvirt-sev-snp.xml", HV_TEE_SEV_SNP, 10005000);
}

static void test_libvirt_tdx(void **state)
{
        libvirt_golden("libvirt-tdx.xml", HV_TEE_TDX, 11006000);
}

/* libvirt 9.0 (Debian 12) has no sev-snp (10.5.0) or tdx (11.6.0) launchSecurity. */
static void test_libvirt_version_refusals(void **state)
{
        enum hv_tee tees[] = {HV_TEE_SEV_SNP, HV_TEE_TDX};
        const char *want[] = {"libvirt 9.0.0 does not support <launchSecurity type='sev-snp'> "
                              "(sev-snp needs libvirt >= 10.5.0)",
                              "libvirt 9.0.0 does not support <launchSecurity type='tdx'> (tdx "
                              "needs libvirt >= 11.6.0)"};
        for (int i = 0; i < 2; i++) {
                struct hv_config c = base_config(tees[i]);
                struct hv_libvirt_plan plan = {.cfg = &c,
                                               .console_log = "/c",
                                               .accel = HV_ACCEL_KVM,
                                               .channel = HV_CHANNEL_VSOCK,
                                               .cbitpos = 51,
                                               .libvirt_version = 9000000};
                char *xml = NULL;
                _cleanup_error_ struct cc_error *err = NULL;
                assert_int_equal(hv_libvirt_domain_xml(&plan, &xml, &err), -EOPNOTSUPP);
                assert_null(xml);
                assert_string_equal(cc_error_message(err), want[i]);
        }
}

static void clh_golden(const char *name, enum hv_tee tee)
{
        struct hv_config c = base_config(tee);
        c.backend = "clh";
        if (tee == HV_TEE_TDX)
                c.firmware = "/opt/confidential-containers/share/td-shim/td-shim.bin";
        struct hv_clh_plan plan = {.cfg = &c, .console_log = RUN_DIR "/console.log"};
        json_object *o = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        if (hv_clh_vmconfig(&plan, &o, &err) < 0)
                fail_msg("%s: %s", name, cc_error_message(err));
        _cleanup_free_ char *text = NULL;
        assert_true(asprintf(&text, "%s\n",
                             json_object_to_json_string_ext(
                                     o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                JSON_C_TO_STRING_NOSLASHESCAPE)) > 0);
        json_object_put(o);
        compare(name, text);
}

static void test_clh_none(void **state)
{
        clh_golden("clh-none.json", HV_TEE_NONE);
}

static void test_clh_tdx(void **state)
{
        clh_golden("clh-tdx.json", HV_TEE_TDX);
}

/* The pairs with no golden file: Cloud Hypervisor renders none and tdx only (SEV-SNP needs IGVM
 * firmware there, reference 2.3), and says so. */
static void test_clh_amd_refused(void **state)
{
        enum hv_tee tees[] = {HV_TEE_SEV, HV_TEE_SEV_ES, HV_TEE_SEV_SNP};
        for (size_t i = 0; i < CC_ARRAY_SIZE(tees); i++) {
                struct hv_config c = base_config(tees[i]);
                c.backend = "clh";
                struct hv_clh_plan plan = {.cfg = &c, .console_log = RUN_DIR "/console.log"};
                json_object *o = NULL;
                _cleanup_error_ struct cc_error *err = NULL;
                _cleanup_free_ char *want = NULL;
                assert_true(asprintf(&want,
                                     "clh backend: TEE profile %s is not supported (Cloud "
                                     "Hypervisor runs SEV-SNP only with IGVM firmware; only tdx "
                                     "and none are rendered)",
                                     hv_tee_to_string(tees[i])) > 0);
                assert_int_equal(hv_clh_vmconfig(&plan, &o, &err), -EOPNOTSUPP);
                assert_null(o);
                assert_string_equal(cc_error_message(err), want);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_qemu_none),
                cmocka_unit_test(test_qemu_none_devices),
                cmocka_unit_test(test_qemu_none_user_net),
                cmocka_unit_test(test_qemu_debug_console),
                cmocka_unit_test(test_qemu_user_net_refused_for_tee),
                cmocka_unit_test(test_qemu_tdx),
                cmocka_unit_test(test_qemu_hotplug),
                cmocka_unit_test(test_qemu_sev),
                cmocka_unit_test(test_qemu_sev_es),
                cmocka_unit_test(test_qemu_sev_snp),
                cmocka_unit_test(test_qemu_tee_refuses_tcg),
                cmocka_unit_test(test_clh_none),
                cmocka_unit_test(test_clh_tdx),
                cmocka_unit_test(test_clh_amd_refused),
                cmocka_unit_test(test_libvirt_none),
                cmocka_unit_test(test_libvirt_hotplug),
                cmocka_unit_test(test_libvirt_none_nic),
                cmocka_unit_test(test_libvirt_sev),
                cmocka_unit_test(test_libvirt_sev_es),
                cmocka_unit_test(test_libvirt_sev_snp),
                cmocka_unit_test(test_libvirt_tdx),
                cmocka_unit_test(test_libvirt_version_refusals),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
