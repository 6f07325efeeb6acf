/*
 * Fuzzes the ttrpc server's frame decoder and request decoding: the input is the byte stream a
 * hostile client sends on one connection (any number of frames, possibly truncated or
 * oversized). The server must answer or close, never crash, leak or hang.
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cc/log.h"
#include "cc/ttrpc.h"
#include "ttrpc-test-service.h"

static struct cc_ttrpc_server *srv;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        cc_log_set_level(CC_LOG_FATAL);
        if (cc_ttrpc_server_new(NULL, &srv) < 0 ||
            cc_ttrpc_server_register(srv, &test_ttrpc_service_quick, NULL) < 0)
                abort();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                abort();
        if (cc_ttrpc_server_add_conn(srv, sv[0]) < 0)
                abort();
        /* The socket buffer holds the whole input (max_len is 64 KiB); the server may close
         * early, so a short write is fine. */
        while (size > 0) {
                ssize_t n = send(sv[1], data, size, MSG_NOSIGNAL);
                if (n <= 0)
                        break;
                data += n;
                size -= (size_t)n;
        }
        shutdown(sv[1], SHUT_WR);
        char buf[4096];
        while (read(sv[1], buf, sizeof(buf)) > 0)
                ;
        close(sv[1]);
        /* Wait until the server has released the connection, so no work outlives the input. */
        while (cc_ttrpc_server_n_conns(srv) > 0)
                usleep(50);
        return 0;
}
