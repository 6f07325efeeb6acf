/*
 * The threads that follow the pod and report what happens to it:
 *
 *  - a monitor per guest process, blocked in the agent's WaitProcess; when it returns, the
 *    monitor waits until the process's output reached containerd, then fires EXIT (the state
 *    machine publishes /tasks/exit, after the start, and wakes every Wait);
 *  - the VM watcher: the VMM's death is exit 255 for every process of the pod that has not
 *    exited (the sandbox's own process, which is the agent's and has no monitor, exits only
 *    this way, with 128+signal if a Kill stopped the VM);
 *  - the OOM thread: the agent's GetOOMEvent answers when the guest kernel OOM-kills in a
 *    container's cgroup, which becomes /tasks/oom.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/log.h"

#include "containerd/events/task.pb-c.h"
#include "shim/task-internal.h"

struct monitor_arg {
        struct shim *s;
        struct proc *p;
};

static void *monitor_main(void *arg)
{
        struct monitor_arg *ma = arg;
        struct shim *s = ma->s;
        struct proc *p = ma->p;
        free(ma);
        Grpc__WaitProcessRequest req = GRPC__WAIT_PROCESS_REQUEST__INIT;
        req.container_id = p->task->id;
        req.exec_id = p->exec_id ? p->exec_id : "";
        Grpc__WaitProcessResponse *resp = NULL;
        _cleanup_error_ struct cc_error *e = NULL;
        uint32_t status = 255;
        if (shim_agent_call(s->sb, AGENT_SERVICE, "WaitProcess", &req.base,
                            &grpc__wait_process_response__descriptor, (ProtobufCMessage **)&resp, 0,
                            &e) == 0) {
                status = (uint32_t)resp->status;
                protobuf_c_message_free_unpacked(&resp->base, NULL);
        } else {
                cc_log_warn("task %s%s%s: WaitProcess: %s; reporting exit 255", p->task->id,
                            p->exec_id ? " exec " : "", p->exec_id ? p->exec_id : "",
                            cc_error_message(e));
                /* The agent channel broke while the VMM still runs: nothing of the pod can be
                 * controlled any more, so the pod fails as a whole (every task exits 255)
                 * rather than leaving containers that no Kill or Wait can reach. */
                if (s->sb && !s->sb->vm_dead && cc_ttrpc_client_broken(s->sb->agent)) {
                        cc_log_error("sandbox %s: the agent connection is lost; stopping the pod",
                                     s->sb->id);
                        shim__sandbox_stop(s);
                }
        }
        /* Every byte the process wrote reaches containerd before its exit is reported. */
        shim_io_drain(p->io);
        pthread_mutex_lock(&s->lock);
        (void)shim__proc_fire(s, p, SHIM_PEV_EXIT, status, NULL, NULL);
        pthread_mutex_unlock(&s->lock);
        return NULL;
}

int shim__monitor_start(struct shim *s, struct proc *p, struct cc_error **err)
{
        struct monitor_arg *ma = malloc(sizeof(*ma));
        if (!ma)
                return -ENOMEM;
        *ma = (struct monitor_arg){s, p};
        if (pthread_create(&p->monitor, NULL, monitor_main, ma) != 0) {
                free(ma);
                return cc_error_set(err, EAGAIN, "cannot start the process monitor");
        }
        p->monitor_started = true;
        return 0;
}

/* The VMM died or was stopped: every process of the pod that has not exited exits now. */
static void vm_gone(struct shim *s)
{
        pthread_mutex_lock(&s->lock);
        if (s->sb)
                s->sb->vm_dead = true;
        for (struct task *t = s->tasks; t; t = t->next) {
                for (struct proc *p = t->execs; p; p = p->next)
                        (void)shim__proc_fire(s, p, SHIM_PEV_EXIT, 255, NULL, NULL);
                (void)shim__proc_fire(s, &t->init, SHIM_PEV_EXIT,
                                      t->kill_status ? t->kill_status : 255, NULL, NULL);
        }
        pthread_mutex_unlock(&s->lock);
}

static void *watcher_main(void *arg)
{
        struct shim *s = arg;
        int fd = hv_vm_exit_fd(s->sb->vm);
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                              {.fd = s->watcher_stop_efd, .events = POLLIN}};
        for (;;) {
                if (poll(p, 2, -1) < 0 && errno == EINTR)
                        continue;
                break;
        }
        pthread_mutex_lock(&s->lock);
        bool stop = s->stop_requested;
        pthread_mutex_unlock(&s->lock);
        if (stop) {
                shim__sandbox_stop(s);
        } else if (p[0].revents && !p[1].revents) {
                if (!s->sb->vm_dead && !s->sb->stopping)
                        cc_log_warn("sandbox %s: the VM exited", s->sb->id);
                vm_gone(s);
        }
        return NULL;
}

/* The call blocks until the guest OOM-kills, and fails once the VM is gone, which ends the
 * thread. */
static void *oom_main(void *arg)
{
        struct shim *s = arg;
        for (;;) {
                Grpc__GetOOMEventRequest req = GRPC__GET_OOMEVENT_REQUEST__INIT;
                Grpc__OOMEvent *ev = NULL;
                _cleanup_error_ struct cc_error *e = NULL;
                if (shim_agent_call(s->sb, AGENT_SERVICE, "GetOOMEvent", &req.base,
                                    &grpc__oomevent__descriptor, (ProtobufCMessage **)&ev, 0,
                                    &e) < 0) {
                        cc_log_debug("GetOOMEvent: %s", cc_error_message(e));
                        break;
                }
                pthread_mutex_lock(&s->lock);
                if (shim__task_find(s, ev->container_id)) {
                        Containerd__Events__TaskOOM oe = CONTAINERD__EVENTS__TASK_OOM__INIT;
                        oe.container_id = ev->container_id;
                        shim_events_publish(s->ev, "/tasks/oom", &oe.base);
                }
                pthread_mutex_unlock(&s->lock);
                cc_log_info("container %s: out of memory in the guest", ev->container_id);
                protobuf_c_message_free_unpacked(&ev->base, NULL);
        }
        return NULL;
}

void shim__watch_start(struct shim *s)
{
        if (pthread_create(&s->watcher, NULL, watcher_main, s) == 0)
                s->watcher_started = true;
        if (pthread_create(&s->oom, NULL, oom_main, s) == 0)
                s->oom_started = true;
}

void shim__sandbox_stop(struct shim *s)
{
        if (!s->sb)
                return;
        pthread_mutex_lock(&s->vm_lock);
        shim_sandbox_stop(s->sb);
        pthread_mutex_unlock(&s->vm_lock);
        vm_gone(s);
}

bool shim__sandbox_stop_async(struct shim *s)
{
        if (!s->watcher_started)
                return false;
        pthread_mutex_lock(&s->lock);
        s->stop_requested = true;
        pthread_mutex_unlock(&s->lock);
        uint64_t one = 1;
        return write(s->watcher_stop_efd, &one, sizeof(one)) == sizeof(one);
}

void shim__pod_stop(struct shim *s)
{
        shim__sandbox_stop(s);
        if (s->watcher_started) {
                uint64_t one = 1;
                if (write(s->watcher_stop_efd, &one, sizeof(one)) < 0)
                        cc_log_debug("watcher stop: %m");
                pthread_join(s->watcher, NULL);
                s->watcher_started = false;
        }
        /* The VM is stopped: the OOM thread's call has failed or fails now. */
        if (s->oom_started) {
                pthread_join(s->oom, NULL);
                s->oom_started = false;
        }
}
