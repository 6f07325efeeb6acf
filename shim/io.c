/*
 * Process IO: containerd's stdin/stdout/stderr (FIFOs, or file:// paths) relayed to and from
 * the agent's WriteStdin / ReadStdout / ReadStderr for one process (a container's init or an
 * exec). One thread per stream; each output thread calls ReadStdout until the agent ends the
 * stream (the process and everything holding its pipe are gone), so "drained" means every
 * byte the process wrote has been handed to containerd.
 *
 * FIFOs are opened the way the runc shim opens them: the write side of stdout/stderr blocks
 * until containerd's reader is there; stdin is opened for reading with a blocking open so
 * that EOF means "containerd closed stdin", which becomes CloseStdin.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/log.h"

#include "kata/agent.pb-c.h"
#include "shim/shim.h"

#define AGENT_SERVICE "grpc.AgentService"
#define READ_CHUNK    (64u << 10)

struct relay {
        struct shim_io *io;
        const char *method; /* ReadStdout | ReadStderr */
        char *path;
        int fd; /* opened in shim_io_new(), -1 when discarded */
        pthread_t thread;
        bool started;
};

struct shim_io {
        struct shim_sandbox *sb;
        char *cid, *exec_id;
        bool terminal;
        struct relay out, err;
        char *in_path;
        int in_fd;
        pthread_t in_thread;
        bool in_started;
        int stop_efd;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        unsigned pending; /* output relays still running */
        bool stdin_closed, stopping;
        bool close_requested; /* CloseIO: deliver what is buffered, then CloseStdin */
        bool started;         /* shim_io_start() ran: the process exists in the guest */
};

static const char *strip_scheme(const char *p)
{
        return strncmp(p, "file://", 7) == 0 ? p + 7 : p;
}

/*
 * A FIFO is opened read-write and non-blocking: the open never waits for containerd's reader
 * (ctr run -d leaves the FIFO without one), and the relay never blocks for good on a reader
 * that went away; see write_all().
 */
static int open_output(const char *path)
{
        struct stat st;
        if (stat(path, &st) == 0 && S_ISFIFO(st.st_mode))
                return open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

/* Writes everything, waiting up to 10 s at a time for a slow reader; drops the rest (and
 * returns -EAGAIN) when nobody reads. */
static int write_all(int fd, const uint8_t *data, size_t len)
{
        size_t done = 0;
        while (done < len) {
                ssize_t n = write(fd, data + done, len - done);
                if (n >= 0) {
                        done += (size_t)n;
                        continue;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return -errno;
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                if (poll(&p, 1, 10000) <= 0)
                        return -EAGAIN;
        }
        return 0;
}

static void *output_main(void *arg)
{
        struct relay *rl = arg;
        struct shim_io *io = rl->io;
        int fd = TAKE_FD(rl->fd);
        for (;;) {
                Grpc__ReadStreamRequest req = GRPC__READ_STREAM_REQUEST__INIT;
                req.container_id = io->cid;
                req.exec_id = io->exec_id;
                req.len = READ_CHUNK;
                Grpc__ReadStreamResponse *resp = NULL;
                _cleanup_error_ struct cc_error *e = NULL;
                if (shim_agent_call(io->sb, AGENT_SERVICE, rl->method, &req.base,
                                    &grpc__read_stream_response__descriptor,
                                    (ProtobufCMessage **)&resp, 0, &e) < 0) {
                        /* The agent ends a stream with an error (EOF or the process gone). */
                        cc_log_debug("%s %s ended: %s", io->cid, rl->method, cc_error_message(e));
                        break;
                }
                if (fd >= 0 && write_all(fd, resp->data.data, resp->data.len) < 0) {
                        /* containerd's reader is gone or stuck: keep draining the agent so
                         * the process never blocks on a full pipe, drop the bytes. */
                        cc_log_warn("%s %s: nobody reads %s; dropping output", io->cid,
                                    rl->method, rl->path);
                        fd = cc_close(fd);
                }
                protobuf_c_message_free_unpacked(&resp->base, NULL);
        }
        cc_close(fd);
        pthread_mutex_lock(&io->lock);
        io->pending--;
        pthread_cond_broadcast(&io->cond);
        pthread_mutex_unlock(&io->lock);
        return NULL;
}

static void send_close_stdin(struct shim_io *io)
{
        pthread_mutex_lock(&io->lock);
        bool already = io->stdin_closed;
        io->stdin_closed = true;
        pthread_mutex_unlock(&io->lock);
        if (already)
                return;
        Grpc__CloseStdinRequest req = GRPC__CLOSE_STDIN_REQUEST__INIT;
        req.container_id = io->cid;
        req.exec_id = io->exec_id;
        _cleanup_error_ struct cc_error *e = NULL;
        if (shim_agent_call(io->sb, AGENT_SERVICE, "CloseStdin", &req.base, NULL, NULL,
                            5ll * 1000000000ll, &e) < 0)
                cc_log_debug("%s CloseStdin: %s", io->cid, cc_error_message(e));
}

/*
 * stdin: the FIFO is opened non-blocking, so the open never waits for containerd's writer
 * (and never hangs on a FIFO that containerd already removed). poll() on such an fd reports
 * nothing until a writer has come: POLLIN for data, POLLHUP once every writer has closed,
 * which is containerd closing stdin and becomes CloseStdin.
 */
/* Forwards one chunk; false when the agent refused it (stdin is then closed for good). */
static bool forward_stdin(struct shim_io *io, const uint8_t *buf, size_t n)
{
        size_t done = 0;
        while (done < n) {
                Grpc__WriteStreamRequest req = GRPC__WRITE_STREAM_REQUEST__INIT;
                req.container_id = io->cid;
                req.exec_id = io->exec_id;
                req.data.data = (uint8_t *)buf + done;
                req.data.len = n - done;
                Grpc__WriteStreamResponse *resp = NULL;
                _cleanup_error_ struct cc_error *e = NULL;
                if (shim_agent_call(io->sb, AGENT_SERVICE, "WriteStdin", &req.base,
                                    &grpc__write_stream_response__descriptor,
                                    (ProtobufCMessage **)&resp, 0, &e) < 0) {
                        cc_log_debug("%s WriteStdin: %s", io->cid, cc_error_message(e));
                        pthread_mutex_lock(&io->lock);
                        io->stdin_closed = true;
                        pthread_mutex_unlock(&io->lock);
                        return false;
                }
                done += resp->len ? resp->len : req.data.len;
                protobuf_c_message_free_unpacked(&resp->base, NULL);
        }
        return true;
}

/*
 * stdin: the FIFO was opened non-blocking in shim_io_new(), so the open never waited for
 * containerd's writer. poll() on such an fd reports nothing until a writer has come: POLLIN
 * for data, POLLHUP once every writer has closed, which is containerd closing stdin and becomes
 * CloseStdin. CloseIO (ctr sends it when its own stdin ends, possibly before the data was
 * read here) delivers whatever the FIFO still holds first.
 */
static void *input_main(void *arg)
{
        struct shim_io *io = arg;
        int fd = TAKE_FD(io->in_fd);
        _cleanup_free_ uint8_t *buf = malloc(READ_CHUNK);
        for (;;) {
                pthread_mutex_lock(&io->lock);
                bool stop = io->stopping || io->stdin_closed;
                bool closing = io->close_requested;
                pthread_mutex_unlock(&io->lock);
                if (stop || !buf)
                        break;
                struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                                      {.fd = io->stop_efd, .events = POLLIN}};
                if (!closing && poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (closing || p[1].revents) {
                        pthread_mutex_lock(&io->lock);
                        closing = io->close_requested && !io->stopping;
                        pthread_mutex_unlock(&io->lock);
                        if (!closing)
                                break;
                        /* Drain what is buffered (non-blocking reads), then close. */
                        ssize_t n;
                        while ((n = read(fd, buf, READ_CHUNK)) > 0 || (n < 0 && errno == EINTR))
                                if (n > 0 && !forward_stdin(io, buf, (size_t)n))
                                        break;
                        send_close_stdin(io);
                        break;
                }
                ssize_t n = read(fd, buf, READ_CHUNK);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n <= 0) {
                        send_close_stdin(io);
                        break;
                }
                if (!forward_stdin(io, buf, (size_t)n))
                        break;
        }
        cc_close(fd);
        return NULL;
}

int shim_io_new(struct shim_sandbox *sb, const char *cid, const char *exec_id, bool terminal,
                const char *in, const char *out, const char *errp, struct shim_io **ret,
                struct cc_error **err)
{
        const char *paths[] = {in, out, errp};
        for (size_t i = 0; i < 3; i++)
                if (!cc_isempty(paths[i]) && strstr(paths[i], "://") &&
                    strncmp(paths[i], "file://", 7) != 0)
                        return cc_error_set(err, EOPNOTSUPP,
                                            "stdio '%s': only FIFOs and file:// paths are "
                                            "supported",
                                            paths[i]);
        struct shim_io *io = calloc(1, sizeof(*io));
        if (!io)
                return -ENOMEM;
        io->sb = sb;
        io->terminal = terminal;
        io->cid = strdup(cid);
        io->exec_id = strdup(exec_id ? exec_id : "");
        io->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        pthread_mutex_init(&io->lock, NULL);
        pthread_cond_init(&io->cond, NULL);
        io->out = (struct relay){.io = io, .method = "ReadStdout", .fd = -1};
        io->err = (struct relay){.io = io, .method = "ReadStderr", .fd = -1};
        io->in_fd = -1;
        if (!cc_isempty(in))
                io->in_path = strdup(strip_scheme(in));
        if (!cc_isempty(out))
                io->out.path = strdup(strip_scheme(out));
        /* With a terminal the agent's pty carries stdout and stderr together. */
        if (!cc_isempty(errp) && !terminal)
                io->err.path = strdup(strip_scheme(errp));
        /*
         * The FIFOs are opened now, when containerd's Create or Exec arrives, as the runc shim
         * does: containerd may write stdin and close it before Start, and a FIFO's data lives
         * only while someone holds it open.
         */
        int r = 0;
        if (io->in_path && (io->in_fd = open(io->in_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
                r = cc_error_set(err, errno, "open stdin %s: %m", io->in_path);
        if (r == 0 && io->out.path && (io->out.fd = open_output(io->out.path)) < 0)
                r = cc_error_set(err, errno, "open stdout %s: %m", io->out.path);
        if (r == 0 && io->err.path && (io->err.fd = open_output(io->err.path)) < 0)
                r = cc_error_set(err, errno, "open stderr %s: %m", io->err.path);
        if (r < 0) {
                shim_io_free(io);
                return r;
        }
        *ret = io;
        return 0;
}

int shim_io_start(struct shim_io *io, struct cc_error **err)
{
        struct relay *rls[] = {&io->out, &io->err};
        for (size_t i = 0; i < 2; i++) {
                if (!rls[i]->path)
                        continue;
                pthread_mutex_lock(&io->lock);
                io->pending++;
                pthread_mutex_unlock(&io->lock);
                if (pthread_create(&rls[i]->thread, NULL, output_main, rls[i]) != 0) {
                        pthread_mutex_lock(&io->lock);
                        io->pending--;
                        pthread_mutex_unlock(&io->lock);
                        return cc_error_set(err, EAGAIN, "cannot start the output relay");
                }
                rls[i]->started = true;
        }
        pthread_mutex_lock(&io->lock);
        io->started = true;
        bool closed_early = io->close_requested && !io->in_path;
        pthread_mutex_unlock(&io->lock);
        if (closed_early)
                send_close_stdin(io);
        if (io->in_path) {
                if (pthread_create(&io->in_thread, NULL, input_main, io) != 0)
                        return cc_error_set(err, EAGAIN, "cannot start the stdin relay");
                io->in_started = true;
        }
        return 0;
}

void shim_io_drain(struct shim_io *io)
{
        if (!io)
                return;
        pthread_mutex_lock(&io->lock);
        while (io->pending > 0)
                pthread_cond_wait(&io->cond, &io->lock);
        pthread_mutex_unlock(&io->lock);
}

static void stop_input(struct shim_io *io)
{
        pthread_mutex_lock(&io->lock);
        io->stopping = true;
        pthread_mutex_unlock(&io->lock);
        uint64_t one = 1;
        if (write(io->stop_efd, &one, sizeof(one)) < 0)
                cc_log_debug("stdin stop: %m");
}

void shim_io_close_stdin(struct shim_io *io)
{
        if (!io)
                return;
        pthread_mutex_lock(&io->lock);
        io->close_requested = true;
        bool relay = io->in_path != NULL;
        bool started = io->started;
        pthread_mutex_unlock(&io->lock);
        uint64_t one = 1;
        if (write(io->stop_efd, &one, sizeof(one)) < 0)
                cc_log_debug("stdin close: %m");
        /* With a relay, it closes once the FIFO is drained (now, or as soon as it starts). */
        if (!relay && started)
                send_close_stdin(io);
}

void shim_io_free(struct shim_io *io)
{
        if (!io)
                return;
        stop_input(io);
        if (io->in_started)
                pthread_join(io->in_thread, NULL);
        if (io->out.started)
                pthread_join(io->out.thread, NULL);
        if (io->err.started)
                pthread_join(io->err.thread, NULL);
        cc_close(io->stop_efd);
        cc_close(io->in_fd);
        cc_close(io->out.fd);
        cc_close(io->err.fd);
        pthread_mutex_destroy(&io->lock);
        pthread_cond_destroy(&io->cond);
        free(io->cid);
        free(io->exec_id);
        free(io->in_path);
        free(io->out.path);
        free(io->err.path);
        free(io);
}
