/*
 * Optional log port: agent logs go to the console and, when agent.log_port=NAME names a
 * virtio-serial port (Kata uses a separate channel for agent logs too), also to that port, so
 * the host can collect them without scraping the serial console. A pipe carries the log lines
 * to a small thread that writes them to both. Lines written while no host side is attached
 * to the port are dropped there (never blocking the agent); the console always gets them.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/log.h"

#include "guest-agent/agent.h"

struct logport {
        int in, console, port;
        char name[128];
};

static int open_port(const char *name)
{
        char path[300];
        if (name[0] == '/')
                snprintf(path, sizeof(path), "%s", name);
        else if (agent_find_serial_port(name, path, sizeof(path)) < 0)
                return -1;
        return open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
}

static void *logport_main(void *arg)
{
        struct logport *lp = arg;
        char buf[4096];
        for (;;) {
                ssize_t n = read(lp->in, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return NULL;
                (void)!write(lp->console, buf, (size_t)n);
                if (lp->port < 0)
                        lp->port = open_port(lp->name); /* modules may load after start */
                if (lp->port >= 0)
                        (void)!write(lp->port, buf, (size_t)n);
        }
}

int agent_logport_start(const char *name)
{
        static struct logport lp;
        int p[2];
        if (cc_isempty(name) || strlen(name) >= sizeof(lp.name))
                return -EINVAL;
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        lp.in = p[0];
        lp.console = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
        lp.port = -1;
        snprintf(lp.name, sizeof(lp.name), "%s", name);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 64 * 1024);
        int r = -pthread_create(&t, &attr, logport_main, &lp);
        pthread_attr_destroy(&attr);
        if (r < 0) {
                close(p[0]);
                close(p[1]);
                return r;
        }
        cc_log_set_fd(p[1]);
        return 0;
}
