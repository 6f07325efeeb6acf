/*
 * Unit tests: the agent's debug console (guest-agent/debug-console.c) on the host. The window
 * size sequence taken out of the host's stream (whole, split, and what only looks like it), a
 * session relayed over a socket pair to a real /bin/sh on a pty (stty size follows a resize,
 * exit ends it with the end line), and the per-connection sessions of the vsock listener, on
 * a unix listener (the same accept loop).
 */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest-agent/agent.h"

#define WS(r, c) AGENT_DEBUG_CONSOLE_WINSIZE #r ";" #c "\033\\"

/* Feeds `in` in pieces of `step` bytes; returns what reached the shell (static buffer). */
static const char *filter_all(const char *in, size_t step, struct winsize *ws, int *resizes)
{
        static char out[512];
        struct agent_console_filter f = {0};
        size_t n = strlen(in), o = 0;
        *resizes = 0;
        for (size_t i = 0; i < n; i += step) {
                bool resized = false;
                size_t k = n - i < step ? n - i : step;
                o += agent_console_filter(&f, in + i, k, out + o, ws, &resized);
                *resizes += resized;
        }
        o += agent_console_filter_flush(&f, out + o);
        out[o] = 0;
        return out;
}

static void test_filter(void **state)
{
        (void)state;
        struct winsize ws = {0};
        int n;
        assert_string_equal(filter_all("ls -l\r", 64, &ws, &n), "ls -l\r");
        assert_int_equal(n, 0);
        /* Whole, between typed bytes, and one byte at a time: the same. */
        for (size_t step = 1; step <= 64; step += 63) {
                assert_string_equal(filter_all("a" WS(31, 97) "b", step, &ws, &n), "ab");
                assert_int_equal(n, 1);
                assert_int_equal(ws.ws_row, 31);
                assert_int_equal(ws.ws_col, 97);
        }
        /* Two in a row: the last one counts. */
        assert_string_equal(filter_all(WS(1, 2) WS(65535, 40), 5, &ws, &n), "");
        assert_int_equal(n, 2);
        assert_int_equal(ws.ws_row, 65535);
        assert_int_equal(ws.ws_col, 40);
}

static void test_filter_not_ours(void **state)
{
        (void)state;
        struct winsize ws = {0};
        int n;
        /* Keys (arrows, a lone ESC, ESC ESC) and strings that only begin like the sequence go
         * to the shell as they came, whatever the pieces. */
        static const char *const keep[] = {
                "\033[A\033OB",
                "\033",
                "\033\033_x",
                "\033_cc-winsizf=1;1\033\\",
                AGENT_DEBUG_CONSOLE_WINSIZE "0;80\033\\",
                AGENT_DEBUG_CONSOLE_WINSIZE "24;0\033\\",
                AGENT_DEBUG_CONSOLE_WINSIZE "123456;80\033\\",
                AGENT_DEBUG_CONSOLE_WINSIZE "70000;80\033\\",
                AGENT_DEBUG_CONSOLE_WINSIZE ";80\033\\",
                AGENT_DEBUG_CONSOLE_WINSIZE "24;80\033x",
                AGENT_DEBUG_CONSOLE_WINSIZE "24x80\033\\",
                AGENT_DEBUG_CONSOLE_WINSIZE "24;80",
        };
        for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
                for (size_t step = 1; step <= 7; step += 3) {
                        assert_string_equal(filter_all(keep[i], step, &ws, &n), keep[i]);
                        assert_int_equal(n, 0);
                }
        /* A false start right before a real one: the real one still counts. */
        assert_string_equal(filter_all("\033_c" WS(7, 9) "z", 1, &ws, &n), "\033_cz");
        assert_int_equal(n, 1);
        assert_int_equal(ws.ws_row, 7);
}

/* Reads fd until `needle` shows (20 s at most); returns what came, or fails. */
static char *read_until(int fd, const char *needle)
{
        static char buf[65536];
        size_t n = 0;
        for (int waited = 0; waited < 20000;) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                if (poll(&p, 1, 100) <= 0) {
                        waited += 100;
                        continue;
                }
                ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);
                if (k <= 0)
                        break;
                n += (size_t)k;
                buf[n] = 0;
                if (strstr(buf, needle))
                        return buf;
                if (n > sizeof(buf) / 2) {
                        memmove(buf, buf + n / 2, n - n / 2);
                        n -= n / 2;
                }
        }
        buf[n] = 0;
        fail_msg("'%s' never came; got '%s'", needle, buf);
        return NULL;
}

static void send_str(int fd, const char *s)
{
        assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* The number after "key" in out (where a digit follows: the typed line has "$$" there). */
static pid_t number_after(const char *out, const char *key)
{
        size_t k = strlen(key);
        const char *p = strstr(out, key);
        while (p && (p[k] < '0' || p[k] > '9'))
                p = strstr(p + k, key);
        assert_non_null(p);
        return (pid_t)atoi(p + k);
}

/* Whether pid is gone or a zombie. */
static bool gone(pid_t pid)
{
        char path[64], s[512] = "";
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        if (!f)
                return true;
        (void)!fgets(s, sizeof(s), f);
        fclose(f);
        const char *rp = strrchr(s, ')');
        return !rp || rp[2] == 'Z';
}

static void *session_thread(void *arg)
{
        int fd = *(int *)arg;
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        agent_debug_console_session(fd, false);
        return NULL;
}

static void test_session(void **state)
{
        (void)state;
        int sp[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, session_thread, &sp[1]), 0);
        /* The size first, as cc-runtime exec sends it, then a resize while the shell runs. */
        send_str(sp[0], WS(31, 97) "stty size; echo pid=$$ end-$((1+1))\n");
        const char *out = read_until(sp[0], "end-2");
        if (!strstr(out, " 31 97\r\n") && !strstr(out, "\n31 97\r\n"))
                fail_msg("no size 31 97 in '%s'", out);
        pid_t pid = number_after(out, "pid=");
        send_str(sp[0], WS(45, 132));
        send_str(sp[0], "stty size\n");
        read_until(sp[0], "45 132");
        /* A background job of the session does not outlive it. */
        send_str(sp[0], "sleep 4242 & echo job=$! end-$((1+2))\n");
        pid_t job = number_after(read_until(sp[0], "end-3"), "job=");
        send_str(sp[0], "exit\n");
        read_until(sp[0], AGENT_DEBUG_CONSOLE_END);
        assert_int_equal(pthread_join(t, NULL), 0);
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        /* Killed by the session's end; its new parent reaps it. */
        for (int i = 0; i < 400 && !gone(job); i++)
                usleep(50 * 1000);
        assert_true(gone(job));
        close(sp[0]);
        close(sp[1]);
}

static void test_serve(void **state)
{
        (void)state;
        char dir[] = "/tmp/cc-dbgcon-XXXXXX";
        assert_non_null(mkdtemp(dir));
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", dir);
        int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(lfd >= 0);
        assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(lfd, 4), 0);
        assert_int_equal(agent_debug_console_serve(lfd), 0);
        /* Two sessions side by side: a shell each (Kata's contract for the vsock port). */
        int c[2];
        pid_t pid[2];
        for (int i = 0; i < 2; i++) {
                c[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                assert_int_equal(connect(c[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
                send_str(c[i], "echo pid=$$ end-$((1+1))\n");
                pid[i] = number_after(read_until(c[i], "end-2"), "pid=");
        }
        assert_true(pid[0] != pid[1]);
        /* The host leaving ends its session: its shell is killed, the other one answers. */
        close(c[0]);
        int st;
        assert_int_equal(waitpid(pid[0], &st, 0), pid[0]);
        assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        send_str(c[1], "echo again-$((40+2))\n");
        read_until(c[1], "again-42");
        send_str(c[1], "exit 0\n");
        read_until(c[1], AGENT_DEBUG_CONSOLE_END);
        /* After the end line the agent closes the connection. */
        char b;
        struct pollfd p = {.fd = c[1], .events = POLLIN};
        while (poll(&p, 1, 20000) == 1 && read(c[1], &b, 1) == 1)
                ;
        assert_int_equal(waitpid(pid[1], &st, 0), pid[1]);
        close(c[1]);
        unlink(sa.sun_path);
        rmdir(dir);
}

int main(void)
{
        signal(SIGPIPE, SIG_IGN);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_filter),
                cmocka_unit_test(test_filter_not_ours),
                cmocka_unit_test(test_session),
                cmocka_unit_test(test_serve),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
