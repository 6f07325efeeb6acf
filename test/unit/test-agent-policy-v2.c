/* Unit tests: the policy over the whole request (guest-agent/policy/policy-match.c, version 2) and
 * the TEE default policy. */
/* cmocka.h needs these first; keep clang-format from sorting it in among them. */
// clang-format off
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <cmocka.h>
// clang-format on

#include "cc/error.h"

#include "guest-agent/policy/policy.h"
#include "guest-agent/runtime/spec.h"

static char *masked[] = {"/proc/acpi",       "/proc/kcore",   "/proc/keys",
                         "/proc/timer_list", "/sys/firmware", NULL};
static char *readonly[] = {"/proc/bus",           "/proc/fs", "/proc/irq", "/proc/sys",
                           "/proc/sysrq-trigger", NULL};
static char *args[] = {"/bin/sh", "-c", "echo hi", NULL};
static char *env[] = {"PATH=/bin", "HOME=/root", NULL};
static const uint64_t oci_caps = 1ULL << CAP_CHOWN | 1ULL << CAP_KILL | 1ULL << CAP_NET_RAW;

/* A container spec as a safe CRI pod has it. */
static struct agent_mount mounts[2];
static struct agent_spec good_spec(void)
{
        mounts[0] = (struct agent_mount){.destination = "/proc", .source = "proc", .type = "proc"};
        mounts[1] = (struct agent_mount){
                .destination = "/sys", .source = "sysfs", .type = "sysfs", .flags = MS_RDONLY};
        struct agent_spec s = {
                .root_path = "/run/c/app/rootfs",
                .mounts = mounts,
                .n_mounts = 2,
                .namespaces = AGENT_NS_MOUNT | AGENT_NS_PID | AGENT_NS_IPC | AGENT_NS_UTS,
                .masked_paths = masked,
                .readonly_paths = readonly,
        };
        s.process.args = args;
        s.process.env = env;
        s.process.has_caps = true;
        for (int i = 0; i < _AGENT_CAP_SET_MAX; i++)
                s.process.caps[i] = oci_caps;
        return s;
}

static int create(const struct agent_policy *p, const char *name, const struct agent_spec *s,
                  struct cc_error **err)
{
        struct agent_policy_create c = {.container_id = "c1",
                                        .name = name,
                                        .image = "registry.example/app@sha256:aaaa",
                                        .spec = s};
        return agent_policy_check_create(p, &c, err);
}

#define assert_denied(expr, text)                                                           \
        do {                                                                                \
                assert_int_equal((expr), -EPERM);                                           \
                assert_int_equal(cc_error_grpc_code(err), CC_GRPC_PERMISSION_DENIED);       \
                if (!strstr(cc_error_message(err), (text)))                                 \
                        fail_msg("message '%s' lacks '%s'", cc_error_message(err), (text)); \
        } while (0)

static void test_tee_default(void **state)
{
        (void)state;
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_(agent_policy_freep) struct agent_policy *p = NULL;
        assert_int_equal(agent_policy_tee_default(&p, &err), 0);
        assert_true(agent_policy_is_builtin(p));
        struct agent_spec s = good_spec();
        assert_int_equal(create(p, "app", &s, &err), 0);
        assert_int_equal(create(p, NULL, &s, &err), 0);

        /* The pid namespace left out: the container would see the guest's processes. */
        s.namespaces &= ~AGENT_NS_PID;
        assert_denied(create(p, "app", &s, &err), "must have its own pid namespace");
        s = good_spec();
        s.namespaces &= ~AGENT_NS_IPC;
        assert_denied(create(p, "app", &s, &err), "own ipc namespace");

        /* The pod's namespaces are as good as the container's own (never the guest's). */
        s = good_spec();
        s.sandbox_namespaces = AGENT_NS_PID | AGENT_NS_IPC | AGENT_NS_UTS;
        assert_int_equal(create(p, "app", &s, &err), 0);

        /* Capabilities beyond the OCI defaults, or none listed (= all). */
        s = good_spec();
        s.process.caps[AGENT_CAP_BOUNDING] |= 1ULL << CAP_SYS_ADMIN;
        assert_denied(create(p, "app", &s, &err),
                      "capability CAP_SYS_ADMIN is not allowed (beyond the OCI defaults)");
        s = good_spec();
        s.process.has_caps = false;
        assert_denied(create(p, "app", &s, &err), "names no capabilities");

        /* Unmasked /proc, writable /proc/sys, writable sysfs, devices, sysctls. */
        s = good_spec();
        s.masked_paths = NULL;
        assert_denied(create(p, "app", &s, &err), "masked path /proc/kcore is missing");
        s = good_spec();
        s.readonly_paths = NULL;
        assert_denied(create(p, "app", &s, &err), "read-only path /proc/bus is missing");
        s = good_spec();
        mounts[1].flags = 0;
        assert_denied(create(p, "app", &s, &err), "sysfs at /sys is writable");
        s = good_spec();
        const char *sysctls[] = {"kernel.core_pattern"};
        struct agent_policy_create c = {
                .container_id = "c1", .spec = &s, .sysctls = sysctls, .n_sysctls = 1};
        assert_denied(agent_policy_check_create(p, &c, &err),
                      "sysctl kernel.core_pattern is not allowed");
        /* Devices: only the trusted store (encrypted in the guest, given to no container). */
        const char *devices[] = {"/dev/trusted_store", "/dev/sda"};
        c = (struct agent_policy_create){
                .container_id = "c1", .spec = &s, .devices = devices, .n_devices = 1};
        assert_int_equal(agent_policy_check_create(p, &c, &err), 0);
        c.n_devices = 2;
        assert_denied(agent_policy_check_create(p, &c, &err), "device /dev/sda is not allowed");

        /* The sandbox (the agent's own pause) is not checked. */
        s = good_spec();
        s.namespaces = 0;
        s.sandbox = true;
        assert_int_equal(create(p, "", &s, &err), 0);

        /* Requests: no exec, no clock, no SetPolicy; the rest allowed. */
        assert_denied(agent_policy_check(p, "ExecProcess", "c1", &err), "tee-default-no-exec");
        assert_denied(agent_policy_check(p, "SetGuestDateTime", NULL, &err),
                      "tee-default-guest-clock");
        assert_int_equal(agent_policy_check(p, "ReadStdout", "c1", &err), 0);
        assert_false(agent_policy_allows_set_policy(p));
        assert_true(agent_policy_allows_set_policy(NULL));
        assert_false(agent_policy_allows_host_rootfs(p));
}

static const char pod_policy[] =
        "{\"version\": 2, \"default\": \"allow\", \"set_policy\": \"allow\","
        " \"containers\": ["
        "  {\"name\": \"app\", \"image\": \"registry.example/app@sha256:aaaa\","
        "   \"args\": [\"/bin/sh\", \"-c\", \"echo *\"], \"env\": [\"PATH=*\", \"HOME=/root\"],"
        "   \"capabilities\": [\"CAP_CHOWN\", \"CAP_KILL\", \"CAP_NET_RAW\"],"
        "   \"exec\": [[\"/bin/cat\", \"/tmp/ready\"]],"
        "   \"mounts\": [{\"destination\": \"/proc\", \"type\": \"proc\"},"
        "                {\"destination\": \"/sys\", \"type\": \"sysfs\", \"readonly\": true}]},"
        "  {\"name\": \"debug\", \"privileged\": true, \"namespaces\": [], "
        "   \"sysctls\": [\"net.*\"]}],"
        " \"copy_file\": [\"*-files/*\"]}";

static void test_pod_policy(void **state)
{
        (void)state;
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_(agent_policy_freep) struct agent_policy *p = NULL;
        assert_int_equal(agent_policy_parse(pod_policy, &p, &err), 0);
        assert_true(agent_policy_allows_set_policy(p));
        struct agent_spec s = good_spec();
        assert_int_equal(create(p, "app", &s, &err), 0);
        assert_denied(create(p, "other", &s, &err), "no entry of \"containers\" matches");
        assert_denied(create(p, NULL, &s, &err), "matches the name ''");

        /* The image by digest, both the annotation and what the guest pulled. */
        struct agent_policy_create c = {
                .container_id = "c1", .name = "app", .image = "registry.example/app:1", .spec = &s};
        assert_denied(agent_policy_check_create(p, &c, &err), "image 'registry.example/app:1'");
        c.image = "registry.example/app@sha256:aaaa";
        c.pulled_image = "registry.example/app@sha256:bbbb";
        assert_denied(agent_policy_check_create(p, &c, &err), "the pulled image");
        c.image = c.pulled_image = NULL;
        assert_denied(agent_policy_check_create(p, &c, &err), "the image is not known");

        /* argv, env, mounts. */
        char *other_args[] = {"/bin/sh", "-c", "cat /secret", NULL};
        s.process.args = other_args;
        assert_denied(create(p, "app", &s, &err), "process.args");
        s = good_spec();
        char *more_env[] = {"PATH=/bin", "TOKEN=x", NULL};
        s.process.env = more_env;
        assert_denied(create(p, "app", &s, &err), "environment variable TOKEN is not allowed");
        s = good_spec();
        struct agent_mount extra[3] = {mounts[0],
                                       mounts[1],
                                       {.destination = "/data",
                                        .source = "/run/c/app-files/0",
                                        .type = "bind",
                                        .bind = true}};
        s.mounts = extra;
        s.n_mounts = 3;
        assert_denied(create(p, "app", &s, &err), "mount /data (type bind");

        /* privileged: any capability and paths, and here no namespaces required. */
        s = good_spec();
        s.process.has_caps = false;
        s.masked_paths = NULL;
        s.namespaces = AGENT_NS_MOUNT;
        assert_int_equal(create(p, "debug", &s, &err), 0);
        const char *sysctls[] = {"net.ipv4.ping_group_range", "kernel.core_pattern"};
        c = (struct agent_policy_create){.container_id = "d",
                                         .name = "debug",
                                         .spec = &s,
                                         .sysctls = sysctls,
                                         .n_sysctls = 1};
        assert_int_equal(agent_policy_check_create(p, &c, &err), 0);
        c.n_sysctls = 2;
        assert_denied(agent_policy_check_create(p, &c, &err), "sysctl kernel.core_pattern");

        /* ExecProcess: only the listed argv, with the container's env and capabilities. */
        struct agent_process proc = good_spec().process;
        char *cat[] = {"/bin/cat", "/tmp/ready", NULL};
        proc.args = cat;
        assert_int_equal(agent_policy_check_exec(p, "c1", "app", &proc, &err), 0);
        char *sh[] = {"/bin/sh", NULL};
        proc.args = sh;
        assert_denied(agent_policy_check_exec(p, "c1", "app", &proc, &err),
                      "command '/bin/sh ...' is not in the policy's exec list");
        proc.args = cat;
        proc.caps[AGENT_CAP_EFFECTIVE] |= 1ULL << CAP_SYS_PTRACE;
        assert_denied(agent_policy_check_exec(p, "c1", "app", &proc, &err),
                      "capability CAP_SYS_PTRACE");

        /* CopyFile paths. */
        assert_int_equal(agent_policy_check_copy(p, "c1-files/0", &err), 0);
        assert_denied(agent_policy_check_copy(p, "c1/rootfs/bin/sh", &err),
                      "matches no pattern of copy_file");
        /* A version-1 policy checks no contents. */
        _cleanup_(agent_policy_freep) struct agent_policy *v1 = NULL;
        assert_int_equal(agent_policy_parse("{\"default\": \"allow\"}", &v1, &err), 0);
        s.process.has_caps = false;
        assert_int_equal(create(v1, "x", &s, &err), 0);
        assert_int_equal(agent_policy_check_copy(v1, "anything", &err), 0);
        /* A host-provided rootfs in a TEE: only a policy whose copy_file names rootfs paths. */
        assert_false(agent_policy_allows_host_rootfs(p));
        assert_false(agent_policy_allows_host_rootfs(v1));
        assert_false(agent_policy_allows_host_rootfs(NULL));
        _cleanup_(agent_policy_freep) struct agent_policy *dev = NULL;
        assert_int_equal(
                agent_policy_parse("{\"copy_file\": [\"*-files/*\", \"*/rootfs/*\"]}", &dev, &err),
                0);
        assert_true(agent_policy_allows_host_rootfs(dev));
}

/* sandbox_namespaces: exactly these are the pod's, the rest of `namespaces` the container's. */
static void test_sandbox_namespaces(void **state)
{
        (void)state;
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_(agent_policy_freep) struct agent_policy *p = NULL;
        assert_int_equal(agent_policy_parse(
                                 "{\"version\": 2, \"containers\": ["
                                 "{\"name\": \"app\", \"sandbox_namespaces\": [\"ipc\", \"uts\"]},"
                                 "{\"name\": \"shared\", \"sandbox_namespaces\": [\"pid\", "
                                 "\"ipc\", \"uts\"]}]}",
                                 &p, &err),
                         0);
        struct agent_spec s = good_spec();
        assert_denied(create(p, "app", &s, &err), "it must join the pod's ipc namespace");
        s.sandbox_namespaces = AGENT_NS_IPC | AGENT_NS_UTS;
        assert_int_equal(create(p, "app", &s, &err), 0);
        /* The pod shares its process namespace, but this container's policy does not. */
        s.sandbox_namespaces |= AGENT_NS_PID;
        assert_denied(create(p, "app", &s, &err), "it must not join the pod's pid namespace");
        assert_int_equal(create(p, "shared", &s, &err), 0);
        s.sandbox_namespaces = AGENT_NS_IPC | AGENT_NS_UTS;
        assert_denied(create(p, "shared", &s, &err), "it must join the pod's pid namespace");
        /* Without any pid namespace: the guest's, refused whatever else. */
        s.namespaces &= ~AGENT_NS_PID;
        assert_denied(create(p, "shared", &s, &err),
                      "it must have its own pid namespace or the pod's");
}

static void test_invalid_v2(void **state)
{
        (void)state;
        const char *bad[] = {
                "{\"version\": 3}",
                "{\"containers\": [{}]}",
                "{\"containers\": [{\"name\": \"a\", \"typo\": 1}]}",
                "{\"containers\": [{\"name\": \"a\", \"capabilities\": [\"CAP_NOPE\"]}]}",
                "{\"containers\": [{\"name\": \"a\", \"namespaces\": [\"net\"]}]}",
                "{\"containers\": [{\"name\": \"a\", \"sandbox_namespaces\": [\"mount\"]}]}",
                "{\"containers\": [{\"name\": \"a\", \"uid\": -1}]}",
                "{\"containers\": [{\"name\": \"a\", \"mounts\": [{\"type\": \"bind\"}]}]}",
                "{\"containers\": [{\"name\": \"a\", \"exec\": [[]]}]}",
                "{\"containers\": [{\"name\": \"a\", \"privileged\": \"yes\"}]}",
                "{\"containers\": {}}",
                "{\"copy_file\": \"x\"}",
                "{\"set_policy\": true}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                _cleanup_error_ struct cc_error *err = NULL;
                struct agent_policy *p = NULL;
                if (agent_policy_parse(bad[i], &p, &err) != -EINVAL)
                        fail_msg("accepted: %s", bad[i]);
                assert_null(p);
                assert_non_null(err);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tee_default),
                cmocka_unit_test(test_pod_policy),
                cmocka_unit_test(test_invalid_v2),
                cmocka_unit_test(test_sandbox_namespaces),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
