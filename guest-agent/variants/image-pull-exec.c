/*
 * agent_image_pull() for cc-agent-static: each pull runs in a helper process, cc-agent-pull
 * (guest-agent/pull/), so the agent itself never maps the pull's libraries (libcurl and its
 * chain, OpenSSL, ISA-L, zstd, libarchive) and stays a static binary of about 1.4 MiB
 * resident; the helper's memory is returned when the pull ends. Linked ahead of libagent.a, so
 * image-pull.o (and libccimage) stays out.
 *
 * The channel is a stream socketpair, the helper's fd 3:
 *   agent -> helper   "<n>\n" then n bytes of source credentials (n = 0: none);
 *   helper -> agent   one line "<errno> <message>\n", errno 0 when the rootfs is mounted.
 * Credentials go over the socket, not argv or the environment, which other processes of the
 * guest could read in /proc.
 *
 * The helper is reaped by the agent's reaper like any child (waitpid(-1)), so its end is seen
 * through a pidfd, not waitpid: and not through the socket's EOF either, since a container
 * process forked meanwhile by another thread holds a copy of the helper's end until it execs
 * (a created container waits for StartContainer before that).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/fileio.h"
#include "cc/log.h"
#include "cc/macro.h"

#include "guest-agent/agent.h"
#include "guest-agent/image-pull.h"

#define RESULT_MAX 4096

extern char **environ;

static void spawn_attrs_done(posix_spawnattr_t *at)
{
        posix_spawnattr_destroy(at);
}

static void file_actions_done(posix_spawn_file_actions_t *fa)
{
        posix_spawn_file_actions_destroy(fa);
}

/* Starts the helper with `chan` as its fd 3 and the agent's log as its fd 2. */
static int spawn_helper(struct agent *a, const char *helper, const char *image,
                        const char *container_id, int chan, pid_t *ret_pid, struct cc_error **err)
{
        const char *argv[12];
        size_t n = 0;
        argv[n++] = helper;
        argv[n++] = "--containers-dir";
        argv[n++] = a->cfg.containers_dir;
        argv[n++] = "--log-level";
        argv[n++] = a->cfg.log_level ? a->cfg.log_level : "info";
        if (!cc_isempty(a->cfg.image_insecure)) {
                argv[n++] = "--image-insecure";
                argv[n++] = a->cfg.image_insecure;
        }
        argv[n++] = "--";
        argv[n++] = image;
        argv[n++] = container_id;
        argv[n] = NULL;

        _cleanup_(file_actions_done) posix_spawn_file_actions_t fa;
        _cleanup_(spawn_attrs_done) posix_spawnattr_t at;
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&at);
        /* dup2 clears close-on-exec on the target (also when chan is already 3, glibc >= 2.29). */
        int r = posix_spawn_file_actions_adddup2(&fa, chan, 3);
        if (r == 0 && cc_log_get_fd() != STDERR_FILENO)
                r = posix_spawn_file_actions_adddup2(&fa, cc_log_get_fd(), STDERR_FILENO);
        if (r == 0)
                r = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        /* SIGCHLD is blocked in every agent thread (the reaper reads it from a signalfd). */
        sigset_t none;
        sigemptyset(&none);
        if (r == 0)
                r = posix_spawnattr_setsigmask(&at, &none);
        if (r == 0)
                r = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
        if (r == 0) {
                cc_log_debug("starting the image pull helper %s for %s", helper, container_id);
                r = posix_spawn(ret_pid, helper, &fa, &at, (char *const *)argv, environ);
        }
        if (r != 0)
                return cc_error_set(err, r, "start the image pull helper %s: %s", helper,
                                    strerror(r));
        return 0;
}

/* Reads the helper's result line into buf (NUL-terminated) until the line is complete, the
 * socket ends, or the helper has exited and what it wrote is drained. */
static size_t read_result(int sock, int pidfd, bool exited, char *buf, size_t size)
{
        size_t len = 0;
        for (;;) {
                if (memchr(buf, '\n', len) || len + 1 >= size)
                        break;
                if (!exited) {
                        struct pollfd p[2] = {{.fd = sock, .events = POLLIN},
                                              {.fd = pidfd, .events = POLLIN}};
                        if (poll(p, pidfd >= 0 ? 2 : 1, -1) < 0) {
                                if (errno == EINTR)
                                        continue;
                                break;
                        }
                        exited = pidfd >= 0 && (p[1].revents & POLLIN);
                }
                ssize_t k = recv(sock, buf + len, size - 1 - len, exited ? MSG_DONTWAIT : 0);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                len += (size_t)k;
                buf[len] = '\0';
        }
        buf[len] = '\0';
        return len;
}

int agent_image_pull(struct agent *a, const char *image, const char *container_id,
                     const char *creds, struct cc_error **err)
{
        size_t clen = creds ? strlen(creds) : 0;
        if (clen > AGENT_PULL_CREDS_MAX)
                return cc_error_set(err, EINVAL, "source credentials longer than %d bytes",
                                    AGENT_PULL_CREDS_MAX);
        const char *helper = getenv("CC_AGENT_PULL_HELPER");
        if (cc_isempty(helper))
                helper = AGENT_PULL_HELPER_DEFAULT;

        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return cc_error_set(err, errno, "socketpair: %m");
        _cleanup_close_ int sock = sv[0];
        pid_t pid;
        int r = spawn_helper(a, helper, image, container_id, sv[1], &pid, err);
        close(sv[1]);
        if (r < 0)
                return r;
        /* The helper reads our header before anything else, so until then it does not exit on
         * its own and the pid is still its own. One that died at once (a missing shared
         * library) may be reaped already: ESRCH, and what it left in the socket is all. */
        _cleanup_close_ int pidfd = pidfd_open(pid, 0);
        bool gone = pidfd < 0 && errno == ESRCH;
        if (pidfd < 0 && !gone)
                cc_log_warn("pidfd_open of the image pull helper (pid %d): %m", pid);

        char hdr[32];
        int hl = snprintf(hdr, sizeof(hdr), "%zu\n", clen);
        if ((r = cc_write_all(sock, hdr, (size_t)hl)) == 0 && clen)
                r = cc_write_all(sock, creds, clen);
        if (r < 0)
                cc_log_errno(CC_LOG_WARN, -r, "image pull helper (pid %d): sending the request", pid);

        char buf[RESULT_MAX];
        read_result(sock, pidfd, gone, buf, sizeof(buf));
        char *msg = NULL;
        long e = strtol(buf, &msg, 10);
        if (msg == buf || *msg != ' ' || !strchr(msg, '\n') || e < 0 || e > 4095) {
                /* Killed (OOM in a small guest, say) or broken: a half-made rootfs goes. */
                agent_image_remove_rootfs(a->cfg.containers_dir, container_id);
                return cc_error_set(err, EIO,
                                    "pull image %s: the image pull helper %s (pid %d) ended "
                                    "without a result",
                                    image, helper, pid);
        }
        msg[strcspn(msg, "\n")] = '\0';
        if (e != 0)
                return cc_error_set(err, (int)e, "%s", msg + 1);
        return 0;
}
