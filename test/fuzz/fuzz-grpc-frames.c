/*
 * Fuzzes the server side of lib/grpc: the input is the byte stream a client sends on one
 * connection (connection preface, HTTP/2 frames, HPACK headers, gRPC length-prefixed
 * messages). Handlers run inline and decode ttrpc.Request, so the whole path from bytes to a
 * handler and back is exercised. The server must neither crash nor hang; it replies or closes.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cc/grpc.h"
#include "cc/log.h"

#include "ttrpc/ttrpc.pb-c.h"

static int h_echo(struct cc_grpc_call *call, void *ud, const ProtobufCMessage *req_,
                  ProtobufCMessage *resp_, struct cc_error **err)
{
        const Ttrpc__Request *req = (const Ttrpc__Request *)req_;
        Ttrpc__Request *resp = (Ttrpc__Request *)resp_;
        if (req->timeout_nano == 5)
                return cc_error_set(err, ENOENT, "not found: %s", req->service);
        resp->service = cc_grpc_call_strdup(call, req->service);
        const char *md = cc_grpc_call_metadata(call, "x-test");
        resp->method = cc_grpc_call_strdup(call, md ? md : "");
        return 0;
}

static int h_stream(struct cc_grpc_call *call, void *ud, const ProtobufCMessage *req_,
                    ProtobufCMessage *resp, struct cc_error **err)
{
        const Ttrpc__Request *req = (const Ttrpc__Request *)req_;
        for (int64_t i = 0; i < req->timeout_nano && i < 8; i++) {
                int r = cc_grpc_call_send(call, req_, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

static const struct cc_grpc_method methods[] = {
        {"Echo", &ttrpc__request__descriptor, &ttrpc__request__descriptor, h_echo,
         CC_GRPC_METHOD_INLINE},
        {"Stream", &ttrpc__request__descriptor, NULL, h_stream,
         CC_GRPC_METHOD_INLINE | CC_GRPC_METHOD_SERVER_STREAM},
};
static const struct cc_grpc_service svc = {"test.Echo", methods, 2};
static struct cc_grpc_server *srv;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        struct cc_grpc_server_options o = {.max_recv_msg = 65536};
        if (cc_grpc_server_new(&o, &srv) < 0 || cc_grpc_server_register(srv, &svc, NULL) < 0)
                abort();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
                abort();
        if (cc_grpc_server_add_conn(srv, sv[0]) < 0)
                abort();
        /* Write the input while draining replies, then half-close and read to EOF. */
        size_t off = 0;
        bool wr_open = true;
        uint8_t buf[65536];
        size_t back = 0;
        for (;;) {
                struct pollfd p = {.fd = sv[1], .events = POLLIN | (wr_open ? POLLOUT : 0)};
                if (poll(&p, 1, 10000) <= 0)
                        abort(); /* the server hung */
                if (wr_open && (p.revents & POLLOUT)) {
                        ssize_t w =
                                off < size ? send(sv[1], data + off, size - off, MSG_NOSIGNAL) : 0;
                        if (w > 0)
                                off += (size_t)w;
                        if (off >= size || (w < 0 && errno != EAGAIN)) {
                                shutdown(sv[1], SHUT_WR);
                                wr_open = false;
                        }
                }
                if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
                        ssize_t n = recv(sv[1], buf, sizeof(buf), 0);
                        if (n == 0 || (n < 0 && errno != EAGAIN))
                                break;
                        if (n > 0 && getenv("FUZZ_GRPC_DEBUG"))
                                fwrite(buf, 1, (size_t)n, stdout);
                        if (n > 0)
                                back += (size_t)n;
                }
        }
        close(sv[1]);
        /* FUZZ_GRPC_DEBUG=1 shows how much each input got back (checking seeds). */
        if (getenv("FUZZ_GRPC_DEBUG"))
                fprintf(stderr, "%zu bytes in, %zu bytes back\n", size, back);
        return 0;
}
