/* Unit tests: error objects, the errno <-> status mapping, logfmt quoting. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cc/error.h"
#include "cc/log.h"

static void test_set_and_wrap(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(cc_error_set(&err, ENOENT, "task %s", "abc"), -ENOENT);
        assert_string_equal(cc_error_message(err), "task abc");
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_NOT_FOUND);
        assert_int_equal(cc_error_wrap(&err, EIO, "state"), -ENOENT);
        assert_string_equal(cc_error_message(err), "state: task abc");
        /* Replacing an error frees the old one (ASan checks the leak). */
        assert_int_equal(cc_error_set(&err, -EINVAL, "bad"), -EINVAL);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_INVALID_ARGUMENT);
        /* A NULL error pointer only returns the errno. */
        assert_int_equal(cc_error_set(NULL, EPERM, "x"), -EPERM);
        assert_int_equal(cc_error_wrap(NULL, EPERM, "x"), -EPERM);
}

static void test_wrap_empty(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(cc_error_wrap(&err, EBUSY, "ctx %d", 1), -EBUSY);
        assert_string_equal(cc_error_message(err), "ctx 1");
}

static void test_add_errno_text(void **state)
{
        struct cc_error *e = NULL;
        cc_error_set(&e, EDQUOT, "image has more than %d entries", 20);
        cc_error_add_errno_text(e);
        assert_string_equal(cc_error_message(e),
                            "image has more than 20 entries (Disk quota exceeded)");
        /* Once only, and not when the text is there already. */
        cc_error_add_errno_text(e);
        assert_string_equal(cc_error_message(e),
                            "image has more than 20 entries (Disk quota exceeded)");
        cc_error_set(&e, ENOENT, "open x: %s", strerror(ENOENT));
        cc_error_add_errno_text(e);
        assert_string_equal(cc_error_message(e), "open x: No such file or directory");
        cc_error_add_errno_text(NULL);
        cc_error_free(e);
}

static void test_explicit_code(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        cc_error_set_code(&err, CC_GRPC_PERMISSION_DENIED, "rule %s", "exec");
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_PERMISSION_DENIED);
        assert_int_equal(err->errnum, EPERM);
        cc_error_set_code(&err, CC_GRPC_UNAUTHENTICATED, "no");
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_UNAUTHENTICATED);
}

static void test_mapping_roundtrip(void **state)
{
        for (int code = 0; code < _CC_GRPC_MAX; code++)
                assert_int_equal(cc_errno_to_grpc(cc_grpc_to_errno(code)), code);
        assert_int_equal(cc_errno_to_grpc(ENOENT), CC_GRPC_NOT_FOUND);
        assert_int_equal(cc_errno_to_grpc(-EEXIST), CC_GRPC_ALREADY_EXISTS);
        assert_int_equal(cc_errno_to_grpc(EOPNOTSUPP), CC_GRPC_UNIMPLEMENTED);
        assert_int_equal(cc_errno_to_grpc(ETIMEDOUT), CC_GRPC_DEADLINE_EXCEEDED);
        assert_int_equal(cc_errno_to_grpc(EXDEV), CC_GRPC_INTERNAL);
        assert_int_equal(cc_grpc_to_errno(99), EREMOTEIO);
        assert_string_equal(cc_grpc_code_name(5), "NotFound");
        assert_string_equal(cc_grpc_code_name(-1), "Unknown");
}

static void test_logfmt_quote(void **state)
{
        char buf[64];
        cc_logfmt_quote(buf, sizeof(buf), "plain");
        assert_string_equal(buf, "plain");
        cc_logfmt_quote(buf, sizeof(buf), "two words");
        assert_string_equal(buf, "\"two words\"");
        cc_logfmt_quote(buf, sizeof(buf), "a\"b\nc");
        assert_string_equal(buf, "\"a\\\"b\\nc\"");
        cc_logfmt_quote(buf, sizeof(buf), "");
        assert_string_equal(buf, "\"\"");
        /* Truncation keeps the buffer terminated and reports the needed size. */
        assert_int_equal(cc_logfmt_quote(buf, 4, "abcdef"), 6);
        assert_string_equal(buf, "abc");
}

static void test_log_levels(void **state)
{
        enum cc_log_level l;
        assert_int_equal(cc_log_level_from_string("debug", &l), 0);
        assert_int_equal(l, CC_LOG_DEBUG);
        assert_int_equal(cc_log_level_from_string("warn", &l), 0);
        assert_int_equal(l, CC_LOG_WARN);
        assert_int_equal(cc_log_level_from_string("loud", &l), -EINVAL);
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        cc_log_set_fd(fds[1]);
        cc_log_set_level(CC_LOG_INFO);
        cc_log_debug("hidden");
        cc_log_set_fields("id=abc");
        assert_int_equal(cc_log_errno(CC_LOG_ERROR, ENOENT, "open %s", "x y"), -ENOENT);
        cc_log_set_fields(NULL);
        char line[512] = {0};
        ssize_t n = read(fds[0], line, sizeof(line) - 1);
        assert_true(n > 0);
        assert_non_null(strstr(line, " level=error msg=\"open x y\" error=\"No such file or "
                                     "directory\" id=abc\n"));
        assert_memory_equal(line, "time=\"", 6);
        cc_log_set_fd(2);
        close(fds[0]);
        close(fds[1]);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_set_and_wrap),      cmocka_unit_test(test_wrap_empty),
                cmocka_unit_test(test_explicit_code),     cmocka_unit_test(test_add_errno_text),
                cmocka_unit_test(test_mapping_roundtrip), cmocka_unit_test(test_logfmt_quote),
                cmocka_unit_test(test_log_levels),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
