/*
 * Kata's debug console: with `agent.debug_console` on the kernel command line (the shim puts it
 * there only when the handler's configuration says debug_console_enabled = true; in a TEE the
 * command line is measured, so a verifier sees it), the agent serves a root shell (/bin/sh of
 * the image: busybox in images built with --debug-shell) on a pseudo-terminal, in two places:
 *
 *  - vsock port agent.debug_console_vport (1026), as Kata does: every connection is a session
 *    of its own (a new shell on a new pty), ended by the shell's exit (the agent closes the
 *    connection) or by the host closing it. VMs with vhost-vsock (QEMU) or hybrid vsock (Cloud
 *    Hypervisor) use it.
 *  - the virtio-serial port AGENT_DEBUG_CONSOLE_PORT, whose host side is a unix socket in the
 *    VM's run directory, for VMs whose agent channel is virtio-serial (no vhost-vsock on the
 *    host). A session starts with the first byte the host writes; a virtio-serial port cannot
 *    be hung up from the guest, so the end of a session is told by AGENT_DEBUG_CONSOLE_END
 *    (written on vsock too, before the close). One session at a time.
 *
 * `cc-runtime exec` finds the address in the shim's run directory. The window size travels in
 * the host's byte stream as AGENT_DEBUG_CONSOLE_WINSIZE (an APC string, which no keyboard
 * sends; Kata's own client never sends one, so its sessions are plain relays as in Kata); the
 * agent takes it out and sets the pty's size, which signals SIGWINCH to the shell's foreground
 * job. When a session ends every process of the shell's session is killed (its background
 * jobs too, found by session id in /proc), so nothing is left.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/log.h"

#include "guest-agent/agent.h"

static int write_all(int fd, const char *buf, size_t n)
{
        size_t done = 0;
        while (done < n) {
                ssize_t w = write(fd, buf + done, n - done);
                if (w > 0) {
                        done += (size_t)w;
                        continue;
                }
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && errno == EAGAIN) {
                        struct pollfd p = {.fd = fd, .events = POLLOUT};
                        if (poll(&p, 1, 5000) <= 0)
                                return -EAGAIN;
                        continue;
                }
                return w < 0 ? -errno : -EIO;
        }
        return 0;
}

/* The shell on a new pty; its session leader is the returned pid. Only async-signal-safe calls
 * between fork and exec (the agent has threads). */
static pid_t spawn_shell(int *master_ret)
{
        struct winsize ws = {.ws_row = 24, .ws_col = 80};
        int m = -1, s = -1;
        if (openpty(&m, &s, NULL, NULL, &ws) < 0)
                return -errno;
        fcntl(m, F_SETFD, FD_CLOEXEC);
        pid_t pid = fork();
        if (pid < 0) {
                int e = errno;
                close(m);
                close(s);
                return -e;
        }
        if (pid == 0) {
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                signal(SIGPIPE, SIG_DFL);
                setsid();
                ioctl(s, TIOCSCTTY, 0);
                dup2(s, 0);
                dup2(s, 1);
                dup2(s, 2);
                close_range(3, ~0u, 0);
                char *argv[] = {"/bin/sh", "-i", NULL};
                char *envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                "HOME=/root", "TERM=vt100", "PS1=cc-debug# ", NULL};
                execve(argv[0], argv, envp);
                static const char msg[] = "cc-agent debug console: this guest image has no "
                                          "/bin/sh (build it with --debug-shell)\r\n";
                (void)!write(1, msg, sizeof(msg) - 1);
                _exit(127);
        }
        close(s);
        *master_ret = m;
        return pid;
}

/* Kills every process of the session `sid` (the shell and its jobs, which job control puts in
 * process groups of their own); a few passes for what forks meanwhile. */
static void kill_session(pid_t sid)
{
        for (int pass = 0; pass < 5; pass++) {
                _cleanup_closedir_ DIR *d = opendir("/proc");
                if (!d)
                        return;
                int found = 0;
                struct dirent *de;
                while ((de = readdir(d))) {
                        char *end;
                        long pid = strtol(de->d_name, &end, 10);
                        if (*end || pid <= 1)
                                continue;
                        char path[64], buf[512];
                        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
                        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
                        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
                        if (n <= 0)
                                continue;
                        buf[n] = 0;
                        /* "pid (comm) state ppid pgrp session ...": comm may hold spaces. */
                        char *rp = strrchr(buf, ')');
                        int ppid, pgrp, session;
                        char state;
                        if (!rp ||
                            sscanf(rp + 1, " %c %d %d %d", &state, &ppid, &pgrp, &session) != 4)
                                continue;
                        if (session == sid && state != 'Z') {
                                kill((pid_t)pid, SIGKILL);
                                found++;
                        }
                }
                if (!found)
                        return;
                usleep(20 * 1000);
        }
}

/*
 * Whether s[0..n) is AGENT_DEBUG_CONSOLE_WINSIZE "<rows>;<cols>" ESC '\': 1 complete (ws set),
 * 0 a prefix of one, -1 not one. At most 5 digits each, neither 0.
 */
static int winsize_check(const char *s, size_t n, struct winsize *ws)
{
        static const char prefix[] = AGENT_DEBUG_CONSOLE_WINSIZE;
        size_t plen = sizeof(prefix) - 1;
        if (memcmp(s, prefix, n < plen ? n : plen) != 0)
                return -1;
        unsigned v[2] = {0, 0}, field = 0, digits = 0;
        for (size_t i = plen; i < n; i++) {
                char c = s[i];
                if (field < 2 && c >= '0' && c <= '9' && digits < 5) {
                        v[field] = v[field] * 10 + (unsigned)(c - '0');
                        digits++;
                } else if (field == 0 && c == ';' && digits) {
                        field = 1;
                        digits = 0;
                } else if (field == 1 && c == '\033' && digits) {
                        field = 2;
                } else if (field == 2 && c == '\\' && i == n - 1) {
                        if (!v[0] || !v[1] || v[0] > 0xffff || v[1] > 0xffff)
                                return -1;
                        *ws = (struct winsize){.ws_row = (unsigned short)v[0],
                                               .ws_col = (unsigned short)v[1]};
                        return 1;
                } else {
                        return -1;
                }
        }
        return 0;
}

size_t agent_console_filter(struct agent_console_filter *f, const char *in, size_t n, char *out,
                            struct winsize *ws, bool *resized)
{
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
                char c = in[i];
                if (f->n_held == 0 && c != '\033') {
                        out[o++] = c;
                        continue;
                }
                /* winsize_check() settles by the longest sequence (26 bytes): held never
                 * overflows. */
                f->held[f->n_held++] = c;
                int r = winsize_check(f->held, f->n_held, ws);
                if (r == 1) {
                        *resized = true;
                        f->n_held = 0;
                } else if (r < 0) {
                        /* Not ours: what was held goes to the shell as typed; the last byte
                         * may begin a sequence of its own. */
                        f->n_held--;
                        memcpy(out + o, f->held, f->n_held);
                        o += f->n_held;
                        f->n_held = 0;
                        if (c == '\033')
                                f->held[f->n_held++] = c;
                        else
                                out[o++] = c;
                }
        }
        return o;
}

size_t agent_console_filter_flush(struct agent_console_filter *f, char *out)
{
        size_t n = f->n_held;
        memcpy(out, f->held, n);
        f->n_held = 0;
        return n;
}

/* Host bytes to the shell's pty, a window size taken out on the way. */
static int host_to_pty(struct agent_console_filter *f, const char *buf, size_t n, int m)
{
        char out[4096 + sizeof(f->held)];
        struct winsize ws;
        bool resized = false;
        size_t o = agent_console_filter(f, buf, n, out, &ws, &resized);
        /* The pty's size; the kernel signals SIGWINCH to its foreground process group. */
        if (resized && ioctl(m, TIOCSWINSZ, &ws) < 0)
                cc_log_errno(CC_LOG_DEBUG, errno, "debug console: TIOCSWINSZ");
        return o ? write_all(m, out, o) : 0;
}

/*
 * One session on fd (the serial port, or a connection; non-blocking): relays fd <-> pty until
 * the shell exits or the host leaves. On the serial port, `serial` drops the host's bytes when
 * no shell can start (else they would start a session again at once).
 */
void agent_debug_console_session(int fd, bool serial)
{
        int m = -1;
        pid_t pid = spawn_shell(&m);
        if (pid < 0) {
                char drop[4096];
                while (serial && read(fd, drop, sizeof(drop)) > 0)
                        ;
                char msg[160];
                snprintf(msg, sizeof(msg), "cc-agent debug console: cannot start a shell: %s%s",
                         strerror((int)-pid), AGENT_DEBUG_CONSOLE_END);
                (void)write_all(fd, msg, strlen(msg));
                cc_log_errno(CC_LOG_WARN, (int)-pid, "debug console: cannot start a shell");
                return;
        }
        cc_log_info("debug console: session started (shell pid %d)", (int)pid);
        /* The shell's end: its pidfd (the agent's reaper may collect it first, so no
         * waitpid here); the pty may stay open in its background jobs. */
        int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
        struct agent_console_filter filter = {0};
        char buf[4096];
        bool host_left = false;
        for (;;) {
                struct pollfd p[3] = {{.fd = fd, .events = POLLIN},
                                      {.fd = m, .events = POLLIN},
                                      {.fd = pidfd, .events = POLLIN}};
                /* A lone ESC (a key of its own) is not held back for long. */
                int r = poll(p, 3, filter.n_held ? 100 : -1);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (r == 0) {
                        size_t n = agent_console_filter_flush(&filter, buf);
                        if (write_all(m, buf, n) < 0)
                                break;
                        continue;
                }
                if (p[0].revents & POLLIN) {
                        ssize_t n = read(fd, buf, sizeof(buf));
                        if (n == 0) {
                                host_left = true;
                                break;
                        }
                        if (n > 0 && host_to_pty(&filter, buf, (size_t)n, m) < 0)
                                break;
                } else if (p[0].revents & (POLLHUP | POLLERR)) {
                        host_left = true;
                        break;
                }
                if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                        /* EIO once every holder of the pty's other side is gone. */
                        ssize_t n = read(m, buf, sizeof(buf));
                        if (n <= 0 && !(n < 0 && (errno == EINTR || errno == EAGAIN)))
                                break;
                        if (n > 0 && write_all(fd, buf, (size_t)n) < 0) {
                                host_left = true;
                                break;
                        }
                }
                if (p[2].revents) {
                        /* The shell exited: what it wrote last still goes out. */
                        ssize_t n;
                        while ((n = read(m, buf, sizeof(buf))) > 0)
                                if (write_all(fd, buf, (size_t)n) < 0)
                                        break;
                        break;
                }
        }
        if (pidfd >= 0)
                close(pidfd);
        /* Nothing of the session stays: its processes go with it (the reaper collects them). */
        kill(pid, SIGKILL);
        kill_session(pid);
        close(m);
        if (!host_left)
                (void)write_all(fd, AGENT_DEBUG_CONSOLE_END, strlen(AGENT_DEBUG_CONSOLE_END));
        cc_log_info("debug console: session ended (%s)", host_left ? "host left" : "shell exited");
}

static void *serial_main(void *arg)
{
        (void)arg;
        char path[300];
        int port = -1;
        for (int i = 0; port < 0; i++) {
                if (agent_find_serial_port(AGENT_DEBUG_CONSOLE_PORT, path, sizeof(path)) == 0)
                        port = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
                if (port < 0) {
                        if (i == 50) {
                                cc_log_debug("debug console: no virtio-serial port %s",
                                             AGENT_DEBUG_CONSOLE_PORT);
                                return NULL;
                        }
                        usleep(100 * 1000);
                }
        }
        cc_log_warn("debug console enabled on %s: the host can open a root shell in this guest",
                    path);
        for (;;) {
                struct pollfd p = {.fd = port, .events = POLLIN};
                if (poll(&p, 1, -1) < 0 && errno != EINTR)
                        break;
                if (p.revents & POLLIN) {
                        agent_debug_console_session(port, true);
                        continue;
                }
                /* No host side connected (POLLHUP): look again shortly. */
                usleep(200 * 1000);
        }
        close(port);
        return NULL;
}

static void *conn_main(void *arg)
{
        int fd = (int)(intptr_t)arg;
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        agent_debug_console_session(fd, false);
        close(fd);
        return NULL;
}

static int start_detached(void *(*fn)(void *), void *arg)
{
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int r = -pthread_create(&t, &attr, fn, arg);
        pthread_attr_destroy(&attr);
        return r;
}

/* Kata's contract: a session for every connection accepted, side by side. */
static void *accept_main(void *arg)
{
        int lfd = (int)(intptr_t)arg;
        for (;;) {
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno != EINTR && errno != ECONNABORTED)
                                usleep(100 * 1000); /* EMFILE and the like: not a busy loop */
                        continue;
                }
                int r = start_detached(conn_main, (void *)(intptr_t)fd);
                if (r < 0) {
                        cc_log_errno(CC_LOG_WARN, -r, "debug console: no session thread");
                        close(fd);
                }
        }
        return NULL;
}

int agent_debug_console_serve(int listen_fd)
{
        return start_detached(accept_main, (void *)(intptr_t)listen_fd);
}

static int listen_vsock(unsigned port)
{
        _cleanup_close_ int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        struct sockaddr_vm sa = {
                .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0)
                return -errno;
        return TAKE_FD(fd);
}

int agent_debug_console_start(unsigned vport)
{
        /* The virtio-serial port is looked for in any case: which of the two the VM has is the
         * host's choice (vsock when its agent channel is vsock). */
        int r = start_detached(serial_main, NULL);
        if (r < 0 || vport == 0)
                return r;
        int fd = listen_vsock(vport);
        if (fd < 0) {
                /* A VM without a vsock device: the serial port serves. */
                cc_log_errno(CC_LOG_INFO, -fd, "debug console: no vsock port %u", vport);
                return 0;
        }
        if ((r = agent_debug_console_serve(fd)) < 0) {
                close(fd);
                return r;
        }
        cc_log_warn("debug console enabled on vsock port %u: the host can open a root shell in "
                    "this guest",
                    vport);
        return 0;
}
