#pragma once
/*
 * The life of one process of a task (its init or an exec) as a state machine: a transition
 * table over the states below, driven by the events the task service, the monitors and the VM
 * watcher fire. The caller holds the shim's lock around every shim_proc_fire(), so each check
 * and the transition it allows happen under one lock; the agent calls between a "begin" event
 * (START) and its outcome (STARTED, START_FAILED) run unlocked, with the process in the
 * in-between state that makes every other event wait (-EAGAIN) or be refused.
 *
 *   CREATING  Create is making it (VM boot, rootfs, CreateContainer): not visible yet
 *   CREATED   exists; an init's container is in the guest, an exec only on the host
 *   STARTING  Start is asking the agent to start it
 *   RUNNING, PAUSED
 *   STOPPED   exited (exit status and time recorded), or never started and killed
 *   DELETING  Delete is removing it: the end
 *
 * An illegal event is an error naming the reason and both states ("process already started
 * (running -> starting)"), with an errno that the one errno -> status mapping (cc_error.h)
 * turns into the right ttrpc code: ENOENT NotFound, EBUSY FailedPrecondition.
 */

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "cc/error.h"

enum shim_proc_state {
        SHIM_PROC_CREATING,
        SHIM_PROC_CREATED,
        SHIM_PROC_STARTING,
        SHIM_PROC_RUNNING,
        SHIM_PROC_PAUSED,
        SHIM_PROC_STOPPED,
        SHIM_PROC_DELETING,
        _SHIM_PROC_STATE_MAX,
};

enum shim_proc_event {
        SHIM_PEV_LOOKUP,        /* none: the process is visible (not CREATING) */
        SHIM_PEV_CREATED,       /* Create finished */
        SHIM_PEV_START,         /* Start begins */
        SHIM_PEV_STARTED,       /* the agent started it */
        SHIM_PEV_START_FAILED,  /* the agent did not: an init stays created, an exec exits */
        SHIM_PEV_PAUSE,         /* Pause begins (the agent call follows) */
        SHIM_PEV_PAUSE_FAILED,  /* the agent did not pause it */
        SHIM_PEV_RESUME,        /* Resume begins */
        SHIM_PEV_RESUME_FAILED, /* the agent did not resume it */
        SHIM_PEV_KILL,   /* Kill: a started process gets the signal, an unstarted init exits */
        SHIM_PEV_EXEC,   /* an exec is added to or started in this (init) process's task */
        SHIM_PEV_EXIT,   /* it exited (monitor, VM gone, or an exec that never ran) */
        SHIM_PEV_DELETE, /* Delete begins */
        _SHIM_PEV_MAX,
};

/* What the caller does after a fire, still under the lock. */
enum {
        SHIM_PFX_PUBLISH_START = 1 << 0, /* publish /tasks/start (or exec-started) */
        SHIM_PFX_PUBLISH_EXIT = 1 << 1,  /* publish /tasks/exit with the recorded status */
        SHIM_PFX_SIGNAL = 1 << 2,        /* send the Kill's signal to the process (agent) */
        SHIM_PFX_CHANGED = 1 << 3,       /* the state or the exit changed: wake the waiters */
};

struct shim_proc_sm {
        enum shim_proc_state state;
        bool exec; /* an exec (some events differ: exec_steps in proc.c) */
        uint32_t exit_status;
        struct timespec exited_at; /* zero until it exited */
        /* An exit that came while STARTING: the start is published first, then this exit
         * (containerd expects no exit before the start). */
        bool exit_held;
        uint32_t held_status;
        struct timespec held_at;
};

/* A new process in CREATING. */
void shim_proc_sm_init(struct shim_proc_sm *m, bool exec);
/*
 * Applies ev (status: the exit status of EXIT and KILL, of START_FAILED for an exec). On
 * success *ret_effects (may be NULL) says what the caller must do. -EAGAIN (no message): the
 * process is in the middle of a Start; wait for a change (SHIM_PFX_CHANGED of another fire)
 * and fire again. Other refusals: -ENOENT or -EBUSY with the reason and both states in *err.
 */
int shim_proc_fire(struct shim_proc_sm *m, enum shim_proc_event ev, uint32_t status,
                   unsigned *ret_effects, struct cc_error **err);
/* Whether ev would be accepted now, without applying it (same errors). */
int shim_proc_check(const struct shim_proc_sm *m, enum shim_proc_event ev, struct cc_error **err);
/* True once a Wait may answer: STOPPED or DELETING. */
bool shim_proc_done(const struct shim_proc_sm *m);
const char *shim_proc_state_name(enum shim_proc_state s);
