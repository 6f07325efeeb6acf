/*
 * A process's stdio: pipes, or a terminal the process allocates from its own devpts and
 * sends back; ReadStdout/ReadStderr, WriteStdin, CloseStdin and TtyWinResize on them.
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

void agent__stdio_close(struct stdio_fds *s)
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
int agent__stdio_prepare(const struct agent_process *p, struct stdio_fds *s, struct cc_error **err)
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
                agent__stdio_close(s);
                return cc_error_set(err, errno, "pipe: %m");
        }
        s->p_out = b[0], s->out = b[1];
        if (pipe2(c, O_CLOEXEC) < 0) {
                agent__stdio_close(s);
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
int agent__stdio_child(const struct stdio_fds *s)
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
int agent__stdio_finish(struct stdio_fds *s, int status_rd, const char *what, struct cc_error **err)
{
        if (s->tty < 0)
                return 0;
        s->tty = cc_close(s->tty);
        int m = recv_fd(s->p_out);
        if (m < 0) {
                int r = agent__read_status(status_rd, what, err);
                return r < 0 ? r : cc_error_set(err, -m, "%s: no terminal from the child", what);
        }
        cc_close(s->p_out);
        s->p_out = m;
        s->p_in = fcntl(m, F_DUPFD_CLOEXEC, 3);
        return s->p_in < 0 ? cc_error_set(err, errno, "dup pty: %m") : 0;
}

void agent__proc_take_stdio(struct proc *p, struct stdio_fds *s, bool terminal)
{
        p->terminal = terminal;
        p->stdin_fd = TAKE_FD(s->p_in);
        p->stdout_fd = TAKE_FD(s->p_out);
        p->stderr_fd = TAKE_FD(s->p_err);
        agent__stdio_close(s);
}

ssize_t agent_process_read(struct agent_runtime *rt, const char *id, const char *exec_id,
                           enum agent_stream which, void *buf, size_t len, struct cc_error **err)
{
        struct proc *p;
        int r = agent__get_proc(rt, id, exec_id, &p, err);
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
        agent__proc_unref(rt, p);
        return n;
}

ssize_t agent_process_write(struct agent_runtime *rt, const char *id, const char *exec_id,
                            const void *buf, size_t len, struct cc_error **err)
{
        struct proc *p;
        int r = agent__get_proc(rt, id, exec_id, &p, err);
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
        agent__proc_unref(rt, p);
        return total;
}

int agent_process_close_stdin(struct agent_runtime *rt, const char *id, const char *exec_id,
                              struct cc_error **err)
{
        struct proc *p;
        int r = agent__get_proc(rt, id, exec_id, &p, err);
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
        agent__proc_unref(rt, p);
        return 0;
}

int agent_process_resize(struct agent_runtime *rt, const char *id, const char *exec_id,
                         unsigned rows, unsigned cols, struct cc_error **err)
{
        struct proc *p;
        int r = agent__get_proc(rt, id, exec_id, &p, err);
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
        agent__proc_unref(rt, p);
        return r;
}
