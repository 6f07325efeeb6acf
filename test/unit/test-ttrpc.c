/*
 * Unit tests of lib/ttrpc: the frame codec against the reference's worked example, the stream
 * multiplexer (concurrent calls on one connection, out-of-order answers), status mapping,
 * deadlines, metadata, peer credentials, and the bad-input rules (oversized, truncated and
 * malformed frames close only their own connection; stream-id errors keep it).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "cc/ttrpc.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "ttrpc-test-service.h"
#include "ttrpc/ttrpc.pb-c.h"

#define SVC "cc.test.v1.Test"
#define TS_DESC (&google__protobuf__timestamp__descriptor)

struct fixture {
        struct cc_ttrpc_server *srv;
        struct cc_ttrpc_client *cli;
        unsigned closed;
        pthread_mutex_t lock;
};

static void on_closed(void *ud, int reason)
{
        struct fixture *f = ud;
        pthread_mutex_lock(&f->lock);
        f->closed++;
        pthread_mutex_unlock(&f->lock);
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        pthread_mutex_init(&f->lock, NULL);
        struct cc_ttrpc_server_options o = {.on_conn_closed = on_closed, .userdata = f};
        assert_int_equal(cc_ttrpc_server_new(&o, &f->srv), 0);
        assert_int_equal(cc_ttrpc_server_register(f->srv, &test_ttrpc_service, NULL), 0);
        assert_int_equal(cc_ttrpc_server_register(f->srv, &test_ttrpc_service, NULL), -EEXIST);
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(cc_ttrpc_server_add_conn(f->srv, sv[0]), 0);
        assert_int_equal(cc_ttrpc_client_new(sv[1], &f->cli), 0);
        test_ttrpc_service_reset();
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        cc_ttrpc_client_free(f->cli);
        cc_ttrpc_server_free(f->srv);
        pthread_mutex_destroy(&f->lock);
        free(f);
        return 0;
}

/* A raw connection to the fixture's server, for hand-made frames. */
static int raw_conn(struct fixture *f)
{
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(cc_ttrpc_server_add_conn(f->srv, sv[0]), 0);
        struct timeval tv = {.tv_sec = 5};
        setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        return sv[1];
}

static void send_frame(int fd, uint32_t len, uint32_t id, uint8_t type, uint8_t flags,
                       const void *data, size_t n)
{
        uint8_t hdr[10];
        struct cc_ttrpc_header h = {len, id, type, flags};
        cc_ttrpc_header_encode(&h, hdr);
        assert_int_equal(write(fd, hdr, 10), 10);
        if (n)
                assert_int_equal(write(fd, data, n), (ssize_t)n);
}

/* Reads one frame; returns its decoded Response (NULL on EOF). */
static Ttrpc__Response *recv_response(int fd, struct cc_ttrpc_header *h)
{
        uint8_t hdr[10];
        size_t got = 0;
        while (got < 10) {
                ssize_t n = read(fd, hdr + got, 10 - got);
                if (n <= 0)
                        return NULL;
                got += (size_t)n;
        }
        cc_ttrpc_header_decode(hdr, h);
        uint8_t *buf = malloc(h->length + 1);
        got = 0;
        while (got < h->length) {
                ssize_t n = read(fd, buf + got, h->length - got);
                assert_true(n > 0);
                got += (size_t)n;
        }
        Ttrpc__Response *r = ttrpc__response__unpack(NULL, h->length, buf);
        free(buf);
        return r;
}

static void assert_eof(int fd)
{
        char c;
        assert_int_equal(read(fd, &c, 1), 0);
}

static int ts_call(struct fixture *f, const char *method, int64_t sec, int32_t nanos,
                   int64_t timeout_ns, Google__Protobuf__Timestamp **out, struct cc_error **err)
{
        Google__Protobuf__Timestamp in = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        in.seconds = sec;
        in.nanos = nanos;
        struct cc_ttrpc_call_opts o = {.timeout_ns = timeout_ns};
        return cc_ttrpc_client_call(f->cli, SVC, method, &in.base, TS_DESC,
                                    (ProtobufCMessage **)out, &o, err);
}

/* ---- codec ---------------------------------------------------------------------------- */

static void test_header_codec(void **state)
{
        uint8_t b[10];
        struct cc_ttrpc_header h = {.length = 0x01020304, .stream_id = 0xa0b0c0d1, .type = 2,
                                    .flags = 5};
        cc_ttrpc_header_encode(&h, b);
        const uint8_t want[10] = {1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd1, 2, 5};
        assert_memory_equal(b, want, 10);
        struct cc_ttrpc_header d;
        cc_ttrpc_header_decode(b, &d);
        assert_int_equal(d.length, h.length);
        assert_int_equal(d.stream_id, h.stream_id);
        assert_int_equal(d.type, 2);
        assert_int_equal(d.flags, 5);
}

/* The worked example of shim-v2-ttrpc.md 3.9: Connect{id:"abc"} with the namespace header. */
static void test_worked_example(void **state)
{
        static const uint8_t payload[] = {0x0a, 0x03, 'a', 'b', 'c'};
        Ttrpc__KeyValue kv = TTRPC__KEY_VALUE__INIT;
        kv.key = "containerd-namespace-ttrpc";
        kv.value = "k8s.io";
        Ttrpc__KeyValue *kvs[] = {&kv};
        Ttrpc__Request req = TTRPC__REQUEST__INIT;
        req.service = "containerd.task.v2.Task";
        req.method = "Connect";
        req.payload.data = (uint8_t *)payload;
        req.payload.len = sizeof(payload);
        req.n_metadata = 1;
        req.metadata = kvs;
        uint8_t buf[128];
        size_t n = ttrpc__request__pack(&req, buf + 10);
        assert_int_equal(n, 79);
        struct cc_ttrpc_header h = {.length = (uint32_t)n, .stream_id = 1, .type = 1};
        cc_ttrpc_header_encode(&h, buf);
        static const uint8_t head[] = {0, 0, 0, 0x4f, 0, 0, 0, 1, 1, 0, 0x0a, 0x17};
        assert_memory_equal(buf, head, sizeof(head));
        static const uint8_t tail[] = {0x2a, 0x24, 0x0a, 0x1a};
        assert_memory_equal(buf + 10 + 2 + 0x17 + 9 + 7, tail, sizeof(tail));

        /* The NotFound error response on stream 3. */
        Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
        st.code = 5;
        st.message = "task abc: not found";
        Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
        resp.status = &st;
        n = ttrpc__response__pack(&resp, buf);
        static const uint8_t err[] = {0x0a, 0x17, 0x08, 0x05, 0x12, 0x13, 't', 'a', 's', 'k'};
        assert_int_equal(n, 0x19);
        assert_memory_equal(buf, err, sizeof(err));
}

/* ---- calls ------------------------------------------------------------------------------ */

static void test_echo_inline_and_worker(void **state)
{
        struct fixture *f = *state;
        Google__Protobuf__Timestamp *out = NULL;
        assert_int_equal(ts_call(f, "Echo", 41, 7, 0, &out, NULL), 0);
        assert_int_equal(out->seconds, 42);
        assert_int_equal(out->nanos, 7);
        protobuf_c_message_free_unpacked(&out->base, NULL);
        assert_int_equal(ts_call(f, "Work", 1, 0, 1000000000, &out, NULL), 0);
        assert_int_equal(out->seconds, 2);
        protobuf_c_message_free_unpacked(&out->base, NULL);
}

static void test_empty_response_is_zero_length(void **state)
{
        struct fixture *f = *state;
        int fd = raw_conn(f);
        Ttrpc__Request req = TTRPC__REQUEST__INIT;
        req.service = SVC;
        req.method = "Empty";
        uint8_t buf[64];
        size_t n = ttrpc__request__pack(&req, buf);
        send_frame(fd, (uint32_t)n, 1, 1, 0, buf, n);
        struct cc_ttrpc_header h;
        Ttrpc__Response *r = recv_response(fd, &h);
        assert_non_null(r);
        assert_int_equal(h.length, 0);
        assert_int_equal(h.stream_id, 1);
        assert_int_equal(h.type, 2);
        assert_null(r->status);
        ttrpc__response__free_unpacked(r, NULL);
        close(fd);
}

static void test_status_mapping(void **state)
{
        struct fixture *f = *state;
        Google__Protobuf__Timestamp *out = NULL;
        struct cc_error *err = NULL;
        assert_int_equal(ts_call(f, "Fail", ENOENT, 0, 0, &out, &err), -ENOENT);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_NOT_FOUND);
        assert_string_equal(cc_error_message(err), "failed as asked");
        cc_error_free(err);
        err = NULL;
        assert_int_equal(ts_call(f, "Fail", EEXIST, 0, 0, &out, &err), -EEXIST);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_ALREADY_EXISTS);
        cc_error_free(err);
        err = NULL;
        assert_int_equal(ts_call(f, "Fail", EXDEV, 0, 0, &out, &err), -EIO);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_INTERNAL);
        cc_error_free(err);
}

static void test_unknown_service_and_method(void **state)
{
        struct fixture *f = *state;
        struct cc_error *err = NULL;
        assert_int_equal(cc_ttrpc_client_call_raw(f->cli, "no.such.Service", "X", NULL, 0, NULL,
                                                  NULL, NULL, &err),
                         -EOPNOTSUPP);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_UNIMPLEMENTED);
        assert_string_equal(cc_error_message(err), "service no.such.Service");
        cc_error_free(err);
        err = NULL;
        assert_int_equal(
                cc_ttrpc_client_call_raw(f->cli, SVC, "Nope", NULL, 0, NULL, NULL, NULL, &err),
                -EOPNOTSUPP);
        assert_string_equal(cc_error_message(err), "method Nope");
        cc_error_free(err);
}

static void test_bad_payload_is_internal(void **state)
{
        struct fixture *f = *state;
        struct cc_error *err = NULL;
        const uint8_t junk[] = {0xff, 0xff, 0xff};
        assert_int_equal(cc_ttrpc_client_call_raw(f->cli, SVC, "Echo", junk, sizeof(junk), NULL,
                                                  NULL, NULL, &err),
                         -EIO);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_INTERNAL);
        assert_non_null(strstr(cc_error_message(err), "error unmarshalling payload"));
        cc_error_free(err);
        /* The connection is still good. */
        Google__Protobuf__Timestamp *out = NULL;
        assert_int_equal(ts_call(f, "Echo", 1, 0, 0, &out, NULL), 0);
        protobuf_c_message_free_unpacked(&out->base, NULL);
}

static void test_metadata_and_peer(void **state)
{
        struct fixture *f = *state;
        Google__Protobuf__Timestamp in = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        Google__Protobuf__Timestamp *out = NULL;
        const struct cc_ttrpc_kv md[] = {{"other", "x"},
                                         {"Containerd-Namespace-Ttrpc", "k8s.io"}};
        struct cc_ttrpc_call_opts o = {.md = md, .n_md = 2};
        assert_int_equal(cc_ttrpc_client_call(f->cli, SVC, "Meta", &in.base, TS_DESC,
                                              (ProtobufCMessage **)&out, &o, NULL),
                         0);
        assert_int_equal(out->seconds, 6);
        assert_int_equal(out->nanos, getpid());
        protobuf_c_message_free_unpacked(&out->base, NULL);
}

struct blocker {
        struct fixture *f;
        int r;
        int64_t seconds;
};

static void *block_thread(void *arg)
{
        struct blocker *b = arg;
        Google__Protobuf__Timestamp *out = NULL;
        b->r = ts_call(b->f, "Block", 10, 0, 0, &out, NULL);
        if (b->r == 0) {
                b->seconds = out->seconds;
                protobuf_c_message_free_unpacked(&out->base, NULL);
        }
        return NULL;
}

/* A call parked on the server (like containerd's Wait) must not hold back later calls. */
static void test_blocking_call_does_not_block_others(void **state)
{
        struct fixture *f = *state;
        struct blocker b[3] = {{f}, {f}, {f}};
        pthread_t t[3];
        for (int i = 0; i < 3; i++)
                assert_int_equal(pthread_create(&t[i], NULL, block_thread, &b[i]), 0);
        /* Several ordinary calls complete while the blockers wait. */
        usleep(50000);
        for (int i = 0; i < 20; i++) {
                Google__Protobuf__Timestamp *out = NULL;
                assert_int_equal(ts_call(f, i % 2 ? "Echo" : "Work", i, 0, 2000000000LL, &out,
                                         NULL),
                                 0);
                assert_int_equal(out->seconds, i + 1);
                protobuf_c_message_free_unpacked(&out->base, NULL);
        }
        Google__Protobuf__Timestamp *out = NULL;
        assert_int_equal(ts_call(f, "Release", 0, 0, 0, &out, NULL), 0);
        protobuf_c_message_free_unpacked(&out->base, NULL);
        for (int i = 0; i < 3; i++) {
                pthread_join(t[i], NULL);
                assert_int_equal(b[i].r, 0);
                assert_int_equal(b[i].seconds, 11);
        }
}

struct hammer {
        struct fixture *f;
        int base;
        int failures;
};

static void *hammer_thread(void *arg)
{
        struct hammer *h = arg;
        for (int i = 0; i < 200; i++) {
                Google__Protobuf__Timestamp *out = NULL;
                int64_t v = (int64_t)h->base * 1000 + i;
                const char *m = i % 3 == 0 ? "Work" : "Echo";
                struct cc_error *err = NULL;
                int r = ts_call(h->f, m, v, i, 0, &out, &err);
                if (r < 0 || out->seconds != v + 1 || out->nanos != i) {
                        if (h->failures++ == 0)
                                print_error("call %d of thread %d: r=%d %s got %lld/%d\n", i,
                                            h->base, r, cc_error_message(err),
                                            out ? (long long)out->seconds : -1LL,
                                            out ? out->nanos : -1);
                }
                cc_error_free(err);
                if (out)
                        protobuf_c_message_free_unpacked(&out->base, NULL);
        }
        return NULL;
}

/* 32 threads on one client: every answer reaches the caller that asked. */
static void test_concurrent_streams(void **state)
{
        struct fixture *f = *state;
        struct hammer h[32];
        pthread_t t[32];
        for (int i = 0; i < 32; i++) {
                h[i] = (struct hammer){f, i, 0};
                assert_int_equal(pthread_create(&t[i], NULL, hammer_thread, &h[i]), 0);
        }
        int failures = 0;
        for (int i = 0; i < 32; i++) {
                pthread_join(t[i], NULL);
                failures += h[i].failures;
        }
        assert_int_equal(failures, 0);
}

struct big {
        struct fixture *f;
        int failures;
};

static void *big_thread(void *arg)
{
        struct big *b = arg;
        /* 256 KiB as unknown field 15 of a Timestamp: 0x7a, 3-byte length, data. */
        size_t inner = 256 * 1024, len = 4 + inner;
        uint8_t *p = malloc(len);
        p[0] = 0x7a;
        p[1] = (uint8_t)(0x80 | (inner & 0x7f));
        p[2] = (uint8_t)(0x80 | ((inner >> 7) & 0x7f));
        p[3] = (uint8_t)(inner >> 14);
        for (int i = 0; i < 10; i++) {
                memset(p + 4, 'a' + i, inner);
                uint8_t *resp = NULL;
                size_t rlen = 0;
                struct cc_error *err = NULL;
                int r = cc_ttrpc_client_call_raw(b->f->cli, SVC, "Mirror", p, len, &resp, &rlen,
                                                 NULL, &err);
                if (r < 0 || rlen != len || memcmp(resp, p, len) != 0)
                        b->failures++;
                free(resp);
                cc_error_free(err);
        }
        free(p);
        return NULL;
}

/* Large requests and answers in both directions at once fill both socket buffers: the client
 * must keep reading while a caller is stuck writing, or both sides block for good. */
static void test_backpressure_both_ways(void **state)
{
        struct fixture *f = *state;
        struct big b[16];
        pthread_t t[16];
        for (int i = 0; i < 16; i++) {
                b[i] = (struct big){f, 0};
                assert_int_equal(pthread_create(&t[i], NULL, big_thread, &b[i]), 0);
        }
        int failures = 0;
        for (int i = 0; i < 16; i++) {
                pthread_join(t[i], NULL);
                failures += b[i].failures;
        }
        assert_int_equal(failures, 0);
}

static void test_deadline(void **state)
{
        struct fixture *f = *state;
        Google__Protobuf__Timestamp *out = NULL;
        struct cc_error *err = NULL;
        /* The server sleeps 300 ms; the client gives up after 50 ms. */
        assert_int_equal(ts_call(f, "Sleep", 1, 300000000, 50000000, &out, &err), -ETIMEDOUT);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_DEADLINE_EXCEEDED);
        cc_error_free(err);
        /* The late answer is dropped and the connection keeps working. */
        usleep(400000);
        assert_int_equal(ts_call(f, "Echo", 5, 0, 0, &out, NULL), 0);
        assert_int_equal(out->seconds, 6);
        protobuf_c_message_free_unpacked(&out->base, NULL);
        assert_false(cc_ttrpc_client_broken(f->cli));
}

/* ---- bad input ----------------------------------------------------------------------------- */

static void test_stream_id_rules(void **state)
{
        struct fixture *f = *state;
        int fd = raw_conn(f);
        Ttrpc__Request req = TTRPC__REQUEST__INIT;
        req.service = SVC;
        req.method = "Empty";
        uint8_t buf[64];
        size_t n = ttrpc__request__pack(&req, buf);
        struct cc_ttrpc_header h;

        send_frame(fd, (uint32_t)n, 2, 1, 0, buf, n); /* even */
        Ttrpc__Response *r = recv_response(fd, &h);
        assert_non_null(r);
        assert_int_equal(h.stream_id, 2);
        assert_int_equal(r->status->code, CC_GRPC_INVALID_ARGUMENT);
        assert_string_equal(r->status->message, "StreamID must be odd for client initiated streams");
        ttrpc__response__free_unpacked(r, NULL);

        send_frame(fd, (uint32_t)n, 5, 1, 0, buf, n);
        r = recv_response(fd, &h);
        assert_null(r->status);
        ttrpc__response__free_unpacked(r, NULL);
        send_frame(fd, (uint32_t)n, 3, 1, 0, buf, n); /* goes backwards */
        r = recv_response(fd, &h);
        assert_int_equal(r->status->code, CC_GRPC_INVALID_ARGUMENT);
        assert_string_equal(r->status->message, "StreamID cannot be re-used and must increment");
        ttrpc__response__free_unpacked(r, NULL);

        send_frame(fd, 0, 7, 3, 0, NULL, 0); /* data on no stream */
        r = recv_response(fd, &h);
        assert_int_equal(r->status->code, CC_GRPC_INVALID_ARGUMENT);
        ttrpc__response__free_unpacked(r, NULL);

        send_frame(fd, 0, 9, 0x7f, 0, NULL, 0); /* unknown type: ignored */
        send_frame(fd, (uint32_t)n, 11, 1, 2, buf, n); /* streaming request */
        r = recv_response(fd, &h);
        assert_int_equal(h.stream_id, 11);
        assert_int_equal(r->status->code, CC_GRPC_UNIMPLEMENTED);
        ttrpc__response__free_unpacked(r, NULL);
        close(fd);
}

static void test_oversized_frame_closes_only_its_connection(void **state)
{
        struct fixture *f = *state;
        int fd = raw_conn(f);
        send_frame(fd, CC_TTRPC_MAX_DATA + 1, 1, 1, 0, NULL, 0);
        struct cc_ttrpc_header h;
        Ttrpc__Response *r = recv_response(fd, &h);
        assert_non_null(r);
        assert_int_equal(r->status->code, CC_GRPC_RESOURCE_EXHAUSTED);
        ttrpc__response__free_unpacked(r, NULL);
        assert_eof(fd);
        close(fd);
        /* The fixture's own connection is untouched. */
        Google__Protobuf__Timestamp *out = NULL;
        assert_int_equal(ts_call(f, "Echo", 1, 0, 0, &out, NULL), 0);
        protobuf_c_message_free_unpacked(&out->base, NULL);
}

static void test_max_size_frame_is_served(void **state)
{
        struct fixture *f = *state;
        /* A request whose frame data is exactly 4 MiB is accepted. Timestamp ignores unknown
         * fields, so the payload is one big unknown field 15. Data = service (2 + 15) +
         * method (2 + 4) + payload tag, 4-byte length, payload. */
        size_t plen = CC_TTRPC_MAX_DATA - (2 + 15) - (2 + 4) - 1 - 4;
        size_t inner = plen - 1 - 4;
        uint8_t *p = calloc(1, plen);
        p[0] = 0x7a; /* field 15, length-delimited */
        p[1] = (uint8_t)(0x80 | (inner & 0x7f));
        p[2] = (uint8_t)(0x80 | ((inner >> 7) & 0x7f));
        p[3] = (uint8_t)(0x80 | ((inner >> 14) & 0x7f));
        p[4] = (uint8_t)(inner >> 21);
        uint8_t *resp = NULL;
        size_t rlen = 0;
        struct cc_error *err = NULL;
        int r = cc_ttrpc_client_call_raw(f->cli, SVC, "Echo", p, plen, &resp, &rlen, NULL, &err);
        assert_int_equal(r, 0);
        free(resp);
        /* One byte more than the limit is refused by the client before sending. */
        uint8_t *big = calloc(1, CC_TTRPC_MAX_DATA + 1);
        assert_int_equal(cc_ttrpc_client_call_raw(f->cli, SVC, "Echo", big,
                                                  CC_TTRPC_MAX_DATA + 1, NULL, NULL, NULL, &err),
                         -EMSGSIZE);
        assert_non_null(strstr(cc_error_message(err), "maximum message size"));
        cc_error_free(err);
        free(big);
        free(p);
        assert_false(cc_ttrpc_client_broken(f->cli));
}

static void test_truncated_frame_closes(void **state)
{
        struct fixture *f = *state;
        int fd = raw_conn(f);
        send_frame(fd, 100, 1, 1, 0, "abc", 3);
        shutdown(fd, SHUT_WR);
        assert_eof(fd);
        close(fd);
}

static void test_garbage_envelope_closes(void **state)
{
        struct fixture *f = *state;
        int fd = raw_conn(f);
        const uint8_t junk[] = {0x0a, 0x50, 'x'}; /* string longer than the frame */
        send_frame(fd, sizeof(junk), 1, 1, 0, junk, sizeof(junk));
        struct cc_ttrpc_header h;
        Ttrpc__Response *r = recv_response(fd, &h);
        assert_non_null(r);
        assert_int_equal(r->status->code, CC_GRPC_INVALID_ARGUMENT);
        ttrpc__response__free_unpacked(r, NULL);
        assert_eof(fd);
        close(fd);
}

static void test_server_closing_fails_calls(void **state)
{
        struct fixture *f = *state;
        cc_ttrpc_server_shutdown(f->srv);
        struct cc_error *err = NULL;
        Google__Protobuf__Timestamp *out = NULL;
        assert_int_equal(ts_call(f, "Echo", 1, 0, 1000000000, &out, &err), -ECONNRESET);
        assert_true(cc_ttrpc_client_broken(f->cli));
        cc_error_free(err);
        assert_int_equal(cc_ttrpc_server_n_conns(f->srv), 0);
        pthread_mutex_lock(&f->lock);
        assert_int_equal(f->closed, 1);
        pthread_mutex_unlock(&f->lock);
}

static void test_unix_listener_and_peer_check(void **state)
{
        char dir[] = "/tmp/cc-ttrpc-XXXXXX";
        assert_non_null(mkdtemp(dir));
        char path[128];
        snprintf(path, sizeof(path), "%s/sock", dir);
        struct cc_ttrpc_server *srv;
        struct cc_ttrpc_server_options o = {.require_same_user = true};
        assert_int_equal(cc_ttrpc_server_new(&o, &srv), 0);
        assert_int_equal(cc_ttrpc_server_register(srv, &test_ttrpc_service, NULL), 0);
        int lfd = cc_unix_listen(path, 16);
        assert_true(lfd >= 0);
        assert_int_equal(cc_ttrpc_server_listen(srv, lfd), 0);
        /* Same user: served. */
        struct cc_ttrpc_client *cli;
        int fd = cc_unix_connect(path);
        assert_true(fd >= 0);
        assert_int_equal(cc_ttrpc_client_new(fd, &cli), 0);
        Google__Protobuf__Timestamp in = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        Google__Protobuf__Timestamp *out = NULL;
        assert_int_equal(cc_ttrpc_client_call(cli, SVC, "Echo", &in.base, TS_DESC,
                                              (ProtobufCMessage **)&out, NULL, NULL),
                         0);
        protobuf_c_message_free_unpacked(&out->base, NULL);
        cc_ttrpc_client_free(cli);
        /* A stale socket file is replaced; a regular file is not. */
        cc_ttrpc_server_free(srv);
        int l2 = cc_unix_listen(path, 1);
        assert_true(l2 >= 0);
        close(l2);
        unlink(path);
        FILE *fp = fopen(path, "w");
        fclose(fp);
        assert_int_equal(cc_unix_listen(path, 1), -EEXIST);
        unlink(path);
        rmdir(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_header_codec),
                cmocka_unit_test(test_worked_example),
                cmocka_unit_test_setup_teardown(test_echo_inline_and_worker, setup, teardown),
                cmocka_unit_test_setup_teardown(test_empty_response_is_zero_length, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_status_mapping, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unknown_service_and_method, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_payload_is_internal, setup, teardown),
                cmocka_unit_test_setup_teardown(test_metadata_and_peer, setup, teardown),
                cmocka_unit_test_setup_teardown(test_blocking_call_does_not_block_others, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_concurrent_streams, setup, teardown),
                cmocka_unit_test_setup_teardown(test_backpressure_both_ways, setup, teardown),
                cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stream_id_rules, setup, teardown),
                cmocka_unit_test_setup_teardown(test_oversized_frame_closes_only_its_connection,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_max_size_frame_is_served, setup, teardown),
                cmocka_unit_test_setup_teardown(test_truncated_frame_closes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_garbage_envelope_closes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_server_closing_fails_calls, setup, teardown),
                cmocka_unit_test(test_unix_listener_and_peer_check),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
