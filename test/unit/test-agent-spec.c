/* Unit tests: grpc.Spec -> agent_spec (guest-agent/runtime/spec-oci.c) and the name tables. */
/* cmocka.h needs these first; keep clang-format from sorting it in among them. */
// clang-format off
#include <errno.h>
#include <seccomp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <cmocka.h>
// clang-format on

#include "cc/error.h"

#include "guest-agent/runtime/spec-oci.h"

static char *args[] = {"/bin/sh", "-c", "echo hi"};
static char *env[] = {"PATH=/bin", "A=b"};
static char *caps[] = {"CAP_CHOWN", "CAP_KILL", "CAP_NOT_A_CAP"};
static char *mopts[] = {"nosuid", "noexec", "ro", "mode=755", "size=65536k"};
static char *bopts[] = {"rbind", "ro", "rprivate"};
static char *masked[] = {"/proc/kcore"};
static char *names[] = {"mkdir", "not_a_syscall"};

struct fixture {
        Grpc__Spec spec;
        Grpc__Process proc;
        Grpc__User user;
        Grpc__Root root;
        Grpc__LinuxCapabilities caps;
        Grpc__POSIXRlimit rl;
        Grpc__POSIXRlimit *rls[1];
        Grpc__Mount m0, m1;
        Grpc__Mount *mounts[2];
        Grpc__Linux linux_;
        Grpc__LinuxNamespace ns[3];
        Grpc__LinuxNamespace *nss[3];
        Grpc__LinuxResources res;
        Grpc__LinuxMemory mem;
        Grpc__LinuxPids pids;
        Grpc__LinuxSeccomp sc;
        Grpc__LinuxSyscall sys;
        Grpc__LinuxSyscall *syss[1];
        uint32_t gids[2];
};

static void fill(struct fixture *f)
{
        grpc__spec__init(&f->spec);
        grpc__process__init(&f->proc);
        grpc__user__init(&f->user);
        grpc__root__init(&f->root);
        grpc__linux_capabilities__init(&f->caps);
        grpc__posixrlimit__init(&f->rl);
        grpc__mount__init(&f->m0);
        grpc__mount__init(&f->m1);
        grpc__linux__init(&f->linux_);
        grpc__linux_resources__init(&f->res);
        grpc__linux_memory__init(&f->mem);
        grpc__linux_pids__init(&f->pids);
        grpc__linux_seccomp__init(&f->sc);
        grpc__linux_syscall__init(&f->sys);
        f->user.uid = 1000;
        f->user.gid = 100;
        f->gids[0] = 10;
        f->gids[1] = 11;
        f->user.n_additionalgids = 2;
        f->user.additionalgids = f->gids;
        f->proc.user = &f->user;
        f->proc.args = args;
        f->proc.n_args = 3;
        f->proc.env = env;
        f->proc.n_env = 2;
        f->proc.cwd = "/work";
        f->caps.bounding = caps;
        f->caps.n_bounding = 3;
        f->caps.effective = caps;
        f->caps.n_effective = 1;
        f->proc.capabilities = &f->caps;
        f->rl.type = "RLIMIT_NOFILE";
        f->rl.soft = 42;
        f->rl.hard = 43;
        f->rls[0] = &f->rl;
        f->proc.rlimits = f->rls;
        f->proc.n_rlimits = 1;
        f->proc.nonewprivileges = true;
        f->proc.oomscoreadj = 100;
        f->spec.process = &f->proc;
        f->root.path = "/run/c/c1/rootfs";
        f->root.readonly = true;
        f->spec.root = &f->root;
        f->spec.hostname = "box";
        f->m0.destination = "/dev";
        f->m0.type = "tmpfs";
        f->m0.source = "tmpfs";
        f->m0.options = mopts;
        f->m0.n_options = 5;
        f->m1.destination = "/data";
        f->m1.type = "bind";
        f->m1.source = "/run/c/c1-data";
        f->m1.options = bopts;
        f->m1.n_options = 3;
        f->mounts[0] = &f->m0;
        f->mounts[1] = &f->m1;
        f->spec.mounts = f->mounts;
        f->spec.n_mounts = 2;
        const char *types[] = {"pid", "network", "uts"};
        for (int i = 0; i < 3; i++) {
                grpc__linux_namespace__init(&f->ns[i]);
                f->ns[i].type = (char *)types[i];
                f->nss[i] = &f->ns[i];
        }
        f->linux_.namespaces = f->nss;
        f->linux_.n_namespaces = 3;
        f->mem.limit = 1 << 20;
        f->pids.limit = 5;
        f->res.memory = &f->mem;
        f->res.pids = &f->pids;
        f->linux_.resources = &f->res;
        f->linux_.maskedpaths = masked;
        f->linux_.n_maskedpaths = 1;
        f->sys.names = names;
        f->sys.n_names = 2;
        f->sys.action = "SCMP_ACT_ERRNO";
        f->sys.errno_ret_case = GRPC__LINUX_SYSCALL__ERRNO_RET_ERRNORET;
        f->sys.errnoret = 1;
        f->syss[0] = &f->sys;
        f->sc.defaultaction = "SCMP_ACT_ALLOW";
        f->sc.syscalls = f->syss;
        f->sc.n_syscalls = 1;
        f->linux_.seccomp = &f->sc;
        f->spec.linux_ = &f->linux_;
}

static void test_convert(void **state)
{
        struct fixture f;
        fill(&f);
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_(agent_spec_freep) struct agent_spec *s = NULL;
        assert_int_equal(agent_spec_from_oci(&f.spec, &s, &err), 0);
        assert_string_equal(s->root_path, "/run/c/c1/rootfs");
        assert_true(s->root_readonly);
        assert_string_equal(s->hostname, "box");
        assert_false(s->sandbox);
        assert_int_equal(s->namespaces,
                         AGENT_NS_MOUNT | AGENT_NS_PID | AGENT_NS_UTS | AGENT_NS_NET);
        assert_int_equal(s->process.uid, 1000);
        assert_int_equal(s->process.gid, 100);
        assert_int_equal(s->process.n_additional_gids, 2);
        assert_string_equal(s->process.args[2], "echo hi");
        assert_null(s->process.args[3]);
        assert_string_equal(s->process.env[1], "A=b");
        assert_string_equal(s->process.cwd, "/work");
        assert_true(s->process.has_caps);
        /* CAP_CHOWN = 0, CAP_KILL = 5; unknown names are ignored. */
        assert_int_equal(s->process.caps[AGENT_CAP_BOUNDING], (1ULL << 0) | (1ULL << 5));
        assert_int_equal(s->process.caps[AGENT_CAP_EFFECTIVE], 1ULL << 0);
        assert_int_equal(s->process.caps[AGENT_CAP_AMBIENT], 0);
        assert_int_equal(s->process.n_rlimits, 1);
        assert_int_equal(s->process.rlimits[0].resource, RLIMIT_NOFILE);
        assert_int_equal(s->process.rlimits[0].soft, 42);
        assert_true(s->process.no_new_privileges);
        assert_true(s->process.has_oom_score_adj);
        assert_int_equal(s->process.oom_score_adj, 100);
        assert_int_equal(s->n_mounts, 2);
        assert_int_equal(s->mounts[0].flags, MS_NOSUID | MS_NOEXEC | MS_RDONLY);
        assert_string_equal(s->mounts[0].data, "mode=755,size=65536k");
        assert_false(s->mounts[0].bind);
        assert_true(s->mounts[1].bind);
        assert_true(s->mounts[1].readonly_bind);
        assert_int_equal(s->mounts[1].flags & (MS_BIND | MS_REC), MS_BIND | MS_REC);
        assert_int_equal(s->mounts[1].propagation, MS_PRIVATE | MS_REC);
        assert_null(s->mounts[1].data);
        assert_int_equal(s->resources.memory_limit, 1 << 20);
        assert_int_equal(s->resources.pids_limit, 5);
        assert_string_equal(s->masked_paths[0], "/proc/kcore");
        assert_non_null(s->seccomp);
        assert_int_equal(s->seccomp->default_action, SCMP_ACT_ALLOW);
        assert_int_equal(s->seccomp->n_rules, 1);
        assert_int_equal(s->seccomp->rules[0].action, SCMP_ACT_ERRNO(1));
}

static void expect_invalid(struct fixture *f, int want)
{
        _cleanup_error_ struct cc_error *err = NULL;
        struct agent_spec *s = NULL;
        assert_int_equal(agent_spec_from_oci(&f->spec, &s, &err), want);
        assert_null(s);
        assert_non_null(err);
}

static void test_refusals(void **state)
{
        struct fixture f;
        fill(&f);
        f.root.path = "/run/../etc";
        expect_invalid(&f, -EINVAL);
        fill(&f);
        f.root.path = "";
        expect_invalid(&f, -EINVAL);
        fill(&f);
        f.m1.destination = "relative";
        expect_invalid(&f, -EINVAL);
        fill(&f);
        f.proc.n_args = 0;
        expect_invalid(&f, -EINVAL);
        fill(&f);
        f.rl.type = "RLIMIT_BOGUS";
        expect_invalid(&f, -EINVAL);
        fill(&f);
        f.rl.soft = 100;
        expect_invalid(&f, -EINVAL);
        fill(&f);
        f.proc.cwd = "rel";
        expect_invalid(&f, -EINVAL);
        fill(&f);
        f.sc.defaultaction = "SCMP_ACT_EXPLODE";
        expect_invalid(&f, -EINVAL);
        fill(&f);
        f.proc.oomscoreadj = 5000;
        expect_invalid(&f, -EINVAL);
        fill(&f);
        static char *badenv[] = {"NOEQUALS"};
        f.proc.env = badenv;
        f.proc.n_env = 1;
        expect_invalid(&f, -EINVAL);
        fill(&f);
        Grpc__Hooks hooks = GRPC__HOOKS__INIT;
        Grpc__Hook hook = GRPC__HOOK__INIT;
        Grpc__Hook *hl[] = {&hook};
        hook.path = "/bin/evil";
        hooks.prestart = hl;
        hooks.n_prestart = 1;
        f.spec.hooks = &hooks;
        expect_invalid(&f, -EPERM);
        expect_invalid(&(struct fixture){0}, -EINVAL); /* no root, no process */
        _cleanup_error_ struct cc_error *err = NULL;
        struct agent_spec *s = NULL;
        assert_int_equal(agent_spec_from_oci(NULL, &s, &err), -EINVAL);
}

static void test_sandbox(void **state)
{
        Grpc__Spec spec = GRPC__SPEC__INIT;
        Grpc__Spec__AnnotationsEntry e = GRPC__SPEC__ANNOTATIONS_ENTRY__INIT;
        Grpc__Spec__AnnotationsEntry *ev[] = {&e};
        e.key = "io.kubernetes.cri.container-type";
        e.value = "sandbox";
        spec.annotations = ev;
        spec.n_annotations = 1;
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_(agent_spec_freep) struct agent_spec *s = NULL;
        assert_true(agent_spec_is_sandbox(&spec));
        /* The sandbox needs neither a rootfs nor a process: the agent runs its own pause. */
        assert_int_equal(agent_spec_from_oci(&spec, &s, &err), 0);
        assert_true(s->sandbox);
}

/* Which namespaces a container shares with the pod's sandbox (Kata's rules, and containerd's
 * namespace paths as the shim passes them). */
static void test_pod_namespaces(void **state)
{
        (void)state;
        struct fixture f;
        fill(&f);
        const unsigned pod = AGENT_NS_PID | AGENT_NS_IPC | AGENT_NS_UTS;
        f.ns[1].type = "ipc"; /* pid, ipc, uts; none with a path */
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_(agent_spec_freep) struct agent_spec *s = NULL;
        assert_int_equal(agent_spec_from_oci(&f.spec, &s, &err), 0);
        assert_int_equal(s->ns_paths, 0);
        /* Before CreateSandbox: everything the container's own. */
        assert_int_equal(agent_spec_pod_namespaces(s, false, 0, NULL, &err), 0);
        assert_int_equal(s->sandbox_namespaces, 0);
        /* The pod's namespaces: IPC is the pod's; UTS too unless the spec names another
         * hostname. */
        assert_int_equal(agent_spec_pod_namespaces(s, false, pod, "pod", &err), 0);
        assert_int_equal(s->sandbox_namespaces, AGENT_NS_IPC);
        assert_int_equal(agent_spec_pod_namespaces(s, false, pod, "box", &err), 0);
        assert_int_equal(s->sandbox_namespaces, AGENT_NS_IPC | AGENT_NS_UTS);
        /* The pod shares its process namespace: Kata's flag. */
        assert_int_equal(agent_spec_pod_namespaces(s, true, pod, "box", &err), 0);
        assert_int_equal(s->sandbox_namespaces, pod);
        /* ... and the pod must have one of its own to share (never the guest's). */
        assert_int_equal(agent_spec_pod_namespaces(s, true, AGENT_NS_IPC, "box", &err), -EINVAL);
        assert_non_null(
                strstr(cc_error_message(err), "pid namespace, but the pod has none of its own"));
        cc_error_free(TAKE_PTR(err));
        assert_int_equal(agent_spec_pod_namespaces(s, true, 0, NULL, &err), -EINVAL);
        assert_non_null(
                strstr(cc_error_message(err), "the pod has no namespaces (no CreateSandbox)"));
        cc_error_free(TAKE_PTR(err));

        /* containerd's paths (the shim passes "sandbox"): those are the pod's, also a pid
         * namespace the spec would not have listed otherwise. */
        agent_spec_free(TAKE_PTR(s));
        f.ns[0].path = "sandbox";
        f.ns[2].path = "sandbox";
        assert_int_equal(agent_spec_from_oci(&f.spec, &s, &err), 0);
        assert_int_equal(s->ns_paths, AGENT_NS_PID | AGENT_NS_UTS);
        assert_int_equal(agent_spec_pod_namespaces(s, false, pod, "pod", &err), 0);
        assert_int_equal(s->sandbox_namespaces, pod);
        assert_int_equal(s->namespaces & pod, pod);

        /* The sandbox (pause) container joins all the pod's namespaces it lists. */
        s->sandbox = true;
        s->ns_paths = 0;
        s->namespaces = AGENT_NS_MOUNT | AGENT_NS_UTS | AGENT_NS_IPC;
        assert_int_equal(agent_spec_pod_namespaces(s, false, pod, "pod", &err), 0);
        assert_int_equal(s->sandbox_namespaces, AGENT_NS_UTS | AGENT_NS_IPC);

        /* A spec without a pid namespace stays without one here: the policy refuses it. */
        agent_spec_free(TAKE_PTR(s));
        f.ns[0].type = "network";
        assert_int_equal(agent_spec_from_oci(&f.spec, &s, &err), 0);
        assert_int_equal(agent_spec_pod_namespaces(s, false, pod, "pod", &err), 0);
        assert_int_equal(s->namespaces & AGENT_NS_PID, 0);
}

static void test_names(void **state)
{
        int v;
        uint32_t a;
        assert_int_equal(agent_cap_from_name("CAP_SYS_ADMIN", &v), 0);
        assert_int_equal(v, 21);
        assert_int_equal(agent_cap_from_name("net_admin", &v), 0);
        assert_int_equal(v, 12);
        assert_int_equal(agent_cap_from_name("CAP_BOGUS", &v), -EINVAL);
        assert_int_equal(agent_cap_from_name("", &v), -EINVAL);
        assert_int_equal(agent_rlimit_from_name("RLIMIT_NPROC", &v), 0);
        assert_int_equal(v, RLIMIT_NPROC);
        assert_int_equal(agent_seccomp_action_from_name("SCMP_ACT_ERRNO", 0, &a), 0);
        assert_int_equal(a, SCMP_ACT_ERRNO(EPERM));
        assert_int_equal(agent_seccomp_action_from_name("SCMP_ACT_KILL_PROCESS", 0, &a), 0);
        assert_int_equal(a, SCMP_ACT_KILL_PROCESS);
        assert_int_equal(agent_seccomp_op_from_name("SCMP_CMP_MASKED_EQ", &v), 0);
        assert_int_equal(v, SCMP_CMP_MASKED_EQ);
        assert_int_equal(agent_seccomp_op_from_name("SCMP_CMP_XX", &v), -EINVAL);
        struct agent_mount m = {0};
        char *bad[] = {"a,b"};
        assert_int_equal(agent_mount_parse_options(&m, bad, 1, NULL), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_convert),        cmocka_unit_test(test_refusals),
                cmocka_unit_test(test_sandbox),        cmocka_unit_test(test_names),
                cmocka_unit_test(test_pod_namespaces),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
