/*
 * Unit tests: the guest image's check of its own files at boot (guest-agent/init/selfcheck.c),
 * against a scratch tree with a digest list in sha256sum's format: a good image passes and is
 * counted; a changed byte, a truncated file, a missing file, a symlink in place of a file and
 * a malformed list each fail with the file (or the list line) named.
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

static char root[64];
static char list[128];

static void write_file(const char *rel, const char *content)
{
        char p[256];
        snprintf(p, sizeof(p), "%s%s", root, rel);
        FILE *f = fopen(p, "w");
        assert_non_null(f);
        fputs(content, f);
        fclose(f);
}

/* sha256("hello\n") and sha256("world\n"), from sha256sum. */
#define H_HELLO "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
#define H_WORLD "e258d248fda94c63753607f7c4494ee0fcbe92f1a76bfdac795c9d84101eb317"

static int setup(void **state)
{
        strcpy(root, "/tmp/cc-selfcheck.XXXXXX");
        assert_non_null(mkdtemp(root));
        char p[256];
        snprintf(p, sizeof(p), "%s/usr", root);
        mkdir(p, 0755);
        write_file("/usr/a", "hello\n");
        write_file("/usr/b", "world\n");
        snprintf(list, sizeof(list), "%s/image.sha256", root);
        FILE *f = fopen(list, "w");
        assert_non_null(f);
        fprintf(f, "%s  /usr/a\n%s  /usr/b\n", H_HELLO, H_WORLD);
        fclose(f);
        return 0;
}

static int teardown(void **state)
{
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        assert_int_equal(system(cmd), 0);
        return 0;
}

static void test_good_image(void **state)
{
        unsigned files = 0;
        uint64_t bytes = 0;
        struct cc_error *e = NULL;
        assert_int_equal(agent_selfcheck(list, root, &files, &bytes, &e), 0);
        assert_int_equal(files, 2);
        assert_int_equal(bytes, 12);
}

static void expect_fail(int code, const char *needle)
{
        struct cc_error *e = NULL;
        assert_int_equal(agent_selfcheck(list, root, NULL, NULL, &e), code);
        const char *m = cc_error_message(e);
        if (!strstr(m, needle))
                fail_msg("'%s' does not say '%s'", m, needle);
        cc_error_free(e);
}

static void test_changed_byte(void **state)
{
        write_file("/usr/b", "worle\n");
        expect_fail(-EBADMSG, "the guest image is corrupt: /usr/b has sha256 ");
        expect_fail(-EBADMSG, "the image was built with " H_WORLD);
}

static void test_truncated(void **state)
{
        char p[256];
        snprintf(p, sizeof(p), "%s/usr/a", root);
        assert_int_equal(truncate(p, 3), 0);
        expect_fail(-EBADMSG, "/usr/a has sha256");
        expect_fail(-EBADMSG, "(3 bytes)");
}

static void test_missing(void **state)
{
        char p[256];
        snprintf(p, sizeof(p), "%s/usr/b", root);
        unlink(p);
        expect_fail(-ENOENT, "the guest image is corrupt: /usr/b: No such file or directory");
}

static void test_symlink(void **state)
{
        char p[256];
        snprintf(p, sizeof(p), "%s/usr/b", root);
        unlink(p);
        assert_int_equal(symlink("a", p), 0);
        expect_fail(-ELOOP, "/usr/b");
}

static void test_bad_list(void **state)
{
        static const char *const bad[] = {
                "5891b5b5  /usr/a\n",             /* short digest */
                H_HELLO " /usr/a\n",              /* one space */
                H_HELLO "  usr/a\n",              /* relative path */
                H_HELLO "  /usr/../etc/shadow\n", /* .. */
                "5891B5B522D5DF086D0FF0B110FBD9D21BB4FC7163AF34D08286A2E846F6BE03  /usr/a\n",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                FILE *f = fopen(list, "w");
                assert_non_null(f);
                fputs(bad[i], f);
                fclose(f);
                expect_fail(-EINVAL, ":1: not '<sha256>  /path'");
        }
        unlink(list);
        expect_fail(-ENOENT, "guest image check: ");
}

int main(void)
{
        cc_log_set_level(CC_LOG_ERROR);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_good_image, setup, teardown),
                cmocka_unit_test_setup_teardown(test_changed_byte, setup, teardown),
                cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
                cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_symlink, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_list, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
