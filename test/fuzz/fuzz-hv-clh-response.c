/*
 * Fuzz target for Cloud Hypervisor's HTTP responses (hv_clh_parse_response): the API socket's
 * peer is the VMM, which a guest may have subverted, so its bytes are untrusted. Every prefix
 * of the input (the client parses its buffer as it grows) goes through the parser in a buffer
 * of exactly that size, so that a read past the end is caught by ASan; a result must be
 * -EAGAIN, -EBADMSG, -ENODATA or a status with a body inside the buffer, and once complete a
 * longer buffer must give the same answer.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hypervisor/clh/clh.h"

static int parse(const uint8_t *data, size_t len, int *status, size_t *off, size_t *blen)
{
        char *buf = malloc(len ? len : 1);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, data, len);
        int r = hv_clh_parse_response(buf, len, status, off, blen);
        free(buf);
        if (r == 0 && (*status < 100 || *status > 999 || *off > len || *blen > len - *off))
                abort();
        if (r != 0 && r != -EAGAIN && r != -EBADMSG && r != -ENODATA)
                abort();
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > 8192)
                return 0; /* every prefix is parsed: keep it quadratic in a small size */
        int first = -EAGAIN, status0 = 0;
        size_t off0 = 0, blen0 = 0;
        for (size_t n = 0; n <= size; n++) {
                int status = 0;
                size_t off = 0, blen = 0;
                int r = parse(data, n, &status, &off, &blen);
                if (first == -EAGAIN) {
                        first = r;
                        status0 = status;
                        off0 = off;
                        blen0 = blen;
                } else if (first == 0 &&
                           (r != 0 || status != status0 || off != off0 || blen != blen0)) {
                        /* A complete response stays the same response with more bytes
                         * behind it (those belong to nobody: one request per connection). */
                        abort();
                }
        }
        return 0;
}
