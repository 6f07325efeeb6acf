/*
 * Transports: AF_VSOCK (production), a unix socket (tests on the host) and a virtio-serial
 * port (QEMU without vhost-vsock).
 *
 * A virtio-serial port is not a connection: the guest's device node stays while host-side
 * clients come and go. While no host side is attached, read() returns 0 and poll() reports
 * POLLHUP without POLLOUT; when a client attaches, POLLOUT appears. So the port is served as a
 * sequence of connections: open it, wait until a host side is attached, hand the fd to the
 * ttrpc server, and when the server sees EOF (the host side went away, perhaps mid-frame)
 * it closes the fd and we reopen. Closing discards what the old client left unread, and the
 * server's framing state belongs to the closed connection, so a new client starts on a clean
 * frame boundary.
 */
#include <dirent.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/log.h"

#include "guest-agent/agent.h"

static struct {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool serial;
        bool conn_open;
        char *port;
} tp = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, NULL};

void agent_transport_conn_closed(void *userdata, int reason)
{
        pthread_mutex_lock(&tp.lock);
        if (tp.serial) {
                tp.conn_open = false;
                pthread_cond_broadcast(&tp.cond);
        }
        pthread_mutex_unlock(&tp.lock);
        cc_log_debug("connection closed reason=%d", reason);
}

static void closedirp(DIR **d)
{
        if (*d)
                closedir(*d);
}

/* /dev/virtio-ports/<name> is a udev symlink; an init without udev finds the port by name. */
static int find_port(const char *name, char *out, size_t n)
{
        if (name[0] == '/') {
                snprintf(out, n, "%s", name);
                return access(out, F_OK) == 0 ? 0 : -ENOENT;
        }
        _cleanup_(closedirp) DIR *d = opendir("/sys/class/virtio-ports");
        if (!d)
                return -ENOENT;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                char path[512], buf[128];
                snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", de->d_name);
                _cleanup_fclose_ FILE *f = fopen(path, "re");
                if (!f || !fgets(buf, sizeof(buf), f))
                        continue;
                buf[strcspn(buf, "\n")] = '\0';
                if (strcmp(buf, name) == 0) {
                        snprintf(out, n, "/dev/%s", de->d_name);
                        return 0;
                }
        }
        return -ENOENT;
}

/* Blocks until a host-side client is attached (POLLOUT), without spinning on POLLHUP. */
static void wait_host(int fd)
{
        int ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLOUT | EPOLLET};
        if (ep >= 0)
                (void)epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        for (;;) {
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                if (poll(&p, 1, 0) == 1 && (p.revents & POLLOUT))
                        break;
                if (ep >= 0) {
                        struct epoll_event out;
                        (void)epoll_wait(ep, &out, 1, 1000);
                } else {
                        nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
                }
        }
        cc_close(ep);
}

static void *serial_main(void *arg)
{
        struct agent *a = arg;
        bool logged = false;
        for (;;) {
                pthread_mutex_lock(&tp.lock);
                while (tp.conn_open)
                        pthread_cond_wait(&tp.cond, &tp.lock);
                pthread_mutex_unlock(&tp.lock);
                char path[300];
                int fd = -1;
                if (find_port(tp.port, path, sizeof(path)) == 0)
                        fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
                if (fd < 0) {
                        if (!logged)
                                cc_log_warn("waiting for virtio-serial port %s", tp.port);
                        logged = true;
                        nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
                        continue;
                }
                wait_host(fd);
                pthread_mutex_lock(&tp.lock);
                tp.conn_open = true;
                pthread_mutex_unlock(&tp.lock);
                int r = cc_ttrpc_server_add_conn(a->srv, fd);
                if (r < 0) {
                        cc_log_errno(CC_LOG_ERROR, -r, "serving %s failed", path);
                        pthread_mutex_lock(&tp.lock);
                        tp.conn_open = false;
                        pthread_mutex_unlock(&tp.lock);
                        nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
                } else {
                        cc_log_debug("serving %s", path);
                }
        }
        return NULL;
}

static int listen_vsock(const char *spec, struct cc_error **err)
{
        long cid = -1;
        unsigned long port = 1024;
        if (sscanf(spec, "%ld:%lu", &cid, &port) < 1 || port == 0 || port > 0xffffffffUL)
                return cc_error_set(err, EINVAL, "invalid vsock address '%s'", spec);
        int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return cc_error_set(err, errno, "vsock socket: %m");
        struct sockaddr_vm sa = {.svm_family = AF_VSOCK,
                                 .svm_cid = cid < 0 ? VMADDR_CID_ANY : (unsigned)cid,
                                 .svm_port = (unsigned)port};
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
                int e = errno;
                close(fd);
                return cc_error_set(err, e, "vsock bind/listen %s: %s", spec, strerror(e));
        }
        return fd;
}

int agent_transport_start(struct agent *a, struct cc_error **err)
{
        const char *addr = a->cfg.server_addr;
        int fd, r;
        if (strncmp(addr, "vsock://", 8) == 0) {
                if ((fd = listen_vsock(addr + 8, err)) < 0)
                        return fd;
        } else if (strncmp(addr, "unix://", 7) == 0 || strncmp(addr, "unix:", 5) == 0) {
                const char *path = addr + (addr[5] == '/' && addr[6] == '/' ? 7 : 5);
                if ((fd = cc_unix_listen(path, 16)) < 0)
                        return cc_error_set(err, -fd, "listen on %s: %s", path, strerror(-fd));
        } else if (strncmp(addr, "serial://", 9) == 0) {
                tp.serial = true;
                tp.port = strdup(addr[9] ? addr + 9 : AGENT_SERIAL_PORT_NAME);
                if (!tp.port)
                        return -ENOMEM;
                pthread_t t;
                pthread_attr_t attr;
                pthread_attr_init(&attr);
                pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
                pthread_attr_setstacksize(&attr, 64 * 1024);
                r = -pthread_create(&t, &attr, serial_main, a);
                pthread_attr_destroy(&attr);
                return r < 0 ? cc_error_set(err, -r, "serial thread: %s", strerror(-r)) : 0;
        } else {
                return cc_error_set(err, EINVAL, "unknown server address '%s'", addr);
        }
        if ((r = cc_ttrpc_server_listen(a->srv, fd)) < 0)
                return cc_error_set(err, -r, "serve %s: %s", addr, strerror(-r));
        return 0;
}
