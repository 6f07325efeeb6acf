/*
 * Unit tests for the QMP client: the parser on each kind of message, and the client against a
 * scripted peer on a socketpair (greeting, events before replies, errors, foreign ids, bounded
 * lines, timeouts, the peer going away).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
/* clang-format off: cmocka.h needs the headers above first */
#include <cmocka.h>
/* clang-format on */

#include "cc/cleanup.h"
#include "cc/error.h"

#include "hypervisor/qemu/qemu.h"

#define GREETING                                                                           \
        "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, " \
        "\"package\": \"Debian\"}, \"capabilities\": [\"oob\"]}}\n"

static void test_parse_kinds(void **state)
{
        struct hv_qmp_msg m;
        const char *g = GREETING;
        assert_int_equal(hv_qmp_parse(g, strlen(g) - 1, &m), 0);
        assert_int_equal(m.kind, HV_QMP_GREETING);
        assert_int_equal(m.version, 70222);
        hv_qmp_msg_done(&m);

        const char *r = "{\"return\": {\"status\": \"running\"}, \"id\": \"hv-7\"}";
        assert_int_equal(hv_qmp_parse(r, strlen(r), &m), 0);
        assert_int_equal(m.kind, HV_QMP_RETURN);
        assert_string_equal(m.id, "hv-7");
        assert_non_null(m.value);
        hv_qmp_msg_done(&m);

        const char *e = "{\"id\": \"x\", \"error\": {\"class\": \"CommandNotFound\", \"desc\": "
                        "\"nope\"}}";
        assert_int_equal(hv_qmp_parse(e, strlen(e), &m), 0);
        assert_int_equal(m.kind, HV_QMP_ERROR);
        assert_string_equal(m.err_class, "CommandNotFound");
        assert_string_equal(m.err_desc, "nope");
        hv_qmp_msg_done(&m);

        const char *ev = "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": "
                         "\"SHUTDOWN\", \"data\": {\"guest\": true, \"reason\": "
                         "\"guest-shutdown\"}}";
        assert_int_equal(hv_qmp_parse(ev, strlen(ev), &m), 0);
        assert_int_equal(m.kind, HV_QMP_EVENT);
        assert_string_equal(m.event, "SHUTDOWN");
        hv_qmp_msg_done(&m);
}

static void test_parse_rejects(void **state)
{
        const char *bad[] = {"",
                             "[1]",
                             "42",
                             "{\"foo\": 1}",
                             "{\"return\": {}} x",
                             "{\"return\": {",
                             "{\"error\": \"str\"}",
                             "{\"event\": 5}"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct hv_qmp_msg m;
                assert_int_equal(hv_qmp_parse(bad[i], strlen(bad[i]), &m), -EBADMSG);
                assert_null(m.root);
        }
}

/* A scripted QEMU: reads a line from the client, then writes the next scripted chunk. */
struct peer {
        int fd;
        const char *greeting;
        const char *replies[8]; /* one per client command; NULL = close */
        char requests[2048];
};

static void *peer_main(void *arg)
{
        struct peer *p = arg;
        size_t used = 0;
        if (p->greeting && write(p->fd, p->greeting, strlen(p->greeting)) < 0)
                return NULL;
        for (size_t i = 0; i < 8 && p->replies[i]; i++) {
                char c;
                do {
                        if (read(p->fd, &c, 1) != 1)
                                return NULL;
                        if (used < sizeof(p->requests) - 1)
                                p->requests[used++] = c;
                } while (c != '\n');
                if (write(p->fd, p->replies[i], strlen(p->replies[i])) < 0)
                        return NULL;
        }
        return NULL;
}

static void run_peer(struct peer *p, pthread_t *t, struct hv_qmp *q, int *client)
{
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        p->fd = sv[1];
        *client = sv[0];
        *q = (struct hv_qmp)HV_QMP_INIT;
        assert_int_equal(pthread_create(t, NULL, peer_main, p), 0);
}

static void finish_peer(struct peer *p, pthread_t t, struct hv_qmp *q)
{
        hv_qmp_close(q);
        pthread_join(t, NULL);
        close(p->fd);
}

static void test_handshake_and_events(void **state)
{
        struct peer p = {
                .greeting = GREETING,
                .replies = {"{\"return\": {}, \"id\": \"hv-1\"}\n",
                            /* an event and a stale reply arrive before ours */
                            "{\"event\": \"POWERDOWN\", \"timestamp\": {}}\n"
                            "{\"return\": {}, \"id\": \"hv-0\"}\n"
                            "{\"return\": {\"status\": \"running\", \"running\": true}, "
                            "\"id\": \"hv-2\"}\n",
                            "{\"timestamp\": {}, \"event\": \"SHUTDOWN\", \"data\": {\"guest\": "
                            "false, \"reason\": \"host-qmp-quit\"}}\n{\"return\": {}, \"id\": "
                            "\"hv-3\"}\n"},
        };
        pthread_t t;
        struct hv_qmp q;
        int fd;
        run_peer(&p, &t, &q, &fd);
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(hv_qmp_handshake(&q, fd, 5000, &err), 0);
        assert_int_equal(q.version, 70222);
        json_object *ret = NULL;
        assert_int_equal(hv_qmp_execute(&q, "query-status", NULL, 5000, &ret, &err), 0);
        json_object *st;
        assert_true(json_object_object_get_ex(ret, "status", &st));
        assert_string_equal(json_object_get_string(st), "running");
        json_object_put(ret);
        assert_false(q.shutdown_seen);
        assert_int_equal(hv_qmp_execute(&q, "quit", NULL, 5000, NULL, &err), 0);
        assert_true(q.shutdown_seen);
        assert_string_equal(q.shutdown_reason, "host-qmp-quit");
        finish_peer(&p, t, &q);
        /* What the client sent: capabilities first, every command tagged with an id. */
        assert_non_null(strstr(p.requests, "{\"execute\":\"qmp_capabilities\",\"id\":\"hv-1\"}\n"
                                           "{\"execute\":\"query-status\",\"id\":\"hv-2\"}\n"
                                           "{\"execute\":\"quit\",\"id\":\"hv-3\"}\n"));
}

static void test_error_reply(void **state)
{
        struct peer p = {
                .greeting = GREETING,
                .replies = {"{\"return\": {}, \"id\": \"hv-1\"}\n",
                            "{\"id\": \"hv-2\", \"error\": {\"class\": \"GenericError\", "
                            "\"desc\": \"bad\"}}\n"},
        };
        pthread_t t;
        struct hv_qmp q;
        int fd;
        run_peer(&p, &t, &q, &fd);
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(hv_qmp_handshake(&q, fd, 5000, &err), 0);
        json_object *args = json_object_new_object();
        json_object_object_add(args, "id", json_object_new_string("x"));
        assert_int_equal(hv_qmp_execute(&q, "device_del", args, 5000, NULL, &err), -EREMOTEIO);
        json_object_put(args);
        assert_string_equal(cc_error_message(err), "qmp device_del: GenericError: bad");
        finish_peer(&p, t, &q);
        assert_non_null(strstr(p.requests, "{\"execute\":\"device_del\",\"arguments\":{\"id\":"
                                           "\"x\"},\"id\":\"hv-2\"}"));
}

static void test_no_greeting_and_close(void **state)
{
        struct peer p = {.greeting = "{\"return\": {}}\n"};
        pthread_t t;
        struct hv_qmp q;
        int fd;
        run_peer(&p, &t, &q, &fd);
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(hv_qmp_handshake(&q, fd, 5000, &err), -EPROTO);
        finish_peer(&p, t, &q);

        struct peer p2 = {.greeting = GREETING}; /* then closes: no reply */
        run_peer(&p2, &t, &q, &fd);
        pthread_join(t, NULL);
        close(p2.fd);
        /* Writing the capabilities or reading their reply notices the closed peer. */
        int r = hv_qmp_handshake(&q, fd, 5000, &err);
        assert_true(r == -ECONNRESET || r == -EPIPE);
        hv_qmp_close(&q);
}

static void test_timeout_and_watch_fd(void **state)
{
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        struct hv_qmp q = HV_QMP_INIT;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(hv_qmp_handshake(&q, sv[0], 50, &err), -ETIMEDOUT);
        /* A readable watch fd (the VMM's pidfd in real use) ends the wait at once. */
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        assert_int_equal(write(pfd[1], "x", 1), 1);
        q.watch_fd = pfd[0];
        assert_int_equal(hv_qmp_execute(&q, "query-status", NULL, 5000, NULL, &err), -ECHILD);
        hv_qmp_close(&q);
        close(sv[1]);
        close(pfd[0]);
        close(pfd[1]);
}

static void test_line_bound(void **state)
{
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        /* A peer that never ends its line: the client gives up at HV_QMP_MAX_LINE. */
        pid_t pid = fork();
        if (pid == 0) {
                close(sv[0]);
                char buf[65536];
                memset(buf, 'a', sizeof(buf));
                for (unsigned i = 0; i < (HV_QMP_MAX_LINE / sizeof(buf)) + 2; i++)
                        if (write(sv[1], buf, sizeof(buf)) < 0)
                                break;
                _exit(0);
        }
        close(sv[1]);
        struct hv_qmp q = HV_QMP_INIT;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(hv_qmp_handshake(&q, sv[0], 10000, &err), -EMSGSIZE);
        hv_qmp_close(&q);
        waitpid(pid, NULL, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_kinds),
                cmocka_unit_test(test_parse_rejects),
                cmocka_unit_test(test_handshake_and_events),
                cmocka_unit_test(test_error_reply),
                cmocka_unit_test(test_no_greeting_and_close),
                cmocka_unit_test(test_timeout_and_watch_fd),
                cmocka_unit_test(test_line_bound),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
