/*
 * Unit tests: the agent's initdata at boot (guest-agent/init/initdata.c) with the reference's V12
 * disk in a scratch device directory: found by its magic, the files written, the digest checked
 * against the launch's command-line digest (a mismatch names both), and `bound` false when
 * nothing could be compared (main.c then ignores its policy.json in a TEE guest).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include "cc/log.h"

#include "guest-agent/agent.h"
#include "guest-agent/attest/kbc.h"

static const char v12_annotation[] =
        "H4sIAAAAAAACA4WOQQ7CIBBF95yiYdOVQKuLxsSTNE0zpVgIdDAwNR5fcKcbl/9P3pv/"
        "NCm7iM2t4Up0QnEGYYvJkd1rly2chwtnbFyBYGIcQFDcAy/"
        "Htm3ZSNEbnHXEu9vy9JOFX0p3pFBVluhxlbJTQole9NdBDeVblTCuV/"
        "ulzVF7Q5U60L0KJdOB8mNdDZKDcCqBwGGZLytdCc5Gv+iJIeymslrPJfP/A97nqIAcBQEAAA==";
static const char v12_digest[] = "sha384:"
                                 "ee8a5bcc957baba82b806bdf5070baa38682389e7d008207b45c7ce50ab8999be"
                                 "244c2129710a460959f902e2f9bea75";

static char dir[64], dev[128], out[128];

static int setup(void **state)
{
        strcpy(dir, "/tmp/cc-agent-initdata.XXXXXX");
        assert_non_null(mkdtemp(dir));
        snprintf(dev, sizeof(dev), "%s/dev", dir);
        snprintf(out, sizeof(out), "%s/out", dir);
        assert_int_equal(mkdir(dev, 0700), 0);
        uint8_t *disk = NULL;
        size_t len = 0;
        assert_int_equal(kbc_initdata_disk_encode(v12_annotation, &disk, &len, NULL), 0);
        char p[160];
        snprintf(p, sizeof(p), "%s/vda", dev);
        FILE *f = fopen(p, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(disk, 1, len, f), len);
        fclose(f);
        free(disk);
        /* Another disk without the magic, and a partition name, are passed over. */
        snprintf(p, sizeof(p), "%s/vdb", dev);
        f = fopen(p, "wb");
        fputs("not initdata at all", f);
        fclose(f);
        return 0;
}

static int teardown(void **state)
{
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
        return 0;
}

static void test_bound_by_cmdline(void **state)
{
        bool found = false, bound = false;
        struct cc_error *e = NULL;
        assert_int_equal(agent_initdata_load(dev, v12_digest, out, &found, &bound, &e), 0);
        assert_true(found);
        assert_true(bound);
        char p[160];
        snprintf(p, sizeof(p), "%s/initdata.toml", out);
        assert_int_equal(access(p, F_OK), 0);
        snprintf(p, sizeof(p), "%s/cdh.toml", out);
        assert_int_equal(access(p, F_OK), 0);
}

static void test_unbound(void **state)
{
        bool found = false, bound = true;
        struct cc_error *e = NULL;
        assert_int_equal(agent_initdata_load(dev, NULL, out, &found, &bound, &e), 0);
        assert_true(found);
        assert_false(bound);
}

static void test_changed_after_launch(void **state)
{
        bool found = true, bound = true;
        struct cc_error *e = NULL;
        const char *other = "sha384:"
                            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff001122"
                            "33445566778899aabbccddeeff";
        assert_int_equal(agent_initdata_load(dev, other, out, &found, &bound, &e), -EBADMSG);
        assert_false(found);
        assert_false(bound);
        const char *m = cc_error_message(e);
        assert_non_null(strstr(m, "initdata was changed after launch"));
        assert_non_null(strstr(m, v12_digest));
        assert_non_null(strstr(m, other));
        cc_error_free(e);
}

static void test_digest_but_no_disk(void **state)
{
        char p[160];
        snprintf(p, sizeof(p), "%s/vda", dev);
        unlink(p);
        bool found = true, bound = true;
        struct cc_error *e = NULL;
        assert_int_equal(agent_initdata_load(dev, v12_digest, out, &found, &bound, &e), -ENOENT);
        assert_non_null(strstr(cc_error_message(e), "no initdata disk is attached"));
        cc_error_free(e);
        e = NULL;
        /* No disk and no digest: nothing to do. */
        assert_int_equal(agent_initdata_load(dev, NULL, out, &found, &bound, &e), 0);
        assert_false(found);
}

int main(void)
{
        cc_log_set_level(CC_LOG_ERROR);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_bound_by_cmdline, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unbound, setup, teardown),
                cmocka_unit_test_setup_teardown(test_changed_after_launch, setup, teardown),
                cmocka_unit_test_setup_teardown(test_digest_but_no_disk, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
