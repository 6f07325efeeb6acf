/*
 * The pod's tasks and their processes: the task list, the lookup every request starts with
 * and the state machine's transitions under the lock (shim__proc_op), the events the
 * transitions publish, the references that keep a process alive while a handler uses it
 * unlocked. The ttrpc handlers and struct shim's life are task.c's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/log.h"

#include "containerd/events/task.pb-c.h"
#include "shim/task-internal.h"

uint32_t shim__vmm_pid(struct shim *s)
{
        return s->sb ? (uint32_t)s->sb->vmm_pid : (uint32_t)getpid();
}

/* ---- the model: lookup, transitions and their events (lock held) ---------------------------- */

struct task *shim__task_find(struct shim *s, const char *id)
{
        for (struct task *t = s->tasks; t; t = t->next)
                if (strcmp(t->id, id) == 0)
                        return t;
        return NULL;
}

struct proc *shim__exec_find(struct task *t, const char *exec_id)
{
        for (struct proc *p = t->execs; p; p = p->next)
                if (strcmp(p->exec_id, exec_id) == 0)
                        return p;
        return NULL;
}

static void publish_started(struct shim *s, const struct proc *p)
{
        if (p->exec_id) {
                Containerd__Events__TaskExecStarted ev =
                        CONTAINERD__EVENTS__TASK_EXEC_STARTED__INIT;
                ev.container_id = p->task->id;
                ev.exec_id = p->exec_id;
                ev.pid = shim__vmm_pid(s);
                shim_events_publish(s->ev, "/tasks/exec-started", &ev.base);
                return;
        }
        Containerd__Events__TaskStart ev = CONTAINERD__EVENTS__TASK_START__INIT;
        ev.container_id = p->task->id;
        ev.pid = shim__vmm_pid(s);
        shim_events_publish(s->ev, "/tasks/start", &ev.base);
}

void shim__publish_end(struct shim *s, const struct proc *p, bool deleted)
{
        Containerd__Events__TaskExit x = CONTAINERD__EVENTS__TASK_EXIT__INIT;
        Containerd__Events__TaskDelete d = CONTAINERD__EVENTS__TASK_DELETE__INIT;
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        ts.seconds = p->sm.exited_at.tv_sec;
        ts.nanos = (int32_t)p->sm.exited_at.tv_nsec;
        x.container_id = d.container_id = p->task->id;
        x.pid = d.pid = shim__vmm_pid(s);
        x.exit_status = d.exit_status = p->sm.exit_status;
        x.exited_at = d.exited_at = &ts;
        /* The exit names the process (the container's id for its init), the delete the exec. */
        x.id = p->exec_id ? p->exec_id : p->task->id;
        d.id = p->exec_id ? p->exec_id : "";
        shim_events_publish(s->ev, deleted ? "/tasks/delete" : "/tasks/exit",
                            deleted ? &d.base : &x.base);
}

int shim__proc_fire(struct shim *s, struct proc *p, enum shim_proc_event ev, uint32_t status,
                    unsigned *ret_effects, struct cc_error **err)
{
        unsigned fx = 0;
        int r = shim_proc_fire(&p->sm, ev, status, &fx, err);
        if (r < 0)
                return r;
        if (fx & SHIM_PFX_PUBLISH_START)
                publish_started(s, p);
        if (fx & SHIM_PFX_PUBLISH_EXIT)
                shim__publish_end(s, p, false);
        if (fx & SHIM_PFX_CHANGED)
                pthread_cond_broadcast(&s->cond);
        if (ret_effects)
                *ret_effects = fx;
        return 0;
}

static int proc_op_locked(struct shim *s, struct proc_op *op, struct cc_error **err)
{
        struct task *t = shim__task_find(s, op->id);
        if (!t)
                return cc_error_set(err, ENOENT, "task %s: not found", op->id);
        struct proc *p = cc_isempty(op->exec_id) ? &t->init : shim__exec_find(t, op->exec_id);
        if (!p)
                return cc_error_set(err, ENOENT, "exec %s of task %s: not found", op->exec_id,
                                    op->id);
        op->t = t;
        op->p = p;
        int r = shim_proc_check(&p->sm, op->ev, err);
        if (r == 0 && op->guard)
                return op->guard(s, op, err);
        if (r == 0)
                r = shim__proc_fire(s, p, op->ev, op->status, &op->fx, err);
        if (r < 0 && r != -EAGAIN) {
                if (p->exec_id)
                        return cc_error_wrap(err, -r, "exec %s of task %s", p->exec_id, t->id);
                return cc_error_wrap(err, -r, "task %s", t->id);
        }
        return r;
}

int shim__proc_op(struct shim *s, struct proc_op *op, struct cc_error **err)
{
        pthread_mutex_lock(&s->lock);
        int r;
        while ((r = proc_op_locked(s, op, err)) == -EAGAIN)
                pthread_cond_wait(&s->cond, &s->lock);
        if (r == 0 && op->ref)
                op->p->refs++;
        pthread_mutex_unlock(&s->lock);
        return r;
}

/* For guards: the handler's own condition passed, fire the event. */
int shim__guard_pass(struct shim *s, struct proc_op *op, struct cc_error **err)
{
        return shim__proc_fire(s, op->p, op->ev, op->status, &op->fx, err);
}

void shim__proc_put_locked(struct shim *s, struct proc *p)
{
        if (--p->refs == 0)
                pthread_cond_broadcast(&s->cond);
}

void shim__proc_put(struct shim *s, struct proc *p)
{
        pthread_mutex_lock(&s->lock);
        shim__proc_put_locked(s, p);
        pthread_mutex_unlock(&s->lock);
}

/* Fires the outcome of an agent call (lock taken here) and drops op's reference. */
void shim__proc_outcome(struct shim *s, struct proc_op *op, enum shim_proc_event ev,
                        uint32_t status)
{
        pthread_mutex_lock(&s->lock);
        _cleanup_error_ struct cc_error *e = NULL;
        if (shim__proc_fire(s, op->p, ev, status, NULL, &e) < 0)
                cc_log_debug("task %s: %s", op->t->id, cc_error_message(e));
        shim__proc_put_locked(s, op->p);
        pthread_mutex_unlock(&s->lock);
}

void shim__proc_free(struct proc *p)
{
        if (!p)
                return;
        shim_io_free(p->io);
        if (p->gproc)
                protobuf_c_message_free_unpacked(&p->gproc->base, NULL);
        free(p->exec_id);
        free(p->stdin_path);
        free(p->stdout_path);
        free(p->stderr_path);
}

void shim__task_free(struct task *t)
{
        if (!t)
                return;
        struct proc *p = t->execs;
        while (p) {
                struct proc *next = p->next;
                if (p->monitor_started)
                        pthread_join(p->monitor, NULL);
                shim__proc_free(p);
                free(p);
                p = next;
        }
        if (t->init.monitor_started)
                pthread_join(t->init.monitor, NULL);
        shim__proc_free(&t->init);
        for (size_t i = 0; i < t->n_disks; i++)
                free(t->disks[i]);
        free(t->disks);
        free(t->id);
        free(t->bundle);
        free(t);
}

void shim__wait_refs_locked(struct shim *s, const struct proc *p, bool execs)
{
        for (;;) {
                unsigned n = p->refs;
                for (const struct proc *e = execs ? p->task->execs : NULL; e; e = e->next)
                        n += e->refs;
                if (!n)
                        return;
                pthread_cond_wait(&s->cond, &s->lock);
        }
}

/* ---- lifecycle ------------------------------------------------------------------------------ */
