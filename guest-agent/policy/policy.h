#pragma once
/*
 * The agent policy: a JSON file baked into the (measured) guest image that decides which
 * requests the untrusted host may make. With no policy file every request is allowed.
 *
 *   {
 *     "default": "allow",                       // or "deny"; "allow" when absent
 *     "rules": [
 *       { "name": "no-exec", "requests": ["ExecProcess"], "action": "deny" },
 *       { "name": "hide-output", "requests": ["ReadStdout", "ReadStderr"],
 *         "containers": ["secret-*"], "action": "deny" },
 *       { "name": "no-copy", "requests": ["CopyFile"], "action": "deny" }
 *     ]
 *   }
 *
 * Rules are tried in order and the first whose "requests" and "containers" both match decides.
 * "requests" holds RPC names ("*" matches all); "containers" holds container-id patterns
 * (shell-style '*' and '?'), and a rule without it matches every container, including requests
 * that name none. A denial answers PermissionDenied and names the rule, so an operator can tell
 * a policy refusal from a failure.
 */

#include <stdbool.h>
#include <stddef.h>

#include "cc/error.h"

struct agent_policy;

/* Parses policy JSON text; unknown keys, bad actions and wrong types are errors (-EINVAL), so a
 * typo cannot silently widen what is allowed. */
int agent_policy_parse(const char *text, struct agent_policy **ret, struct cc_error **err);
/* Loads a file; -ENOENT when it does not exist (the caller then allows everything). */
int agent_policy_load(const char *path, struct agent_policy **ret, struct cc_error **err);
void agent_policy_free(struct agent_policy *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct agent_policy *, agent_policy_free)

/*
 * Decides one request. `policy` NULL allows everything. `container_id` may be NULL for requests
 * that name no container. Returns 0 when allowed, else a PermissionDenied error (-EPERM).
 */
int agent_policy_check(const struct agent_policy *policy, const char *request,
                       const char *container_id, struct cc_error **err);

/* Number of rules (for logs and tests). */
unsigned agent_policy_n_rules(const struct agent_policy *policy);

/* ---- version 2: the whole request (policy-match.c) -------------------------------------- */

struct agent_spec;
struct agent_process;

/* What the policy looks at in a CreateContainer, free of protobuf types (tests build them). */
struct agent_policy_create {
        const char *container_id;
        const char *name;         /* io.kubernetes.cri.container-name, NULL when absent */
        const char *image;        /* io.kubernetes.cri.image-name, NULL when absent */
        const char *pulled_image; /* the reference the guest pulled for it, NULL: none */
        const struct agent_spec *spec;
        const char *const *sysctls; /* linux.sysctl keys */
        size_t n_sysctls;
        const char *const *devices; /* linux.devices paths */
        size_t n_devices;
};

/*
 * CreateContainer against the "containers" section: the first entry whose "name" pattern
 * matches the container's name decides, starting from the safe defaults (README "Policy").
 * No "containers" section, a NULL policy or the sandbox (pause) container: allowed.
 */
int agent_policy_check_create(const struct agent_policy *p, const struct agent_policy_create *c,
                              struct cc_error **err);
/* ExecProcess's process (argv against "exec", env, user, capabilities) in container `name`. */
int agent_policy_check_exec(const struct agent_policy *p, const char *container_id,
                            const char *name, const struct agent_process *proc,
                            struct cc_error **err);
/* CopyFile's path, relative to the containers area, against "copy_file". */
int agent_policy_check_copy(const struct agent_policy *p, const char *rel, struct cc_error **err);
/* Whether a TEE guest may take a host-provided rootfs: only when the pod owner's policy lists
 * rootfs paths in copy_file (development pods; never the TEE default). */
bool agent_policy_allows_host_rootfs(const struct agent_policy *p);
/* Whether SetPolicy may replace `p` (a NULL policy: yes; otherwise its "set_policy"). */
bool agent_policy_allows_set_policy(const struct agent_policy *p);
/* The built-in policy of a TEE guest that has no policy file (README "Policy"). */
int agent_policy_tee_default(struct agent_policy **ret, struct cc_error **err);
bool agent_policy_is_builtin(const struct agent_policy *p);
