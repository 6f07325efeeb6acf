/*
 * ttrpc server. One reader thread per connection decodes frames; each request runs on a worker
 * thread (or, for CC_TTRPC_METHOD_INLINE methods, on the reader itself), so a call that blocks
 * (a task's Wait) never holds back the calls behind it on the same connection. Responses are
 * written whole under a per-connection lock, in completion order, as the Go server does.
 *
 * Protocol errors inside one stream (even or re-used stream id, unknown service or method, a
 * payload that does not decode) are answered with a status on that stream and the connection
 * stays up. A frame that cannot be framed or trusted (oversized, truncated, an envelope that is
 * not a ttrpc.Request) closes that connection with a logged reason; other connections go on.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cc/log.h"
#include "cc/ttrpc.h"

#include "google/rpc/status.pb-c.h"
#include "ttrpc-internal.h"

#define DEFAULT_MAX_WORKERS 128
#define WORKER_IDLE_SECONDS 10

struct svc_entry {
        const struct cc_ttrpc_service *svc;
        void *userdata;
};

struct conn {
        struct cc_ttrpc_server *srv;
        int fd;
        bool is_socket;
        bool has_cred;
        struct ucred cred;
        pthread_mutex_t wlock; /* serialises whole-frame writes */
        int refs;              /* reader + calls in flight; under srv->lock */
        uint32_t last_id;      /* reader thread only */
        int close_reason;      /* 0 on a clean EOF or shutdown, else -errno */
        /* Answers of inline calls, collected by the reader thread and written in one go once
         * no further request is buffered (many small frames, one write). */
        uint8_t *out;
        size_t out_len, out_cap;
        struct conn *prev, *next;
};

struct arena_node {
        struct arena_node *next;
        max_align_t data[];
};

struct cc_ttrpc_call {
        struct conn *conn;
        uint32_t stream_id;
        Ttrpc__Request *req;
        const struct cc_ttrpc_method *method;
        void *userdata;
        int64_t deadline_ns; /* CLOCK_MONOTONIC, 0 = none */
        bool on_reader;      /* runs on the connection's reader thread (inline) */
        struct arena_node *arena;
        struct cc_ttrpc_call *next; /* work queue link */
};

struct cc_ttrpc_server {
        struct cc_ttrpc_server_options opts;
        pthread_mutex_t lock;
        pthread_cond_t work_cond; /* a call was queued, or shutdown */
        pthread_cond_t done_cond; /* a connection or a worker went away */
        struct svc_entry *svcs;
        size_t n_svcs;
        int wake_fd; /* eventfd: readable once shutting down */
        int listen_fd;
        pthread_t accept_thread;
        bool has_accept_thread;
        struct conn *conns;
        unsigned n_conns;
        struct cc_ttrpc_call *q_head, *q_tail;
        unsigned q_len, n_workers, n_idle;
        bool shutting_down;
};

/* ---- per-call memory ------------------------------------------------------------------ */

void *cc_ttrpc_call_alloc(struct cc_ttrpc_call *call, size_t size)
{
        struct arena_node *n = calloc(1, sizeof(*n) + size);
        if (!n)
                return NULL;
        n->next = call->arena;
        call->arena = n;
        return n->data;
}

char *cc_ttrpc_call_strdup(struct cc_ttrpc_call *call, const char *s)
{
        size_t len = strlen(s);
        char *p = cc_ttrpc_call_alloc(call, len + 1);
        if (p)
                memcpy(p, s, len + 1);
        return p;
}

char *cc_ttrpc_call_printf(struct cc_ttrpc_call *call, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int len = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (len < 0)
                return NULL;
        char *p = cc_ttrpc_call_alloc(call, (size_t)len + 1);
        if (!p)
                return NULL;
        va_start(ap, fmt);
        vsnprintf(p, (size_t)len + 1, fmt, ap);
        va_end(ap);
        return p;
}

const char *cc_ttrpc_call_metadata(struct cc_ttrpc_call *call, const char *key)
{
        for (size_t i = 0; i < call->req->n_metadata; i++) {
                const Ttrpc__KeyValue *kv = call->req->metadata[i];
                if (kv->key && strcasecmp(kv->key, key) == 0)
                        return kv->value;
        }
        return NULL;
}

int64_t cc_ttrpc_call_remaining_ns(struct cc_ttrpc_call *call)
{
        if (call->deadline_ns == 0)
                return INT64_MAX;
        int64_t left = call->deadline_ns - ttrpc_now_ns();
        return left > 0 ? left : 0;
}

int cc_ttrpc_call_peer(struct cc_ttrpc_call *call, pid_t *pid, uid_t *uid, gid_t *gid)
{
        if (!call->conn->has_cred)
                return -ENOTSUP;
        if (pid)
                *pid = call->conn->cred.pid;
        if (uid)
                *uid = call->conn->cred.uid;
        if (gid)
                *gid = call->conn->cred.gid;
        return 0;
}

static void call_free(struct cc_ttrpc_call *call)
{
        if (!call)
                return;
        while (call->arena) {
                struct arena_node *n = call->arena;
                call->arena = n->next;
                free(n);
        }
        if (call->req)
                ttrpc__request__free_unpacked(call->req, NULL);
        free(call);
}

/* ---- connections ----------------------------------------------------------------------- */

static void conn_unref(struct conn *c)
{
        struct cc_ttrpc_server *srv = c->srv;
        pthread_mutex_lock(&srv->lock);
        bool last = --c->refs == 0;
        pthread_mutex_unlock(&srv->lock);
        if (!last)
                return;

        /* Unlink first (shutdown walks the list and must never see a closed fd), then close
         * before telling anyone, so a virtio-serial port can be reopened right away. */
        pthread_mutex_lock(&srv->lock);
        if (c->prev)
                c->prev->next = c->next;
        else
                srv->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        pthread_mutex_unlock(&srv->lock);

        close(c->fd);
        pthread_mutex_destroy(&c->wlock);
        free(c->out);
        if (srv->opts.on_conn_closed)
                srv->opts.on_conn_closed(srv->opts.userdata, c->close_reason);
        free(c);

        pthread_mutex_lock(&srv->lock);
        srv->n_conns--;
        pthread_cond_broadcast(&srv->done_cond);
        pthread_mutex_unlock(&srv->lock);
}

static int conn_write(struct conn *c, const uint8_t *buf, size_t len)
{
        if (len == 0)
                return 0;
        pthread_mutex_lock(&c->wlock);
        int r = write_full(c->fd, c->is_socket, buf, len);
        pthread_mutex_unlock(&c->wlock);
        if (r < 0)
                cc_log_debug("ttrpc: write of %zu bytes failed: %s", len, strerror(-r));
        return r;
}

#define OUT_FLUSH_SIZE (64u * 1024u)

/* Reader thread only: writes the collected answers of inline calls. */
static int conn_flush(struct conn *c)
{
        int r = conn_write(c, c->out, c->out_len);
        c->out_len = 0;
        return r;
}

/* Sends a whole frame now, or (deferred, reader thread only) with the next flush. */
static int conn_send(struct conn *c, bool deferred, const uint8_t *buf, size_t len)
{
        if (!deferred)
                return conn_write(c, buf, len); /* a worker: never touches c->out */
        if (len > OUT_FLUSH_SIZE)
                return conn_flush(c) < 0 ? -EPIPE : conn_write(c, buf, len);
        if (c->out_len + len > c->out_cap) {
                size_t cap = CC_MAX(c->out_cap * 2, CC_MAX(c->out_len + len, (size_t)4096));
                uint8_t *n = realloc(c->out, cap);
                if (!n)
                        return conn_flush(c) < 0 ? -EPIPE : conn_write(c, buf, len);
                c->out = n;
                c->out_cap = cap;
        }
        memcpy(c->out + c->out_len, buf, len);
        c->out_len += len;
        return c->out_len >= OUT_FLUSH_SIZE ? conn_flush(c) : 0;
}

static int send_status(struct conn *c, bool deferred, uint32_t stream_id, int code, const char *fmt,
                       ...) _printf_(5, 6);

static int send_status(struct conn *c, bool deferred, uint32_t stream_id, int code, const char *fmt,
                       ...)
{
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);

        Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
        st.code = code;
        st.message = msg ? msg : (char *)cc_grpc_code_name(code);
        Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
        resp.status = &st;
        _cleanup_free_ uint8_t *frame = NULL;
        size_t len;
        int r = frame_build_message(stream_id, CC_TTRPC_RESPONSE, &resp.base, &frame, &len);
        if (r < 0)
                return r;
        return conn_send(c, deferred, frame, len);
}

/*
 * Success: a Response with no status and the payload as field 2, encoded straight into the
 * frame buffer (one allocation, no intermediate copy).
 */
static int send_payload(struct conn *c, bool deferred, uint32_t stream_id,
                        const ProtobufCMessage *msg)
{
        size_t plen = msg ? protobuf_c_message_get_packed_size(msg) : 0;
        uint8_t lenbuf[10];
        size_t vlen = 0;
        for (size_t v = plen;; v >>= 7) {
                lenbuf[vlen++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
                if (v <= 0x7f)
                        break;
        }
        size_t dlen = plen ? 1 + vlen + plen : 0;
        if (dlen > CC_TTRPC_MAX_DATA)
                return send_status(c, deferred, stream_id, CC_GRPC_RESOURCE_EXHAUSTED,
                                   "response of %zu bytes exceeds the maximum message size of %u",
                                   dlen, CC_TTRPC_MAX_DATA);
        _cleanup_free_ uint8_t *frame = malloc(CC_TTRPC_HEADER_SIZE + dlen);
        if (!frame)
                return -ENOMEM;
        struct cc_ttrpc_header h = {
                .length = (uint32_t)dlen, .stream_id = stream_id, .type = CC_TTRPC_RESPONSE};
        cc_ttrpc_header_encode(&h, frame);
        if (plen) {
                frame[CC_TTRPC_HEADER_SIZE] = 0x12; /* field 2 (payload), length-delimited */
                memcpy(frame + CC_TTRPC_HEADER_SIZE + 1, lenbuf, vlen);
                protobuf_c_message_pack(msg, frame + CC_TTRPC_HEADER_SIZE + 1 + vlen);
        }
        return conn_send(c, deferred, frame, CC_TTRPC_HEADER_SIZE + dlen);
}

/* Decodes the request, runs the handler and sends its answer. */
static void answer_call(struct cc_ttrpc_call *call)
{
        struct conn *c = call->conn;
        const struct cc_ttrpc_method *m = call->method;

        if (call->deadline_ns && ttrpc_now_ns() >= call->deadline_ns) {
                send_status(c, call->on_reader, call->stream_id, CC_GRPC_DEADLINE_EXCEEDED,
                            "context deadline exceeded before %s ran", m->name);
                return;
        }
        char field[128];
        if (c->srv->opts.reject_nul_strings &&
            cc_pb_find_nul_string(m->request, call->req->payload.data, call->req->payload.len,
                                  field, sizeof(field)) > 0) {
                send_status(c, call->on_reader, call->stream_id, CC_GRPC_INVALID_ARGUMENT,
                            "%s: field '%s' contains a NUL byte", m->name, field);
                return;
        }
        ProtobufCMessage *req = protobuf_c_message_unpack(m->request, NULL, call->req->payload.len,
                                                          call->req->payload.data);
        if (!req) {
                send_status(c, call->on_reader, call->stream_id, CC_GRPC_INTERNAL,
                            "ttrpc: error unmarshalling payload: not a valid %s", m->request->name);
                return;
        }
        ProtobufCMessage *resp = NULL;
        if (m->response) {
                resp = cc_ttrpc_call_alloc(call, m->response->sizeof_message);
                if (!resp) {
                        protobuf_c_message_free_unpacked(req, NULL);
                        send_status(c, call->on_reader, call->stream_id, CC_GRPC_RESOURCE_EXHAUSTED,
                                    "out of memory");
                        return;
                }
                m->response->message_init(resp);
        }

        _cleanup_error_ struct cc_error *err = NULL;
        int r = m->handler(call, call->userdata, req, resp, &err);
        protobuf_c_message_free_unpacked(req, NULL);
        if (r < 0) {
                int code = err ? cc_error_grpc_code(err) : cc_errno_to_grpc(r);
                send_status(c, call->on_reader, call->stream_id, code, "%s",
                            err ? cc_error_message(err) : strerror(-r));
        } else {
                send_payload(c, call->on_reader, call->stream_id, resp);
        }
}

/* Runs one call to completion and releases it (and its connection reference). */
static void run_call(struct cc_ttrpc_call *call)
{
        struct conn *c = call->conn;
        answer_call(call);
        call_free(call);
        conn_unref(c);
}

/* ---- workers --------------------------------------------------------------------------- */

static void *worker_main(void *arg)
{
        struct cc_ttrpc_server *srv = arg;
        pthread_mutex_lock(&srv->lock);
        for (;;) {
                while (!srv->q_head && !srv->shutting_down) {
                        struct timespec ts;
                        clock_gettime(CLOCK_MONOTONIC, &ts);
                        ts.tv_sec += WORKER_IDLE_SECONDS;
                        srv->n_idle++;
                        int r = pthread_cond_timedwait(&srv->work_cond, &srv->lock, &ts);
                        srv->n_idle--;
                        if (r == ETIMEDOUT && !srv->q_head)
                                goto exit;
                }
                struct cc_ttrpc_call *call = srv->q_head;
                if (!call)
                        break; /* shutting down and nothing queued */
                srv->q_head = call->next;
                if (!srv->q_head)
                        srv->q_tail = NULL;
                srv->q_len--;
                pthread_mutex_unlock(&srv->lock);
                run_call(call);
                pthread_mutex_lock(&srv->lock);
        }
exit:
        srv->n_workers--;
        pthread_cond_broadcast(&srv->done_cond);
        pthread_mutex_unlock(&srv->lock);
        return NULL;
}

static int spawn_detached(void *(*fn)(void *), void *arg)
{
        pthread_attr_t attr;
        pthread_t t;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        int r = pthread_create(&t, &attr, fn, arg);
        pthread_attr_destroy(&attr);
        return -r;
}

/* Queues a call; starts a worker when every idle one already has a call waiting for it. */
static void enqueue(struct cc_ttrpc_server *srv, struct cc_ttrpc_call *call)
{
        pthread_mutex_lock(&srv->lock);
        if (srv->q_tail)
                srv->q_tail->next = call;
        else
                srv->q_head = call;
        srv->q_tail = call;
        srv->q_len++;
        if (srv->q_len > srv->n_idle && srv->n_workers < srv->opts.max_workers) {
                if (spawn_detached(worker_main, srv) == 0)
                        srv->n_workers++;
        }
        pthread_cond_signal(&srv->work_cond);
        pthread_mutex_unlock(&srv->lock);
}

/* ---- request dispatch ------------------------------------------------------------------ */

static const struct cc_ttrpc_method *lookup(struct cc_ttrpc_server *srv, const char *service,
                                            const char *method, void **userdata,
                                            bool *service_found)
{
        *service_found = false;
        for (size_t i = 0; i < srv->n_svcs; i++) {
                const struct cc_ttrpc_service *svc = srv->svcs[i].svc;
                if (strcmp(svc->name, service) != 0)
                        continue;
                *service_found = true;
                for (size_t j = 0; j < svc->n_methods; j++)
                        if (strcmp(svc->methods[j].name, method) == 0) {
                                *userdata = srv->svcs[i].userdata;
                                return &svc->methods[j];
                        }
        }
        return NULL;
}

/* Returns < 0 when the connection must be closed. */
static int handle_request(struct conn *c, const struct cc_ttrpc_header *h, const uint8_t *data)
{
        struct cc_ttrpc_server *srv = c->srv;

        if (h->stream_id % 2 == 0) {
                send_status(c, true, h->stream_id, CC_GRPC_INVALID_ARGUMENT,
                            "StreamID must be odd for client initiated streams");
                return 0;
        }
        if (h->stream_id <= c->last_id) {
                send_status(c, true, h->stream_id, CC_GRPC_INVALID_ARGUMENT,
                            "StreamID cannot be re-used and must increment");
                return 0;
        }
        c->last_id = h->stream_id;

        Ttrpc__Request *req = ttrpc__request__unpack(NULL, h->length, data);
        if (!req) {
                send_status(c, true, h->stream_id, CC_GRPC_INVALID_ARGUMENT,
                            "unmarshal request error: not a ttrpc.Request");
                cc_log_debug("ttrpc: closing connection: stream %u carries %u bytes that are not "
                             "a ttrpc.Request",
                             h->stream_id, h->length);
                return -EBADMSG;
        }
        if (h->flags != 0) {
                send_status(c, true, h->stream_id, CC_GRPC_UNIMPLEMENTED,
                            "streaming requests are not supported (flags 0x%x)", h->flags);
                ttrpc__request__free_unpacked(req, NULL);
                return 0;
        }

        void *userdata = NULL;
        bool service_found;
        const struct cc_ttrpc_method *m =
                lookup(srv, req->service ? req->service : "", req->method ? req->method : "",
                       &userdata, &service_found);
        if (!m) {
                if (service_found)
                        send_status(c, true, h->stream_id, CC_GRPC_UNIMPLEMENTED, "method %s",
                                    req->method);
                else
                        send_status(c, true, h->stream_id, CC_GRPC_UNIMPLEMENTED, "service %s",
                                    req->service);
                ttrpc__request__free_unpacked(req, NULL);
                return 0;
        }

        struct cc_ttrpc_call *call = calloc(1, sizeof(*call));
        if (!call) {
                ttrpc__request__free_unpacked(req, NULL);
                send_status(c, true, h->stream_id, CC_GRPC_RESOURCE_EXHAUSTED, "out of memory");
                return 0;
        }
        call->conn = c;
        call->stream_id = h->stream_id;
        call->req = req;
        call->method = m;
        call->userdata = userdata;
        if (req->timeout_nano > 0)
                call->deadline_ns = ttrpc_now_ns() + req->timeout_nano;

        pthread_mutex_lock(&srv->lock);
        c->refs++;
        pthread_mutex_unlock(&srv->lock);

        if (m->flags & CC_TTRPC_METHOD_INLINE) {
                call->on_reader = true;
                run_call(call);
        } else
                enqueue(srv, call);
        return 0;
}

static void *conn_main(void *arg)
{
        struct conn *c = arg;
        struct frame_reader rd;
        int r = frame_reader_init(&rd, c->fd, c->is_socket, c->srv->wake_fd);
        while (r == 0) {
                struct cc_ttrpc_header h;
                const uint8_t *data = NULL;
                if (c->out_len && !frame_reader_has_frame(&rd))
                        conn_flush(c);
                r = frame_read(&rd, &h, &data, 0);
                if (r == -EMSGSIZE) {
                        cc_log_debug("ttrpc: closing connection: frame of %u bytes on stream %u "
                                     "exceeds the maximum message size of %u",
                                     h.length, h.stream_id, CC_TTRPC_MAX_DATA);
                        send_status(c, true, h.stream_id, CC_GRPC_RESOURCE_EXHAUSTED,
                                    "message length %u exceed maximum message size of %u", h.length,
                                    CC_TTRPC_MAX_DATA);
                        break;
                }
                if (r == -EPROTO) {
                        cc_log_debug("ttrpc: closing connection: truncated frame (EOF inside a "
                                     "frame)");
                        break;
                }
                if (r < 0) {
                        if (r != -ECONNRESET && r != -ECANCELED)
                                cc_log_debug("ttrpc: closing connection: read: %s", strerror(-r));
                        else
                                r = 0;
                        break;
                }
                switch (h.type) {
                case CC_TTRPC_REQUEST:
                        r = handle_request(c, &h, data);
                        break;
                case CC_TTRPC_DATA:
                        /* No method here streams, so no stream can be open for data. */
                        send_status(c, true, h.stream_id, CC_GRPC_INVALID_ARGUMENT,
                                    "StreamID is no longer active");
                        break;
                default:
                        /* Responses from a client and unknown types are ignored, as ttrpc
                         * 1.1 does for forward compatibility. */
                        cc_log_debug("ttrpc: ignoring frame of type %u on stream %u", h.type,
                                     h.stream_id);
                        break;
                }
        }
        conn_flush(c);
        c->close_reason = r;
        frame_reader_done(&rd);
        conn_unref(c);
        return NULL;
}

/* ---- server ---------------------------------------------------------------------------- */

int cc_ttrpc_server_new(const struct cc_ttrpc_server_options *opts, struct cc_ttrpc_server **ret)
{
        struct cc_ttrpc_server *srv = calloc(1, sizeof(*srv));
        if (!srv)
                return -ENOMEM;
        if (opts)
                srv->opts = *opts;
        if (srv->opts.max_workers == 0)
                srv->opts.max_workers = DEFAULT_MAX_WORKERS;
        srv->listen_fd = -1;
        srv->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (srv->wake_fd < 0) {
                int r = -errno;
                free(srv);
                return r;
        }
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_mutex_init(&srv->lock, NULL);
        pthread_cond_init(&srv->work_cond, &ca);
        pthread_cond_init(&srv->done_cond, &ca);
        pthread_condattr_destroy(&ca);
        *ret = srv;
        return 0;
}

int cc_ttrpc_server_register(struct cc_ttrpc_server *s, const struct cc_ttrpc_service *svc,
                             void *userdata)
{
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < s->n_svcs; i++)
                if (strcmp(s->svcs[i].svc->name, svc->name) == 0) {
                        pthread_mutex_unlock(&s->lock);
                        return -EEXIST;
                }
        struct svc_entry *n = realloc(s->svcs, (s->n_svcs + 1) * sizeof(*n));
        if (!n) {
                pthread_mutex_unlock(&s->lock);
                return -ENOMEM;
        }
        n[s->n_svcs++] = (struct svc_entry){svc, userdata};
        s->svcs = n;
        pthread_mutex_unlock(&s->lock);
        return 0;
}

int cc_ttrpc_server_add_conn(struct cc_ttrpc_server *s, int fd)
{
        _cleanup_close_ int cfd = fd;
        struct conn *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->srv = s;
        int type;
        socklen_t tl = sizeof(type);
        c->is_socket = getsockopt(cfd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0;
        socklen_t cl = sizeof(c->cred);
        if (c->is_socket && getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &c->cred, &cl) == 0 &&
            cl == sizeof(c->cred))
                c->has_cred = true;
        if (s->opts.require_same_user && c->has_cred &&
            (c->cred.uid != geteuid() || c->cred.gid != getegid())) {
                cc_log_debug("ttrpc: refusing connection from pid %d uid %u gid %u: not our user",
                             (int)c->cred.pid, c->cred.uid, c->cred.gid);
                free(c);
                return -EPERM;
        }
        pthread_mutex_init(&c->wlock, NULL);
        c->refs = 1;

        pthread_mutex_lock(&s->lock);
        if (s->shutting_down) {
                pthread_mutex_unlock(&s->lock);
                pthread_mutex_destroy(&c->wlock);
                free(c);
                return -ESHUTDOWN;
        }
        c->fd = TAKE_FD(cfd);
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        int r = spawn_detached(conn_main, c);
        if (r < 0) {
                s->conns = c->next;
                if (s->conns)
                        s->conns->prev = NULL;
                s->n_conns--;
                close(c->fd);
                pthread_mutex_destroy(&c->wlock);
                free(c);
        }
        pthread_mutex_unlock(&s->lock);
        return r;
}

static void *accept_main(void *arg)
{
        struct cc_ttrpc_server *srv = arg;
        for (;;) {
                struct pollfd p[2] = {{.fd = srv->listen_fd, .events = POLLIN},
                                      {.fd = srv->wake_fd, .events = POLLIN}};
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        cc_log_debug("ttrpc: accept loop: poll: %m");
                        return NULL;
                }
                if (p[1].revents & POLLIN)
                        return NULL;
                int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED)
                                continue;
                        if (errno == EMFILE || errno == ENFILE) {
                                /* Out of fds: back off instead of spinning. */
                                cc_log_debug("ttrpc: accept: %m");
                                poll(NULL, 0, 100);
                                continue;
                        }
                        cc_log_debug("ttrpc: accept: %m");
                        return NULL;
                }
                cc_ttrpc_server_add_conn(srv, fd);
        }
}

int cc_ttrpc_server_listen(struct cc_ttrpc_server *s, int listen_fd)
{
        if (s->has_accept_thread) {
                close(listen_fd);
                return -EBUSY;
        }
        s->listen_fd = listen_fd;
        int r = -pthread_create(&s->accept_thread, NULL, accept_main, s);
        if (r < 0) {
                close(listen_fd);
                s->listen_fd = -1;
                return r;
        }
        s->has_accept_thread = true;
        return 0;
}

unsigned cc_ttrpc_server_n_conns(struct cc_ttrpc_server *s)
{
        pthread_mutex_lock(&s->lock);
        unsigned n = s->n_conns;
        pthread_mutex_unlock(&s->lock);
        return n;
}

void cc_ttrpc_server_shutdown(struct cc_ttrpc_server *s)
{
        pthread_mutex_lock(&s->lock);
        bool already = s->shutting_down;
        s->shutting_down = true;
        pthread_mutex_unlock(&s->lock);
        if (already)
                return;

        /* The accept loop and readers of non-sockets poll the eventfd: one write wakes them all
         * for good. Readers of sockets block in read(2): shutdown(SHUT_RD) ends that read. */
        uint64_t one = 1;
        ssize_t w _unused_ = write(s->wake_fd, &one, sizeof(one));
        pthread_mutex_lock(&s->lock);
        for (struct conn *c = s->conns; c; c = c->next)
                if (c->is_socket)
                        shutdown(c->fd, SHUT_RD);
        pthread_mutex_unlock(&s->lock);
        if (s->has_accept_thread) {
                pthread_join(s->accept_thread, NULL);
                s->has_accept_thread = false;
        }
        if (s->listen_fd >= 0)
                s->listen_fd = cc_close(s->listen_fd);

        /* Readers stop taking requests at once; a connection closes when its last call is
         * answered; workers drain the queue, then exit. */
        pthread_mutex_lock(&s->lock);
        pthread_cond_broadcast(&s->work_cond);
        while (s->n_conns > 0 || s->n_workers > 0)
                pthread_cond_wait(&s->done_cond, &s->lock);
        pthread_mutex_unlock(&s->lock);
}

void cc_ttrpc_server_free(struct cc_ttrpc_server *s)
{
        if (!s)
                return;
        cc_ttrpc_server_shutdown(s);
        close(s->wake_fd);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->work_cond);
        pthread_cond_destroy(&s->done_cond);
        free(s->svcs);
        free(s);
}
