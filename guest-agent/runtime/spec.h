#pragma once
/*
 * The container runtime's view of an OCI spec: plain C values, already validated, built from
 * the protobuf grpc.Spec that CreateContainer carries (spec-oci.c) or by tests. Keeping this
 * separate from the generated protobuf types lets the runtime and its tests stand alone and
 * makes every conversion (names to numbers, strings to flags) happen once, in the parent,
 * before any process is forked.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cc/error.h"

/* Limits on host-supplied list sizes (the host is untrusted; see validate.h). */
#define AGENT_MAX_ARGS          4096
#define AGENT_MAX_MOUNTS        256
#define AGENT_MAX_RLIMITS       32
#define AGENT_MAX_GIDS          64
#define AGENT_MAX_SECCOMP_RULES 1024

enum agent_cap_set {
        AGENT_CAP_BOUNDING,
        AGENT_CAP_EFFECTIVE,
        AGENT_CAP_INHERITABLE,
        AGENT_CAP_PERMITTED,
        AGENT_CAP_AMBIENT,
        _AGENT_CAP_SET_MAX,
};

struct agent_mount {
        char *destination; /* absolute, inside the container */
        char *source;
        char *type; /* "bind", "proc", "tmpfs", ... */
        unsigned long flags;
        unsigned long propagation; /* MS_PRIVATE/MS_SLAVE/MS_SHARED (| MS_REC) or 0 */
        char *data;                /* fs-specific options joined with ',' */
        bool bind;
        bool readonly_bind; /* bind with "ro": needs a remount */
};

/* A block device given to the container (CreateContainer's Devices, storage/devices.c): the
 * guest's own node bind-mounted at `path`, found by the disk's serial, never by a host number. */
struct agent_device {
        char *path;   /* absolute, inside the container (the spec's linux.devices path) */
        char *source; /* the guest's node, /dev/<name> */
};

struct agent_rlimit {
        int resource; /* RLIMIT_* */
        uint64_t soft, hard;
};

struct agent_seccomp_arg {
        unsigned index;
        uint64_t value, value_two;
        int op; /* enum scmp_compare */
};

struct agent_seccomp_rule {
        char **names;    /* syscall names, NULL-terminated */
        uint32_t action; /* SCMP_ACT_* */
        struct agent_seccomp_arg args[6];
        unsigned n_args;
};

struct agent_seccomp {
        uint32_t default_action;
        char **architectures; /* "SCMP_ARCH_X86_64", ... (NULL-terminated, may be NULL) */
        bool no_new_privs_flag;
        struct agent_seccomp_rule *rules;
        size_t n_rules;
};

struct agent_process {
        bool terminal;
        unsigned short rows, cols;
        uid_t uid;
        gid_t gid;
        gid_t *additional_gids;
        size_t n_additional_gids;
        char **args; /* NULL-terminated, at least one */
        char **env;  /* NULL-terminated */
        char *cwd;   /* absolute */
        bool has_caps;
        uint64_t caps[_AGENT_CAP_SET_MAX]; /* bit n = capability n */
        struct agent_rlimit *rlimits;
        size_t n_rlimits;
        bool no_new_privileges;
        bool has_oom_score_adj;
        int oom_score_adj;
};

struct agent_resources {
        int64_t memory_limit; /* bytes, -1 unlimited, 0 unset */
        int64_t memory_swap;  /* memory+swap bytes (OCI), -1 unlimited, 0 unset */
        int64_t memory_reservation;
        uint64_t cpu_shares; /* 0 unset */
        int64_t cpu_quota;   /* us, -1 / 0 unset */
        uint64_t cpu_period; /* us, 0 unset */
        int64_t pids_limit;  /* -1 / 0 unlimited */
        char *cpuset_cpus, *cpuset_mems;
};

enum {
        AGENT_NS_MOUNT = 1 << 0,
        AGENT_NS_PID = 1 << 1,
        AGENT_NS_UTS = 1 << 2,
        AGENT_NS_IPC = 1 << 3,
        AGENT_NS_NET = 1 << 4, /* refused: containers share the VM's network */
        AGENT_NS_CGROUP = 1 << 5,
};

struct agent_spec {
        char *root_path; /* absolute guest path of the rootfs */
        bool root_readonly;
        char *hostname;
        struct agent_mount *mounts;
        size_t n_mounts;
        struct agent_process process;
        unsigned namespaces; /* AGENT_NS_*: not the guest's (the container's own or the pod's) */
        unsigned ns_paths;   /* AGENT_NS_* the spec gave with a path: containerd's "join the
                              * sandbox's" (the path itself names a host namespace, unused) */
        unsigned sandbox_namespaces; /* AGENT_NS_* joined from the pod's sandbox container
                                      * (agent_spec_pod_namespaces), the others created */
        char **masked_paths;         /* NULL-terminated */
        char **readonly_paths;       /* NULL-terminated */
        struct agent_resources resources;
        struct agent_seccomp *seccomp; /* NULL: none */
        struct agent_device *devices;  /* set by the agent, never from linux.devices' numbers */
        size_t n_devices;
        bool sandbox; /* the pod's sandbox (pause) container: the agent runs its own pause */
};

void agent_process_done(struct agent_process *p);
void agent_spec_free(struct agent_spec *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct agent_spec *, agent_spec_free)
void agent_seccomp_free(struct agent_seccomp *s);

/* "CAP_SYS_ADMIN" (or "sys_admin") -> 21; -EINVAL for unknown names. */
int agent_cap_from_name(const char *name, int *ret);
/* "RLIMIT_NOFILE" -> RLIMIT_NOFILE; -EINVAL for unknown names. */
int agent_rlimit_from_name(const char *name, int *ret);
/* "SCMP_ACT_ERRNO" with errno_ret -> SCMP_ACT_ERRNO(errno_ret) etc.; -EINVAL otherwise. */
int agent_seccomp_action_from_name(const char *name, unsigned errno_ret, uint32_t *ret);
/* "SCMP_CMP_EQ" -> SCMP_CMP_EQ ... */
int agent_seccomp_op_from_name(const char *name, int *ret);

/*
 * Parses OCI mount options (["ro","nosuid","bind","mode=755",...]) into m->flags,
 * m->propagation, m->bind/readonly_bind and m->data (the unknown ones, joined by ',').
 */
int agent_mount_parse_options(struct agent_mount *m, char *const *options, size_t n,
                              struct cc_error **err);

/*
 * Which of a container's pid, ipc and uts namespaces are the pod's (s->sandbox_namespaces:
 * those CreateSandbox made, agent_runtime_pod_create), as Kata's agent decides it: IPC and UTS
 * whenever the pod has them (a spec naming a hostname other than the pod's keeps its own UTS:
 * a hostname cannot be set in a shared one), the pid namespace when the pod shares its
 * process namespace (`sandbox_pidns`, Kata's CreateContainer flag, or a pid namespace path in
 * the spec). A namespace the spec gives with a path is always the pod's, and the sandbox
 * (pause) container joins all it lists. `sandbox_ns`: the AGENT_NS_* the pod has (0: before
 * CreateSandbox). A namespace to join that the pod lacks is an error (never the guest's).
 */
int agent_spec_pod_namespaces(struct agent_spec *s, bool sandbox_pidns, unsigned sandbox_ns,
                              const char *sandbox_hostname, struct cc_error **err);

/* Default environment when the spec gives none: PATH only. */
extern const char *const agent_default_env[];
