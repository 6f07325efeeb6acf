/*
 * gRPC server over HTTP/2 cleartext on nghttp2. See cc/grpc.h for the model.
 *
 * Threads and ownership:
 *  - the accept thread turns each accepted socket into a conn with its own thread;
 *  - a conn thread owns its nghttp2 session: every nghttp2 call happens on it;
 *  - handlers run on worker threads (a small pool fed by a queue) or inline. A handler never
 *    touches the session: it appends encoded bytes to its call's output buffer under the
 *    conn's lock and wakes the conn thread through an eventfd.
 *  - struct call is shared by the conn thread (while its stream is open) and a worker (while
 *    its handler runs): reference-counted. Each call holds a reference on its conn, so the
 *    eventfd a late worker writes to stays valid after the conn thread exited.
 */
#include <errno.h>
#include <fcntl.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/grpc.h"
#include "cc/log.h"

#define MAX_HEADERS      64
#define MAX_HEADER_BYTES (16u << 10)
/* A streaming handler waits while this much of its output is unsent. */
#define SEND_HIGH_WATER  (4u << 20)
/* Per-stream and per-connection receive windows: a 16 MiB request needs few round trips. */
#define STREAM_WINDOW    (1u << 20)
#define CONN_WINDOW      (16u << 20)

struct registered {
        const struct cc_grpc_service *svc;
        void *userdata;
};

struct job {
        struct job *next;
        struct call *call;
};

struct conn;

struct cc_grpc_server {
        struct cc_grpc_server_options opts;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct registered *svcs;
        size_t n_svcs;

        int listen_fd;
        int accept_wake[2];
        pthread_t accept_thread;
        bool accepting;
        bool shut;

        struct conn *conns; /* doubly linked by conn->next/prev */
        unsigned n_conns;

        /* Worker pool. */
        struct job *jobs_head, *jobs_tail;
        unsigned n_threads, n_idle, n_busy, n_queued;
        bool stop_workers;
};

struct conn {
        struct cc_grpc_server *srv;
        struct conn *next, *prev;
        atomic_int refs;
        int fd;
        int wake_fd; /* eventfd */
        nghttp2_session *session;
        bool closing; /* server shutdown asked this conn to finish */
        bool goaway_sent;
        bool eof;

        /* Protects the output side of every call of this conn (see struct call). */
        pthread_mutex_t lock;
        pthread_cond_t space; /* signalled when a call's output buffer drains */

        /* Calls whose stream is open, touched only on the conn thread. */
        struct call *calls;

        /* Bytes mem_send gave us that the socket has not taken yet. */
        const uint8_t *pending;
        size_t n_pending;
};

struct arena_block {
        struct arena_block *next;
        max_align_t data[];
};

struct kv {
        char *key;
        char *value;
};

struct call {
        struct conn *conn;
        struct call *next, *prev; /* in conn->calls while the stream is open */
        atomic_int refs;
        int32_t stream_id;
        const struct cc_grpc_method *method;
        void *userdata;

        /* Request side: conn thread only. */
        char *path;
        char *http_method;
        char *content_type;
        struct kv *md;
        size_t n_md;
        size_t header_bytes;
        int64_t deadline_ns; /* CLOCK_MONOTONIC, or INT64_MAX */
        uint8_t *in;
        size_t n_in, cap_in;
        bool rejected;   /* an error reply was queued before the request ended */
        bool dispatched; /* the handler has been started */
        bool inline_run; /* the handler runs on the conn thread: sends must never wait */
        ProtobufCMessage *req;
        struct arena_block *arena; /* handler allocations; the handler's thread only */

        /* Output side: under conn->lock. */
        uint8_t *out;
        size_t n_out, off_out, cap_out;
        bool finished; /* the handler returned: status/message are final */
        int status;
        char *message;
        int http_status;   /* 200 unless the request was not gRPC at all */
        bool resp_started; /* HEADERS submitted */
        bool deferred;     /* the data provider is waiting for output */
        bool closed;       /* the stream is gone: further sends fail */
};

static int64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void conn_unref(struct conn *c)
{
        if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
                return;
        cc_close(c->wake_fd);
        pthread_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->space);
        free(c);
}

static void conn_wake(struct conn *c)
{
        uint64_t one = 1;
        /* A full counter or a closed conn thread both make this harmless to ignore. */
        ssize_t _unused_ n = write(c->wake_fd, &one, sizeof(one));
}

static void call_unref(struct call *call)
{
        if (!call || atomic_fetch_sub(&call->refs, 1) != 1)
                return;
        free(call->path);
        free(call->http_method);
        free(call->content_type);
        for (size_t i = 0; i < call->n_md; i++) {
                free(call->md[i].key);
                free(call->md[i].value);
        }
        free(call->md);
        free(call->in);
        if (call->req)
                protobuf_c_message_free_unpacked(call->req, NULL);
        for (struct arena_block *b = call->arena, *n; b; b = n) {
                n = b->next;
                free(b);
        }
        free(call->out);
        free(call->message);
        conn_unref(call->conn);
        free(call);
}

/* ---- per-call helpers for handlers --------------------------------------------------------- */

void *cc_grpc_call_alloc(struct cc_grpc_call *gc, size_t size)
{
        struct call *call = (struct call *)gc;
        struct arena_block *b = calloc(1, sizeof(*b) + size);
        if (!b)
                return NULL;
        b->next = call->arena;
        call->arena = b;
        return b->data;
}

char *cc_grpc_call_strdup(struct cc_grpc_call *gc, const char *s)
{
        size_t n = strlen(s) + 1;
        char *p = cc_grpc_call_alloc(gc, n);
        if (p)
                memcpy(p, s, n);
        return p;
}

const char *cc_grpc_call_metadata(struct cc_grpc_call *gc, const char *key)
{
        struct call *call = (struct call *)gc;
        for (size_t i = 0; i < call->n_md; i++)
                if (strcasecmp(call->md[i].key, key) == 0)
                        return call->md[i].value;
        return NULL;
}

int64_t cc_grpc_call_remaining_ns(struct cc_grpc_call *gc)
{
        struct call *call = (struct call *)gc;
        if (call->deadline_ns == INT64_MAX)
                return INT64_MAX;
        return call->deadline_ns - now_ns();
}

const char *cc_grpc_call_path(struct cc_grpc_call *gc)
{
        return ((struct call *)gc)->path;
}

bool cc_grpc_call_cancelled(struct cc_grpc_call *gc)
{
        struct call *call = (struct call *)gc;
        pthread_mutex_lock(&call->conn->lock);
        bool closed = call->closed;
        pthread_mutex_unlock(&call->conn->lock);
        return closed;
}

/* Appends one Length-Prefixed-Message; conn->lock held. */
static int out_append(struct call *call, const ProtobufCMessage *msg)
{
        size_t len = msg ? protobuf_c_message_get_packed_size(msg) : 0;
        size_t need = call->n_out + CC_GRPC_PREFIX_SIZE + len;
        if (need > call->cap_out) {
                size_t cap = call->cap_out ? call->cap_out : 256;
                while (cap < need)
                        cap *= 2;
                uint8_t *p = realloc(call->out, cap);
                if (!p)
                        return -ENOMEM;
                call->out = p;
                call->cap_out = cap;
        }
        uint8_t *p = call->out + call->n_out;
        p[0] = 0;
        p[1] = (uint8_t)(len >> 24);
        p[2] = (uint8_t)(len >> 16);
        p[3] = (uint8_t)(len >> 8);
        p[4] = (uint8_t)len;
        if (len)
                protobuf_c_message_pack(msg, p + CC_GRPC_PREFIX_SIZE);
        call->n_out = need;
        return 0;
}

int cc_grpc_call_send(struct cc_grpc_call *gc, const ProtobufCMessage *msg, struct cc_error **err)
{
        struct call *call = (struct call *)gc;
        struct conn *c = call->conn;
        size_t len = protobuf_c_message_get_packed_size(msg);
        if (len > c->srv->opts.max_send_msg)
                return cc_error_set(err, EMSGSIZE, "response message of %zu bytes exceeds %u", len,
                                    c->srv->opts.max_send_msg);
        pthread_mutex_lock(&c->lock);
        /* Back-pressure: wait for the conn thread to drain what the peer has not read yet
         * (not when we are the conn thread: an inline handler just queues). */
        while (!call->inline_run && !call->closed && call->n_out - call->off_out > SEND_HIGH_WATER)
                pthread_cond_wait(&c->space, &c->lock);
        int r;
        if (call->closed)
                r = cc_error_set(err, ECANCELED, "the client cancelled the call");
        else if ((r = out_append(call, msg)) < 0)
                cc_error_set(err, -r, "queue response message");
        pthread_mutex_unlock(&c->lock);
        if (r == 0)
                conn_wake(c);
        return r;
}

/* Ends a call with a status; may run on any thread. */
static void call_finish(struct call *call, int status, const char *message, int http_status)
{
        struct conn *c = call->conn;
        pthread_mutex_lock(&c->lock);
        if (!call->finished) {
                call->finished = true;
                call->status = status;
                call->http_status = http_status;
                if (message && status != CC_GRPC_OK)
                        call->message = strdup(message);
        }
        pthread_mutex_unlock(&c->lock);
        conn_wake(c);
}

/* ---- running a handler ---------------------------------------------------------------------- */

static void call_run(struct call *call)
{
        const struct cc_grpc_method *m = call->method;
        _cleanup_error_ struct cc_error *err = NULL;
        ProtobufCMessage *resp = NULL;
        bool streaming = m->flags & CC_GRPC_METHOD_SERVER_STREAM;

        if (!streaming && m->response) {
                resp = cc_grpc_call_alloc((struct cc_grpc_call *)call, m->response->sizeof_message);
                if (!resp) {
                        call_finish(call, CC_GRPC_RESOURCE_EXHAUSTED, "out of memory", 200);
                        return;
                }
                protobuf_c_message_init(m->response, resp);
        }
        int r = m->handler((struct cc_grpc_call *)call, call->userdata, call->req, resp, &err);
        if (r < 0) {
                if (!err)
                        cc_error_set(&err, -r, "%s", strerror(-r));
                call_finish(call, cc_error_grpc_code(err), cc_error_message(err), 200);
                return;
        }
        if (!streaming) {
                size_t len = resp ? protobuf_c_message_get_packed_size(resp) : 0;
                if (len > call->conn->srv->opts.max_send_msg) {
                        call_finish(call, CC_GRPC_RESOURCE_EXHAUSTED,
                                    "response message exceeds the size limit", 200);
                        return;
                }
                /* An Empty reply still carries one zero-length message: containerd fails
                 * ("EOF") on a reply made of trailers alone. */
                pthread_mutex_lock(&call->conn->lock);
                r = call->closed ? 0 : out_append(call, resp);
                pthread_mutex_unlock(&call->conn->lock);
                if (r < 0) {
                        call_finish(call, CC_GRPC_RESOURCE_EXHAUSTED, "out of memory", 200);
                        return;
                }
        }
        call_finish(call, CC_GRPC_OK, NULL, 200);
}

static void *worker_main(void *arg)
{
        struct cc_grpc_server *s = arg;
        pthread_mutex_lock(&s->lock);
        for (;;) {
                while (!s->jobs_head && !s->stop_workers) {
                        s->n_idle++;
                        pthread_cond_wait(&s->cond, &s->lock);
                        s->n_idle--;
                }
                struct job *j = s->jobs_head;
                if (!j)
                        break; /* stopping and nothing left to run */
                s->jobs_head = j->next;
                if (!s->jobs_head)
                        s->jobs_tail = NULL;
                s->n_queued--;
                s->n_busy++;
                pthread_mutex_unlock(&s->lock);
                call_run(j->call);
                call_unref(j->call);
                free(j);
                pthread_mutex_lock(&s->lock);
                s->n_busy--;
                pthread_cond_broadcast(&s->cond);
        }
        s->n_threads--;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
        return NULL;
}

static int dispatch(struct call *call)
{
        struct cc_grpc_server *s = call->conn->srv;
        if (call->method->flags & CC_GRPC_METHOD_INLINE) {
                call->inline_run = true;
                call_run(call);
                return 0;
        }
        struct job *j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        atomic_fetch_add(&call->refs, 1);
        j->call = call;
        pthread_mutex_lock(&s->lock);
        if (s->jobs_tail)
                s->jobs_tail->next = j;
        else
                s->jobs_head = j;
        s->jobs_tail = j;
        s->n_queued++;
        /* A worker counts as idle until it has woken up and taken a job, so "no idle worker"
         * would miss jobs queued while signalled workers have not run yet (they would wait
         * behind long handlers with the pool below its cap): start one when the queue holds
         * more jobs than there are idle workers to take them, as the ttrpc server does. */
        if (s->n_queued > s->n_idle && s->n_threads < s->opts.max_workers) {
                pthread_t t;
                pthread_attr_t attr;
                pthread_attr_init(&attr);
                pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
                if (pthread_create(&t, &attr, worker_main, s) == 0)
                        s->n_threads++;
                pthread_attr_destroy(&attr);
        }
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->lock);
        return 0;
}

/* ---- request parsing (conn thread) ----------------------------------------------------------- */

static const struct cc_grpc_method *lookup(struct cc_grpc_server *s, const char *path,
                                           void **ret_userdata)
{
        if (!path || path[0] != '/')
                return NULL;
        const char *slash = strrchr(path, '/');
        if (slash == path)
                return NULL;
        size_t svc_len = (size_t)(slash - path - 1);
        for (size_t i = 0; i < s->n_svcs; i++) {
                const struct cc_grpc_service *svc = s->svcs[i].svc;
                if (strlen(svc->name) != svc_len || memcmp(svc->name, path + 1, svc_len) != 0)
                        continue;
                for (size_t k = 0; k < svc->n_methods; k++) {
                        if (strcmp(svc->methods[k].name, slash + 1) == 0) {
                                *ret_userdata = s->svcs[i].userdata;
                                return &svc->methods[k];
                        }
                }
        }
        return NULL;
}

/* Rejects a request before its handler runs (bad headers, bad body). */
static void reject(struct call *call, int status, const char *msg, int http_status)
{
        call->rejected = true;
        free(call->in);
        call->in = NULL;
        call->n_in = call->cap_in = 0;
        call_finish(call, status, msg, http_status);
}

/* The HEADERS of a request arrived: check what can be checked before the body. */
static void request_headers_done(struct call *call)
{
        struct cc_grpc_server *s = call->conn->srv;
        if (!call->http_method || strcmp(call->http_method, "POST") != 0) {
                reject(call, CC_GRPC_UNIMPLEMENTED, "gRPC requires method POST", 405);
                return;
        }
        /* "application/grpc" alone or followed by '+' or ';' (application/grpc+proto). */
        const char *ct = call->content_type;
        if (!ct || strncmp(ct, "application/grpc", 16) != 0 ||
            (ct[16] != '\0' && ct[16] != '+' && ct[16] != ';')) {
                reject(call, CC_GRPC_UNKNOWN, "invalid gRPC request content-type", 415);
                return;
        }
        call->method = lookup(s, call->path, &call->userdata);
        if (!call->method) {
                _cleanup_free_ char *m = NULL;
                if (asprintf(&m, "unknown method %s", call->path ? call->path : "(none)") < 0)
                        m = NULL;
                reject(call, CC_GRPC_UNIMPLEMENTED, m ? m : "unknown method", 200);
        }
}

/* The client ended its stream: decode the one message and start the handler. */
static void request_done(struct call *call)
{
        if (call->rejected || call->dispatched)
                return;
        call->dispatched = true;
        if (!call->method) {
                /* HEADERS never passed the checks (e.g. END_STREAM on a trailer-less request
                 * whose checks already rejected it). */
                reject(call, CC_GRPC_INTERNAL, "malformed request", 200);
                return;
        }
        if (call->n_in < CC_GRPC_PREFIX_SIZE) {
                reject(call, CC_GRPC_INVALID_ARGUMENT, "request carries no message", 200);
                return;
        }
        if (call->in[0] != 0) {
                reject(call, CC_GRPC_UNIMPLEMENTED, "compressed messages are not supported", 200);
                return;
        }
        uint32_t len = (uint32_t)call->in[1] << 24 | (uint32_t)call->in[2] << 16 |
                       (uint32_t)call->in[3] << 8 | call->in[4];
        if ((size_t)len + CC_GRPC_PREFIX_SIZE != call->n_in) {
                reject(call, CC_GRPC_INVALID_ARGUMENT,
                       (size_t)len + CC_GRPC_PREFIX_SIZE > call->n_in
                               ? "request message is truncated"
                               : "more than one request message on a unary call",
                       200);
                return;
        }
        if (call->method->request) {
                call->req = protobuf_c_message_unpack(call->method->request, NULL, len,
                                                      call->in + CC_GRPC_PREFIX_SIZE);
                if (!call->req) {
                        reject(call, CC_GRPC_INVALID_ARGUMENT, "cannot decode the request message",
                               200);
                        return;
                }
        }
        free(call->in);
        call->in = NULL;
        call->n_in = call->cap_in = 0;
        if (dispatch(call) < 0)
                call_finish(call, CC_GRPC_RESOURCE_EXHAUSTED, "out of memory", 200);
}

/* ---- nghttp2 callbacks (conn thread) ----------------------------------------------------------
 */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
        struct conn *c = ud;
        if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
                return 0;
        struct call *call = calloc(1, sizeof(*call));
        if (!call)
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        atomic_init(&call->refs, 1); /* the stream's reference */
        atomic_fetch_add(&c->refs, 1);
        call->conn = c;
        call->stream_id = frame->hd.stream_id;
        call->deadline_ns = INT64_MAX;
        call->http_status = 200;
        call->next = c->calls;
        if (c->calls)
                c->calls->prev = call;
        c->calls = call;
        nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, call);
        return 0;
}

static char *dupn(const uint8_t *p, size_t n)
{
        char *s = malloc(n + 1);
        if (s) {
                memcpy(s, p, n);
                s[n] = '\0';
        }
        return s;
}

static bool name_is(const uint8_t *name, size_t len, const char *lit)
{
        return strlen(lit) == len && memcmp(name, lit, len) == 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
        if (frame->hd.type != NGHTTP2_HEADERS)
                return 0;
        struct call *call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (!call || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
                return 0; /* request trailers carry nothing we use */
        call->header_bytes += namelen + valuelen + 32;
        if (call->header_bytes > MAX_HEADER_BYTES)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets just this stream */
        char **slot = NULL;
        if (name_is(name, namelen, ":path"))
                slot = &call->path;
        else if (name_is(name, namelen, ":method"))
                slot = &call->http_method;
        else if (name_is(name, namelen, "content-type"))
                slot = &call->content_type;
        if (slot) {
                free(*slot);
                if (!(*slot = dupn(value, valuelen)))
                        return NGHTTP2_ERR_CALLBACK_FAILURE;
                return 0;
        }
        if (name_is(name, namelen, "grpc-timeout")) {
                int64_t ns;
                if (cc_grpc_parse_timeout((const char *)value, valuelen, &ns) == 0)
                        call->deadline_ns = ns > INT64_MAX - now_ns() ? INT64_MAX : now_ns() + ns;
                return 0;
        }
        if (namelen > 0 && name[0] == ':')
                return 0;
        if (call->n_md >= MAX_HEADERS)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        struct kv *md = realloc(call->md, (call->n_md + 1) * sizeof(*md));
        if (!md)
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        call->md = md;
        md[call->n_md].key = dupn(name, namelen);
        md[call->n_md].value = dupn(value, valuelen);
        call->n_md++;
        if (!md[call->n_md - 1].key || !md[call->n_md - 1].value)
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *ud)
{
        struct conn *c = ud;
        struct call *call = nghttp2_session_get_stream_user_data(session, stream_id);
        if (!call || call->rejected || call->dispatched)
                return 0;
        if (!call->method)
                return 0;
        /* Refuse an oversized message as soon as its prefix says so, before buffering it. */
        size_t limit = (size_t)c->srv->opts.max_recv_msg + CC_GRPC_PREFIX_SIZE;
        size_t total = call->n_in + len;
        if (call->n_in < CC_GRPC_PREFIX_SIZE && total >= CC_GRPC_PREFIX_SIZE) {
                uint8_t hdr[CC_GRPC_PREFIX_SIZE];
                size_t have = call->n_in;
                if (have)
                        memcpy(hdr, call->in, have);
                memcpy(hdr + have, data, CC_GRPC_PREFIX_SIZE - have);
                uint32_t mlen = (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 |
                                (uint32_t)hdr[3] << 8 | hdr[4];
                if (mlen > c->srv->opts.max_recv_msg) {
                        char msg[128];
                        snprintf(msg, sizeof(msg), "received message larger than max (%u vs. %u)",
                                 mlen, c->srv->opts.max_recv_msg);
                        reject(call, CC_GRPC_RESOURCE_EXHAUSTED, msg, 200);
                        return 0;
                }
        }
        if (total > limit + CC_GRPC_PREFIX_SIZE) {
                reject(call, CC_GRPC_INVALID_ARGUMENT,
                       "more than one request message on a unary call", 200);
                return 0;
        }
        if (total > call->cap_in) {
                size_t cap = call->cap_in ? call->cap_in : 512;
                while (cap < total)
                        cap *= 2;
                uint8_t *p = realloc(call->in, cap);
                if (!p)
                        return NGHTTP2_ERR_CALLBACK_FAILURE;
                call->in = p;
                call->cap_in = cap;
        }
        memcpy(call->in + call->n_in, data, len);
        call->n_in = total;
        return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
        if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
                return 0;
        struct call *call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (!call)
                return 0;
        if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
                request_headers_done(call);
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
                request_done(call);
        return 0;
}

static void unlink_call(struct conn *c, struct call *call)
{
        if (call->prev)
                call->prev->next = call->next;
        else
                c->calls = call->next;
        if (call->next)
                call->next->prev = call->prev;
        call->next = call->prev = NULL;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *ud)
{
        struct conn *c = ud;
        struct call *call = nghttp2_session_get_stream_user_data(session, stream_id);
        if (!call)
                return 0;
        nghttp2_session_set_stream_user_data(session, stream_id, NULL);
        pthread_mutex_lock(&c->lock);
        call->closed = true;
        pthread_cond_broadcast(&c->space);
        pthread_mutex_unlock(&c->lock);
        unlink_call(c, call);
        call_unref(call);
        return 0;
}

/* ---- response path (conn thread) ----------------------------------------------------------------
 */

static void submit_trailers(struct conn *c, struct call *call, int status, const char *message)
{
        char code[16];
        snprintf(code, sizeof(code), "%d", status);
        _cleanup_free_ char *enc = message ? cc_grpc_percent_encode(message) : NULL;
        nghttp2_nv nv[2] = {
                {(uint8_t *)"grpc-status", (uint8_t *)code, 11, strlen(code), NGHTTP2_NV_FLAG_NONE},
                {(uint8_t *)"grpc-message", (uint8_t *)(enc ? enc : ""), 12, enc ? strlen(enc) : 0,
                 NGHTTP2_NV_FLAG_NONE},
        };
        nghttp2_submit_trailer(c->session, call->stream_id, nv, enc ? 2 : 1);
}

static ssize_t data_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *ud)
{
        struct conn *c = ud;
        struct call *call = source->ptr;
        pthread_mutex_lock(&c->lock);
        size_t avail = call->n_out - call->off_out;
        size_t n = CC_MIN(avail, length);
        if (n) {
                memcpy(buf, call->out + call->off_out, n);
                call->off_out += n;
                if (call->off_out == call->n_out) {
                        call->off_out = call->n_out = 0;
                        pthread_cond_broadcast(&c->space);
                }
        }
        bool eof = call->finished && call->n_out == call->off_out;
        int status = call->status;
        _cleanup_free_ char *message = eof && call->message ? strdup(call->message) : NULL;
        if (!n && !eof)
                call->deferred = true;
        pthread_mutex_unlock(&c->lock);
        if (eof) {
                *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
                submit_trailers(c, call, status, message);
                return (ssize_t)n;
        }
        if (!n)
                return NGHTTP2_ERR_DEFERRED;
        return (ssize_t)n;
}

/* Submits what the handlers produced since the last pass. */
static void flush_calls(struct conn *c)
{
        for (struct call *call = c->calls, *next; call; call = next) {
                next = call->next;
                pthread_mutex_lock(&c->lock);
                bool start = false, trailers_only = false, resume = false;
                int status = call->status, http_status = call->http_status;
                _cleanup_free_ char *message = NULL;
                bool has_output = call->n_out > call->off_out;
                if (!call->resp_started && (call->finished || has_output)) {
                        call->resp_started = true;
                        start = true;
                        trailers_only = call->finished && !has_output;
                        if (trailers_only && call->message)
                                message = strdup(call->message);
                } else if (call->resp_started && call->deferred && (has_output || call->finished)) {
                        call->deferred = false;
                        resume = true;
                }
                pthread_mutex_unlock(&c->lock);

                if (resume) {
                        nghttp2_session_resume_data(c->session, call->stream_id);
                        continue;
                }
                if (!start)
                        continue;
                char st[8], code[16];
                snprintf(st, sizeof(st), "%d", http_status);
                snprintf(code, sizeof(code), "%d", status);
                _cleanup_free_ char *enc = message ? cc_grpc_percent_encode(message) : NULL;
                nghttp2_nv nv[4] = {
                        {(uint8_t *)":status", (uint8_t *)st, 7, strlen(st), 0},
                        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
                        {(uint8_t *)"grpc-status", (uint8_t *)code, 11, strlen(code), 0},
                        {(uint8_t *)"grpc-message", (uint8_t *)(enc ? enc : ""), 12,
                         enc ? strlen(enc) : 0, 0},
                };
                if (trailers_only) {
                        /* Trailers-Only: one HEADERS block with END_STREAM. */
                        nghttp2_submit_response(c->session, call->stream_id, nv, enc ? 4 : 3, NULL);
                } else {
                        nghttp2_data_provider prd = {.source.ptr = call,
                                                     .read_callback = data_read};
                        nghttp2_submit_response(c->session, call->stream_id, nv, 2, &prd);
                }
        }
}

/* ---- the connection thread ------------------------------------------------------------------- */

/* Writes what nghttp2 has to send; returns -errno on a dead socket, 0 otherwise. */
static int conn_send(struct conn *c)
{
        for (;;) {
                if (!c->n_pending) {
                        const uint8_t *data;
                        ssize_t n = nghttp2_session_mem_send(c->session, &data);
                        if (n < 0)
                                return -EPROTO;
                        if (n == 0)
                                return 0;
                        c->pending = data;
                        c->n_pending = (size_t)n;
                }
                ssize_t w = send(c->fd, c->pending, c->n_pending, MSG_NOSIGNAL);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        return -errno;
                }
                c->pending += w;
                c->n_pending -= (size_t)w;
        }
}

/* True while a handler of this conn runs (its reply may still come). */
static bool handlers_running(struct conn *c)
{
        bool running = false;
        pthread_mutex_lock(&c->lock);
        for (struct call *call = c->calls; call && !running; call = call->next)
                running = call->dispatched && !call->finished;
        pthread_mutex_unlock(&c->lock);
        return running;
}

static void conn_loop(struct conn *c)
{
        uint8_t buf[16384];
        int64_t close_deadline = INT64_MAX;
        for (;;) {
                if (!c->goaway_sent) {
                        pthread_mutex_lock(&c->srv->lock);
                        bool closing = c->closing;
                        pthread_mutex_unlock(&c->srv->lock);
                        if (closing) {
                                /* Graceful: no new streams, but the open ones finish (a
                                 * reply queued just before shutdown still goes out). */
                                nghttp2_submit_goaway(
                                        c->session, NGHTTP2_FLAG_NONE,
                                        nghttp2_session_get_last_proc_stream_id(c->session),
                                        NGHTTP2_NO_ERROR, NULL, 0);
                                c->goaway_sent = true;
                                close_deadline = now_ns() + 2000000000LL;
                        }
                }
                flush_calls(c);
                if (conn_send(c) < 0)
                        return;
                bool want_read = nghttp2_session_want_read(c->session) && !c->eof;
                bool want_write = nghttp2_session_want_write(c->session) || c->n_pending;
                if (!want_read && !want_write)
                        return;
                /* Closing: done when every stream ended and everything is written, or when a
                 * peer that never ends its streams has had two seconds. */
                if (c->goaway_sent && ((!c->calls && !want_write) || now_ns() > close_deadline))
                        return;
                /* The peer will send nothing more; what is left to answer can only come
                 * from handlers still running, so a half-closed client (tests, fuzzing)
                 * still gets their replies. */
                if (c->eof && !want_write && !handlers_running(c))
                        return;
                struct pollfd pfd[2] = {
                        {.fd = c->eof && !c->n_pending ? -1 : c->fd,
                         .events =
                                 (short)((want_read ? POLLIN : 0) | (c->n_pending ? POLLOUT : 0))},
                        {.fd = c->wake_fd, .events = POLLIN},
                };
                int r = poll(pfd, 2, c->goaway_sent ? 100 : -1);
                if (r < 0 && errno != EINTR)
                        return;
                if (pfd[1].revents & POLLIN) {
                        uint64_t v;
                        ssize_t _unused_ n = read(c->wake_fd, &v, sizeof(v));
                }
                if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
                        if (n < 0 && errno != EAGAIN && errno != EINTR)
                                return;
                        if (n == 0) {
                                c->eof = true;
                        } else if (n > 0) {
                                ssize_t m = nghttp2_session_mem_recv(c->session, buf, (size_t)n);
                                if (m < 0) {
                                        /* A protocol violation: nghttp2 queued a GOAWAY
                                         * where it could; send it and close. */
                                        cc_log_debug("grpc: closing connection: %s",
                                                     nghttp2_strerror((int)m));
                                        flush_calls(c);
                                        conn_send(c);
                                        return;
                                }
                        }
                }
        }
}

static void *conn_main(void *arg)
{
        struct conn *c = arg;
        conn_loop(c);

        /* Every call still attached loses its stream: senders get -ECANCELED. */
        pthread_mutex_lock(&c->lock);
        for (struct call *call = c->calls; call; call = call->next)
                call->closed = true;
        pthread_cond_broadcast(&c->space);
        pthread_mutex_unlock(&c->lock);
        for (struct call *call = c->calls, *next; call; call = next) {
                next = call->next;
                call_unref(call);
        }
        c->calls = NULL;
        nghttp2_session_del(c->session);
        c->session = NULL;
        c->fd = cc_close(c->fd);

        struct cc_grpc_server *s = c->srv;
        pthread_mutex_lock(&s->lock);
        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_conns--;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
        conn_unref(c);
        return NULL;
}

/* nghttp2's reason for a stream or connection error, for the debug log. */
static int on_error(nghttp2_session *session, int lib_error_code, const char *msg, size_t len,
                    void *ud)
{
        cc_log_debug("grpc: http2: %.*s", (int)len, msg);
        return 0;
}

static int conn_setup_session(struct conn *c)
{
        nghttp2_session_callbacks *cbs;
        if (nghttp2_session_callbacks_new(&cbs) != 0)
                return -ENOMEM;
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
        nghttp2_session_callbacks_set_error_callback2(cbs, on_error);
        nghttp2_option *opt;
        if (nghttp2_option_new(&opt) != 0) {
                nghttp2_session_callbacks_del(cbs);
                return -ENOMEM;
        }
        /* nghttp2 ACKs PINGs and SETTINGS itself (containerd pings after every request). */
        int r = nghttp2_session_server_new2(&c->session, cbs, c, opt);
        nghttp2_option_del(opt);
        nghttp2_session_callbacks_del(cbs);
        if (r != 0)
                return -ENOMEM;
        nghttp2_settings_entry iv[] = {
                {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, c->srv->opts.max_concurrent_streams},
                {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
                {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_BYTES},
        };
        if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, CC_ARRAY_SIZE(iv)) != 0)
                return -ENOMEM;
        nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
        return 0;
}

int cc_grpc_server_add_conn(struct cc_grpc_server *s, int fd)
{
        _cleanup_close_ int owned = fd;
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
                return -errno;
        struct conn *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        atomic_init(&c->refs, 1);
        c->srv = s;
        c->fd = -1;
        pthread_mutex_init(&c->lock, NULL);
        pthread_cond_init(&c->space, NULL);
        c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (c->wake_fd < 0) {
                int e = errno;
                conn_unref(c);
                return -e;
        }
        int r = conn_setup_session(c);
        if (r < 0) {
                nghttp2_session_del(c->session);
                conn_unref(c);
                return r;
        }
        c->fd = TAKE_FD(owned);

        pthread_mutex_lock(&s->lock);
        if (s->shut) {
                pthread_mutex_unlock(&s->lock);
                nghttp2_session_del(c->session);
                cc_close(c->fd);
                conn_unref(c);
                return -ESHUTDOWN;
        }
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_t t;
        r = -pthread_create(&t, &attr, conn_main, c);
        pthread_attr_destroy(&attr);
        if (r < 0) {
                s->conns = c->next;
                if (c->next)
                        c->next->prev = NULL;
                s->n_conns--;
                pthread_mutex_unlock(&s->lock);
                nghttp2_session_del(c->session);
                cc_close(c->fd);
                conn_unref(c);
                return r;
        }
        pthread_mutex_unlock(&s->lock);
        return 0;
}

/* ---- server -------------------------------------------------------------------------------------
 */

int cc_grpc_server_new(const struct cc_grpc_server_options *opts, struct cc_grpc_server **ret)
{
        struct cc_grpc_server *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        if (opts)
                s->opts = *opts;
        if (!s->opts.max_recv_msg)
                s->opts.max_recv_msg = CC_GRPC_DEFAULT_MAX_MSG;
        if (!s->opts.max_send_msg)
                s->opts.max_send_msg = CC_GRPC_DEFAULT_MAX_MSG;
        if (!s->opts.max_concurrent_streams)
                s->opts.max_concurrent_streams = 1000;
        if (!s->opts.max_workers)
                s->opts.max_workers = 128;
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->cond, NULL);
        s->listen_fd = -1;
        s->accept_wake[0] = s->accept_wake[1] = -1;
        *ret = s;
        return 0;
}

int cc_grpc_server_register(struct cc_grpc_server *s, const struct cc_grpc_service *svc,
                            void *userdata)
{
        pthread_mutex_lock(&s->lock);
        struct registered *n = realloc(s->svcs, (s->n_svcs + 1) * sizeof(*n));
        if (!n) {
                pthread_mutex_unlock(&s->lock);
                return -ENOMEM;
        }
        s->svcs = n;
        s->svcs[s->n_svcs++] = (struct registered){svc, userdata};
        pthread_mutex_unlock(&s->lock);
        return 0;
}

static void *accept_main(void *arg)
{
        struct cc_grpc_server *s = arg;
        for (;;) {
                struct pollfd pfd[2] = {{.fd = s->listen_fd, .events = POLLIN},
                                        {.fd = s->accept_wake[0], .events = POLLIN}};
                if (poll(pfd, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (pfd[1].revents)
                        break;
                int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED)
                                continue;
                        if (errno == EMFILE || errno == ENFILE) {
                                /* Out of fds: back off instead of spinning. */
                                usleep(100000);
                                continue;
                        }
                        break;
                }
                int r = cc_grpc_server_add_conn(s, fd);
                if (r < 0)
                        cc_log_debug("grpc: dropping connection: %s", strerror(-r));
        }
        return NULL;
}

int cc_grpc_server_listen(struct cc_grpc_server *s, int listen_fd)
{
        if (s->accepting) {
                cc_close(listen_fd);
                return -EBUSY;
        }
        if (pipe2(s->accept_wake, O_CLOEXEC) < 0) {
                cc_close(listen_fd);
                return -errno;
        }
        s->listen_fd = listen_fd;
        int r = -pthread_create(&s->accept_thread, NULL, accept_main, s);
        if (r < 0)
                return r;
        s->accepting = true;
        return 0;
}

unsigned cc_grpc_server_n_conns(struct cc_grpc_server *s)
{
        pthread_mutex_lock(&s->lock);
        unsigned n = s->n_conns;
        pthread_mutex_unlock(&s->lock);
        return n;
}

static void wake_all_conns(struct cc_grpc_server *s, bool closing)
{
        for (struct conn *c = s->conns; c; c = c->next) {
                if (closing)
                        c->closing = true;
                conn_wake(c);
        }
}

void cc_grpc_server_shutdown(struct cc_grpc_server *s)
{
        if (s->accepting) {
                char b = 1;
                ssize_t _unused_ n = write(s->accept_wake[1], &b, 1);
                pthread_join(s->accept_thread, NULL);
                s->accepting = false;
        }
        s->listen_fd = cc_close(s->listen_fd);
        s->accept_wake[0] = cc_close(s->accept_wake[0]);
        s->accept_wake[1] = cc_close(s->accept_wake[1]);

        pthread_mutex_lock(&s->lock);
        s->shut = true;
        /* Let running handlers finish and their replies go out (5 s at most), then close. */
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 5;
        while ((s->jobs_head || s->n_busy) &&
               pthread_cond_timedwait(&s->cond, &s->lock, &deadline) == 0)
                ;
        wake_all_conns(s, true);
        s->stop_workers = true;
        pthread_cond_broadcast(&s->cond);
        while (s->n_conns || s->n_threads)
                pthread_cond_wait(&s->cond, &s->lock);
        pthread_mutex_unlock(&s->lock);
}

void cc_grpc_server_free(struct cc_grpc_server *s)
{
        if (!s)
                return;
        cc_grpc_server_shutdown(s);
        free(s->svcs);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->cond);
        free(s);
}
