/*
 * Unit tests: the generated protobuf-c code for the project's .proto files.
 *
 * The ttrpc vectors are the worked examples of reference/shim-v2-ttrpc.md section 3.9; they
 * check field numbers and wire types byte for byte. The round trips check that the bigger
 * messages (task create, Kata container create, snapshot prepare) survive pack/unpack intact
 * and re-encode to the same bytes. Objects whose .proto files share a base name
 * (containerd/events/task.proto and containerd/types/task.proto; containerd/task/v2/image.proto
 * and kata/image.proto) are used together here, so the link proves libcc.a keeps both.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* clang-format off: cmocka.h needs the headers above first. */
#include <cmocka.h>
/* clang-format on */

#include "containerd/events/task.pb-c.h"
#include "containerd/services/events/ttrpc/v1/events.pb-c.h"
#include "containerd/services/snapshots/v1/snapshots.pb-c.h"
#include "containerd/task/v2/image.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "containerd/types/mount.pb-c.h"
#include "containerd/types/task.pb-c.h"
#include "cri/api.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "kata/agent.pb-c.h"
#include "kata/health.pb-c.h"
#include "kata/image.pb-c.h"
#include "runtimeoptions/v1/config.pb-c.h"
#include "ttrpc/ttrpc.pb-c.h"

#define TTRPC_HEADER_LEN    10
#define TTRPC_TYPE_REQUEST  1
#define TTRPC_TYPE_RESPONSE 2

/* Packs msg into a fresh buffer; the caller frees it. */
static uint8_t *pack(const ProtobufCMessage *msg, size_t *ret_len)
{
        size_t len = protobuf_c_message_get_packed_size(msg);
        uint8_t *buf = malloc(len ? len : 1);
        assert_non_null(buf);
        assert_int_equal(protobuf_c_message_pack(msg, buf), len);
        *ret_len = len;
        return buf;
}

/* Prefixes data with a ttrpc frame header (big-endian length and stream id, type, flags 0). */
static uint8_t *ttrpc_frame(const uint8_t *data, size_t len, uint32_t stream, uint8_t type,
                            size_t *ret_len)
{
        uint8_t *frame = malloc(TTRPC_HEADER_LEN + len);
        assert_non_null(frame);
        frame[0] = (uint8_t)(len >> 24);
        frame[1] = (uint8_t)(len >> 16);
        frame[2] = (uint8_t)(len >> 8);
        frame[3] = (uint8_t)len;
        frame[4] = (uint8_t)(stream >> 24);
        frame[5] = (uint8_t)(stream >> 16);
        frame[6] = (uint8_t)(stream >> 8);
        frame[7] = (uint8_t)stream;
        frame[8] = type;
        frame[9] = 0;
        memcpy(frame + TTRPC_HEADER_LEN, data, len);
        *ret_len = TTRPC_HEADER_LEN + len;
        return frame;
}

/* Packs msg, unpacks it with its own descriptor, packs the copy and checks the bytes agree. */
static ProtobufCMessage *roundtrip(const ProtobufCMessage *msg)
{
        size_t len, len2;
        uint8_t *buf = pack(msg, &len);
        ProtobufCMessage *copy = protobuf_c_message_unpack(msg->descriptor, NULL, len, buf);
        assert_non_null(copy);
        uint8_t *buf2 = pack(copy, &len2);
        assert_int_equal(len2, len);
        assert_memory_equal(buf2, buf, len);
        free(buf2);
        free(buf);
        return copy;
}

/* Section 3.9: Connect with ConnectRequest{id:"abc"} on stream 1 with the namespace header. */
static void test_ttrpc_connect_request(void **state)
{
        /* clang-format off */
        static const uint8_t expected[] = {
                0x00, 0x00, 0x00, 0x4f, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00,
                0x0a, 0x17, 'c', 'o', 'n', 't', 'a', 'i', 'n', 'e', 'r', 'd', '.', 't', 'a', 's',
                'k', '.', 'v', '2', '.', 'T', 'a', 's', 'k',
                0x12, 0x07, 'C', 'o', 'n', 'n', 'e', 'c', 't',
                0x1a, 0x05, 0x0a, 0x03, 'a', 'b', 'c',
                0x2a, 0x24, 0x0a, 0x1a, 'c', 'o', 'n', 't', 'a', 'i', 'n', 'e', 'r', 'd', '-',
                'n', 'a', 'm', 'e', 's', 'p', 'a', 'c', 'e', '-', 't', 't', 'r', 'p', 'c',
                0x12, 0x06, 'k', '8', 's', '.', 'i', 'o',
        };
        /* clang-format on */
        Containerd__Task__V2__ConnectRequest connect = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
        connect.id = "abc";
        size_t payload_len;
        uint8_t *payload = pack(&connect.base, &payload_len);

        Ttrpc__KeyValue ns = TTRPC__KEY_VALUE__INIT;
        ns.key = "containerd-namespace-ttrpc";
        ns.value = "k8s.io";
        Ttrpc__KeyValue *metadata[] = {&ns};
        Ttrpc__Request req = TTRPC__REQUEST__INIT;
        req.service = "containerd.task.v2.Task";
        req.method = "Connect";
        req.payload.data = payload;
        req.payload.len = payload_len;
        req.n_metadata = 1;
        req.metadata = metadata;

        size_t data_len, frame_len;
        uint8_t *data = pack(&req.base, &data_len);
        uint8_t *frame = ttrpc_frame(data, data_len, 1, TTRPC_TYPE_REQUEST, &frame_len);
        assert_int_equal(frame_len, sizeof(expected));
        assert_memory_equal(frame, expected, sizeof(expected));

        /* And back: the server side decodes the envelope, then the payload. */
        Ttrpc__Request *got = ttrpc__request__unpack(NULL, sizeof(expected) - TTRPC_HEADER_LEN,
                                                     expected + TTRPC_HEADER_LEN);
        assert_non_null(got);
        assert_string_equal(got->service, "containerd.task.v2.Task");
        assert_string_equal(got->method, "Connect");
        assert_int_equal(got->timeout_nano, 0);
        assert_int_equal(got->n_metadata, 1);
        assert_string_equal(got->metadata[0]->key, "containerd-namespace-ttrpc");
        assert_string_equal(got->metadata[0]->value, "k8s.io");
        Containerd__Task__V2__ConnectRequest *c = containerd__task__v2__connect_request__unpack(
                NULL, got->payload.len, got->payload.data);
        assert_non_null(c);
        assert_string_equal(c->id, "abc");
        containerd__task__v2__connect_request__free_unpacked(c, NULL);
        ttrpc__request__free_unpacked(got, NULL);
        free(frame);
        free(data);
        free(payload);
}

/* Section 3.9: success response ConnectResponse{shim_pid:100, task_pid:200}, no status. */
static void test_ttrpc_connect_response(void **state)
{
        static const uint8_t expected[] = {0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x01, 0x02,
                                           0x00, 0x12, 0x05, 0x08, 0x64, 0x10, 0xc8, 0x01};
        Containerd__Task__V2__ConnectResponse cr = CONTAINERD__TASK__V2__CONNECT_RESPONSE__INIT;
        cr.shim_pid = 100;
        cr.task_pid = 200;
        size_t payload_len;
        uint8_t *payload = pack(&cr.base, &payload_len);

        Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
        resp.payload.data = payload;
        resp.payload.len = payload_len;
        size_t data_len, frame_len;
        uint8_t *data = pack(&resp.base, &data_len);
        uint8_t *frame = ttrpc_frame(data, data_len, 1, TTRPC_TYPE_RESPONSE, &frame_len);
        assert_int_equal(frame_len, sizeof(expected));
        assert_memory_equal(frame, expected, sizeof(expected));

        Ttrpc__Response *got = ttrpc__response__unpack(NULL, sizeof(expected) - TTRPC_HEADER_LEN,
                                                       expected + TTRPC_HEADER_LEN);
        assert_non_null(got);
        assert_null(got->status);
        Containerd__Task__V2__ConnectResponse *c = containerd__task__v2__connect_response__unpack(
                NULL, got->payload.len, got->payload.data);
        assert_non_null(c);
        assert_int_equal(c->shim_pid, 100);
        assert_int_equal(c->task_pid, 200);
        assert_string_equal(c->version, "");
        containerd__task__v2__connect_response__free_unpacked(c, NULL);
        ttrpc__response__free_unpacked(got, NULL);
        free(frame);
        free(data);
        free(payload);
}

/* Section 3.9: error response on stream 3, NotFound "task abc: not found". */
static void test_ttrpc_not_found_response(void **state)
{
        /* clang-format off */
        static const uint8_t expected[] = {
                0x00, 0x00, 0x00, 0x19, 0x00, 0x00, 0x00, 0x03, 0x02, 0x00,
                0x0a, 0x17, 0x08, 0x05, 0x12, 0x13, 't', 'a', 's', 'k', ' ', 'a', 'b', 'c', ':',
                ' ', 'n', 'o', 't', ' ', 'f', 'o', 'u', 'n', 'd',
        };
        /* clang-format on */
        Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;
        status.code = 5;
        status.message = "task abc: not found";
        Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
        resp.status = &status;
        size_t data_len, frame_len;
        uint8_t *data = pack(&resp.base, &data_len);
        uint8_t *frame = ttrpc_frame(data, data_len, 3, TTRPC_TYPE_RESPONSE, &frame_len);
        assert_int_equal(frame_len, sizeof(expected));
        assert_memory_equal(frame, expected, sizeof(expected));

        Ttrpc__Response *got = ttrpc__response__unpack(NULL, sizeof(expected) - TTRPC_HEADER_LEN,
                                                       expected + TTRPC_HEADER_LEN);
        assert_non_null(got);
        assert_non_null(got->status);
        assert_int_equal(got->status->code, 5);
        assert_string_equal(got->status->message, "task abc: not found");
        assert_int_equal(got->payload.len, 0);
        ttrpc__response__free_unpacked(got, NULL);
        free(frame);
        free(data);
}

/* CreateTaskRequest with two rootfs mounts and runtimeoptions.v1.Options in an Any. */
static void test_create_task_roundtrip(void **state)
{
        Runtimeoptions__V1__Options opts = RUNTIMEOPTIONS__V1__OPTIONS__INIT;
        opts.config_path = "/opt/confidential-containers/share/defaults/kata-containers/"
                           "configuration-qemu-tdx.toml";
        size_t opts_len;
        uint8_t *opts_buf = pack(&opts.base, &opts_len);
        Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
        any.type_url = "runtimeoptions.v1.Options";
        any.value.data = opts_buf;
        any.value.len = opts_len;

        char *lower_opts[] = {"index=off", "lowerdir=/l2:/l1"};
        char *bind_opts[] = {"rbind", "ro"};
        Containerd__Types__Mount overlay = CONTAINERD__TYPES__MOUNT__INIT;
        overlay.type = "overlay";
        overlay.source = "overlay";
        overlay.n_options = 2;
        overlay.options = lower_opts;
        Containerd__Types__Mount bind = CONTAINERD__TYPES__MOUNT__INIT;
        bind.type = "bind";
        bind.source = "/var/lib/x";
        bind.target = "/x";
        bind.n_options = 2;
        bind.options = bind_opts;
        Containerd__Types__Mount *rootfs[] = {&overlay, &bind};

        Containerd__Task__V2__CreateTaskRequest req =
                CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
        req.id = "sandbox-1";
        req.bundle = "/run/containerd/io.containerd.runtime.v2.task/k8s.io/sandbox-1";
        req.n_rootfs = 2;
        req.rootfs = rootfs;
        req.terminal = 1;
        req.stdin = "/run/fifo/in";
        req.stdout = "/run/fifo/out";
        req.stderr = "/run/fifo/err";
        req.options = &any;

        /* Spot-check the start of the encoding: field 1 "sandbox-1". */
        size_t len;
        uint8_t *buf = pack(&req.base, &len);
        static const uint8_t head[] = {0x0a, 0x09, 's', 'a', 'n', 'd', 'b', 'o', 'x', '-', '1'};
        assert_memory_equal(buf, head, sizeof(head));
        free(buf);

        Containerd__Task__V2__CreateTaskRequest *got =
                (Containerd__Task__V2__CreateTaskRequest *)roundtrip(&req.base);
        assert_string_equal(got->id, "sandbox-1");
        assert_string_equal(got->bundle, req.bundle);
        assert_int_equal(got->n_rootfs, 2);
        assert_string_equal(got->rootfs[0]->type, "overlay");
        assert_string_equal(got->rootfs[0]->target, "");
        assert_int_equal(got->rootfs[0]->n_options, 2);
        assert_string_equal(got->rootfs[0]->options[1], "lowerdir=/l2:/l1");
        assert_string_equal(got->rootfs[1]->target, "/x");
        assert_string_equal(got->rootfs[1]->options[0], "rbind");
        assert_true(got->terminal);
        assert_string_equal(got->stderr, "/run/fifo/err");
        assert_string_equal(got->checkpoint, "");
        assert_non_null(got->options);
        assert_string_equal(got->options->type_url, "runtimeoptions.v1.Options");
        Runtimeoptions__V1__Options *o = runtimeoptions__v1__options__unpack(
                NULL, got->options->value.len, got->options->value.data);
        assert_non_null(o);
        assert_string_equal(o->config_path, opts.config_path);
        assert_string_equal(o->type_url, "");
        runtimeoptions__v1__options__free_unpacked(o, NULL);
        protobuf_c_message_free_unpacked(&got->base, NULL);
        free(opts_buf);
}

/* Kata CreateContainerRequest carrying an OCI spec, storage and a device. */
static void test_kata_create_container_roundtrip(void **state)
{
        char *args[] = {"/bin/sh", "-c", "echo hi"};
        char *env[] = {"PATH=/usr/bin:/bin", "TERM=xterm"};
        Grpc__User user = GRPC__USER__INIT;
        user.uid = 1000;
        user.gid = 1000;
        Grpc__Process process = GRPC__PROCESS__INIT;
        process.user = &user;
        process.n_args = 3;
        process.args = args;
        process.n_env = 2;
        process.env = env;
        process.cwd = "/";
        process.oomscoreadj = -998;
        Grpc__Root root = GRPC__ROOT__INIT;
        root.path = "/run/kata-containers/c1/rootfs";
        root.readonly = 1;
        char *proc_opts[] = {"nosuid", "noexec", "nodev"};
        Grpc__Mount proc = GRPC__MOUNT__INIT;
        proc.destination = "/proc";
        proc.source = "proc";
        proc.type = "proc";
        proc.n_options = 3;
        proc.options = proc_opts;
        Grpc__Mount *mounts[] = {&proc};
        Grpc__Spec__AnnotationsEntry image = GRPC__SPEC__ANNOTATIONS_ENTRY__INIT;
        image.key = "io.kubernetes.cri.image-name";
        image.value = "docker.io/library/busybox:latest";
        Grpc__Spec__AnnotationsEntry *annotations[] = {&image};
        Grpc__LinuxNamespace pidns = GRPC__LINUX_NAMESPACE__INIT;
        pidns.type = "pid";
        Grpc__LinuxNamespace netns = GRPC__LINUX_NAMESPACE__INIT;
        netns.type = "network";
        netns.path = "/var/run/netns/cni-1";
        Grpc__LinuxNamespace *namespaces[] = {&pidns, &netns};
        Grpc__LinuxMemory memory = GRPC__LINUX_MEMORY__INIT;
        memory.limit = 256 << 20;
        Grpc__LinuxResources resources = GRPC__LINUX_RESOURCES__INIT;
        resources.memory = &memory;
        Grpc__Linux linux_cfg = GRPC__LINUX__INIT;
        linux_cfg.resources = &resources;
        linux_cfg.cgroupspath = "/kubepods/pod1/c1";
        linux_cfg.n_namespaces = 2;
        linux_cfg.namespaces = namespaces;
        Grpc__Spec spec = GRPC__SPEC__INIT;
        spec.version = "1.0.2";
        spec.process = &process;
        spec.root = &root;
        spec.hostname = "pod1";
        spec.n_mounts = 1;
        spec.mounts = mounts;
        spec.n_annotations = 1;
        spec.annotations = annotations;
        spec.linux_ = &linux_cfg;

        char *storage_opts[] = {"ro"};
        Grpc__Storage storage = GRPC__STORAGE__INIT;
        storage.driver = "image_guest_pull";
        storage.source = "docker.io/library/busybox:latest";
        storage.fstype = "overlay";
        storage.n_options = 1;
        storage.options = storage_opts;
        storage.mount_point = "/run/kata-containers/c1/rootfs";
        Grpc__Storage *storages[] = {&storage};
        Grpc__Device dev = GRPC__DEVICE__INIT;
        dev.id = "vda";
        dev.type = "blk";
        dev.vm_path = "/dev/vda";
        dev.container_path = "/dev/xvda";
        Grpc__Device *devices[] = {&dev};

        Grpc__CreateContainerRequest req = GRPC__CREATE_CONTAINER_REQUEST__INIT;
        req.container_id = "c1";
        req.exec_id = "c1";
        req.n_devices = 1;
        req.devices = devices;
        req.n_storages = 1;
        req.storages = storages;
        req.oci = &spec;
        req.sandbox_pidns = 1;

        Grpc__CreateContainerRequest *got = (Grpc__CreateContainerRequest *)roundtrip(&req.base);
        assert_string_equal(got->container_id, "c1");
        assert_string_equal(got->exec_id, "c1");
        assert_true(got->sandbox_pidns);
        assert_int_equal(got->n_storages, 1);
        assert_string_equal(got->storages[0]->driver, "image_guest_pull");
        assert_string_equal(got->storages[0]->options[0], "ro");
        assert_int_equal(got->n_devices, 1);
        assert_string_equal(got->devices[0]->vm_path, "/dev/vda");
        const Grpc__Spec *s = got->oci;
        assert_non_null(s);
        assert_string_equal(s->version, "1.0.2");
        assert_int_equal(s->process->n_args, 3);
        assert_string_equal(s->process->args[2], "echo hi");
        assert_string_equal(s->process->env[1], "TERM=xterm");
        assert_int_equal(s->process->user->uid, 1000);
        assert_int_equal(s->process->oomscoreadj, -998);
        assert_true(s->root->readonly);
        assert_string_equal(s->mounts[0]->options[2], "nodev");
        assert_int_equal(s->n_annotations, 1);
        assert_string_equal(s->annotations[0]->key, "io.kubernetes.cri.image-name");
        assert_string_equal(s->annotations[0]->value, "docker.io/library/busybox:latest");
        assert_non_null(s->linux_);
        assert_string_equal(s->linux_->cgroupspath, "/kubepods/pod1/c1");
        assert_int_equal(s->linux_->n_namespaces, 2);
        assert_string_equal(s->linux_->namespaces[1]->path, "/var/run/netns/cni-1");
        assert_int_equal(s->linux_->resources->memory->limit, 256 << 20);
        protobuf_c_message_free_unpacked(&got->base, NULL);
}

/* Snapshots PrepareSnapshotRequest with the CRI remote-snapshot labels. */
static void test_snapshots_prepare_roundtrip(void **state)
{
        Containerd__Services__Snapshots__V1__PrepareSnapshotRequest__LabelsEntry target =
                CONTAINERD__SERVICES__SNAPSHOTS__V1__PREPARE_SNAPSHOT_REQUEST__LABELS_ENTRY__INIT;
        target.key = "containerd.io/snapshot.ref";
        target.value = "sha256:0123";
        Containerd__Services__Snapshots__V1__PrepareSnapshotRequest__LabelsEntry image =
                CONTAINERD__SERVICES__SNAPSHOTS__V1__PREPARE_SNAPSHOT_REQUEST__LABELS_ENTRY__INIT;
        image.key = "containerd.io/snapshot/cri.image-ref";
        image.value = "docker.io/library/busybox:latest";
        Containerd__Services__Snapshots__V1__PrepareSnapshotRequest__LabelsEntry *labels[] = {
                &target, &image};
        Containerd__Services__Snapshots__V1__PrepareSnapshotRequest req =
                CONTAINERD__SERVICES__SNAPSHOTS__V1__PREPARE_SNAPSHOT_REQUEST__INIT;
        req.snapshotter = "cc";
        req.key = "extract-1-sha256:0123";
        req.parent = "sha256:abcd";
        req.n_labels = 2;
        req.labels = labels;

        /* A map entry is an embedded message {key=1, value=2} in field 4. */
        size_t len;
        uint8_t *buf = pack(&req.base, &len);
        static const uint8_t head[] = {0x0a, 0x02, 'c', 'c'};
        assert_memory_equal(buf, head, sizeof(head));
        free(buf);

        Containerd__Services__Snapshots__V1__PrepareSnapshotRequest *got =
                (Containerd__Services__Snapshots__V1__PrepareSnapshotRequest *)roundtrip(&req.base);
        assert_string_equal(got->snapshotter, "cc");
        assert_string_equal(got->key, "extract-1-sha256:0123");
        assert_string_equal(got->parent, "sha256:abcd");
        assert_int_equal(got->n_labels, 2);
        assert_string_equal(got->labels[0]->key, "containerd.io/snapshot.ref");
        assert_string_equal(got->labels[0]->value, "sha256:0123");
        assert_string_equal(got->labels[1]->key, "containerd.io/snapshot/cri.image-ref");
        assert_string_equal(got->labels[1]->value, "docker.io/library/busybox:latest");
        protobuf_c_message_free_unpacked(&got->base, NULL);
}

/*
 * An exit event inside a Forward envelope (section 1.10), plus messages from the files that
 * share base names with others, so the archive must hold both objects of each pair.
 */
static void test_events_and_shared_basenames(void **state)
{
        Containerd__Events__TaskExit exit_ev = CONTAINERD__EVENTS__TASK_EXIT__INIT;
        exit_ev.container_id = "c";
        exit_ev.id = "c";
        exit_ev.pid = 1;
        size_t ev_len;
        uint8_t *ev = pack(&exit_ev.base, &ev_len);
        static const uint8_t ev_bytes[] = {0x0a, 0x01, 'c', 0x12, 0x01, 'c', 0x18, 0x01};
        assert_int_equal(ev_len, sizeof(ev_bytes));
        assert_memory_equal(ev, ev_bytes, sizeof(ev_bytes));

        Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
        any.type_url = "containerd.events.TaskExit";
        any.value.data = ev;
        any.value.len = ev_len;
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        ts.seconds = 1700000000;
        Containerd__Services__Events__Ttrpc__V1__Envelope env =
                CONTAINERD__SERVICES__EVENTS__TTRPC__V1__ENVELOPE__INIT;
        env.timestamp = &ts;
        env.namespace_ = "k8s.io";
        env.topic = "/tasks/exit";
        env.event = &any;
        Containerd__Services__Events__Ttrpc__V1__ForwardRequest fwd =
                CONTAINERD__SERVICES__EVENTS__TTRPC__V1__FORWARD_REQUEST__INIT;
        fwd.envelope = &env;
        Containerd__Services__Events__Ttrpc__V1__ForwardRequest *got =
                (Containerd__Services__Events__Ttrpc__V1__ForwardRequest *)roundtrip(&fwd.base);
        assert_string_equal(got->envelope->topic, "/tasks/exit");
        assert_string_equal(got->envelope->namespace_, "k8s.io");
        assert_int_equal(got->envelope->timestamp->seconds, 1700000000);
        assert_string_equal(got->envelope->event->type_url, "containerd.events.TaskExit");
        protobuf_c_message_free_unpacked(&got->base, NULL);
        free(ev);

        /* containerd/types/task.proto next to containerd/events/task.proto. */
        Containerd__V1__Types__ProcessInfo pi = CONTAINERD__V1__TYPES__PROCESS_INFO__INIT;
        pi.pid = 42;
        protobuf_c_message_free_unpacked(roundtrip(&pi.base), NULL);
        assert_int_equal(CONTAINERD__V1__TYPES__STATUS__PAUSING, 5);

        /* containerd/task/v2/image.proto next to kata/image.proto. */
        Containerd__Task__V2__PullImageRequest shim_pull =
                CONTAINERD__TASK__V2__PULL_IMAGE_REQUEST__INIT;
        shim_pull.image = "docker.io/library/busybox:latest";
        Grpc__PullImageRequest agent_pull = GRPC__PULL_IMAGE_REQUEST__INIT;
        agent_pull.image = shim_pull.image;
        agent_pull.container_id = "c1";
        size_t a_len, b_len;
        uint8_t *a = pack(&shim_pull.base, &a_len);
        uint8_t *b = pack(&agent_pull.base, &b_len);
        /* Field 1 is the same in both, so the agent request starts with the shim request. */
        assert_true(b_len > a_len);
        assert_memory_equal(a, b, a_len);
        free(a);
        free(b);
        assert_string_equal(grpc__image__descriptor.name, "grpc.Image");
        assert_string_equal(containerd__task__v2__image__descriptor.name,
                            "containerd.task.v2.Image");
}

/* Descriptors carry the wire names the ttrpc/gRPC layers dispatch on and type URLs. */
static void test_service_names(void **state)
{
        assert_string_equal(containerd__task__v2__task__descriptor.name, "containerd.task.v2.Task");
        assert_int_equal(containerd__task__v2__task__descriptor.n_methods, 17);
        assert_string_equal(containerd__services__events__ttrpc__v1__events__descriptor.name,
                            "containerd.services.events.ttrpc.v1.Events");
        assert_string_equal(containerd__services__snapshots__v1__snapshots__descriptor.name,
                            "containerd.services.snapshots.v1.Snapshots");
        assert_string_equal(grpc__agent_service__descriptor.name, "grpc.AgentService");
        assert_string_equal(grpc__health__descriptor.name, "grpc.Health");
        assert_string_equal(runtime__v1__runtime_service__descriptor.name,
                            "runtime.v1.RuntimeService");
        assert_string_equal(runtime__v1__image_service__descriptor.name, "runtime.v1.ImageService");
        const ProtobufCMethodDescriptor *m = protobuf_c_service_descriptor_get_method_by_name(
                &grpc__agent_service__descriptor, "CreateContainer");
        assert_non_null(m);
        assert_ptr_equal(m->input, &grpc__create_container_request__descriptor);
        /* A message descriptor's name is its full name: the bare type URL containerd uses. */
        assert_string_equal(runtimeoptions__v1__options__descriptor.name,
                            "runtimeoptions.v1.Options");
        assert_string_equal(containerd__events__task_exit__descriptor.name,
                            "containerd.events.TaskExit");
        assert_string_equal(containerd__events__task_exit__descriptor.short_name, "TaskExit");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ttrpc_connect_request),
                cmocka_unit_test(test_ttrpc_connect_response),
                cmocka_unit_test(test_ttrpc_not_found_response),
                cmocka_unit_test(test_create_task_roundtrip),
                cmocka_unit_test(test_kata_create_container_roundtrip),
                cmocka_unit_test(test_snapshots_prepare_roundtrip),
                cmocka_unit_test(test_events_and_shared_basenames),
                cmocka_unit_test(test_service_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
