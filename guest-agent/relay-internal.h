#pragma once
/*
 * The virtio-serial relay (transport.c), exposed for its fuzz target: it follows the ttrpc
 * framing of the host's byte stream and splits it into one ttrpc server connection per client.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cc/ttrpc.h"

/* Incremental ttrpc frame tracker for the host -> agent direction. */
struct agent_framer {
        uint8_t hdr[CC_TTRPC_HEADER_SIZE];
        size_t hdr_have;
        size_t body_left;
        unsigned frames; /* headers seen in this session */
};

struct agent_relay {
        /* Hands the server side of a new session's socketpair to the ttrpc server. */
        int (*add_conn)(void *ctx, int fd);
        void *ctx;
        int port;  /* the virtio-serial port, non-blocking */
        int local; /* our end of the session's socketpair, or -1 */
        struct agent_framer in;
        /* host-bound frame being collected from the server, then written whole */
        uint8_t *out;
        size_t out_len, out_cap, out_sent;
        bool out_ready;
};

/* Forwards host bytes into the current session, starting a new session when a new client
 * shows up (a request with stream id 1 after other frames). -EPIPE when the session broke. */
int agent__relay_in(struct agent_relay *r, const uint8_t *p, size_t n);
int agent__relay_session_start(struct agent_relay *r);
void agent__relay_session_end(struct agent_relay *r, const char *why);
