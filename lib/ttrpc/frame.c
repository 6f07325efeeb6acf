/* ttrpc framing: the 10-byte header, a buffered frame reader, whole writes. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cc/ttrpc.h"
#include "ttrpc-internal.h"

#define READ_CHUNK (64u * 1024u)

void cc_ttrpc_header_encode(const struct cc_ttrpc_header *h, uint8_t out[CC_TTRPC_HEADER_SIZE])
{
        out[0] = (uint8_t)(h->length >> 24);
        out[1] = (uint8_t)(h->length >> 16);
        out[2] = (uint8_t)(h->length >> 8);
        out[3] = (uint8_t)h->length;
        out[4] = (uint8_t)(h->stream_id >> 24);
        out[5] = (uint8_t)(h->stream_id >> 16);
        out[6] = (uint8_t)(h->stream_id >> 8);
        out[7] = (uint8_t)h->stream_id;
        out[8] = h->type;
        out[9] = h->flags;
}

void cc_ttrpc_header_decode(const uint8_t in[CC_TTRPC_HEADER_SIZE], struct cc_ttrpc_header *h)
{
        h->length = (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
        h->stream_id = (uint32_t)in[4] << 24 | (uint32_t)in[5] << 16 | (uint32_t)in[6] << 8 | in[7];
        h->type = in[8];
        h->flags = in[9];
}

int64_t ttrpc_now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int frame_reader_init(struct frame_reader *r, int fd, bool is_socket, int wake_fd)
{
        *r = (struct frame_reader){.fd = fd, .wake_fd = wake_fd, .is_socket = is_socket};
        r->buf = malloc(READ_CHUNK);
        if (!r->buf)
                return -ENOMEM;
        r->cap = READ_CHUNK;
        return 0;
}

bool frame_reader_has_frame(const struct frame_reader *r)
{
        size_t avail = r->end - r->start;
        if (avail < CC_TTRPC_HEADER_SIZE)
                return false;
        struct cc_ttrpc_header h;
        cc_ttrpc_header_decode(r->buf + r->start, &h);
        return h.length > CC_TTRPC_MAX_DATA || avail - CC_TTRPC_HEADER_SIZE >= h.length;
}

void frame_reader_done(struct frame_reader *r)
{
        free(r->buf);
        r->buf = NULL;
        r->cap = r->start = r->end = 0;
}

/* Makes room for `need` contiguous bytes from r->start, moving or growing the buffer. */
static int reserve(struct frame_reader *r, size_t need)
{
        if (r->start > 0 && (r->cap - r->start < need || r->start == r->end)) {
                memmove(r->buf, r->buf + r->start, r->end - r->start);
                r->end -= r->start;
                r->start = 0;
        }
        if (r->cap < need) {
                uint8_t *nb = realloc(r->buf, need);
                if (!nb)
                        return -ENOMEM;
                r->buf = nb;
                r->cap = need;
        }
        return 0;
}

/* Waits until fd is readable, the deadline passes, or wake_fd fires. */
static int wait_readable(struct frame_reader *r, int64_t deadline_ns)
{
        for (;;) {
                int timeout = -1;
                if (deadline_ns > 0) {
                        int64_t left = deadline_ns - ttrpc_now_ns();
                        if (left <= 0)
                                return -EAGAIN;
                        timeout = (int)((left + 999999) / 1000000);
                }
                struct pollfd p[2] = {{.fd = r->fd, .events = POLLIN}, {.fd = r->wake_fd, .events = POLLIN}};
                int n = poll(p, r->wake_fd >= 0 ? 2 : 1, timeout);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        continue; /* re-check the deadline */
                if (r->wake_fd >= 0 && (p[1].revents & POLLIN))
                        return -ECANCELED;
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
                        return 0;
                if (p[0].revents & POLLNVAL)
                        return -EBADF;
        }
}

/* Reads at least until `need` bytes are buffered from r->start. */
static int fill(struct frame_reader *r, size_t need, int64_t deadline_ns)
{
        int ret = reserve(r, need);
        if (ret < 0)
                return ret;
        while (r->end - r->start < need) {
                /* Only wait in poll when a deadline or a wake fd has to be honoured. */
                if (deadline_ns > 0 || (r->wake_fd >= 0 && !r->is_socket)) {
                        ret = wait_readable(r, deadline_ns);
                        if (ret < 0)
                                return ret;
                }
                ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
                if (n < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return r->end == r->start ? -ECONNRESET : -EPROTO;
                r->end += (size_t)n;
        }
        return 0;
}

int frame_read(struct frame_reader *r, struct cc_ttrpc_header *h, const uint8_t **data,
               int64_t deadline_ns)
{
        /* Drop the previous frame; shrink a buffer that grew for a large one. */
        if (r->start == r->end) {
                r->start = r->end = 0;
                if (r->cap > READ_CHUNK) {
                        uint8_t *nb = realloc(r->buf, READ_CHUNK);
                        if (nb) {
                                r->buf = nb;
                                r->cap = READ_CHUNK;
                        }
                }
        }
        int ret = fill(r, CC_TTRPC_HEADER_SIZE, deadline_ns);
        if (ret < 0)
                return ret;
        cc_ttrpc_header_decode(r->buf + r->start, h);
        if (h->length > CC_TTRPC_MAX_DATA)
                return -EMSGSIZE;
        ret = fill(r, CC_TTRPC_HEADER_SIZE + (size_t)h->length, deadline_ns);
        if (ret == -ECONNRESET)
                ret = -EPROTO; /* EOF after a complete header: truncated frame */
        if (ret < 0)
                return ret;
        *data = h->length ? r->buf + r->start + CC_TTRPC_HEADER_SIZE : NULL;
        r->start += CC_TTRPC_HEADER_SIZE + (size_t)h->length;
        return 0;
}

int write_full(int fd, bool is_socket, const void *buf, size_t len)
{
        const uint8_t *p = buf;
        while (len > 0) {
                ssize_t n = is_socket ? send(fd, p, len, MSG_NOSIGNAL) : write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                                poll(&pfd, 1, 1000);
                                continue;
                        }
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int frame_build_message(uint32_t stream_id, uint8_t type, const ProtobufCMessage *msg,
                        uint8_t **ret, size_t *ret_len)
{
        size_t len = msg ? protobuf_c_message_get_packed_size(msg) : 0;
        if (len > CC_TTRPC_MAX_DATA)
                return -EMSGSIZE;
        uint8_t *buf = malloc(CC_TTRPC_HEADER_SIZE + len);
        if (!buf)
                return -ENOMEM;
        struct cc_ttrpc_header h = {.length = (uint32_t)len, .stream_id = stream_id, .type = type};
        cc_ttrpc_header_encode(&h, buf);
        if (len)
                protobuf_c_message_pack(msg, buf + CC_TTRPC_HEADER_SIZE);
        *ret = buf;
        *ret_len = CC_TTRPC_HEADER_SIZE + len;
        return 0;
}
