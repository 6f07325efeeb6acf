/*
 * A TD quote from the host's Quote Generation Service (QGS) over vsock, for TDX guests whose
 * kernel has /dev/tdx_guest (the TDREPORT ioctl, Linux >= 6.2) but no configfs-tsm (Linux
 * >= 6.7): what Intel's libtdx_attest did before configfs-tsm (attestation-kbs.md 4.3,
 * "Legacy paths"; guest-components dropped it and requires configfs-tsm).
 *
 * The framing (QEMU's tdx-quote-generator speaks the same to QGS): a 4-byte big-endian length
 * of the message, then a little-endian qgs_msg header {u16 major 1, u16 minor, u32 type, u32
 * size (the whole message), u32 error_code} and, for GET_QUOTE_REQ (0), {u32 report_size
 * 1024, u32 id_list_size 0, TDREPORT}; the GET_QUOTE_RESP (1) body is {u32 selected_id_size,
 * u32 quote_size, id, quote}. The answer comes from the host (hostile): every size is checked
 * against the bytes received before anything is read, and the quote itself then goes through
 * kbc_evidence_tdx()'s header check.
 *
 * No TDX host is available where this was written: the message codec is unit-tested and
 * fuzzed, the exchange is tested against a QGS stand-in on a socketpair; the vsock connection
 * itself (CID 2, port 4050 or /etc/tdx-attest.conf's port=) runs only on a TDX host.
 */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"

#include "guest-agent/attest/kbc.h"

#define QGS_HEADER        16
#define QGS_GET_QUOTE_REQ 0
#define QGS_GET_QUOTE_RSP 1
#define QGS_MSG_MAX       (1u << 20) /* a quote with its certification data is a few KiB */

static void put_le16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p)
{
        return (uint16_t)(p[0] | p[1] << 8);
}

void kbc_qgs_encode_request(const uint8_t tdreport[KBC_TDREPORT_SIZE],
                            uint8_t out[KBC_QGS_REQUEST_SIZE])
{
        const uint32_t size = QGS_HEADER + 8 + KBC_TDREPORT_SIZE;
        out[0] = (uint8_t)(size >> 24);
        out[1] = (uint8_t)(size >> 16);
        out[2] = (uint8_t)(size >> 8);
        out[3] = (uint8_t)size;
        uint8_t *m = out + 4;
        put_le16(m, 1);     /* major */
        put_le16(m + 2, 1); /* minor, as QEMU sends */
        put_le32(m + 4, QGS_GET_QUOTE_REQ);
        put_le32(m + 8, size);
        put_le32(m + 12, 0); /* error_code */
        put_le32(m + 16, KBC_TDREPORT_SIZE);
        put_le32(m + 20, 0); /* id_list_size */
        memcpy(m + 24, tdreport, KBC_TDREPORT_SIZE);
}

int kbc_qgs_decode_response(const uint8_t *msg, size_t len, const uint8_t **quote,
                            size_t *quote_len, struct cc_error **err)
{
        if (len < QGS_HEADER)
                return cc_error_set(err, EBADMSG, "QGS answer: %zu bytes, shorter than a header",
                                    len);
        uint16_t major = le16(msg);
        uint32_t type = le32(msg + 4), size = le32(msg + 8), code = le32(msg + 12);
        if (major != 1)
                return cc_error_set(err, EPROTO, "QGS answer: message version %u (1 expected)",
                                    major);
        if (type != QGS_GET_QUOTE_RSP)
                return cc_error_set(err, EPROTO,
                                    "QGS answer: message type %u (GET_QUOTE_RESP, 1, "
                                    "expected)",
                                    type);
        if (size != len)
                return cc_error_set(err, EBADMSG, "QGS answer: header says %u bytes, %zu received",
                                    size, len);
        if (code != 0)
                return cc_error_set(err, EIO, "QGS refused the quote: error code 0x%x", code);
        if (len < QGS_HEADER + 8)
                return cc_error_set(err, EBADMSG, "QGS answer: no quote sizes");
        uint64_t id_size = le32(msg + QGS_HEADER), q_size = le32(msg + QGS_HEADER + 4);
        if (q_size == 0 || QGS_HEADER + 8 + id_size + q_size != len)
                return cc_error_set(err, EBADMSG,
                                    "QGS answer: id %llu + quote %llu bytes do not fill the %zu "
                                    "received",
                                    (unsigned long long)id_size, (unsigned long long)q_size, len);
        *quote = msg + QGS_HEADER + 8 + id_size;
        *quote_len = (size_t)q_size;
        return 0;
}

/* All of buf, or an error; the deadline (CLOCK_MONOTONIC ms) bounds a peer that stalls. */
static int xfer(int fd, bool out, uint8_t *buf, size_t len, uint64_t deadline)
{
        while (len > 0) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
                if (now >= deadline)
                        return -ETIMEDOUT;
                struct pollfd p = {.fd = fd, .events = out ? POLLOUT : POLLIN};
                int n = poll(&p, 1, (int)(deadline - now));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -ETIMEDOUT;
                ssize_t k = out ? send(fd, buf, len, MSG_NOSIGNAL) : recv(fd, buf, len, 0);
                if (k < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -ECONNRESET;
                buf += k;
                len -= (size_t)k;
        }
        return 0;
}

int kbc_qgs_exchange(int fd, const uint8_t tdreport[KBC_TDREPORT_SIZE], unsigned timeout_ms,
                     uint8_t **ret, size_t *ret_len, struct cc_error **err)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t deadline = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 +
                            (timeout_ms ? timeout_ms : 30000);
        uint8_t req[KBC_QGS_REQUEST_SIZE], hdr[4];
        kbc_qgs_encode_request(tdreport, req);
        int r = xfer(fd, true, req, sizeof(req), deadline);
        if (r == 0)
                r = xfer(fd, false, hdr, sizeof(hdr), deadline);
        if (r < 0)
                return cc_error_set(err, -r, "QGS: %s", strerror(-r));
        uint32_t n =
                (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
        if (n < QGS_HEADER || n > QGS_MSG_MAX)
                return cc_error_set(err, EBADMSG, "QGS: an answer of %u bytes (16..%u)", n,
                                    QGS_MSG_MAX);
        _cleanup_free_ uint8_t *msg = malloc(n);
        if (!msg)
                return -ENOMEM;
        if ((r = xfer(fd, false, msg, n, deadline)) < 0)
                return cc_error_set(err, -r, "QGS: reading its %u-byte answer: %s", n,
                                    strerror(-r));
        const uint8_t *q;
        size_t ql;
        if ((r = kbc_qgs_decode_response(msg, n, &q, &ql, err)) < 0)
                return r;
        if (!(*ret = malloc(ql)))
                return -ENOMEM;
        memcpy(*ret, q, ql);
        *ret_len = ql;
        return 0;
}

unsigned kbc_qgs_port(const char *conf_path)
{
        unsigned port = KBC_QGS_PORT_DEFAULT;
        FILE *f = fopen(conf_path ? conf_path : "/etc/tdx-attest.conf", "re");
        if (!f)
                return port;
        char line[256];
        while (fgets(line, sizeof(line), f)) {
                unsigned v;
                char end;
                /* "port=4050": the only key libtdx_attest's file has; comments start with #. */
                if (sscanf(line, " port = %u%c", &v, &end) >= 1 && v > 0 && v < 65536)
                        port = v;
        }
        fclose(f);
        return port;
}

int kbc_qgs_quote(unsigned port, const uint8_t tdreport[KBC_TDREPORT_SIZE], uint8_t **ret,
                  size_t *ret_len, struct cc_error **err)
{
        _cleanup_close_ int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return cc_error_set(err, errno, "QGS: vsock socket: %m");
        struct sockaddr_vm a = {
                .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = port};
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
                return cc_error_set(err, errno, "QGS at vsock %u:%u: %m", VMADDR_CID_HOST, port);
        int r = kbc_qgs_exchange(fd, tdreport, 30000, ret, ret_len, err);
        return r < 0 ? cc_error_wrap(err, -r, "QGS at vsock %u:%u", VMADDR_CID_HOST, port) : 0;
}
