/*
 * The bzImage version reader behind `cc-runtime check`'s kernel line: a well-formed header, each
 * malformed one named (no HdrS, old protocol, no/empty/unterminated/non-printable string, an
 * offset past the data), truncation to the caller's buffer, and a missing file.
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
#include <unistd.h>
/* clang-format off: cmocka.h needs the headers above first */
#include <cmocka.h>
/* clang-format on */

#include "cc/cleanup.h"
#include "cc/error.h"

#include "hypervisor/hv-internal.h"

#define VERSION "6.1.192-cc (cc@cc-guest-kernel) #1 SMP PREEMPT_DYNAMIC"

/* A 4 KiB setup header: HdrS, protocol 2.15, the version string at 0x1000 - 0x200 + 0x200. */
static void header(uint8_t *b, size_t len, const char *ver)
{
        memset(b, 0, len);
        memcpy(b + 0x202, "HdrS", 4);
        b[0x206] = 0x0f;
        b[0x207] = 0x02;
        unsigned off = 0x800 - 0x200;
        b[0x20e] = off & 0xff;
        b[0x20f] = off >> 8;
        if (ver)
                memcpy(b + 0x800, ver, strlen(ver) + 1);
}

static void expect_error(const uint8_t *b, size_t len, int code, const char *msg)
{
        char out[128] = "x";
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(hv__kernel_version_parse(b, len, out, sizeof(out), &err), -code);
        assert_non_null(strstr(cc_error_message(err), msg));
        assert_string_equal(out, "");
}

static void test_good(void **state)
{
        (void)state;
        uint8_t b[4096];
        header(b, sizeof(b), VERSION);
        char out[128];
        assert_int_equal(hv__kernel_version_parse(b, sizeof(b), out, sizeof(out), NULL), 0);
        assert_string_equal(out, VERSION);
        /* Truncated to the caller's buffer. */
        char small[9];
        assert_int_equal(hv__kernel_version_parse(b, sizeof(b), small, sizeof(small), NULL), 0);
        assert_string_equal(small, "6.1.192-");
}

static void test_bad(void **state)
{
        (void)state;
        uint8_t b[4096];
        header(b, sizeof(b), VERSION);
        expect_error(b, 0x100, EINVAL, "not a bzImage");
        b[0x202] = 'X';
        expect_error(b, sizeof(b), EINVAL, "not a bzImage");
        header(b, sizeof(b), VERSION);
        b[0x207] = 0x01;
        expect_error(b, sizeof(b), EINVAL, "boot protocol 0x10f");
        header(b, sizeof(b), VERSION);
        b[0x20e] = b[0x20f] = 0;
        expect_error(b, sizeof(b), ENOENT, "names no kernel version");
        header(b, sizeof(b), VERSION);
        expect_error(b, 0x800, EINVAL, "past the setup code");
        expect_error(b, 0x805, EINVAL, "not terminated");
        header(b, sizeof(b), "");
        expect_error(b, sizeof(b), ENOENT, "empty");
        header(b, sizeof(b), "6.1\x01");
        expect_error(b, sizeof(b), EINVAL, "non-printable byte 0x1");
}

static void test_file(void **state)
{
        (void)state;
        char path[] = "/tmp/test-hv-kernel-info.XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        uint8_t b[4096];
        header(b, sizeof(b), VERSION);
        assert_int_equal(write(fd, b, sizeof(b)), (ssize_t)sizeof(b));
        close(fd);
        char out[128];
        assert_int_equal(hv__kernel_version(path, out, sizeof(out), NULL), 0);
        assert_string_equal(out, VERSION);
        /* A file that is no kernel: the path and the reason. */
        fd = open(path, O_WRONLY | O_TRUNC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "not a kernel\n", 13), 13);
        close(fd);
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(hv__kernel_version(path, out, sizeof(out), &err), -EINVAL);
        assert_non_null(strstr(cc_error_message(err), path));
        assert_non_null(strstr(cc_error_message(err), "not a bzImage"));
        unlink(path);
        cc_error_free(err);
        err = NULL;
        assert_int_equal(hv__kernel_version(path, out, sizeof(out), &err), -ENOENT);
        assert_non_null(strstr(cc_error_message(err), "No such file"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_good),
                cmocka_unit_test(test_bad),
                cmocka_unit_test(test_file),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
