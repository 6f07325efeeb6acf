/*
 * A gRPC call's life apart from HTTP/2 (lib/grpc/server-internal.h): the per-call helpers
 * handlers use, the output buffer and its back-pressure, running a handler inline or on the
 * worker pool, and, on the conn thread, checking the request's headers and decoding its one
 * message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/grpc.h"

#include "lib/grpc/server-internal.h"

int64_t cc_grpc__now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void cc_grpc__conn_unref(struct conn *c)
{
        if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
                return;
        cc_close(c->wake_fd);
        pthread_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->space);
        free(c);
}

void cc_grpc__conn_wake(struct conn *c)
{
        uint64_t one = 1;
        /* A full counter or a closed conn thread both make this harmless to ignore. */
        ssize_t _unused_ n = write(c->wake_fd, &one, sizeof(one));
}

void cc_grpc__call_unref(struct call *call)
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
        cc_grpc__conn_unref(call->conn);
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
        return call->deadline_ns - cc_grpc__now_ns();
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

int cc_grpc__buf_reserve(uint8_t **buf, size_t *cap, size_t need, size_t first)
{
        if (need <= *cap)
                return 0;
        size_t n = *cap ? *cap : first;
        while (n < need)
                n *= 2;
        uint8_t *p = realloc(*buf, n);
        if (!p)
                return -ENOMEM;
        *buf = p;
        *cap = n;
        return 0;
}

/* Appends one Length-Prefixed-Message; conn->lock held. */
static int out_append(struct call *call, const ProtobufCMessage *msg)
{
        size_t len = msg ? protobuf_c_message_get_packed_size(msg) : 0;
        size_t need = call->n_out + CC_GRPC_PREFIX_SIZE + len;
        if (cc_grpc__buf_reserve(&call->out, &call->cap_out, need, 256) < 0)
                return -ENOMEM;
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
                cc_grpc__conn_wake(c);
        return r;
}

/* Ends a call with a status; may run on any thread. */
void cc_grpc__call_finish(struct call *call, int status, const char *message, int http_status)
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
        cc_grpc__conn_wake(c);
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
                        cc_grpc__call_finish(call, CC_GRPC_RESOURCE_EXHAUSTED, "out of memory",
                                             200);
                        return;
                }
                protobuf_c_message_init(m->response, resp);
        }
        int r = m->handler((struct cc_grpc_call *)call, call->userdata, call->req, resp, &err);
        if (r < 0) {
                if (!err)
                        cc_error_set(&err, -r, "%s", strerror(-r));
                cc_grpc__call_finish(call, cc_error_grpc_code(err), cc_error_message(err), 200);
                return;
        }
        if (!streaming) {
                size_t len = resp ? protobuf_c_message_get_packed_size(resp) : 0;
                if (len > call->conn->srv->opts.max_send_msg) {
                        cc_grpc__call_finish(call, CC_GRPC_RESOURCE_EXHAUSTED,
                                             "response message exceeds the size limit", 200);
                        return;
                }
                /* An Empty reply still carries one zero-length message: containerd fails
                 * ("EOF") on a reply made of trailers alone. */
                pthread_mutex_lock(&call->conn->lock);
                r = call->closed ? 0 : out_append(call, resp);
                pthread_mutex_unlock(&call->conn->lock);
                if (r < 0) {
                        cc_grpc__call_finish(call, CC_GRPC_RESOURCE_EXHAUSTED, "out of memory",
                                             200);
                        return;
                }
        }
        cc_grpc__call_finish(call, CC_GRPC_OK, NULL, 200);
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
                cc_grpc__call_unref(j->call);
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
void cc_grpc__reject(struct call *call, int status, const char *msg, int http_status)
{
        call->rejected = true;
        free(call->in);
        call->in = NULL;
        call->n_in = call->cap_in = 0;
        cc_grpc__call_finish(call, status, msg, http_status);
}

/* The HEADERS of a request arrived: check what can be checked before the body. */
void cc_grpc__request_headers_done(struct call *call)
{
        struct cc_grpc_server *s = call->conn->srv;
        if (!call->http_method || strcmp(call->http_method, "POST") != 0) {
                cc_grpc__reject(call, CC_GRPC_UNIMPLEMENTED, "gRPC requires method POST", 405);
                return;
        }
        /* "application/grpc" alone or followed by '+' or ';' (application/grpc+proto). */
        const char *ct = call->content_type;
        if (!ct || strncmp(ct, "application/grpc", 16) != 0 ||
            (ct[16] != '\0' && ct[16] != '+' && ct[16] != ';')) {
                cc_grpc__reject(call, CC_GRPC_UNKNOWN, "invalid gRPC request content-type", 415);
                return;
        }
        call->method = lookup(s, call->path, &call->userdata);
        if (!call->method) {
                _cleanup_free_ char *m = NULL;
                if (asprintf(&m, "unknown method %s", call->path ? call->path : "(none)") < 0)
                        m = NULL;
                cc_grpc__reject(call, CC_GRPC_UNIMPLEMENTED, m ? m : "unknown method", 200);
        }
}

/* The client ended its stream: decode the one message and start the handler. */
void cc_grpc__request_done(struct call *call)
{
        if (call->rejected || call->dispatched)
                return;
        call->dispatched = true;
        if (!call->method) {
                /* HEADERS never passed the checks (e.g. END_STREAM on a trailer-less request
                 * whose checks already rejected it). */
                cc_grpc__reject(call, CC_GRPC_INTERNAL, "malformed request", 200);
                return;
        }
        if (call->n_in < CC_GRPC_PREFIX_SIZE) {
                cc_grpc__reject(call, CC_GRPC_INVALID_ARGUMENT, "request carries no message", 200);
                return;
        }
        if (call->in[0] != 0) {
                cc_grpc__reject(call, CC_GRPC_UNIMPLEMENTED,
                                "compressed messages are not supported", 200);
                return;
        }
        uint32_t len = (uint32_t)call->in[1] << 24 | (uint32_t)call->in[2] << 16 |
                       (uint32_t)call->in[3] << 8 | call->in[4];
        if ((size_t)len + CC_GRPC_PREFIX_SIZE != call->n_in) {
                cc_grpc__reject(call, CC_GRPC_INVALID_ARGUMENT,
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
                        cc_grpc__reject(call, CC_GRPC_INVALID_ARGUMENT,
                                        "cannot decode the request message", 200);
                        return;
                }
        }
        free(call->in);
        call->in = NULL;
        call->n_in = call->cap_in = 0;
        if (dispatch(call) < 0)
                cc_grpc__call_finish(call, CC_GRPC_RESOURCE_EXHAUSTED, "out of memory", 200);
}
