/* Unit tests: cgroup value conversions and what agent_cgroup_apply writes, against a plain
 * directory standing in for a cgroup v2 tree (guest-agent/runtime/cgroup.c). */
/* cmocka.h needs these first; keep clang-format from sorting it in among them. */
// clang-format off
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
// clang-format on

#include "cc/error.h"

#include "guest-agent/runtime/cgroup.h"

static void test_values(void **state)
{
        char b[64];
        assert_int_equal(agent_cgroup_shares_to_weight(2), 1);
        assert_int_equal(agent_cgroup_shares_to_weight(1024), 39);
        assert_int_equal(agent_cgroup_shares_to_weight(262144), 10000);
        assert_int_equal(agent_cgroup_shares_to_weight(1), 1);
        assert_int_equal(agent_cgroup_shares_to_weight(1u << 30), 10000);
        assert_int_equal(agent_cgroup_shares_to_weight(0), 0);
        assert_int_equal(agent_cgroup_cpu_max(50000, 100000, b, sizeof(b)), 0);
        assert_string_equal(b, "50000 100000");
        assert_int_equal(agent_cgroup_cpu_max(-1, 0, b, sizeof(b)), 0);
        assert_string_equal(b, "max 100000");
        assert_int_equal(agent_cgroup_cpu_max(500, 100000, b, sizeof(b)), -EINVAL);
        assert_int_equal(agent_cgroup_cpu_max(50000, 10, b, sizeof(b)), -EINVAL);
        assert_int_equal(agent_cgroup_limit_str(-1, b, sizeof(b)), 0);
        assert_string_equal(b, "max");
        assert_int_equal(agent_cgroup_limit_str(33554432, b, sizeof(b)), 0);
        assert_string_equal(b, "33554432");
        assert_int_equal(agent_cgroup_swap_max(200, 100, b, sizeof(b)), 0);
        assert_string_equal(b, "100");
        assert_int_equal(agent_cgroup_swap_max(-1, 100, b, sizeof(b)), 0);
        assert_string_equal(b, "max");
        assert_int_equal(agent_cgroup_swap_max(50, 100, b, sizeof(b)), -EINVAL);
}

static char root[PATH_MAX];

static void touch(const char *dir, const char *f, const char *content)
{
        char p[PATH_MAX + 64];
        snprintf(p, sizeof(p), "%s/%s", dir, f);
        FILE *fp = fopen(p, "w");
        assert_non_null(fp);
        fputs(content, fp);
        fclose(fp);
}

static void slurp(const char *dir, const char *f, char *out, size_t n)
{
        char p[PATH_MAX + 64];
        snprintf(p, sizeof(p), "%s/%s", dir, f);
        FILE *fp = fopen(p, "r");
        assert_non_null(fp);
        size_t k = fread(out, 1, n - 1, fp);
        out[k] = '\0';
        fclose(fp);
}

static void test_apply_v2(void **state)
{
        snprintf(root, sizeof(root), "/tmp/test-agent-cgroup-XXXXXX");
        assert_non_null(mkdtemp(root));
        assert_int_equal(agent_cgroup_init(root, AGENT_CGROUP_V2), 0);
        _cleanup_error_ struct cc_error *err = NULL;
        struct agent_cgroup *cg = NULL;
        assert_int_equal(agent_cgroup_create("../x", "c1", &cg, &err), -EINVAL);
        assert_int_equal(agent_cgroup_create("agent", "../c1", &cg, &err), -EINVAL);
        assert_int_equal(agent_cgroup_create("agent", "c1", &cg, &err), 0);
        const char *files[] = {"memory.max", "memory.swap.max", "cpu.weight",
                               "cpu.max",    "pids.max",        "cpuset.cpus"};
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
                touch(cg->v2, files[i], "");
        struct agent_resources r = {.memory_limit = 64 << 20,
                                    .memory_swap = 96 << 20,
                                    .cpu_shares = 1024,
                                    .cpu_quota = 50000,
                                    .cpu_period = 100000,
                                    .pids_limit = 42,
                                    .cpuset_cpus = "0-1"};
        assert_int_equal(agent_cgroup_apply(cg, &r, &err), 0);
        char b[128];
        slurp(cg->v2, "memory.max", b, sizeof(b));
        assert_string_equal(b, "67108864");
        slurp(cg->v2, "memory.swap.max", b, sizeof(b));
        assert_string_equal(b, "33554432");
        slurp(cg->v2, "cpu.weight", b, sizeof(b));
        assert_string_equal(b, "39");
        slurp(cg->v2, "cpu.max", b, sizeof(b));
        assert_string_equal(b, "50000 100000");
        slurp(cg->v2, "pids.max", b, sizeof(b));
        assert_string_equal(b, "42");
        slurp(cg->v2, "cpuset.cpus", b, sizeof(b));
        assert_string_equal(b, "0-1");
        /* Unlimited values become "max"; an invalid swap is refused. */
        struct agent_resources u = {.memory_limit = -1, .pids_limit = -1};
        assert_int_equal(agent_cgroup_apply(cg, &u, &err), 0);
        slurp(cg->v2, "memory.max", b, sizeof(b));
        assert_string_equal(b, "max");
        slurp(cg->v2, "pids.max", b, sizeof(b));
        assert_string_equal(b, "max");
        struct agent_resources bad = {.memory_limit = 100, .memory_swap = 50};
        assert_int_equal(agent_cgroup_apply(cg, &bad, &err), -EINVAL);
        /* Stats and the OOM counter are read from the v2 files. */
        touch(cg->v2, "memory.events", "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n");
        touch(cg->v2, "memory.current", "12345\n");
        touch(cg->v2, "cpu.stat", "usage_usec 7\nuser_usec 5\nsystem_usec 2\n");
        touch(cg->v2, "pids.current", "4\n");
        uint64_t oom = 0;
        assert_int_equal(agent_cgroup_oom_kills(cg, &oom), 0);
        assert_int_equal(oom, 2);
        struct agent_cgroup_stats st;
        assert_int_equal(agent_cgroup_stats(cg, &st), 0);
        assert_int_equal(st.mem_usage, 12345);
        assert_int_equal(st.cpu_usage_ns, 7000);
        assert_int_equal(st.pids_current, 4);
        assert_int_equal(st.mem_failcnt, 3);
        /* The procs path prepared for the forked child. */
        assert_non_null(cg->procs[0]);
        assert_non_null(strstr(cg->procs[0], "/agent/c1/cgroup.procs"));
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        agent_cgroup_free(cg);
        assert_int_equal(system(cmd), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_values),
                cmocka_unit_test(test_apply_v2),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
