/*
 * Fuzz target for the QMP client: QEMU's replies are untrusted-ish input. Each line of the
 * input goes through hv_qmp_parse(); then the whole input is served, as QEMU would send it,
 * to a client doing the handshake and two commands over a socketpair, which exercises line
 * framing, event skipping, id matching and error replies. Errors are expected; crashes, leaks
 * and UB are not.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cc/error.h"

#include "hypervisor/qemu/qemu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *p = (const char *)data, *end = p + size;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
                struct hv_qmp_msg m;
                if (hv_qmp_parse(p, len, &m) == 0)
                        hv_qmp_msg_done(&m);
                p += len + 1;
        }
        if (size > 60000)
                return 0; /* keep the whole input within one socket buffer */
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return 0;
        size_t off = 0;
        while (off < size) {
                ssize_t n = write(sv[1], data + off, size - off);
                if (n <= 0)
                        break;
                off += (size_t)n;
        }
        shutdown(sv[1], SHUT_WR);
        struct hv_qmp q = HV_QMP_INIT;
        struct cc_error *err = NULL;
        if (hv_qmp_handshake(&q, sv[0], 1000, &err) == 0) {
                json_object *ret = NULL;
                if (hv_qmp_execute(&q, "query-status", NULL, 1000, &ret, &err) == 0)
                        json_object_put(ret);
                hv_qmp_execute(&q, "quit", NULL, 1000, NULL, &err);
        }
        cc_error_free(err);
        hv_qmp_close(&q);
        close(sv[1]);
        return 0;
}
