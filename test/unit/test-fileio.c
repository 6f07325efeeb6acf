/* Unit tests: full reads and writes (cc_read_full, cc_write_all) on pipes and sockets; whole
 * bounded file reads (cc_read_file) of what is not a regular file. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* clang-format off */
#include <cmocka.h>
/* clang-format on */

#include "cc/error.h"
#include "cc/fileio.h"

/* More than a pipe's default 64 KiB buffer: the writer (a child process) blocks and its
 * writes resume as the reader drains the pipe. */
#define BIG (256 * 1024)

static void test_roundtrip_big(void **state)
{
        int p[2];
        assert_int_equal(pipe(p), 0);
        char *out = malloc(BIG), *in = malloc(BIG);
        assert_non_null(out);
        assert_non_null(in);
        for (size_t i = 0; i < BIG; i++)
                out[i] = (char)(i * 7);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(p[0]);
                _exit(cc_write_all(p[1], out, BIG) == 0 ? 0 : 1);
        }
        close(p[1]);
        assert_int_equal(cc_read_full(p[0], in, BIG), 0);
        assert_memory_equal(in, out, BIG);
        /* The writer is done: an end of file before the bytes asked for is -EPIPE. */
        char one;
        assert_int_equal(cc_read_full(p[0], &one, 1), -EPIPE);
        close(p[0]);
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        free(in);
        free(out);
}

static void test_socket_peer_gone(void **state)
{
        /* A socket whose peer is gone gives -EPIPE, not SIGPIPE (default action restored to
         * be sure the test would die if it came). */
        signal(SIGPIPE, SIG_DFL);
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        close(sv[1]);
        assert_int_equal(cc_write_all(sv[0], "x", 1), -EPIPE);
        close(sv[0]);
        assert_int_equal(cc_write_all(-1, "x", 1), -EBADF);
        char c;
        assert_int_equal(cc_read_full(-1, &c, 1), -EBADF);
        /* Zero bytes is nothing to do. */
        assert_int_equal(cc_write_all(-1, "", 0), 0);
        assert_int_equal(cc_read_full(-1, &c, 0), 0);
}

/* A FIFO nobody writes to is refused at once (it is opened O_NONBLOCK, never read: without it
 * open() would wait for a writer forever); a directory too; a regular file is read. */
static void test_read_file_kinds(void **state)
{
        char dir[] = "/tmp/test-fileio.XXXXXX";
        assert_non_null(mkdtemp(dir));
        char fifo[64], file[64];
        snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
        snprintf(file, sizeof(file), "%s/file", dir);
        assert_int_equal(mkfifo(fifo, 0600), 0);
        struct cc_error *err = NULL;
        char *buf = NULL;
        size_t len = 0;
        assert_int_equal(cc_read_file(fifo, 4096, &buf, &len, &err), -EINVAL);
        char want[128];
        snprintf(want, sizeof(want), "%s: not a regular file", fifo);
        assert_string_equal(cc_error_message(err), want);
        cc_error_free(err);
        err = NULL;
        assert_int_equal(cc_read_file(dir, 4096, &buf, &len, &err), -EINVAL);
        cc_error_free(err);
        err = NULL;
        FILE *f = fopen(file, "we");
        assert_non_null(f);
        fputs("12345", f);
        fclose(f);
        assert_int_equal(cc_read_file(file, 4, &buf, &len, &err), -EFBIG);
        cc_error_free(err);
        err = NULL;
        assert_int_equal(cc_read_file(file, 5, &buf, &len, &err), 0);
        assert_int_equal(len, 5);
        assert_string_equal(buf, "12345");
        free(buf);
        unlink(fifo);
        unlink(file);
        rmdir(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_read_file_kinds),
                cmocka_unit_test(test_roundtrip_big),
                cmocka_unit_test(test_socket_peer_gone),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
