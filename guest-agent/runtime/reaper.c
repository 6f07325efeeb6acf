/*
 * The runtime's threads: the reaper (SIGCHLD through a signalfd, every zombie reaped with
 * WNOHANG, exit statuses recorded on the process) and the OOM watcher (memory.events through
 * inotify, events queued for GetOOMEvent); the runtime's creation and teardown.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/log.h"
#include "cc/macro.h"

#include "guest-agent/runtime/runtime-internal.h"
#include "guest-agent/runtime/runtime.h"
#include "guest-agent/validate.h"

static int exit_code(int status)
{
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return 255;
}

static struct proc *find_proc_by_pid(struct agent_runtime *rt, pid_t pid, struct container **rc)
{
        for (size_t i = 0; i < rt->n_containers; i++) {
                struct container *c = rt->containers[i];
                if (c->init && c->init->pid == pid && !c->init->exited) {
                        *rc = c;
                        return c->init;
                }
                for (size_t k = 0; k < c->n_execs; k++)
                        if (c->execs[k]->pid == pid && !c->execs[k]->exited) {
                                *rc = c;
                                return c->execs[k];
                        }
        }
        return NULL;
}

static void push_oom_locked(struct agent_runtime *rt, const char *id)
{
        struct oom_event *ev = calloc(1, sizeof(*ev));
        if (!ev || !(ev->id = strdup(id))) {
                free(ev);
                return;
        }
        *rt->oom_tail = ev;
        rt->oom_tail = &ev->next;
        cc_log_info("container OOM-killed id=%s", id);
        pthread_cond_broadcast(&rt->cond);
}

/* Compares the cgroup's OOM-kill counter with what we saw last; queues an event on growth. */
void agent__check_oom_locked(struct agent_runtime *rt, struct container *c)
{
        uint64_t n = 0;
        if (!c->cg || agent_cgroup_oom_kills(c->cg, &n) < 0 || n <= c->oom_seen)
                return;
        c->oom_seen = n;
        push_oom_locked(rt, c->id);
}

/* Records one reaped child (with rt->lock held). */
static void reaped_locked(struct agent_runtime *rt, pid_t pid, int st)
{
        if (agent__pod_reaped_locked(rt, pid, exit_code(st))) {
                pthread_cond_broadcast(&rt->cond);
                return;
        }
        struct container *c = NULL;
        struct proc *p = find_proc_by_pid(rt, pid, &c);
        if (p) {
                p->exited = true;
                p->status = exit_code(st);
                cc_log_debug("process exited id=%s exec_id=%s pid=%d status=%d", c->id, p->exec_id,
                             pid, p->status);
                if (p == c->init && (c->state == CONTAINER_RUNNING || c->state == CONTAINER_PAUSED))
                        (void)agent__container_set_state(c, CONTAINER_STOPPED, NULL);
                agent__check_oom_locked(rt, c);
        } else {
                /* Not (yet) registered: an intermediate child, an orphan, or a process whose
                 * creator has not recorded its pid. Keep the status a while. */
                rt->unclaimed[rt->unclaimed_next] =
                        (struct unclaimed){.pid = pid, .status = exit_code(st)};
                rt->unclaimed_next = (rt->unclaimed_next + 1) % AGENT_UNCLAIMED_MAX;
                if (rt->n_unclaimed < AGENT_UNCLAIMED_MAX)
                        rt->n_unclaimed++;
        }
        pthread_cond_broadcast(&rt->cond);
}

/*
 * The reaper: SIGCHLD is blocked in every thread (agent_runtime_new) and read from a
 * signalfd; each wakeup reaps every zombie with WNOHANG, so coalesced signals lose nothing.
 * Orphans re-parented to us (we are init, or a child subreaper) are reaped the same way.
 */
static void *reaper_main(void *arg)
{
        struct agent_runtime *rt = arg;
        for (;;) {
                struct pollfd p[2] = {{.fd = rt->sigchld_fd, .events = POLLIN},
                                      {.fd = rt->stop_fd, .events = POLLIN}};
                if (poll(p, 2, -1) < 0)
                        continue;
                if (p[1].revents & POLLIN)
                        return NULL;
                struct signalfd_siginfo si;
                while (read(rt->sigchld_fd, &si, sizeof(si)) == sizeof(si))
                        ;
                for (;;) {
                        int st;
                        pid_t pid = waitpid(-1, &st, WNOHANG | __WALL);
                        if (pid <= 0)
                                break;
                        pthread_mutex_lock(&rt->lock);
                        reaped_locked(rt, pid, st);
                        pthread_mutex_unlock(&rt->lock);
                }
        }
}

/* Records a new process's pid; if the reaper already saw it exit, takes that status. */
void agent__register_pid_locked(struct agent_runtime *rt, struct proc *p, pid_t pid)
{
        p->pid = pid;
        for (size_t i = 0; i < rt->n_unclaimed; i++)
                if (rt->unclaimed[i].pid == pid) {
                        p->exited = true;
                        p->status = rt->unclaimed[i].status;
                        rt->unclaimed[i].pid = 0;
                }
        pthread_cond_broadcast(&rt->cond);
}

/* v2: memory.events changes on every OOM kill; inotify tells us without polling. */
static void *oom_main(void *arg)
{
        struct agent_runtime *rt = arg;
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        for (;;) {
                struct pollfd p[2] = {{.fd = rt->inotify_fd, .events = POLLIN},
                                      {.fd = rt->stop_fd, .events = POLLIN}};
                if (poll(p, 2, -1) < 0)
                        continue;
                if (p[1].revents & POLLIN)
                        return NULL;
                ssize_t n = read(rt->inotify_fd, buf, sizeof(buf));
                if (n <= 0)
                        continue;
                pthread_mutex_lock(&rt->lock);
                for (ssize_t off = 0; off < n;) {
                        struct inotify_event *ev = (struct inotify_event *)(buf + off);
                        for (size_t i = 0; i < rt->n_containers; i++)
                                if (rt->containers[i]->oom_wd == ev->wd)
                                        agent__check_oom_locked(rt, rt->containers[i]);
                        off += (ssize_t)sizeof(*ev) + ev->len;
                }
                pthread_mutex_unlock(&rt->lock);
        }
}

int agent_runtime_wait_oom(struct agent_runtime *rt, int64_t timeout_ns, char **ret_id,
                           struct cc_error **err)
{
        /* Honour the caller's deadline: an event must not be consumed by a call whose client
         * has already given up (it would never see it). */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        bool bounded = timeout_ns > 0 && timeout_ns < INT64_MAX / 2;
        if (bounded) {
                ts.tv_sec += timeout_ns / 1000000000LL;
                ts.tv_nsec += timeout_ns % 1000000000LL;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
        }
        pthread_mutex_lock(&rt->lock);
        int w = 0;
        while (!rt->oom_head && !rt->shutdown && w == 0)
                w = bounded ? pthread_cond_timedwait(&rt->cond, &rt->lock, &ts)
                            : pthread_cond_wait(&rt->cond, &rt->lock);
        struct oom_event *ev = rt->oom_head;
        if (ev) {
                rt->oom_head = ev->next;
                if (!rt->oom_head)
                        rt->oom_tail = &rt->oom_head;
        }
        pthread_mutex_unlock(&rt->lock);
        if (!ev)
                return w ? cc_error_set(err, ETIMEDOUT, "no OOM event before the deadline")
                         : cc_error_set(err, ESHUTDOWN, "agent is shutting down");
        *ret_id = ev->id;
        free(ev);
        return 0;
}

/* ---- runtime -------------------------------------------------------------------------- */

/* The containers area, created with its parents (it may be on a fresh tmpfs, /run in the
 * guest, or a file system just mounted over it), opened O_PATH; -errno. */
static int open_area(char *dir)
{
        for (char *sl = strchr(dir + 1, '/'); sl; sl = strchr(sl + 1, '/')) {
                *sl = '\0';
                (void)mkdir(dir, 0755);
                *sl = '/';
        }
        (void)mkdir(dir, 0700);
        int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

int agent_runtime_reopen_area(struct agent_runtime *rt)
{
        int fd = open_area(rt->containers_dir);
        if (fd < 0)
                return fd;
        cc_close(__atomic_exchange_n(&rt->containers_dirfd, fd, __ATOMIC_SEQ_CST));
        return 0;
}

int agent_runtime_new(const struct agent_runtime_config *cfg, struct agent_runtime **ret)
{
        struct agent_runtime *rt = calloc(1, sizeof(*rt));
        if (!rt)
                return -ENOMEM;
        rt->containers_dirfd = -1;
        rt->inotify_fd = -1;
        rt->sigchld_fd = -1;
        rt->stop_fd = -1;
        pthread_mutex_init(&rt->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_cond_init(&rt->cond, &ca);
        pthread_condattr_destroy(&ca);
        rt->oom_tail = &rt->oom_head;
        int r = -ENOMEM;
        rt->containers_dir = strdup(cfg->containers_dir);
        rt->cgroup_root = strdup(cfg->cgroup_root ? cfg->cgroup_root : "cc-agent");
        if (!rt->containers_dir || !rt->cgroup_root ||
            (cfg->volumes_dir && !(rt->volumes_dir = strdup(cfg->volumes_dir))))
                goto fail;
        if ((rt->containers_dirfd = open_area(rt->containers_dir)) < 0) {
                r = rt->containers_dirfd;
                goto fail;
        }
        /* Orphans of our double forks (and of anything in the guest, when we are init) must
         * come to us, not to a distant init, so that we can reap them. */
        if (getpid() != 1)
                (void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        /* SIGCHLD goes to the reaper's signalfd only: block it here, before the agent starts
         * other threads (they inherit the mask; children get a clean one). */
        sigset_t chld;
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        pthread_sigmask(SIG_BLOCK, &chld, NULL);
        rt->sigchld_fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
        rt->stop_fd = eventfd(0, EFD_CLOEXEC);
        if (rt->sigchld_fd < 0 || rt->stop_fd < 0) {
                r = -errno;
                goto fail;
        }
        rt->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if ((r = -pthread_create(&rt->reaper, NULL, reaper_main, rt)) < 0)
                goto fail;
        rt->reaper_started = true;
        if (rt->inotify_fd >= 0 && pthread_create(&rt->oom_thread, NULL, oom_main, rt) == 0)
                rt->oom_started = true;
        *ret = rt;
        return 0;
fail:
        agent_runtime_free(rt);
        return r;
}

unsigned agent_runtime_n_containers(struct agent_runtime *rt)
{
        pthread_mutex_lock(&rt->lock);
        unsigned n = (unsigned)rt->n_containers;
        pthread_mutex_unlock(&rt->lock);
        return n;
}

void agent_runtime_free(struct agent_runtime *rt)
{
        if (!rt)
                return;
        agent_runtime_shutdown(rt);
        uint64_t one = 1;
        if (rt->stop_fd >= 0)
                (void)!write(rt->stop_fd, &one, sizeof(one));
        if (rt->reaper_started)
                pthread_join(rt->reaper, NULL);
        if (rt->oom_started)
                pthread_join(rt->oom_thread, NULL);
        cc_close(rt->sigchld_fd);
        cc_close(rt->stop_fd);
        cc_close(rt->inotify_fd);
        cc_close(rt->containers_dirfd);
        agent_cgroup_remove_root(rt->cgroup_root);
        while (rt->oom_head) {
                struct oom_event *ev = rt->oom_head;
                rt->oom_head = ev->next;
                free(ev->id);
                free(ev);
        }
        free(rt->containers);
        free(rt->containers_dir);
        free(rt->volumes_dir);
        free(rt->cgroup_root);
        pthread_cond_destroy(&rt->cond);
        pthread_mutex_destroy(&rt->lock);
        free(rt);
}
