/*
 * Interop peer for the real Go ttrpc of containerd 1.6 (test/integration/ttrpc-interop.sh).
 *
 *   ttrpc-task-peer client SOCKET   calls containerd-shim-runc-v2's containerd.task.v2.Task:
 *                                   Connect, State of an unknown id (expects NotFound), 32
 *                                   concurrent Connects on one connection, then Shutdown.
 *   ttrpc-task-peer server SOCKET   serves a small containerd.task.v2.Task (State, Connect,
 *                                   Delete, Shutdown) for `ctr shim` (a Go ttrpc client) to call;
 *                                   task "fake" exists, any other id is NotFound. Runs until
 *                                   SIGTERM/SIGINT or a Shutdown call.
 * Exit status 0 when every check held; each failed check is printed.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cc/log.h"
#include "cc/ttrpc.h"
#include "containerd/task/v2/shim.pb-c.h"

#define TASK "containerd.task.v2.Task"

static int failures;

#define CHECK(cond, ...)                                                                           \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        failures++;                                                                \
                        fprintf(stderr, "FAIL: " __VA_ARGS__);                                     \
                        fputc('\n', stderr);                                                       \
                }                                                                                  \
        } while (0)

static const struct cc_ttrpc_kv ns_md[] = {{"containerd-namespace-ttrpc", "cctest"}};
static const struct cc_ttrpc_call_opts call_opts = {
        .timeout_ns = 5000000000LL, .md = ns_md, .n_md = 1};

static void *connect_thread(void *arg)
{
        struct cc_ttrpc_client *c = arg;
        for (int i = 0; i < 50; i++) {
                Containerd__Task__V2__ConnectRequest req = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
                req.id = "t";
                Containerd__Task__V2__ConnectResponse *resp = NULL;
                struct cc_error *err = NULL;
                int r = cc_ttrpc_client_call(c, TASK, "Connect", &req.base,
                                             &containerd__task__v2__connect_response__descriptor,
                                             (ProtobufCMessage **)&resp, &call_opts, &err);
                CHECK(r == 0 && resp && resp->shim_pid > 0, "concurrent Connect: %d %s", r,
                      cc_error_message(err));
                if (resp)
                        protobuf_c_message_free_unpacked(&resp->base, NULL);
                cc_error_free(err);
        }
        return NULL;
}

static int run_client(const char *path)
{
        int fd = cc_unix_connect(path);
        if (fd < 0) {
                fprintf(stderr, "connect %s: %s\n", path, strerror(-fd));
                return 1;
        }
        struct cc_ttrpc_client *c;
        if (cc_ttrpc_client_new(fd, &c) < 0)
                return 1;

        Containerd__Task__V2__ConnectRequest creq = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
        creq.id = "interop";
        Containerd__Task__V2__ConnectResponse *cresp = NULL;
        struct cc_error *err = NULL;
        int r = cc_ttrpc_client_call(c, TASK, "Connect", &creq.base,
                                     &containerd__task__v2__connect_response__descriptor,
                                     (ProtobufCMessage **)&cresp, &call_opts, &err);
        CHECK(r == 0, "Connect: %s", cc_error_message(err));
        if (r == 0) {
                printf("Connect: shim_pid=%u task_pid=%u version=%s\n", cresp->shim_pid,
                       cresp->task_pid, cresp->version);
                CHECK(cresp->shim_pid > 0, "Connect: shim_pid is 0");
                protobuf_c_message_free_unpacked(&cresp->base, NULL);
        }
        cc_error_free(err);
        err = NULL;

        Containerd__Task__V2__StateRequest sreq = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
        sreq.id = "no-such-task";
        Containerd__Task__V2__StateResponse *sresp = NULL;
        r = cc_ttrpc_client_call(c, TASK, "State", &sreq.base,
                                 &containerd__task__v2__state_response__descriptor,
                                 (ProtobufCMessage **)&sresp, &call_opts, &err);
        printf("State(no-such-task): r=%d code=%s message=%s\n", r,
               cc_grpc_code_name(cc_error_grpc_code(err)), cc_error_message(err));
        CHECK(r == -ENOENT, "State of an unknown id gave %d, want -ENOENT", r);
        CHECK(err && cc_error_grpc_code(err) == CC_GRPC_NOT_FOUND, "State: code is not NotFound");
        cc_error_free(err);
        err = NULL;

        /* An rpc the runc shim does not have: the Go server's own Unimplemented. */
        r = cc_ttrpc_client_call_raw(c, TASK, "NoSuchMethod", NULL, 0, NULL, NULL, &call_opts,
                                     &err);
        printf("NoSuchMethod: r=%d code=%s message=%s\n", r,
               cc_grpc_code_name(cc_error_grpc_code(err)), cc_error_message(err));
        CHECK(r == -EOPNOTSUPP, "unknown method gave %d, want -EOPNOTSUPP", r);
        cc_error_free(err);
        err = NULL;

        pthread_t t[32];
        for (int i = 0; i < 32; i++)
                pthread_create(&t[i], NULL, connect_thread, c);
        for (int i = 0; i < 32; i++)
                pthread_join(t[i], NULL);
        printf("32 threads x 50 concurrent Connect calls: done\n");

        Containerd__Task__V2__ShutdownRequest shreq = CONTAINERD__TASK__V2__SHUTDOWN_REQUEST__INIT;
        shreq.id = "interop";
        r = cc_ttrpc_client_call(c, TASK, "Shutdown", &shreq.base, NULL, NULL, &call_opts, &err);
        /* The shim may exit before it answers; both are a shutdown. */
        printf("Shutdown: r=%d %s\n", r, r ? cc_error_message(err) : "");
        cc_error_free(err);
        cc_ttrpc_client_free(c);
        return failures ? 1 : 0;
}

/* ---- the fake task service ------------------------------------------------------------ */

static volatile sig_atomic_t stop;

static int task_state(struct cc_ttrpc_call *call, void *ud, const ProtobufCMessage *reqm,
                      ProtobufCMessage *respm, struct cc_error **err)
{
        const Containerd__Task__V2__StateRequest *req = (const void *)reqm;
        Containerd__Task__V2__StateResponse *resp = (void *)respm;
        if (strcmp(req->id, "fake") != 0)
                return cc_error_set(err, ENOENT, "task %s: not found", req->id);
        const char *ns = cc_ttrpc_call_metadata(call, "containerd-namespace-ttrpc");
        resp->id = cc_ttrpc_call_strdup(call, req->id);
        resp->bundle = cc_ttrpc_call_printf(call, "/bundle/%s", ns ? ns : "none");
        resp->pid = 4242;
        resp->status = CONTAINERD__V1__TYPES__STATUS__RUNNING;
        return 0;
}

static int task_connect(struct cc_ttrpc_call *call, void *ud, const ProtobufCMessage *reqm,
                        ProtobufCMessage *respm, struct cc_error **err)
{
        Containerd__Task__V2__ConnectResponse *resp = (void *)respm;
        resp->shim_pid = (uint32_t)getpid();
        resp->task_pid = 4242;
        resp->version = "cc-test";
        return 0;
}

static int task_delete(struct cc_ttrpc_call *call, void *ud, const ProtobufCMessage *reqm,
                       ProtobufCMessage *respm, struct cc_error **err)
{
        const Containerd__Task__V2__DeleteRequest *req = (const void *)reqm;
        Containerd__Task__V2__DeleteResponse *resp = (void *)respm;
        /* `ctr shim delete` sends no id: it means the shim's own task. */
        if (*req->id && strcmp(req->id, "fake") != 0)
                return cc_error_set(err, ENOENT, "task %s: not found", req->id);
        resp->pid = 4242;
        resp->exit_status = 137;
        return 0;
}

static int task_shutdown(struct cc_ttrpc_call *call, void *ud, const ProtobufCMessage *reqm,
                         ProtobufCMessage *respm, struct cc_error **err)
{
        stop = 1;
        return 0;
}

static const struct cc_ttrpc_method task_methods[] = {
        {"State", &containerd__task__v2__state_request__descriptor,
         &containerd__task__v2__state_response__descriptor, task_state, CC_TTRPC_METHOD_INLINE},
        {"Connect", &containerd__task__v2__connect_request__descriptor,
         &containerd__task__v2__connect_response__descriptor, task_connect,
         CC_TTRPC_METHOD_INLINE},
        {"Delete", &containerd__task__v2__delete_request__descriptor,
         &containerd__task__v2__delete_response__descriptor, task_delete, 0},
        {"Shutdown", &containerd__task__v2__shutdown_request__descriptor, NULL, task_shutdown,
         CC_TTRPC_METHOD_INLINE},
};

static const struct cc_ttrpc_service task_service = {
        .name = TASK, .methods = task_methods, .n_methods = 4};

static void on_signal(int sig)
{
        stop = 1;
}

static int run_server(const char *path)
{
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
        signal(SIGPIPE, SIG_IGN);
        struct cc_ttrpc_server *srv;
        struct cc_ttrpc_server_options o = {.require_same_user = true};
        if (cc_ttrpc_server_new(&o, &srv) < 0 || cc_ttrpc_server_register(srv, &task_service, NULL) < 0)
                return 1;
        int lfd = cc_unix_listen(path, 128);
        if (lfd < 0) {
                fprintf(stderr, "listen %s: %s\n", path, strerror(-lfd));
                return 1;
        }
        if (cc_ttrpc_server_listen(srv, lfd) < 0)
                return 1;
        printf("serving %s\n", path);
        fflush(stdout);
        while (!stop)
                pause();
        cc_ttrpc_server_free(srv);
        unlink(path);
        return 0;
}

int main(int argc, char **argv)
{
        if (argc != 3) {
                fprintf(stderr, "usage: %s client|server SOCKET\n", argv[0]);
                return 2;
        }
        if (strcmp(argv[1], "client") == 0)
                return run_client(argv[2]);
        if (strcmp(argv[1], "server") == 0)
                return run_server(argv[2]);
        fprintf(stderr, "unknown mode %s\n", argv[1]);
        return 2;
}
