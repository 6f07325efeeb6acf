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
        char requests[4096];
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

/* The QMP arguments of a hot-plug, exactly. */
static void test_hotplug_args(void **state)
{
        struct hv_disk d = {.path = "/dev/loop3", .serial = "vol-1", .readonly = true};
        json_object *o = hv_qemu_blockdev_add_args(&d, true);
        assert_string_equal(json_object_to_json_string_ext(
                                    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                            "{\"driver\":\"raw\",\"node-name\":\"hpd-vol-1\",\"read-only\":true,"
                            "\"file\":{\"driver\":\"host_device\",\"filename\":\"/dev/loop3\","
                            "\"cache\":{\"direct\":true},\"read-only\":true}}");
        json_object_put(o);
        o = hv_qemu_device_add_args("vol-1", 7);
        assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
                            "{\"driver\":\"virtio-blk-pci\",\"id\":\"hpblk-vol-1\",\"drive\":"
                            "\"hpd-vol-1\",\"serial\":\"vol-1\",\"bus\":\"hp7\"}");
        json_object_put(o);
        o = hv_qemu_name_args("node-name", HV_QEMU_NODE_PREFIX, "vol-1");
        assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
                            "{\"node-name\":\"hpd-vol-1\"}");
        json_object_put(o);
}

/* A regular file to hot-plug (stat must find one). */
static void temp_disk(char *path, size_t len)
{
        snprintf(path, len, "/tmp/test-hv-qmp-XXXXXX");
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);
}

/*
 * Add, then remove with DEVICE_DELETED arriving before device_del's own return (the guest can
 * be that quick): the event is not lost. The backend child's event (no "device") is ignored.
 */
static void test_hotplug_add_remove(void **state)
{
        char path[64];
        temp_disk(path, sizeof(path));
        struct peer p = {
                .greeting = GREETING,
                .replies = {"{\"return\": {}, \"id\": \"hv-1\"}\n",
                            "{\"return\": {}, \"id\": \"hv-2\"}\n",
                            "{\"return\": {}, \"id\": \"hv-3\"}\n",
                            "{\"event\": \"DEVICE_DELETED\", \"data\": {\"path\": "
                            "\"/machine/peripheral/hpblk-s1/virtio-backend\"}}\n"
                            "{\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": \"hpblk-s1\", "
                            "\"path\": \"/machine/peripheral/hpblk-s1\"}}\n"
                            "{\"return\": {}, \"id\": \"hv-4\"}\n",
                            "{\"return\": {}, \"id\": \"hv-5\"}\n"},
        };
        pthread_t t;
        struct hv_qmp q;
        int fd;
        run_peer(&p, &t, &q, &fd);
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(hv_qmp_handshake(&q, fd, 5000, &err), 0);
        struct hv_qemu_hotplug h = {0};
        assert_int_equal(hv_qemu_hotplug_init(&h, &q, 2, &err), 0);
        struct hv_disk d = {.path = path, .serial = "s1"};
        assert_int_equal(hv_qemu_disk_add(&h, &d, 5000, &err), 0);
        assert_int_equal(hv_qemu_disk_add(&h, &d, 5000, &err), -EEXIST);
        assert_int_equal(hv_qemu_disk_remove(&h, "s1", 5000, &err), 0);
        assert_int_equal(hv_qemu_disk_remove(&h, "s1", 5000, &err), -ENOENT);
        hv_qemu_hotplug_done(&h);
        finish_peer(&p, t, &q);
        unlink(path);
        /* json-c escapes the path's '/' (valid JSON, which QEMU reads). */
        assert_non_null(strstr(p.requests,
                               "{\"execute\":\"blockdev-add\",\"arguments\":{\"driver\":"
                               "\"raw\",\"node-name\":\"hpd-s1\",\"read-only\":false,"
                               "\"file\":{\"driver\":\"file\",\"filename\":"
                               "\"\\/tmp\\/test-hv-qmp-"));
        assert_non_null(strstr(
                p.requests,
                "\",\"cache\":{\"direct\":false},\"read-only\":false}},\"id\":\"hv-2\"}\n"
                "{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"virtio-blk-pci\",\"id\":"
                "\"hpblk-s1\",\"drive\":\"hpd-s1\",\"serial\":\"s1\",\"bus\":\"hp0\"},\"id\":"
                "\"hv-3\"}\n"
                "{\"execute\":\"device_del\",\"arguments\":{\"id\":\"hpblk-s1\"},\"id\":\"hv-4\"}\n"
                "{\"execute\":\"blockdev-del\",\"arguments\":{\"node-name\":\"hpd-s1\"},\"id\":"
                "\"hv-5\"}\n"));
}

/* device_add refused: the block node is deleted again and the slot stays free. */
static void test_hotplug_device_add_fails(void **state)
{
        char path[64];
        temp_disk(path, sizeof(path));
        struct peer p = {
                .greeting = GREETING,
                .replies = {"{\"return\": {}, \"id\": \"hv-1\"}\n",
                            "{\"return\": {}, \"id\": \"hv-2\"}\n",
                            "{\"id\": \"hv-3\", \"error\": {\"class\": \"GenericError\", "
                            "\"desc\": \"Bus 'hp0' not found\"}}\n",
                            "{\"return\": {}, \"id\": \"hv-4\"}\n"},
        };
        pthread_t t;
        struct hv_qmp q;
        int fd;
        run_peer(&p, &t, &q, &fd);
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(hv_qmp_handshake(&q, fd, 5000, &err), 0);
        struct hv_qemu_hotplug h = {0};
        assert_int_equal(hv_qemu_hotplug_init(&h, &q, 1, &err), 0);
        struct hv_disk d = {.path = path, .serial = "s2"};
        assert_int_equal(hv_qemu_disk_add(&h, &d, 5000, &err), -EREMOTEIO);
        assert_non_null(strstr(cc_error_message(err), "disk 's2'"));
        assert_non_null(strstr(cc_error_message(err), "Bus 'hp0' not found"));
        assert_false(h.slots[0].used);
        assert_int_equal(hv_qemu_disk_remove(&h, "s2", 5000, &err), -ENOENT);
        /* No slots at all: refused before QEMU is asked. */
        struct hv_qemu_hotplug none = {0};
        assert_int_equal(hv_qemu_hotplug_init(&none, &q, 0, &err), 0);
        assert_int_equal(hv_qemu_disk_add(&none, &d, 5000, &err), -ENOSPC);
        assert_non_null(strstr(cc_error_message(err), "hotplug_slots = 0"));
        hv_qemu_hotplug_done(&none);
        hv_qemu_hotplug_done(&h);
        finish_peer(&p, t, &q);
        unlink(path);
        assert_non_null(strstr(p.requests, "\"execute\":\"blockdev-del\",\"arguments\":{"
                                           "\"node-name\":\"hpd-s2\"},\"id\":\"hv-4\"}"));
}

/*
 * A guest that does not acknowledge the unplug: -ETIMEDOUT, the disk stays tracked. A retry
 * (QEMU refusing a second device_del while the first is pending) waits for the late event and
 * then deletes the node.
 */
static void test_hotplug_remove_timeout(void **state)
{
        char path[64];
        temp_disk(path, sizeof(path));
        struct peer p = {
                .greeting = GREETING,
                .replies = {"{\"return\": {}, \"id\": \"hv-1\"}\n",
                            "{\"return\": {}, \"id\": \"hv-2\"}\n",
                            "{\"return\": {}, \"id\": \"hv-3\"}\n",
                            "{\"return\": {}, \"id\": \"hv-4\"}\n",
                            "{\"id\": \"hv-5\", \"error\": {\"class\": \"GenericError\", "
                            "\"desc\": \"Device hpblk-s3 is already in the process of unplug\"}}\n"
                            "{\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": \"hpblk-s3\", "
                            "\"path\": \"/machine/peripheral/hpblk-s3\"}}\n",
                            "{\"return\": {}, \"id\": \"hv-6\"}\n"},
        };
        pthread_t t;
        struct hv_qmp q;
        int fd;
        run_peer(&p, &t, &q, &fd);
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(hv_qmp_handshake(&q, fd, 5000, &err), 0);
        struct hv_qemu_hotplug h = {0};
        assert_int_equal(hv_qemu_hotplug_init(&h, &q, 1, &err), 0);
        struct hv_disk d = {.path = path, .serial = "s3"};
        assert_int_equal(hv_qemu_disk_add(&h, &d, 5000, &err), 0);
        assert_int_equal(hv_qemu_disk_remove(&h, "s3", 200, &err), -ETIMEDOUT);
        assert_non_null(strstr(cc_error_message(err), "did not release"));
        assert_true(h.slots[0].used);
        assert_int_equal(hv_qemu_disk_add(&h, &d, 5000, &err), -EEXIST);
        assert_int_equal(hv_qemu_disk_remove(&h, "s3", 5000, &err), 0);
        assert_false(h.slots[0].used);
        hv_qemu_hotplug_done(&h);
        finish_peer(&p, t, &q);
        unlink(path);
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
                cmocka_unit_test(test_hotplug_args),
                cmocka_unit_test(test_hotplug_add_remove),
                cmocka_unit_test(test_hotplug_device_add_fails),
                cmocka_unit_test(test_hotplug_remove_timeout),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
