/*
 * TEE profiles and host checks: the profile data, the host probe on a fake /dev + /sys tree,
 * the accelerator rule (never TCG silently for a TEE), the reasons a host cannot run a profile,
 * and, against the installed QEMU (7.2 on Debian 12): the version check refuses tdx and sev-snp
 * with a clear message, and QEMU accepts our sev-guest options up to the point where it needs
 * SEV hardware.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
/* clang-format off: cmocka.h needs the headers above first */
#include <cmocka.h>
/* clang-format on */

#include "cc/cleanup.h"
#include "cc/error.h"

#include "hypervisor/hv-internal.h"
#include "hypervisor/qemu/qemu.h"

static void test_names(void **state)
{
        enum hv_tee t;
        const char *names[] = {"none", "tdx", "sev", "sev-es", "sev-snp"};
        for (int i = 0; i < _HV_TEE_MAX; i++) {
                assert_int_equal(hv_tee_from_string(names[i], &t), 0);
                assert_int_equal(t, i);
                assert_string_equal(hv_tee_to_string(t), names[i]);
                assert_string_equal(hv__tee_profile(t)->name, names[i]);
        }
        assert_int_equal(hv_tee_from_string("sgx", &t), -EINVAL);
        enum hv_accel a;
        assert_int_equal(hv_accel_from_string("tcg", &a), 0);
        assert_int_equal(a, HV_ACCEL_TCG);
        enum hv_channel c;
        assert_int_equal(hv_channel_from_string("serial", &c), 0);
        assert_int_equal(c, HV_CHANNEL_SERIAL);
}

static void test_profile_data(void **state)
{
        /* Firmware: pflash for SEV/SEV-ES, -bios for SNP and TDX (reference 1.4). */
        assert_true(hv__tee_profile(HV_TEE_SEV)->qemu_pflash);
        assert_true(hv__tee_profile(HV_TEE_SEV_ES)->qemu_pflash);
        assert_false(hv__tee_profile(HV_TEE_SEV_SNP)->qemu_pflash);
        assert_false(hv__tee_profile(HV_TEE_TDX)->qemu_pflash);
        struct hv_tee_config tee = {.kind = HV_TEE_SEV_ES};
        assert_int_equal(hv__tee_policy(&tee), 0x5);
        tee.kind = HV_TEE_SEV_SNP;
        assert_int_equal(hv__tee_policy(&tee), 0x30000);
        tee.policy = 0x1;
        assert_int_equal(hv__tee_policy(&tee), 0x1);
        assert_int_equal(hv__tee_reduced_phys_bits(&tee), 1);
        struct hv_host host = {.cbitpos = 47};
        assert_int_equal(hv__tee_cbitpos(&tee, &host), 47);
        tee.cbitpos = 51;
        assert_int_equal(hv__tee_cbitpos(&tee, &host), 51);
}

static void put(const char *root, const char *path, const char *content)
{
        char full[512], dir[512];
        snprintf(full, sizeof(full), "%s%s", root, path);
        snprintf(dir, sizeof(dir), "%s", full);
        for (char *p = dir + strlen(root) + 1; *p; p++)
                if (*p == '/') {
                        *p = 0;
                        mkdir(dir, 0755);
                        *p = '/';
                }
        FILE *f = fopen(full, "we");
        assert_non_null(f);
        fputs(content, f);
        fclose(f);
}

static void test_host_probe(void **state)
{
        char root[] = "/tmp/hv-host-XXXXXX";
        assert_non_null(mkdtemp(root));
        struct hv_host h;
        hv__host_probe(root, &h);
        assert_false(h.kvm);
        assert_false(h.kvm_dev);
        /* /dev/kvm from kvm_pvm alone is not hardware KVM. */
        put(root, "/dev/kvm", "");
        put(root, "/sys/module/kvm_pvm/parameters/x", "");
        hv__host_probe(root, &h);
        assert_true(h.kvm_dev);
        assert_false(h.kvm);
        put(root, "/sys/module/kvm_amd/parameters/sev", "Y\n");
        put(root, "/sys/module/kvm_amd/parameters/sev_es", "N\n");
        put(root, "/sys/module/kvm_amd/parameters/sev_snp", "1\n");
        put(root, "/dev/vhost-vsock", "");
        hv__host_probe(root, &h);
        assert_true(h.kvm);
        assert_true(h.sev);
        assert_false(h.sev_es);
        assert_true(h.sev_snp);
        assert_false(h.tdx);
        assert_true(h.vhost_vsock);
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
        assert_int_equal(system(cmd), 0);
}

static void test_accel_rule(void **state)
{
        struct hv_host nokvm = {0}, kvm = {.kvm = true};
        struct hv_config c = {.accel = HV_ACCEL_AUTO};
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(hv__accel_resolve(&c, &nokvm, &err), HV_ACCEL_TCG);
        assert_int_equal(hv__accel_resolve(&c, &kvm, &err), HV_ACCEL_KVM);
        c.tee.kind = HV_TEE_SEV_SNP;
        assert_int_equal(hv__accel_resolve(&c, &nokvm, &err), -ENODEV);
        assert_string_equal(cc_error_message(err),
                            "TEE profile sev-snp needs hardware KVM; refusing TCG");
        assert_int_equal(hv__accel_resolve(&c, &kvm, &err), HV_ACCEL_KVM);
        c.accel = HV_ACCEL_TCG;
        assert_int_equal(hv__accel_resolve(&c, &kvm, &err), -EINVAL);
        c.tee.kind = HV_TEE_NONE;
        c.accel = HV_ACCEL_KVM;
        assert_int_equal(hv__accel_resolve(&c, &nokvm, &err), -ENODEV);
}

/* One error lists every missing piece. */
static void test_common_reasons(void **state)
{
        struct hv_host host = {.kvm_dev = true};
        struct hv_config c = {
                .backend = "qemu",
                .kernel = "/nonexistent/vmlinuz",
                .tee = {.kind = HV_TEE_TDX},
        };
        struct hv_reasons r = {0};
        hv__check_common(&c, &host, &r);
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(hv__reasons_to_error(&r, "host", &err), -ENODEV);
        const char *m = cc_error_message(err);
        assert_non_null(strstr(m, "tdx needs hardware KVM: /dev/kvm exists but neither kvm_intel "
                                  "nor kvm_amd is loaded"));
        assert_non_null(strstr(m, "tdx is not enabled in KVM: /sys/module/kvm_intel/parameters/"
                                  "tdx is not Y"));
        assert_non_null(strstr(m, "tdx needs a firmware file (TDVF or TD-Shim)"));
        assert_non_null(strstr(m, "kernel /nonexistent/vmlinuz: No such file or directory"));

        struct hv_host amd = {.kvm = true, .sev = true};
        c.tee.kind = HV_TEE_SEV_SNP;
        c.tee.id_block = "AAAA";
        c.firmware = "/bin/sh";
        c.kernel = "/bin/sh";
        hv__check_common(&c, &amd, &r);
        assert_int_equal(hv__reasons_to_error(&r, "host", &err), -ENODEV);
        assert_string_equal(cc_error_message(err),
                            "host: sev-snp is not enabled in KVM: "
                            "/sys/module/kvm_amd/parameters/sev_snp is not Y; sev-snp: id-block "
                            "and id-auth go together");
        c.tee.kind = HV_TEE_SEV;
        c.tee.id_block = NULL;
        hv__check_common(&c, &amd, &r);
        assert_int_equal(hv__reasons_to_error(&r, "host", &err), 0);
}

static bool have_qemu(void)
{
        return hv_qemu_binary_version("qemu-system-x86_64") != 0;
}

/* QEMU 7.2 has sev-guest but neither sev-snp-guest (9.1) nor tdx-guest (10.1). */
static void test_qemu_version_check(void **state)
{
        if (!have_qemu())
                skip();
        unsigned v = hv_qemu_binary_version("qemu-system-x86_64");
        if (v >= 90100)
                skip(); /* a newer QEMU than Debian 12's */
        struct hv_config c = {
                .backend = "qemu",
                .name = "t",
                .run_dir = "/tmp",
                .kernel = "/bin/sh",
                .firmware = "/bin/sh",
                .tee = {.kind = HV_TEE_TDX},
        };
        char want[200];
        snprintf(want, sizeof(want),
                 "QEMU %u.%u.%u (qemu-system-x86_64) has no usable tdx-guest object: tdx needs "
                 "QEMU >= 10.1.0",
                 v / 10000, v / 100 % 100, v % 100);
        _cleanup_error_ struct cc_error *err = NULL;
        assert_true(hv_check(&c, &err) < 0);
        printf("# tdx: %s\n", cc_error_message(err));
        assert_non_null(strstr(cc_error_message(err), want));
        c.tee.kind = HV_TEE_SEV_SNP;
        assert_true(hv_check(&c, &err) < 0);
        printf("# sev-snp: %s\n", cc_error_message(err));
        assert_non_null(strstr(cc_error_message(err), "has no usable sev-snp-guest object: "
                                                      "sev-snp needs QEMU >= 9.1.0"));
        c.tee.kind = HV_TEE_SEV;
        if (hv_check(&c, &err) < 0)
                assert_null(strstr(cc_error_message(err), "needs QEMU"));
}

/* Runs QEMU with `args`, QMP on fd 3; returns the QMP client (handshake done) or skips. */
static void spawn_qemu(char **args, struct hv_proc *p, struct hv_qmp *q, const char *dir)
{
        char sock[300];
        snprintf(sock, sizeof(sock), "%s/qmp.sock", dir);
        _cleanup_error_ struct cc_error *err = NULL;
        int lfd = hv__unix_listen(sock, &err);
        assert_true(lfd >= 0);
        int cfd = hv__unix_connect(sock, &err);
        assert_true(cfd >= 0);
        char log[300];
        snprintf(log, sizeof(log), "%s/qemu.log", dir);
        assert_int_equal(hv__proc_spawn(p, args, &lfd, 1, log, &err), 0);
        close(lfd);
        unlink(sock);
        *q = (struct hv_qmp)HV_QMP_INIT;
        q->watch_fd = p->pidfd;
        if (hv_qmp_handshake(q, cfd, 10000, &err) < 0)
                fail_msg("qemu: %s", cc_error_message(err));
}

static char *qom_get(struct hv_qmp *q, const char *prop)
{
        json_object *args = json_object_new_object();
        json_object_object_add(args, "path", json_object_new_string("/objects/tee0"));
        json_object_object_add(args, "property", json_object_new_string(prop));
        json_object *ret = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        if (hv_qmp_execute(q, "qom-get", args, 5000, &ret, &err) < 0)
                fail_msg("qom-get %s: %s", prop, cc_error_message(err));
        json_object_put(args);
        char *s = strdup(json_object_to_json_string_ext(ret, JSON_C_TO_STRING_PLAIN));
        json_object_put(ret);
        return s;
}

/*
 * Our sev-guest option string, exactly as rendered, is created by QEMU 7.2 (-S, no
 * confidential-guest-support so TCG does not abort) and reads back as configured. Then the
 * whole rendered SEV command line runs with KVM when /dev/kvm exists: QEMU must get past
 * option parsing and fail only in SEV initialisation, for lack of SEV hardware.
 */
static void test_qemu_accepts_sev(void **state)
{
        if (!have_qemu())
                skip();
        char dir[] = "/tmp/hv-sev-XXXXXX";
        assert_non_null(mkdtemp(dir));
        enum hv_tee kinds[] = {HV_TEE_SEV, HV_TEE_SEV_ES};
        for (size_t k = 0; k < 2; k++) {
                struct hv_config c = {
                        .name = "sev",
                        .run_dir = dir,
                        .vcpus = 1,
                        .memory_mib = 128,
                        .kernel = "/nonexistent-kernel",
                        .firmware = "/usr/share/OVMF/OVMF_CODE.fd",
                        .tee = {.kind = kinds[k], .cbitpos = 51},
                };
                char console[300];
                snprintf(console, sizeof(console), "%s/console.log", dir);
                struct hv_qemu_plan plan = {.cfg = &c,
                                            .console_log = console,
                                            .accel = HV_ACCEL_KVM,
                                            .channel = HV_CHANNEL_SERIAL,
                                            .cbitpos = 51,
                                            .qmp_fd = 3,
                                            .vhost_fd = -1};
                struct hv_argv a = {0};
                assert_int_equal(hv_qemu_argv(&plan, &a, NULL), 0);
                const char *object = NULL;
                for (size_t i = 0; a.v[i]; i++)
                        if (strncmp(a.v[i], "sev-guest,", 10) == 0)
                                object = a.v[i];
                assert_non_null(object);

                char *args[] = {(char *)"qemu-system-x86_64",
                                (char *)"-machine",
                                (char *)"q35,accel=tcg",
                                (char *)"-nodefaults",
                                (char *)"-nographic",
                                (char *)"-S",
                                (char *)"-chardev",
                                (char *)"socket,id=qmp,fd=3,server=on,wait=off",
                                (char *)"-mon",
                                (char *)"chardev=qmp,mode=control",
                                (char *)"-object",
                                (char *)object,
                                NULL};
                struct hv_proc p = HV_PROC_INIT;
                struct hv_qmp q;
                spawn_qemu(args, &p, &q, dir);
                _cleanup_free_ char *policy = qom_get(&q, "policy");
                _cleanup_free_ char *cbit = qom_get(&q, "cbitpos");
                _cleanup_free_ char *rpb = qom_get(&q, "reduced-phys-bits");
                _cleanup_free_ char *kh = qom_get(&q, "kernel-hashes");
                assert_string_equal(policy, kinds[k] == HV_TEE_SEV ? "1" : "5");
                assert_string_equal(cbit, "51");
                assert_string_equal(rpb, "1");
                assert_string_equal(kh, "true");
                hv_qmp_execute(&q, "quit", NULL, 5000, NULL, NULL);
                hv_qmp_close(&q);
                assert_int_equal(hv__proc_wait(&p, 5000), 0);
                hv__proc_done(&p);

                if (access("/dev/kvm", R_OK | W_OK) == 0) {
                        char log[300];
                        snprintf(log, sizeof(log), "%s/full.log", dir);
                        unlink(log);
                        char qsock[300];
                        snprintf(qsock, sizeof(qsock), "%s/full-qmp.sock", dir);
                        int nullfd = hv__unix_listen(qsock, NULL);
                        assert_true(nullfd >= 0);
                        unlink(qsock);
                        struct hv_proc full = HV_PROC_INIT;
                        assert_int_equal(hv__proc_spawn(&full, a.v, &nullfd, 1, log, NULL), 0);
                        close(nullfd);
                        if (hv__proc_wait(&full, 20000) < 0)
                                hv__proc_kill(&full);
                        hv__proc_done(&full);
                        _cleanup_free_ char *last = hv__file_last_line(log);
                        _cleanup_free_ char *all = NULL;
                        FILE *f = fopen(log, "re");
                        size_t n = 0;
                        if (f) {
                                if (getdelim(&all, &n, 0, f) < 0) {
                                        free(all);
                                        all = NULL;
                                }
                                fclose(f);
                        }
                        printf("# full %s command line under KVM: %s", hv_tee_to_string(c.tee.kind),
                               all ? all : "(no output)\n");
                        assert_int_not_equal(full.exit.code, 0);
                        /* Failed in SEV setup, not in option parsing. */
                        assert_non_null(all);
                        assert_true(strstr(all, "sev") || strstr(all, "SEV"));
                        assert_null(strstr(all, "Invalid parameter"));
                        assert_null(strstr(all, "not found"));
                        assert_null(strstr(all, "does not accept"));
                }
                hv__argv_done(&a);
        }
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        assert_int_equal(system(cmd), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_profile_data),
                cmocka_unit_test(test_host_probe),
                cmocka_unit_test(test_accel_rule),
                cmocka_unit_test(test_common_reasons),
                cmocka_unit_test(test_qemu_version_check),
                cmocka_unit_test(test_qemu_accepts_sev),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
