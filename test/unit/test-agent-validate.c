/* Unit tests: agent id and path validation (guest-agent/validate.c). */
/* cmocka.h needs these first; keep clang-format from sorting it in among them. */
// clang-format off
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
// clang-format on

#include "cc/error.h"

#include "guest-agent/validate.h"

static void test_ids(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(agent_validate_id("c1", "id", &err), 0);
        assert_int_equal(agent_validate_id("a-b_c.d-0123456789abcdef", "id", &err), 0);
        const char *bad[] = {"", "..", ".", "-x", "a/b", "../etc", "a b", "a\nb", "é", "x;rm"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(agent_validate_id(bad[i], "container id", &err), -EINVAL);
                assert_int_equal(cc_error_grpc_code(err), CC_GRPC_INVALID_ARGUMENT);
        }
        /* The message names the field and the byte. */
        assert_int_equal(agent_validate_id("c1\x7fx", "exec_id", &err), -EINVAL);
        assert_string_equal(cc_error_message(err),
                            "exec_id has byte 0x7f at offset 2, outside [A-Za-z0-9_.-]");
        assert_int_equal(agent_validate_id(NULL, "id", &err), -EINVAL);
        char longid[AGENT_ID_MAX + 2];
        memset(longid, 'a', sizeof(longid) - 1);
        longid[sizeof(longid) - 1] = '\0';
        assert_int_equal(agent_validate_id(longid, "id", &err), -EINVAL);
        longid[AGENT_ID_MAX] = '\0';
        assert_int_equal(agent_validate_id(longid, "id", &err), 0);
}

static void test_abs_paths(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(agent_validate_abs_path("/run/x/rootfs", "p", &err), 0);
        assert_int_equal(agent_validate_abs_path("/a//b/", "p", &err), 0);
        assert_int_equal(agent_validate_abs_path("/a/..b/c..", "p", &err), 0);
        assert_int_equal(agent_validate_abs_path("relative", "p", &err), -EINVAL);
        assert_int_equal(agent_validate_abs_path("/a/../b", "p", &err), -EINVAL);
        assert_int_equal(agent_validate_abs_path("/a/./b", "p", &err), -EINVAL);
        assert_int_equal(agent_validate_abs_path("/..", "p", &err), -EINVAL);
        assert_int_equal(agent_validate_abs_path("/a/\x01", "p", &err), -EINVAL);
        assert_int_equal(agent_validate_abs_path("", "p", &err), -EINVAL);
        assert_int_equal(agent_validate_rel_path("cc-agent/x", "p", &err), 0);
        assert_int_equal(agent_validate_rel_path("../x", "p", &err), -EINVAL);
}

static void test_under(void **state)
{
        assert_true(agent_path_is_under("/run/k/c1/rootfs", "/run/k"));
        assert_true(agent_path_is_under("/run/k", "/run/k"));
        assert_true(agent_path_is_under("/run//k/", "/run/k/"));
        assert_false(agent_path_is_under("/run/kx", "/run/k"));
        assert_false(agent_path_is_under("/run", "/run/k"));
        assert_false(agent_path_is_under("/etc", "/run/k"));
        assert_true(agent_path_is_under("/anything", "/"));
        assert_false(agent_path_is_under(NULL, "/"));
}

static void test_size(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(agent_validate_size(10, 10, "x", &err), 0);
        assert_int_equal(agent_validate_size(11, 10, "x", &err), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ids),
                cmocka_unit_test(test_abs_paths),
                cmocka_unit_test(test_under),
                cmocka_unit_test(test_size),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
