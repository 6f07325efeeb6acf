/*
 * Waiting for a booting guest's agent: dial, then grpc.Health/Check until it answers SERVING,
 * all within one deadline ([agent.kata] dial_timeout), and cut short the moment the boot is
 * known to have failed.
 *
 * The deadline bounds every step, not just the loop: each dial and each Check gets at most the
 * time left (and at most CHECK_SLICE_MS, so a Check lost on the way is retried). On the
 * virtio-serial channel the dial succeeds at once (the socket is QEMU's) and the Check simply
 * waits for the guest, so a fixed per-attempt timeout would stretch the deadline by that much.
 *
 * A watcher thread follows the VM while the main thread is blocked in a dial or a Check: the
 * VMM exiting, or a fatal line on the guest console (a kernel panic, an initramfs the kernel
 * could not unpack, the agent's own fatal error), ends the wait at once with that reason. It
 * wakes the main thread by shutting down the socket of the attempt in flight (under a lock, so
 * a socket is never shut down after it was closed and its number reused) and by an eventfd
 * for the pause between attempts.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/log.h"

#include "hypervisor/hv.h"
#include "kata/health.pb-c.h"
#include "shim/shim.h"

#define CHECK_SLICE_MS  2000 /* one Check attempt at most; the deadline may cut it shorter */
#define RETRY_PAUSE_MS  100  /* between attempts that failed at once (nothing listening yet) */
#define WATCH_PERIOD_MS 50   /* how often the watcher reads the console */
#define REASON_MAX      1024

/* Console lines that mean the guest will never answer. The kernel prints the first two
 * (kernel/panic.c, init/initramfs.c); the agent logs its fatal errors at level=fatal before it
 * powers the VM off. */
static const char *const fatal_markers[] = {
        "Kernel panic - not syncing",
        "Initramfs unpacking failed",
        "level=fatal ",
};

const char *shim_console_fatal(const char *text, size_t len, size_t *line_len)
{
        const char *best = NULL;
        for (size_t m = 0; m < sizeof(fatal_markers) / sizeof(fatal_markers[0]); m++) {
                const char *hit = memmem(text, len, fatal_markers[m], strlen(fatal_markers[m]));
                if (hit && (!best || hit < best))
                        best = hit;
        }
        if (!best)
                return NULL;
        /* Report the whole line the marker is on. */
        const char *start = best;
        while (start > text && start[-1] != '\n' && start[-1] != '\r')
                start--;
        const char *end = best;
        while (end < text + len && *end != '\n' && *end != '\r' && *end != '\0')
                end++;
        *line_len = (size_t)(end - start);
        return start;
}

void shim_console_tail(const char *path, char *buf, size_t size)
{
        buf[0] = '\0';
        _cleanup_close_ int fd = path ? open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) : -1;
        if (fd < 0)
                return;
        off_t end = lseek(fd, 0, SEEK_END);
        off_t from = end > (off_t)size - 1 ? end - (off_t)size + 1 : 0;
        ssize_t n = pread(fd, buf, size - 1, from);
        buf[n > 0 ? n : 0] = '\0';
        for (char *p = buf; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        *p = ' ';
}

struct waiter {
        const struct shim_agent_wait *w;
        pthread_mutex_t lock;
        int cur_fd;  /* the socket of the attempt in flight, -1 between attempts */
        bool stop;   /* the main thread is done: the watcher leaves */
        bool failed; /* the watcher found a reason */
        char reason[REASON_MAX];
        int wake_efd; /* written once the watcher found a reason, or to stop it */
};

static int64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copies one line into reason with control characters dropped (the console is the guest's). */
static void set_reason(struct waiter *wt, const char *prefix, const char *line, size_t len)
{
        size_t n = (size_t)snprintf(wt->reason, sizeof(wt->reason), "%s", prefix);
        for (size_t i = 0; i < len && n + 1 < sizeof(wt->reason); i++)
                if ((unsigned char)line[i] >= 0x20 && line[i] != 0x7f)
                        wt->reason[n++] = line[i];
        wt->reason[n] = '\0';
}

/* The watcher found a reason: record it and wake the main thread wherever it blocks. */
static void fail(struct waiter *wt)
{
        pthread_mutex_lock(&wt->lock);
        wt->failed = true;
        if (wt->cur_fd >= 0)
                shutdown(wt->cur_fd, SHUT_RDWR);
        pthread_mutex_unlock(&wt->lock);
        uint64_t one = 1;
        ssize_t n _unused_ = write(wt->wake_efd, &one, sizeof(one));
}

/*
 * Reads what the console gained since the last look. `carry` keeps the end of the previous
 * chunk so that a marker split across two reads is still found.
 */
static bool console_check(struct waiter *wt, int fd, off_t *off, char *carry, size_t *carry_len)
{
        char buf[8192];
        size_t keep = *carry_len;
        memcpy(buf, carry, keep);
        ssize_t n = pread(fd, buf + keep, sizeof(buf) - keep, *off);
        if (n <= 0)
                return false;
        *off += n;
        size_t len = keep + (size_t)n, line_len = 0;
        const char *line = shim_console_fatal(buf, len, &line_len);
        if (line) {
                /* A line cut by the end of this read is completed by the next one, if any came
                 * (the kernel writes the panic line in one go; this is for the rare split). */
                set_reason(wt, "", line, line_len);
                return true;
        }
        /* Keep the tail: at most 256 bytes, from the last line start if it is that close. */
        size_t tail = len < 256 ? len : 256;
        memmove(carry, buf + len - tail, tail);
        *carry_len = tail;
        return false;
}

static void *watch(void *arg)
{
        struct waiter *wt = arg;
        const struct shim_agent_wait *w = wt->w;
        _cleanup_close_ int con = -1;
        off_t off = 0;
        char carry[256];
        size_t carry_len = 0;
        for (;;) {
                struct pollfd p[2] = {{.fd = wt->wake_efd, .events = POLLIN},
                                      {.fd = w->exit_fd, .events = POLLIN}};
                int r = poll(p, w->exit_fd >= 0 ? 2 : 1, WATCH_PERIOD_MS);
                pthread_mutex_lock(&wt->lock);
                bool stop = wt->stop;
                pthread_mutex_unlock(&wt->lock);
                if (stop)
                        return NULL;
                if (con < 0 && w->console_path)
                        con = open(w->console_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
                /* The console first: a panicking guest's VMM may exit right after it. */
                if (con >= 0 && console_check(wt, con, &off, carry, &carry_len)) {
                        fail(wt);
                        return NULL;
                }
                if (r > 0 && w->exit_fd >= 0 && p[1].revents) {
                        /* Read what the console got in its last moments once more. */
                        if (con >= 0 && console_check(wt, con, &off, carry, &carry_len)) {
                                fail(wt);
                                return NULL;
                        }
                        char tail[600];
                        shim_console_tail(w->console_path, tail, sizeof(tail));
                        snprintf(wt->reason, sizeof(wt->reason),
                                 "the VM exited before its agent answered; console: %s", tail);
                        fail(wt);
                        return NULL;
                }
        }
}

static bool watcher_failed(struct waiter *wt)
{
        pthread_mutex_lock(&wt->lock);
        bool f = wt->failed;
        pthread_mutex_unlock(&wt->lock);
        return f;
}

static void set_cur_fd(struct waiter *wt, int fd)
{
        pthread_mutex_lock(&wt->lock);
        wt->cur_fd = fd;
        /* Found while the previous attempt was being torn down: cut this one too. */
        if (fd >= 0 && wt->failed)
                shutdown(fd, SHUT_RDWR);
        pthread_mutex_unlock(&wt->lock);
}

/*
 * One attempt: dial, Check. 0 with *ret set when SERVING; else -errno (-EAGAIN: answered, not
 * serving). The dial itself is not interrupted by the watcher (the fd is libhv's until it
 * returns), but it is bounded by the same slice.
 */
static int attempt(struct waiter *wt, int64_t deadline, struct cc_ttrpc_client **ret)
{
        const struct shim_agent_wait *w = wt->w;
        int64_t left = deadline - mono_ms();
        if (left <= 0)
                return -ETIMEDOUT;
        _cleanup_error_ struct cc_error *e = NULL;
        int fd = hv_agent_dial(w->addr, (int)(left < CHECK_SLICE_MS ? left : CHECK_SLICE_MS), &e);
        if (fd < 0)
                return fd;
        _cleanup_(cc_ttrpc_client_freep) struct cc_ttrpc_client *c = NULL;
        int r = cc_ttrpc_client_new(fd, &c); /* owns fd from here, also on failure */
        if (r < 0)
                return r;
        left = deadline - mono_ms();
        if (left > CHECK_SLICE_MS)
                left = CHECK_SLICE_MS;
        if (left <= 0)
                return -ETIMEDOUT;
        set_cur_fd(wt, fd);
        Grpc__CheckRequest req = GRPC__CHECK_REQUEST__INIT;
        Grpc__HealthCheckResponse *resp = NULL;
        struct cc_ttrpc_call_opts o = {.timeout_ns = left * 1000000ll};
        r = cc_ttrpc_client_call(c, "grpc.Health", "Check", &req.base,
                                 &grpc__health_check_response__descriptor,
                                 (ProtobufCMessage **)&resp, &o, &e);
        /* Unregistered before the client (and with it the socket) is closed. */
        set_cur_fd(wt, -1);
        bool serving =
                r == 0 && resp->status == GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
        if (resp)
                protobuf_c_message_free_unpacked(&resp->base, NULL);
        if (!serving)
                return r < 0 ? r : -EAGAIN;
        *ret = TAKE_PTR(c);
        return 0;
}

int shim_agent_wait(const struct shim_agent_wait *w, struct cc_ttrpc_client **ret,
                    struct cc_error **err)
{
        struct waiter wt = {.w = w, .lock = PTHREAD_MUTEX_INITIALIZER, .cur_fd = -1};
        int64_t start = mono_ms(), deadline = start + w->timeout_ms;
        _cleanup_close_ int efd = eventfd(0, EFD_CLOEXEC);
        if (efd < 0)
                return cc_error_set(err, errno, "eventfd: %m");
        wt.wake_efd = efd;
        pthread_t th;
        int r = -pthread_create(&th, NULL, watch, &wt);
        if (r < 0)
                return cc_error_set(err, -r, "boot watcher thread: %s", strerror(-r));

        int last = -ETIMEDOUT;
        struct cc_ttrpc_client *c = NULL;
        while (!watcher_failed(&wt) && mono_ms() < deadline) {
                last = attempt(&wt, deadline, &c);
                if (last == 0)
                        break;
                int64_t left = deadline - mono_ms();
                if (left <= 0 || watcher_failed(&wt))
                        break;
                /* Pause before the next attempt, but wake at once if the watcher fails. */
                struct pollfd p = {.fd = efd, .events = POLLIN};
                (void)poll(&p, 1, (int)(left < RETRY_PAUSE_MS ? left : RETRY_PAUSE_MS));
        }

        pthread_mutex_lock(&wt.lock);
        wt.stop = true;
        bool failed = wt.failed;
        pthread_mutex_unlock(&wt.lock);
        uint64_t one = 1;
        ssize_t n _unused_ = write(efd, &one, sizeof(one));
        pthread_join(th, NULL);

        if (c && !failed) {
                *ret = c;
                return 0;
        }
        cc_ttrpc_client_free(c);
        int64_t waited = mono_ms() - start;
        if (failed)
                return cc_error_set(err, EIO, "the guest failed to boot after %lld ms: %s",
                                    (long long)waited, wt.reason);
        char tail[600];
        shim_console_tail(w->console_path, tail, sizeof(tail));
        char within[32];
        if (w->timeout_ms % 1000 == 0)
                snprintf(within, sizeof(within), "%lld s", (long long)(w->timeout_ms / 1000));
        else
                snprintf(within, sizeof(within), "%lld ms", (long long)w->timeout_ms);
        return cc_error_set(err, ETIMEDOUT,
                            "the agent at %s did not answer Health.Check within %s (waited %lld "
                            "ms; last error: %s); console: %s",
                            w->addr, within, (long long)waited,
                            last == -EAGAIN ? "not serving" : strerror(-last), tail);
}
