/*
 * Transports: AF_VSOCK (production), a unix socket (tests on the host) and a virtio-serial
 * port (QEMU without vhost-vsock).
 *
 * A virtio-serial port is not a connection: the guest's device node stays while host-side
 * clients come and go, and nothing in the byte stream marks where one client ends and the
 * next begins. While no host side is attached, poll() reports POLLHUP without POLLOUT and
 * read() returns 0; but a disconnect quickly followed by a reconnect can be folded into one
 * wakeup, and the guest then just sees the next client's bytes. So the agent does not hand the
 * port to the ttrpc server directly. A relay thread sits between the port and a socketpair
 * whose other end is one ttrpc server connection (a "session"), and it follows the ttrpc
 * framing in both directions:
 *  - a new session starts when the host side goes away (POLLHUP or EOF), and also when a
 *    request with stream id 1 arrives after other frames: a ttrpc client always starts at 1
 *    and never reuses an id, so that is a new client even if the guest never saw the gap;
 *  - responses are forwarded as whole frames only, and a frame whose client went away before
 *    it could be written is dropped rather than delivered to the next client.
 * Closing the old socketpair end makes the server drop that connection's state (partial
 * frames, stream ids, pending responses), so every client starts on a clean frame boundary.
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
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/log.h"
#include "cc/macro.h"

#include "guest-agent/agent.h"
#include "guest-agent/init/relay-internal.h"

static struct {
        char *port;
} tp;

void agent_transport_conn_closed(void *userdata, int reason)
{
        cc_log_debug("connection closed reason=%d", reason);
}

/* /dev/virtio-ports/<name> is a udev symlink; an init without udev finds the port by name. */
int agent_find_serial_port(const char *name, char *out, size_t n)
{
        if (name[0] == '/') {
                snprintf(out, n, "%s", name);
                return access(out, F_OK) == 0 ? 0 : -ENOENT;
        }
        _cleanup_closedir_ DIR *d = opendir("/sys/class/virtio-ports");
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

/* Blocks until a host-side client is attached (POLLOUT), without spinning on POLLHUP: an
 * edge-triggered epoll wakes only when the port's state changes. */
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

/* Ends the session (the server drops that connection's state) but not the framing of the host
 * stream: the position inside the current frame is kept, so the rest of a frame whose session
 * ended is skipped rather than read as headers. */
void agent__relay_session_end(struct agent_relay *r, const char *why)
{
        if (r->local >= 0)
                cc_log_debug("serial: session ends (%s)", why);
        r->local = cc_close(r->local);
        r->in.frames = 0;
        if (r->in.hdr_have || r->in.body_left)
                r->in.drop = true;
        r->out_len = r->out_sent = 0;
        r->out_ready = false;
}

void agent__relay_drop_frame(struct agent_relay *r, const char *why)
{
        agent__relay_session_end(r, why);
        r->in = (struct agent_framer){0};
}

int agent__relay_session_start(struct agent_relay *r)
{
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
                return -errno;
        int k = r->add_conn(r->ctx, sp[1]);
        if (k < 0) {
                close(sp[0]);
                return k;
        }
        r->local = sp[0];
        return 0;
}

static int add_conn(void *ctx, int fd)
{
        struct agent *a = ctx;
        return cc_ttrpc_server_add_conn(a->srv, fd);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
        while (n > 0) {
                ssize_t w = write(fd, p, n);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && errno == EAGAIN) {
                        struct pollfd pf = {.fd = fd, .events = POLLOUT};
                        (void)poll(&pf, 1, 1000);
                        continue;
                }
                if (w < 0)
                        return -errno;
                p += w;
                n -= (size_t)w;
        }
        return 0;
}

/* Writes to the session; a session that broke ends, and the rest of its frame is skipped. */
static void session_write(struct agent_relay *r, const uint8_t *p, size_t n)
{
        if (r->local < 0 || r->in.drop)
                return;
        if (write_all(r->local, p, n) < 0)
                agent__relay_session_end(r, "server closed");
}

/* A client's first request: stream id 1, a request, no flags, a length the server takes. */
static bool looks_like_first_request(const uint8_t *p, size_t n)
{
        if (n < CC_TTRPC_HEADER_SIZE)
                return false;
        struct cc_ttrpc_header h;
        cc_ttrpc_header_decode(p, &h);
        return h.stream_id == 1 && h.type == CC_TTRPC_REQUEST && h.flags == 0 &&
               h.length <= CC_TTRPC_MAX_DATA;
}

int agent__relay_in(struct agent_relay *r, const uint8_t *p, size_t n)
{
        struct agent_framer *f = &r->in;
        /* A client that left in the middle of a frame, with no hangup the guest saw: the bytes
         * after the stall are the next client's, not the rest of that frame. */
        if (f->stalled && (f->hdr_have || f->body_left) && looks_like_first_request(p, n))
                agent__relay_drop_frame(r, "new client after a stalled frame");
        f->stalled = false;
        while (n > 0) {
                if (f->body_left == 0 && f->hdr_have < CC_TTRPC_HEADER_SIZE) {
                        size_t k = CC_MIN(n, CC_TTRPC_HEADER_SIZE - f->hdr_have);
                        memcpy(f->hdr + f->hdr_have, p, k);
                        f->hdr_have += k;
                        p += k;
                        n -= k;
                        if (f->hdr_have < CC_TTRPC_HEADER_SIZE)
                                break;
                        struct cc_ttrpc_header h;
                        cc_ttrpc_header_decode(f->hdr, &h);
                        if (h.stream_id == 1 && h.type == CC_TTRPC_REQUEST && f->frames > 0)
                                agent__relay_session_end(r, "new client");
                        f->drop = false;
                        if (r->local < 0) {
                                int k2 = agent__relay_session_start(r);
                                if (k2 < 0) {
                                        r->in = (struct agent_framer){0};
                                        return k2;
                                }
                        }
                        f->frames++;
                        f->body_left = h.length;
                        /* The header goes to the server, which answers an oversized one with
                         * ResourceExhausted on its stream id and closes the session; its body
                         * is skipped here, not parsed as further frames. */
                        session_write(r, f->hdr, sizeof(f->hdr));
                        if (h.length > CC_TTRPC_MAX_DATA) {
                                cc_log_warn("serial: skipping a frame of %u bytes (maximum %u)",
                                            h.length, CC_TTRPC_MAX_DATA);
                                f->drop = true;
                        }
                        if (f->body_left == 0)
                                f->hdr_have = 0;
                        continue;
                }
                size_t k = CC_MIN(n, f->body_left);
                session_write(r, p, k);
                f->body_left -= k;
                p += k;
                n -= k;
                if (f->body_left == 0) {
                        f->hdr_have = 0;
                        f->drop = false;
                }
        }
        return 0;
}

/* Agent -> host: collects one whole frame from the session into r->out. */
static int relay_collect(struct agent_relay *r)
{
        uint8_t buf[65536];
        ssize_t n = read(r->local, buf, sizeof(buf));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                return -EPIPE;
        if (n < 0)
                return 0;
        size_t need = r->out_len + (size_t)n;
        if (need > r->out_cap) {
                size_t cap = CC_MAX(need, r->out_cap * 2);
                uint8_t *nb = realloc(r->out, cap);
                if (!nb)
                        return -ENOMEM;
                r->out = nb;
                r->out_cap = cap;
        }
        memcpy(r->out + r->out_len, buf, (size_t)n);
        r->out_len += (size_t)n;
        if (r->out_len >= CC_TTRPC_HEADER_SIZE) {
                struct cc_ttrpc_header h;
                cc_ttrpc_header_decode(r->out, &h);
                if (r->out_len >= CC_TTRPC_HEADER_SIZE + (size_t)h.length)
                        r->out_ready = true;
        }
        return 0;
}

/* Writes as much of the ready frame as the port takes; returns true when it is all sent. */
static bool relay_flush(struct agent_relay *r)
{
        struct cc_ttrpc_header h;
        cc_ttrpc_header_decode(r->out, &h);
        size_t frame = CC_TTRPC_HEADER_SIZE + (size_t)h.length;
        while (r->out_sent < frame) {
                ssize_t w = write(r->port, r->out + r->out_sent, frame - r->out_sent);
                if (w < 0)
                        return false;
                r->out_sent += (size_t)w;
        }
        memmove(r->out, r->out + frame, r->out_len - frame);
        r->out_len -= frame;
        r->out_sent = 0;
        r->out_ready = false;
        if (r->out_len >= CC_TTRPC_HEADER_SIZE) {
                cc_ttrpc_header_decode(r->out, &h);
                r->out_ready = r->out_len >= CC_TTRPC_HEADER_SIZE + (size_t)h.length;
        }
        return true;
}

static int64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *serial_main(void *arg)
{
        struct agent_relay r = {.add_conn = add_conn, .ctx = arg, .port = -1, .local = -1};
        bool logged = false;
        int64_t last_in_ns = now_ns();
        char path[300];
        for (;;) {
                if (r.port < 0) {
                        if (agent_find_serial_port(tp.port, path, sizeof(path)) == 0)
                                r.port = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
                        if (r.port < 0) {
                                if (!logged)
                                        cc_log_warn("waiting for virtio-serial port %s", tp.port);
                                logged = true;
                                nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
                                continue;
                        }
                        /* A tty standing in for the port (tests on a host use a pty) must
                         * pass bytes through untouched. */
                        struct termios tio;
                        if (isatty(r.port) && tcgetattr(r.port, &tio) == 0) {
                                cfmakeraw(&tio);
                                (void)tcsetattr(r.port, TCSANOW, &tio);
                        }
                        cc_log_debug("serving %s", path);
                }
                if (r.local < 0) {
                        wait_host(r.port);
                        int k = agent__relay_session_start(&r);
                        if (k < 0) {
                                cc_log_errno(CC_LOG_ERROR, -k, "serial session");
                                nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
                                continue;
                        }
                }
                struct pollfd p[2] = {
                        {.fd = r.port, .events = POLLIN | (r.out_ready ? POLLOUT : 0)},
                        /* Not polled while a frame waits to be written (a hangup would spin). */
                        {.fd = r.out_ready ? -1 : r.local, .events = POLLIN},
                };
                /* In the middle of a frame, wake up to notice a stall (see relay-internal.h). */
                bool mid_frame = r.in.hdr_have || r.in.body_left;
                if (poll(p, 2, mid_frame ? AGENT_RELAY_STALL_MS : -1) < 0)
                        continue;
                int64_t idle_ms = (now_ns() - last_in_ns) / 1000000;
                if (mid_frame && !(p[0].revents & POLLIN) && idle_ms >= AGENT_RELAY_STALL_MS) {
                        r.in.stalled = true;
                        if (idle_ms >= AGENT_RELAY_FRAME_IDLE_MS)
                                agent__relay_drop_frame(&r, "frame stalled");
                }
                bool gone = false;
                if (p[0].revents & POLLIN) {
                        uint8_t buf[65536];
                        ssize_t n = read(r.port, buf, sizeof(buf));
                        gone = n == 0;
                        if (n > 0)
                                last_in_ns = now_ns();
                        if (n > 0 && agent__relay_in(&r, buf, (size_t)n) < 0) {
                                agent__relay_drop_frame(&r, "no session");
                                continue;
                        }
                } else if (p[0].revents & (POLLHUP | POLLERR)) {
                        gone = true;
                }
                if (gone) {
                        /* The host side went away. Its notice travels on the control queue and
                         * can arrive after the next client's first bytes, so it cannot end the
                         * session by itself (the stream-id rule in relay_in() does that). A
                         * frame cut short can never be completed, though: drop it. */
                        if (r.in.hdr_have || r.in.body_left)
                                agent__relay_drop_frame(&r, "host left mid-frame");
                        wait_host(r.port);
                        continue;
                }
                if (r.out_ready && (p[0].revents & POLLOUT))
                        (void)relay_flush(&r);
                /* A frame collected waits until it is written: reading on (to the hangup of
                 * a server that answered and closed) would discard it. */
                if (!r.out_ready && (p[1].revents & (POLLIN | POLLHUP))) {
                        if (relay_collect(&r) < 0)
                                agent__relay_session_end(&r, "server closed the connection");
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
                tp.port = strdup(addr[9] ? addr + 9 : AGENT_SERIAL_PORT_NAME);
                if (!tp.port)
                        return -ENOMEM;
                pthread_t t;
                pthread_attr_t attr;
                pthread_attr_init(&attr);
                pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
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
