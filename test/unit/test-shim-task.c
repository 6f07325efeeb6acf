/*
 * Unit tests: the shim's task service end to end in one process, with the `mock` hypervisor
 * backend, a fake agent (a ttrpc server on the mock's <run dir>/agent.sock) and a fake
 * containerd events service. containerd's side is a ttrpc client on a socketpair.
 *
 * Covered: a CRI-style pod (sandbox task + app container in one shim), guest pull from a
 * nydus-style rootfs mount (PullImage with the image name, then CreateContainer with the guest
 * rootfs), output drained before the exit is reported, events and their order, Shutdown ignored
 * while tasks remain, the VM's death turning every task into exit 255, a host rootfs refused
 * for a TEE profile with the guest-pull hint, Checkpoint answering Unimplemented, unknown ids
 * answering NotFound; the pod's resolv.conf in CreateSandbox.dns, host networking refused for
 * a TEE profile, network_model = user's interface and route sent before CreateSandbox.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include "cc/log.h"
#include "cc/ttrpc.h"

#include "containerd/events/task.pb-c.h"
#include "containerd/services/events/ttrpc/v1/events.pb-c.h"
#include "containerd/task/v2/image.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "hypervisor/mock/mock.h"
#include "kata/agent.pb-c.h"
#include "kata/health.pb-c.h"
#include "kata/image.pb-c.h"
#include "runtimeoptions/v1/config.pb-c.h"
#include "shim/shim.h"

/* ---- fake agent ------------------------------------------------------------------------------ */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static char calls[4096];
static char pulled[256], created_root[256];
static char created_devs[512]; /* CreateContainer's Devices: "type:id:container_path ..." */
static int exit_status = -1;   /* set by the test: the container's process exits */
static int reads;
static char topics[4096];

static void record(const char *what)
{
        pthread_mutex_lock(&lock);
        strncat(calls, what, sizeof(calls) - strlen(calls) - 2);
        strcat(calls, " ");
        pthread_mutex_unlock(&lock);
}

#define H(name)                                                                             \
        static int name(struct cc_ttrpc_call *call, void *ud, const ProtobufCMessage *req_, \
                        ProtobufCMessage *resp_, struct cc_error **err)

H(a_check)
{
        ((Grpc__HealthCheckResponse *)resp_)->status =
                GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
        return 0;
}

#define PLAIN(fn, name)       \
        H(fn)                 \
        {                     \
                record(name); \
                return 0;     \
        }
static char dns[512]; /* CreateSandboxRequest.dns, joined with '|' */

H(a_create_sandbox)
{
        const Grpc__CreateSandboxRequest *r = (const void *)req_;
        pthread_mutex_lock(&lock);
        dns[0] = '\0';
        for (size_t i = 0; i < r->n_dns; i++)
                snprintf(dns + strlen(dns), sizeof(dns) - strlen(dns), "%s%s", i ? "|" : "",
                         r->dns[i]);
        pthread_mutex_unlock(&lock);
        record("CreateSandbox");
        return 0;
}
static bool hold_destroy; /* DestroySandbox waits while set (test_sandbox_kill) */
H(a_destroy_sandbox)
{
        pthread_mutex_lock(&lock);
        while (hold_destroy)
                pthread_cond_wait(&cond, &lock);
        pthread_mutex_unlock(&lock);
        record("DestroySandbox");
        return 0;
}
PLAIN(a_start, "StartContainer")
PLAIN(a_remove, "RemoveContainer")
PLAIN(a_signal, "SignalProcess")
PLAIN(a_copy, "CopyFile")
PLAIN(a_resize, "TtyWinResize")
PLAIN(a_close_stdin, "CloseStdin")

/* ExecProcess: refused as the agent's policy refuses it. */
H(a_exec)
{
        record("ExecProcess");
        return cc_error_set_code(err, CC_GRPC_PERMISSION_DENIED,
                                 "ExecProcess denied by agent policy rule 'no-exec'");
}

/* UpdateContainer: the resources arrive translated from the OCI JSON. */
H(a_update)
{
        const Grpc__UpdateContainerRequest *r = (const void *)req_;
        char buf[64];
        snprintf(buf, sizeof(buf), "UpdateContainer:%lld",
                 r->resources && r->resources->memory ? (long long)r->resources->memory->limit
                                                      : -1);
        record(buf);
        return 0;
}

H(a_create)
{
        const Grpc__CreateContainerRequest *r = (const void *)req_;
        pthread_mutex_lock(&lock);
        snprintf(created_root, sizeof(created_root), "%s", r->oci->root->path);
        created_devs[0] = '\0';
        for (size_t i = 0; i < r->n_devices; i++)
                snprintf(created_devs + strlen(created_devs),
                         sizeof(created_devs) - strlen(created_devs), "%s:%s:%s ",
                         r->devices[i]->type, r->devices[i]->id, r->devices[i]->container_path);
        pthread_mutex_unlock(&lock);
        record("CreateContainer");
        return 0;
}

H(a_pull)
{
        const Grpc__PullImageRequest *r = (const void *)req_;
        pthread_mutex_lock(&lock);
        snprintf(pulled, sizeof(pulled), "%s for %s", r->image, r->container_id);
        pthread_mutex_unlock(&lock);
        ((Grpc__PullImageResponse *)resp_)->image_ref = cc_ttrpc_call_strdup(call, r->image);
        record("PullImage");
        return 0;
}

H(a_wait)
{
        pthread_mutex_lock(&lock);
        while (exit_status < 0)
                pthread_cond_wait(&cond, &lock);
        ((Grpc__WaitProcessResponse *)resp_)->status = exit_status;
        pthread_mutex_unlock(&lock);
        return 0;
}

/* First read: "hello\n"; then the stream ends only after the process exited and a delay, so
 * a shim that reported the exit before draining would be caught. */
H(a_read)
{
        pthread_mutex_lock(&lock);
        int n = reads++;
        while (n > 0 && exit_status < 0)
                pthread_cond_wait(&cond, &lock);
        pthread_mutex_unlock(&lock);
        if (n == 0) {
                Grpc__ReadStreamResponse *r = (void *)resp_;
                r->data.data = (uint8_t *)cc_ttrpc_call_strdup(call, "hello\n");
                r->data.len = 6;
                return 0;
        }
        if (n == 1) {
                usleep(200 * 1000);
                Grpc__ReadStreamResponse *r = (void *)resp_;
                r->data.data = (uint8_t *)cc_ttrpc_call_strdup(call, "bye\n");
                r->data.len = 4;
                return 0;
        }
        return cc_error_set(err, EIO, "EOF");
}

/* The pod network's calls: "UpdateInterface:name:mac:addr/mask", "UpdateRoutes:dest,gw,dev". */
H(a_update_interface)
{
        const Types__Interface *i = ((const Grpc__UpdateInterfaceRequest *)req_)->interface;
        char buf[256];
        snprintf(buf, sizeof(buf), "UpdateInterface:%s:%s:%s/%s", i ? i->name : "?",
                 i ? i->hwaddr : "?", i && i->n_ipaddresses ? i->ipaddresses[0]->address : "",
                 i && i->n_ipaddresses ? i->ipaddresses[0]->mask : "");
        record(buf);
        return 0;
}

H(a_update_routes)
{
        const Grpc__Routes *rs = ((const Grpc__UpdateRoutesRequest *)req_)->routes;
        char buf[256] = "UpdateRoutes";
        for (size_t i = 0; rs && i < rs->n_routes; i++)
                snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), ":%s,%s,%s",
                         rs->routes[i]->dest, rs->routes[i]->gateway, rs->routes[i]->device);
        record(buf);
        return 0;
}

#define AM(n, rq, rs, fn, ud)                   \
        {                                       \
                n, &rq##__descriptor, rs, fn, 0 \
        }
static const struct cc_ttrpc_method agent_methods[] = {
        AM("CreateSandbox", grpc__create_sandbox_request, NULL, a_create_sandbox, 0),
        AM("DestroySandbox", grpc__destroy_sandbox_request, NULL, a_destroy_sandbox, 0),
        AM("CreateContainer", grpc__create_container_request, NULL, a_create, 0),
        AM("StartContainer", grpc__start_container_request, NULL, a_start, 0),
        AM("RemoveContainer", grpc__remove_container_request, NULL, a_remove, 0),
        AM("SignalProcess", grpc__signal_process_request, NULL, a_signal, 0),
        AM("WaitProcess", grpc__wait_process_request, &grpc__wait_process_response__descriptor,
           a_wait, 0),
        AM("ReadStdout", grpc__read_stream_request, &grpc__read_stream_response__descriptor, a_read,
           0),
        AM("CopyFile", grpc__copy_file_request, NULL, a_copy, 0),
        AM("TtyWinResize", grpc__tty_win_resize_request, NULL, a_resize, 0),
        AM("ExecProcess", grpc__exec_process_request, NULL, a_exec, 0),
        AM("CloseStdin", grpc__close_stdin_request, NULL, a_close_stdin, 0),
        AM("UpdateContainer", grpc__update_container_request, NULL, a_update, 0),
        AM("UpdateInterface", grpc__update_interface_request, NULL, a_update_interface, 0),
        AM("UpdateRoutes", grpc__update_routes_request, NULL, a_update_routes, 0),
};
static const struct cc_ttrpc_method health_methods[] = {
        AM("Check", grpc__check_request, &grpc__health_check_response__descriptor, a_check, 0),
};
static const struct cc_ttrpc_method image_methods[] = {
        AM("PullImage", grpc__pull_image_request, &grpc__pull_image_response__descriptor, a_pull,
           0),
};
static const struct cc_ttrpc_service agent_svc = {"grpc.AgentService", agent_methods,
                                                  CC_ARRAY_SIZE(agent_methods)};
static const struct cc_ttrpc_service health_svc = {"grpc.Health", health_methods, 1};
static const struct cc_ttrpc_service image_svc = {"grpc.Image", image_methods, 1};

/* Records the topic of every forwarded event. */
H(e_forward)
{
        const Containerd__Services__Events__Ttrpc__V1__ForwardRequest *r = (const void *)req_;
        assert_true(r->envelope->timestamp && r->envelope->timestamp->seconds > 0);
        assert_string_equal(r->envelope->namespace_, "k8s.io");
        pthread_mutex_lock(&lock);
        strncat(topics, r->envelope->topic, sizeof(topics) - strlen(topics) - 2);
        strcat(topics, " ");
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
        return 0;
}
static const struct cc_ttrpc_method events_methods[] = {
        AM("Forward", containerd__services__events__ttrpc__v1__forward_request, NULL, e_forward, 0),
};
static const struct cc_ttrpc_service events_svc = {"containerd.services.events.ttrpc.v1.Events",
                                                   events_methods, 1};

/* ---- fixture ------------------------------------------------------------------------------- */

static char tmp[64];
static struct cc_ttrpc_server *agent_srv, *events_srv, *shim_srv;
static struct cc_ttrpc_client *client;
static struct shim *shim;

static void write_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

/* A bundle whose config.json has `extra` (JSON members, may be "") besides the basics. */
static char *bundle_spec(const char *id, const char *annotations, const char *extra)
{
        char *dir = NULL;
        assert_true(asprintf(&dir, "%s/%s", tmp, id) > 0);
        mkdir(dir, 0700);
        char path[256], spec[4096];
        snprintf(path, sizeof(path), "%s/config.json", dir);
        snprintf(spec, sizeof(spec),
                 "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"/bin/sh\"],\"cwd\":\"/\"},"
                 "\"root\":{\"path\":\"rootfs\"},%s%s\"annotations\":{%s}}",
                 extra, *extra ? "," : "", annotations);
        write_file(path, spec);
        return dir;
}

/* As ctr and CRI make them: a network namespace of its own (no path: a new, empty one). */
static char *bundle(const char *id, const char *annotations)
{
        return bundle_spec(id, annotations, "\"linux\":{\"namespaces\":[{\"type\":\"network\"}]}");
}

static int call(const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *rd, ProtobufCMessage **resp,
                struct cc_error **err)
{
        struct cc_ttrpc_call_opts o = {.timeout_ns = 30000000000ll};
        return cc_ttrpc_client_call(client, "containerd.task.v2.Task", method, req, rd, resp, &o,
                                    err);
}

static Google__Protobuf__Any options_any;
static uint8_t options_buf[512];

static int create(const char *id, const char *bundle_dir, Containerd__Types__Mount **rootfs,
                  size_t n_rootfs, const char *out, struct cc_error **err)
{
        Containerd__Task__V2__CreateTaskRequest req =
                CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
        req.id = (char *)id;
        req.bundle = (char *)bundle_dir;
        req.rootfs = rootfs;
        req.n_rootfs = n_rootfs;
        req.stdout = (char *)(out ? out : "");
        req.options = &options_any;
        ProtobufCMessage *resp = NULL;
        int r = call("Create", &req.base, &containerd__task__v2__create_task_response__descriptor,
                     &resp, err);
        if (resp)
                protobuf_c_message_free_unpacked(resp, NULL);
        return r;
}

static void set_config(const char *text)
{
        char path[128];
        snprintf(path, sizeof(path), "%s/configuration.toml", tmp);
        write_file(path, text);
        Runtimeoptions__V1__Options o = RUNTIMEOPTIONS__V1__OPTIONS__INIT;
        o.config_path = path;
        options_any = (Google__Protobuf__Any)GOOGLE__PROTOBUF__ANY__INIT;
        options_any.type_url = "runtimeoptions.v1.Options";
        options_any.value.data = options_buf;
        options_any.value.len = runtimeoptions__v1__options__pack(&o, options_buf);
}

static int setup(void **state)
{
        cc_log_set_level(CC_LOG_FATAL);
        calls[0] = topics[0] = pulled[0] = created_root[0] = created_devs[0] = '\0';
        exit_status = -1;
        reads = 0;
        hold_destroy = false;
        hv_mock_reset();
        snprintf(tmp, sizeof(tmp), "/tmp/test-shim-task.XXXXXX");
        assert_non_null(mkdtemp(tmp));
        char run[128], dir[160], path[256];
        snprintf(run, sizeof(run), "%s/run", tmp);
        setenv("CC_SHIM_RUN_DIR", run, 1);
        mkdir(run, 0700);
        /* The fake agent listens where the mock backend says the agent is. */
        char *vmdir = NULL;
        assert_int_equal(shim_vm_run_dir("k8s.io", "pod1", &vmdir), 0);
        snprintf(dir, sizeof(dir), "%s", vmdir);
        free(vmdir);
        mkdir(dir, 0700);
        snprintf(path, sizeof(path), "%s/agent.sock", dir);
        struct cc_ttrpc_server_options so = {0};
        assert_int_equal(cc_ttrpc_server_new(&so, &agent_srv), 0);
        assert_int_equal(cc_ttrpc_server_register(agent_srv, &agent_svc, NULL), 0);
        assert_int_equal(cc_ttrpc_server_register(agent_srv, &health_svc, NULL), 0);
        assert_int_equal(cc_ttrpc_server_register(agent_srv, &image_svc, NULL), 0);
        assert_int_equal(cc_ttrpc_server_listen(agent_srv, cc_unix_listen(path, 16)), 0);
        /* containerd's events socket. */
        snprintf(path, sizeof(path), "%s/events.sock", tmp);
        assert_int_equal(cc_ttrpc_server_new(&so, &events_srv), 0);
        assert_int_equal(cc_ttrpc_server_register(events_srv, &events_svc, NULL), 0);
        assert_int_equal(cc_ttrpc_server_listen(events_srv, cc_unix_listen(path, 16)), 0);
        /* The shim, and containerd's connection to it. */
        struct shim_options o = {.ns = "k8s.io",
                                 .address = "/run/containerd/containerd.sock",
                                 .ttrpc_address = path,
                                 .id = "pod1"};
        assert_int_equal(shim_new(&o, &shim), 0);
        assert_int_equal(cc_ttrpc_server_new(&so, &shim_srv), 0);
        assert_int_equal(shim_register(shim, shim_srv), 0);
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(cc_ttrpc_server_add_conn(shim_srv, sv[0]), 0);
        assert_int_equal(cc_ttrpc_client_new(sv[1], &client), 0);
        set_config("[hypervisor.qemu]\nbackend = \"mock\"\nkernel = \"/boot/none\"\n"
                   "[agent.kata]\ndial_timeout = 5\n");
        return 0;
}

static int teardown(void **state)
{
        cc_ttrpc_client_free(client);
        cc_ttrpc_server_free(shim_srv);
        shim_free(shim);
        cc_ttrpc_server_free(agent_srv);
        cc_ttrpc_server_free(events_srv);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
        assert_int_equal(system(cmd), 0);
        return 0;
}

static void wait_topics(const char *want)
{
        pthread_mutex_lock(&lock);
        for (int i = 0; i < 100 && !strstr(topics, want); i++) {
                pthread_mutex_unlock(&lock);
                usleep(50 * 1000);
                pthread_mutex_lock(&lock);
        }
        if (!strstr(topics, want))
                fail_msg("events '%s' lack '%s'", topics, want);
        pthread_mutex_unlock(&lock);
}

/* ---- the pod -----------------------------------------------------------------------------------
 */

static int simple(const char *method, const ProtobufCMessageDescriptor *d, const char *id,
                  struct cc_error **err)
{
        /* Start/Delete/Pause/Resume/Connect/Shutdown/Checkpoint requests start with id = 1. */
        ProtobufCMessage *m = calloc(1, d->sizeof_message);
        d->message_init(m);
        *(char **)((char *)m + d->fields[0].offset) = (char *)id;
        int r = call(method, m, NULL, NULL, err);
        free(m);
        return r;
}

static void read_file(const char *path, char *buf, size_t size)
{
        buf[0] = '\0';
        FILE *f = fopen(path, "r");
        if (!f)
                return;
        size_t n = fread(buf, 1, size - 1, f);
        buf[n] = '\0';
        fclose(f);
}

static void test_pod(void **state)
{
        struct cc_error *err = NULL;
        /* The pod's resolv.conf (CRI mounts it on /etc/resolv.conf): its resolver lines reach
         * CreateSandbox.dns, comments and other lines do not. */
        char resolv[160], extra[512];
        snprintf(resolv, sizeof(resolv), "%s/resolv.conf", tmp);
        write_file(resolv,
                   "# from the node\nnameserver 10.96.0.10\r\n  search ns1.svc.cluster.local "
                   "svc.cluster.local\nsortlist 10.0.0.0\noptions ndots:5  \n");
        snprintf(extra, sizeof(extra),
                 "\"linux\":{\"namespaces\":[{\"type\":\"network\"}]},\"mounts\":[{\"destination\":"
                 "\"/etc/"
                 "resolv.conf\",\"type\":\"bind\",\"source\":\"%s\",\"options\":[\"rbind\"]}]",
                 resolv);
        char *sb = bundle_spec("pod1",
                               "\"io.kubernetes.cri.container-type\":\"sandbox\","
                               "\"io.kubernetes.cri.sandbox-id\":\"pod1\"",
                               extra);
        assert_int_equal(create("pod1", sb, NULL, 0, NULL, &err), 0);
        char *mc = hv_mock_calls();
        assert_non_null(strstr(mc, "start:pod1"));
        free(mc);
        assert_non_null(strstr(calls, "CreateSandbox"));
        assert_string_equal(dns, "nameserver 10.96.0.10|search ns1.svc.cluster.local "
                                 "svc.cluster.local|options ndots:5");
        /* No network namespace path (a new, empty namespace): no interface calls. */
        assert_null(strstr(calls, "UpdateInterface"));
        assert_null(strstr(calls, "CreateContainer")); /* the pause process is the agent's */
        assert_int_equal(
                simple("Start", &containerd__task__v2__start_request__descriptor, "pod1", &err), 0);

        /* The CC fork's image pull delegation: forwarded to the agent, image_ref unchanged. */
        Containerd__Task__V2__PullImageRequest pr = CONTAINERD__TASK__V2__PULL_IMAGE_REQUEST__INIT;
        pr.image = "registry.local/enc:1";
        Containerd__Task__V2__PullImageResponse *presp = NULL;
        struct cc_ttrpc_call_opts po = {.timeout_ns = 30000000000ll};
        assert_int_equal(
                cc_ttrpc_client_call(client, "containerd.task.v2.Image", "PullImage", &pr.base,
                                     &containerd__task__v2__pull_image_response__descriptor,
                                     (ProtobufCMessage **)&presp, &po, &err),
                0);
        assert_string_equal(presp->image_ref, "registry.local/enc:1");
        assert_string_equal(pulled, "registry.local/enc:1 for ");
        protobuf_c_message_free_unpacked(&presp->base, NULL);

        /* A second sandbox in the same shim is refused. */
        char *sb2 = bundle("pod2", "\"io.kubernetes.cri.container-type\":\"sandbox\"");
        assert_true(create("pod2", sb2, NULL, 0, NULL, &err) < 0);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_FAILED_PRECONDITION);
        cc_error_free(err);
        err = NULL;

        /* An app container whose rootfs is a nydus guest-pull mount. */
        char *cb = bundle("app1", "\"io.kubernetes.cri.container-type\":\"container\","
                                  "\"io.kubernetes.cri.sandbox-id\":\"pod1\","
                                  "\"io.kubernetes.cri.image-name\":\"registry.local/app:1\"");
        Containerd__Types__Mount m = CONTAINERD__TYPES__MOUNT__INIT;
        char *opts[] = {"upperdir=/x",
                        "io.katacontainers.volume="
                        "eyJ2b2x1bWVfdHlwZSI6ImltYWdlX2d1ZXN0X3B1bGwiLCJzb3VyY2UiOiJkb2NrZXIuaW8vbG"
                        "licmFyeS9idXN5Ym94OmxhdGVzdCIsImltYWdlX3B1bGwiOnsibWV0YWRhdGEiOnt9fX0="};
        m.type = "fuse.nydus-overlayfs";
        m.source = "overlay";
        m.options = opts;
        m.n_options = 2;
        Containerd__Types__Mount *ms[] = {&m};
        char out[128];
        snprintf(out, sizeof(out), "%s/app1.out", tmp);
        assert_int_equal(create("app1", cb, ms, 1, out, &err), 0);
        /* The CRI image name wins over the volume's source (the join key with the pull). */
        assert_string_equal(pulled, "registry.local/app:1 for app1");
        assert_string_equal(created_root, "/run/kata-containers/shared/containers/app1/rootfs");
        assert_int_equal(
                simple("Start", &containerd__task__v2__start_request__descriptor, "app1", &err), 0);

        /* Update (OCI LinuxResources JSON), ResizePty, CloseIO (no stdin relay: direct). */
        static const char res[] = "{\"memory\":{\"limit\":1048576}}";
        Google__Protobuf__Any ra = GOOGLE__PROTOBUF__ANY__INIT;
        ra.type_url = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";
        ra.value.data = (uint8_t *)res;
        ra.value.len = strlen(res);
        Containerd__Task__V2__UpdateTaskRequest ur =
                CONTAINERD__TASK__V2__UPDATE_TASK_REQUEST__INIT;
        ur.id = "app1";
        ur.resources = &ra;
        assert_int_equal(call("Update", &ur.base, NULL, NULL, &err), 0);
        assert_non_null(strstr(calls, "UpdateContainer:1048576"));
        Containerd__Task__V2__ResizePtyRequest rp = CONTAINERD__TASK__V2__RESIZE_PTY_REQUEST__INIT;
        rp.id = "app1";
        rp.width = 80;
        rp.height = 24;
        assert_int_equal(call("ResizePty", &rp.base, NULL, NULL, &err), 0);
        assert_non_null(strstr(calls, "TtyWinResize"));
        Containerd__Task__V2__CloseIORequest cr = CONTAINERD__TASK__V2__CLOSE_IOREQUEST__INIT;
        cr.id = "app1";
        cr.stdin = true;
        assert_int_equal(call("CloseIO", &cr.base, NULL, NULL, &err), 0);
        assert_non_null(strstr(calls, "CloseStdin"));
        /* State of a running container. */
        Containerd__Task__V2__StateRequest sr = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
        sr.id = "app1";
        Containerd__Task__V2__StateResponse *st = NULL;
        assert_int_equal(call("State", &sr.base, &containerd__task__v2__state_response__descriptor,
                              (ProtobufCMessage **)&st, &err),
                         0);
        assert_int_equal(st->status, CONTAINERD__V1__TYPES__STATUS__RUNNING);
        assert_string_equal(st->stdout, out);
        protobuf_c_message_free_unpacked(&st->base, NULL);

        /* An exec the agent refuses (its policy): Start carries the agent's error, and the
         * exec counts as exited (255, no exit event): Wait answers at once (containerd waits
         * before Start), Kill says it finished (NotFound) without reaching the agent, Delete
         * removes it. An exec never started: Kill is FailedPrecondition, as the runc shim's;
         * either way containerd's WithProcessKill deletes at once instead of waiting for an
         * exit that never comes. */
        static const char pspec[] = "{\"args\":[\"/bin/true\"],\"cwd\":\"/\"}";
        Google__Protobuf__Any pa = GOOGLE__PROTOBUF__ANY__INIT;
        pa.type_url = "types.containerd.io/opencontainers/runtime-spec/1/Process";
        pa.value.data = (uint8_t *)pspec;
        pa.value.len = strlen(pspec);
        Containerd__Task__V2__ExecProcessRequest er =
                CONTAINERD__TASK__V2__EXEC_PROCESS_REQUEST__INIT;
        er.id = "app1";
        er.exec_id = "e1";
        er.spec = &pa;
        assert_int_equal(call("Exec", &er.base, NULL, NULL, &err), 0);
        er.exec_id = "e2";
        assert_int_equal(call("Exec", &er.base, NULL, NULL, &err), 0);
        Containerd__Task__V2__StartRequest sq = CONTAINERD__TASK__V2__START_REQUEST__INIT;
        sq.id = "app1";
        sq.exec_id = "e1";
        assert_true(call("Start", &sq.base, NULL, NULL, &err) < 0);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_PERMISSION_DENIED);
        assert_non_null(strstr(cc_error_message(err), "denied by agent policy rule 'no-exec'"));
        cc_error_free(err);
        err = NULL;
        Containerd__Task__V2__WaitRequest ew = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
        ew.id = "app1";
        ew.exec_id = "e1";
        Containerd__Task__V2__WaitResponse *ewr = NULL;
        assert_int_equal(call("Wait", &ew.base, &containerd__task__v2__wait_response__descriptor,
                              (ProtobufCMessage **)&ewr, &err),
                         0);
        assert_int_equal(ewr->exit_status, 255);
        protobuf_c_message_free_unpacked(&ewr->base, NULL);
        pthread_mutex_lock(&lock);
        calls[0] = '\0';
        pthread_mutex_unlock(&lock);
        Containerd__Task__V2__KillRequest kq = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
        kq.id = "app1";
        kq.exec_id = "e1";
        kq.signal = 9;
        kq.all = true;
        assert_true(call("Kill", &kq.base, NULL, NULL, &err) < 0);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_NOT_FOUND);
        cc_error_free(err);
        err = NULL;
        kq.exec_id = "e2";
        assert_true(call("Kill", &kq.base, NULL, NULL, &err) < 0);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_FAILED_PRECONDITION);
        assert_non_null(strstr(cc_error_message(err), "exec e2 of task app1: process not created"));
        cc_error_free(err);
        err = NULL;
        assert_null(strstr(calls, "SignalProcess"));
        Containerd__Task__V2__DeleteRequest dq = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
        dq.id = "app1";
        dq.exec_id = "e1";
        assert_int_equal(call("Delete", &dq.base, NULL, NULL, &err), 0);
        assert_true(call("Delete", &dq.base, NULL, NULL, &err) < 0);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_NOT_FOUND);
        cc_error_free(err);
        err = NULL;
        dq.exec_id = "e2";
        assert_int_equal(call("Delete", &dq.base, NULL, NULL, &err), 0);

        /* Checkpoint: Unimplemented; unknown ids: NotFound. */
        assert_true(simple("Checkpoint", &containerd__task__v2__checkpoint_task_request__descriptor,
                           "app1", &err) < 0);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_UNIMPLEMENTED);
        cc_error_free(err);
        err = NULL;
        assert_true(simple("Start", &containerd__task__v2__start_request__descriptor, "nope",
                           &err) < 0);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_NOT_FOUND);
        cc_error_free(err);
        err = NULL;

        /* The process exits 3: Wait answers after the output was drained ("bye" comes 200 ms
         * after the exit). */
        pthread_mutex_lock(&lock);
        exit_status = 3;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
        Containerd__Task__V2__WaitRequest wr = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
        wr.id = "app1";
        Containerd__Task__V2__WaitResponse *wresp = NULL;
        assert_int_equal(call("Wait", &wr.base, &containerd__task__v2__wait_response__descriptor,
                              (ProtobufCMessage **)&wresp, &err),
                         0);
        assert_int_equal(wresp->exit_status, 3);
        assert_true(wresp->exited_at && wresp->exited_at->seconds > 0);
        protobuf_c_message_free_unpacked(&wresp->base, NULL);
        char text[64];
        read_file(out, text, sizeof(text));
        assert_string_equal(text, "hello\nbye\n");

        /* Delete the container; Shutdown is ignored while the sandbox remains. */
        assert_int_equal(
                simple("Delete", &containerd__task__v2__delete_request__descriptor, "app1", &err),
                0);
        assert_int_equal(simple("Shutdown", &containerd__task__v2__shutdown_request__descriptor,
                                "app1", &err),
                         0);
        struct pollfd pf = {.fd = shim_exit_fd(shim), .events = POLLIN};
        assert_int_equal(poll(&pf, 1, 100), 0);
        wait_topics("/tasks/create /tasks/start /tasks/create /tasks/start /tasks/exec-added "
                    "/tasks/exec-added /tasks/delete /tasks/delete /tasks/exit /tasks/delete");

        /* The VM dies: the sandbox's Wait returns 255, then the pod can be deleted and the
         * shim asks to exit on Shutdown. */
        wr.id = "pod1";
        assert_non_null(shim_get_sandbox(shim));
        hv_mock_exit(shim_get_sandbox(shim)->vm, -1, 9);
        assert_int_equal(call("Wait", &wr.base, &containerd__task__v2__wait_response__descriptor,
                              (ProtobufCMessage **)&wresp, &err),
                         0);
        assert_int_equal(wresp->exit_status, 255);
        protobuf_c_message_free_unpacked(&wresp->base, NULL);
        assert_int_equal(
                simple("Delete", &containerd__task__v2__delete_request__descriptor, "pod1", &err),
                0);
        assert_int_equal(simple("Shutdown", &containerd__task__v2__shutdown_request__descriptor,
                                "pod1", &err),
                         0);
        assert_int_equal(poll(&pf, 1, 2000), 1);
        free(sb);
        free(sb2);
        free(cb);
}

/* A host rootfs for a TEE profile is refused with the guest-pull hint; nothing is left. */
static void test_tee_host_rootfs(void **state)
{
        struct cc_error *err = NULL;
        set_config("[hypervisor.qemu]\nbackend = \"mock\"\nkernel = \"/boot/none\"\n"
                   "confidential_guest = true\nsev_snp_guest = true\n");
        char *b = bundle("pod1", "");
        char rootfs[160];
        snprintf(rootfs, sizeof(rootfs), "%s/rootfs", b);
        mkdir(rootfs, 0755);
        write_file(strcat(rootfs, "/file"), "x");
        assert_true(create("pod1", b, NULL, 0, NULL, &err) < 0);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_FAILED_PRECONDITION);
        assert_non_null(strstr(cc_error_message(err), "guest-pull snapshotter"));
        assert_non_null(strstr(cc_error_message(err), "sev-snp"));
        cc_error_free(err);
        char *mc = hv_mock_calls();
        assert_non_null(strstr(mc, "stop:pod1")); /* the VM started for it is gone again */
        free(mc);
        free(b);
}

/* Host networking (no network namespace in the spec) for a TEE profile: refused with a clear
 * error before any VM starts. */
static void test_tee_host_network(void **state)
{
        struct cc_error *err = NULL;
        set_config("[hypervisor.qemu]\nbackend = \"mock\"\nkernel = \"/boot/none\"\n"
                   "confidential_guest = true\ntee = \"tdx\"\n");
        char *b = bundle_spec("pod1", "\"io.kubernetes.cri.container-type\":\"sandbox\"", "");
        assert_true(create("pod1", b, NULL, 0, NULL, &err) < 0);
        assert_non_null(strstr(cc_error_message(err), "host networking is not supported"));
        assert_non_null(strstr(cc_error_message(err), "tdx"));
        cc_error_free(err);
        err = NULL;
        char *mc = hv_mock_calls();
        assert_null(strstr(mc, "start:pod1"));
        free(mc);
        free(b);
}

/* network_model = user: QEMU's slirp NIC, configured in the guest as slirp expects, through
 * the same agent calls as a pod interface, before CreateSandbox. */
static void test_user_net(void **state)
{
        struct cc_error *err = NULL;
        set_config("[hypervisor.qemu]\nbackend = \"mock\"\nkernel = \"/boot/none\"\n"
                   "[agent.kata]\ndial_timeout = 5\n[runtime]\nnetwork_model = \"user\"\n");
        char *b = bundle("pod1", "\"io.kubernetes.cri.container-type\":\"sandbox\"");
        assert_int_equal(create("pod1", b, NULL, 0, NULL, &err), 0);
        char seen[sizeof(calls)];
        pthread_mutex_lock(&lock);
        memcpy(seen, calls, sizeof(seen));
        pthread_mutex_unlock(&lock);
        const char *want = "UpdateInterface:eth0:52:54:00:12:34:56:10.0.2.15/24 "
                           "UpdateRoutes:,10.0.2.2,eth0 CreateSandbox";
        if (!strstr(seen, want))
                fail_msg("agent calls '%s' lack '%s'", seen, want);
        free(b);
}

/* The agent channel breaks while the VM runs: the pod fails as a whole (VM stopped, every task
 * exits 255) instead of leaving tasks nobody can reach. Also: the pod annotation
 * io.katacontainers.config_path wins over the runtime options' ConfigPath when that
 * configuration's valid_config_paths allows the file (the handler's own is a QEMU one with a
 * kernel that does not exist, so the pod runs only if the annotation's file is used). */
static void test_agent_lost(void **state)
{
        struct cc_error *err = NULL;
        char good[128], handler[512];
        snprintf(good, sizeof(good), "%s/good.toml", tmp);
        write_file(good, "[hypervisor.qemu]\nbackend = \"mock\"\nkernel = \"/boot/none\"\n"
                         "[agent.kata]\ndial_timeout = 5\n");
        snprintf(handler, sizeof(handler),
                 "[hypervisor.qemu]\nkernel = \"/boot/none\"\n"
                 "[runtime]\nvalid_config_paths = [\"%s/*.toml\"]\n",
                 tmp);
        set_config(handler);
        char annos[512];
        snprintf(annos, sizeof(annos),
                 "\"io.kubernetes.cri.image-name\":\"registry.local/app:2\","
                 "\"io.katacontainers.config_path\":\"%s\"",
                 good);
        char *b = bundle("pod1", annos);
        assert_int_equal(create("pod1", b, NULL, 0, NULL, &err), 0);
        assert_string_equal(pulled, "registry.local/app:2 for pod1");
        assert_int_equal(
                simple("Start", &containerd__task__v2__start_request__descriptor, "pod1", &err), 0);
        usleep(100 * 1000); /* the monitor is in WaitProcess */
        /* Break the shim's end of the agent connection (the fd whose peer is agent.sock). */
        char *vmdir = NULL;
        assert_int_equal(shim_vm_run_dir("k8s.io", "pod1", &vmdir), 0);
        char sock[256];
        snprintf(sock, sizeof(sock), "%s/agent.sock", vmdir);
        free(vmdir);
        int broken = 0;
        for (int fd = 3; fd < 1024; fd++) {
                struct sockaddr_un sa;
                socklen_t l = sizeof(sa);
                if (getpeername(fd, (struct sockaddr *)&sa, &l) == 0 && sa.sun_family == AF_UNIX &&
                    strcmp(sa.sun_path, sock) == 0 && shutdown(fd, SHUT_RDWR) == 0)
                        broken++;
        }
        assert_true(broken >= 1);
        Containerd__Task__V2__WaitRequest wr = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
        wr.id = "pod1";
        Containerd__Task__V2__WaitResponse *wresp = NULL;
        assert_int_equal(call("Wait", &wr.base, &containerd__task__v2__wait_response__descriptor,
                              (ProtobufCMessage **)&wresp, &err),
                         0);
        assert_int_equal(wresp->exit_status, 255);
        protobuf_c_message_free_unpacked(&wresp->base, NULL);
        char *mc = hv_mock_calls();
        assert_non_null(strstr(mc, "stop:pod1"));
        free(mc);
        assert_int_equal(
                simple("Delete", &containerd__task__v2__delete_request__descriptor, "pod1", &err),
                0);
        /* Let the fake agent's parked handlers go, so its server can stop. */
        pthread_mutex_lock(&lock);
        exit_status = 0;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
        free(b);
}

/* StopPodSandbox's Kill of the sandbox answers at once, as a signal would (even while the
 * guest holds DestroySandbox); the watcher stops the VM (DestroySandbox, then the VMM), and the
 * exit follows: 128+9. Were the VM stopped
 * inside Kill, containerd's exit handler could delete the task and shut the shim down before
 * Kill's answer left, and StopPodSandbox failed with "ttrpc: closed". */
static void test_sandbox_kill(void **state)
{
        struct cc_error *err = NULL;
        char *b = bundle("pod1", "\"io.kubernetes.cri.container-type\":\"sandbox\"");
        assert_int_equal(create("pod1", b, NULL, 0, NULL, &err), 0);
        assert_int_equal(
                simple("Start", &containerd__task__v2__start_request__descriptor, "pod1", &err), 0);
        /* The guest holds DestroySandbox: Kill answers all the same. */
        hold_destroy = true;
        Containerd__Task__V2__KillRequest kq = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
        kq.id = "pod1";
        kq.signal = 9;
        assert_int_equal(call("Kill", &kq.base, NULL, NULL, &err), 0);
        /* Not stopped yet: the VMM's stop comes after DestroySandbox, which is still held. */
        char *mc = hv_mock_calls();
        assert_null(strstr(mc, "stop:pod1"));
        free(mc);
        pthread_mutex_lock(&lock);
        hold_destroy = false;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
        Containerd__Task__V2__WaitRequest wr = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
        wr.id = "pod1";
        Containerd__Task__V2__WaitResponse *wresp = NULL;
        assert_int_equal(call("Wait", &wr.base, &containerd__task__v2__wait_response__descriptor,
                              (ProtobufCMessage **)&wresp, &err),
                         0);
        assert_int_equal(wresp->exit_status, 137);
        protobuf_c_message_free_unpacked(&wresp->base, NULL);
        pthread_mutex_lock(&lock);
        bool destroyed = strstr(calls, "DestroySandbox") != NULL;
        pthread_mutex_unlock(&lock);
        assert_true(destroyed);
        mc = hv_mock_calls();
        assert_non_null(strstr(mc, "stop:pod1"));
        free(mc);
        assert_int_equal(
                simple("Delete", &containerd__task__v2__delete_request__descriptor, "pod1", &err),
                0);
        assert_int_equal(simple("Shutdown", &containerd__task__v2__shutdown_request__descriptor,
                                "pod1", &err),
                         0);
        struct pollfd pf = {.fd = shim_exit_fd(shim), .events = POLLIN};
        assert_int_equal(poll(&pf, 1, 2000), 1);
        free(b);
}

/* The publisher retries a Forward that failed (containerd restarting) and keeps the order. */
/* A pod's app container with devices (shim/devices.c): host character devices (what a privileged
 * container brings) fail Create before anything is pulled or attached. */
static void test_devices(void **state)
{
        struct cc_error *err = NULL;
        char *sb = bundle("pod1", "\"io.kubernetes.cri.container-type\":\"sandbox\","
                                  "\"io.kubernetes.cri.sandbox-id\":\"pod1\"");
        assert_int_equal(create("pod1", sb, NULL, 0, NULL, &err), 0);
        char *cb = bundle_spec(
                "priv1",
                "\"io.kubernetes.cri.container-type\":\"container\","
                "\"io.kubernetes.cri.sandbox-id\":\"pod1\","
                "\"io.kubernetes.cri.image-name\":\"registry.local/app:1\"",
                "\"linux\":{\"devices\":[{\"path\":\"/dev/null\",\"type\":\"c\",\"major\":1,"
                "\"minor\":3},{\"path\":\"/dev/kmsg\",\"type\":\"c\",\"major\":1,\"minor\":11},"
                "{\"path\":\"/dev/sda\",\"type\":\"b\",\"major\":8,\"minor\":0}]}");
        assert_true(create("priv1", cb, NULL, 0, NULL, &err) < 0);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_INVALID_ARGUMENT);
        assert_non_null(
                strstr(cc_error_message(err), "1 host character device (/dev/kmsg (c 1:11))"));
        assert_non_null(strstr(cc_error_message(err), "privileged_without_host_devices"));
        cc_error_free(err);
        err = NULL;
        assert_null(strstr(calls, "CreateContainer"));
        assert_string_equal(pulled, "");
        char *mc = hv_mock_calls();
        assert_null(strstr(mc, "disk"));
        free(mc);
        /* The id is free again and the pod still runs. */
        assert_int_equal(
                simple("Delete", &containerd__task__v2__delete_request__descriptor, "priv1", &err),
                -ENOENT);
        cc_error_free(err);
        free(cb);
        free(sb);
}

/* A block device of this host (the first /sys/dev/block entry whose node is in /dev): "M:m";
 * false when there is none. */
static bool host_block_device(char *buf, size_t size)
{
        DIR *d = opendir("/sys/dev/block");
        bool found = false;
        for (struct dirent *de; d && !found && (de = readdir(d));) {
                unsigned ma, mi;
                if (sscanf(de->d_name, "%u:%u", &ma, &mi) != 2)
                        continue;
                char *path = NULL;
                found = shim_blockdev_host_path("/sys", "/dev", ma, mi, &path, NULL) == 0;
                free(path);
                if (found)
                        snprintf(buf, size, "%u:%u", ma, mi);
        }
        if (d)
                closedir(d);
        return found;
}

/* An app container with a block device (read-only by its cgroup rule). */
static char *blk_bundle(const char *id, unsigned ma, unsigned mi)
{
        char extra[512];
        snprintf(extra, sizeof(extra),
                 "\"linux\":{\"devices\":[{\"path\":\"/dev/xvda\",\"type\":\"b\",\"major\":%u,"
                 "\"minor\":%u}],\"resources\":{\"devices\":[{\"allow\":false,\"access\":\"rwm\"},"
                 "{\"allow\":true,\"type\":\"b\",\"major\":%u,\"minor\":%u,\"access\":\"r\"}]}}",
                 ma, mi, ma, mi);
        return bundle_spec(id,
                           "\"io.kubernetes.cri.container-type\":\"container\","
                           "\"io.kubernetes.cri.sandbox-id\":\"pod1\","
                           "\"io.kubernetes.cri.image-name\":\"registry.local/app:1\"",
                           extra);
}

/* Hot-plug through the mock backend: the disk is attached once for two containers, named to
 * the agent by its serial, unplugged with the last of them; a failed hot-plug fails Create. */
static void test_devices_block(void **state)
{
        char dev[32];
        unsigned ma, mi;
        if (!host_block_device(dev, sizeof(dev)) || sscanf(dev, "%u:%u", &ma, &mi) != 2)
                skip();
        struct cc_error *err = NULL;
        char *sb = bundle("pod1", "\"io.kubernetes.cri.container-type\":\"sandbox\","
                                  "\"io.kubernetes.cri.sandbox-id\":\"pod1\"");
        assert_int_equal(create("pod1", sb, NULL, 0, NULL, &err), 0);
        char *b1 = blk_bundle("blk1", ma, mi), *b2 = blk_bundle("blk2", ma, mi);
        char *b3 = blk_bundle("blk3", ma, mi);
        assert_int_equal(create("blk1", b1, NULL, 0, NULL, &err), 0);
        assert_string_equal(created_devs, "blk:cc-blk-1:/dev/xvda ");
        assert_int_equal(create("blk2", b2, NULL, 0, NULL, &err), 0);
        assert_string_equal(created_devs, "blk:cc-blk-1:/dev/xvda ");
        char *mc = hv_mock_calls();
        assert_non_null(strstr(mc, "disk_add:pod1:cc-blk-1"));
        assert_null(strstr(strstr(mc, "disk_add:pod1:cc-blk-1") + 1, "disk_add"));
        free(mc);
        mc = hv_mock_disks(shim_get_sandbox(shim)->vm);
        assert_non_null(strstr(mc, "cc-blk-1"));
        free(mc);
        assert_int_equal(
                simple("Delete", &containerd__task__v2__delete_request__descriptor, "blk1", &err),
                0);
        mc = hv_mock_calls();
        assert_null(strstr(mc, "disk_remove"));
        free(mc);
        assert_int_equal(
                simple("Delete", &containerd__task__v2__delete_request__descriptor, "blk2", &err),
                0);
        mc = hv_mock_calls();
        assert_non_null(strstr(mc, "disk_remove:pod1:cc-blk-1"));
        free(mc);
        /* A hot-plug the VMM refuses fails Create with its reason; nothing stays attached. */
        hv_mock_fail_next("disk_add", ENOSPC);
        assert_true(create("blk3", b3, NULL, 0, NULL, &err) < 0);
        assert_non_null(strstr(cc_error_message(err), "container blk3: hot-plug /dev/"));
        cc_error_free(err);
        err = NULL;
        mc = hv_mock_disks(shim_get_sandbox(shim)->vm);
        assert_string_equal(mc, "");
        free(mc);
        free(b1);
        free(b2);
        free(b3);
        free(sb);
}

static void test_events_retry(void **state)
{
        char path[128];
        snprintf(path, sizeof(path), "%s/late-events.sock", tmp);
        struct shim_events *ev = NULL;
        assert_int_equal(shim_events_new(path, "k8s.io", &ev), 0);
        Containerd__Events__TaskOOM a = CONTAINERD__EVENTS__TASK_OOM__INIT;
        a.container_id = "c1";
        shim_events_publish(ev, "/tasks/oom", &a.base);
        Containerd__Events__TaskPaused b = CONTAINERD__EVENTS__TASK_PAUSED__INIT;
        b.container_id = "c1";
        shim_events_publish(ev, "/tasks/paused", &b.base);
        usleep(300 * 1000); /* the first attempt fails: nobody listens yet */
        pthread_mutex_lock(&lock);
        topics[0] = '\0';
        pthread_mutex_unlock(&lock);
        struct cc_ttrpc_server_options so = {0};
        struct cc_ttrpc_server *late = NULL;
        assert_int_equal(cc_ttrpc_server_new(&so, &late), 0);
        assert_int_equal(cc_ttrpc_server_register(late, &events_svc, NULL), 0);
        assert_int_equal(cc_ttrpc_server_listen(late, cc_unix_listen(path, 4)), 0);
        wait_topics("/tasks/oom /tasks/paused");
        shim_events_free(ev, 3000);
        cc_ttrpc_server_free(late);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_pod, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tee_host_rootfs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tee_host_network, setup, teardown),
                cmocka_unit_test_setup_teardown(test_user_net, setup, teardown),
                cmocka_unit_test_setup_teardown(test_agent_lost, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sandbox_kill, setup, teardown),
                cmocka_unit_test_setup_teardown(test_events_retry, setup, teardown),
                cmocka_unit_test_setup_teardown(test_devices, setup, teardown),
                cmocka_unit_test_setup_teardown(test_devices_block, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
