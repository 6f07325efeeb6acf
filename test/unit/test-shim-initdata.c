/*
 * Unit tests: the shim's initdata (shim/initdata.c) with the reference's V12 vector
 * (../shared/reference/attestation-kbs.md 8.3): the annotation becomes the TDX MRCONFIGID and
 * the SNP HOST_DATA QEMU and libvirt get (the reference's exact base64 values), the kernel
 * parameter names the sha384 digest, and the disk holds Kata's format; SEV, SEV-ES and Cloud
 * Hypervisor TDX refuse to start unbound; initdata_required without initdata is refused by
 * name; a bad annotation is named without its content.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include "cc/log.h"
#include "shim/shim.h"

static const char v12_annotation[] =
        "H4sIAAAAAAACA4WOQQ7CIBBF95yiYdOVQKuLxsSTNE0zpVgIdDAwNR5fcKcbl/9P3pv/NCm7iM2t4Up0QnEGYYvJkd1rly2chwtnbFyBYGIcQFDcAy/Htm3ZSNEbnHXEu9vy9JOFX0p3pFBVluhxlbJTQole9NdBDeVblTCuV/ulzVF7Q5U60L0KJdOB8mNdDZKDcCqBwGGZLytdCc5Gv+iJIeymslrPJfP/A97nqIAcBQEAAA==";

static char dir[64];

static int setup(void **state)
{
        strcpy(dir, "/tmp/cc-shim-initdata.XXXXXX");
        assert_non_null(mkdtemp(dir));
        return 0;
}

static int teardown(void **state)
{
        char p[128];
        snprintf(p, sizeof(p), "%s/initdata.img", dir);
        unlink(p);
        rmdir(dir);
        return 0;
}

static void config(struct shim_config *c, enum hv_tee tee, const char *backend)
{
        shim_config_init(c);
        c->tee = tee;
        free(c->backend);
        c->backend = strdup(backend);
        c->initdata_annotation = strdup(v12_annotation);
}

static void test_tdx(void **state)
{
        struct shim_config c;
        config(&c, HV_TEE_TDX, "qemu");
        struct shim_initdata d = {0};
        struct cc_error *e = NULL;
        assert_int_equal(shim_initdata_prepare(&c, dir, &d, &e), 0);
        assert_string_equal(d.mrconfigid, "7opbzJV7q6grgGvfUHC6o4aCOJ59AIIHtFx85Qq4mZviRMISlxCkYJWfkC4vm+p1");
        assert_null(d.host_data);
        assert_string_equal(d.kparam, "agent.initdata_digest=sha384:ee8a5bcc957baba82b806bdf5070baa38682389e7d008207b45c7ce50ab8999be244c2129710a460959f902e2f9bea75");
        /* The disk: magic, LE length 181, 512 bytes. */
        FILE *f = fopen(d.disk_path, "rb");
        assert_non_null(f);
        unsigned char head[16];
        assert_int_equal(fread(head, 1, 16, f), 16);
        fseek(f, 0, SEEK_END);
        assert_int_equal(ftell(f), 512);
        fclose(f);
        assert_memory_equal(head, "initdata\xb5\0\0\0\0\0\0\0", 16);
        shim_initdata_done(&d);
        shim_config_done(&c);
}

static void test_snp_and_none(void **state)
{
        struct shim_config c;
        config(&c, HV_TEE_SEV_SNP, "qemu");
        struct shim_initdata d = {0};
        struct cc_error *e = NULL;
        assert_int_equal(shim_initdata_prepare(&c, dir, &d, &e), 0);
        assert_string_equal(d.host_data, "7opbzJV7q6grgGvfUHC6o4aCOJ59AIIHtFx85Qq4mZs=");
        assert_null(d.mrconfigid);
        shim_initdata_done(&d);
        shim_config_done(&c);
        config(&c, HV_TEE_NONE, "qemu");
        assert_int_equal(shim_initdata_prepare(&c, dir, &d, &e), 0);
        assert_null(d.host_data);
        assert_null(d.mrconfigid);
        assert_non_null(d.kparam);
        assert_non_null(d.disk_path);
        shim_initdata_done(&d);
        shim_config_done(&c);
}

static void expect_refused(enum hv_tee tee, const char *backend, const char *anno, bool required,
                           const char *why)
{
        struct shim_config c;
        config(&c, tee, backend);
        free(c.initdata_annotation);
        c.initdata_annotation = anno ? strdup(anno) : NULL;
        c.initdata_required = required;
        struct shim_initdata d = {0};
        struct cc_error *e = NULL;
        assert_true(shim_initdata_prepare(&c, dir, &d, &e) < 0);
        if (!strstr(cc_error_message(e), why))
                fail_msg("'%s' does not say '%s'", cc_error_message(e), why);
        assert_null(strstr(cc_error_message(e), "s3cr3t"));
        assert_null(d.disk_path);
        cc_error_free(e);
        shim_initdata_done(&d);
        shim_config_done(&c);
}

static void test_refusals(void **state)
{
        expect_refused(HV_TEE_SEV, "qemu", v12_annotation, false, "no HOST_DATA before SEV-SNP");
        expect_refused(HV_TEE_SEV_ES, "qemu", v12_annotation, false, "no HOST_DATA before SEV-SNP");
        expect_refused(HV_TEE_TDX, "clh", v12_annotation, false, "its API has no MRCONFIGID");
        expect_refused(HV_TEE_TDX, "qemu", NULL, true, "initdata_required = true");
        /* gzip of "s3cr3t-value = 1\n": a TOML without version; the message names the problem
         * and never the content. */
        expect_refused(HV_TEE_NONE, "qemu", "H4sIAAAAAAACAys2Ti4yLtEtS8wpTVWwVTDkAgAOJ4OiEQAAAA==", false,
                       "no string 'version'");
        expect_refused(HV_TEE_NONE, "qemu", "bm90IGd6aXA=", false, "not a complete gzip stream");
}

int main(void)
{
        cc_log_set_level(CC_LOG_ERROR);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_tdx, setup, teardown),
                cmocka_unit_test_setup_teardown(test_snp_and_none, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
