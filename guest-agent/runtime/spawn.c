/*
 * The one spawn path of a container process, for a container's init and for an exec alike
 * (the two forks of runtime.h), and the sandbox's pause process.
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

int agent__read_status(int fd, const char *what, struct cc_error **err)
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

/* The pipes of one spawn; the child's ends and the agent's. */
struct spawn_fds {
        struct stdio_fds stdio;
        int start[2], status[2], pid[2]; /* start only for an init */
};

static void spawn_fds_close(struct spawn_fds *f)
{
        agent__stdio_close(&f->stdio);
        for (size_t i = 0; i < 2; i++) {
                f->start[i] = cc_close(f->start[i]);
                f->status[i] = cc_close(f->status[i]);
                f->pid[i] = cc_close(f->pid[i]);
        }
}

int agent__unshare_flags(unsigned namespaces)
{
        int flags = CLONE_NEWNS;
        if (namespaces & AGENT_NS_PID)
                flags |= CLONE_NEWPID;
        if (namespaces & AGENT_NS_UTS)
                flags |= CLONE_NEWUTS;
        if (namespaces & AGENT_NS_IPC)
                flags |= CLONE_NEWIPC;
        if (namespaces & AGENT_NS_CGROUP)
                flags |= CLONE_NEWCGROUP;
        return flags;
}

/* Joins req->join's namespaces of req->ns_pid, mount last (after it, /proc is the
 * container's), then creates req->unshare's. */
static void child_namespaces(const struct spawn_request *req, int status_wr)
{
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
                if (!(req->join & order[i].flag))
                        continue;
                char path[64];
                snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)req->ns_pid, order[i].name);
                fds[i] = open(path, O_RDONLY | O_CLOEXEC);
                if (fds[i] < 0)
                        child_die(status_wr, "open %s: %s", path, strerror(errno));
        }
        for (size_t i = 0; i < CC_ARRAY_SIZE(order); i++)
                if (fds[i] >= 0 && setns(fds[i], order[i].nstype) < 0)
                        child_die(status_wr, "setns %s: %s", order[i].name, strerror(errno));
        if (req->unshare && unshare(req->unshare) < 0)
                child_die(status_wr, "unshare: %s", strerror(errno));
}

static void pause_exit(int sig)
{
        _exit(sig == SIGTERM ? 0 : 128 + sig);
}

static void pause_reap(int sig)
{
        (void)sig;
        int saved = errno;
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
        errno = saved;
}

/* A pause process of the agent's, no image: the holder of the pod's namespaces (pod.c), or a
 * sandbox container. As the init of the pod's pid namespace it reaps the orphans there, and it
 * ends on SIGTERM (an init gets only the signals it handles). */
static _noreturn_ void pause_main(void)
{
        close_other_fds(NULL, 0);
        (void)prctl(PR_SET_NAME, "pause", 0, 0, 0);
        int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        for (int i = 0; fd >= 0 && i < 3; i++)
                dup2(fd, i);
        struct sigaction sa = {.sa_handler = pause_exit};
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sa = (struct sigaction){.sa_handler = pause_reap, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
        sigaction(SIGCHLD, &sa, NULL);
        for (;;)
                pause();
}

/* The process itself, in its namespaces: rootfs (an init), stdio, credentials, and for an
 * init the "ready" report and the wait for StartContainer, then execve. */
static _noreturn_ void spawn_grandchild(const struct spawn_request *req, const struct spawn_fds *f)
{
        struct agent_child_error e = {{0}};
        const struct agent_spec *s = req->spec;
        int status_wr = f->status[1], r;
        if (s && (req->unshare & CLONE_NEWUTS) && s->hostname &&
            sethostname(s->hostname, strlen(s->hostname)) < 0)
                child_die(status_wr, "sethostname: %s", strerror(errno));
        if (req->pause)
                pause_main();
        if (s && agent__rootfs_setup(s, req->rootfd, req->bind_fds, &e) < 0)
                child_die(status_wr, "rootfs: %s", e.msg);
        if ((r = agent__stdio_child(&f->stdio)) < 0)
                child_die(status_wr, "stdio: %s", strerror(-r));
        if (agent__process_setup(req->proc, req->seccomp, &e) < 0)
                child_die(status_wr, "process: %s", e.msg);
        if (f->start[0] >= 0) {
                char ready = REC_READY;
                if (write(status_wr, &ready, 1) != 1)
                        _exit(127);
                /* Wait for StartContainer. EOF (the agent closed the pipe without a byte)
                 * means the container is being removed before it started. */
                char go;
                ssize_t n;
                do
                        n = read(f->start[0], &go, 1);
                while (n < 0 && errno == EINTR);
                if (n != 1)
                        _exit(127);
        }
        extern char **environ;
        environ = req->proc->env ? req->proc->env : (char **)agent_default_env;
        execvp(req->proc->args[0], req->proc->args);
        child_die(status_wr, "exec '%s': %s", req->proc->args[0], strerror(errno));
}

/* The intermediate child: keeps only its pipes, joins the cgroup and the namespaces, forks
 * the process (so that it lands in a new or joined pid namespace), reports its pid, exits. */
static _noreturn_ void spawn_child(const struct spawn_request *req, struct spawn_fds *f)
{
        reset_signals();
        f->start[1] = cc_close(f->start[1]);
        f->status[0] = cc_close(f->status[0]);
        f->pid[0] = cc_close(f->pid[0]);
        {
                int keep[AGENT_MAX_MOUNTS + 12];
                size_t n = 0;
                const int fds[] = {f->stdio.in, f->stdio.out, f->stdio.err, f->stdio.tty,
                                   f->start[0], f->status[1], f->pid[1],    req->rootfd};
                for (size_t i = 0; i < CC_ARRAY_SIZE(fds); i++)
                        if (fds[i] >= 0)
                                keep[n++] = fds[i];
                for (size_t i = 0; req->bind_fds && i < req->spec->n_mounts; i++)
                        if (req->bind_fds[i] >= 0)
                                keep[n++] = req->bind_fds[i];
                close_other_fds(keep, n);
        }
        if (req->cg && agent_cgroup_enter_self(req->cg) < 0)
                child_die(f->status[1], "join cgroup: %s", strerror(errno));
        child_namespaces(req, f->status[1]);
        pid_t pid = fork();
        if (pid < 0)
                child_die(f->status[1], "fork: %s", strerror(errno));
        if (pid == 0)
                spawn_grandchild(req, f);
        int32_t v = pid;
        _exit(write(f->pid[1], &v, sizeof(v)) == sizeof(v) ? 0 : 1);
}

/* Reads the process's pid from the intermediate child; -errno with *err from the status
 * pipe when the intermediate failed before forking. */
static int read_pid(const struct spawn_fds *f, const char *what, pid_t *ret, struct cc_error **err)
{
        int32_t v;
        ssize_t n;
        do
                n = read(f->pid[0], &v, sizeof(v));
        while (n < 0 && errno == EINTR);
        if (n == sizeof(v) && v > 0) {
                *ret = v;
                return 0;
        }
        int r = agent__read_status(f->status[0], what, err);
        return r < 0 ? r : cc_error_set(err, EIO, "%s: child failed before reporting", what);
}

/* After the fork: the pid, registered; the terminal; the process's first report (an init:
 * "ready", an exec: its execve). */
static int spawn_parent(struct agent_runtime *rt, const struct spawn_request *req,
                        struct spawn_fds *f, struct proc *p, struct cc_error **err)
{
        const char *what = req->what;
        f->start[0] = cc_close(f->start[0]);
        f->status[1] = cc_close(f->status[1]);
        f->pid[1] = cc_close(f->pid[1]);
        pid_t pid = 0;
        int r = read_pid(f, what, &pid, err);
        if (r < 0)
                return r;
        pthread_mutex_lock(&rt->lock);
        agent__register_pid_locked(rt, p, pid);
        pthread_mutex_unlock(&rt->lock);
        if ((r = agent__stdio_finish(&f->stdio, f->status[0], what, err)) < 0) {
                kill(pid, SIGKILL);
                return r;
        }
        /* Close our copies of the child's stdio ends so EOF arrives when the child exits. */
        agent__proc_take_stdio(p, &f->stdio, req->proc->terminal);
        r = agent__read_status(f->status[0], what, err);
        if (req->spec && !req->pause && r == 1)
                r = cc_error_set(err, EIO, "%s: container init exited during setup", what);
        if (r < 0) {
                kill(pid, SIGKILL);
                return r;
        }
        return 0;
}

int agent__spawn(struct agent_runtime *rt, const struct spawn_request *req, struct proc *p,
                 int *start_fd, int *status_fd, struct cc_error **err)
{
        struct spawn_fds f = {STDIO_FDS_INIT, {-1, -1}, {-1, -1}, {-1, -1}};
        int r = req->pause ? 0 : agent__stdio_prepare(req->proc, &f.stdio, err);
        if (r < 0)
                return r;
        bool init = req->spec && !req->pause;
        if ((init && pipe2(f.start, O_CLOEXEC) < 0) || pipe2(f.status, O_CLOEXEC) < 0 ||
            pipe2(f.pid, O_CLOEXEC) < 0) {
                r = cc_error_set(err, errno, "pipe: %m");
                spawn_fds_close(&f);
                return r;
        }
        pid_t mid = fork();
        if (mid < 0)
                r = cc_error_set(err, errno, "fork: %m");
        else if (mid == 0)
                spawn_child(req, &f);
        else
                r = spawn_parent(rt, req, &f, p, err);
        if (r >= 0 && init) {
                *start_fd = TAKE_FD(f.start[1]);
                *status_fd = TAKE_FD(f.status[0]);
        }
        spawn_fds_close(&f);
        return r;
}
