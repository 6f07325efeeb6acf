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
        /* The current frame's body goes nowhere: the frame is larger than a ttrpc message may
         * be (the server answered its header and closed), or its session broke. Its bytes are
         * skipped, never read as the headers of further frames. */
        bool drop;
        /* No byte arrived for a while in the middle of a frame (set by the relay loop): the
         * client may have left mid-frame, see agent__relay_in(). */
        bool stalled;
};

/* A frame half-read that long ago is dropped (its client left mid-frame without a hangup the
 * guest could see); sooner, after AGENT_RELAY_STALL_MS, a new client's first request ends it. */
#define AGENT_RELAY_STALL_MS      50
#define AGENT_RELAY_FRAME_IDLE_MS 1000

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

/*
 * Forwards host bytes into the current session, starting a new session when a new client
 * shows up (a request with stream id 1 after other frames, or the bytes after a stall look
 * like a first request) and when the session was closed. Returns 0, or -errno when no new
 * session could be started.
 */
int agent__relay_in(struct agent_relay *r, const uint8_t *p, size_t n);
/* Drops the frame in progress (its client is gone) and the session that had its first bytes. */
void agent__relay_drop_frame(struct agent_relay *r, const char *why);
int agent__relay_session_start(struct agent_relay *r);
void agent__relay_session_end(struct agent_relay *r, const char *why);
