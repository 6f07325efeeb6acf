#pragma once
/*
 * The parsed policy (policy.c parses, policy-match.c decides), shared by the two files only.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest-agent/policy/policy.h"

#define POLICY_MAX_BYTES (1u << 20)
#define POLICY_MAX_RULES 1024

struct policy_rule {
        char *name;
        char **requests;   /* NULL-terminated */
        char **containers; /* NULL-terminated, or NULL: any */
        bool allow;
};

struct policy_mount {
        char *destination; /* pattern */
        char *type;        /* pattern, NULL: any */
        char *source;      /* pattern on the source (relative to the containers area for binds) */
        bool readonly;     /* the mount must be read-only */
};

/*
 * What one container of the pod may be. Every field starts at the safe default (see
 * policy.h) and the policy widens or narrows it; `set` bits say which fields the policy gave.
 */
struct policy_container {
        char *name;  /* pattern on io.kubernetes.cri.container-name */
        char *image; /* pattern on the image reference (annotation and guest pull), NULL: any */
        char **args; /* exact argv as patterns (same length), NULL: any */
        char **env;  /* every env entry must match one of these, NULL: any */
        char *cwd;   /* pattern, NULL: any */
        bool has_uid, has_gid;
        uint32_t uid, gid;
        bool privileged;             /* lifts capabilities, paths, sysfs */
        uint64_t caps;               /* allowed capabilities (bit n = capability n) */
        unsigned namespaces;         /* AGENT_NS_* the container must have: its own or the pod's */
        bool has_sandbox_ns;         /* sandbox_namespaces given: checked exactly */
        unsigned sandbox_namespaces; /* AGENT_NS_PID/IPC/UTS it must join from the pod's sandbox
                                      * (the others of `namespaces` are its own) */
        char **masked_paths;         /* must all be masked */
        char **readonly_paths;       /* must all be read-only */
        struct policy_mount *mounts; /* NULL: the standard set (see policy-match.c) */
        size_t n_mounts;
        bool has_mounts;
        char **sysctls;       /* allowed sysctl keys (patterns), NULL: none */
        char **devices;       /* allowed linux.devices paths (patterns), NULL: none */
        bool seccomp;         /* a seccomp profile is required */
        bool readonly_rootfs; /* the rootfs must be read-only */
        bool writable_sysfs;  /* sysfs may be mounted read-write */
        char ***exec;         /* allowed ExecProcess argvs (patterns), NULL: any */
        size_t n_exec;
};

struct agent_policy {
        unsigned version;
        bool default_allow;
        struct policy_rule *rules;
        unsigned n_rules;
        /* Request contents: NULL/false when the policy has no "containers" section. */
        struct policy_container *containers;
        size_t n_containers;
        bool has_containers;
        char **copy_file; /* CopyFile path patterns below the containers area, NULL: any */
        bool set_policy;  /* SetPolicy may replace this policy */
        bool builtin;     /* the TEE default, not a file */
};

/* The OCI default capabilities (runc's and containerd's default set). */
extern const uint64_t agent_policy_oci_default_caps;
extern const char *const agent_policy_default_masked[];
extern const char *const agent_policy_default_readonly[];
