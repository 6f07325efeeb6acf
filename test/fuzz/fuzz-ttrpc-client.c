/*
 * Fuzzes the ttrpc client's response decoding: the input is what a hostile server (or a
 * hostile guest behind the agent channel) sends back. Two calls are made; each must return a
 * result or an error, never crash, leak or hang.
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cc/log.h"
#include "cc/ttrpc.h"
#include "google/protobuf/timestamp.pb-c.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        cc_log_set_level(CC_LOG_FATAL);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                abort();
        struct cc_ttrpc_client *c;
        if (cc_ttrpc_client_new(sv[0], &c) < 0)
                abort();
        while (size > 0) {
                ssize_t n = send(sv[1], data, size, MSG_NOSIGNAL);
                if (n <= 0)
                        break;
                data += n;
                size -= (size_t)n;
        }
        shutdown(sv[1], SHUT_WR);

        struct cc_ttrpc_call_opts o = {.timeout_ns = 200000000};
        Google__Protobuf__Timestamp in = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        for (int i = 0; i < 2; i++) {
                ProtobufCMessage *out = NULL;
                struct cc_error *err = NULL;
                if (cc_ttrpc_client_call(c, "cc.test.v1.Test", "Echo", &in.base,
                                         &google__protobuf__timestamp__descriptor, &out, &o,
                                         &err) == 0)
                        protobuf_c_message_free_unpacked(out, NULL);
                cc_error_free(err);
        }
        cc_ttrpc_client_free(c);
        close(sv[1]);
        return 0;
}
