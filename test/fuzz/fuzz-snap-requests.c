/*
 * Fuzzes the Snapshots service with hostile requests: the first input byte picks the method,
 * the rest is its protobuf body, sent through lib/grpc to a snapshotter whose state lives in
 * a temporary directory. Whatever arrives, the service answers with a status and stays up.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cc/grpc.h"

#include "snapshotter/snap.h"

static struct cc_grpc_server *srv;
static struct cc_grpc_client *cli;
static struct snap *snap;
static struct snap_config cfg;

static const char *const methods[] = {"Prepare", "View",   "Mounts", "Commit", "Remove",
                                      "Stat",    "Update", "List",   "Usage",  "Cleanup"};

static void cleanup_dir(void)
{
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cfg.root);
        if (system(cmd) != 0)
                fprintf(stderr, "cannot remove %s\n", cfg.root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        snap_config_init(&cfg);
        free(cfg.root);
        cfg.root = strdup("/tmp/fuzz-snap-XXXXXX");
        if (!mkdtemp(cfg.root))
                abort();
        atexit(cleanup_dir);
        /* Names "g" and "l" pin a mode; anything else is "policy". */
        cfg.names = calloc(2, sizeof(*cfg.names));
        cfg.names[0] = (struct snap_name_config){strdup("g"), SNAP_MODE_GUEST};
        cfg.names[1] = (struct snap_name_config){strdup("l"), SNAP_MODE_LOCAL};
        cfg.n_names = 2;
        struct cc_error *err = NULL;
        int sv[2];
        if (snap_open(&cfg, &snap, &err) < 0 || cc_grpc_server_new(NULL, &srv) < 0 ||
            cc_grpc_server_register(srv, &snap_grpc_service, snap) < 0 ||
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
            cc_grpc_server_add_conn(srv, sv[0]) < 0 || cc_grpc_client_new(sv[1], &cli) < 0)
                abort();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        char path[128];
        snprintf(path, sizeof(path), "/containerd.services.snapshots.v1.Snapshots/%s",
                 methods[data[0] % 10]);
        struct cc_grpc_stream *st;
        if (cc_grpc_client_start(cli, path, data + 1, size - 1, NULL, 0, 0, &st) < 0)
                abort();
        struct cc_error *err = NULL;
        int r = cc_grpc_client_wait(cli, st, &err);
        /* Every call ends with a status (never a dropped stream or connection). */
        if (r < 0 && cc_grpc_stream_status(st) < 0) {
                fprintf(stderr, "no status: %s\n", err ? err->msg : "?");
                abort();
        }
        cc_error_free(err);
        cc_grpc_stream_free(cli, st);
        return 0;
}
