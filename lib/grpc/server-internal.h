#pragma once
/*
 * The gRPC server's shared state (lib/grpc/server*.c): the server, its connections and their
 * calls, and the functions the three parts call across:
 *  - server-call.c: a call's life apart from HTTP/2 (the handler API, running handlers on the
 *    worker pool, checking and decoding a request, ending a call);
 *  - server-h2.c: the HTTP/2 glue on nghttp2 (frames and headers in, HEADERS/DATA/trailers
 *    out) and the connection thread;
 *  - server.c: the server (registration, accept thread, shutdown).
 * See server.c for the threads and who owns what.
 */

#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cc/grpc.h"

#define MAX_HEADERS      64
#define MAX_HEADER_BYTES (16u << 10)
/* A streaming handler waits while this much of its output is unsent. */
#define SEND_HIGH_WATER  (4u << 20)
/* Per-stream and per-connection receive windows: a 16 MiB request needs few round trips. */
#define STREAM_WINDOW    (1u << 20)
#define CONN_WINDOW      (16u << 20)

struct registered {
        const struct cc_grpc_service *svc;
        void *userdata;
};

struct job {
        struct job *next;
        struct call *call;
};

struct conn;

struct cc_grpc_server {
        struct cc_grpc_server_options opts;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct registered *svcs;
        size_t n_svcs;

        int listen_fd;
        int accept_wake[2];
        pthread_t accept_thread;
        bool accepting;
        bool shut;

        struct conn *conns; /* doubly linked by conn->next/prev */
        unsigned n_conns;

        /* Worker pool. */
        struct job *jobs_head, *jobs_tail;
        unsigned n_threads, n_idle, n_busy, n_queued;
        bool stop_workers;
};

struct conn {
        struct cc_grpc_server *srv;
        struct conn *next, *prev;
        atomic_int refs;
        int fd;
        int wake_fd; /* eventfd */
        nghttp2_session *session;
        bool closing; /* server shutdown asked this conn to finish */
        bool goaway_sent;
        bool eof;

        /* Protects the output side of every call of this conn (see struct call). */
        pthread_mutex_t lock;
        pthread_cond_t space; /* signalled when a call's output buffer drains */

        /* Calls whose stream is open, touched only on the conn thread. */
        struct call *calls;

        /* Bytes mem_send gave us that the socket has not taken yet. */
        const uint8_t *pending;
        size_t n_pending;
};

struct arena_block {
        struct arena_block *next;
        max_align_t data[];
};

struct kv {
        char *key;
        char *value;
};

struct call {
        struct conn *conn;
        struct call *next, *prev; /* in conn->calls while the stream is open */
        atomic_int refs;
        int32_t stream_id;
        const struct cc_grpc_method *method;
        void *userdata;

        /* Request side: conn thread only. */
        char *path;
        char *http_method;
        char *content_type;
        struct kv *md;
        size_t n_md;
        size_t header_bytes;
        int64_t deadline_ns; /* CLOCK_MONOTONIC, or INT64_MAX */
        uint8_t *in;
        size_t n_in, cap_in;
        bool rejected;   /* an error reply was queued before the request ended */
        bool dispatched; /* the handler has been started */
        bool inline_run; /* the handler runs on the conn thread: sends must never wait */
        ProtobufCMessage *req;
        struct arena_block *arena; /* handler allocations; the handler's thread only */

        /* Output side: under conn->lock. */
        uint8_t *out;
        size_t n_out, off_out, cap_out;
        bool finished; /* the handler returned: status/message are final */
        int status;
        char *message;
        int http_status;   /* 200 unless the request was not gRPC at all */
        bool resp_started; /* HEADERS submitted */
        bool deferred;     /* the data provider is waiting for output */
        bool closed;       /* the stream is gone: further sends fail */
};

/* Grows *buf (capacity *cap, doubling from `first`) to hold `need` bytes: 0 or -ENOMEM. */
int cc_grpc__buf_reserve(uint8_t **buf, size_t *cap, size_t need, size_t first);
/* Monotonic nanoseconds. */
int64_t cc_grpc__now_ns(void);
/* Drops a reference; the last frees the conn (its eventfd, lock). */
void cc_grpc__conn_unref(struct conn *c);
/* Wakes the conn thread (it flushes what handlers queued). */
void cc_grpc__conn_wake(struct conn *c);
/* Drops a reference; the last frees the call and drops its conn reference. */
void cc_grpc__call_unref(struct call *call);
/* Ends a call with a status; may run on any thread. */
void cc_grpc__call_finish(struct call *call, int status, const char *message, int http_status);
/* Rejects a request before its handler runs (bad headers, bad body). */
void cc_grpc__reject(struct call *call, int status, const char *msg, int http_status);
/* Conn thread: the request's HEADERS arrived; the client ended its stream. */
void cc_grpc__request_headers_done(struct call *call);
void cc_grpc__request_done(struct call *call);
