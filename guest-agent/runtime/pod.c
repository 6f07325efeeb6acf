/*
 * The pod's namespaces: at CreateSandbox the agent starts a pause process in a new pid, ipc
 * and uts namespace (the uts with the pod's hostname), as Kata's agent sets up its shared
 * ones; the pod's containers join them (runtime/spec.c decides which, spawn.c joins through
 * /proc/<pause>/ns/<type>). The pause is the init of the pod's pid namespace. It ends at
 * DestroySandbox, once no container is joining it.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/log.h"
#include "cc/macro.h"

#include "guest-agent/runtime/runtime-internal.h"

#define POD_NAMESPACES (AGENT_NS_PID | AGENT_NS_IPC | AGENT_NS_UTS)

static bool pod_running_locked(const struct agent_runtime *rt)
{
        return rt->pod.pause && rt->pod.pause->pid > 0 && !rt->pod.pause->exited;
}

int agent_runtime_pod_create(struct agent_runtime *rt, const char *hostname, struct cc_error **err)
{
        pthread_mutex_lock(&rt->lock);
        bool running = pod_running_locked(rt);
        pthread_mutex_unlock(&rt->lock);
        if (running)
                return 0;
        /* The pause's "spec": the namespaces and the hostname, nothing to run. */
        struct agent_spec spec = {.hostname = (char *)(cc_isempty(hostname) ? NULL : hostname),
                                  .namespaces = AGENT_NS_MOUNT | POD_NAMESPACES,
                                  .sandbox = true};
        _cleanup_free_ char *name = cc_isempty(hostname) ? NULL : strdup(hostname);
        struct proc *p = agent__proc_new("pod");
        if (!p || (!cc_isempty(hostname) && !name)) {
                agent__proc_unref(rt, p);
                return -ENOMEM;
        }
        pthread_mutex_lock(&rt->lock);
        struct proc *old = TAKE_PTR(rt->pod.pause);
        rt->pod.pause = p; /* before its pid is registered: the reaper must know it */
        pthread_mutex_unlock(&rt->lock);
        agent__proc_unref(rt, old);
        const struct spawn_request req = {
                .what = "pod namespaces",
                .proc = &spec.process,
                .spec = &spec,
                .pause = true,
                .rootfd = -1,
                .unshare = agent__unshare_flags(spec.namespaces),
        };
        int r = agent__spawn(rt, &req, p, NULL, NULL, err);
        pthread_mutex_lock(&rt->lock);
        if (r >= 0) {
                free(rt->pod.hostname);
                rt->pod.hostname = TAKE_PTR(name);
        }
        pthread_mutex_unlock(&rt->lock);
        if (r >= 0)
                cc_log_info("pod namespaces pid, ipc, uts held by pid %d", (int)p->pid);
        return r;
}

int agent_runtime_pod(struct agent_runtime *rt, unsigned *ret_ns, char **ret_hostname)
{
        pthread_mutex_lock(&rt->lock);
        bool running = pod_running_locked(rt);
        char *name = running && rt->pod.hostname ? strdup(rt->pod.hostname) : NULL;
        bool oom = running && rt->pod.hostname && !name;
        pthread_mutex_unlock(&rt->lock);
        if (oom)
                return -ENOMEM;
        *ret_ns = running ? POD_NAMESPACES : 0;
        *ret_hostname = name;
        return 0;
}

int agent__pod_hold(struct agent_runtime *rt, unsigned join, pid_t *ret_pid, struct cc_error **err)
{
        pthread_mutex_lock(&rt->lock);
        bool running = pod_running_locked(rt);
        if (running) {
                rt->pod.spawning++;
                *ret_pid = rt->pod.pause->pid;
        }
        pthread_mutex_unlock(&rt->lock);
        if (!running)
                return cc_error_set(err, ENOENT,
                                    "the container joins the pod's %s namespace, but the pod's "
                                    "namespaces are gone",
                                    join & AGENT_NS_PID   ? "pid"
                                    : join & AGENT_NS_IPC ? "ipc"
                                                          : "uts");
        return 0;
}

void agent__pod_release(struct agent_runtime *rt)
{
        pthread_mutex_lock(&rt->lock);
        rt->pod.spawning--;
        pthread_cond_broadcast(&rt->cond);
        pthread_mutex_unlock(&rt->lock);
}

void agent__pod_destroy(struct agent_runtime *rt)
{
        pthread_mutex_lock(&rt->lock);
        while (rt->pod.spawning)
                pthread_cond_wait(&rt->cond, &rt->lock);
        struct proc *p = TAKE_PTR(rt->pod.pause);
        if (p && p->pid > 0 && !p->exited)
                kill(p->pid, SIGKILL);
        agent__proc_unref_locked(p);
        free(TAKE_PTR(rt->pod.hostname));
        pthread_mutex_unlock(&rt->lock);
}

bool agent__pod_reaped_locked(struct agent_runtime *rt, pid_t pid, int status)
{
        struct proc *p = rt->pod.pause;
        if (!p || p->pid != pid || p->exited)
                return false;
        p->exited = true;
        p->status = status;
        cc_log_info("the pod's namespace holder (pid %d) exited, status %d", (int)pid, status);
        return true;
}
