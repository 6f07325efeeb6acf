/* Unit tests: the agent's JSON policy engine (guest-agent/policy/policy.c). */
/* cmocka.h needs these first; keep clang-format from sorting it in among them. */
// clang-format off
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
// clang-format on

#include "cc/error.h"

#include "guest-agent/policy/policy.h"

static const char *const policy_text =
        "{\"default\": \"allow\", \"rules\": ["
        " {\"name\": \"no-exec\", \"requests\": [\"ExecProcess\"], \"action\": \"deny\"},"
        " {\"name\": \"dbg\", \"requests\": [\"ReadStdout\"], \"containers\": [\"debug-*\"],"
        "  \"action\": \"allow\"},"
        " {\"name\": \"hide\", \"requests\": [\"ReadStdout\", \"ReadStderr\"],"
        "  \"containers\": [\"*\"], \"action\": \"deny\"}"
        "]}";

static void test_decisions(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_(agent_policy_freep) struct agent_policy *p = NULL;
        assert_int_equal(agent_policy_parse(policy_text, &p, &err), 0);
        assert_int_equal(agent_policy_n_rules(p), 3);
        assert_int_equal(agent_policy_check(p, "CreateContainer", "c1", &err), 0);
        assert_int_equal(agent_policy_check(p, "ExecProcess", "c1", &err), -EPERM);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_PERMISSION_DENIED);
        assert_string_equal(cc_error_message(err),
                            "ExecProcess denied by agent policy rule 'no-exec'");
        /* First match wins: debug-* may be read, others not. */
        assert_int_equal(agent_policy_check(p, "ReadStdout", "debug-1", &err), 0);
        assert_int_equal(agent_policy_check(p, "ReadStdout", "app", &err), -EPERM);
        assert_non_null(strstr(cc_error_message(err), "'hide'"));
        assert_int_equal(agent_policy_check(p, "ReadStderr", "debug-1", &err), -EPERM);
        /* A rule with "containers" does not match requests that name none. */
        assert_int_equal(agent_policy_check(p, "ReadStdout", NULL, &err), 0);
}

static void test_default_deny_and_null(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_(agent_policy_freep) struct agent_policy *p = NULL;
        assert_int_equal(agent_policy_parse("{\"default\":\"deny\",\"rules\":[{\"requests\":"
                                            "[\"Check\",\"Version\"],\"action\":\"allow\"}]}",
                                            &p, &err),
                         0);
        assert_int_equal(agent_policy_check(p, "Check", NULL, &err), 0);
        assert_int_equal(agent_policy_check(p, "CopyFile", NULL, &err), -EPERM);
        assert_string_equal(cc_error_message(err),
                            "CopyFile denied by agent policy rule 'default'");
        /* No policy: everything is allowed. */
        assert_int_equal(agent_policy_check(NULL, "ExecProcess", "x", &err), 0);
}

static void test_invalid(void **state)
{
        const char *bad[] = {
                "",
                "[]",
                "{\"default\":\"maybe\"}",
                "{\"default\":\"allow\"} trailing",
                "{\"rules\":[{\"requests\":[\"X\"]}]}",
                "{\"rules\":[{\"action\":\"deny\"}]}",
                "{\"rules\":[{\"requests\":[],\"action\":\"deny\"}]}",
                "{\"rules\":[{\"requests\":[1],\"action\":\"deny\"}]}",
                "{\"rules\":[{\"requests\":[\"X\"],\"action\":\"deny\",\"typo\":1}]}",
                "{\"rules\":{}}",
                "{\"unknown\":true}",
                "{\"rules\":[1]}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                _cleanup_error_ struct cc_error *err = NULL;
                struct agent_policy *p = NULL;
                assert_int_equal(agent_policy_parse(bad[i], &p, &err), -EINVAL);
                assert_null(p);
                assert_non_null(err);
        }
        _cleanup_(agent_policy_freep) struct agent_policy *p = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(agent_policy_parse("  {\"default\":\"allow\"}\n", &p, &err), 0);
}

static void test_load(void **state)
{
        char path[] = "/tmp/test-agent-policy-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, policy_text, strlen(policy_text)), (ssize_t)strlen(policy_text));
        close(fd);
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_(agent_policy_freep) struct agent_policy *p = NULL;
        assert_int_equal(agent_policy_load(path, &p, &err), 0);
        assert_int_equal(agent_policy_n_rules(p), 3);
        unlink(path);
        struct agent_policy *q = NULL;
        assert_int_equal(agent_policy_load(path, &q, &err), -ENOENT);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_decisions),
                cmocka_unit_test(test_default_deny_and_null),
                cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_load),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
