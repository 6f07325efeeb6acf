/*
 * ttrpc client. Many threads may call at once on one connection; each call gets the next odd
 * stream id, writes its request whole, then waits for the response with that id.
 *
 * There is no reader or writer thread: a waiting caller reads the socket itself when no other
 * caller is reading ("leader/follower"). Whatever it reads for another stream it hands to that
 * caller and wakes it; when its own response arrives it passes the reading role on. Writes work
 * the same way: requests are queued in stream-id order and whichever caller finds no writer
 * active writes everything queued in one sendmsg. A single caller thus pays no thread hand-off
 * at all, many callers share syscalls, and the connection costs no thread while idle.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cc/log.h"
#include "cc/ttrpc.h"
#include "google/rpc/status.pb-c.h"
#include "ttrpc-internal.h"

struct pending {
        uint32_t id;
        bool done;
        Ttrpc__Response *resp;
        pthread_cond_t cond;
        struct pending *next;
        /* The request frame (owned by the caller) and its place in the write queue. */
        const uint8_t *frame;
        size_t flen;
        bool written;        /* the frame left (or can no longer leave): caller may free it */
        bool queued;         /* still in the write queue, not yet taken by a writer */
        bool waiting;        /* blocked on cond: a candidate to take over reading */
        struct pending *wnext;
};

struct cc_ttrpc_client {
        int fd;
        bool is_socket;
        int wake_fd;            /* written by cc_ttrpc_client_free to stop a blocked reader */
        pthread_mutex_t lock;   /* everything below */
        uint32_t next_id;
        bool reading;
        bool writing;           /* a caller is writing the queued frames */
        int broken;             /* 0, or the -errno that broke the connection */
        struct pending *pending;
        struct pending *wq_head, *wq_tail;
        struct frame_reader rd;
};

int cc_ttrpc_client_new(int fd, struct cc_ttrpc_client **ret)
{
        _cleanup_close_ int cfd = fd;
        struct cc_ttrpc_client *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (c->wake_fd < 0) {
                int r = -errno;
                free(c);
                return r;
        }
        int type;
        socklen_t tl = sizeof(type);
        c->is_socket = getsockopt(cfd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0;
        int r = frame_reader_init(&c->rd, cfd, c->is_socket, c->wake_fd);
        if (r < 0) {
                close(c->wake_fd);
                free(c);
                return r;
        }
        c->fd = TAKE_FD(cfd);
        c->next_id = 1;
        pthread_mutex_init(&c->lock, NULL);
        *ret = c;
        return 0;
}

void cc_ttrpc_client_free(struct cc_ttrpc_client *c)
{
        if (!c)
                return;
        /* Callers must have returned; stop any reader still blocked, then release. */
        uint64_t one = 1;
        ssize_t w _unused_ = write(c->wake_fd, &one, sizeof(one));
        if (c->is_socket)
                shutdown(c->fd, SHUT_RDWR);
        pthread_mutex_lock(&c->lock);
        c->broken = c->broken ? c->broken : -ECONNRESET;
        for (struct pending *p = c->pending; p; p = p->next)
                pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&c->lock);
        close(c->fd);
        close(c->wake_fd);
        frame_reader_done(&c->rd);
        pthread_mutex_destroy(&c->lock);
        free(c);
}

bool cc_ttrpc_client_broken(struct cc_ttrpc_client *c)
{
        pthread_mutex_lock(&c->lock);
        bool b = c->broken != 0;
        pthread_mutex_unlock(&c->lock);
        return b;
}

static void mark_broken(struct cc_ttrpc_client *c, int r)
{
        if (!c->broken)
                c->broken = r;
        for (struct pending *p = c->pending; p; p = p->next)
                pthread_cond_signal(&p->cond);
}

/* Called with c->lock held and c->reading set by us; reads one frame without the lock. */
static void read_one(struct cc_ttrpc_client *c, int64_t deadline_ns)
{
        pthread_mutex_unlock(&c->lock);
        struct cc_ttrpc_header h;
        const uint8_t *data = NULL;
        Ttrpc__Response *resp = NULL;
        int r = frame_read(&c->rd, &h, &data, deadline_ns);
        if (r == 0 && h.type == CC_TTRPC_RESPONSE) {
                resp = ttrpc__response__unpack(NULL, h.length, data);
                if (!resp)
                        r = -EBADMSG;
        }
        pthread_mutex_lock(&c->lock);
        c->reading = false;
        if (r == -EAGAIN)
                return; /* our deadline: someone else may take over reading */
        if (r < 0) {
                if (r != -ECONNRESET && r != -ECANCELED)
                        cc_log_debug("ttrpc client: connection broken: %s", strerror(-r));
                mark_broken(c, r == -ECANCELED ? -ECONNRESET : r);
                return;
        }
        if (!resp)
                return; /* not a response: nothing in this API streams, ignore */
        for (struct pending *p = c->pending; p; p = p->next)
                if (p->id == h.stream_id && !p->done) {
                        p->resp = resp;
                        p->done = true;
                        pthread_cond_signal(&p->cond);
                        return;
                }
        /* A late answer to a call that timed out: drop it. */
        ttrpc__response__free_unpacked(resp, NULL);
}

/* Writes every frame in iov (sendmsg with MSG_NOSIGNAL on sockets, writev otherwise). */
static int writev_full(struct cc_ttrpc_client *c, struct iovec *iov, int n)
{
        while (n > 0) {
                ssize_t w;
                if (c->is_socket) {
                        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
                        w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
                } else {
                        w = writev(c->fd, iov, n);
                }
                if (w < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return -errno;
                }
                while (n > 0 && (size_t)w >= iov->iov_len) {
                        w -= (ssize_t)iov->iov_len;
                        iov++;
                        n--;
                }
                if (n > 0) {
                        iov->iov_base = (uint8_t *)iov->iov_base + w;
                        iov->iov_len -= (size_t)w;
                }
        }
        return 0;
}

/*
 * Called with c->lock held and c->writing set: writes the queued frames in batches (one
 * sendmsg for every frame queued meanwhile by other callers), in stream-id order.
 */
static void flush_writes(struct cc_ttrpc_client *c)
{
        while (c->wq_head && !c->broken) {
                struct iovec iov[64];
                struct pending *batch = c->wq_head, *p = batch;
                int n = 0;
                for (; p && n < 64; p = p->wnext, n++) {
                        iov[n] = (struct iovec){(void *)p->frame, p->flen};
                        p->queued = false;
                }
                c->wq_head = p;
                if (!p)
                        c->wq_tail = NULL;
                pthread_mutex_unlock(&c->lock);
                int r = writev_full(c, iov, n);
                pthread_mutex_lock(&c->lock);
                for (int i = 0; i < n; i++, batch = batch->wnext) {
                        batch->written = true;
                        pthread_cond_signal(&batch->cond);
                }
                if (r < 0)
                        mark_broken(c, r == -EPIPE ? -ECONNRESET : r);
        }
        /* Frames still queued on a broken connection will never leave. */
        for (struct pending *p = c->wq_head; p; p = p->wnext) {
                p->queued = false;
                p->written = true;
        }
        c->wq_head = c->wq_tail = NULL;
        c->writing = false;
}

static void unlink_pending(struct cc_ttrpc_client *c, struct pending *me)
{
        /* The frame belongs to the caller: take it out of the queue, or wait until the writer
         * that took it is done with it. */
        if (me->queued) {
                for (struct pending **pp = &c->wq_head, *prev = NULL; *pp;
                     prev = *pp, pp = &(*pp)->wnext)
                        if (*pp == me) {
                                *pp = me->wnext;
                                if (c->wq_tail == me)
                                        c->wq_tail = prev;
                                break;
                        }
                me->queued = false;
                me->written = true;
        }
        while (!me->written)
                pthread_cond_wait(&me->cond, &c->lock);

        for (struct pending **pp = &c->pending; *pp; pp = &(*pp)->next)
                if (*pp == me) {
                        *pp = me->next;
                        break;
                }
        /* Hand the reading role to a caller blocked on its condition variable. Callers that are
         * not blocked (one may be busy writing) look at c->reading themselves before they
         * block, so waking one blocked caller is enough and no wake-up is lost. */
        if (!c->reading)
                for (struct pending *p = c->pending; p; p = p->next)
                        if (!p->done && p->waiting) {
                                pthread_cond_signal(&p->cond);
                                break;
                        }
}

static int call_frame(struct cc_ttrpc_client *c, const char *service, const char *method,
                      const uint8_t *payload, size_t len, const struct cc_ttrpc_call_opts *opts,
                      Ttrpc__Response **ret, struct cc_error **err)
{
        int64_t timeout = opts ? opts->timeout_ns : 0;
        int64_t deadline = timeout > 0 ? ttrpc_now_ns() + timeout : 0;

        Ttrpc__Request req = TTRPC__REQUEST__INIT;
        req.service = (char *)service;
        req.method = (char *)method;
        req.payload.data = (uint8_t *)payload;
        req.payload.len = len;
        req.timeout_nano = timeout > 0 ? timeout : 0;
        size_t n_md = opts ? opts->n_md : 0;
        Ttrpc__KeyValue kvs[n_md ? n_md : 1];
        Ttrpc__KeyValue *kvp[n_md ? n_md : 1];
        for (size_t i = 0; i < n_md; i++) {
                ttrpc__key_value__init(&kvs[i]);
                kvs[i].key = (char *)opts->md[i].key;
                kvs[i].value = (char *)opts->md[i].value;
                kvp[i] = &kvs[i];
        }
        req.n_metadata = n_md;
        req.metadata = kvp;

        struct pending me = {0};
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&me.cond, &ca);
        pthread_condattr_destroy(&ca);

        /* The frame is built first and its stream id patched in under the write lock: ids
         * must reach the server in increasing order (ttrpc >= 1.2 refuses a smaller one). */
        _cleanup_free_ uint8_t *frame = NULL;
        size_t flen;
        int r = frame_build_message(0, CC_TTRPC_REQUEST, &req.base, &frame, &flen);
        if (r < 0) {
                pthread_cond_destroy(&me.cond);
                if (r == -EMSGSIZE)
                        return cc_error_set(err, EMSGSIZE,
                                            "ttrpc: %s/%s: request of %zu bytes exceeds the "
                                            "maximum message size of %u",
                                            service, method, len, CC_TTRPC_MAX_DATA);
                return cc_error_set(err, -r, "ttrpc: %s/%s: %s", service, method, strerror(-r));
        }

        pthread_mutex_lock(&c->lock);
        if (c->broken) {
                r = c->broken;
                pthread_mutex_unlock(&c->lock);
                pthread_cond_destroy(&me.cond);
                return cc_error_set(err, ECONNRESET, "ttrpc: %s/%s: connection closed (%s)",
                                    service, method, strerror(-r));
        }
        /* Ids are given in queue order and the queue is written in order. */
        me.id = c->next_id;
        c->next_id += 2;
        frame[4] = (uint8_t)(me.id >> 24);
        frame[5] = (uint8_t)(me.id >> 16);
        frame[6] = (uint8_t)(me.id >> 8);
        frame[7] = (uint8_t)me.id;
        me.frame = frame;
        me.flen = flen;
        me.queued = true;
        me.next = c->pending;
        c->pending = &me;
        if (c->wq_tail)
                c->wq_tail->wnext = &me;
        else
                c->wq_head = &me;
        c->wq_tail = &me;
        if (!c->writing) {
                c->writing = true;
                flush_writes(c);
        }

        while (r == 0 && !me.done) {
                if (c->broken) {
                        r = c->broken == -ECANCELED ? -ECONNRESET : c->broken;
                        break;
                }
                if (deadline && ttrpc_now_ns() >= deadline) {
                        r = -ETIMEDOUT;
                        break;
                }
                if (!c->reading) {
                        c->reading = true;
                        read_one(c, deadline);
                        continue;
                }
                me.waiting = true;
                if (deadline) {
                        struct timespec ts = {.tv_sec = deadline / 1000000000,
                                              .tv_nsec = deadline % 1000000000};
                        pthread_cond_timedwait(&me.cond, &c->lock, &ts);
                } else {
                        pthread_cond_wait(&me.cond, &c->lock);
                }
                me.waiting = false;
        }
        unlink_pending(c, &me);
        pthread_mutex_unlock(&c->lock);
        pthread_cond_destroy(&me.cond);

        if (me.done) {
                *ret = me.resp;
                return 0;
        }
        switch (r) {
        case -ETIMEDOUT:
                return cc_error_set_code(err, CC_GRPC_DEADLINE_EXCEEDED,
                                         "ttrpc: %s/%s: context deadline exceeded", service,
                                         method);
        default:
                return cc_error_set(err, r, "ttrpc: %s/%s: %s", service, method,
                                    r == -EPROTO || r == -EBADMSG ? "protocol error from server"
                                                                  : strerror(-r));
        }
}

/* A present status with a non-zero code is an error; absent or code 0 is success. */
static int status_error(const Ttrpc__Response *resp, struct cc_error **err)
{
        if (!resp->status || resp->status->code == 0)
                return 0;
        int code = resp->status->code;
        const char *msg = resp->status->message && *resp->status->message
                                  ? resp->status->message
                                  : cc_grpc_code_name(code);
        if (code < 0 || code >= _CC_GRPC_MAX)
                code = CC_GRPC_UNKNOWN;
        return cc_error_set_code(err, code, "%s", msg);
}

int cc_ttrpc_client_call_raw(struct cc_ttrpc_client *c, const char *service, const char *method,
                             const uint8_t *payload, size_t len, uint8_t **ret_payload,
                             size_t *ret_len, const struct cc_ttrpc_call_opts *opts,
                             struct cc_error **err)
{
        Ttrpc__Response *resp = NULL;
        int r = call_frame(c, service, method, payload, len, opts, &resp, err);
        if (r < 0)
                return r;
        r = status_error(resp, err);
        if (r == 0 && ret_payload) {
                *ret_len = resp->payload.len;
                *ret_payload = NULL;
                if (resp->payload.len) {
                        /* Steal protobuf-c's copy of the payload (default allocator = malloc). */
                        *ret_payload = resp->payload.data;
                        resp->payload.data = NULL;
                        resp->payload.len = 0;
                }
        }
        ttrpc__response__free_unpacked(resp, NULL);
        return r;
}

int cc_ttrpc_client_call(struct cc_ttrpc_client *c, const char *service, const char *method,
                         const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                         ProtobufCMessage **ret_resp, const struct cc_ttrpc_call_opts *opts,
                         struct cc_error **err)
{
        size_t len = req ? protobuf_c_message_get_packed_size(req) : 0;
        if (len > CC_TTRPC_MAX_DATA)
                return cc_error_set(err, EMSGSIZE,
                                    "ttrpc: %s/%s: request of %zu bytes exceeds the maximum "
                                    "message size of %u",
                                    service, method, len, CC_TTRPC_MAX_DATA);
        _cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
        if (!buf)
                return -ENOMEM;
        if (len)
                protobuf_c_message_pack(req, buf);

        Ttrpc__Response *resp = NULL;
        int r = call_frame(c, service, method, buf, len, opts, &resp, err);
        if (r < 0)
                return r;
        r = status_error(resp, err);
        if (r == 0 && resp_desc && ret_resp) {
                ProtobufCMessage *m = protobuf_c_message_unpack(resp_desc, NULL, resp->payload.len,
                                                                resp->payload.data);
                if (!m)
                        r = cc_error_set(err, EBADMSG,
                                         "ttrpc: %s/%s: response is not a valid %s", service,
                                         method, resp_desc->name);
                else
                        *ret_resp = m;
        }
        ttrpc__response__free_unpacked(resp, NULL);
        return r;
}
