/*
 * A small blocking gRPC client on nghttp2, for tests and tools: one thread drives the
 * connection while it waits for a stream, so many calls can be in flight on one connection.
 */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cc/cleanup.h"
#include "cc/grpc.h"

struct msg {
        uint8_t *data;
        size_t len;
};

struct cc_grpc_stream {
        int32_t id;
        uint8_t *req; /* prefix + payload */
        size_t n_req, off_req;
        uint8_t *in; /* response bytes not yet split into messages */
        size_t n_in, cap_in;
        struct msg *msgs;
        size_t n_msgs;
        int status;
        int http_status;
        char *message;
        bool done;
        uint32_t rst_code;
};

struct cc_grpc_client {
        int fd;
        nghttp2_session *session;
        bool broken;
        unsigned ping_acks;
};

static int split_messages(struct cc_grpc_stream *st)
{
        size_t off = 0;
        while (st->n_in - off >= CC_GRPC_PREFIX_SIZE) {
                const uint8_t *p = st->in + off;
                size_t len = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
                if (st->n_in - off - CC_GRPC_PREFIX_SIZE < len)
                        break;
                struct msg *m = realloc(st->msgs, (st->n_msgs + 1) * sizeof(*m));
                if (!m)
                        return -ENOMEM;
                st->msgs = m;
                m[st->n_msgs].data = malloc(len ? len : 1);
                if (!m[st->n_msgs].data)
                        return -ENOMEM;
                memcpy(m[st->n_msgs].data, p + CC_GRPC_PREFIX_SIZE, len);
                m[st->n_msgs].len = len;
                st->n_msgs++;
                off += CC_GRPC_PREFIX_SIZE + len;
        }
        memmove(st->in, st->in + off, st->n_in - off);
        st->n_in -= off;
        return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
        if (frame->hd.type != NGHTTP2_HEADERS)
                return 0;
        struct cc_grpc_stream *st =
                nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (!st)
                return 0;
        char v[32];
        if (namelen == 7 && memcmp(name, ":status", 7) == 0 && valuelen < sizeof(v)) {
                memcpy(v, value, valuelen);
                v[valuelen] = '\0';
                st->http_status = atoi(v);
        } else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0 && valuelen < sizeof(v)) {
                memcpy(v, value, valuelen);
                v[valuelen] = '\0';
                st->status = atoi(v);
        } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
                free(st->message);
                st->message = cc_grpc_percent_decode((const char *)value, valuelen);
        }
        return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *ud)
{
        struct cc_grpc_stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
        if (!st)
                return 0;
        if (st->n_in + len > st->cap_in) {
                size_t cap = st->cap_in ? st->cap_in : 512;
                while (cap < st->n_in + len)
                        cap *= 2;
                uint8_t *p = realloc(st->in, cap);
                if (!p)
                        return NGHTTP2_ERR_CALLBACK_FAILURE;
                st->in = p;
                st->cap_in = cap;
        }
        memcpy(st->in + st->n_in, data, len);
        st->n_in += len;
        return split_messages(st) < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *ud)
{
        struct cc_grpc_stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
        if (st) {
                st->done = true;
                st->rst_code = error_code;
        }
        return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
        struct cc_grpc_client *c = ud;
        if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK))
                c->ping_acks++;
        return 0;
}

int cc_grpc_client_new(int fd, struct cc_grpc_client **ret)
{
        _cleanup_close_ int owned = fd;
        struct cc_grpc_client *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        nghttp2_session_callbacks *cbs;
        if (nghttp2_session_callbacks_new(&cbs) != 0) {
                free(c);
                return -ENOMEM;
        }
        nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
        int r = nghttp2_session_client_new(&c->session, cbs, c);
        nghttp2_session_callbacks_del(cbs);
        if (r != 0) {
                free(c);
                return -ENOMEM;
        }
        nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 20}};
        nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, 1);
        nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, 16u << 20);
        c->fd = TAKE_FD(owned);
        *ret = c;
        return 0;
}

void cc_grpc_client_free(struct cc_grpc_client *c)
{
        if (!c)
                return;
        nghttp2_session_del(c->session);
        cc_close(c->fd);
        free(c);
}

static ssize_t req_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                        uint32_t *data_flags, nghttp2_data_source *source, void *ud)
{
        struct cc_grpc_stream *st = source->ptr;
        size_t n = CC_MIN(length, st->n_req - st->off_req);
        memcpy(buf, st->req + st->off_req, n);
        st->off_req += n;
        if (st->off_req == st->n_req)
                *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)n;
}

int cc_grpc_client_start(struct cc_grpc_client *c, const char *path, const uint8_t *payload,
                         size_t len, const struct cc_grpc_kv *md, size_t n_md, int64_t timeout_ns,
                         struct cc_grpc_stream **ret)
{
        if (c->broken)
                return -ECONNRESET;
        if (len > UINT32_MAX)
                return -EMSGSIZE;
        struct cc_grpc_stream *st = calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        st->status = -1;
        st->n_req = CC_GRPC_PREFIX_SIZE + len;
        st->req = malloc(st->n_req);
        if (!st->req) {
                free(st);
                return -ENOMEM;
        }
        st->req[0] = 0;
        st->req[1] = (uint8_t)(len >> 24);
        st->req[2] = (uint8_t)(len >> 16);
        st->req[3] = (uint8_t)(len >> 8);
        st->req[4] = (uint8_t)len;
        if (len)
                memcpy(st->req + CC_GRPC_PREFIX_SIZE, payload, len);

        size_t n = 0;
        _cleanup_free_ nghttp2_nv *nv = calloc(7 + n_md, sizeof(*nv));
        if (!nv) {
                free(st->req);
                free(st);
                return -ENOMEM;
        }
#define NV(k, v) nv[n++] = (nghttp2_nv){(uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v), 0}
        NV(":method", "POST");
        NV(":scheme", "http");
        NV(":path", path);
        NV(":authority", "localhost");
        NV("content-type", "application/grpc");
        NV("te", "trailers");
        char tbuf[16];
        if (timeout_ns > 0) {
                cc_grpc_format_timeout(timeout_ns, tbuf);
                NV("grpc-timeout", tbuf);
        }
        for (size_t i = 0; i < n_md; i++)
                NV(md[i].key, md[i].value);
#undef NV
        nghttp2_data_provider prd = {.source.ptr = st, .read_callback = req_read};
        int32_t id = nghttp2_submit_request(c->session, NULL, nv, n, &prd, st);
        if (id < 0) {
                free(st->req);
                free(st);
                return id == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EINVAL;
        }
        st->id = id;
        *ret = st;
        return 0;
}

/* One round of I/O: send what is queued, then read what arrives (blocking). */
static int client_io(struct cc_grpc_client *c)
{
        for (;;) {
                const uint8_t *data;
                ssize_t n = nghttp2_session_mem_send(c->session, &data);
                if (n < 0)
                        return -EPROTO;
                if (n == 0)
                        break;
                for (ssize_t off = 0; off < n;) {
                        ssize_t w = send(c->fd, data + off, (size_t)(n - off), MSG_NOSIGNAL);
                        if (w < 0) {
                                if (errno == EINTR)
                                        continue;
                                if (errno == EAGAIN) {
                                        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
                                        poll(&p, 1, -1);
                                        continue;
                                }
                                return -ECONNRESET;
                        }
                        off += w;
                }
        }
        uint8_t buf[16384];
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
                return 0;
        if (n <= 0)
                return -ECONNRESET;
        if (nghttp2_session_mem_recv(c->session, buf, (size_t)n) < 0)
                return -EPROTO;
        return 0;
}

static void mark_broken(struct cc_grpc_client *c)
{
        c->broken = true;
}

int cc_grpc_client_wait(struct cc_grpc_client *c, struct cc_grpc_stream *st, struct cc_error **err)
{
        while (!st->done) {
                if (c->broken)
                        return cc_error_set(err, ECONNRESET, "connection closed");
                int r = client_io(c);
                if (r < 0) {
                        mark_broken(c);
                        return cc_error_set(err, -r, "connection failed: %s", strerror(-r));
                }
        }
        if (st->status < 0) {
                if (st->http_status && st->http_status != 200)
                        return cc_error_set(err, EPROTO, "HTTP status %d", st->http_status);
                return cc_error_set(err, ECONNRESET, "stream closed without status (code %u)",
                                    st->rst_code);
        }
        if (st->status != CC_GRPC_OK)
                return cc_error_set_code(err, st->status, "%s",
                                         st->message ? st->message : cc_grpc_code_name(st->status));
        return 0;
}

size_t cc_grpc_stream_n_messages(const struct cc_grpc_stream *st)
{
        return st->n_msgs;
}

const uint8_t *cc_grpc_stream_message(const struct cc_grpc_stream *st, size_t i, size_t *ret_len)
{
        if (i >= st->n_msgs)
                return NULL;
        *ret_len = st->msgs[i].len;
        return st->msgs[i].data;
}

int cc_grpc_stream_status(const struct cc_grpc_stream *st)
{
        return st->status;
}

int cc_grpc_stream_http_status(const struct cc_grpc_stream *st)
{
        return st->http_status;
}

void cc_grpc_stream_free(struct cc_grpc_client *c, struct cc_grpc_stream *st)
{
        if (!st)
                return;
        if (c && c->session) {
                if (!st->done)
                        nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, st->id,
                                                  NGHTTP2_CANCEL);
                nghttp2_session_set_stream_user_data(c->session, st->id, NULL);
        }
        for (size_t i = 0; i < st->n_msgs; i++)
                free(st->msgs[i].data);
        free(st->msgs);
        free(st->in);
        free(st->req);
        free(st->message);
        free(st);
}

int cc_grpc_client_call(struct cc_grpc_client *c, const char *service, const char *method,
                        const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                        ProtobufCMessage **ret_resp, struct cc_error **err)
{
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "/%s/%s", service, method) < 0)
                return cc_error_set(err, ENOMEM, "out of memory");
        size_t len = req ? protobuf_c_message_get_packed_size(req) : 0;
        _cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
        if (!buf)
                return cc_error_set(err, ENOMEM, "out of memory");
        if (req)
                protobuf_c_message_pack(req, buf);
        struct cc_grpc_stream *st;
        int r = cc_grpc_client_start(c, path, buf, len, NULL, 0, 0, &st);
        if (r < 0)
                return cc_error_set(err, -r, "start %s", path);
        r = cc_grpc_client_wait(c, st, err);
        if (r == 0 && resp_desc && ret_resp) {
                size_t mlen;
                const uint8_t *m = cc_grpc_stream_message(st, 0, &mlen);
                if (!m) {
                        r = cc_error_set(err, EBADMSG, "%s: no response message", path);
                } else {
                        *ret_resp = protobuf_c_message_unpack(resp_desc, NULL, mlen, m);
                        if (!*ret_resp)
                                r = cc_error_set(err, EBADMSG, "%s: undecodable response", path);
                }
        }
        cc_grpc_stream_free(c, st);
        return r;
}

int cc_grpc_client_ping(struct cc_grpc_client *c)
{
        unsigned want = c->ping_acks + 1;
        if (nghttp2_submit_ping(c->session, NGHTTP2_FLAG_NONE, NULL) != 0)
                return -ENOMEM;
        while (c->ping_acks < want) {
                int r = client_io(c);
                if (r < 0) {
                        mark_broken(c);
                        return r;
                }
        }
        return 0;
}
