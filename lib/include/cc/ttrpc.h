#pragma once
/*
 * ttrpc (containerd's lightweight RPC) over any connected stream socket: unix, vsock, or a
 * virtio-serial port. Wire facts: ../shared/reference/shim-v2-ttrpc.md section 3.
 *
 *   frame  = 10-byte header (u32 BE length, u32 BE stream id, u8 type, u8 flags) + data
 *   data   = protobuf ttrpc.Request (type 1) or ttrpc.Response (type 2), at most 4 MiB
 *
 * Server: a service is a table of method name -> handler. Each request is decoded with the
 * method's protobuf-c descriptor before the handler runs, and the response message the handler
 * fills is encoded after it returns. Calls on one connection run concurrently (a long `Wait`
 * never blocks a `State` behind it): a handler runs on a worker thread, unless its method is
 * flagged CC_TTRPC_METHOD_INLINE (quick, never blocks), which runs it on the connection's reader
 * thread with no hand-off. Responses are written whole, one at a time per connection.
 *
 * Client: one connection, any number of threads calling at once, responses matched by stream
 * id; the thread waiting for a response reads the socket itself when no other thread is
 * reading (no extra reader thread, no hand-off on the fast path).
 */

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cc/error.h"

#define CC_TTRPC_HEADER_SIZE 10
#define CC_TTRPC_MAX_DATA    (4u << 20) /* 4194304, the Go implementation's limit */

enum cc_ttrpc_type {
        CC_TTRPC_REQUEST = 1,
        CC_TTRPC_RESPONSE = 2,
        CC_TTRPC_DATA = 3,
};

struct cc_ttrpc_header {
        uint32_t length;
        uint32_t stream_id;
        uint8_t type;
        uint8_t flags;
};

void cc_ttrpc_header_encode(const struct cc_ttrpc_header *h, uint8_t out[CC_TTRPC_HEADER_SIZE]);
void cc_ttrpc_header_decode(const uint8_t in[CC_TTRPC_HEADER_SIZE], struct cc_ttrpc_header *h);

/* ---- server ---------------------------------------------------------------------------- */

struct cc_ttrpc_server;
struct cc_ttrpc_call;

/*
 * A handler reads `req` (decoded with method->request) and fills `resp` (already initialised
 * with method->response; NULL when the method has no response descriptor). Memory that `resp`
 * points to must stay valid until the response is sent: allocate it with cc_ttrpc_call_alloc()
 * and friends, which free it with the call. Returns 0, or -errno with *err set; the error
 * becomes a google.rpc.Status through cc_error_grpc_code().
 */
typedef int (*cc_ttrpc_handler_fn)(struct cc_ttrpc_call *call, void *userdata,
                                   const ProtobufCMessage *req, ProtobufCMessage *resp,
                                   struct cc_error **err);

enum {
        CC_TTRPC_METHOD_INLINE = 1 << 0, /* quick, non-blocking: runs on the reader thread */
};

struct cc_ttrpc_method {
        const char *name;                           /* bare rpc name, e.g. "State" */
        const ProtobufCMessageDescriptor *request;  /* payload decoded with this */
        const ProtobufCMessageDescriptor *response; /* NULL: google.protobuf.Empty */
        cc_ttrpc_handler_fn handler;
        unsigned flags;
};

struct cc_ttrpc_service {
        const char *name; /* full service name, e.g. "containerd.task.v2.Task" */
        const struct cc_ttrpc_method *methods;
        size_t n_methods;
};

struct cc_ttrpc_server_options {
        /* Drop unix-socket peers whose SO_PEERCRED uid differs from our euid (as containerd's
         * ttrpc.UnixSocketRequireSameUser does). */
        bool require_same_user;
        /* Upper bound of worker threads running blocking handlers at once (default 128). */
        unsigned max_workers;
        /* Called (from the connection's thread) after a connection closed, e.g. so the agent
         * reopens its virtio-serial port. */
        void (*on_conn_closed)(void *userdata, int reason);
        void *userdata;
        /* Refuse (InvalidArgument, naming the field) a request whose payload has a string
         * field with a NUL byte: decoded, "c1\0x" would silently become "c1". */
        bool reject_nul_strings;
};

int cc_ttrpc_server_new(const struct cc_ttrpc_server_options *opts, struct cc_ttrpc_server **ret);
/* Registers a service; `userdata` is passed to its handlers. The table must outlive the server. */
int cc_ttrpc_server_register(struct cc_ttrpc_server *s, const struct cc_ttrpc_service *svc,
                             void *userdata);
/* Accepts connections on a listening socket (owned by the server from now on) in a thread. */
int cc_ttrpc_server_listen(struct cc_ttrpc_server *s, int listen_fd);
/* Serves one already-connected stream (socketpair, accepted socket, virtio-serial port); the
 * server owns fd from now on. */
int cc_ttrpc_server_add_conn(struct cc_ttrpc_server *s, int fd);
/* Stops accepting, closes idle connections, waits for running handlers, then closes the rest. */
void cc_ttrpc_server_shutdown(struct cc_ttrpc_server *s);
/* Shuts down if needed and frees. NULL is fine. */
void cc_ttrpc_server_free(struct cc_ttrpc_server *s);
/* Number of currently open connections (for tests and idle checks). */
unsigned cc_ttrpc_server_n_conns(struct cc_ttrpc_server *s);

/*
 * Walks protobuf wire bytes of a `desc` message (nested messages too) for a string field that
 * holds a NUL byte. Returns 1 and writes the field's dotted path ("oci.process.args") to
 * `path` when one does, 0 otherwise (malformed bytes are left to the decoder to refuse).
 */
int cc_pb_find_nul_string(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                          char *path, size_t path_size);

/* Per-call helpers for handlers. Memory is zeroed and freed when the call ends. */
void *cc_ttrpc_call_alloc(struct cc_ttrpc_call *call, size_t size);
char *cc_ttrpc_call_strdup(struct cc_ttrpc_call *call, const char *s);
char *cc_ttrpc_call_printf(struct cc_ttrpc_call *call, const char *fmt, ...) _printf_(2, 3);
/* The first value of a metadata key (keys compared case-insensitively), or NULL. */
const char *cc_ttrpc_call_metadata(struct cc_ttrpc_call *call, const char *key);
/* Nanoseconds left until the caller's deadline; INT64_MAX when the caller set none. */
int64_t cc_ttrpc_call_remaining_ns(struct cc_ttrpc_call *call);
/* Credentials of a unix-socket peer; -ENOTSUP on other transports. */
int cc_ttrpc_call_peer(struct cc_ttrpc_call *call, pid_t *pid, uid_t *uid, gid_t *gid);

/* ---- client ---------------------------------------------------------------------------- */

struct cc_ttrpc_client;

struct cc_ttrpc_kv {
        const char *key;
        const char *value;
};

struct cc_ttrpc_call_opts {
        int64_t timeout_ns;           /* 0: no deadline */
        const struct cc_ttrpc_kv *md; /* metadata pairs sent with the request */
        size_t n_md;
};

/* Takes ownership of a connected stream fd. */
int cc_ttrpc_client_new(int fd, struct cc_ttrpc_client **ret);
/* Closes the connection: calls in flight fail with -ECONNRESET. NULL is fine. */
void cc_ttrpc_client_free(struct cc_ttrpc_client *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct cc_ttrpc_client *, cc_ttrpc_client_free)
/* True once the connection is known to be broken (EOF, error, protocol violation). */
bool cc_ttrpc_client_broken(struct cc_ttrpc_client *c);

/*
 * Unary call. On success *ret_resp holds the decoded response (free it with
 * protobuf_c_message_free_unpacked(resp, NULL)); pass resp_desc NULL to ignore the payload.
 * A status from the server gives -cc_grpc_to_errno(code) and an *err with that code and the
 * server's message; transport failures give -ECONNRESET, -ETIMEDOUT (deadline passed, the
 * late response is dropped), -EMSGSIZE (request too large).
 */
int cc_ttrpc_client_call(struct cc_ttrpc_client *c, const char *service, const char *method,
                         const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                         ProtobufCMessage **ret_resp, const struct cc_ttrpc_call_opts *opts,
                         struct cc_error **err);

/* The same with an already-encoded request payload; *ret_payload is malloc'ed (may be NULL
 * with length 0 for an empty response). */
int cc_ttrpc_client_call_raw(struct cc_ttrpc_client *c, const char *service, const char *method,
                             const uint8_t *payload, size_t len, uint8_t **ret_payload,
                             size_t *ret_len, const struct cc_ttrpc_call_opts *opts,
                             struct cc_error **err);

/* ---- sockets ----------------------------------------------------------------------------- */

/* Connects a unix stream socket (O_CLOEXEC); returns the fd or -errno. */
int cc_unix_connect(const char *path);
/* Binds and listens on a unix stream socket, removing a stale socket file first. */
int cc_unix_listen(const char *path, int backlog);
