/* hv_agent_dial(): connect to the agent over a unix socket, AF_VSOCK or hybrid vsock. */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/error.h"

#include "hypervisor/hv-internal.h"

/* Splits "<path>:<port>" at the last ':'; path is a copy the caller frees. */
static int split_port(const char *s, char **path, unsigned *port)
{
        const char *colon = strrchr(s, ':');
        if (!colon || colon == s || !colon[1])
                return -EINVAL;
        char *end = NULL;
        unsigned long p = strtoul(colon + 1, &end, 10);
        if (*end || p > 0xffffffffUL)
                return -EINVAL;
        *path = strndup(s, (size_t)(colon - s));
        if (!*path)
                return -ENOMEM;
        *port = (unsigned)p;
        return 0;
}

/*
 * CH's hybrid vsock: after "CONNECT <port>\n" the muxer answers "OK <host port>\n" once the
 * guest accepted, and the stream is raw from then on (reference 2.4). Read byte by byte so
 * that nothing after the newline is consumed.
 */
static int hvsock_handshake(int fd, unsigned port, int timeout_ms, struct cc_error **err)
{
        char line[64];
        int n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
        if (send(fd, line, (size_t)n, MSG_NOSIGNAL) != n)
                return cc_error_set(err, errno ? errno : EIO, "hvsock: send CONNECT: %m");
        int64_t deadline = hv__deadline(timeout_ms);
        size_t len = 0;
        for (;;) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                int left = hv__remaining(deadline);
                if (left == 0)
                        return cc_error_set(err, ETIMEDOUT, "hvsock: no answer to CONNECT %u",
                                            port);
                int r = poll(&pfd, 1, left);
                if (r < 0 && errno != EINTR)
                        return cc_error_set(err, errno, "hvsock: poll: %m");
                if (r <= 0)
                        continue;
                char c;
                ssize_t got = read(fd, &c, 1);
                if (got <= 0)
                        return cc_error_set(err, ECONNREFUSED,
                                            "hvsock: connection closed before OK (port %u)", port);
                if (c == '\n')
                        break;
                if (len >= sizeof(line) - 1)
                        return cc_error_set(err, EPROTO, "hvsock: answer line too long");
                line[len++] = c;
        }
        line[len] = 0;
        if (strncmp(line, "OK ", 3) != 0)
                return cc_error_set(err, ECONNREFUSED, "hvsock: CONNECT %u refused: '%.40s'", port,
                                    line);
        return 0;
}

int hv_agent_dial(const char *address, int timeout_ms, struct cc_error **err)
{
        if (!address)
                return cc_error_set(err, EINVAL, "no agent address");
        if (strncmp(address, "unix:", 5) == 0)
                return hv__unix_connect(address + 5, err);
        if (strncmp(address, "hvsock:", 7) == 0) {
                _cleanup_free_ char *path = NULL;
                unsigned port;
                if (split_port(address + 7, &path, &port) < 0)
                        return cc_error_set(err, EINVAL, "bad agent address '%s'", address);
                _cleanup_close_ int fd = hv__unix_connect(path, err);
                if (fd < 0)
                        return fd;
                int r = hvsock_handshake(fd, port, timeout_ms, err);
                if (r < 0)
                        return r;
                return TAKE_FD(fd);
        }
        if (strncmp(address, "vsock:", 6) == 0) {
                unsigned cid, port;
                char tail;
                if (sscanf(address + 6, "%u:%u%c", &cid, &port, &tail) != 2)
                        return cc_error_set(err, EINVAL, "bad agent address '%s'", address);
                _cleanup_close_ int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return cc_error_set(err, errno, "socket(AF_VSOCK): %m");
                /* The kernel's own connect timeout is 2 s; the caller's deadline may be closer. */
                if (timeout_ms > 0) {
                        struct timeval tv = {.tv_sec = timeout_ms / 1000,
                                             .tv_usec = (timeout_ms % 1000) * 1000};
                        (void)setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv,
                                         sizeof(tv));
                }
                struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
                if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                        return cc_error_set(err, errno, "connect vsock %u:%u: %m", cid, port);
                return TAKE_FD(fd);
        }
        return cc_error_set(err, EINVAL, "unknown agent address scheme in '%s'", address);
}
