/*
 * The containerd.task.v2.Task service (and the CC fork's containerd.task.v2.Image) of one pod:
 * the ttrpc edge. Each handler decodes its request, finds its process and fires the event of
 * its method on the process's state machine (shim__proc_op: lookup, check and transition under
 * one lock), makes its agent call unlocked, and reports the outcome as the machine's next event.
 * Create is container.c's, the threads that report exits are monitor.c's, the lookup and the
 * transitions pod.c's (task-internal.h).
 *
 * Events are published by the step that makes them true, under the lock, into the publisher's
 * FIFO queue: create (Create), start (the STARTED transition), exit (the EXIT transition of a
 * started process, after its start), delete (Delete, only once exited or never started),
 * exec-added before exec-started before the exec's exit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/json.h"
#include "cc/log.h"

#include "containerd/events/task.pb-c.h"
#include "containerd/task/v2/image.pb-c.h"
#include "kata/image.pb-c.h"
#include "shim/task-internal.h"

static Google__Protobuf__Timestamp *ts_new(struct cc_ttrpc_call *call, const struct timespec *t)
{
        Google__Protobuf__Timestamp *ts = cc_ttrpc_call_alloc(call, sizeof(*ts));
        if (!ts)
                return NULL;
        google__protobuf__timestamp__init(ts);
        ts->seconds = t->tv_sec;
        ts->nanos = (int32_t)t->tv_nsec;
        return ts;
}

/* ---- Task handlers ------------------------------------------------------------------------- */

#define HANDLER(name)                                                                             \
        static int name(struct cc_ttrpc_call *call, void *userdata, const ProtobufCMessage *req_, \
                        ProtobufCMessage *resp_, struct cc_error **err)

HANDLER(task_create)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__CreateTaskRequest *req = (const void *)req_;
        Containerd__Task__V2__CreateTaskResponse *resp = (void *)resp_;
        pthread_mutex_lock(&s->create_lock);
        int64_t t0 = shim_mono_ns();
        (void)shim_external_ns_take();
        int r = shim__create(s, req, &resp->pid, err);
        int64_t total = shim_mono_ns() - t0;
        int64_t own = total - shim_external_ns_take();
        pthread_mutex_unlock(&s->create_lock);
        if (r < 0) {
                cc_log_error("create %s: %s", req->id, cc_error_message(err ? *err : NULL));
                return r;
        }
        /* create_own_ms excludes the VM boot and the agent's calls (issue 5: at most 10 ms). */
        char f[256] = "";
        shim_logfmt_add(f, sizeof(f), "task", "%s", req->id);
        shim_logfmt_add(f, sizeof(f), "create_ms", "%.1f", (double)total / 1e6);
        shim_logfmt_add(f, sizeof(f), "create_own_ms", "%.2f", (double)own / 1e6);
        cc_log_full(CC_LOG_INFO, 0, f, "create %s done", req->id);
        return 0;
}

/* An exec starts only in a task whose init runs (its own state was checked first). */
static int exec_start_guard(struct shim *s, struct proc_op *op, struct cc_error **err)
{
        if (op->p->exec_id && shim_proc_check(&op->t->init.sm, SHIM_PEV_EXEC, NULL) < 0)
                return cc_error_set(err, EBUSY, "task %s is not running", op->id);
        return shim__guard_pass(s, op, err);
}

/* The agent's part of a Start: none for the pod sandbox (its process is the agent's own). */
static int start_in_guest(struct shim *s, const struct task *t, const struct proc *p,
                          struct cc_error **err)
{
        if (t->role == SHIM_ROLE_SANDBOX && !p->exec_id)
                return 0;
        if (!p->exec_id) {
                Grpc__StartContainerRequest sreq = GRPC__START_CONTAINER_REQUEST__INIT;
                sreq.container_id = t->id;
                return shim_agent_call(s->sb, AGENT_SERVICE, "StartContainer", &sreq.base, NULL,
                                       NULL, 30 * SEC, err);
        }
        Grpc__ExecProcessRequest ereq = GRPC__EXEC_PROCESS_REQUEST__INIT;
        ereq.container_id = t->id;
        ereq.exec_id = p->exec_id;
        ereq.process = p->gproc;
        return shim_agent_call(s->sb, AGENT_SERVICE, "ExecProcess", &ereq.base, NULL, NULL,
                               30 * SEC, err);
}

/*
 * STARTING while the agent starts the process; then STARTED (the start event, and an exit
 * that came meanwhile after it) or START_FAILED: an init stays created, an exec the agent
 * refused (its policy, a missing binary) exits 255 without an event, so that the Wait
 * containerd made before Start ends, as the runc shim's does.
 */
HANDLER(task_start)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__StartRequest *req = (const void *)req_;
        Containerd__Task__V2__StartResponse *resp = (void *)resp_;
        struct proc_op op = {.id = req->id,
                             .exec_id = req->exec_id,
                             .ev = SHIM_PEV_START,
                             .ref = true,
                             .guard = exec_start_guard};
        int r = shim__proc_op(s, &op, err);
        if (r < 0)
                return r;
        struct proc *p = op.p;
        r = start_in_guest(s, op.t, p, err);
        if (r >= 0 && p->io)
                r = shim_io_start(p->io, err);
        if (r >= 0 && p->io)
                r = shim__monitor_start(s, p, err);
        shim__proc_outcome(s, &op, r < 0 ? SHIM_PEV_START_FAILED : SHIM_PEV_STARTED, 255);
        if (r < 0)
                return r;
        resp->pid = shim__vmm_pid(s);
        return 0;
}

HANDLER(task_state)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__StateRequest *req = (const void *)req_;
        Containerd__Task__V2__StateResponse *resp = (void *)resp_;
        struct proc_op op = {.id = req->id, .exec_id = req->exec_id, .ref = true};
        int r = shim__proc_op(s, &op, err);
        if (r < 0)
                return r;
        static const Containerd__V1__Types__Status status[_SHIM_PROC_STATE_MAX] = {
                [SHIM_PROC_CREATED] = CONTAINERD__V1__TYPES__STATUS__CREATED,
                [SHIM_PROC_STARTING] = CONTAINERD__V1__TYPES__STATUS__CREATED,
                [SHIM_PROC_RUNNING] = CONTAINERD__V1__TYPES__STATUS__RUNNING,
                [SHIM_PROC_PAUSED] = CONTAINERD__V1__TYPES__STATUS__PAUSED,
                [SHIM_PROC_STOPPED] = CONTAINERD__V1__TYPES__STATUS__STOPPED,
                [SHIM_PROC_DELETING] = CONTAINERD__V1__TYPES__STATUS__STOPPED,
        };
        const struct proc *p = op.p;
        pthread_mutex_lock(&s->lock);
        resp->id = cc_ttrpc_call_strdup(call, op.t->id);
        resp->bundle = cc_ttrpc_call_strdup(call, op.t->bundle);
        resp->pid = shim__vmm_pid(s);
        resp->status = status[p->sm.state];
        resp->stdin = cc_ttrpc_call_strdup(call, p->stdin_path);
        resp->stdout = cc_ttrpc_call_strdup(call, p->stdout_path);
        resp->stderr = cc_ttrpc_call_strdup(call, p->stderr_path);
        resp->terminal = p->terminal;
        resp->exit_status = p->sm.exit_status;
        resp->exited_at = ts_new(call, &p->sm.exited_at);
        resp->exec_id = cc_ttrpc_call_strdup(call, p->exec_id ? p->exec_id : "");
        shim__proc_put_locked(s, op.p);
        pthread_mutex_unlock(&s->lock);
        return 0;
}

/* The pod sandbox goes last: Delete of its task while containers remain is refused. */
static int delete_guard(struct shim *s, struct proc_op *op, struct cc_error **err)
{
        if (!op->p->exec_id && op->t->role == SHIM_ROLE_SANDBOX)
                for (struct task *o = s->tasks; o; o = o->next)
                        if (o != op->t)
                                return cc_error_set(err, EBUSY, "sandbox %s still has container %s",
                                                    op->t->id, o->id);
        return shim__guard_pass(s, op, err);
}

/* What ends with a task's init: its guest container, the pod with its sandbox (the VM is
 * stopped first so that every blocked agent call, monitors and relays, returns), its threads. */
static void task_teardown(struct shim *s, struct task *t)
{
        if (t->in_guest && s->sb && !s->sb->vm_dead) {
                Grpc__RemoveContainerRequest rreq = GRPC__REMOVE_CONTAINER_REQUEST__INIT;
                rreq.container_id = t->id;
                rreq.timeout = 10;
                _cleanup_error_ struct cc_error *e = NULL;
                if (shim_agent_call(s->sb, AGENT_SERVICE, "RemoveContainer", &rreq.base, NULL, NULL,
                                    15 * SEC, &e) < 0)
                        cc_log_warn("remove container %s: %s", t->id, cc_error_message(e));
        }
        /* After the agent let go of them (a pod's stop releases them with the VM). */
        shim__devices_detach(s, t, false);
        if (t->role != SHIM_ROLE_CONTAINER)
                shim__pod_stop(s);
        for (struct proc *e = t->execs; e; e = e->next) {
                if (e->monitor_started)
                        pthread_join(e->monitor, NULL);
                e->monitor_started = false;
        }
        if (t->init.monitor_started)
                pthread_join(t->init.monitor, NULL);
        t->init.monitor_started = false;
}

/*
 * DELETING belongs to the Delete that fired it: no other request changes the process any
 * more, and it is freed once the handlers still using it (a Wait that saw the exit) let go.
 */
HANDLER(task_delete)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__DeleteRequest *req = (const void *)req_;
        Containerd__Task__V2__DeleteResponse *resp = (void *)resp_;
        struct proc_op op = {.id = req->id,
                             .exec_id = req->exec_id,
                             .ev = SHIM_PEV_DELETE,
                             .guard = delete_guard};
        int r = shim__proc_op(s, &op, err);
        if (r < 0)
                return r;
        struct task *t = op.t;
        struct proc *p = op.p;
        pthread_mutex_lock(&s->lock);
        shim__wait_refs_locked(s, p, false);
        if (p->exec_id) {
                struct proc **pp = &t->execs;
                while (*pp != p)
                        pp = &(*pp)->next;
                *pp = p->next;
        }
        pthread_mutex_unlock(&s->lock);
        if (p->exec_id && p->monitor_started)
                pthread_join(p->monitor, NULL);
        if (!p->exec_id)
                task_teardown(s, t);

        pthread_mutex_lock(&s->lock);
        shim__publish_end(s, p, true);
        resp->pid = shim__vmm_pid(s);
        resp->exit_status = p->sm.exit_status;
        resp->exited_at = ts_new(call, &p->sm.exited_at);
        if (!p->exec_id) {
                struct task **tp = &s->tasks;
                while (*tp != t)
                        tp = &(*tp)->next;
                *tp = t->next;
                shim__wait_refs_locked(s, p, true);
        }
        pthread_mutex_unlock(&s->lock);

        if (p->exec_id) {
                shim__proc_free(p);
                free(p);
                return 0;
        }
        shim__task_free(t);
        if (s->sb && s->sb->vm_dead && !s->tasks) {
                shim_sandbox_free(s->sb);
                s->sb = NULL;
        }
        return 0;
}

HANDLER(task_pids)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__PidsRequest *req = (const void *)req_;
        Containerd__Task__V2__PidsResponse *resp = (void *)resp_;
        struct proc_op op = {.id = req->id};
        int r = shim__proc_op(s, &op, err);
        if (r < 0)
                return r;
        /* The container's processes live in the guest; the host process that runs them is the
         * VMM (kata reports the same). */
        resp->processes = cc_ttrpc_call_alloc(call, sizeof(*resp->processes));
        Containerd__V1__Types__ProcessInfo *pi = cc_ttrpc_call_alloc(call, sizeof(*pi));
        if (!resp->processes || !pi)
                return -ENOMEM;
        containerd__v1__types__process_info__init(pi);
        pi->pid = shim__vmm_pid(s);
        resp->processes[0] = pi;
        resp->n_processes = 1;
        return 0;
}

/* Pause and Resume reach only guest containers (the sandbox's process is the agent's). */
static int in_guest_guard(struct shim *s, struct proc_op *op, struct cc_error **err)
{
        if (!op->t->in_guest)
                return cc_error_set(err, EOPNOTSUPP, "%s of the pod sandbox is not supported",
                                    (const char *)op->arg);
        return shim__guard_pass(s, op, err);
}

/* PAUSED (RUNNING) before the agent call, so that a second Pause (Resume) is refused; back
 * if the agent refuses. */
static int pause_resume(struct shim *s, const char *id, bool pause, struct cc_error **err)
{
        const char *method = pause ? "PauseContainer" : "ResumeContainer";
        struct proc_op op = {.id = id,
                             .ev = pause ? SHIM_PEV_PAUSE : SHIM_PEV_RESUME,
                             .ref = true,
                             .guard = in_guest_guard,
                             .arg = (void *)method};
        int r = shim__proc_op(s, &op, err);
        if (r < 0)
                return r;
        /* PauseContainerRequest and ResumeContainerRequest are both { container_id = 1 }. */
        Grpc__PauseContainerRequest preq = GRPC__PAUSE_CONTAINER_REQUEST__INIT;
        Grpc__ResumeContainerRequest rreq = GRPC__RESUME_CONTAINER_REQUEST__INIT;
        preq.container_id = rreq.container_id = (char *)id;
        r = shim_agent_call(s->sb, AGENT_SERVICE, method, pause ? &preq.base : &rreq.base, NULL,
                            NULL, 30 * SEC, err);
        if (r < 0) {
                shim__proc_outcome(s, &op, pause ? SHIM_PEV_PAUSE_FAILED : SHIM_PEV_RESUME_FAILED,
                                   0);
                return r;
        }
        pthread_mutex_lock(&s->lock);
        Containerd__Events__TaskPaused pev = CONTAINERD__EVENTS__TASK_PAUSED__INIT;
        Containerd__Events__TaskResumed rev = CONTAINERD__EVENTS__TASK_RESUMED__INIT;
        pev.container_id = rev.container_id = (char *)id;
        shim_events_publish(s->ev, pause ? "/tasks/paused" : "/tasks/resumed",
                            pause ? &pev.base : &rev.base);
        shim__proc_put_locked(s, op.p);
        pthread_mutex_unlock(&s->lock);
        return 0;
}

HANDLER(task_pause)
{
        const Containerd__Task__V2__PauseRequest *req = (const void *)req_;
        return pause_resume(userdata, req->id, true, err);
}

HANDLER(task_resume)
{
        const Containerd__Task__V2__ResumeRequest *req = (const void *)req_;
        return pause_resume(userdata, req->id, false, err);
}

HANDLER(task_checkpoint)
{
        return cc_error_set_code(err, CC_GRPC_UNIMPLEMENTED,
                                 "checkpoint is not supported: the container runs inside a "
                                 "(confidential) VM whose memory the host cannot read");
}

/* The pod sandbox's process is the VM: the Kill that stops it decides the exit status. */
static int kill_guard(struct shim *s, struct proc_op *op, struct cc_error **err)
{
        if (!op->p->exec_id && op->t->role == SHIM_ROLE_SANDBOX)
                op->t->kill_status = op->status;
        return shim__guard_pass(s, op, err);
}

/*
 * A started process gets the signal through the agent; an init never started exits with
 * 128+signal at once; an exec never started is FailedPrecondition (proc.c); a Kill during a
 * Start waits for its outcome.
 */
HANDLER(task_kill)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__KillRequest *req = (const void *)req_;
        struct proc_op op = {.id = req->id,
                             .exec_id = req->exec_id,
                             .ev = SHIM_PEV_KILL,
                             .status = 128 + (req->signal & 0x7f),
                             .ref = true,
                             .guard = kill_guard};
        int r = shim__proc_op(s, &op, err);
        if (r < 0)
                return r;
        bool sandbox = !op.p->exec_id && op.t->role == SHIM_ROLE_SANDBOX;
        if (sandbox || !(op.fx & SHIM_PFX_SIGNAL)) {
                shim__proc_put(s, op.p);
                /* The pause process is the VM: killing it stops the pod. */
                if (sandbox && !shim__sandbox_stop_async(s))
                        shim__sandbox_stop(s);
                return 0;
        }
        Grpc__SignalProcessRequest sreq = GRPC__SIGNAL_PROCESS_REQUEST__INIT;
        sreq.container_id = op.t->id;
        /* An empty exec id addresses the container's init (and, for `all`, every process). */
        sreq.exec_id = op.p->exec_id ? op.p->exec_id : "";
        sreq.signal = req->signal;
        r = shim_agent_call(s->sb, AGENT_SERVICE, "SignalProcess", &sreq.base, NULL, NULL, 10 * SEC,
                            err);
        shim__proc_put(s, op.p);
        return r;
}

static struct proc *exec_new(const Containerd__Task__V2__ExecProcessRequest *req)
{
        struct proc *p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        shim_proc_sm_init(&p->sm, true);
        p->terminal = req->terminal;
        if (!(p->exec_id = strdup(req->exec_id)) ||
            !(p->stdin_path = strdup(req->stdin ? req->stdin : "")) ||
            !(p->stdout_path = strdup(req->stdout ? req->stdout : "")) ||
            !(p->stderr_path = strdup(req->stderr ? req->stderr : ""))) {
                shim__proc_free(p);
                free(p);
                return NULL;
        }
        return p;
}

/* Adds the exec to its task (lock held): only to a running guest container, once per id. */
static int exec_add_locked(struct shim *s, const char *id, struct proc *p, struct cc_error **err)
{
        struct task *t = shim__task_find(s, id);
        if (!t || t->init.sm.state == SHIM_PROC_CREATING)
                return cc_error_set(err, ENOENT, "task %s: not found", id);
        if (!t->in_guest)
                return cc_error_set_code(err, CC_GRPC_FAILED_PRECONDITION,
                                         "exec into the pod sandbox is not supported");
        if (shim_proc_check(&t->init.sm, SHIM_PEV_EXEC, NULL) < 0)
                return cc_error_set(err, EBUSY, "task %s is not running", id);
        if (shim__exec_find(t, p->exec_id))
                return cc_error_set(err, EEXIST, "exec %s already exists", p->exec_id);
        p->task = t;
        p->next = t->execs;
        t->execs = p;
        (void)shim__proc_fire(s, p, SHIM_PEV_CREATED, 0, NULL, NULL);
        Containerd__Events__TaskExecAdded ev = CONTAINERD__EVENTS__TASK_EXEC_ADDED__INIT;
        ev.container_id = t->id;
        ev.exec_id = p->exec_id;
        shim_events_publish(s->ev, "/tasks/exec-added", &ev.base);
        return 0;
}

HANDLER(task_exec)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__ExecProcessRequest *req = (const void *)req_;
        if (cc_isempty(req->exec_id))
                return cc_error_set(err, EINVAL, "exec id is required");
        if (!req->spec || !shim__type_url_is(req->spec->type_url, "Process"))
                return cc_error_set(err, EINVAL, "exec spec must be an OCI Process (got %s)",
                                    req->spec ? req->spec->type_url : "nothing");
        _cleanup_json_ struct json_object *pj = NULL;
        int r = cc_json_parse("exec spec", (const char *)req->spec->value.data,
                              req->spec->value.len, 0, &pj, err);
        if (r < 0)
                return r;
        Grpc__Process *gp = NULL;
        if ((r = shim_process_from_oci(pj, &gp, err)) < 0)
                return r;
        gp->terminal = req->terminal;
        struct proc *p = exec_new(req);
        if (!p) {
                protobuf_c_message_free_unpacked(&gp->base, NULL);
                return -ENOMEM;
        }
        p->gproc = gp;
        if (s->sb)
                r = shim_io_new(s->sb, req->id, req->exec_id, req->terminal, req->stdin,
                                req->stdout, req->stderr, &p->io, err);
        if (r >= 0) {
                pthread_mutex_lock(&s->lock);
                r = exec_add_locked(s, req->id, p, err);
                pthread_mutex_unlock(&s->lock);
        }
        if (r < 0) {
                shim__proc_free(p);
                free(p);
        }
        return r;
}

HANDLER(task_resize_pty)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__ResizePtyRequest *req = (const void *)req_;
        struct proc_op op = {.id = req->id, .exec_id = req->exec_id};
        int r = shim__proc_op(s, &op, err);
        if (r < 0)
                return r;
        Grpc__TtyWinResizeRequest treq = GRPC__TTY_WIN_RESIZE_REQUEST__INIT;
        treq.container_id = (char *)req->id;
        treq.exec_id = (char *)(req->exec_id ? req->exec_id : "");
        treq.row = req->height;
        treq.column = req->width;
        return shim_agent_call(s->sb, AGENT_SERVICE, "TtyWinResize", &treq.base, NULL, NULL,
                               10 * SEC, err);
}

HANDLER(task_close_io)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__CloseIORequest *req = (const void *)req_;
        struct proc_op op = {.id = req->id, .exec_id = req->exec_id, .ref = true};
        int r = shim__proc_op(s, &op, err);
        if (r < 0)
                return r;
        if (req->stdin && op.p->io)
                shim_io_close_stdin(op.p->io);
        shim__proc_put(s, op.p);
        return 0;
}

/* Whether task id has a guest container (the sandbox's has none). */
static int task_in_guest(struct shim *s, const char *id, bool *ret, struct cc_error **err)
{
        struct proc_op op = {.id = id, .ref = true};
        int r = shim__proc_op(s, &op, err);
        if (r < 0)
                return r;
        *ret = op.t->in_guest;
        shim__proc_put(s, op.p);
        return 0;
}

HANDLER(task_update)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__UpdateTaskRequest *req = (const void *)req_;
        bool in_guest = false;
        int r = task_in_guest(s, req->id, &in_guest, err);
        if (r < 0)
                return r;
        if (!in_guest || !req->resources)
                return 0; /* the sandbox's resources are the VM's, fixed at boot */
        _cleanup_json_ struct json_object *rj = NULL;
        r = cc_json_parse("resources", (const char *)req->resources->value.data,
                          req->resources->value.len, 0, &rj, err);
        if (r < 0)
                return r;
        Grpc__UpdateContainerRequest ureq = GRPC__UPDATE_CONTAINER_REQUEST__INIT;
        ureq.container_id = (char *)req->id;
        if ((r = shim_resources_from_oci(rj, &ureq.resources, err)) < 0)
                return r;
        r = shim_agent_call(s->sb, AGENT_SERVICE, "UpdateContainer", &ureq.base, NULL, NULL,
                            10 * SEC, err);
        protobuf_c_message_free_unpacked(&ureq.resources->base, NULL);
        return r;
}

/* Answers once the process is STOPPED, or DELETING (a Delete of a process never started). */
HANDLER(task_wait)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__WaitRequest *req = (const void *)req_;
        Containerd__Task__V2__WaitResponse *resp = (void *)resp_;
        struct proc_op op = {.id = req->id, .exec_id = req->exec_id, .ref = true};
        int r = shim__proc_op(s, &op, err);
        if (r < 0)
                return r;
        pthread_mutex_lock(&s->lock);
        while (!shim_proc_done(&op.p->sm))
                pthread_cond_wait(&s->cond, &s->lock);
        resp->exit_status = op.p->sm.exit_status;
        resp->exited_at = ts_new(call, &op.p->sm.exited_at);
        shim__proc_put_locked(s, op.p);
        pthread_mutex_unlock(&s->lock);
        return 0;
}

/* The agent's cgroup stats as io.containerd.cgroups.v2.Metrics (metrics.c). */
HANDLER(task_stats)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__StatsRequest *req = (const void *)req_;
        Containerd__Task__V2__StatsResponse *resp = (void *)resp_;
        bool in_guest = false;
        int r = task_in_guest(s, req->id, &in_guest, err);
        if (r < 0)
                return r;
        Grpc__StatsContainerResponse *sr = NULL;
        if (in_guest) {
                Grpc__StatsContainerRequest sreq = GRPC__STATS_CONTAINER_REQUEST__INIT;
                sreq.container_id = (char *)req->id;
                r = shim_agent_call(s->sb, AGENT_SERVICE, "StatsContainer", &sreq.base,
                                    &grpc__stats_container_response__descriptor,
                                    (ProtobufCMessage **)&sr, 10 * SEC, err);
                if (r < 0)
                        return r;
        }
        const Grpc__CgroupStats *cg = sr ? sr->cgroup_stats : NULL;
        size_t len = shim_metrics_pack(cg, NULL);
        uint8_t *buf = cc_ttrpc_call_alloc(call, len ? len : 1);
        Google__Protobuf__Any *any = cc_ttrpc_call_alloc(call, sizeof(*any));
        if (buf && any) {
                google__protobuf__any__init(any);
                any->type_url = SHIM_METRICS_TYPE_URL;
                any->value.data = buf;
                any->value.len = shim_metrics_pack(cg, buf);
                resp->stats = any;
        }
        if (sr)
                protobuf_c_message_free_unpacked(&sr->base, NULL);
        return buf && any ? 0 : -ENOMEM;
}

HANDLER(task_connect)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__ConnectRequest *req = (const void *)req_;
        Containerd__Task__V2__ConnectResponse *resp = (void *)resp_;
        struct proc_op op = {.id = req->id};
        int r = shim__proc_op(s, &op, err);
        if (r < 0)
                return r;
        resp->shim_pid = (uint32_t)getpid();
        resp->task_pid = shim__vmm_pid(s);
        resp->version = SHIM_VERSION;
        return 0;
}

HANDLER(task_shutdown)
{
        struct shim *s = userdata;
        pthread_mutex_lock(&s->lock);
        bool busy = s->tasks != NULL;
        pthread_mutex_unlock(&s->lock);
        if (busy)
                return 0; /* other tasks of the pod still live here */
        uint64_t one = 1;
        if (write(s->exit_efd, &one, sizeof(one)) < 0)
                cc_log_debug("shutdown: %m");
        return 0;
}

/* containerd.task.v2.Image/PullImage (the CC fork): forwarded to the agent unchanged; the
 * image name is the join key with the later container's io.kubernetes.cri.image-name. */
HANDLER(image_pull)
{
        struct shim *s = userdata;
        const Containerd__Task__V2__PullImageRequest *req = (const void *)req_;
        Containerd__Task__V2__PullImageResponse *resp = (void *)resp_;
        if (cc_isempty(req->image))
                return cc_error_set(err, EINVAL, "image is required");
        if (!s->sb)
                return cc_error_set_code(err, CC_GRPC_FAILED_PRECONDITION,
                                         "no sandbox runs in this shim yet");
        Grpc__PullImageRequest preq = GRPC__PULL_IMAGE_REQUEST__INIT;
        preq.image = req->image;
        Grpc__PullImageResponse *pr = NULL;
        int r = shim_agent_call(s->sb, "grpc.Image", "PullImage", &preq.base,
                                &grpc__pull_image_response__descriptor, (ProtobufCMessage **)&pr,
                                (int64_t)s->sb->cfg.create_container_timeout_s * SEC, err);
        if (r < 0)
                return r;
        resp->image_ref =
                cc_ttrpc_call_strdup(call, cc_isempty(pr->image_ref) ? req->image : pr->image_ref);
        protobuf_c_message_free_unpacked(&pr->base, NULL);
        return resp->image_ref ? 0 : -ENOMEM;
}

#define T(name) containerd__task__v2__##name##__descriptor
#define M(rpc, req, resp, fn, fl)          \
        {                                  \
                rpc, &T(req), resp, fn, fl \
        }

static const struct cc_ttrpc_method task_methods[] = {
        M("State", state_request, &T(state_response), task_state, CC_TTRPC_METHOD_INLINE),
        M("Create", create_task_request, &T(create_task_response), task_create, 0),
        M("Start", start_request, &T(start_response), task_start, 0),
        M("Delete", delete_request, &T(delete_response), task_delete, 0),
        M("Pids", pids_request, &T(pids_response), task_pids, CC_TTRPC_METHOD_INLINE),
        M("Pause", pause_request, NULL, task_pause, 0),
        M("Resume", resume_request, NULL, task_resume, 0),
        M("Checkpoint", checkpoint_task_request, NULL, task_checkpoint, CC_TTRPC_METHOD_INLINE),
        M("Kill", kill_request, NULL, task_kill, 0),
        M("Exec", exec_process_request, NULL, task_exec, 0),
        M("ResizePty", resize_pty_request, NULL, task_resize_pty, 0),
        M("CloseIO", close_iorequest, NULL, task_close_io, 0),
        M("Update", update_task_request, NULL, task_update, 0),
        M("Wait", wait_request, &T(wait_response), task_wait, 0),
        M("Stats", stats_request, &T(stats_response), task_stats, 0),
        M("Connect", connect_request, &T(connect_response), task_connect, CC_TTRPC_METHOD_INLINE),
        M("Shutdown", shutdown_request, NULL, task_shutdown, CC_TTRPC_METHOD_INLINE),
};

static const struct cc_ttrpc_service task_service = {
        .name = "containerd.task.v2.Task",
        .methods = task_methods,
        .n_methods = CC_ARRAY_SIZE(task_methods),
};

static const struct cc_ttrpc_method image_methods[] = {
        M("PullImage", pull_image_request, &T(pull_image_response), image_pull, 0),
};

static const struct cc_ttrpc_service image_service = {
        .name = "containerd.task.v2.Image",
        .methods = image_methods,
        .n_methods = CC_ARRAY_SIZE(image_methods),
};

/* ---- lifecycle ------------------------------------------------------------------------------ */

int shim_new(const struct shim_options *o, struct shim **ret)
{
        struct shim *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->cond, NULL);
        pthread_mutex_init(&s->create_lock, NULL);
        pthread_mutex_init(&s->vm_lock, NULL);
        s->exit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        s->watcher_stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        s->ns = strdup(o->ns);
        s->id = strdup(o->id);
        int r = -ENOMEM;
        if (s->exit_efd < 0 || s->watcher_stop_efd < 0 || !s->ns || !s->id ||
            (r = shim_events_new(o->ttrpc_address, o->ns, &s->ev)) < 0) {
                shim_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

struct shim_sandbox *shim_get_sandbox(struct shim *s)
{
        return s->sb;
}

int shim_exit_fd(struct shim *s)
{
        return s->exit_efd;
}

void shim_teardown(struct shim *s)
{
        /* SIGTERM: the pod ends now. Exits are published for what was running. */
        shim__pod_stop(s);
}

void shim_free(struct shim *s)
{
        if (!s)
                return;
        shim__pod_stop(s);
        while (s->tasks) {
                struct task *t = s->tasks;
                s->tasks = t->next;
                shim__task_free(t);
        }
        shim_sandbox_free(s->sb);
        shim_events_free(s->ev, 3000);
        cc_close(s->exit_efd);
        cc_close(s->watcher_stop_efd);
        free(s->ns);
        free(s->id);
        free(s);
}

int shim_register(struct shim *s, struct cc_ttrpc_server *srv)
{
        int r = cc_ttrpc_server_register(srv, &task_service, s);
        return r < 0 ? r : cc_ttrpc_server_register(srv, &image_service, s);
}
