/*
 * Kata's debug console: with `agent.debug_console` on the kernel command line (the shim puts it
 * there only when the handler's configuration says debug_console_enabled = true; in a TEE the
 * command line is measured, so a verifier sees it), the agent serves a root shell (/bin/sh of
 * the image: busybox in images built with --debug-shell) on a pseudo-terminal, relayed to the
 * virtio-serial port AGENT_DEBUG_CONSOLE_PORT, whose host side is a unix socket in the VM's run
 * directory (`cc-runtime exec` connects there). Kata serves it on vsock port
 * agent.debug_console_vport (1026); this agent reads the key but uses the virtio-serial port
 * for either agent channel, so the console needs no vhost-vsock.
 *
 * A session starts with the first byte the host writes and ends when the shell exits (its
 * pidfd) or when the host side goes away; then every process of the shell's session is killed
 * (its background jobs too, found by session id in /proc), so nothing is left. A virtio-serial port
 * cannot be hung up from the guest: the end of a session is told to the host by
 * AGENT_DEBUG_CONSOLE_END on the port. One session at a time.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
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

static void closedirp(DIR **d)
{
        if (*d)
                closedir(*d);
}

/* Kills every process of the session `sid` (the shell and its jobs, which job control puts in
 * process groups of their own); a few passes for what forks meanwhile. */
static void kill_session(pid_t sid)
{
        for (int pass = 0; pass < 5; pass++) {
                _cleanup_(closedirp) DIR *d = opendir("/proc");
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

/* One session: relays port <-> pty until the shell exits or the host leaves. */
static void session(int port)
{
        int m = -1;
        pid_t pid = spawn_shell(&m);
        if (pid < 0) {
                /* Consume what started the session (else it would start again at once) and
                 * tell the host why it ends. */
                char drop[4096];
                while (read(port, drop, sizeof(drop)) > 0)
                        ;
                char msg[160];
                snprintf(msg, sizeof(msg), "cc-agent debug console: cannot start a shell: %s%s",
                         strerror((int)-pid), AGENT_DEBUG_CONSOLE_END);
                (void)write_all(port, msg, strlen(msg));
                cc_log_errno(CC_LOG_WARN, (int)-pid, "debug console: cannot start a shell");
                return;
        }
        cc_log_info("debug console: session started (shell pid %d)", (int)pid);
        /* The shell's end: its pidfd (the agent's reaper may collect it first, so no
         * waitpid here); the pty may stay open in its background jobs. */
        int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
        char buf[4096];
        bool host_left = false;
        for (;;) {
                struct pollfd p[3] = {{.fd = port, .events = POLLIN},
                                      {.fd = m, .events = POLLIN},
                                      {.fd = pidfd, .events = POLLIN}};
                if (poll(p, 3, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[0].revents & POLLIN) {
                        ssize_t n = read(port, buf, sizeof(buf));
                        if (n == 0) {
                                host_left = true;
                                break;
                        }
                        if (n > 0 && write_all(m, buf, (size_t)n) < 0)
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
                        if (n > 0 && write_all(port, buf, (size_t)n) < 0) {
                                host_left = true;
                                break;
                        }
                }
                if (p[2].revents) {
                        /* The shell exited: what it wrote last still goes out. */
                        ssize_t n;
                        while ((n = read(m, buf, sizeof(buf))) > 0)
                                if (write_all(port, buf, (size_t)n) < 0)
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
                (void)write_all(port, AGENT_DEBUG_CONSOLE_END, strlen(AGENT_DEBUG_CONSOLE_END));
        cc_log_info("debug console: session ended (%s)", host_left ? "host left" : "shell exited");
}

static void *console_main(void *arg)
{
        (void)arg;
        char path[300];
        int port = -1;
        for (int i = 0; port < 0; i++) {
                if (agent_find_serial_port(AGENT_DEBUG_CONSOLE_PORT, path, sizeof(path)) == 0)
                        port = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
                if (port < 0) {
                        if (i == 50) {
                                cc_log_warn("debug console: no virtio-serial port %s",
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
                        session(port);
                        continue;
                }
                /* No host side connected (POLLHUP): look again shortly. */
                usleep(200 * 1000);
        }
        close(port);
        return NULL;
}

int agent_debug_console_start(void)
{
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int r = -pthread_create(&t, &attr, console_main, NULL);
        pthread_attr_destroy(&attr);
        return r;
}
