#pragma once
/*
 * Inside the runtime: the container table (container.c), the one spawn path for a container's
 * init and for an exec (spawn.c), the reaper and OOM threads (reaper.c) and the processes'
 * stdio (stdio.c). Everything here is guarded by agent_runtime.lock unless it says otherwise.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cc/error.h"

#include "guest-agent/runtime/runtime.h"

#define AGENT_MAX_CONTAINERS 1024
#define AGENT_MAX_EXECS      1024
#define AGENT_UNCLAIMED_MAX  128

struct proc {
        unsigned refs;
        char *exec_id;
        pid_t pid; /* 0 until spawned */
        bool exited;
        int status;
        int stdin_fd, stdout_fd, stderr_fd; /* -1 when absent; a tty uses stdout_fd */
        bool terminal;
        pthread_mutex_t stdin_lock;
};

/*
 * A container's life, one state at a time (container_set_state() checks each transition):
 *
 *   CREATING -> CREATED -> RUNNING <-> PAUSED
 *      |           |          |          |
 *      |           +----------+----------+--> STOPPED (init exited)
 *      |           +----------+----------+-------+--> REMOVING (RemoveContainer)
 *      +--> RUNNING (the sandbox's pause process runs from creation)
 *
 * A CREATING or REMOVING container is invisible to container operations ("not found"); a
 * failed creation leaves the table without a transition. An exec being spawned counts in
 * `spawning`; REMOVING waits until it drops to 0, so that cg, spec and seccomp stay valid
 * until the exec's child has forked.
 */
enum container_state {
        CONTAINER_CREATING,
        CONTAINER_CREATED,
        CONTAINER_RUNNING,
        CONTAINER_PAUSED,
        CONTAINER_STOPPED,
        CONTAINER_REMOVING,
        _CONTAINER_STATE_MAX,
};

struct container {
        char *id;
        struct agent_spec *spec;
        struct agent_cgroup *cg;
        enum container_state state;
        struct proc *init;
        struct proc **execs;
        size_t n_execs;
        int start_fd, status_fd; /* init's start and status pipes until started */
        void *seccomp;           /* scmp_filter_ctx, applied to execs too */
        uint64_t oom_seen;
        int oom_wd;
        unsigned spawning; /* execs between admission and fork (see above) */
};

struct unclaimed {
        pid_t pid;
        int status;
};

struct oom_event {
        char *id;
        struct oom_event *next;
};

/* The pod's namespaces (pod.c): pid, ipc and uts, held by the agent's pause process from
 * CreateSandbox to DestroySandbox. */
struct pod {
        struct proc *pause; /* NULL: none (before CreateSandbox, after DestroySandbox) */
        char *hostname;
        unsigned spawning; /* containers joining its namespaces right now */
};

struct agent_runtime {
        char *containers_dir;
        char *volumes_dir; /* or NULL */
        char *cgroup_root;
        int containers_dirfd;
        pthread_mutex_t lock;
        pthread_cond_t cond; /* process exits, OOM events, new children, shutdown */
        struct container **containers;
        size_t n_containers;
        struct unclaimed unclaimed[AGENT_UNCLAIMED_MAX];
        size_t n_unclaimed, unclaimed_next;
        int sigchld_fd; /* signalfd for SIGCHLD */
        int stop_fd;    /* eventfd: stops the reaper and OOM threads */
        bool shutdown;
        pthread_t reaper;
        bool reaper_started;
        int inotify_fd;
        pthread_t oom_thread;
        bool oom_started;
        struct oom_event *oom_head, **oom_tail;
        struct pod pod;
};

/* container.c */
struct container *agent__find_container(struct agent_runtime *rt, const char *id);
const char *agent__container_state_name(enum container_state s);
/* Moves c to `to`; -EINVAL with *err naming both states when the table forbids it. */
int agent__container_set_state(struct container *c, enum container_state to, struct cc_error **err);
struct proc *agent__proc_new(const char *exec_id);
void agent__proc_unref_locked(struct proc *p);
void agent__proc_unref(struct agent_runtime *rt, struct proc *p);
/* Looks up a process and takes a reference (so its fds stay open while the lock is dropped
 * for a blocking read or write). */
int agent__get_proc(struct agent_runtime *rt, const char *id, const char *exec_id,
                    struct proc **ret, struct cc_error **err);

/* reaper.c */
/* Records a new process's pid; if the reaper already saw it exit, takes that status. */
void agent__register_pid_locked(struct agent_runtime *rt, struct proc *p, pid_t pid);
/* Compares the cgroup's OOM-kill counter with what we saw last; queues an event on growth. */
void agent__check_oom_locked(struct agent_runtime *rt, struct container *c);

/* pod.c */
/* Takes the pod's pause for a spawn that joins its namespaces `join` (AGENT_NS_*): its pid in
 * *ret_pid; destroying the pod waits until agent__pod_release(). */
int agent__pod_hold(struct agent_runtime *rt, unsigned join, pid_t *ret_pid, struct cc_error **err);
void agent__pod_release(struct agent_runtime *rt);
/* Ends the pod's pause (DestroySandbox, shutdown). */
void agent__pod_destroy(struct agent_runtime *rt);
/* The reaper: is pid the pod's pause? Then it is recorded as exited. */
bool agent__pod_reaped_locked(struct agent_runtime *rt, pid_t pid, int status);

/* stdio.c: the pipes or the terminal of one process being spawned. */
struct stdio_fds {
        /* child side; `tty` is the socket over which the child sends its pty master */
        int in, out, err, tty;
        /* agent side */
        int p_in, p_out, p_err;
        unsigned short rows, cols;
};
#define STDIO_FDS_INIT                           \
        {                                        \
                -1, -1, -1, -1, -1, -1, -1, 0, 0 \
        }
void agent__stdio_close(struct stdio_fds *s);
int agent__stdio_prepare(const struct agent_process *p, struct stdio_fds *s, struct cc_error **err);
/* Child side, inside the container's mount namespace: stdio becomes fds 0/1/2. */
int agent__stdio_child(const struct stdio_fds *s);
/* Parent side, once the child runs: fetches the pty master when there is one. */
int agent__stdio_finish(struct stdio_fds *s, int status_rd, const char *what,
                        struct cc_error **err);
/* Hands the agent's ends to p (closing the rest). */
void agent__proc_take_stdio(struct proc *p, struct stdio_fds *s, bool terminal);

/* spawn.c */
struct spawn_request {
        const char *what; /* "create" or "exec", for messages */
        const struct agent_process *proc;
        const struct agent_cgroup *cg;
        void *seccomp;
        /* A container's init: the spec (hostname, rootfs and mounts) with the rootfs and bind
         * sources opened by the agent; the process waits for start_fd before execve. NULL for
         * an exec. */
        const struct agent_spec *spec;
        bool pause; /* with spec: a pause process (the pod's, a sandbox container's): no rootfs, no
                       stdio */
        int rootfd;
        const int *bind_fds;
        /* Namespaces to join (AGENT_NS_*) from the process ns_pid (the pod's pause for a new
         * container, its init for an exec), mount last; then the namespaces to create
         * (CLONE_NEW* of `unshare`). */
        pid_t ns_pid;
        unsigned join;
        int unshare;
};
/* Reads one status record: 0 for "ready", 1 for EOF (execve happened), or -errno with *err
 * holding the child's message. */
int agent__read_status(int fd, const char *what, struct cc_error **err);
/* Spawns req's process as p (already in the container table, so that the reaper finds it
 * once its pid is registered): the two forks of runtime.h, stdio, and for an init the
 * "ready" report, whose start and status pipes are returned in *start_fd and *status_fd.
 * On failure the process is killed and p's pid stays registered (it is reaped as exited). */
int agent__spawn(struct agent_runtime *rt, const struct spawn_request *req, struct proc *p,
                 int *start_fd, int *status_fd, struct cc_error **err);
/* CLONE_NEWNS plus the CLONE_NEW* of the AGENT_NS_* in `namespaces` (the network excepted). */
int agent__unshare_flags(unsigned namespaces);
