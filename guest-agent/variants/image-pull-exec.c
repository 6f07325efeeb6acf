/*
 * agent_puller_helper, the image puller of cc-agent-static (struct agent_puller in agent.h,
 * chosen by guest-agent/module.mk): each pull runs in a helper process, cc-agent-pull
 * (guest-agent/pull/), so the agent itself never maps the pull's libraries (libcurl and its
 * chain, OpenSSL, ISA-L, zstd, libarchive) and stays a static binary of about 1.4 MiB
 * resident; the helper's memory is returned when the pull ends. Nothing in cc-agent-static
 * names agent_puller_in_process, so image-pull.o (and libccimage) stays out of it.
 *
 * The channel is a stream socketpair, the helper's fd 3:
 *   agent -> helper   the image, the container id and the source credentials, each as
 *                     "<n>\n" and n bytes (credentials n = 0: none);
 *   helper -> agent   one line "<errno> <message>\n", errno 0 when the rootfs is mounted.
 * Credentials go over the socket, not argv or the environment, which other processes of the
 * guest could read in /proc.
 *
 * Starting the helper costs its dynamic loading (about 75 ms under TCG once its libraries are
 * in the page cache; the first start in a VM also mounts them and reads them from the guest
 * image's squashfs, variants/pull-libs.c, bench/agent-results.md), so CreateSandbox starts
 * one ahead (prestart, in a thread of its own, so that CreateSandbox does not wait
 * for it): it loads and waits, at most AGENT_PULL_SPARE_SECONDS, for the pod's first pull,
 * which waits for it if it is still being started; later pulls start their own. A spare that
 * gives no result (it timed out just as it was taken) is replaced by a fresh helper once.
 *
 * The helper is reaped by the agent's reaper like any child (waitpid(-1)), so its end is seen
 * through a pidfd, not waitpid: and not through the socket's EOF either, since a container
 * process forked meanwhile by another thread holds a copy of the helper's end until it execs
 * (a created container waits for StartContainer before that).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
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

/* A started helper: its end of the channel and a pidfd (-1 when it was gone at once, `gone`,
 * or when pidfd_open failed otherwise: then only the channel tells). */
struct helper {
        int sock;
        int pidfd;
        pid_t pid;
        bool gone;
};

static void helper_close(struct helper *h)
{
        if (h->sock >= 0)
                close(h->sock);
        if (h->pidfd >= 0)
                close(h->pidfd);
        h->sock = h->pidfd = -1;
}

/* The prestarted helper, if any (sock -1: none); spare_starting while a thread starts one. */
static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t spare_cond = PTHREAD_COND_INITIALIZER;
static struct helper spare = {.sock = -1, .pidfd = -1};
static bool spare_starting;

static const char *helper_path(void)
{
        const char *p = getenv("CC_AGENT_PULL_HELPER");
        return cc_isempty(p) ? AGENT_PULL_HELPER_DEFAULT : p;
}

static void spawn_attrs_done(posix_spawnattr_t *at)
{
        posix_spawnattr_destroy(at);
}

static void file_actions_done(posix_spawn_file_actions_t *fa)
{
        posix_spawn_file_actions_destroy(fa);
}

/* Starts the helper with its channel as fd 3 and the agent's log as fd 2; wait_s > 0 makes
 * it a spare that waits that long for its request. */
static int spawn_helper(struct agent *a, unsigned wait_s, struct helper *h, struct cc_error **err)
{
        const char *path = helper_path();
        char wait_arg[16];
        snprintf(wait_arg, sizeof(wait_arg), "%u", wait_s);
        const char *argv[] = {path,
                              "--containers-dir",
                              a->cfg.containers_dir,
                              "--log-level",
                              a->cfg.log_level ? a->cfg.log_level : "info",
                              "--wait",
                              wait_arg,
                              cc_isempty(a->cfg.image_insecure) ? NULL : "--image-insecure",
                              a->cfg.image_insecure,
                              NULL};
        int r = agent_pull_libs_mount(err);
        if (r < 0)
                return r;
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return cc_error_set(err, errno, "socketpair: %m");

        _cleanup_(file_actions_done) posix_spawn_file_actions_t fa;
        _cleanup_(spawn_attrs_done) posix_spawnattr_t at;
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&at);
        /* dup2 clears close-on-exec on the target (also when sv[1] is already 3, glibc >= 2.29). */
        r = posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
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
                cc_log_debug("starting the image pull helper %s%s", path, wait_s ? " (spare)" : "");
                r = posix_spawn(&h->pid, path, &fa, &at, (char *const *)argv, environ);
        }
        close(sv[1]);
        if (r != 0) {
                close(sv[0]);
                /* Internal, not the errno's code: a missing helper (ENOENT) is a broken guest
                 * image, not an image that was not found. */
                return cc_error_set_code(err, CC_GRPC_INTERNAL,
                                         "start the image pull helper %s: %s", path, strerror(r));
        }
        h->sock = sv[0];
        /* The helper reads its request before anything else and only a spare's wait ends on its
         * own, so the pid is still the helper's here. One that died at once (a missing shared
         * library) may be reaped already: ESRCH, and what it left in the socket is all. */
        h->pidfd = pidfd_open(h->pid, 0);
        h->gone = h->pidfd < 0 && errno == ESRCH;
        if (h->pidfd < 0 && !h->gone)
                cc_log_warn("pidfd_open of the image pull helper (pid %d): %m", h->pid);
        return 0;
}

static bool exited(const struct helper *h)
{
        struct pollfd p = {.fd = h->pidfd, .events = POLLIN};
        return h->pidfd < 0 ? h->gone : poll(&p, 1, 0) != 0;
}

struct prestart {
        struct agent *a;
        unsigned wait_s;
};

/* Starts the spare off the CreateSandbox path: mounting the helper's libraries and spawning
 * it take tens of milliseconds under TCG that the host need not wait for. */
static void *prestart_thread(void *p)
{
        struct prestart *ps = p;
        struct helper h = {.sock = -1, .pidfd = -1};
        _cleanup_error_ struct cc_error *err = NULL;
        if (spawn_helper(ps->a, ps->wait_s, &h, &err) < 0)
                cc_log_warn("%s (the first pull will start its own)", cc_error_message(err));
        free(ps);
        pthread_mutex_lock(&spare_lock);
        spare = h;
        spare_starting = false;
        pthread_cond_broadcast(&spare_cond);
        pthread_mutex_unlock(&spare_lock);
        return NULL;
}

static void prestart(struct agent *a)
{
        const char *env = getenv("CC_AGENT_PULL_SPARE_SECONDS");
        unsigned wait_s = cc_isempty(env) ? AGENT_PULL_SPARE_SECONDS : (unsigned)atoi(env);
        if (wait_s == 0)
                return;
        pthread_mutex_lock(&spare_lock);
        if (spare.sock >= 0 && exited(&spare))
                helper_close(&spare);
        bool start = spare.sock < 0 && !spare_starting;
        struct prestart *ps = start ? malloc(sizeof(*ps)) : NULL;
        pthread_t t;
        pthread_attr_t attr;
        if (ps) {
                *ps = (struct prestart){.a = a, .wait_s = wait_s};
                pthread_attr_init(&attr);
                pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
                int r = pthread_create(&t, &attr, prestart_thread, ps);
                pthread_attr_destroy(&attr);
                if (r == 0)
                        spare_starting = true;
                else {
                        cc_log_warn("starting the image pull helper ahead: %s", strerror(r));
                        free(ps);
                }
        }
        pthread_mutex_unlock(&spare_lock);
}

/* Hands over the spare if it still runs (waiting for one being started). */
static bool take_spare(struct helper *h)
{
        pthread_mutex_lock(&spare_lock);
        while (spare_starting)
                pthread_cond_wait(&spare_cond, &spare_lock);
        bool ok = spare.sock >= 0 && !exited(&spare);
        if (ok)
                *h = spare;
        else
                helper_close(&spare);
        spare = (struct helper){.sock = -1, .pidfd = -1};
        pthread_mutex_unlock(&spare_lock);
        return ok;
}

static int send_field(int sock, const char *s)
{
        char hdr[32];
        size_t n = s ? strlen(s) : 0;
        int hl = snprintf(hdr, sizeof(hdr), "%zu\n", n);
        int r = cc_write_all(sock, hdr, (size_t)hl);
        return r == 0 && n ? cc_write_all(sock, s, n) : r;
}

/* Reads the helper's result line into buf (NUL-terminated) until the line is complete, the
 * socket ends, or the helper has exited and what it wrote is drained. */
static void read_result(const struct helper *h, char *buf, size_t size)
{
        size_t len = 0;
        bool gone = h->gone;
        buf[0] = '\0';
        while (!memchr(buf, '\n', len) && len + 1 < size) {
                if (!gone) {
                        struct pollfd p[2] = {{.fd = h->sock, .events = POLLIN},
                                              {.fd = h->pidfd, .events = POLLIN}};
                        if (poll(p, h->pidfd >= 0 ? 2 : 1, -1) < 0) {
                                if (errno == EINTR)
                                        continue;
                                break;
                        }
                        gone = h->pidfd >= 0 && (p[1].revents & POLLIN);
                }
                ssize_t k = recv(h->sock, buf + len, size - 1 - len, gone ? MSG_DONTWAIT : 0);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                len += (size_t)k;
                buf[len] = '\0';
        }
}

/* One pull through helper h: 1 = no result (died, garbled), else 0 or -errno with err set. */
static int pull_with(const struct helper *h, const char *image, const char *container_id,
                     const char *creds, struct cc_error **err)
{
        int r;
        if ((r = send_field(h->sock, image)) < 0 || (r = send_field(h->sock, container_id)) < 0 ||
            (r = send_field(h->sock, creds)) < 0)
                cc_log_errno(CC_LOG_WARN, -r, "image pull helper (pid %d): sending the request",
                             h->pid);
        char buf[RESULT_MAX];
        read_result(h, buf, sizeof(buf));
        char *msg = NULL;
        long e = strtol(buf, &msg, 10);
        if (msg == buf || *msg != ' ' || !strchr(msg, '\n') || e < 0 || e > 4095)
                return 1;
        msg[strcspn(msg, "\n")] = '\0';
        return e == 0 ? 0 : cc_error_set(err, (int)e, "%s", msg + 1);
}

static int pull(struct agent *a, const char *image, const char *container_id, const char *creds,
                struct cc_error **err)
{
        if (creds && strlen(creds) > AGENT_PULL_CREDS_MAX)
                return cc_error_set(err, EINVAL, "source credentials longer than %d bytes",
                                    AGENT_PULL_CREDS_MAX);
        for (int attempt = 0;; attempt++) {
                _cleanup_(helper_close) struct helper h = {.sock = -1, .pidfd = -1};
                bool was_spare = attempt == 0 && take_spare(&h);
                int r;
                if (was_spare)
                        cc_log_debug("pull of %s for %s: the prestarted helper (pid %d)", image,
                                     container_id, h.pid);
                else if ((r = spawn_helper(a, 0, &h, err)) < 0)
                        return cc_error_wrap(err, -r, "pull image %s", image);
                if ((r = pull_with(&h, image, container_id, creds, err)) <= 0)
                        return r;
                /* Killed (OOM in a small guest, say) or broken: a half-made rootfs goes. */
                agent_image_remove_rootfs(a->cfg.containers_dir, container_id);
                if (!was_spare)
                        return cc_error_set(err, EIO,
                                            "pull image %s: the image pull helper %s (pid %d) "
                                            "ended without a result",
                                            image, helper_path(), h.pid);
                cc_log_warn("the prestarted image pull helper (pid %d) gave no result; starting "
                            "another",
                            h.pid);
        }
}

const struct agent_puller agent_puller_helper = {
        .name = "helper",
        .pull = pull,
        .prestart = prestart,
};
