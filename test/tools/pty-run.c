/*
 * pty-run [--rows R --cols C] -- CMD [ARG...]: runs CMD with a new pseudo-terminal as its
 * controlling terminal and stdin, stdout and stderr, copies everything CMD writes there to
 * our stdout, and exits with CMD's status (128+N when a signal N ended it).
 *
 * shim-ctr.sh drives `ctr run -t` with it: ctr needs a console. script(1) did this before,
 * but its result depends on the caller's environment: it runs the command through $SHELL
 * (a CI runner may set SHELL to a program that is no shell, and script then prints nothing)
 * and it relays its own stdin (an unreadable fd 0 ends it at once, printing nothing). This
 * runner execs CMD directly and never reads its own stdin, so CMD's terminal stays open, with
 * no input, until CMD exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/fileio.h"

static int usage(void)
{
        fprintf(stderr, "usage: pty-run [--rows R --cols C] -- CMD [ARG...]\n");
        return 2;
}

/* Copies what is readable on the master to stdout. Returns 0 on data copied, 1 when there is
 * nothing more (EIO: no slave open any more; EAGAIN: nothing buffered), -errno on failure. */
static int copy_out(int master)
{
        char buf[4096];
        ssize_t n = read(master, buf, sizeof buf);
        if (n > 0)
                return cc_write_all(STDOUT_FILENO, buf, (size_t)n) < 0 ? -EPIPE : 0;
        if (n == 0 || errno == EIO || errno == EAGAIN)
                return 1;
        return errno == EINTR ? 0 : -errno;
}

int main(int argc, char **argv)
{
        struct winsize ws = {.ws_row = 24, .ws_col = 80};
        int i = 1;
        for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
                if (i + 1 >= argc)
                        return usage();
                if (strcmp(argv[i], "--rows") == 0)
                        ws.ws_row = (unsigned short)atoi(argv[++i]);
                else if (strcmp(argv[i], "--cols") == 0)
                        ws.ws_col = (unsigned short)atoi(argv[++i]);
                else
                        return usage();
        }
        if (i + 1 >= argc)
                return usage();
        char **cmd = argv + i + 1;

        _cleanup_close_ int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) {
                fprintf(stderr, "pty-run: cannot open a pseudo-terminal: %m\n");
                return 125;
        }
        char name[64];
        if (ptsname_r(master, name, sizeof name) != 0) {
                fprintf(stderr, "pty-run: ptsname: %m\n");
                return 125;
        }
        /* Held until CMD has exited, so reading the master never sees EIO early. */
        _cleanup_close_ int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (slave < 0 || ioctl(slave, TIOCSWINSZ, &ws) < 0) {
                fprintf(stderr, "pty-run: %s: %m\n", name);
                return 125;
        }

        pid_t pid = fork();
        if (pid < 0) {
                fprintf(stderr, "pty-run: fork: %m\n");
                return 125;
        }
        if (pid == 0) {
                if (setsid() < 0 || ioctl(slave, TIOCSCTTY, 0) < 0 || dup2(slave, 0) < 0 ||
                    dup2(slave, 1) < 0 || dup2(slave, 2) < 0) {
                        fprintf(stderr, "pty-run: terminal set-up: %m\n");
                        _exit(125);
                }
                execvp(cmd[0], cmd);
                fprintf(stderr, "pty-run: %s: %m\n", cmd[0]);
                _exit(127);
        }

        int status = 0;
        for (;;) {
                struct pollfd p = {.fd = master, .events = POLLIN};
                if (poll(&p, 1, 100) > 0 && copy_out(master) < 0) {
                        /* Our stdout is gone: nobody reads CMD's output any more. */
                        fprintf(stderr, "pty-run: writing the output: %m\n");
                        kill(pid, SIGTERM);
                        (void)waitpid(pid, &status, 0);
                        return 125;
                }
                pid_t w = waitpid(pid, &status, WNOHANG);
                if (w == pid)
                        break;
                if (w < 0 && errno != EINTR) {
                        fprintf(stderr, "pty-run: waitpid: %m\n");
                        return 125;
                }
        }
        /* CMD is gone: drain what it left in the terminal. Processes it left behind may still
         * hold the slave; non-blocking reads stop at the end of what is buffered. */
        slave = cc_close(slave);
        if (fcntl(master, F_SETFL, O_NONBLOCK) == 0)
                while (copy_out(master) == 0)
                        ;
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 125;
}
