/*
 * Unit tests of lib/grpc: the server and the client talking over socketpairs and a unix
 * socket. Messages are ttrpc.Request (any protobuf-c message would do).
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cc/grpc.h"

#include "ttrpc/ttrpc.pb-c.h"

#define SVC "test.Echo"

static atomic_int stream_cancelled;

static int h_echo(struct cc_grpc_call *call, void *ud, const ProtobufCMessage *req_,
                  ProtobufCMessage *resp_, struct cc_error **err)
{
        const Ttrpc__Request *req = (const Ttrpc__Request *)req_;
        Ttrpc__Request *resp = (Ttrpc__Request *)resp_;
        resp->service = cc_grpc_call_strdup(call, req->service);
        const char *md = cc_grpc_call_metadata(call, "x-test");
        resp->method = cc_grpc_call_strdup(call, md ? md : "");
        resp->timeout_nano = req->timeout_nano + 1;
        return 0;
}

static int h_fail(struct cc_grpc_call *call, void *ud, const ProtobufCMessage *req_,
                  ProtobufCMessage *resp_, struct cc_error **err)
{
        const Ttrpc__Request *req = (const Ttrpc__Request *)req_;
        if (req->timeout_nano == 9)
                return cc_error_set_code(err, CC_GRPC_FAILED_PRECONDITION, "precondition");
        return cc_error_set(err, ENOENT, "snapshot %s: not found", req->service);
}

static int h_empty(struct cc_grpc_call *call, void *ud, const ProtobufCMessage *req,
                   ProtobufCMessage *resp, struct cc_error **err)
{
        assert_null(resp);
        return 0;
}

static int h_stream(struct cc_grpc_call *call, void *ud, const ProtobufCMessage *req_,
                    ProtobufCMessage *resp, struct cc_error **err)
{
        const Ttrpc__Request *req = (const Ttrpc__Request *)req_;
        assert_null(resp);
        /* timeout_nano < 0: send until the client cancels. */
        for (int64_t i = 0; req->timeout_nano < 0 || i < req->timeout_nano; i++) {
                Ttrpc__Request m = TTRPC__REQUEST__INIT;
                char buf[32];
                snprintf(buf, sizeof(buf), "m%lld", (long long)i);
                m.service = buf;
                m.timeout_nano = i;
                static uint8_t big[4096];
                m.payload.data = big;
                m.payload.len = req->timeout_nano < 0 ? sizeof(big) : 0;
                int r = cc_grpc_call_send(call, &m.base, err);
                if (r < 0) {
                        if (r == -ECANCELED)
                                atomic_store(&stream_cancelled, 1);
                        return r;
                }
        }
        return 0;
}

/*
 * How many Slow handlers ran at the same time, at most: proves parallelism without timing.
 * With slow_rendezvous set (test_concurrent), a Slow handler waits until SLOW_RENDEZVOUS of
 * them are inside at once, so a loaded machine that starts the calls slowly cannot make the
 * overlap smaller; a server that runs handlers one by one never gets there, and the first
 * handler to wait 5 s in vain ends the waiting for all (the test then fails on the peak,
 * quickly).
 */
#define SLOW_RENDEZVOUS 10
static int slow_now, slow_peak;
static bool slow_rendezvous, slow_gave_up;
static pthread_mutex_t slow_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slow_cond = PTHREAD_COND_INITIALIZER;

static int h_slow(struct cc_grpc_call *call, void *ud, const ProtobufCMessage *req,
                  ProtobufCMessage *resp_, struct cc_error **err)
{
        Ttrpc__Request *resp = (Ttrpc__Request *)resp_;
        pthread_mutex_lock(&slow_lock);
        if (++slow_now > slow_peak)
                slow_peak = slow_now;
        pthread_cond_broadcast(&slow_cond);
        if (slow_rendezvous) {
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += 5;
                while (slow_peak < SLOW_RENDEZVOUS && !slow_gave_up)
                        if (pthread_cond_timedwait(&slow_cond, &slow_lock, &until) == ETIMEDOUT)
                                slow_gave_up = true;
                pthread_cond_broadcast(&slow_cond);
        }
        pthread_mutex_unlock(&slow_lock);
        usleep(100000);
        pthread_mutex_lock(&slow_lock);
        slow_now--;
        pthread_mutex_unlock(&slow_lock);
        int64_t left = cc_grpc_call_remaining_ns(call);
        resp->timeout_nano = left;
        return 0;
}

static const struct cc_grpc_method methods[] = {
        {"Echo", &ttrpc__request__descriptor, &ttrpc__request__descriptor, h_echo, 0},
        {"EchoInline", &ttrpc__request__descriptor, &ttrpc__request__descriptor, h_echo,
         CC_GRPC_METHOD_INLINE},
        {"Fail", &ttrpc__request__descriptor, &ttrpc__request__descriptor, h_fail, 0},
        {"Empty", &ttrpc__request__descriptor, NULL, h_empty, 0},
        {"Stream", &ttrpc__request__descriptor, NULL, h_stream, CC_GRPC_METHOD_SERVER_STREAM},
        {"Slow", &ttrpc__request__descriptor, &ttrpc__request__descriptor, h_slow, 0},
};
static const struct cc_grpc_service echo_service = {SVC, methods, CC_ARRAY_SIZE(methods)};

struct fixture {
        struct cc_grpc_server *srv;
        struct cc_grpc_client *cli;
};

static int setup_opts(void **state, const struct cc_grpc_server_options *opts)
{
        struct fixture *f = calloc(1, sizeof(*f));
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(cc_grpc_server_new(opts, &f->srv), 0);
        assert_int_equal(cc_grpc_server_register(f->srv, &echo_service, NULL), 0);
        assert_int_equal(cc_grpc_server_add_conn(f->srv, sv[0]), 0);
        assert_int_equal(cc_grpc_client_new(sv[1], &f->cli), 0);
        *state = f;
        return 0;
}

static int setup(void **state)
{
        return setup_opts(state, NULL);
}

static int setup_small(void **state)
{
        struct cc_grpc_server_options o = {.max_recv_msg = 1024, .max_workers = 4};
        return setup_opts(state, &o);
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        cc_grpc_client_free(f->cli);
        cc_grpc_server_free(f->srv);
        free(f);
        return 0;
}

static size_t pack(const char *svc, int64_t n, uint8_t *buf)
{
        Ttrpc__Request r = TTRPC__REQUEST__INIT;
        r.service = (char *)svc;
        r.timeout_nano = n;
        return protobuf_c_message_pack(&r.base, buf);
}

static void test_unary(void **state)
{
        struct fixture *f = *state;
        const char *names[] = {"Echo", "EchoInline"};
        for (size_t i = 0; i < 2; i++) {
                uint8_t buf[256];
                size_t len = pack("k8s.io/1/key", 41, buf);
                struct cc_grpc_kv md[] = {{"x-test", "hello"}};
                char path[64];
                snprintf(path, sizeof(path), "/%s/%s", SVC, names[i]);
                struct cc_grpc_stream *st;
                assert_int_equal(cc_grpc_client_start(f->cli, path, buf, len, md, 1, 0, &st), 0);
                _cleanup_error_ struct cc_error *err = NULL;
                assert_int_equal(cc_grpc_client_wait(f->cli, st, &err), 0);
                assert_int_equal(cc_grpc_stream_status(st), 0);
                assert_int_equal(cc_grpc_stream_http_status(st), 200);
                assert_int_equal(cc_grpc_stream_n_messages(st), 1);
                size_t mlen;
                const uint8_t *m = cc_grpc_stream_message(st, 0, &mlen);
                Ttrpc__Request *resp = ttrpc__request__unpack(NULL, mlen, m);
                assert_non_null(resp);
                assert_string_equal(resp->service, "k8s.io/1/key");
                assert_string_equal(resp->method, "hello");
                assert_int_equal(resp->timeout_nano, 42);
                ttrpc__request__free_unpacked(resp, NULL);
                cc_grpc_stream_free(f->cli, st);
        }
        /* The protobuf-c convenience call. */
        Ttrpc__Request req = TTRPC__REQUEST__INIT;
        req.service = "abc";
        ProtobufCMessage *out = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(cc_grpc_client_call(f->cli, SVC, "Echo", &req.base,
                                             &ttrpc__request__descriptor, &out, &err),
                         0);
        assert_string_equal(((Ttrpc__Request *)out)->service, "abc");
        protobuf_c_message_free_unpacked(out, NULL);
}

static void test_errors(void **state)
{
        struct fixture *f = *state;
        _cleanup_error_ struct cc_error *err = NULL;
        Ttrpc__Request req = TTRPC__REQUEST__INIT;
        /* Non-ASCII and '%' travel percent-encoded and come back intact. */
        req.service = "k8s.io/1/ключ 100%";
        assert_int_equal(cc_grpc_client_call(f->cli, SVC, "Fail", &req.base, NULL, NULL, &err),
                         -ENOENT);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_NOT_FOUND);
        assert_string_equal(cc_error_message(err), "snapshot k8s.io/1/ключ 100%: not found");

        req.timeout_nano = 9;
        assert_int_equal(cc_grpc_client_call(f->cli, SVC, "Fail", &req.base, NULL, NULL, &err),
                         -EBUSY);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_FAILED_PRECONDITION);

        assert_int_equal(cc_grpc_client_call(f->cli, SVC, "Nope", &req.base, NULL, NULL, &err),
                         -EOPNOTSUPP);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_UNIMPLEMENTED);
        assert_int_equal(
                cc_grpc_client_call(f->cli, "other.Svc", "Echo", &req.base, NULL, NULL, &err),
                -EOPNOTSUPP);

        /* An undecodable message is InvalidArgument, and the connection stays usable. */
        struct cc_grpc_stream *st;
        static const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff};
        assert_int_equal(
                cc_grpc_client_start(f->cli, "/" SVC "/Echo", junk, sizeof(junk), NULL, 0, 0, &st),
                0);
        assert_int_equal(cc_grpc_client_wait(f->cli, st, &err), -EINVAL);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_INVALID_ARGUMENT);
        cc_grpc_stream_free(f->cli, st);

        /* Not gRPC: HTTP 415 (the later content-type header wins on the server). */
        struct cc_grpc_kv ct[] = {{"content-type", "text/plain"}};
        assert_int_equal(cc_grpc_client_start(f->cli, "/" SVC "/Echo", NULL, 0, ct, 1, 0, &st), 0);
        assert_true(cc_grpc_client_wait(f->cli, st, &err) < 0);
        assert_int_equal(cc_grpc_stream_http_status(st), 415);
        cc_grpc_stream_free(f->cli, st);

        assert_int_equal(cc_grpc_client_call(f->cli, SVC, "Echo", &req.base, NULL, NULL, &err), 0);
}

static void test_empty_reply(void **state)
{
        struct fixture *f = *state;
        struct cc_grpc_stream *st;
        _cleanup_error_ struct cc_error *err = NULL;
        /* A zero-length request message is a valid (all defaults) message. */
        assert_int_equal(cc_grpc_client_start(f->cli, "/" SVC "/Empty", NULL, 0, NULL, 0, 0, &st),
                         0);
        assert_int_equal(cc_grpc_client_wait(f->cli, st, &err), 0);
        /* containerd needs the one zero-length message of google.protobuf.Empty. */
        assert_int_equal(cc_grpc_stream_n_messages(st), 1);
        size_t len = 99;
        assert_non_null(cc_grpc_stream_message(st, 0, &len));
        assert_int_equal(len, 0);
        cc_grpc_stream_free(f->cli, st);
}

static void test_stream(void **state)
{
        struct fixture *f = *state;
        int64_t counts[] = {0, 1, 3000};
        for (size_t k = 0; k < CC_ARRAY_SIZE(counts); k++) {
                uint8_t buf[64];
                size_t len = pack("", counts[k], buf);
                struct cc_grpc_stream *st;
                _cleanup_error_ struct cc_error *err = NULL;
                assert_int_equal(
                        cc_grpc_client_start(f->cli, "/" SVC "/Stream", buf, len, NULL, 0, 0, &st),
                        0);
                assert_int_equal(cc_grpc_client_wait(f->cli, st, &err), 0);
                assert_int_equal(cc_grpc_stream_n_messages(st), (size_t)counts[k]);
                for (size_t i = 0; i < cc_grpc_stream_n_messages(st); i++) {
                        size_t mlen;
                        const uint8_t *m = cc_grpc_stream_message(st, i, &mlen);
                        Ttrpc__Request *r = ttrpc__request__unpack(NULL, mlen, m);
                        assert_non_null(r);
                        assert_int_equal(r->timeout_nano, (int64_t)i);
                        ttrpc__request__free_unpacked(r, NULL);
                }
                cc_grpc_stream_free(f->cli, st);
        }
}

static void test_stream_cancel(void **state)
{
        struct fixture *f = *state;
        uint8_t buf[64];
        size_t len = pack("", -1, buf);
        struct cc_grpc_stream *st;
        atomic_store(&stream_cancelled, 0);
        assert_int_equal(cc_grpc_client_start(f->cli, "/" SVC "/Stream", buf, len, NULL, 0, 0, &st),
                         0);
        /* Let some data flow, then reset the stream; the endless handler must see -ECANCELED. */
        assert_int_equal(cc_grpc_client_ping(f->cli), 0);
        cc_grpc_stream_free(f->cli, st);
        for (int i = 0; i < 500 && !atomic_load(&stream_cancelled); i++) {
                assert_int_equal(cc_grpc_client_ping(f->cli), 0);
                usleep(10000);
        }
        assert_int_equal(atomic_load(&stream_cancelled), 1);
        Ttrpc__Request req = TTRPC__REQUEST__INIT;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(cc_grpc_client_call(f->cli, SVC, "Echo", &req.base, NULL, NULL, &err), 0);
}

static int64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void test_concurrent(void **state)
{
        struct fixture *f = *state;
        enum { N = 200 };
        struct cc_grpc_stream *st[N];
        uint8_t buf[64];
        size_t len = pack("x", 1, buf);
        int64_t t0 = mono_ms();
        pthread_mutex_lock(&slow_lock);
        slow_rendezvous = true;
        slow_gave_up = false;
        slow_peak = 0;
        pthread_mutex_unlock(&slow_lock);
        /* 200 calls of 100 ms each in flight on one connection, with a deadline. */
        for (int i = 0; i < N; i++)
                assert_int_equal(cc_grpc_client_start(f->cli,
                                                      i % 2 ? "/" SVC "/Slow" : "/" SVC "/Echo",
                                                      buf, len, NULL, 0, 30000000000LL, &st[i]),
                                 0);
        for (int i = 0; i < N; i++) {
                _cleanup_error_ struct cc_error *err = NULL;
                assert_int_equal(cc_grpc_client_wait(f->cli, st[i], &err), 0);
                assert_int_equal(cc_grpc_stream_n_messages(st[i]), 1);
                if (i % 2) {
                        size_t mlen;
                        const uint8_t *m = cc_grpc_stream_message(st[i], 0, &mlen);
                        Ttrpc__Request *r = ttrpc__request__unpack(NULL, mlen, m);
                        /* The grpc-timeout header reached the handler. */
                        assert_true(r->timeout_nano > 0 && r->timeout_nano <= 30000000000LL);
                        ttrpc__request__free_unpacked(r, NULL);
                }
                cc_grpc_stream_free(f->cli, st[i]);
        }
        /* The 100 slow calls ran in parallel, not one after another: many were in their
         * handler at the same time (measured by the handlers, not by the clock). */
        (void)t0;
        pthread_mutex_lock(&slow_lock);
        int peak = slow_peak;
        slow_rendezvous = false;
        pthread_mutex_unlock(&slow_lock);
        assert_true(peak >= SLOW_RENDEZVOUS);
}

static void test_size_limit(void **state)
{
        struct fixture *f = *state;
        static uint8_t big[4000];
        Ttrpc__Request req = TTRPC__REQUEST__INIT;
        req.payload.data = big;
        req.payload.len = sizeof(big);
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(cc_grpc_client_call(f->cli, SVC, "Echo", &req.base, NULL, NULL, &err),
                         -ENOSPC);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_RESOURCE_EXHAUSTED);
        req.payload.len = 100;
        assert_int_equal(cc_grpc_client_call(f->cli, SVC, "Echo", &req.base, NULL, NULL, &err), 0);
}

static void test_ping(void **state)
{
        struct fixture *f = *state;
        for (int i = 0; i < 10; i++)
                assert_int_equal(cc_grpc_client_ping(f->cli), 0);
}

/* A client that does not speak HTTP/2 is dropped; the server keeps serving others. */
static void test_bad_preface(void **state)
{
        struct cc_grpc_server *srv;
        assert_int_equal(cc_grpc_server_new(NULL, &srv), 0);
        assert_int_equal(cc_grpc_server_register(srv, &echo_service, NULL), 0);
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(cc_grpc_server_add_conn(srv, sv[0]), 0);
        const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_int_equal(write(sv[1], junk, sizeof(junk) - 1), (ssize_t)sizeof(junk) - 1);
        char buf[4096];
        ssize_t n;
        while ((n = read(sv[1], buf, sizeof(buf))) > 0)
                ;
        assert_int_equal(n, 0); /* closed by the server */
        close(sv[1]);
        for (int i = 0; i < 200 && cc_grpc_server_n_conns(srv); i++)
                usleep(5000);
        assert_int_equal(cc_grpc_server_n_conns(srv), 0);
        cc_grpc_server_free(srv);
}

static void test_listen_and_shutdown(void **state)
{
        char dir[] = "/tmp/test-grpc-XXXXXX";
        assert_non_null(mkdtemp(dir));
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s.sock", dir);
        int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(lfd, 16), 0);
        struct cc_grpc_server *srv;
        assert_int_equal(cc_grpc_server_new(NULL, &srv), 0);
        assert_int_equal(cc_grpc_server_register(srv, &echo_service, NULL), 0);
        assert_int_equal(cc_grpc_server_listen(srv, lfd), 0);

        struct cc_grpc_client *cli[3];
        for (int i = 0; i < 3; i++) {
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
                assert_int_equal(cc_grpc_client_new(fd, &cli[i]), 0);
                Ttrpc__Request req = TTRPC__REQUEST__INIT;
                _cleanup_error_ struct cc_error *err = NULL;
                assert_int_equal(
                        cc_grpc_client_call(cli[i], SVC, "Echo", &req.base, NULL, NULL, &err), 0);
        }
        assert_int_equal(cc_grpc_server_n_conns(srv), 3);
        /* Shutdown with connections open and one slow call in flight: it still completes. */
        uint8_t buf[64];
        size_t len = pack("x", 1, buf);
        struct cc_grpc_stream *st;
        assert_int_equal(cc_grpc_client_start(cli[0], "/" SVC "/Slow", buf, len, NULL, 0, 0, &st),
                         0);
        assert_int_equal(cc_grpc_client_ping(cli[0]), 0);
        usleep(20000);
        cc_grpc_server_free(srv);
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(cc_grpc_client_wait(cli[0], st, &err), 0);
        cc_grpc_stream_free(cli[0], st);
        for (int i = 0; i < 3; i++)
                cc_grpc_client_free(cli[i]);
        unlink(sa.sun_path);
        rmdir(dir);
}

static void test_wire_helpers(void **state)
{
        char *e = cc_grpc_percent_encode("a b%c\n\xc3\xa9");
        assert_string_equal(e, "a b%25c%0A%C3%A9");
        char *d = cc_grpc_percent_decode(e, strlen(e));
        assert_string_equal(d, "a b%c\n\xc3\xa9");
        free(e);
        free(d);
        /* Malformed escapes stay literal. */
        d = cc_grpc_percent_decode("100%zz%4", 8);
        assert_string_equal(d, "100%zz%4");
        free(d);

        int64_t ns;
        assert_int_equal(cc_grpc_parse_timeout("1S", 2, &ns), 0);
        assert_int_equal(ns, 1000000000LL);
        assert_int_equal(cc_grpc_parse_timeout("250m", 4, &ns), 0);
        assert_int_equal(ns, 250000000LL);
        assert_int_equal(cc_grpc_parse_timeout("99999999H", 9, &ns), 0);
        assert_true(ns > 0);
        assert_int_equal(cc_grpc_parse_timeout("123456789S", 10, &ns), -EINVAL);
        assert_int_equal(cc_grpc_parse_timeout("S", 1, &ns), -EINVAL);
        assert_int_equal(cc_grpc_parse_timeout("1x", 2, &ns), -EINVAL);
        assert_int_equal(cc_grpc_parse_timeout("-1S", 3, &ns), -EINVAL);
        char buf[16];
        cc_grpc_format_timeout(1500, buf);
        assert_string_equal(buf, "1500n");
        cc_grpc_format_timeout(30000000000LL, buf);
        assert_string_equal(buf, "30000000u");
        cc_grpc_format_timeout(3600LL * 1000000000LL * 1000, buf);
        assert_int_equal(cc_grpc_parse_timeout(buf, strlen(buf), &ns), 0);
        assert_true(ns >= 3600LL * 1000000000LL * 1000);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_wire_helpers),
                cmocka_unit_test_setup_teardown(test_unary, setup, teardown),
                cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_empty_reply, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stream_cancel, setup, teardown),
                cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
                cmocka_unit_test_setup_teardown(test_size_limit, setup_small, teardown),
                cmocka_unit_test_setup_teardown(test_ping, setup, teardown),
                cmocka_unit_test(test_bad_preface),
                cmocka_unit_test(test_listen_and_shutdown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
