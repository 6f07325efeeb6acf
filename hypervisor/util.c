/* Process, socket, argv and file helpers shared by the backends. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/error.h"
#include "cc/log.h"

#include "hypervisor/hv-internal.h"

void hv__argv_add(struct hv_argv *a, const char *s)
{
        if (a->failed)
                return;
        if (a->n + 2 > a->cap) {
                size_t cap = a->cap ? a->cap * 2 : 32;
                char **v = realloc(a->v, cap * sizeof(*v));
                if (!v) {
                        a->failed = true;
                        return;
                }
                a->v = v;
                a->cap = cap;
        }
        char *copy = strdup(s);
        if (!copy) {
                a->failed = true;
                return;
        }
        a->v[a->n++] = copy;
        a->v[a->n] = NULL;
}

void hv__argv_addf(struct hv_argv *a, const char *fmt, ...)
{
        if (a->failed)
                return;
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *s = NULL;
        int r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0) {
                s = NULL;
                a->failed = true;
                return;
        }
        hv__argv_add(a, s);
}

void hv__argv_done(struct hv_argv *a)
{
        cc_strv_free(a->v);
        *a = (struct hv_argv){0};
}

int64_t hv__now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t hv__deadline(int timeout_ms)
{
        return timeout_ms < 0 ? -1 : hv__now_ms() + timeout_ms;
}

int hv__remaining(int64_t deadline)
{
        if (deadline < 0)
                return -1;
        int64_t left = deadline - hv__now_ms();
        return left < 0 ? 0 : (int)CC_MIN(left, (int64_t)1 << 30);
}

static int pidfd_open_(pid_t pid)
{
        return (int)syscall(SYS_pidfd_open, pid, 0);
}

/*
 * fork + exec rather than posix_spawn: the child must move the inherited fds to 3, 4, ... in
 * order (QEMU is told "fd=3"), which needs dup2 on a copy when a source already sits on a
 * target number. Only async-signal-safe calls run between fork and exec.
 */
int hv__proc_spawn(struct hv_proc *p, char *const argv[], const int *fds, size_t n_fds,
                   const char *log_path, struct cc_error **err)
{
        _cleanup_close_ int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null_fd < 0)
                return cc_error_set(err, errno, "open /dev/null: %m");
        _cleanup_close_ int log_fd = -1;
        if (log_path) {
                log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
                if (log_fd < 0)
                        return cc_error_set(err, errno, "open %s: %m", log_path);
        } else {
                log_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (log_fd < 0)
                        return cc_error_set(err, errno, "open /dev/null: %m");
        }
        if (n_fds > 64)
                return cc_error_set(err, E2BIG, "too many fds for the VMM");
        /* Resolve the program before fork: the child of a multi-threaded caller may only make
         * async-signal-safe calls, and a PATH search is not guaranteed to be one. */
        _cleanup_free_ char *prog = hv__resolve_program(argv[0]);
        if (!prog)
                return cc_error_set(err, ENOENT, "%s: not found (PATH)", argv[0]);
        /* High copies of the fds so that dup2 to 3+i never overwrites a source. */
        int high[64];
        size_t made = 0;
        int r = 0;
        for (; made < n_fds; made++) {
                high[made] = fcntl(fds[made], F_DUPFD_CLOEXEC, 100);
                if (high[made] < 0) {
                        r = cc_error_set(err, errno, "dup fd %d: %m", fds[made]);
                        break;
                }
        }
        pid_t pid = -1;
        if (r == 0) {
                pid = fork();
                if (pid < 0)
                        r = cc_error_set(err, errno, "fork: %m");
        }
        if (pid == 0) {
                /* Child. */
                setpgid(0, 0);
                sigset_t all;
                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                if (dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0)
                        _exit(127);
                for (size_t i = 0; i < n_fds; i++)
                        if (dup2(high[i], 3 + (int)i) < 0)
                                _exit(127);
                execv(prog, argv);
                static const char msg[] = "hv: exec of the VMM failed\n";
                ssize_t w = write(2, msg, sizeof(msg) - 1);
                (void)w;
                _exit(127);
        }
        for (size_t i = 0; i < made; i++)
                close(high[i]);
        if (r < 0)
                return r;
        p->pid = pid;
        p->reaped = false;
        p->exit = (struct hv_exit){.code = -1};
        p->pidfd = pidfd_open_(pid);
        if (p->pidfd < 0) {
                r = -errno;
                hv__proc_kill(p);
                return cc_error_set(err, -r, "pidfd_open: %s", strerror(-r));
        }
        cc_log_debug("hv: started %s pid %d", argv[0], (int)pid);
        return 0;
}

static bool reap_nohang(struct hv_proc *p)
{
        int status;
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == 0)
                return false;
        if (r < 0) {
                /* ECHILD: someone else reaped it; the status is lost. */
                p->exit = (struct hv_exit){.code = -1, .signal = 0};
        } else if (WIFEXITED(status)) {
                p->exit = (struct hv_exit){.code = WEXITSTATUS(status)};
        } else if (WIFSIGNALED(status)) {
                p->exit = (struct hv_exit){.code = -1, .signal = WTERMSIG(status)};
        } else {
                return false; /* stopped/continued: not an exit */
        }
        p->reaped = true;
        cc_log_debug("hv: pid %d exited code=%d signal=%d", (int)p->pid, p->exit.code,
                     p->exit.signal);
        return true;
}

int hv__proc_wait(struct hv_proc *p, int timeout_ms)
{
        if (p->pid <= 0)
                return -ESRCH;
        if (p->reaped)
                return 0;
        int64_t deadline = hv__deadline(timeout_ms);
        for (;;) {
                if (reap_nohang(p))
                        return 0;
                struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
                int left = hv__remaining(deadline);
                if (left == 0)
                        return -ETIMEDOUT;
                int r = poll(&pfd, 1, left);
                if (r < 0 && errno != EINTR)
                        return -errno;
        }
}

bool hv__proc_running(const struct hv_proc *p)
{
        return p->pid > 0 && !p->reaped;
}

void hv__proc_kill(struct hv_proc *p)
{
        if (!hv__proc_running(p))
                return;
        if (p->pidfd >= 0)
                syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
        else
                kill(p->pid, SIGKILL);
        hv__proc_wait(p, -1);
}

void hv__proc_done(struct hv_proc *p)
{
        hv__proc_kill(p);
        p->pidfd = cc_close(p->pidfd);
}

static int unix_addr(const char *path, struct sockaddr_un *sa, struct cc_error **err)
{
        *sa = (struct sockaddr_un){.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa->sun_path))
                return cc_error_set(err, ENAMETOOLONG, "socket path too long (%zu > %zu): %s",
                                    strlen(path), sizeof(sa->sun_path) - 1, path);
        strcpy(sa->sun_path, path);
        return 0;
}

int hv__unix_listen(const char *path, struct cc_error **err)
{
        struct sockaddr_un sa;
        int r = unix_addr(path, &sa, err);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return cc_error_set(err, errno, "socket: %m");
        hv__unlink(path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return cc_error_set(err, errno, "bind %s: %m", path);
        if (listen(fd, 8) < 0)
                return cc_error_set(err, errno, "listen %s: %m", path);
        return TAKE_FD(fd);
}

int hv__unix_connect(const char *path, struct cc_error **err)
{
        struct sockaddr_un sa;
        int r = unix_addr(path, &sa, err);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return cc_error_set(err, errno, "socket: %m");
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return cc_error_set(err, errno, "connect %s: %m", path);
        return TAKE_FD(fd);
}

char *hv__file_last_line(const char *path)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        char buf[4096];
        ssize_t n = 0;
        if (fd >= 0) {
                off_t end = lseek(fd, 0, SEEK_END);
                off_t start = end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0;
                n = pread(fd, buf, sizeof(buf) - 1, start);
                if (n < 0)
                        n = 0;
        }
        buf[n] = 0;
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
                buf[--n] = 0;
        char *nl = strrchr(buf, '\n');
        return strdup(nl ? nl + 1 : buf);
}

char *hv__run_first_line(char *const argv[])
{
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0)
                return NULL;
        struct hv_proc p = HV_PROC_INIT;
        _cleanup_free_ char *dev = NULL;
        if (asprintf(&dev, "/proc/self/fd/%d", pfd[1]) < 0) {
                close(pfd[0]);
                close(pfd[1]);
                return NULL;
        }
        int r = hv__proc_spawn(&p, argv, NULL, 0, dev, NULL);
        close(pfd[1]);
        if (r < 0) {
                close(pfd[0]);
                return NULL;
        }
        char buf[512];
        size_t len = 0;
        for (;;) {
                struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
                if (poll(&pf, 1, 5000) <= 0)
                        break;
                ssize_t n = read(pfd[0], buf + len, sizeof(buf) - 1 - len);
                if (n <= 0)
                        break;
                len += (size_t)n;
                if (memchr(buf, '\n', len) || len == sizeof(buf) - 1)
                        break;
        }
        close(pfd[0]);
        if (hv__proc_wait(&p, 5000) < 0)
                hv__proc_kill(&p);
        hv__proc_done(&p);
        buf[len] = 0;
        char *nl = strchr(buf, '\n');
        if (nl)
                *nl = 0;
        if (p.exit.code != 0 || !buf[0])
                return NULL;
        return strdup(buf);
}

char *hv__path(const char *dir, const char *name)
{
        char *p = NULL;
        if (asprintf(&p, "%s/%s", dir, name) < 0)
                return NULL;
        return p;
}

void hv__unlink(const char *path)
{
        if (path && unlink(path) < 0 && errno != ENOENT)
                cc_log_debug("hv: unlink %s: %m", path);
}

char *hv__resolve_program(const char *name)
{
        if (strchr(name, '/'))
                return access(name, X_OK) == 0 ? strdup(name) : NULL;
        const char *env = getenv("PATH");
        _cleanup_free_ char *copy = strdup(env ? env : "/usr/local/bin:/usr/bin:/bin");
        char *save = NULL;
        for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d;
             d = strtok_r(NULL, ":", &save)) {
                char *p = hv__path(d, name);
                if (p && access(p, X_OK) == 0)
                        return p;
                free(p);
        }
        return NULL;
}

bool hv__find_program(const char *name)
{
        _cleanup_free_ char *p = hv__resolve_program(name);
        return p != NULL;
}

int hv__disk_kind(const char *path, struct cc_error **err)
{
        struct stat st;
        if (stat(path, &st) < 0)
                return cc_error_set(err, errno, "disk %s: %m", path);
        if (S_ISBLK(st.st_mode))
                return 1;
        if (S_ISREG(st.st_mode))
                return 0;
        return cc_error_set(err, EINVAL, "disk %s is neither a block device nor a regular file",
                            path);
}
