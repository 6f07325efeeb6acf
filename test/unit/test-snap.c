/*
 * Unit tests of the snapshotter library: overlay semantics and error codes, guest-pull
 * placeholders and mounts, mode selection and the shared-base-layer hazard, filters, label
 * updates, the orphan sweep, and the gRPC service end to end over a socketpair.
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cc/grpc.h"

#include "containerd/services/snapshots/v1/snapshots.pb-c.h"
#include "snapshotter/snap.h"

struct fx {
        char dir[64];
        struct snap_config cfg;
        struct snap *s;
};

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));
        strcpy(f->dir, "/tmp/test-snap-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snap_config_init(&f->cfg);
        free(f->cfg.root);
        assert_true(asprintf(&f->cfg.root, "%s/root", f->dir) > 0);
        /* "guest" and "local" names; everything else by policy. */
        f->cfg.names = calloc(2, sizeof(*f->cfg.names));
        f->cfg.names[0] = (struct snap_name_config){strdup("g"), SNAP_MODE_GUEST};
        f->cfg.names[1] = (struct snap_name_config){strdup("l"), SNAP_MODE_LOCAL};
        f->cfg.n_names = 2;
        f->cfg.local_images = calloc(2, sizeof(char *));
        f->cfg.local_images[0] = strdup("*/pause:*");
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(snap_open(&f->cfg, &f->s, &err), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;
        snap_close(f->s);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
        assert_int_equal(system(cmd), 0);
        snap_config_clear(&f->cfg);
        free(f);
        return 0;
}

static struct snap_labels labels(const char *k1, const char *v1, const char *k2, const char *v2,
                                 const char *k3, const char *v3)
{
        struct snap_labels l = {0};
        if (k1)
                snap_labels_set(&l, k1, v1);
        if (k2)
                snap_labels_set(&l, k2, v2);
        if (k3)
                snap_labels_set(&l, k3, v3);
        return l;
}

static void prep(struct fx *f, const char *ns, const char *key, const char *parent,
                 struct snap_labels *l, bool view, int want, int want_code, struct snap_mounts *ret)
{
        _cleanup_error_ struct cc_error *err = NULL;
        struct snap_mounts m = {0};
        struct snap_labels none = {0};
        int r = snap_prepare(f->s, ns, key, parent, l ? l : &none, view, &m, &err);
        if (r != want)
                fail_msg("prepare %s: %d (%s), want %d", key, r, err ? cc_error_message(err) : "",
                         want);
        if (want_code >= 0)
                assert_int_equal(cc_error_grpc_code(err), want_code);
        if (ret)
                *ret = m;
        else
                snap_mounts_clear(&m);
}

static void commit(struct fx *f, const char *ns, const char *name, const char *key, int want)
{
        _cleanup_error_ struct cc_error *err = NULL;
        struct snap_labels none = {0};
        int r = snap_commit(f->s, ns, name, key, &none, &err);
        if (r != want)
                fail_msg("commit %s: %d (%s)", key, r, err ? cc_error_message(err) : "");
}

static void test_overlay(void **state)
{
        struct fx *f = *state;
        struct snap_mounts m;
        prep(f, "l", "a", "", NULL, false, 0, -1, &m);
        assert_int_equal(m.n, 1);
        assert_string_equal(m.v[0].type, "bind");
        assert_string_equal(m.v[0].options[0], "rw");
        assert_string_equal(m.v[0].options[1], "rbind");
        snap_mounts_clear(&m);
        /* Write something so Commit has a usage to record. */
        char p[256];
        snprintf(p, sizeof(p), "%s/root/snapshots/1/fs/file", f->dir);
        FILE *fp = fopen(p, "w");
        fputs("0123456789", fp);
        fclose(fp);
        prep(f, "l", "a", "", NULL, false, -EEXIST, CC_GRPC_ALREADY_EXISTS, NULL);
        prep(f, "l", "b", "a", NULL, false, -EINVAL, CC_GRPC_INVALID_ARGUMENT, NULL);
        prep(f, "l", "b", "nope", NULL, false, -ENOENT, CC_GRPC_NOT_FOUND, NULL);
        commit(f, "l", "a-c", "a", 0);
        commit(f, "l", "a-c2", "a-c", -EBUSY); /* not active: FailedPrecondition */
        commit(f, "l", "x", "missing", -ENOENT);

        _cleanup_error_ struct cc_error *err = NULL;
        int64_t size = 0, inodes = 0;
        assert_int_equal(snap_usage(f->s, "l", "a-c", &size, &inodes, &err), 0);
        assert_int_equal(inodes, 2); /* fs and file */
        assert_true(size > 0);

        prep(f, "l", "b", "a-c", NULL, false, 0, -1, NULL);
        commit(f, "l", "b-c", "b", 0);
        prep(f, "l", "c", "b-c", NULL, false, 0, -1, &m);
        assert_string_equal(m.v[0].type, "overlay");
        char want[512];
        snprintf(want, sizeof(want), "lowerdir=%s/root/snapshots/2/fs:%s/root/snapshots/1/fs",
                 f->dir, f->dir);
        size_t k = 0;
        while (m.v[0].options[k + 1])
                k++;
        assert_string_equal(m.v[0].options[k], want);
        snap_mounts_clear(&m);
        /* A view of one layer is a read-only bind of that layer. */
        prep(f, "l", "v", "a-c", NULL, true, 0, -1, &m);
        assert_string_equal(m.v[0].type, "bind");
        assert_string_equal(m.v[0].options[0], "ro");
        snap_mounts_clear(&m);

        /* Keyspaces are isolated: "other" sees none of it. */
        struct snap_info info;
        assert_int_equal(snap_stat(f->s, "other", "a-c", &info, &err), -ENOENT);
        assert_int_equal(snap_stat(f->s, "l", "a-c", &info, &err), 0);
        assert_int_equal(info.kind, SNAP_KIND_COMMITTED);
        assert_string_equal(info.parent, "");
        snap_info_clear(&info);

        assert_int_equal(snap_remove(f->s, "l", "a-c", &err), -EBUSY);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_FAILED_PRECONDITION);
        assert_int_equal(snap_remove(f->s, "l", "nope", &err), -ENOENT);
        assert_int_equal(snap_remove(f->s, "l", "v", &err), 0);
        assert_int_equal(snap_remove(f->s, "l", "c", &err), 0);
        assert_int_equal(snap_remove(f->s, "l", "b-c", &err), 0);
        assert_int_equal(snap_remove(f->s, "l", "a-c", &err), 0);
        /* Ids are never reused. */
        prep(f, "l", "d", "", NULL, false, 0, -1, &m);
        snprintf(want, sizeof(want), "%s/root/snapshots/5/fs", f->dir);
        assert_string_equal(m.v[0].source, want);
        snap_mounts_clear(&m);
        snprintf(p, sizeof(p), "%s/root/snapshots/1", f->dir);
        assert_int_equal(access(p, F_OK), -1);
}

static char *decode_volume(const char *opt)
{
        const char *b64 = opt + strlen("io.katacontainers.volume=");
        char cmd[8192];
        snprintf(cmd, sizeof(cmd), "echo '%s' | base64 -d", b64);
        FILE *p = popen(cmd, "r");
        static char out[8192];
        size_t n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = '\0';
        pclose(p);
        return out;
}

static void test_guest_pull(void **state)
{
        struct fx *f = *state;
        const char *img = "registry.local/cc/app:1";
        struct snap_labels l1 = labels(SNAP_LABEL_TARGET, "sha256:l1", SNAP_LABEL_IMAGE_REF, img,
                                       SNAP_LABEL_LAYER_DIGEST, "sha256:d1");
        struct snap_labels l2 = labels(SNAP_LABEL_TARGET, "sha256:l2", SNAP_LABEL_IMAGE_REF, img,
                                       SNAP_LABEL_LAYER_DIGEST, "sha256:d2");
        /* Layer unpacks answer AlreadyExists and leave committed placeholders. */
        prep(f, "g", "extract-1 sha256:l1", "", &l1, false, -EEXIST, CC_GRPC_ALREADY_EXISTS, NULL);
        prep(f, "g", "extract-2 sha256:l1", "", &l1, false, -EEXIST, CC_GRPC_ALREADY_EXISTS, NULL);
        prep(f, "g", "extract-3 sha256:l2", "sha256:l1", &l2, false, -EEXIST,
             CC_GRPC_ALREADY_EXISTS, NULL);
        _cleanup_error_ struct cc_error *err = NULL;
        struct snap_info info;
        assert_int_equal(snap_stat(f->s, "g", "sha256:l2", &info, &err), 0);
        assert_int_equal(info.kind, SNAP_KIND_COMMITTED);
        assert_string_equal(info.parent, "sha256:l1");
        assert_string_equal(snap_labels_get(&info.labels, SNAP_LABEL_TARGET), "sha256:l2");
        assert_string_equal(snap_labels_get(&info.labels, SNAP_LABEL_GUEST), "true");
        snap_info_clear(&info);
        int64_t size = -1, inodes = -1;
        assert_int_equal(snap_usage(f->s, "g", "sha256:l2", &size, &inodes, &err), 0);
        assert_int_equal(size, 0);

        /* The container rootfs: one guest-pull mount naming the image. */
        struct snap_mounts m;
        prep(f, "g", "k8s.io/5/ctr", "sha256:l2", NULL, false, 0, -1, &m);
        assert_int_equal(m.n, 1);
        assert_string_equal(m.v[0].type, "fuse.nydus-overlayfs");
        assert_string_equal(m.v[0].source, "overlay");
        const char *vol = NULL;
        for (size_t i = 0; m.v[0].options[i]; i++)
                if (strncmp(m.v[0].options[i], "io.katacontainers.volume=", 25) == 0)
                        vol = m.v[0].options[i];
        assert_non_null(vol);
        json_object *j = json_tokener_parse(decode_volume(vol));
        assert_non_null(j);
        json_object *v;
        assert_true(json_object_object_get_ex(j, "volume_type", &v));
        assert_string_equal(json_object_get_string(v), "image_guest_pull");
        assert_true(json_object_object_get_ex(j, "source", &v));
        assert_string_equal(json_object_get_string(v), img);
        json_object *pull, *md;
        assert_true(json_object_object_get_ex(j, "image_pull", &pull));
        assert_true(json_object_object_get_ex(pull, "metadata", &md));
        assert_true(json_object_object_get_ex(md, SNAP_LABEL_LAYER_DIGEST, &v));
        assert_string_equal(json_object_get_string(v), "sha256:d2");
        json_object_put(j);
        snap_mounts_clear(&m);
        /* Mounts returns the same. */
        assert_int_equal(snap_get_mounts(f->s, "g", "k8s.io/5/ctr", &m, &err), 0);
        assert_string_equal(m.v[0].type, "fuse.nydus-overlayfs");
        snap_mounts_clear(&m);

        /* A committed guest rootfs keeps its children on the guest path. */
        commit(f, "p", "x", "k8s.io/5/ctr", -ENOENT); /* other keyspace */
        commit(f, "g", "k8s.io/6/committed", "k8s.io/5/ctr", 0);
        prep(f, "g", "k8s.io/7/child", "k8s.io/6/committed", NULL, false, 0, -1, &m);
        assert_string_equal(m.v[0].type, "fuse.nydus-overlayfs");
        snap_mounts_clear(&m);

        /* The guest name refuses an unpack without CRI labels (annotations disabled). */
        struct snap_labels bare = labels(SNAP_LABEL_TARGET, "sha256:l9", NULL, NULL, NULL, NULL);
        prep(f, "g", "extract-9 sha256:l9", "", &bare, false, -EBUSY, CC_GRPC_FAILED_PRECONDITION,
             NULL);
        /* The local name unpacks normally even with CRI labels. */
        prep(f, "l", "extract-4 sha256:l1", "", &l1, false, 0, -1, NULL);
        snap_labels_clear(&l1);
        snap_labels_clear(&l2);
        snap_labels_clear(&bare);
}

static void test_policy_and_hazard(void **state)
{
        struct fx *f = *state;
        /* Policy name "p": CRI pulls are guest by default, pause images local. */
        struct snap_labels g1 =
                labels(SNAP_LABEL_TARGET, "sha256:base", SNAP_LABEL_IMAGE_REF,
                       "registry.local/secret:1", SNAP_LABEL_LAYER_DIGEST, "sha256:b");
        prep(f, "p", "extract-1 sha256:base", "", &g1, false, -EEXIST, CC_GRPC_ALREADY_EXISTS,
             NULL);
        struct snap_labels pause =
                labels(SNAP_LABEL_TARGET, "sha256:pause", SNAP_LABEL_IMAGE_REF,
                       "registry.k8s.io/pause:3.6", SNAP_LABEL_LAYER_DIGEST, "sha256:p");
        prep(f, "p", "extract-2 sha256:pause", "", &pause, false, 0, -1, NULL);
        commit(f, "p", "sha256:pause", "extract-2 sha256:pause", 0);
        /* A pull without CRI labels (ctr, image.Unpack) is local. */
        struct snap_labels plain =
                labels(SNAP_LABEL_TARGET, "sha256:plain", NULL, NULL, NULL, NULL);
        prep(f, "p", "extract-3 sha256:plain", "", &plain, false, 0, -1, NULL);

        /* The 1.6 hazard: a local image whose base layer is a guest placeholder. */
        struct snap_labels local2 =
                labels(SNAP_LABEL_TARGET, "sha256:top", SNAP_LABEL_IMAGE_REF,
                       "registry.k8s.io/pause:3.7", SNAP_LABEL_LAYER_DIGEST, "sha256:t");
        prep(f, "p", "extract-4 sha256:top", "sha256:base", &local2, false, -EBUSY,
             CC_GRPC_FAILED_PRECONDITION, NULL);
        /* ... also when image.Unpack prepares the layer without the snapshot.ref label. */
        prep(f, "p", "default/7/extract-123 sha256:top", "sha256:base", NULL, false, -EBUSY,
             CC_GRPC_FAILED_PRECONDITION, NULL);
        /* ... and a sandbox annotated local on a guest chain. */
        struct snap_labels sb_local = labels(SNAP_LABEL_MODE, "local", NULL, NULL, NULL, NULL);
        prep(f, "p", "k8s.io/9/sandbox", "sha256:base", &sb_local, false, -EBUSY,
             CC_GRPC_FAILED_PRECONDITION, NULL);
        /* A sandbox annotated guest gets the guest-pull mount on a local pause chain. */
        struct snap_labels sb_guest = labels(SNAP_LABEL_MODE, "guest", NULL, NULL, NULL, NULL);
        struct snap_mounts m;
        prep(f, "p", "k8s.io/10/sandbox", "sha256:pause", &sb_guest, false, 0, -1, &m);
        assert_string_equal(m.v[0].type, "fuse.nydus-overlayfs");
        snap_mounts_clear(&m);
        /* An unannotated container on the local pause chain stays local. */
        prep(f, "p", "k8s.io/11/sandbox", "sha256:pause", NULL, false, 0, -1, &m);
        assert_string_equal(m.v[0].type, "overlay");
        snap_mounts_clear(&m);
        struct snap_labels *all[] = {&g1, &pause, &plain, &local2, &sb_local, &sb_guest};
        for (size_t i = 0; i < 6; i++)
                snap_labels_clear(all[i]);
}

static int collect(const struct snap_info *info, void *ud)
{
        char *buf = ud;
        strcat(buf, info->name);
        strcat(buf, ";");
        return 0;
}

static void test_list_update(void **state)
{
        struct fx *f = *state;
        struct snap_labels l =
                labels("containerd.io/snapshot.ref", "sha256:abc", "a", "1", NULL, NULL);
        prep(f, "l", "k1", "", &l, false, 0, -1, NULL);
        commit(f, "l", "sha256:abc", "k1", 0);
        _cleanup_error_ struct cc_error *err = NULL;
        /* Commit replaces labels: set them again through Update with an empty mask. */
        struct snap_info info;
        assert_int_equal(snap_update(f->s, "l", "sha256:abc", &l, NULL, 0, &info, &err), 0);
        snap_info_clear(&info);
        prep(f, "l", "k2", "sha256:abc", NULL, false, 0, -1, NULL);
        char buf[256] = "";
        const char *flt[] = {"labels.\"containerd.io/snapshot.ref\"==sha256:abc,parent==\"\""};
        assert_int_equal(snap_list(f->s, "l", flt, 1, collect, buf, &err), 0);
        assert_string_equal(buf, "sha256:abc;");
        buf[0] = '\0';
        const char *flt2[] = {"kind==active", "name~=^sha"};
        assert_int_equal(snap_list(f->s, "l", flt2, 2, collect, buf, &err), 0);
        assert_string_equal(buf, "sha256:abc;k2;");
        const char *bad[] = {"labels.=="};
        assert_int_equal(snap_list(f->s, "l", bad, 1, collect, buf, &err), -EINVAL);

        /* Masks: labels.<k> without a value deletes; other fields are refused. */
        struct snap_labels upd = labels("b", "2", NULL, NULL, NULL, NULL);
        const char *paths[] = {"labels.b", "labels.a"};
        assert_int_equal(snap_update(f->s, "l", "sha256:abc", &upd, paths, 2, &info, &err), 0);
        assert_string_equal(snap_labels_get(&info.labels, "b"), "2");
        assert_null(snap_labels_get(&info.labels, "a"));
        snap_info_clear(&info);
        const char *badp[] = {"parent"};
        assert_int_equal(snap_update(f->s, "l", "sha256:abc", &upd, badp, 1, &info, &err), -EINVAL);
        assert_int_equal(snap_update(f->s, "l", "nope", &upd, NULL, 0, &info, &err), -ENOENT);
        snap_labels_clear(&upd);
        snap_labels_clear(&l);

        /* Label size limit. */
        char big[5000];
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        struct snap_labels huge = labels("k", big, NULL, NULL, NULL, NULL);
        prep(f, "l", "k3", "", &huge, false, -EINVAL, CC_GRPC_INVALID_ARGUMENT, NULL);
        snap_labels_clear(&huge);
}

static void test_sweep(void **state)
{
        struct fx *f = *state;
        prep(f, "l", "a", "", NULL, false, 0, -1, NULL);
        /* What a crash leaves: a renamed dir whose row rolled back, and a temporary. */
        char p[256];
        snprintf(p, sizeof(p), "%s/root/snapshots/77/fs", f->dir);
        assert_int_equal(cc_mkdir_p(p, 0700), 0);
        snprintf(p, sizeof(p), "%s/root/snapshots/new-abc", f->dir);
        assert_int_equal(mkdir(p, 0700), 0);
        snap_close(f->s);
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(snap_open(&f->cfg, &f->s, &err), 0);
        assert_int_equal(access(p, F_OK), -1);
        snprintf(p, sizeof(p), "%s/root/snapshots/77", f->dir);
        assert_int_equal(access(p, F_OK), -1);
        snprintf(p, sizeof(p), "%s/root/snapshots/1/fs", f->dir);
        assert_int_equal(access(p, F_OK), 0);
        assert_int_equal(snap_check(f->s, &err), 0);
}

static void test_filters(void **state)
{
        struct snap_info info = {
                .name = strdup("n"), .parent = strdup(""), .kind = SNAP_KIND_COMMITTED};
        snap_labels_set(&info.labels, "containerd.io/snapshot.ref", "sha256:x");
        struct {
                const char *f;
                int parse;
                bool match;
        } cases[] = {
                {"labels.\"containerd.io/snapshot.ref\"==sha256:x,parent==\"\"", 0, true},
                {"labels.\"containerd.io/snapshot.ref\"", 0, true},
                {"labels.other", 0, false},
                {"labels.other!=x", 0, true},
                {"kind==committed , name==n", 0, true},
                {"name~=^[a-m]$", 0, false},
                {"name==\"n\\\"\"", 0, false},
                {"bogus==1", 0, false},
                {"", -EINVAL, false},
                {"name==1,", -EINVAL, false},
                {"name=1", -EINVAL, false},
                {"labels.\"unterminated", -EINVAL, false},
                {"name~=(", -EINVAL, false},
        };
        for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
                struct snap_filter *flt = NULL;
                _cleanup_error_ struct cc_error *err = NULL;
                int r = snap_filter_parse(cases[i].f, &flt, &err);
                if (r != cases[i].parse)
                        fail_msg("%s: parse %d", cases[i].f, r);
                if (r == 0) {
                        if (snap_filter_match(flt, &info) != cases[i].match)
                                fail_msg("%s: match", cases[i].f);
                        snap_filter_free(flt);
                }
        }
        snap_info_clear(&info);
        char *b = snap_base64((const uint8_t *)"hello!?", 7);
        assert_string_equal(b, "aGVsbG8hPw==");
        free(b);
}

/* The service over a real gRPC connection: codes, the Empty reply, List streaming. */
static void test_service(void **state)
{
        struct fx *f = *state;
        struct cc_grpc_server *srv;
        assert_int_equal(cc_grpc_server_new(NULL, &srv), 0);
        assert_int_equal(cc_grpc_server_register(srv, &snap_grpc_service, f->s), 0);
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(cc_grpc_server_add_conn(srv, sv[0]), 0);
        struct cc_grpc_client *cli;
        assert_int_equal(cc_grpc_client_new(sv[1], &cli), 0);
        const char *svc = "containerd.services.snapshots.v1.Snapshots";
        _cleanup_error_ struct cc_error *err = NULL;

        for (int i = 0; i < 150; i++) {
                Containerd__Services__Snapshots__V1__PrepareSnapshotRequest p =
                        CONTAINERD__SERVICES__SNAPSHOTS__V1__PREPARE_SNAPSHOT_REQUEST__INIT;
                char key[32];
                snprintf(key, sizeof(key), "ns/%d/k", i);
                p.snapshotter = "svc";
                p.key = key;
                ProtobufCMessage *resp = NULL;
                assert_int_equal(
                        cc_grpc_client_call(
                                cli, svc, "Prepare", &p.base,
                                &containerd__services__snapshots__v1__prepare_snapshot_response__descriptor,
                                &resp, &err),
                        0);
                assert_int_equal(
                        ((Containerd__Services__Snapshots__V1__PrepareSnapshotResponse *)resp)
                                ->n_mounts,
                        1);
                protobuf_c_message_free_unpacked(resp, NULL);
        }
        Containerd__Services__Snapshots__V1__CommitSnapshotRequest c =
                CONTAINERD__SERVICES__SNAPSHOTS__V1__COMMIT_SNAPSHOT_REQUEST__INIT;
        c.snapshotter = "svc";
        c.key = "ns/0/k";
        c.name = "ns/0/c";
        uint8_t buf[256];
        size_t len = protobuf_c_message_pack(&c.base, buf);
        struct cc_grpc_stream *st;
        assert_int_equal(cc_grpc_client_start(cli,
                                              "/containerd.services.snapshots.v1.Snapshots/Commit",
                                              buf, len, NULL, 0, 0, &st),
                         0);
        assert_int_equal(cc_grpc_client_wait(cli, st, &err), 0);
        /* Empty: exactly one zero-length message. */
        assert_int_equal(cc_grpc_stream_n_messages(st), 1);
        cc_grpc_stream_free(cli, st);
        assert_int_equal(cc_grpc_client_call(cli, svc, "Commit", &c.base, NULL, NULL, &err),
                         -ENOENT);
        assert_int_equal(cc_error_grpc_code(err), CC_GRPC_NOT_FOUND);

        Containerd__Services__Snapshots__V1__ListSnapshotsRequest l =
                CONTAINERD__SERVICES__SNAPSHOTS__V1__LIST_SNAPSHOTS_REQUEST__INIT;
        l.snapshotter = "svc";
        len = protobuf_c_message_pack(&l.base, buf);
        assert_int_equal(cc_grpc_client_start(cli,
                                              "/containerd.services.snapshots.v1.Snapshots/List",
                                              buf, len, NULL, 0, 0, &st),
                         0);
        assert_int_equal(cc_grpc_client_wait(cli, st, &err), 0);
        assert_int_equal(cc_grpc_stream_n_messages(st), 2); /* 100 + 50 */
        size_t total = 0;
        for (size_t i = 0; i < 2; i++) {
                size_t mlen;
                const uint8_t *msg = cc_grpc_stream_message(st, i, &mlen);
                Containerd__Services__Snapshots__V1__ListSnapshotsResponse *r =
                        containerd__services__snapshots__v1__list_snapshots_response__unpack(
                                NULL, mlen, msg);
                total += r->n_info;
                containerd__services__snapshots__v1__list_snapshots_response__free_unpacked(r,
                                                                                            NULL);
        }
        assert_int_equal(total, 150);
        cc_grpc_stream_free(cli, st);
        cc_grpc_client_free(cli);
        cc_grpc_server_free(srv);
}

/* The TOML configuration: modes per name, the image policy, strict keys. */
static void test_config(void **state)
{
        char path[] = "/tmp/test-snap-cfg-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        const char *text = "root = \"/var/lib/x\"\n"
                           "default_mode = \"local\"\n"
                           "[policy]\n"
                           "default = \"local\"\n"
                           "guest_images = [\"reg.example/cc/*\"]\n"
                           "local_images = [\"reg.example/cc/pause:*\"]\n"
                           "[snapshotters.cc-guest]\n"
                           "mode = \"guest\"\n";
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
        struct snap_config c;
        snap_config_init(&c);
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(snap_config_load(&c, path, &err), 0);
        assert_string_equal(c.root, "/var/lib/x");
        assert_int_equal(snap_config_mode(&c, "cc-guest"), SNAP_MODE_GUEST);
        assert_int_equal(snap_config_mode(&c, "other"), SNAP_MODE_LOCAL);
        assert_true(snap_config_guest_image(&c, "reg.example/cc/app:1"));
        assert_false(snap_config_guest_image(&c, "reg.example/cc/pause:3.6"));
        assert_false(snap_config_guest_image(&c, "docker.io/library/busybox:latest"));
        snap_config_clear(&c);

        /* A typo is an error, never a silent default. */
        fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        const char *bad = "[policy]\ndefualt = \"guest\"\n";
        assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
        close(fd);
        snap_config_init(&c);
        assert_int_equal(snap_config_load(&c, path, &err), -EINVAL);
        assert_non_null(strstr(cc_error_message(err), "defualt"));
        snap_config_clear(&c);
        unlink(path);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_filters),
                cmocka_unit_test(test_config),
                cmocka_unit_test_setup_teardown(test_overlay, setup, teardown),
                cmocka_unit_test_setup_teardown(test_guest_pull, setup, teardown),
                cmocka_unit_test_setup_teardown(test_policy_and_hazard, setup, teardown),
                cmocka_unit_test_setup_teardown(test_list_update, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
                cmocka_unit_test_setup_teardown(test_service, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
