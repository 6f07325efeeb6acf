/*
 * The gRPC server's HTTP/2 glue on nghttp2 (lib/grpc/server-internal.h): the callbacks that
 * turn HEADERS (HPACK-decoded by nghttp2), DATA and stream closes into calls, the response
 * path (HEADERS, DATA from a call's output buffer, trailers; Trailers-Only replies), and the
 * connection thread that owns the session: every nghttp2 call happens on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/grpc.h"
#include "cc/log.h"

#include "lib/grpc/server-internal.h"

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
                        call->deadline_ns = ns > INT64_MAX - cc_grpc__now_ns()
                                                    ? INT64_MAX
                                                    : cc_grpc__now_ns() + ns;
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
                        cc_grpc__reject(call, CC_GRPC_RESOURCE_EXHAUSTED, msg, 200);
                        return 0;
                }
        }
        if (total > limit + CC_GRPC_PREFIX_SIZE) {
                cc_grpc__reject(call, CC_GRPC_INVALID_ARGUMENT,
                                "more than one request message on a unary call", 200);
                return 0;
        }
        if (cc_grpc__buf_reserve(&call->in, &call->cap_in, total, 512) < 0)
                return NGHTTP2_ERR_CALLBACK_FAILURE;
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
                cc_grpc__request_headers_done(call);
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
                cc_grpc__request_done(call);
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
        cc_grpc__call_unref(call);
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
                                close_deadline = cc_grpc__now_ns() + 2000000000LL;
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
                if (c->goaway_sent &&
                    ((!c->calls && !want_write) || cc_grpc__now_ns() > close_deadline))
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
                cc_grpc__call_unref(call);
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
        cc_grpc__conn_unref(c);
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
                cc_grpc__conn_unref(c);
                return -e;
        }
        int r = conn_setup_session(c);
        if (r < 0) {
                nghttp2_session_del(c->session);
                cc_grpc__conn_unref(c);
                return r;
        }
        c->fd = TAKE_FD(owned);

        pthread_mutex_lock(&s->lock);
        if (s->shut) {
                pthread_mutex_unlock(&s->lock);
                nghttp2_session_del(c->session);
                cc_close(c->fd);
                cc_grpc__conn_unref(c);
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
                cc_grpc__conn_unref(c);
                return r;
        }
        pthread_mutex_unlock(&s->lock);
        return 0;
}
