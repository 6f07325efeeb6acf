/*
 * Unit tests: the shim's wait for a booting guest's agent (shim/agent-wait.c) against a fake
 * agent, a real ttrpc server on a unix socket whose grpc.Health/Check answers SERVING after a
 * chosen delay. The deadline must hold inside an attempt (dial_timeout 1 s against an agent
 * that answers after 1.5 s fails at 1 s), and a fatal console line or the VMM's exit must end
 * the wait at once, also while a Check is in flight.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include "cc/log.h"
#include "cc/ttrpc.h"

#include "kata/health.pb-c.h"
#include "shim/shim.h"

static int64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

struct fake_agent {
        char dir[64];
        char addr[128];
        struct cc_ttrpc_server *srv;
        int delay_ms;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool stopping; /* fake_stop(): handlers still sleeping return at once */
};

static int check(struct cc_ttrpc_call *call, void *userdata, const ProtobufCMessage *req,
                 ProtobufCMessage *resp, struct cc_error **err)
{
        struct fake_agent *fa = userdata;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += fa->delay_ms / 1000;
        until.tv_nsec += (long)(fa->delay_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&fa->lock);
        while (!fa->stopping && pthread_cond_timedwait(&fa->cond, &fa->lock, &until) == 0)
                ;
        pthread_mutex_unlock(&fa->lock);
        ((Grpc__HealthCheckResponse *)resp)->status =
                GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
        return 0;
}

static const struct cc_ttrpc_method health_methods[] = {
        {"Check", &grpc__check_request__descriptor, &grpc__health_check_response__descriptor, check,
         0},
};
static const struct cc_ttrpc_service health = {"grpc.Health", health_methods, 1};

static void fake_start(struct fake_agent *fa, int delay_ms)
{
        memset(fa, 0, sizeof(*fa));
        fa->delay_ms = delay_ms;
        pthread_mutex_init(&fa->lock, NULL);
        pthread_cond_init(&fa->cond, NULL);
        strcpy(fa->dir, "/tmp/cc-agent-wait.XXXXXX");
        assert_non_null(mkdtemp(fa->dir));
        char path[96];
        snprintf(path, sizeof(path), "%s/agent.sock", fa->dir);
        snprintf(fa->addr, sizeof(fa->addr), "unix:%s", path);
        struct cc_ttrpc_server_options o = {0};
        assert_int_equal(cc_ttrpc_server_new(&o, &fa->srv), 0);
        assert_int_equal(cc_ttrpc_server_register(fa->srv, &health, fa), 0);
        int lfd = cc_unix_listen(path, 8);
        assert_true(lfd >= 0);
        assert_int_equal(cc_ttrpc_server_listen(fa->srv, lfd), 0);
}

static void fake_stop(struct fake_agent *fa)
{
        pthread_mutex_lock(&fa->lock);
        fa->stopping = true;
        pthread_cond_broadcast(&fa->cond);
        pthread_mutex_unlock(&fa->lock);
        cc_ttrpc_server_free(fa->srv);
        char path[96];
        snprintf(path, sizeof(path), "%s/agent.sock", fa->dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/console.log", fa->dir);
        unlink(path);
        rmdir(fa->dir);
}

/* dial_timeout 1 s, an agent that answers after 1.5 s: the wait fails at 1 s, not at 1.5 s
 * (the old fixed 2 s attempt) and not at 2 s. Three rounds; the best must be within 100 ms of
 * the deadline, and every round must end before the agent's answer. */
static void test_deadline_inside_attempt(void **state)
{
        struct fake_agent fa;
        fake_start(&fa, 1500);
        int64_t best = INT64_MAX;
        for (int i = 0; i < 3; i++) {
                struct shim_agent_wait w = {.addr = fa.addr, .timeout_ms = 1000, .exit_fd = -1};
                struct cc_ttrpc_client *c = NULL;
                struct cc_error *e = NULL;
                int64_t t0 = mono_ms();
                int r = shim_agent_wait(&w, &c, &e);
                int64_t took = mono_ms() - t0;
                assert_int_equal(r, -ETIMEDOUT);
                assert_null(c);
                assert_non_null(
                        strstr(cc_error_message(e), "did not answer Health.Check within 1 s"));
                cc_error_free(e);
                assert_true(took >= 999);
                assert_true(took < 1500);
                if (took < best)
                        best = took;
        }
        print_message(
                "dial_timeout 1 s, agent answers after 1.5 s: failed after %lld ms (best of 3)\n",
                (long long)best);
        assert_true(best <= 1100);
        fake_stop(&fa);
}

static void test_agent_answers_in_time(void **state)
{
        struct fake_agent fa;
        fake_start(&fa, 300);
        struct shim_agent_wait w = {.addr = fa.addr, .timeout_ms = 5000, .exit_fd = -1};
        struct cc_ttrpc_client *c = NULL;
        struct cc_error *e = NULL;
        assert_int_equal(shim_agent_wait(&w, &c, &e), 0);
        assert_non_null(c);
        assert_null(e);
        cc_ttrpc_client_free(c);
        fake_stop(&fa);
}

/* Nothing listens yet: the wait retries until the agent appears. */
static void test_agent_appears_late(void **state)
{
        struct fake_agent fa;
        fake_start(&fa, 0);
        char path[96];
        snprintf(path, sizeof(path), "%s/late.sock", fa.dir);
        char addr[128];
        snprintf(addr, sizeof(addr), "unix:%s", path);
        struct shim_agent_wait w = {.addr = addr, .timeout_ms = 5000, .exit_fd = -1};
        /* Rename the listening socket into place after 400 ms. */
        char real[96];
        snprintf(real, sizeof(real), "%s/agent.sock", fa.dir);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                sleep_ms(400);
                _exit(rename(real, path) == 0 ? 0 : 1);
        }
        struct cc_ttrpc_client *c = NULL;
        struct cc_error *e = NULL;
        assert_int_equal(shim_agent_wait(&w, &c, &e), 0);
        cc_ttrpc_client_free(c);
        int st;
        waitpid(pid, &st, 0);
        unlink(path);
        fake_stop(&fa);
}

struct appender {
        const char *path;
        int after_ms;
        const char *text;
};

static void *append_later(void *arg)
{
        struct appender *a = arg;
        sleep_ms(a->after_ms);
        int fd = open(a->path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd >= 0) {
                ssize_t n = write(fd, a->text, strlen(a->text));
                (void)n;
                close(fd);
        }
        return NULL;
}

/* A panic on the console ends the wait at once, also while a Check is in flight (the fake
 * agent would answer only after 8 s). */
static void test_console_panic_cuts_check(void **state)
{
        struct fake_agent fa;
        fake_start(&fa, 8000);
        char con[96];
        snprintf(con, sizeof(con), "%s/console.log", fa.dir);
        FILE *f = fopen(con, "w");
        assert_non_null(f);
        /* Boot noise, long enough to span several reads of the watcher. */
        for (int i = 0; i < 200; i++)
                fprintf(f, "[    0.%06d] some kernel line number %d\r\n", i, i);
        fclose(f);
        struct appender a = {
                con, 500,
                "[    1.234567] Kernel panic - not syncing: VFS: Unable to mount root fs "
                "on unknown-block(0,0)\r\n[    1.2] ---[ end Kernel panic ]---\r\n"};
        pthread_t t;
        pthread_create(&t, NULL, append_later, &a);
        struct shim_agent_wait w = {
                .addr = fa.addr, .timeout_ms = 20000, .exit_fd = -1, .console_path = con};
        struct cc_ttrpc_client *c = NULL;
        struct cc_error *e = NULL;
        int64_t t0 = mono_ms();
        int r = shim_agent_wait(&w, &c, &e);
        int64_t took = mono_ms() - t0;
        pthread_join(t, NULL);
        assert_int_equal(r, -EIO);
        assert_null(c);
        const char *m = cc_error_message(e);
        assert_non_null(strstr(m, "the guest failed to boot"));
        assert_non_null(strstr(m, "Kernel panic - not syncing: VFS: Unable to mount root fs on "
                                  "unknown-block(0,0)"));
        assert_null(strchr(m, '\r'));
        cc_error_free(e);
        assert_true(took < 5000);
        fake_stop(&fa);
}

/* The VMM exited: the wait ends at once, with the console's last words. */
static void test_vmm_exit(void **state)
{
        struct fake_agent fa;
        fake_start(&fa, 8000);
        char con[96];
        snprintf(con, sizeof(con), "%s/console.log", fa.dir);
        FILE *f = fopen(con, "w");
        assert_non_null(f);
        fprintf(f, "booting\nsomething went wrong early\n");
        fclose(f);
        int efd = eventfd(0, EFD_CLOEXEC);
        assert_true(efd >= 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                sleep_ms(300);
                uint64_t one = 1;
                _exit(write(efd, &one, sizeof(one)) == sizeof(one) ? 0 : 1);
        }
        struct shim_agent_wait w = {
                .addr = fa.addr, .timeout_ms = 20000, .exit_fd = efd, .console_path = con};
        struct cc_ttrpc_client *c = NULL;
        struct cc_error *e = NULL;
        int64_t t0 = mono_ms();
        int r = shim_agent_wait(&w, &c, &e);
        int64_t took = mono_ms() - t0;
        int st;
        waitpid(pid, &st, 0);
        assert_int_equal(r, -EIO);
        assert_non_null(strstr(cc_error_message(e), "the VM exited before its agent answered"));
        assert_non_null(strstr(cc_error_message(e), "something went wrong early"));
        cc_error_free(e);
        assert_true(took < 5000);
        close(efd);
        fake_stop(&fa);
}

static void test_console_fatal_lines(void **state)
{
        size_t n = 0;
        const char *t = "a\nb\n";
        assert_null(shim_console_fatal(t, strlen(t), &n));
        t = "x\r\n[ 1.0] Initramfs unpacking failed: junk within compressed archive\r\nnext";
        const char *l = shim_console_fatal(t, strlen(t), &n);
        assert_non_null(l);
        assert_int_equal(
                n, strlen("[ 1.0] Initramfs unpacking failed: junk within compressed archive"));
        assert_memory_equal(l, "[ 1.0] Initramfs", 16);
        t = "time=\"2026\" level=fatal msg=\"runtime: no cgroup2\"";
        l = shim_console_fatal(t, strlen(t), &n);
        assert_ptr_equal(l, t);
        assert_int_equal(n, strlen(t));
        /* level=error is not fatal; "panic" alone is not a kernel panic. */
        t = "level=error msg=x\npanic: something\n";
        assert_null(shim_console_fatal(t, strlen(t), &n));
        /* The earliest fatal line wins. */
        t = "Initramfs unpacking failed: x\nKernel panic - not syncing: y\n";
        l = shim_console_fatal(t, strlen(t), &n);
        assert_ptr_equal(l, t);
}

int main(void)
{
        cc_log_set_level(CC_LOG_WARN);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_console_fatal_lines),
                cmocka_unit_test(test_agent_answers_in_time),
                cmocka_unit_test(test_agent_appears_late),
                cmocka_unit_test(test_deadline_inside_attempt),
                cmocka_unit_test(test_console_panic_cuts_check),
                cmocka_unit_test(test_vmm_exit),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
