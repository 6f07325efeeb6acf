/*
 * Containers and their processes: the runtime's table, process creation (two forks, see
 * runtime.h), the reaper, stdio, signals, removal and OOM events.
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

#include "guest-agent/runtime/runtime.h"
#include "guest-agent/validate.h"

#define MAX_CONTAINERS 1024
#define MAX_EXECS      1024
#define UNCLAIMED_MAX  128

struct proc {
        unsigned refs;
        char *exec_id;
        pid_t pid;
        bool exited;
        int status;
        int stdin_fd, stdout_fd, stderr_fd; /* -1 when absent; a tty uses stdout_fd */
        bool terminal;
        pthread_mutex_t stdin_lock;
};

enum container_state {
        STATE_CREATED,
        STATE_RUNNING,
        STATE_PAUSED,
        STATE_STOPPED,
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
        bool removing;
        unsigned busy; /* execs being started: removal waits for them (they use cg, spec) */
};

struct unclaimed {
        pid_t pid;
        int status;
};

struct oom_event {
        char *id;
        struct oom_event *next;
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
        struct unclaimed unclaimed[UNCLAIMED_MAX];
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
};

/* ---- small helpers ------------------------------------------------------------------ */

static int exit_code(int status)
{
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return 255;
}

static struct proc *proc_new(const char *exec_id)
{
        struct proc *p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        p->refs = 1;
        p->exec_id = strdup(exec_id);
        p->stdin_fd = p->stdout_fd = p->stderr_fd = -1;
        pthread_mutex_init(&p->stdin_lock, NULL);
        if (!p->exec_id) {
                free(p);
                return NULL;
        }
        return p;
}

/* Called with rt->lock held (refs are protected by it). */
static void proc_unref_locked(struct proc *p)
{
        if (!p || --p->refs > 0)
                return;
        cc_close(p->stdin_fd);
        cc_close(p->stdout_fd);
        cc_close(p->stderr_fd);
        pthread_mutex_destroy(&p->stdin_lock);
        free(p->exec_id);
        free(p);
}

static void proc_unref(struct agent_runtime *rt, struct proc *p)
{
        pthread_mutex_lock(&rt->lock);
        proc_unref_locked(p);
        pthread_mutex_unlock(&rt->lock);
}

static struct container *find_container(struct agent_runtime *rt, const char *id)
{
        for (size_t i = 0; i < rt->n_containers; i++)
                if (strcmp(rt->containers[i]->id, id) == 0)
                        return rt->containers[i];
        return NULL;
}

static struct proc *find_proc_in(struct container *c, const char *exec_id)
{
        if (cc_isempty(exec_id) || (c->init && strcmp(c->init->exec_id, exec_id) == 0))
                return c->init;
        for (size_t i = 0; i < c->n_execs; i++)
                if (strcmp(c->execs[i]->exec_id, exec_id) == 0)
                        return c->execs[i];
        return NULL;
}

/* Looks up a process and takes a reference (so its fds stay open while the lock is dropped
 * for a blocking read or write). */
static int get_proc(struct agent_runtime *rt, const char *id, const char *exec_id,
                    struct proc **ret, struct cc_error **err)
{
        int r = agent_validate_id(id, "container id", err);
        if (r < 0)
                return r;
        if (!cc_isempty(exec_id) && (r = agent_validate_id(exec_id, "exec id", err)) < 0)
                return r;
        pthread_mutex_lock(&rt->lock);
        struct container *c = find_container(rt, id);
        struct proc *p = c ? find_proc_in(c, exec_id) : NULL;
        if (p)
                p->refs++;
        pthread_mutex_unlock(&rt->lock);
        if (!c)
                return cc_error_set(err, ENOENT, "container '%s' not found", id);
        if (!p)
                return cc_error_set(err, ENOENT, "process '%s' of container '%s' not found",
                                    exec_id, id);
        *ret = p;
        return 0;
}

/* ---- reaper and OOM events ---------------------------------------------------------- */

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
static void check_oom_locked(struct agent_runtime *rt, struct container *c)
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
        struct container *c = NULL;
        struct proc *p = find_proc_by_pid(rt, pid, &c);
        if (p) {
                p->exited = true;
                p->status = exit_code(st);
                cc_log_debug("process exited id=%s exec_id=%s pid=%d status=%d", c->id, p->exec_id,
                             pid, p->status);
                if (p == c->init && c->state != STATE_CREATED)
                        c->state = STATE_STOPPED;
                check_oom_locked(rt, c);
        } else {
                /* Not (yet) registered: an intermediate child, an orphan, or a process whose
                 * creator has not recorded its pid. Keep the status a while. */
                rt->unclaimed[rt->unclaimed_next] =
                        (struct unclaimed){.pid = pid, .status = exit_code(st)};
                rt->unclaimed_next = (rt->unclaimed_next + 1) % UNCLAIMED_MAX;
                if (rt->n_unclaimed < UNCLAIMED_MAX)
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
static void register_pid_locked(struct agent_runtime *rt, struct proc *p, pid_t pid)
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
                                        check_oom_locked(rt, rt->containers[i]);
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
        /* The area may be on a fresh tmpfs (/run in the guest): create it with its parents. */
        for (char *sl = strchr(rt->containers_dir + 1, '/'); sl; sl = strchr(sl + 1, '/')) {
                *sl = '\0';
                (void)mkdir(rt->containers_dir, 0755);
                *sl = '/';
        }
        (void)mkdir(rt->containers_dir, 0700);
        rt->containers_dirfd = open(rt->containers_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rt->containers_dirfd < 0) {
                r = -errno;
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

/* ---- creation ------------------------------------------------------------------------- */

/* Status pipe records: one byte kind (0 ready, 1 error), then the message text. */
enum { REC_READY = 0, REC_ERROR = 1 };

static _noreturn_ void child_die(int status_fd, const char *fmt, ...) _printf_(2, 3);
static _noreturn_ void child_die(int status_fd, const char *fmt, ...)
{
        char buf[600];
        buf[0] = REC_ERROR;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf + 1, sizeof(buf) - 1, fmt, ap);
        va_end(ap);
        if (n < 0)
                n = 0;
        if ((size_t)n > sizeof(buf) - 2)
                n = (int)sizeof(buf) - 2;
        (void)!write(status_fd, buf, (size_t)n + 1);
        _exit(127);
}

/* Reads one status record: 0 for "ready", 1 for EOF (execve happened), or -errno with *err
 * holding the child's message. */
static int read_status(int fd, const char *what, struct cc_error **err)
{
        char buf[601];
        ssize_t n;
        do
                n = read(fd, buf, sizeof(buf) - 1);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return cc_error_set(err, errno, "%s: reading child status: %m", what);
        if (n == 0)
                return 1;
        buf[n] = '\0';
        if (buf[0] == REC_READY)
                return 0;
        return cc_error_set(err, EINVAL, "%s: %s", what, buf + 1);
}

struct stdio_fds {
        /* child side; `tty` is the socket over which the child sends its pty master */
        int in, out, err, tty;
        /* agent side */
        int p_in, p_out, p_err;
        unsigned short rows, cols;
};

static void stdio_close(struct stdio_fds *s)
{
        cc_close(s->in);
        cc_close(s->out);
        cc_close(s->err);
        cc_close(s->tty);
        cc_close(s->p_in);
        cc_close(s->p_out);
        cc_close(s->p_err);
        *s = (struct stdio_fds){-1, -1, -1, -1, -1, -1, -1, 0, 0};
}

/*
 * A terminal is allocated by the container process itself from the container's own devpts
 * (so that ttyname() and /dev/pts inside the container agree), and its master comes back to
 * the agent over a socketpair with SCM_RIGHTS; p_out holds our end until then.
 */
static int stdio_prepare(const struct agent_process *p, struct stdio_fds *s, struct cc_error **err)
{
        *s = (struct stdio_fds){-1, -1, -1, -1, -1, -1, -1, p->rows, p->cols};
        if (p->terminal) {
                int sp[2];
                if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                        return cc_error_set(err, errno, "socketpair: %m");
                s->tty = sp[0];
                s->p_out = sp[1];
                return 0;
        }
        int a[2], b[2], c[2];
        if (pipe2(a, O_CLOEXEC) < 0)
                return cc_error_set(err, errno, "pipe: %m");
        s->in = a[0], s->p_in = a[1];
        if (pipe2(b, O_CLOEXEC) < 0) {
                stdio_close(s);
                return cc_error_set(err, errno, "pipe: %m");
        }
        s->p_out = b[0], s->out = b[1];
        if (pipe2(c, O_CLOEXEC) < 0) {
                stdio_close(s);
                return cc_error_set(err, errno, "pipe: %m");
        }
        s->p_err = c[0], s->err = c[1];
        return 0;
}

static int send_fd(int sock, int fd)
{
        char cbuf[CMSG_SPACE(sizeof(int))] = {0};
        char byte = 0;
        struct iovec iov = {.iov_base = &byte, .iov_len = 1};
        struct msghdr msg = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = cbuf,
                             .msg_controllen = sizeof(cbuf)};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
        return sendmsg(sock, &msg, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

/* Receives the child's pty master; -EPIPE when the child closed the socket instead. */
static int recv_fd(int sock)
{
        char cbuf[CMSG_SPACE(sizeof(int))];
        char byte;
        struct iovec iov = {.iov_base = &byte, .iov_len = 1};
        struct msghdr msg = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = cbuf,
                             .msg_controllen = sizeof(cbuf)};
        ssize_t n;
        do
                n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
                return n < 0 ? -errno : -EPIPE;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        if (!cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(int)))
                return -EBADMSG;
        int fd;
        memcpy(&fd, CMSG_DATA(cm), sizeof(int));
        return fd;
}

/* Child side, inside the container's mount namespace: makes the stdio fds 0/1/2 (dup2 clears
 * close-on-exec), allocating the terminal first when there is one. */
static int stdio_child(const struct stdio_fds *s)
{
        if (setsid() < 0)
                return -errno;
        if (s->tty >= 0) {
                int m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
                if (m < 0)
                        return -errno;
                char name[64];
                if (unlockpt(m) < 0 || ptsname_r(m, name, sizeof(name)) != 0)
                        return -errno;
                int sl = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
                if (sl < 0)
                        return -errno;
                if (s->rows && s->cols) {
                        struct winsize ws = {.ws_row = s->rows, .ws_col = s->cols};
                        (void)ioctl(m, TIOCSWINSZ, &ws);
                }
                int r = send_fd(s->tty, m);
                close(m);
                if (r < 0)
                        return r;
                if (ioctl(sl, TIOCSCTTY, 0) < 0)
                        return -errno;
                for (int fd = 0; fd < 3; fd++)
                        if (dup2(sl, fd) < 0)
                                return -errno;
                close(sl);
                return 0;
        }
        if (dup2(s->in, 0) < 0 || dup2(s->out, 1) < 0 || dup2(s->err, 2) < 0)
                return -errno;
        return 0;
}

/* Parent side, after the child reported its pid: fetches the pty master when there is one. */
static int stdio_finish(struct stdio_fds *s, int status_rd, const char *what, struct cc_error **err)
{
        if (s->tty < 0)
                return 0;
        s->tty = cc_close(s->tty);
        int m = recv_fd(s->p_out);
        if (m < 0) {
                int r = read_status(status_rd, what, err);
                return r < 0 ? r : cc_error_set(err, -m, "%s: no terminal from the child", what);
        }
        cc_close(s->p_out);
        s->p_out = m;
        s->p_in = fcntl(m, F_DUPFD_CLOEXEC, 3);
        return s->p_in < 0 ? cc_error_set(err, errno, "dup pty: %m") : 0;
}

static void proc_take_stdio(struct proc *p, struct stdio_fds *s, bool terminal)
{
        p->terminal = terminal;
        p->stdin_fd = TAKE_FD(s->p_in);
        p->stdout_fd = TAKE_FD(s->p_out);
        p->stderr_fd = TAKE_FD(s->p_err);
        stdio_close(s);
}

/* Closes every fd from 3 up except those in keep[]: a forked child must not hold another
 * container's pipes (they would delay that container's EOFs until this child execs) nor the
 * agent's sockets. */
static void close_other_fds(int *keep, size_t n)
{
        /* insertion sort: n is small */
        for (size_t i = 1; i < n; i++)
                for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
                        int t = keep[j];
                        keep[j] = keep[j - 1];
                        keep[j - 1] = t;
                }
        unsigned lo = 3;
        for (size_t i = 0; i < n; i++) {
                if (keep[i] < (int)lo)
                        continue;
                if ((unsigned)keep[i] > lo)
                        close_range(lo, (unsigned)keep[i] - 1, 0);
                lo = (unsigned)keep[i] + 1;
        }
        close_range(lo, ~0U, 0);
}

static void reset_signals(void)
{
        sigset_t all;
        sigemptyset(&all);
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        signal(sig, SIG_DFL);
        pthread_sigmask(SIG_SETMASK, &all, NULL);
}

static void exec_process(const struct agent_process *p, int status_fd)
{
        extern char **environ;
        environ = p->env ? p->env : (char **)agent_default_env;
        execvp(p->args[0], p->args);
        child_die(status_fd, "exec '%s': %s", p->args[0], strerror(errno));
}

/* A pod volume, <volumes_dir>/<kind>/<name> exactly (storage.c made it): opened beneath
 * volumes_dir without following any symlink, so that a container cannot plant one there to
 * lead another container's mount elsewhere. */
static int open_volume(struct agent_runtime *rt, const char *path, const char *what,
                       struct cc_error **err)
{
        const char *rel = path + strlen(rt->volumes_dir);
        while (*rel == '/')
                rel++;
        const char *slash = strchr(rel, '/');
        if (!slash || slash == rel || !slash[1] || strchr(slash + 1, '/'))
                return cc_error_set(err, EPERM, "%s '%s' is not a volume (%s/<kind>/<name>)", what,
                                    path, rt->volumes_dir);
        _cleanup_close_ int dfd = open(rt->volumes_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return cc_error_set(err, errno, "%s '%s': the pod has no volumes (%s: %m)", what,
                                    path, rt->volumes_dir);
        int fd = agent__openat2(dfd, rel, O_PATH | O_DIRECTORY | O_CLOEXEC,
                                RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
        if (fd == -ELOOP || fd == -EXDEV)
                return cc_error_set(err, EPERM, "%s '%s' leaves the volumes area", what, path);
        if (fd == -ENOENT)
                return cc_error_set(err, ENOENT,
                                    "%s '%s': no such volume (no local or ephemeral Storage made "
                                    "it)",
                                    what, path);
        if (fd < 0)
                return cc_error_set(err, -fd, "%s '%s': %s", what, path, strerror(-fd));
        return fd;
}

/* Validates that a host-supplied guest path lies in this container's area (see
 * agent_runtime_config) and opens it beneath containers_dir, so that a symlink planted in
 * the area cannot lead out of it either. */
static int open_in_area(struct agent_runtime *rt, const char *id, const char *path,
                        const char *what, struct cc_error **err)
{
        int r = agent_validate_abs_path(path, what, err);
        if (r < 0)
                return r;
        if (rt->volumes_dir && agent_path_is_under(path, rt->volumes_dir))
                return open_volume(rt, path, what, err);
        if (!agent_path_is_under(path, rt->containers_dir))
                return cc_error_set(err, EPERM, "%s '%s' is outside the containers area %s", what,
                                    path, rt->containers_dir);
        const char *rel = path + strlen(rt->containers_dir);
        while (*rel == '/')
                rel++;
        size_t idlen = strlen(id), flen = strcspn(rel, "/");
        /* First component must be "<id>" or "<id>-<anything>". */
        if (flen > NAME_MAX || strncmp(rel, id, idlen) != 0 ||
            (rel[idlen] != '/' && rel[idlen] != '\0' && rel[idlen] != '-'))
                return cc_error_set(err, EPERM, "%s '%s' is not in the area of container '%s'",
                                    what, path, id);
        /* The area itself must not be a symlink (to another container's area), and nothing
         * below it may resolve outside it. */
        char first[NAME_MAX + 1];
        memcpy(first, rel, flen);
        first[flen] = '\0';
        _cleanup_close_ int areafd =
                agent__openat2(rt->containers_dirfd, first, O_PATH | O_DIRECTORY | O_CLOEXEC,
                               RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
        /* ELOOP (a symlink) and EXDEV (an escape) are refusals, not failures. */
        if (areafd == -ELOOP || areafd == -EXDEV)
                return cc_error_set(err, EPERM, "%s '%s' leaves the area of container '%s'", what,
                                    path, id);
        if (areafd < 0)
                return cc_error_set(err, -areafd, "%s '%s': %s", what, path, strerror(-areafd));
        const char *rest = rel + flen;
        while (*rest == '/')
                rest++;
        int fd = agent__openat2(areafd, *rest ? rest : ".", O_PATH | O_CLOEXEC,
                                RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
        if (fd == -ELOOP || fd == -EXDEV)
                return cc_error_set(err, EPERM, "%s '%s' leaves the area of container '%s'", what,
                                    path, id);
        if (fd < 0)
                return cc_error_set(err, -fd, "%s '%s': %s", what, path, strerror(-fd));
        return fd;
}

static void container_free(struct container *c)
{
        if (!c)
                return;
        free(c->id);
        agent_spec_free(c->spec);
        agent__seccomp_release(c->seccomp);
        free(c->execs);
        cc_close(c->start_fd);
        cc_close(c->status_fd);
        free(c);
}

/* Validates the parts of a spec that the host controls and that the runtime must not trust. */
static int validate_spec(const struct agent_spec *s, struct cc_error **err)
{
        int r;
        if (s->namespaces & AGENT_NS_NET)
                cc_log_debug("ignoring the network namespace: containers share the VM's");
        if (!s->sandbox && (!s->process.args || !s->process.args[0]))
                return cc_error_set(err, EINVAL, "process.args is empty");
        if (s->process.cwd && (r = agent_validate_abs_path(s->process.cwd, "cwd", err)) < 0)
                return r;
        if (s->n_mounts > AGENT_MAX_MOUNTS)
                return cc_error_set(err, EINVAL, "too many mounts");
        for (size_t i = 0; i < s->n_mounts; i++)
                if ((r = agent_validate_abs_path(s->mounts[i].destination, "mount destination",
                                                 err)) < 0)
                        return r;
        for (char **p = s->masked_paths; p && *p; p++)
                if ((r = agent_validate_abs_path(*p, "masked path", err)) < 0)
                        return r;
        for (char **p = s->readonly_paths; p && *p; p++)
                if ((r = agent_validate_abs_path(*p, "readonly path", err)) < 0)
                        return r;
        if (s->hostname && strlen(s->hostname) > 64)
                return cc_error_set(err, EINVAL, "hostname is too long");
        return 0;
}

/* The pod's sandbox container: the agent's own pause process, no image. */
static _noreturn_ void pause_main(const struct agent_cgroup *cg)
{
        reset_signals();
        close_other_fds(NULL, 0);
        if (cg)
                (void)agent_cgroup_enter_self(cg);
        (void)prctl(PR_SET_NAME, "pause", 0, 0, 0);
        int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        for (int i = 0; fd >= 0 && i < 3; i++)
                dup2(fd, i);
        for (;;)
                pause();
}

struct init_child_args {
        const struct agent_spec *spec;
        const struct agent_cgroup *cg;
        void *seccomp;
        int rootfd;
        const int *bind_fds;
        struct stdio_fds *stdio;
        int start_rd, status_wr, pid_wr;
};

static _noreturn_ void init_grandchild(const struct init_child_args *a)
{
        struct agent_child_error e = {{0}};
        const struct agent_spec *s = a->spec;
        int r;
        if ((s->namespaces & AGENT_NS_UTS) && s->hostname &&
            sethostname(s->hostname, strlen(s->hostname)) < 0)
                child_die(a->status_wr, "sethostname: %s", strerror(errno));
        if (agent__rootfs_setup(s, a->rootfd, a->bind_fds, &e) < 0)
                child_die(a->status_wr, "rootfs: %s", e.msg);
        if ((r = stdio_child(a->stdio)) < 0)
                child_die(a->status_wr, "stdio: %s", strerror(-r));
        if (agent__process_setup(&s->process, a->seccomp, &e) < 0)
                child_die(a->status_wr, "process: %s", e.msg);
        char ready = REC_READY;
        if (write(a->status_wr, &ready, 1) != 1)
                _exit(127);
        /* Wait for StartContainer. EOF (the agent closed the pipe without a byte) means the
         * container is being removed before it started. */
        char go;
        ssize_t n;
        do
                n = read(a->start_rd, &go, 1);
        while (n < 0 && errno == EINTR);
        if (n != 1)
                _exit(127);
        exec_process(&s->process, a->status_wr);
        _exit(127);
}

static _noreturn_ void init_child(const struct init_child_args *a)
{
        reset_signals();
        {
                int keep[AGENT_MAX_MOUNTS + 12];
                size_t n = 0;
                const int stdio_fds[] = {a->stdio->in, a->stdio->out, a->stdio->err, a->stdio->tty,
                                         a->start_rd,  a->status_wr,  a->pid_wr,     a->rootfd};
                for (size_t i = 0; i < CC_ARRAY_SIZE(stdio_fds); i++)
                        if (stdio_fds[i] >= 0)
                                keep[n++] = stdio_fds[i];
                for (size_t i = 0; i < a->spec->n_mounts; i++)
                        if (a->bind_fds[i] >= 0)
                                keep[n++] = a->bind_fds[i];
                close_other_fds(keep, n);
        }
        if (a->cg && agent_cgroup_enter_self(a->cg) < 0)
                child_die(a->status_wr, "join cgroup: %s", strerror(errno));
        int flags = CLONE_NEWNS;
        if (a->spec->namespaces & AGENT_NS_PID)
                flags |= CLONE_NEWPID;
        if (a->spec->namespaces & AGENT_NS_UTS)
                flags |= CLONE_NEWUTS;
        if (a->spec->namespaces & AGENT_NS_IPC)
                flags |= CLONE_NEWIPC;
        if (a->spec->namespaces & AGENT_NS_CGROUP)
                flags |= CLONE_NEWCGROUP;
        if (unshare(flags) < 0)
                child_die(a->status_wr, "unshare: %s", strerror(errno));
        pid_t pid = fork();
        if (pid < 0)
                child_die(a->status_wr, "fork: %s", strerror(errno));
        if (pid == 0)
                init_grandchild(a);
        int32_t v = pid;
        _exit(write(a->pid_wr, &v, sizeof(v)) == sizeof(v) ? 0 : 1);
}

/* Reads the grandchild's pid from the intermediate child; -errno with *err from the status
 * pipe when the intermediate failed before forking. */
static int read_pid(int pid_rd, int status_rd, const char *what, pid_t *ret, struct cc_error **err)
{
        int32_t v;
        ssize_t n;
        do
                n = read(pid_rd, &v, sizeof(v));
        while (n < 0 && errno == EINTR);
        if (n == sizeof(v) && v > 0) {
                *ret = v;
                return 0;
        }
        int r = read_status(status_rd, what, err);
        return r < 0 ? r : cc_error_set(err, EIO, "%s: child failed before reporting", what);
}

int agent_container_create(struct agent_runtime *rt, const char *id, const char *exec_id,
                           struct agent_spec *spec_in, struct cc_error **err)
{
        _cleanup_(agent_spec_freep) struct agent_spec *spec = spec_in;
        int r;
        if ((r = agent_validate_id(id, "container id", err)) < 0)
                return r;
        if (cc_isempty(exec_id))
                exec_id = id;
        else if ((r = agent_validate_id(exec_id, "exec id", err)) < 0)
                return r;
        if ((r = validate_spec(spec, err)) < 0)
                return r;

        struct container *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->start_fd = c->status_fd = -1;
        c->oom_wd = -1;
        c->id = strdup(id);
        c->init = proc_new(exec_id);
        if (!c->id || !c->init) {
                proc_unref(rt, c->init);
                container_free(c);
                return -ENOMEM;
        }
        /* Reserve the id. */
        pthread_mutex_lock(&rt->lock);
        if (find_container(rt, id) || rt->n_containers >= MAX_CONTAINERS) {
                bool exists = find_container(rt, id) != NULL;
                pthread_mutex_unlock(&rt->lock);
                proc_unref(rt, c->init);
                container_free(c);
                return exists ? cc_error_set(err, EEXIST, "container '%s' already exists", id)
                              : cc_error_set(err, ENOSPC, "too many containers");
        }
        struct container **nc =
                realloc(rt->containers, (rt->n_containers + 1) * sizeof(*rt->containers));
        if (!nc) {
                pthread_mutex_unlock(&rt->lock);
                proc_unref(rt, c->init);
                container_free(c);
                return -ENOMEM;
        }
        rt->containers = nc;
        c->removing = true; /* not usable until created */
        rt->containers[rt->n_containers++] = c;
        pthread_mutex_unlock(&rt->lock);

        r = 0;
        _cleanup_close_ int rootfd = -1;
        int *bind_fds = calloc(spec->n_mounts + 1, sizeof(int));
        struct stdio_fds stdio = {-1, -1, -1, -1, -1, -1, -1, 0, 0};
        int start[2] = {-1, -1}, status[2] = {-1, -1}, pidp[2] = {-1, -1};
        for (size_t i = 0; bind_fds && i < spec->n_mounts; i++)
                bind_fds[i] = -1;
        if (!bind_fds) {
                r = -ENOMEM;
                goto out;
        }
        if (!spec->sandbox) {
                rootfd = open_in_area(rt, id, spec->root_path, "root path", err);
                if (rootfd < 0) {
                        r = rootfd;
                        goto out;
                }
                for (size_t i = 0; i < spec->n_mounts; i++) {
                        if (!spec->mounts[i].bind)
                                continue;
                        bind_fds[i] = open_in_area(rt, id, spec->mounts[i].source,
                                                   "bind mount source", err);
                        if (bind_fds[i] < 0) {
                                r = bind_fds[i];
                                goto out;
                        }
                }
                if (spec->seccomp &&
                    (r = agent__seccomp_build(spec->seccomp, &c->seccomp, err)) < 0)
                        goto out;
        }
        if (agent_cgroup_mode() != AGENT_CGROUP_NONE) {
                if ((r = agent_cgroup_create(rt->cgroup_root, id, &c->cg, err)) < 0)
                        goto out;
                if ((r = agent_cgroup_apply(c->cg, &spec->resources, err)) < 0)
                        goto out;
                (void)agent_cgroup_oom_kills(c->cg, &c->oom_seen);
                const char *evdir = agent_cgroup_events_path(c->cg);
                char evpath[PATH_MAX];
                if (evdir && rt->inotify_fd >= 0 &&
                    snprintf(evpath, sizeof(evpath), "%s/memory.events", evdir) <
                            (int)sizeof(evpath))
                        c->oom_wd = inotify_add_watch(rt->inotify_fd, evpath, IN_MODIFY);
        }
        if (spec->sandbox) {
                pid_t pid = fork();
                if (pid < 0) {
                        r = cc_error_set(err, errno, "fork: %m");
                        goto out;
                }
                if (pid == 0)
                        pause_main(c->cg);
                pthread_mutex_lock(&rt->lock);
                register_pid_locked(rt, c->init, pid);
                c->state = STATE_RUNNING;
                pthread_mutex_unlock(&rt->lock);
                goto out;
        }
        if ((r = stdio_prepare(&spec->process, &stdio, err)) < 0)
                goto out;
        if (pipe2(start, O_CLOEXEC) < 0 || pipe2(status, O_CLOEXEC) < 0 ||
            pipe2(pidp, O_CLOEXEC) < 0) {
                r = cc_error_set(err, errno, "pipe: %m");
                goto out;
        }
        struct init_child_args a = {
                .spec = spec,
                .cg = c->cg,
                .seccomp = c->seccomp,
                .rootfd = rootfd,
                .bind_fds = bind_fds,
                .stdio = &stdio,
                .start_rd = start[0],
                .status_wr = status[1],
                .pid_wr = pidp[1],
        };
        pid_t mid = fork();
        if (mid < 0) {
                r = cc_error_set(err, errno, "fork: %m");
                goto out;
        }
        if (mid == 0) {
                close(start[1]);
                close(status[0]);
                close(pidp[0]);
                init_child(&a);
        }
        start[0] = cc_close(start[0]);
        status[1] = cc_close(status[1]);
        pidp[1] = cc_close(pidp[1]);
        pid_t pid;
        r = read_pid(pidp[0], status[0], "create", &pid, err);
        if (r < 0)
                goto out;
        pthread_mutex_lock(&rt->lock);
        register_pid_locked(rt, c->init, pid);
        pthread_mutex_unlock(&rt->lock);
        if ((r = stdio_finish(&stdio, status[0], "create", err)) < 0) {
                kill(pid, SIGKILL);
                goto out;
        }
        /* Close our copies of the child's stdio ends so EOF arrives when the child exits. */
        proc_take_stdio(c->init, &stdio, spec->process.terminal);
        r = read_status(status[0], "create", err);
        if (r == 1)
                r = cc_error_set(err, EIO, "create: container init exited during setup");
        if (r < 0) {
                kill(pid, SIGKILL);
                goto out;
        }
        c->start_fd = TAKE_FD(start[1]);
        c->status_fd = TAKE_FD(status[0]);
        c->state = STATE_CREATED;
out:
        stdio_close(&stdio);
        cc_close(start[0]);
        cc_close(start[1]);
        cc_close(status[0]);
        cc_close(status[1]);
        cc_close(pidp[0]);
        cc_close(pidp[1]);
        for (size_t i = 0; bind_fds && i < spec->n_mounts; i++)
                cc_close(bind_fds[i]);
        free(bind_fds);
        pthread_mutex_lock(&rt->lock);
        if (r < 0) {
                for (size_t i = 0; i < rt->n_containers; i++)
                        if (rt->containers[i] == c) {
                                rt->containers[i] = rt->containers[--rt->n_containers];
                                break;
                        }
                if (c->oom_wd >= 0)
                        inotify_rm_watch(rt->inotify_fd, c->oom_wd);
                proc_unref_locked(c->init);
        } else {
                c->spec = TAKE_PTR(spec);
                c->removing = false;
        }
        pthread_mutex_unlock(&rt->lock);
        if (r < 0) {
                agent_cgroup_destroy(c->cg);
                c->cg = NULL;
                container_free(c);
                return r;
        }
        cc_log_info("container created id=%s", id);
        return 0;
}

/* Looks up a container for an operation; fails on one being created or removed. */
static int get_container_locked(struct agent_runtime *rt, const char *id, struct container **ret,
                                struct cc_error **err)
{
        struct container *c = find_container(rt, id);
        if (!c || c->removing)
                return cc_error_set(err, ENOENT, "container '%s' not found", id);
        *ret = c;
        return 0;
}

int agent_container_start(struct agent_runtime *rt, const char *id, struct cc_error **err)
{
        int r = agent_validate_id(id, "container id", err);
        if (r < 0)
                return r;
        pthread_mutex_lock(&rt->lock);
        struct container *c;
        if ((r = get_container_locked(rt, id, &c, err)) < 0) {
                pthread_mutex_unlock(&rt->lock);
                return r;
        }
        if (c->state != STATE_CREATED || c->start_fd < 0) {
                pthread_mutex_unlock(&rt->lock);
                if (c->spec->sandbox)
                        return 0; /* the pause process runs from creation */
                return cc_error_set(err, EINVAL, "container '%s' is not in the created state", id);
        }
        int start_fd = TAKE_FD(c->start_fd), status_fd = TAKE_FD(c->status_fd);
        c->state = STATE_RUNNING;
        pthread_mutex_unlock(&rt->lock);
        char go = 1;
        if (write(start_fd, &go, 1) != 1)
                r = cc_error_set(err, errno, "start: %m");
        else if ((r = read_status(status_fd, "start", err)) == 1)
                r = 0;
        close(start_fd);
        close(status_fd);
        if (r >= 0)
                cc_log_info("container started id=%s", id);
        return r;
}

/* ---- exec ---------------------------------------------------------------------------- */

struct exec_child_args {
        const struct agent_process *proc;
        const struct agent_cgroup *cg;
        void *seccomp;
        pid_t target;
        unsigned namespaces;
        struct stdio_fds *stdio;
        int status_wr, pid_wr;
};

static _noreturn_ void exec_child(const struct exec_child_args *a)
{
        reset_signals();
        {
                int keep[8];
                size_t n = 0;
                const int fds[] = {a->stdio->in,  a->stdio->out, a->stdio->err,
                                   a->stdio->tty, a->status_wr,  a->pid_wr};
                for (size_t i = 0; i < CC_ARRAY_SIZE(fds); i++)
                        if (fds[i] >= 0)
                                keep[n++] = fds[i];
                close_other_fds(keep, n);
        }
        if (a->cg && agent_cgroup_enter_self(a->cg) < 0)
                child_die(a->status_wr, "join cgroup: %s", strerror(errno));
        /* The mount namespace goes last: after it, /proc is the container's. */
        static const struct {
                const char *name;
                unsigned flag;
                int nstype;
        } order[] = {
                {"ipc", AGENT_NS_IPC, CLONE_NEWIPC},          {"uts", AGENT_NS_UTS, CLONE_NEWUTS},
                {"cgroup", AGENT_NS_CGROUP, CLONE_NEWCGROUP}, {"pid", AGENT_NS_PID, CLONE_NEWPID},
                {"mnt", AGENT_NS_MOUNT, CLONE_NEWNS},
        };
        int fds[CC_ARRAY_SIZE(order)];
        for (size_t i = 0; i < CC_ARRAY_SIZE(order); i++) {
                fds[i] = -1;
                if (!(a->namespaces & order[i].flag))
                        continue;
                char path[64];
                snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)a->target, order[i].name);
                fds[i] = open(path, O_RDONLY | O_CLOEXEC);
                if (fds[i] < 0)
                        child_die(a->status_wr, "open %s: %s", path, strerror(errno));
        }
        for (size_t i = 0; i < CC_ARRAY_SIZE(order); i++)
                if (fds[i] >= 0 && setns(fds[i], order[i].nstype) < 0)
                        child_die(a->status_wr, "setns %s: %s", order[i].name, strerror(errno));
        pid_t pid = fork();
        if (pid < 0)
                child_die(a->status_wr, "fork: %s", strerror(errno));
        if (pid == 0) {
                struct agent_child_error e = {{0}};
                int r = stdio_child(a->stdio);
                if (r < 0)
                        child_die(a->status_wr, "stdio: %s", strerror(-r));
                if (agent__process_setup(a->proc, a->seccomp, &e) < 0)
                        child_die(a->status_wr, "process: %s", e.msg);
                exec_process(a->proc, a->status_wr);
        }
        int32_t v = pid;
        _exit(write(a->pid_wr, &v, sizeof(v)) == sizeof(v) ? 0 : 1);
}

int agent_container_exec(struct agent_runtime *rt, const char *id, const char *exec_id,
                         struct agent_process *proc_in, struct cc_error **err)
{
        struct agent_process proc = *proc_in;
        *proc_in = (struct agent_process){0};
        int r;
        struct stdio_fds stdio = {-1, -1, -1, -1, -1, -1, -1, 0, 0};
        int status[2] = {-1, -1}, pidp[2] = {-1, -1};
        struct proc *p = NULL;
        struct container *busy = NULL;
        if ((r = agent_validate_id(id, "container id", err)) < 0 ||
            (r = agent_validate_id(exec_id, "exec id", err)) < 0)
                goto out_free;
        if (!proc.args || !proc.args[0]) {
                r = cc_error_set(err, EINVAL, "process.args is empty");
                goto out_free;
        }
        if (proc.cwd && (r = agent_validate_abs_path(proc.cwd, "cwd", err)) < 0)
                goto out_free;
        pthread_mutex_lock(&rt->lock);
        struct container *c;
        if ((r = get_container_locked(rt, id, &c, err)) < 0) {
                pthread_mutex_unlock(&rt->lock);
                goto out_free;
        }
        if (c->state != STATE_RUNNING || !c->init || c->init->exited || c->spec->sandbox) {
                pthread_mutex_unlock(&rt->lock);
                r = cc_error_set(err, EINVAL, "container '%s' is not running", id);
                goto out_free;
        }
        if (find_proc_in(c, exec_id) || c->n_execs >= MAX_EXECS) {
                pthread_mutex_unlock(&rt->lock);
                r = cc_error_set(err, EEXIST, "exec '%s' already exists in container '%s'", exec_id,
                                 id);
                goto out_free;
        }
        struct exec_child_args a = {
                .proc = &proc,
                .cg = c->cg,
                .seccomp = c->seccomp,
                .target = c->init->pid,
                .namespaces = c->spec->namespaces | AGENT_NS_MOUNT,
                .stdio = &stdio,
        };
        /* Removal waits until busy drops back, so cg and spec stay valid until we forked. */
        c->busy++;
        busy = c;
        pthread_mutex_unlock(&rt->lock);
        p = proc_new(exec_id);
        if (!p) {
                r = -ENOMEM;
                goto out_free;
        }
        if ((r = stdio_prepare(&proc, &stdio, err)) < 0)
                goto out_free;
        if (pipe2(status, O_CLOEXEC) < 0 || pipe2(pidp, O_CLOEXEC) < 0) {
                r = cc_error_set(err, errno, "pipe: %m");
                goto out_free;
        }
        a.status_wr = status[1];
        a.pid_wr = pidp[1];
        pid_t mid = fork();
        if (mid < 0) {
                r = cc_error_set(err, errno, "fork: %m");
                goto out_free;
        }
        if (mid == 0) {
                close(status[0]);
                close(pidp[0]);
                exec_child(&a);
        }
        status[1] = cc_close(status[1]);
        pidp[1] = cc_close(pidp[1]);
        pid_t pid;
        if ((r = read_pid(pidp[0], status[0], "exec", &pid, err)) < 0)
                goto out_free;
        if ((r = stdio_finish(&stdio, status[0], "exec", err)) < 0) {
                kill(pid, SIGKILL);
                goto out_free;
        }
        proc_take_stdio(p, &stdio, proc.terminal);
        pthread_mutex_lock(&rt->lock);
        register_pid_locked(rt, p, pid);
        c = find_container(rt, id);
        struct proc **ne = c ? realloc(c->execs, (c->n_execs + 1) * sizeof(*c->execs)) : NULL;
        if (ne) {
                c->execs = ne;
                c->execs[c->n_execs++] = p;
                p = NULL;
        }
        pthread_mutex_unlock(&rt->lock);
        if (p) {
                kill(pid, SIGKILL);
                r = cc_error_set(err, ENOENT, "container '%s' went away", id);
                goto out_free;
        }
        r = read_status(status[0], "exec", err);
        if (r == 1)
                r = 0;
        if (r >= 0)
                cc_log_info("exec started id=%s exec_id=%s pid=%d", id, exec_id, (int)pid);
out_free:
        if (busy) {
                pthread_mutex_lock(&rt->lock);
                busy->busy--;
                pthread_cond_broadcast(&rt->cond);
                pthread_mutex_unlock(&rt->lock);
        }
        if (p)
                proc_unref(rt, p);
        stdio_close(&stdio);
        cc_close(status[0]);
        cc_close(status[1]);
        cc_close(pidp[0]);
        cc_close(pidp[1]);
        agent_process_done(&proc);
        return r;
}

/* ---- process operations ----------------------------------------------------------------- */

int agent_process_signal(struct agent_runtime *rt, const char *id, const char *exec_id, int sig,
                         struct cc_error **err)
{
        if (sig <= 0 || sig >= NSIG)
                return cc_error_set(err, EINVAL, "invalid signal %d", sig);
        struct proc *p;
        int r = get_proc(rt, id, exec_id, &p, err);
        if (r < 0)
                return r;
        pthread_mutex_lock(&rt->lock);
        struct container *c = find_container(rt, id);
        bool all = cc_isempty(exec_id) && c && c->cg;
        bool running = p->pid > 0 && !p->exited;
        if (running && kill(p->pid, sig) < 0 && errno != ESRCH)
                r = cc_error_set(err, errno, "kill %d: %m", (int)p->pid);
        if (r >= 0 && all) {
                /* Every other process in the container's cgroup, as Kata does for an empty
                 * exec id; a frozen container is thawed by SIGKILL delivery rules only, so we
                 * leave pause state to the caller. */
                char path[PATH_MAX];
                snprintf(path, sizeof(path), "%s/cgroup.procs", c->cg->v2);
                FILE *f = fopen(path, "re");
                long pid;
                while (f && fscanf(f, "%ld", &pid) == 1)
                        if (pid > 0 && pid != p->pid)
                                (void)kill((pid_t)pid, sig);
                if (f)
                        fclose(f);
        }
        proc_unref_locked(p);
        pthread_mutex_unlock(&rt->lock);
        return r;
}

int agent_process_wait(struct agent_runtime *rt, const char *id, const char *exec_id, int *status,
                       struct cc_error **err)
{
        struct proc *p;
        int r = get_proc(rt, id, exec_id, &p, err);
        if (r < 0)
                return r;
        pthread_mutex_lock(&rt->lock);
        while (!p->exited && !rt->shutdown && p->pid > 0)
                pthread_cond_wait(&rt->cond, &rt->lock);
        if (p->exited)
                *status = p->status;
        else
                r = cc_error_set(err, ESHUTDOWN, "agent is shutting down");
        proc_unref_locked(p);
        pthread_mutex_unlock(&rt->lock);
        return r;
}

ssize_t agent_process_read(struct agent_runtime *rt, const char *id, const char *exec_id,
                           enum agent_stream which, void *buf, size_t len, struct cc_error **err)
{
        struct proc *p;
        int r = get_proc(rt, id, exec_id, &p, err);
        if (r < 0)
                return r;
        int fd = which == AGENT_STDERR ? p->stderr_fd : p->stdout_fd;
        ssize_t n;
        if (fd < 0) {
                n = cc_error_set(err, ENODATA, "no %s stream",
                                 which == AGENT_STDERR ? "stderr" : "stdout");
        } else {
                do
                        n = read(fd, buf, len);
                while (n < 0 && errno == EINTR);
                /* A pty master reads EIO once every slave is closed: that is its EOF. */
                if (n == 0 || (n < 0 && errno == EIO && p->terminal))
                        n = cc_error_set(err, ENODATA, "end of stream");
                else if (n < 0)
                        n = cc_error_set(err, errno, "read: %m");
        }
        proc_unref(rt, p);
        return n;
}

ssize_t agent_process_write(struct agent_runtime *rt, const char *id, const char *exec_id,
                            const void *buf, size_t len, struct cc_error **err)
{
        struct proc *p;
        int r = get_proc(rt, id, exec_id, &p, err);
        if (r < 0)
                return r;
        ssize_t total = 0;
        pthread_mutex_lock(&p->stdin_lock);
        if (p->stdin_fd < 0)
                total = cc_error_set(err, EPIPE, "stdin is closed");
        while (total >= 0 && (size_t)total < len) {
                ssize_t n = write(p->stdin_fd, (const char *)buf + total, len - (size_t)total);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        total = cc_error_set(err, errno, "write stdin: %m");
                        break;
                }
                total += n;
        }
        pthread_mutex_unlock(&p->stdin_lock);
        proc_unref(rt, p);
        return total;
}

int agent_process_close_stdin(struct agent_runtime *rt, const char *id, const char *exec_id,
                              struct cc_error **err)
{
        struct proc *p;
        int r = get_proc(rt, id, exec_id, &p, err);
        if (r < 0)
                return r;
        pthread_mutex_lock(&p->stdin_lock);
        if (p->terminal && p->stdin_fd >= 0) {
                /* A terminal has no separate stdin to close: send EOF (^D) the way a user would. */
                char eot = 4;
                (void)!write(p->stdin_fd, &eot, 1);
        }
        p->stdin_fd = cc_close(p->stdin_fd);
        pthread_mutex_unlock(&p->stdin_lock);
        proc_unref(rt, p);
        return 0;
}

int agent_process_resize(struct agent_runtime *rt, const char *id, const char *exec_id,
                         unsigned rows, unsigned cols, struct cc_error **err)
{
        struct proc *p;
        int r = get_proc(rt, id, exec_id, &p, err);
        if (r < 0)
                return r;
        if (!p->terminal || p->stdout_fd < 0)
                r = cc_error_set(err, EINVAL, "process has no terminal");
        else if (rows > 0xffff || cols > 0xffff)
                r = cc_error_set(err, EINVAL, "window size out of range");
        else {
                struct winsize ws = {.ws_row = (unsigned short)rows,
                                     .ws_col = (unsigned short)cols};
                if (ioctl(p->stdout_fd, TIOCSWINSZ, &ws) < 0)
                        r = cc_error_set(err, errno, "resize: %m");
        }
        proc_unref(rt, p);
        return r;
}

/* ---- container operations --------------------------------------------------------------- */

static bool wait_exit_locked(struct agent_runtime *rt, struct proc *p, int timeout_ms)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        while (!p->exited && p->pid > 0)
                if (pthread_cond_timedwait(&rt->cond, &rt->lock, &ts) != 0)
                        break;
        return p->exited || p->pid <= 0;
}

int agent_container_remove(struct agent_runtime *rt, const char *id, unsigned timeout_s,
                           struct cc_error **err)
{
        int r = agent_validate_id(id, "container id", err);
        if (r < 0)
                return r;
        pthread_mutex_lock(&rt->lock);
        struct container *c;
        if ((r = get_container_locked(rt, id, &c, err)) < 0) {
                pthread_mutex_unlock(&rt->lock);
                return r;
        }
        c->removing = true;
        while (c->busy)
                pthread_cond_wait(&rt->cond, &rt->lock);
        /* A container that never started: closing the start pipe makes its init exit. */
        c->start_fd = cc_close(c->start_fd);
        c->status_fd = cc_close(c->status_fd);
        if (c->init->pid > 0 && !c->init->exited && timeout_s > 0) {
                if (c->cg)
                        (void)agent_cgroup_freeze(c->cg, false, NULL);
                kill(c->init->pid, SIGTERM);
                wait_exit_locked(rt, c->init, (int)CC_MIN(timeout_s, 3600u) * 1000);
        }
        pthread_mutex_unlock(&rt->lock);
        /* Kill everything left (the cgroup holds every process of the container). */
        if (c->cg)
                (void)agent_cgroup_kill(c->cg);
        pthread_mutex_lock(&rt->lock);
        if (c->init->pid > 0 && !c->init->exited)
                kill(c->init->pid, SIGKILL);
        for (size_t i = 0; i < c->n_execs; i++)
                if (c->execs[i]->pid > 0 && !c->execs[i]->exited)
                        kill(c->execs[i]->pid, SIGKILL);
        wait_exit_locked(rt, c->init, 10000);
        for (size_t i = 0; i < c->n_execs; i++)
                wait_exit_locked(rt, c->execs[i], 2000);
        for (size_t i = 0; i < rt->n_containers; i++)
                if (rt->containers[i] == c) {
                        rt->containers[i] = rt->containers[--rt->n_containers];
                        break;
                }
        if (c->oom_wd >= 0)
                inotify_rm_watch(rt->inotify_fd, c->oom_wd);
        check_oom_locked(rt, c);
        proc_unref_locked(c->init);
        for (size_t i = 0; i < c->n_execs; i++)
                proc_unref_locked(c->execs[i]);
        pthread_mutex_unlock(&rt->lock);
        if (c->cg && (r = agent_cgroup_destroy(c->cg)) < 0)
                cc_error_set(err, -r, "remove cgroup of '%s': %s", id, strerror(-r));
        c->cg = NULL;
        container_free(c);
        cc_log_info("container removed id=%s", id);
        return r < 0 ? r : 0;
}

static int with_cgroup(struct agent_runtime *rt, const char *id, struct container **ret,
                       struct cc_error **err)
{
        int r = agent_validate_id(id, "container id", err);
        if (r < 0)
                return r;
        if ((r = get_container_locked(rt, id, ret, err)) < 0)
                return r;
        if (!(*ret)->cg)
                return cc_error_set(err, EOPNOTSUPP, "container '%s' has no cgroup", id);
        return 0;
}

int agent_container_pause(struct agent_runtime *rt, const char *id, bool pause,
                          struct cc_error **err)
{
        pthread_mutex_lock(&rt->lock);
        struct container *c;
        int r = with_cgroup(rt, id, &c, err);
        if (r >= 0 && pause && c->state != STATE_RUNNING)
                r = cc_error_set(err, EINVAL, "container '%s' is not running", id);
        else if (r >= 0 && !pause && c->state != STATE_PAUSED)
                r = cc_error_set(err, EINVAL, "container '%s' is not paused", id);
        if (r >= 0 && (r = agent_cgroup_freeze(c->cg, pause, err)) >= 0)
                c->state = pause ? STATE_PAUSED : STATE_RUNNING;
        pthread_mutex_unlock(&rt->lock);
        return r;
}

int agent_container_update(struct agent_runtime *rt, const char *id,
                           const struct agent_resources *res, struct cc_error **err)
{
        pthread_mutex_lock(&rt->lock);
        struct container *c;
        int r = with_cgroup(rt, id, &c, err);
        if (r >= 0)
                r = agent_cgroup_apply(c->cg, res, err);
        pthread_mutex_unlock(&rt->lock);
        return r;
}

int agent_container_stats(struct agent_runtime *rt, const char *id, struct agent_cgroup_stats *st,
                          struct cc_error **err)
{
        pthread_mutex_lock(&rt->lock);
        struct container *c;
        int r = with_cgroup(rt, id, &c, err);
        if (r >= 0) {
                r = agent_cgroup_stats(c->cg, st);
                check_oom_locked(rt, c);
        }
        pthread_mutex_unlock(&rt->lock);
        return r;
}

void agent_runtime_remove_all(struct agent_runtime *rt)
{
        for (;;) {
                pthread_mutex_lock(&rt->lock);
                char *id = NULL;
                for (size_t i = 0; i < rt->n_containers && !id; i++)
                        if (!rt->containers[i]->removing)
                                id = strdup(rt->containers[i]->id);
                pthread_mutex_unlock(&rt->lock);
                if (!id)
                        break;
                (void)agent_container_remove(rt, id, 0, NULL);
                free(id);
        }
}

void agent_runtime_shutdown(struct agent_runtime *rt)
{
        agent_runtime_remove_all(rt);
        pthread_mutex_lock(&rt->lock);
        rt->shutdown = true;
        pthread_cond_broadcast(&rt->cond);
        pthread_mutex_unlock(&rt->lock);
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
