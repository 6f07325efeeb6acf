#pragma once
/*
 * The container runtime: runs OCI containers (struct agent_spec) with namespaces, a pivoted
 * rootfs, mounts, cgroups, capabilities, seccomp and stdio, and keeps their processes.
 *
 * Process model. Every container process is started with two forks, one path for a
 * container's init and an exec (spawn.c): an intermediate child joins the cgroup and the
 * namespaces (setns into the pod sandbox's for a new container, into the container's for an
 * exec; unshare for the rest), then forks the real process (so that it is inside the new or
 * joined pid namespace) and exits. The agent is
 * init or a child subreaper, so the real process is re-parented to it and reaped by the
 * runtime's reaper thread, which records exit statuses (signal n -> 128+n). fork(), not a raw
 * clone(), because the agent is multithreaded: glibc's fork leaves malloc usable in the child.
 *
 * The container's init process stops before execve() until StartContainer (runc's
 * create/start split): it reports "ready" on a status pipe, blocks on a start pipe, and the
 * status pipe's close-on-exec tells the agent that execve succeeded.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cc/error.h"

#include "guest-agent/runtime/cgroup.h"
#include "guest-agent/runtime/spec.h"

struct agent_runtime;

struct agent_runtime_config {
        /* Guest directory holding every container's files (rootfs, shared files). A
         * container's rootfs and bind-mount sources must lie in <containers_dir>/<id>/ or
         * <containers_dir>/<id>-* (Kata's per-container shared files). */
        const char *containers_dir;
        /* Guest directory of the pod's volumes (storage.c): a bind-mount source may also be
         * <volumes_dir>/<kind>/<name>, a volume shared by the pod's containers. NULL: none. */
        const char *volumes_dir;
        /* Cgroup subtree (relative to the agent's own cgroup) that holds container cgroups. */
        const char *cgroup_root;
};

enum agent_stream {
        AGENT_STDOUT = 1,
        AGENT_STDERR = 2,
};

int agent_runtime_new(const struct agent_runtime_config *cfg, struct agent_runtime **ret);
/* A file system was mounted over the containers area (the boot's trusted storage, made in the
 * background before any container): creates the area again on it and opens that. */
int agent_runtime_reopen_area(struct agent_runtime *rt);
/* Kills and removes every container, stops the reaper, frees. NULL is fine. */
void agent_runtime_free(struct agent_runtime *rt);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct agent_runtime *, agent_runtime_free)

/* Creates a container whose init process waits for agent_container_start(). Takes `spec`
 * (freed on failure too). `exec_id` names the init process (empty: the container id). */
int agent_container_create(struct agent_runtime *rt, const char *id, const char *exec_id,
                           struct agent_spec *spec, struct cc_error **err);
int agent_container_start(struct agent_runtime *rt, const char *id, struct cc_error **err);
/* Starts another process in the container's namespaces and cgroup. Takes `proc`. */
int agent_container_exec(struct agent_runtime *rt, const char *id, const char *exec_id,
                         struct agent_process *proc, struct cc_error **err);
/* Removes a container: SIGKILL to what runs, cgroup removed. `timeout_s` 0 waits forever for
 * a SIGTERM'd init; otherwise SIGTERM, then SIGKILL after the timeout. */
int agent_container_remove(struct agent_runtime *rt, const char *id, unsigned timeout_s,
                           struct cc_error **err);
int agent_container_pause(struct agent_runtime *rt, const char *id, bool pause,
                          struct cc_error **err);
int agent_container_update(struct agent_runtime *rt, const char *id,
                           const struct agent_resources *res, struct cc_error **err);
int agent_container_stats(struct agent_runtime *rt, const char *id, struct agent_cgroup_stats *st,
                          struct cc_error **err);
/*
 * The pod's namespaces (CreateSandbox, as Kata's agent sets up its shared ones): a pause
 * process of the agent's holds a new pid, ipc and uts namespace (the latter with `hostname`),
 * which the pod's containers join (agent_spec_pod_namespaces). Once per pod: a second call
 * keeps the first. DestroySandbox (agent_runtime_remove_all) ends it.
 */
int agent_runtime_pod_create(struct agent_runtime *rt, const char *hostname, struct cc_error **err);
/* The AGENT_NS_* of the pod's namespaces (0 before CreateSandbox) and its hostname
 * (malloc'ed, or NULL). */
int agent_runtime_pod(struct agent_runtime *rt, unsigned *ret_ns, char **ret_hostname);
/* Number of containers (tests and idle checks). */
unsigned agent_runtime_n_containers(struct agent_runtime *rt);

/*
 * Process operations. `exec_id` empty (or the init's exec id) names the init process. For
 * signals, an empty exec_id signals the init process and then every process of the container
 * (Kata's semantics), otherwise only that process.
 */
int agent_process_signal(struct agent_runtime *rt, const char *id, const char *exec_id, int sig,
                         struct cc_error **err);
/* Blocks until the process exits; *status is the exit code, 128+n for signal n. */
int agent_process_wait(struct agent_runtime *rt, const char *id, const char *exec_id, int *status,
                       struct cc_error **err);
/* Blocking read of up to len bytes; returns bytes read, or -ENODATA at end of stream. */
ssize_t agent_process_read(struct agent_runtime *rt, const char *id, const char *exec_id,
                           enum agent_stream which, void *buf, size_t len, struct cc_error **err);
ssize_t agent_process_write(struct agent_runtime *rt, const char *id, const char *exec_id,
                            const void *buf, size_t len, struct cc_error **err);
int agent_process_close_stdin(struct agent_runtime *rt, const char *id, const char *exec_id,
                              struct cc_error **err);
int agent_process_resize(struct agent_runtime *rt, const char *id, const char *exec_id,
                         unsigned rows, unsigned cols, struct cc_error **err);

/* Blocks until a container is OOM-killed, the timeout passes (-ETIMEDOUT; <= 0 or huge: no
 * timeout) or the runtime shuts down (-ESHUTDOWN); *ret_id is malloc'ed. */
int agent_runtime_wait_oom(struct agent_runtime *rt, int64_t timeout_ns, char **ret_id,
                           struct cc_error **err);
/* Removes every container (DestroySandbox); the runtime stays usable. */
void agent_runtime_remove_all(struct agent_runtime *rt);
/* Wakes agent_runtime_wait_oom callers with -ESHUTDOWN and kills every container. */
void agent_runtime_shutdown(struct agent_runtime *rt);

/* Internal: the in-child setup steps, in mount.c and process.c. They never allocate from a
 * shared lock-holding state and report failures as text for the status pipe. */
struct agent_child_error {
        char msg[512];
};
/* Fills e with "message: strerror(errnum)" (no allocation: child side); returns -errnum, or
 * -EINVAL when errnum is 0. */
int agent__child_fail(struct agent_child_error *e, int errnum, const char *fmt, ...) _printf_(3, 4);
int agent__rootfs_setup(const struct agent_spec *spec, int rootfd, const int *bind_fds,
                        struct agent_child_error *e);
/* openat2(2) (no glibc wrapper in Debian 12); returns the fd or -errno. */
int agent__openat2(int dirfd, const char *path, int flags, unsigned long long resolve);
/* Applies user, groups, rlimits, capabilities, no_new_privs and cwd to the calling process,
 * and the seccomp filter `seccomp_ctx` (scmp_filter_ctx, may be NULL). Child side. */
int agent__process_setup(const struct agent_process *p, void *seccomp_ctx,
                         struct agent_child_error *e);
/* Builds a libseccomp filter from the spec (parent side, so that errors reach the caller). */
int agent__seccomp_build(const struct agent_seccomp *s, void **ret_ctx, struct cc_error **err);
void agent__seccomp_release(void *ctx);
