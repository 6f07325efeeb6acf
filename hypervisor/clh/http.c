/*
 * A minimal HTTP/1.1 client for Cloud Hypervisor's API on a unix socket: one request per
 * connection ("Connection: close"), Content-Length bodies. The response comes from a local
 * process, still parsed defensively: bounded size, strict status line, checked lengths.
 */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/error.h"

#include "hypervisor/clh/clh.h"

static const char *find(const char *buf, size_t len, const char *needle)
{
        size_t n = strlen(needle);
        for (size_t i = 0; i + n <= len; i++)
                if (memcmp(buf + i, needle, n) == 0)
                        return buf + i;
        return NULL;
}

int hv_clh_parse_response(const char *buf, size_t len, int *status, size_t *body_off,
                          size_t *body_len)
{
        const char *end = find(buf, len, "\r\n\r\n");
        if (!end)
                return len > 65536 ? -EBADMSG : -EAGAIN;
        size_t head = (size_t)(end - buf) + 4;
        /* "HTTP/1.x NNN reason" */
        if (head < 13 || memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') ||
            buf[8] != ' ' || !isdigit((unsigned char)buf[9]) || !isdigit((unsigned char)buf[10]) ||
            !isdigit((unsigned char)buf[11]))
                return -EBADMSG;
        int code = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
        if (code < 100 || (buf[12] != ' ' && buf[12] != '\r'))
                return -EBADMSG;
        /* Headers: only Content-Length matters. */
        long long clen = -1;
        const char *p = memchr(buf, '\n', head);
        while (p && (size_t)(p + 1 - buf) < head - 2) {
                const char *line = p + 1;
                const char *eol = memchr(line, '\n', head - (size_t)(line - buf));
                if (!eol)
                        return -EBADMSG;
                size_t llen = (size_t)(eol - line);
                if (llen > 15 && strncasecmp(line, "content-length:", 15) == 0) {
                        const char *v = line + 15;
                        while (v < eol && (*v == ' ' || *v == '\t'))
                                v++;
                        long long n = 0;
                        if (v >= eol || !isdigit((unsigned char)*v))
                                return -EBADMSG;
                        while (v < eol && isdigit((unsigned char)*v)) {
                                n = n * 10 + (*v - '0');
                                if (n > HV_CLH_MAX_RESPONSE)
                                        return -EBADMSG;
                                v++;
                        }
                        if (clen >= 0 && clen != n)
                                return -EBADMSG;
                        clen = n;
                }
                p = eol;
        }
        if (clen < 0) {
                /* 204/304 and 1xx have no body; otherwise the body runs to the close. */
                if (code == 204 || code == 304 || code < 200)
                        clen = 0;
                else
                        return -ENODATA;
        }
        if (len - head < (size_t)clen)
                return -EAGAIN;
        *status = code;
        *body_off = head;
        *body_len = (size_t)clen;
        return 0;
}

int hv_clh_request(const char *api_sock, const char *method, const char *endpoint, const char *body,
                   int timeout_ms, char **ret_body, struct cc_error **err)
{
        return hv_clh_request_fds(api_sock, method, endpoint, body, NULL, 0, timeout_ms, ret_body,
                                  err);
}

/* The most fds one request carries: one per queue pair of a NIC is CH's rule; we open one. */
#define CLH_MAX_FDS 16

int hv_clh_request_fds(const char *api_sock, const char *method, const char *endpoint,
                       const char *body, const int *fds, size_t n_fds, int timeout_ms,
                       char **ret_body, struct cc_error **err)
{
        if (n_fds > CLH_MAX_FDS)
                return cc_error_set(err, EINVAL, "clh %s %s: %zu fds, at most %d", method,
                                    endpoint, n_fds, CLH_MAX_FDS);
        int64_t deadline = hv__deadline(timeout_ms);
        _cleanup_close_ int fd = hv__unix_connect(api_sock, err);
        if (fd < 0)
                return fd;
        _cleanup_free_ char *req = NULL;
        size_t blen = body ? strlen(body) : 0;
        int n = asprintf(&req,
                         "%s /api/v1/%s HTTP/1.1\r\nHost: localhost\r\nAccept: "
                         "application/json\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                         method, endpoint, body ? "Content-Type: application/json\r\n" : "", blen,
                         body ? body : "");
        if (n < 0) {
                req = NULL;
                return cc_error_set(err, ENOMEM, "out of memory");
        }
        for (size_t off = 0; off < (size_t)n;) {
                struct iovec iov = {.iov_base = req + off, .iov_len = (size_t)n - off};
                struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
                union {
                        struct cmsghdr align;
                        char buf[CMSG_SPACE(sizeof(int) * CLH_MAX_FDS)];
                } ctl;
                if (off == 0 && n_fds) {
                        /* The fds ride on the first bytes; the kernel delivers them with the
                         * read that returns those bytes. */
                        memset(&ctl, 0, sizeof(ctl));
                        mh.msg_control = ctl.buf;
                        mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
                        cm->cmsg_level = SOL_SOCKET;
                        cm->cmsg_type = SCM_RIGHTS;
                        cm->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                        memcpy(CMSG_DATA(cm), fds, sizeof(int) * n_fds);
                }
                ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return cc_error_set(err, errno, "clh %s %s: write: %m", method, endpoint);
                }
                off += (size_t)w;
        }
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
                if (cap - len < 4096) {
                        if (cap >= HV_CLH_MAX_RESPONSE + 65536)
                                return cc_error_set(err, EMSGSIZE,
                                                    "clh %s %s: response too "
                                                    "large",
                                                    method, endpoint);
                        cap = cap ? cap * 2 : 8192;
                        char *b = realloc(buf, cap);
                        if (!b)
                                return cc_error_set(err, ENOMEM, "out of memory");
                        buf = b;
                }
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                int left = hv__remaining(deadline);
                if (left == 0)
                        return cc_error_set(err, ETIMEDOUT, "clh %s %s: no response in time",
                                            method, endpoint);
                int pr = poll(&pfd, 1, left);
                if (pr < 0 && errno != EINTR)
                        return cc_error_set(err, errno, "clh: poll: %m");
                if (pr <= 0)
                        continue;
                ssize_t got = read(fd, buf + len, cap - len - 1);
                if (got < 0) {
                        if (errno == EINTR)
                                continue;
                        return cc_error_set(err, errno, "clh %s %s: read: %m", method, endpoint);
                }
                len += (size_t)got;
                int status;
                size_t off, bl;
                int r = hv_clh_parse_response(buf, len, &status, &off, &bl);
                if (r == -ENODATA && got == 0) {
                        /* No Content-Length: the body is everything up to the close. */
                        const char *e = find(buf, len, "\r\n\r\n");
                        off = (size_t)(e - buf) + 4;
                        bl = len - off;
                        status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
                        r = 0;
                }
                if (r == 0) {
                        if (ret_body) {
                                memmove(buf, buf + off, bl);
                                buf[bl] = 0;
                                *ret_body = TAKE_PTR(buf);
                        }
                        return status;
                }
                if (r == -EBADMSG)
                        return cc_error_set(err, EBADMSG, "clh %s %s: malformed HTTP response",
                                            method, endpoint);
                if (got == 0)
                        return cc_error_set(err, ECONNRESET,
                                            "clh %s %s: connection closed mid-response", method,
                                            endpoint);
        }
}
