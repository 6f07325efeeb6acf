#pragma once
/*
 * The task service's model, shared by its parts:
 *   task.c       the ttrpc edge: one thin handler per method
 *   pod.c        the tasks and processes: lookup + transition under the lock, their events
 *   container.c  Create: the handler's configuration, the pod's VM, the guest container
 *   monitor.c    the threads that turn guest and VM events into exits and OOM events
 *   proc.c       the state machine of each process (proc-internal.h)
 *
 * Locking: one mutex (struct shim.lock) guards the task list and every process's state; it is
 * never held across an agent call or a VM operation (those can take seconds; a State or a Wait
 * on another connection must not wait behind them). s->cond is broadcast whenever a process
 * changes state or drops its last reference.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "containerd/task/v2/shim.pb-c.h"
#include "kata/agent.pb-c.h"
#include "shim/proc-internal.h"
#include "shim/shim.h"

#define AGENT_SERVICE "grpc.AgentService"
#define SEC           1000000000ll

struct task;

struct proc {
        struct proc *next;
        struct task *task;
        char *exec_id; /* NULL: the task's init process */
        struct shim_proc_sm sm;
        bool terminal;
        char *stdin_path, *stdout_path, *stderr_path;
        Grpc__Process *gproc; /* an exec's process, until it starts */
        struct shim_io *io;
        pthread_t monitor;
        bool monitor_started;
        /* Handlers using this proc outside the lock (Wait, Kill, Start, ...): Delete frees it
         * only once they are done. */
        unsigned refs;
};

struct task {
        struct task *next;
        char *id, *bundle;
        enum shim_role role;
        bool in_guest; /* a guest container exists (not for the sandbox role) */
        struct proc init;
        struct proc *execs;
        uint32_t kill_status; /* sandbox role: 128+signal of the Kill that stopped the VM */
        char **disks;         /* serials of the pod disks this container holds (devices.c) */
        size_t n_disks;
};

struct shim {
        char *ns, *address, *id, *bundle;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        pthread_mutex_t create_lock; /* one Create at a time: the sandbox's boots the VM */
        pthread_mutex_t vm_lock;     /* one libhv call at a time */
        struct task *tasks;
        struct shim_sandbox *sb;
        struct shim_events *ev;
        int exit_efd;
        pthread_t watcher;
        bool watcher_started;
        int watcher_stop_efd;
        bool stop_requested; /* the sandbox's Kill: the watcher stops the VM */
        pthread_t oom;
        bool oom_started;
};

/* ---- pod.c ----------------------------------------------------------------------------- */

/* The pid containerd sees for every process of the pod: the VMM's (as Kata reports). */
uint32_t shim__vmm_pid(struct shim *s);
struct task *shim__task_find(struct shim *s, const char *id);
struct proc *shim__exec_find(struct task *t, const char *exec_id);
/* Fires ev on p (lock held) and does what the transition asks: publishes /tasks/start,
 * exec-started or /tasks/exit, wakes the waiters. *ret_effects may be NULL. */
int shim__proc_fire(struct shim *s, struct proc *p, enum shim_proc_event ev, uint32_t status,
                    unsigned *ret_effects, struct cc_error **err);
/* Publishes /tasks/exit (deleted: /tasks/delete) of p with its exit status and time. */
void shim__publish_end(struct shim *s, const struct proc *p, bool deleted);

/*
 * One request's lookup and transition: finds id/exec_id, checks ev against the process's
 * state, runs the handler's guard (its own conditions, after the state's), fires ev, all
 * under the lock; while a Start is in flight (-EAGAIN) it waits for its outcome and looks
 * again. With ref, the caller may use t and p unlocked until shim__proc_put().
 */
struct proc_op {
        const char *id, *exec_id;
        enum shim_proc_event ev;
        uint32_t status;
        bool ref;
        int (*guard)(struct shim *s, struct proc_op *op, struct cc_error **err);
        void *arg;
        /* out */
        struct task *t;
        struct proc *p;
        unsigned fx;
};

int shim__proc_op(struct shim *s, struct proc_op *op, struct cc_error **err);
/* For guards whose own condition passed: fires op's event. */
int shim__guard_pass(struct shim *s, struct proc_op *op, struct cc_error **err);
/* Drops a reference shim__proc_op() took. */
void shim__proc_put(struct shim *s, struct proc *p);
void shim__proc_put_locked(struct shim *s, struct proc *p);
/* Fires the outcome of op's agent call (STARTED, PAUSE_FAILED, ...) and drops its reference. */
void shim__proc_outcome(struct shim *s, struct proc_op *op, enum shim_proc_event ev,
                        uint32_t status);
/* Waits (lock held) until no handler uses p (with execs: nor its task's execs). */
void shim__wait_refs_locked(struct shim *s, const struct proc *p, bool execs);
/* Frees what p holds (not p: an init is part of its task). */
void shim__proc_free(struct proc *p);
void shim__task_free(struct task *t);

/* ---- container.c ----------------------------------------------------------------------- */

/* Create: the task (reserved in CREATING at once), the pod's VM for a sandbox or a single
 * container, the guest container; *ret_pid is the pid containerd records. */
int shim__create(struct shim *s, const Containerd__Task__V2__CreateTaskRequest *req,
                 uint32_t *ret_pid, struct cc_error **err);
/* An Any's type URL names `name` (after its last '/', or the whole URL). */
bool shim__type_url_is(const char *url, const char *name);

/* ---- devices.c ------------------------------------------------------------------------- */

/* The spec's block devices hot-plugged (or shared with another container of the pod) and held
 * by t; *ret: the agent's Devices for CreateContainer (NULL when none). On failure nothing this
 * call attached stays attached. */
int shim__devices_attach(struct shim *s, struct task *t, struct json_object *spec,
                         Grpc__Device ***ret, size_t *ret_n, struct cc_error **err);
/* Drops t's disks: the last container holding one unplugs it (after RemoveContainer); the
 * trusted store only when create_failed (the Create that attached it failed). */
void shim__devices_detach(struct shim *s, struct task *t, bool create_failed);
void shim__devices_free(Grpc__Device **d, size_t n);

/* ---- monitor.c ------------------------------------------------------------------------- */

/* The VM watcher and the OOM event thread of a pod that just booted. */
void shim__watch_start(struct shim *s);
/* Stops the VM (every process exits), then ends the watcher and the OOM thread. */
void shim__pod_stop(struct shim *s);
/* Stops the VM and marks every process of the pod exited. */
void shim__sandbox_stop(struct shim *s);
/* The sandbox's Kill: the watcher thread stops the VM and Kill answers at once, as a signal to a
 * pause process would; the exit follows. Stopping it inside Kill let containerd's exit handler
 * (Delete, Shutdown, then closing the connection) overtake Kill's answer: StopPodSandbox then
 * failed with "ttrpc: closed", as if the shim had died. False without a watcher. */
bool shim__sandbox_stop_async(struct shim *s);
/* The thread that waits for p's exit in the guest (WaitProcess). */
int shim__monitor_start(struct shim *s, struct proc *p, struct cc_error **err);
