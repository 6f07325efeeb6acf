#pragma once
/*
 * gRPC over HTTP/2 cleartext ("h2c" with prior knowledge) on any connected stream socket,
 * built on libnghttp2. Used by cc-snapshotter to serve containerd's proxy-plugin API, and by
 * tests as a small client. Wire facts: ../shared/reference/snapshotter.md section 1.3.
 *
 * Why nghttp2 and not gRPC core (libgrpc-dev 1.51):
 *  - nghttp2 gives a complete, fuzzed HTTP/2 (HPACK with Huffman and the dynamic table,
 *    SETTINGS, flow control, PING ACKs, GOAWAY, stream limits) and leaves the gRPC layer to
 *    us. That layer is small: length-prefixed messages, a handful of headers, the trailers.
 *  - gRPC core's C API is the "surface" API (completion queues, tags, byte buffers); serving
 *    even one unary method takes a lot of ceremony, it brings its own threads, its own
 *    DNS/TLS/channelz machinery and abseil/re2/c-ares/openssl, and it is not meant to be used
 *    directly (only through the C++ or wrapped-language layers). Its ABI changes every release.
 *  - The project already pairs protobuf-c with a hand-written ttrpc; the same protobuf-c
 *    descriptors drive both transports here, so handlers look the same.
 *  - The cost: we own the gRPC rules (status in trailers, percent-encoded grpc-message,
 *    Trailers-Only errors, the zero-length message of an Empty reply, 415 for non-gRPC
 *    content). They are covered by unit tests and a fuzz target on the framing path.
 *
 * Server model: one thread per connection runs the nghttp2 session (all nghttp2 calls happen
 * there). A request is complete when the client ends its stream; it must carry exactly one
 * message (unary and server-streaming calls). The handler then runs on its own worker thread
 * (so a slow Usage or Remove never stalls the other streams of containerd's one connection),
 * or inline on the connection thread for methods flagged CC_GRPC_METHOD_INLINE. Responses and
 * streamed messages are queued to the connection thread, which sends HEADERS, DATA and the
 * trailers (grpc-status, grpc-message) as flow control allows.
 *
 * Errors: a handler returns -errno with *err set; the status code comes from
 * cc_error_grpc_code(). Bad input never ends the process: an undecodable message gives
 * InvalidArgument, an oversized one ResourceExhausted, an unknown path Unimplemented, a
 * non-gRPC content-type HTTP 415, an HTTP/2 protocol error a GOAWAY and a closed connection.
 */

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cc/error.h"

/* The gRPC Length-Prefixed-Message header: 1 byte compressed flag, 4 bytes big-endian length. */
#define CC_GRPC_PREFIX_SIZE     5
/* containerd's limit in both directions (defaults.DefaultMaxRecvMsgSize). */
#define CC_GRPC_DEFAULT_MAX_MSG (16u << 20)

/* ---- server ---------------------------------------------------------------------------- */

struct cc_grpc_server;
struct cc_grpc_call;

/*
 * A unary handler reads `req` (decoded with method->request) and fills `resp` (initialised
 * with method->response). Memory that `resp` points to must live until the call ends: use
 * cc_grpc_call_alloc() and friends. A server-streaming handler gets resp == NULL and sends
 * each message with cc_grpc_call_send(). Return 0, or -errno with *err set.
 */
typedef int (*cc_grpc_handler_fn)(struct cc_grpc_call *call, void *userdata,
                                  const ProtobufCMessage *req, ProtobufCMessage *resp,
                                  struct cc_error **err);

enum {
        CC_GRPC_METHOD_INLINE = 1 << 0, /* quick, never blocks: runs on the connection thread */
        CC_GRPC_METHOD_SERVER_STREAM = 1 << 1, /* replies with cc_grpc_call_send(), 0..n times */
};

struct cc_grpc_method {
        const char *name;                           /* bare rpc name, e.g. "Prepare" */
        const ProtobufCMessageDescriptor *request;  /* request decoded with this */
        const ProtobufCMessageDescriptor *response; /* unary reply; NULL: google.protobuf.Empty */
        cc_grpc_handler_fn handler;
        unsigned flags;
};

struct cc_grpc_service {
        const char *name; /* full service name, e.g. "containerd.services.snapshots.v1.Snapshots" */
        const struct cc_grpc_method *methods;
        size_t n_methods;
};

struct cc_grpc_server_options {
        uint32_t max_recv_msg;           /* default CC_GRPC_DEFAULT_MAX_MSG */
        uint32_t max_send_msg;           /* default CC_GRPC_DEFAULT_MAX_MSG */
        uint32_t max_concurrent_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS, default 1000 */
        unsigned max_workers;            /* handler threads at once, default 128 */
};

/* opts may be NULL for the defaults. */
int cc_grpc_server_new(const struct cc_grpc_server_options *opts, struct cc_grpc_server **ret);
/* Registers a service; `userdata` goes to its handlers. The table must outlive the server. */
int cc_grpc_server_register(struct cc_grpc_server *s, const struct cc_grpc_service *svc,
                            void *userdata);
/* Accepts connections on a listening socket (owned by the server from now on) in a thread. */
int cc_grpc_server_listen(struct cc_grpc_server *s, int listen_fd);
/* Serves one connected stream (accepted socket, socketpair end); owns fd from now on. */
int cc_grpc_server_add_conn(struct cc_grpc_server *s, int fd);
/* Stops accepting, sends GOAWAY, waits for running handlers, closes every connection. */
void cc_grpc_server_shutdown(struct cc_grpc_server *s);
/* Shuts down if needed and frees. NULL is fine. */
void cc_grpc_server_free(struct cc_grpc_server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct cc_grpc_server *, cc_grpc_server_free)
/* Number of open connections (tests, idle checks). */
unsigned cc_grpc_server_n_conns(struct cc_grpc_server *s);

/*
 * Sends one message of a server-streaming call (encoded with its own descriptor). Safe from
 * the handler's thread only. Returns -ECANCELED once the client went away, -EMSGSIZE when the
 * message exceeds max_send_msg. Blocks while more than 4 MiB of the call's output is unsent
 * (the peer reads slower than we produce).
 */
int cc_grpc_call_send(struct cc_grpc_call *call, const ProtobufCMessage *msg,
                      struct cc_error **err);
/* True once the client cancelled the call or the connection closed. */
bool cc_grpc_call_cancelled(struct cc_grpc_call *call);
/* Per-call memory, zeroed, freed when the call ends. NULL on OOM. */
void *cc_grpc_call_alloc(struct cc_grpc_call *call, size_t size);
char *cc_grpc_call_strdup(struct cc_grpc_call *call, const char *s);
/* The first value of a request header (custom metadata), keys compared case-insensitively. */
const char *cc_grpc_call_metadata(struct cc_grpc_call *call, const char *key);
/* Nanoseconds until the caller's grpc-timeout runs out; INT64_MAX when none was sent. */
int64_t cc_grpc_call_remaining_ns(struct cc_grpc_call *call);
/* The request's :path, e.g. "/pkg.Service/Method". */
const char *cc_grpc_call_path(struct cc_grpc_call *call);

/* ---- wire helpers (shared by server, client and tests) ------------------------------------ */

/*
 * Percent-encodes a grpc-message value: bytes outside 0x20..0x7e and '%' become %XX. Returns a
 * malloc'ed string or NULL on OOM.
 */
char *cc_grpc_percent_encode(const char *s);
/* Decodes %XX sequences; a malformed sequence is kept literally (as the spec asks). */
char *cc_grpc_percent_decode(const char *s, size_t len);
/* Parses a grpc-timeout value ("1S", "200m", ...: 1-8 digits and a unit of HMSmun) into ns. */
int cc_grpc_parse_timeout(const char *s, size_t len, int64_t *ret_ns);
/* Writes the timeout as a grpc-timeout value into buf (at least 16 bytes). */
void cc_grpc_format_timeout(int64_t ns, char buf[16]);

/* ---- client (tests and tools; one thread at a time) ---------------------------------------- */

struct cc_grpc_client;
struct cc_grpc_stream;

struct cc_grpc_kv {
        const char *key;
        const char *value;
};

/* Takes ownership of a connected stream fd; sends the preface and SETTINGS. */
int cc_grpc_client_new(int fd, struct cc_grpc_client **ret);
void cc_grpc_client_free(struct cc_grpc_client *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct cc_grpc_client *, cc_grpc_client_free)

/*
 * Starts a call without waiting: `path` is "/<service>/<method>", payload the encoded request
 * (sent as one message; payload NULL with len 0 is an empty message). md: extra headers.
 * timeout_ns > 0 sends grpc-timeout. Any number of calls may be in flight at once.
 */
int cc_grpc_client_start(struct cc_grpc_client *c, const char *path, const uint8_t *payload,
                         size_t len, const struct cc_grpc_kv *md, size_t n_md, int64_t timeout_ns,
                         struct cc_grpc_stream **ret);
/*
 * Drives the connection until `st` has finished (other streams progress too). Returns 0 when
 * the call ended with grpc-status OK; -cc_grpc_to_errno(status) with *err carrying the code and
 * the decoded grpc-message otherwise; -ECONNRESET/-EPROTO on transport failure.
 */
int cc_grpc_client_wait(struct cc_grpc_client *c, struct cc_grpc_stream *st, struct cc_error **err);
/* Response messages received on a finished stream, in order. */
size_t cc_grpc_stream_n_messages(const struct cc_grpc_stream *st);
const uint8_t *cc_grpc_stream_message(const struct cc_grpc_stream *st, size_t i, size_t *ret_len);
/* The status the server sent (-1: none, e.g. transport failure), and the HTTP :status. */
int cc_grpc_stream_status(const struct cc_grpc_stream *st);
int cc_grpc_stream_http_status(const struct cc_grpc_stream *st);
/* Frees a stream (finished or not; an unfinished one is reset). */
void cc_grpc_stream_free(struct cc_grpc_client *c, struct cc_grpc_stream *st);

/*
 * Unary call with protobuf-c messages. *ret_resp is the decoded first response message (free
 * with protobuf_c_message_free_unpacked); resp_desc NULL ignores it.
 */
int cc_grpc_client_call(struct cc_grpc_client *c, const char *service, const char *method,
                        const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                        ProtobufCMessage **ret_resp, struct cc_error **err);

/* Sends a PING and waits for its ACK; returns 0 or -errno. */
int cc_grpc_client_ping(struct cc_grpc_client *c);
