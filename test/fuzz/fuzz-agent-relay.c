/*
 * Fuzz target: the virtio-serial relay's reading of the host's byte stream (transport.c). The
 * first byte sets the chunk size the stream arrives in; the rest is the stream. Checks the
 * relay's contract: every byte reaches at most one session, in order, and sessions only change
 * at frame boundaries (so the bytes of all sessions, concatenated, are the input, less a
 * trailing partial header that waits for the rest and less the bodies of frames longer than
 * CC_TTRPC_MAX_DATA, which are skipped, never read as headers).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guest-agent/init/relay-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SESSIONS 4096

struct sink {
        int fds[MAX_SESSIONS];
        size_t n;
};

static int add_conn(void *ctx, int fd)
{
        struct sink *s = ctx;
        if (s->n >= MAX_SESSIONS) {
                close(fd);
                return -ENOSPC;
        }
        fcntl(fd, F_SETFL, O_NONBLOCK);
        s->fds[s->n++] = fd;
        return 0;
}

/* Reads what the sessions received so far, in session order (a test-side server). */
static void drain(struct sink *s, uint8_t *got, size_t cap, size_t *have)
{
        for (size_t i = 0; i < s->n; i++) {
                while (s->fds[i] >= 0) {
                        ssize_t k = read(s->fds[i], got + *have, cap - *have);
                        if (k > 0) {
                                *have += (size_t)k;
                                continue;
                        }
                        if (k == 0 || cap == *have) {
                                close(s->fds[i]);
                                s->fds[i] = -1;
                        }
                        break;
                }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1 || size > 65536)
                return 0;
        size_t chunk = data[0] ? data[0] : 1;
        data++;
        size--;
        static struct sink sink;
        sink.n = 0;
        uint8_t *got = malloc(size + 1);
        size_t have = 0;
        struct agent_relay r = {.add_conn = add_conn, .ctx = &sink, .port = -1, .local = -1};
        if (!got || agent__relay_session_start(&r) < 0)
                abort();
        bool broken = false;
        for (size_t off = 0; off < size && !broken; off += chunk) {
                size_t n = size - off < chunk ? size - off : chunk;
                if (agent__relay_in(&r, data + off, n) < 0)
                        broken = true;
                drain(&sink, got, size + 1, &have);
        }
        /* A trailing partial header is held back until it is complete. */
        size_t held =
                r.in.body_left == 0 && r.in.hdr_have < CC_TTRPC_HEADER_SIZE ? r.in.hdr_have : 0;
        agent__relay_session_end(&r, "done");
        drain(&sink, got, size + 1, &have);
        for (size_t i = 0; i < sink.n; i++)
                if (sink.fds[i] >= 0)
                        close(sink.fds[i]);
        /* The expected bytes: every header, and the bodies of frames the server may take. */
        uint8_t *want = malloc(size + 1);
        size_t n_want = 0;
        if (!want)
                abort();
        for (size_t pos = 0; pos + CC_TTRPC_HEADER_SIZE <= size;) {
                struct cc_ttrpc_header h;
                cc_ttrpc_header_decode(data + pos, &h);
                memcpy(want + n_want, data + pos, CC_TTRPC_HEADER_SIZE);
                n_want += CC_TTRPC_HEADER_SIZE;
                pos += CC_TTRPC_HEADER_SIZE;
                size_t body = size - pos < h.length ? size - pos : h.length;
                if (h.length <= CC_TTRPC_MAX_DATA) {
                        memcpy(want + n_want, data + pos, body);
                        n_want += body;
                }
                pos += body;
        }
        (void)held;
        if (!broken && (have != n_want || memcmp(got, want, have) != 0))
                abort();
        free(want);
        free(got);
        return 0;
}
