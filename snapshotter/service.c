/*
 * containerd.services.snapshots.v1.Snapshots on lib/grpc: protobuf <-> the operations of
 * snapshotter.c. Field 1 of every request (the proxy plugin's name) selects the keyspace.
 * Errors carry their status through cc_error (NotFound, AlreadyExists, FailedPrecondition,
 * InvalidArgument); Commit, Remove and Cleanup reply with google.protobuf.Empty, which
 * lib/grpc sends as one zero-length message as containerd requires.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cc/grpc.h"
#include "cc/log.h"

#include "containerd/services/snapshots/v1/snapshots.pb-c.h"
#include "snapshotter/snap.h"

#define PB(x)   Containerd__Services__Snapshots__V1__##x
#define DESC(x) containerd__services__snapshots__v1__##x##__descriptor

/* Every LabelsEntry message of the proto has this shape. */
struct pb_entry {
        ProtobufCMessage base;
        char *key;
        char *value;
};

static int labels_from_pb(struct pb_entry **entries, size_t n, struct snap_labels *ret,
                          struct cc_error **err)
{
        for (size_t i = 0; i < n; i++) {
                if (snap_labels_set(ret, entries[i]->key, entries[i]->value) < 0) {
                        snap_labels_clear(ret);
                        return cc_error_set(err, ENOMEM, "out of memory");
                }
        }
        return 0;
}

static int mounts_to_pb(struct cc_grpc_call *call, const struct snap_mounts *m,
                        Containerd__Types__Mount ***ret, size_t *ret_n, struct cc_error **err)
{
        Containerd__Types__Mount **v = cc_grpc_call_alloc(call, (m->n + 1) * sizeof(*v));
        if (!v)
                return cc_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < m->n; i++) {
                Containerd__Types__Mount *pm = cc_grpc_call_alloc(call, sizeof(*pm));
                if (!pm)
                        return cc_error_set(err, ENOMEM, "out of memory");
                containerd__types__mount__init(pm);
                size_t k = 0;
                while (m->v[i].options[k])
                        k++;
                pm->type = cc_grpc_call_strdup(call, m->v[i].type);
                pm->source = cc_grpc_call_strdup(call, m->v[i].source);
                pm->options = cc_grpc_call_alloc(call, (k + 1) * sizeof(char *));
                if (!pm->type || !pm->source || !pm->options)
                        return cc_error_set(err, ENOMEM, "out of memory");
                for (size_t j = 0; j < k; j++)
                        if (!(pm->options[j] = cc_grpc_call_strdup(call, m->v[i].options[j])))
                                return cc_error_set(err, ENOMEM, "out of memory");
                pm->n_options = k;
                v[i] = pm;
        }
        *ret = v;
        *ret_n = m->n;
        return 0;
}

static Google__Protobuf__Timestamp *ts(struct cc_grpc_call *call, int64_t ns)
{
        Google__Protobuf__Timestamp *t = cc_grpc_call_alloc(call, sizeof(*t));
        if (!t)
                return NULL;
        google__protobuf__timestamp__init(t);
        t->seconds = ns / 1000000000LL;
        t->nanos = (int32_t)(ns % 1000000000LL);
        return t;
}

static PB(Info) * info_to_pb(struct cc_grpc_call *call, const struct snap_info *info)
{
        PB(Info) *pi = cc_grpc_call_alloc(call, sizeof(*pi));
        if (!pi)
                return NULL;
        containerd__services__snapshots__v1__info__init(pi);
        pi->name = cc_grpc_call_strdup(call, info->name);
        pi->parent = cc_grpc_call_strdup(call, info->parent);
        /* Placeholders are COMMITTED: containerd takes the kind from us. */
        pi->kind = (PB(Kind))info->kind;
        pi->created_at = ts(call, info->created_ns);
        pi->updated_at = ts(call, info->updated_ns);
        pi->labels = cc_grpc_call_alloc(call, (info->labels.n + 1) * sizeof(*pi->labels));
        if (!pi->name || !pi->parent || !pi->created_at || !pi->updated_at || !pi->labels)
                return NULL;
        for (size_t i = 0; i < info->labels.n; i++) {
                PB(Info__LabelsEntry) *e = cc_grpc_call_alloc(call, sizeof(*e));
                if (!e)
                        return NULL;
                containerd__services__snapshots__v1__info__labels_entry__init(e);
                e->key = cc_grpc_call_strdup(call, info->labels.v[i].key);
                e->value = cc_grpc_call_strdup(call, info->labels.v[i].value);
                if (!e->key || !e->value)
                        return NULL;
                pi->labels[i] = e;
        }
        pi->n_labels = info->labels.n;
        return pi;
}

/*
 * The one log line of a failed request. NotFound and AlreadyExists are containerd's normal
 * traffic (Stat probes, remote-snapshot adoption); anything else is worth an operator's eye.
 */
static int logged(int r, const char *method, const char *ns, const char *key, struct cc_error **err)
{
        if (r >= 0 || !err || !*err)
                return r;
        int code = cc_error_grpc_code(*err);
        if (code != CC_GRPC_NOT_FOUND && code != CC_GRPC_ALREADY_EXISTS)
                cc_log_warn("%s %s %s: %s: %s", method, ns, key, cc_grpc_code_name(code),
                            cc_error_message(*err));
        return r;
}

static int do_prepare(struct cc_grpc_call *call, struct snap *s, const char *ns, const char *key,
                      const char *parent, struct pb_entry **labels, size_t n_labels, bool view,
                      Containerd__Types__Mount ***mounts, size_t *n_mounts, struct cc_error **err)
{
        struct snap_labels l = {0};
        int r = labels_from_pb(labels, n_labels, &l, err);
        if (r < 0)
                return r;
        struct snap_mounts m = {0};
        r = snap_prepare(s, ns, key, parent, &l, view, &m, err);
        snap_labels_clear(&l);
        if (r == 0)
                r = mounts_to_pb(call, &m, mounts, n_mounts, err);
        snap_mounts_clear(&m);
        return r;
}

static int h_prepare(struct cc_grpc_call *call, void *ud, const ProtobufCMessage *req_,
                     ProtobufCMessage *resp_, struct cc_error **err)
{
        const PB(PrepareSnapshotRequest) *req = (const void *)req_;
        PB(PrepareSnapshotResponse) *resp = (void *)resp_;
        int r = do_prepare(call, ud, req->snapshotter, req->key, req->parent,
                           (struct pb_entry **)req->labels, req->n_labels, false, &resp->mounts,
                           &resp->n_mounts, err);
        return logged(r, "Prepare", req->snapshotter, req->key, err);
}

static int h_view(struct cc_grpc_call *call, void *ud, const ProtobufCMessage *req_,
                  ProtobufCMessage *resp_, struct cc_error **err)
{
        const PB(ViewSnapshotRequest) *req = (const void *)req_;
        PB(ViewSnapshotResponse) *resp = (void *)resp_;
        int r = do_prepare(call, ud, req->snapshotter, req->key, req->parent,
                           (struct pb_entry **)req->labels, req->n_labels, true, &resp->mounts,
                           &resp->n_mounts, err);
        return logged(r, "View", req->snapshotter, req->key, err);
}

static int h_mounts(struct cc_grpc_call *call, void *ud, const ProtobufCMessage *req_,
                    ProtobufCMessage *resp_, struct cc_error **err)
{
        const PB(MountsRequest) *req = (const void *)req_;
        PB(MountsResponse) *resp = (void *)resp_;
        struct snap_mounts m = {0};
        int r = snap_get_mounts(ud, req->snapshotter, req->key, &m, err);
        if (r == 0)
                r = mounts_to_pb(call, &m, &resp->mounts, &resp->n_mounts, err);
        snap_mounts_clear(&m);
        return r;
}

static int h_commit(struct cc_grpc_call *call, void *ud, const ProtobufCMessage *req_,
                    ProtobufCMessage *resp, struct cc_error **err)
{
        const PB(CommitSnapshotRequest) *req = (const void *)req_;
        struct snap_labels l = {0};
        int r = labels_from_pb((struct pb_entry **)req->labels, req->n_labels, &l, err);
        if (r == 0)
                r = snap_commit(ud, req->snapshotter, req->name, req->key, &l, err);
        snap_labels_clear(&l);
        return logged(r, "Commit", req->snapshotter, req->key, err);
}

static int h_remove(struct cc_grpc_call *call, void *ud, const ProtobufCMessage *req_,
                    ProtobufCMessage *resp, struct cc_error **err)
{
        const PB(RemoveSnapshotRequest) *req = (const void *)req_;
        return logged(snap_remove(ud, req->snapshotter, req->key, err), "Remove", req->snapshotter,
                      req->key, err);
}

static int h_stat(struct cc_grpc_call *call, void *ud, const ProtobufCMessage *req_,
                  ProtobufCMessage *resp_, struct cc_error **err)
{
        const PB(StatSnapshotRequest) *req = (const void *)req_;
        PB(StatSnapshotResponse) *resp = (void *)resp_;
        struct snap_info info;
        int r = snap_stat(ud, req->snapshotter, req->key, &info, err);
        if (r < 0)
                return r;
        resp->info = info_to_pb(call, &info);
        snap_info_clear(&info);
        return resp->info ? 0 : cc_error_set(err, ENOMEM, "out of memory");
}

static int h_update(struct cc_grpc_call *call, void *ud, const ProtobufCMessage *req_,
                    ProtobufCMessage *resp_, struct cc_error **err)
{
        const PB(UpdateSnapshotRequest) *req = (const void *)req_;
        PB(UpdateSnapshotResponse) *resp = (void *)resp_;
        if (!req->info || cc_isempty(req->info->name))
                return cc_error_set(err, EINVAL, "update needs the snapshot's name");
        struct snap_labels l = {0};
        int r = labels_from_pb((struct pb_entry **)req->info->labels, req->info->n_labels, &l, err);
        if (r < 0)
                return r;
        struct snap_info info;
        r = snap_update(ud, req->snapshotter, req->info->name, &l,
                        req->update_mask ? (const char *const *)req->update_mask->paths : NULL,
                        req->update_mask ? req->update_mask->n_paths : 0, &info, err);
        snap_labels_clear(&l);
        if (r < 0)
                return r;
        resp->info = info_to_pb(call, &info);
        snap_info_clear(&info);
        return resp->info ? 0 : cc_error_set(err, ENOMEM, "out of memory");
}

/* List replies in batches, as containerd's own service does (100 Info per message). */
#define LIST_BATCH 100

struct list_out {
        struct cc_grpc_call *call;
        PB(Info) * batch[LIST_BATCH];
        size_t n;
        struct cc_error **err;
};

static int list_flush(struct list_out *o)
{
        if (!o->n)
                return 0;
        PB(ListSnapshotsResponse)
        msg = CONTAINERD__SERVICES__SNAPSHOTS__V1__LIST_SNAPSHOTS_RESPONSE__INIT;
        msg.info = o->batch;
        msg.n_info = o->n;
        int r = cc_grpc_call_send(o->call, &msg.base, o->err);
        o->n = 0;
        return r;
}

static int list_one(const struct snap_info *info, void *userdata)
{
        struct list_out *o = userdata;
        /* Batch messages live in the call's arena until the call ends; fine for the few
         * thousand snapshots of a node. */
        PB(Info) *pi = info_to_pb(o->call, info);
        if (!pi)
                return cc_error_set(o->err, ENOMEM, "out of memory");
        o->batch[o->n++] = pi;
        return o->n == LIST_BATCH ? list_flush(o) : 0;
}

static int h_list(struct cc_grpc_call *call, void *ud, const ProtobufCMessage *req_,
                  ProtobufCMessage *resp, struct cc_error **err)
{
        const PB(ListSnapshotsRequest) *req = (const void *)req_;
        struct list_out o = {.call = call, .err = err};
        int r = snap_list(ud, req->snapshotter, (const char *const *)req->filters, req->n_filters,
                          list_one, &o, err);
        if (r == 0)
                r = list_flush(&o);
        return r;
}

static int h_usage(struct cc_grpc_call *call, void *ud, const ProtobufCMessage *req_,
                   ProtobufCMessage *resp_, struct cc_error **err)
{
        const PB(UsageRequest) *req = (const void *)req_;
        PB(UsageResponse) *resp = (void *)resp_;
        return snap_usage(ud, req->snapshotter, req->key, &resp->size, &resp->inodes, err);
}

static int h_cleanup(struct cc_grpc_call *call, void *ud, const ProtobufCMessage *req_,
                     ProtobufCMessage *resp, struct cc_error **err)
{
        return snap_cleanup(ud, err);
}

static const struct cc_grpc_method methods[] = {
        {"Prepare", &DESC(prepare_snapshot_request), &DESC(prepare_snapshot_response), h_prepare,
         0},
        {"View", &DESC(view_snapshot_request), &DESC(view_snapshot_response), h_view, 0},
        {"Mounts", &DESC(mounts_request), &DESC(mounts_response), h_mounts, 0},
        {"Commit", &DESC(commit_snapshot_request), NULL, h_commit, 0},
        {"Remove", &DESC(remove_snapshot_request), NULL, h_remove, 0},
        {"Stat", &DESC(stat_snapshot_request), &DESC(stat_snapshot_response), h_stat, 0},
        {"Update", &DESC(update_snapshot_request), &DESC(update_snapshot_response), h_update, 0},
        {"List", &DESC(list_snapshots_request), NULL, h_list, CC_GRPC_METHOD_SERVER_STREAM},
        {"Usage", &DESC(usage_request), &DESC(usage_response), h_usage, 0},
        {"Cleanup", &DESC(cleanup_request), NULL, h_cleanup, 0},
};

const struct cc_grpc_service snap_grpc_service = {
        "containerd.services.snapshots.v1.Snapshots",
        methods,
        CC_ARRAY_SIZE(methods),
};
