/*
 * The TDX quote from the host's Quote Generation Service (guest-agent/attest/qgs.c): the
 * GET_QUOTE_REQ bytes for a fixed TDREPORT (attestation-kbs.md 4.3's table), GET_QUOTE_RESP
 * answers good and hostile, and the exchange against a QGS stand-in on a socketpair (the vsock
 * connection itself needs a TDX host).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include "guest-agent/attest/kbc.h"

static uint8_t tdreport[KBC_TDREPORT_SIZE];

static int setup(void **state)
{
        for (size_t i = 0; i < sizeof(tdreport); i++)
                tdreport[i] = (uint8_t)(i * 7);
        return 0;
}

static void le32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

/* A GET_QUOTE_RESP message (no length prefix): header, sizes, id, quote. */
static size_t response(uint8_t *out, uint32_t type, uint32_t code, uint32_t id_len,
                       uint32_t quote_len, uint32_t claimed_size)
{
        size_t n = 16 + 8 + id_len + quote_len;
        memset(out, 0, n);
        out[0] = 1; /* major */
        le32(out + 4, type);
        le32(out + 8, claimed_size ? claimed_size : (uint32_t)n);
        le32(out + 12, code);
        le32(out + 16, id_len);
        le32(out + 20, quote_len);
        for (uint32_t i = 0; i < id_len; i++)
                out[24 + i] = 0xEE;
        for (uint32_t i = 0; i < quote_len; i++)
                out[24 + id_len + i] = (uint8_t)(0x40 + i);
        return n;
}

static void test_request_bytes(void **state)
{
        uint8_t req[KBC_QGS_REQUEST_SIZE];
        kbc_qgs_encode_request(tdreport, req);
        assert_int_equal(sizeof(req), 4 + 1048);
        /* Big-endian length 1048 = 0x418, then the little-endian header: major 1, minor 1,
         * type 0 (GET_QUOTE_REQ), size 1048, error_code 0; report_size 1024, id_list_size 0. */
        static const uint8_t head[] = {0x00, 0x00, 0x04, 0x18, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00,
                                       0x00, 0x00, 0x18, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                       0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
        assert_memory_equal(req, head, sizeof(head));
        assert_memory_equal(req + sizeof(head), tdreport, sizeof(tdreport));
}

static void test_response(void **state)
{
        uint8_t msg[256];
        const uint8_t *q;
        size_t ql;
        struct cc_error *e = NULL;
        size_t n = response(msg, 1, 0, 4, 100, 0);
        assert_int_equal(kbc_qgs_decode_response(msg, n, &q, &ql, &e), 0);
        assert_int_equal(ql, 100);
        assert_ptr_equal(q, msg + 28);
        assert_int_equal(q[0], 0x40);
        /* The QGS's own error code, named. */
        n = response(msg, 1, 0x12001, 0, 1, 0);
        assert_int_equal(kbc_qgs_decode_response(msg, n, &q, &ql, &e), -EIO);
        assert_non_null(strstr(cc_error_message(e), "error code 0x12001"));
        /* Wrong type, wrong version, a size that is not what came, sizes that overflow or do
         * not fill the message, no quote, a truncated header. */
        n = response(msg, 0, 0, 0, 1, 0);
        assert_int_equal(kbc_qgs_decode_response(msg, n, &q, &ql, &e), -EPROTO);
        n = response(msg, 1, 0, 0, 1, 0);
        msg[0] = 2;
        assert_int_equal(kbc_qgs_decode_response(msg, n, &q, &ql, &e), -EPROTO);
        n = response(msg, 1, 0, 0, 10, 4096);
        assert_int_equal(kbc_qgs_decode_response(msg, n, &q, &ql, &e), -EBADMSG);
        n = response(msg, 1, 0, 0, 10, 0);
        le32(msg + 16, 0xFFFFFFF0u); /* id_size: would wrap a 32-bit sum */
        assert_int_equal(kbc_qgs_decode_response(msg, n, &q, &ql, &e), -EBADMSG);
        n = response(msg, 1, 0, 0, 10, 0);
        le32(msg + 20, 9);
        assert_int_equal(kbc_qgs_decode_response(msg, n, &q, &ql, &e), -EBADMSG);
        n = response(msg, 1, 0, 0, 0, 0);
        assert_int_equal(kbc_qgs_decode_response(msg, n, &q, &ql, &e), -EBADMSG);
        assert_int_equal(kbc_qgs_decode_response(msg, 15, &q, &ql, &e), -EBADMSG);
        cc_error_free(e);
}

/* The QGS stand-in: reads one request, checks it, answers with `mode`. */
enum { QGS_OK, QGS_HUGE, QGS_HANG, QGS_SHORT };
struct qgs {
        int fd, mode;
        bool request_ok;
};

static void *qgs_main(void *data)
{
        struct qgs *g = data;
        uint8_t req[KBC_QGS_REQUEST_SIZE], want[KBC_QGS_REQUEST_SIZE];
        size_t got = 0;
        while (got < sizeof(req)) {
                ssize_t k = read(g->fd, req + got, sizeof(req) - got);
                if (k <= 0)
                        return NULL;
                got += (size_t)k;
        }
        kbc_qgs_encode_request(tdreport, want);
        g->request_ok = !memcmp(req, want, sizeof(req));
        uint8_t out[4 + 512];
        size_t n = response(out + 4, 1, 0, 8, 300, 0);
        uint32_t len = g->mode == QGS_HUGE ? 64u << 20 : (uint32_t)n;
        out[0] = (uint8_t)(len >> 24), out[1] = (uint8_t)(len >> 16);
        out[2] = (uint8_t)(len >> 8), out[3] = (uint8_t)len;
        if (g->mode == QGS_HANG)
                return NULL; /* says nothing; the test closes the socket */
        size_t send_n = g->mode == QGS_SHORT ? 4 + n / 2 : 4 + n;
        if (write(g->fd, out, send_n) != (ssize_t)send_n)
                return NULL;
        if (g->mode == QGS_SHORT)
                shutdown(g->fd, SHUT_WR);
        return NULL;
}

static int exchange(int mode, unsigned timeout_ms, bool *request_ok, uint8_t **q, size_t *ql,
                    struct cc_error **e)
{
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        struct qgs g = {.fd = sv[1], .mode = mode};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, qgs_main, &g), 0);
        int r = kbc_qgs_exchange(sv[0], tdreport, timeout_ms, q, ql, e);
        close(sv[0]);
        pthread_join(t, NULL);
        close(sv[1]);
        *request_ok = g.request_ok;
        return r;
}

static void test_exchange(void **state)
{
        uint8_t *q = NULL;
        size_t ql = 0;
        bool ok = false;
        struct cc_error *e = NULL;
        assert_int_equal(exchange(QGS_OK, 0, &ok, &q, &ql, &e), 0);
        assert_true(ok);
        assert_int_equal(ql, 300);
        assert_int_equal(q[0], 0x40);
        free(q);
        /* A host announcing 64 MiB: refused before any allocation of that size. */
        assert_int_equal(exchange(QGS_HUGE, 0, &ok, &q, &ql, &e), -EBADMSG);
        assert_non_null(strstr(cc_error_message(e), "an answer of 67108864 bytes"));
        /* A host that hangs: the bound, not a wait forever. */
        assert_int_equal(exchange(QGS_HANG, 200, &ok, &q, &ql, &e), -ETIMEDOUT);
        /* A host that stops half-way. */
        assert_int_equal(exchange(QGS_SHORT, 0, &ok, &q, &ql, &e), -ECONNRESET);
        assert_non_null(strstr(cc_error_message(e), "reading its"));
        cc_error_free(e);
}

static void test_port(void **state)
{
        char path[] = "/tmp/test-kbc-qgs.XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        const char conf[] = "# libtdx_attest\nport=4051\n";
        assert_int_equal(write(fd, conf, strlen(conf)), (ssize_t)strlen(conf));
        close(fd);
        assert_int_equal(kbc_qgs_port(path), 4051);
        unlink(path);
        assert_int_equal(kbc_qgs_port(path), KBC_QGS_PORT_DEFAULT);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_request_bytes),
                cmocka_unit_test(test_response),
                cmocka_unit_test(test_exchange),
                cmocka_unit_test(test_port),
        };
        return cmocka_run_group_tests(tests, setup, NULL);
}
