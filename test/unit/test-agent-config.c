/* Unit tests: agent configuration from defaults, the kernel command line and flags. */
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

#include "guest-agent/agent.h"

static void test_defaults(void **state)
{
        struct agent_config c = {0};
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(agent_config_parse(&c, NULL, 0, NULL, &err), 0);
        assert_string_equal(c.server_addr, "vsock://-1:1024");
        assert_string_equal(c.containers_dir, "/run/kata-containers/shared/containers");
        assert_string_equal(c.policy_path, "/etc/cc-agent/policy.json");
        assert_null(c.log_port);
        agent_config_done(&c);
}

static void test_cmdline_and_flags(void **state)
{
        struct agent_config c = {0};
        _cleanup_error_ struct cc_error *err = NULL;
        const char *cmdline = "console=ttyS0 quiet agent.server_addr=serial://agent.channel.0 "
                              "agent.log=debug agent.log_port=agent.log.0 notagent.log=x\n";
        char *argv[] = {"cc-agent", "--containers-dir", "/run/x", NULL};
        assert_int_equal(agent_config_parse(&c, cmdline, 3, argv, &err), 0);
        assert_string_equal(c.server_addr, "serial://agent.channel.0");
        assert_string_equal(c.log_level, "debug");
        assert_string_equal(c.log_port, "agent.log.0");
        assert_string_equal(c.containers_dir, "/run/x");
        assert_false(c.debug_console);
        agent_config_done(&c);
        /* Kata's debug console words; only the exact word turns it on. */
        assert_int_equal(agent_config_parse(&c,
                                            "quiet agent.debug_console "
                                            "agent.debug_console_vport=1026",
                                            0, NULL, &err),
                         0);
        assert_true(c.debug_console);
        assert_int_equal(c.debug_console_vport, 1026);
        agent_config_done(&c);
        assert_int_equal(agent_config_parse(&c,
                                            "agent.debug_console_vport=1026 "
                                            "agent.debug_consolex=1",
                                            0, NULL, &err),
                         0);
        assert_false(c.debug_console);
        agent_config_done(&c);
        /* A port that is not a number: none. */
        assert_int_equal(agent_config_parse(&c, "agent.debug_console agent.debug_console_vport=10x",
                                            0, NULL, &err),
                         0);
        assert_int_equal(c.debug_console_vport, 0);
        agent_config_done(&c);
        /* agent.image_insecure= (development images: plain-HTTP registries for PullImage). */
        assert_null(c.image_insecure);
        assert_int_equal(agent_config_parse(&c,
                                            "quiet agent.image_insecure=10.0.2.2:5000,"
                                            "reg.example:443 panic=-1",
                                            0, NULL, &err),
                         0);
        assert_string_equal(c.image_insecure, "10.0.2.2:5000,reg.example:443");
        agent_config_done(&c);
        /* Flags win over the command line. */
        char *argv2[] = {"cc-agent", "--server-addr", "unix:///tmp/a.sock", NULL};
        assert_int_equal(agent_config_parse(&c, cmdline, 3, argv2, &err), 0);
        assert_string_equal(c.server_addr, "unix:///tmp/a.sock");
        agent_config_done(&c);
}

static void test_bad(void **state)
{
        struct agent_config c = {0};
        _cleanup_error_ struct cc_error *err = NULL;
        char *argv[] = {"cc-agent", "--containers-dir", "relative", NULL};
        assert_int_equal(agent_config_parse(&c, NULL, 3, argv, &err), -EINVAL);
        agent_config_done(&c);
        char *argv2[] = {"cc-agent", "stray", NULL};
        assert_int_equal(agent_config_parse(&c, NULL, 2, argv2, &err), -EINVAL);
        agent_config_done(&c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_cmdline_and_flags),
                cmocka_unit_test(test_bad),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
