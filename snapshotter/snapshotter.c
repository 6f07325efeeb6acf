/*
 * The snapshot operations: containerd's overlay snapshotter algorithms (reference/snapshotter.md
 * section 5) plus guest-pull placeholders (sections 3 and 8). Every change is one store
 * transaction; directories are created under the transaction's lock and renamed into place
 * before it commits, and removed after it commits, so a crash leaves at worst a directory
 * without a row, which the start-up sweep (and Cleanup) removes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/log.h"

#include "snapshotter/snap.h"

struct snap {
        const struct snap_config *cfg;
        char *root;
        char *snapdir; /* root/snapshots */
        struct snap_store *store;
        bool index_off; /* the overlay module has an "index" parameter: pass index=off */
};

static char *path_of(const struct snap *s, int64_t id, const char *leaf)
{
        char *p = NULL;
        if (asprintf(&p, "%s/%lld%s%s", s->snapdir, (long long)id, leaf ? "/" : "",
                     leaf ? leaf : "") < 0)
                return NULL;
        return p;
}

int snap_open(const struct snap_config *cfg, struct snap **ret, struct cc_error **err)
{
        _cleanup_(snap_closep) struct snap *s = calloc(1, sizeof(*s));
        if (!s)
                return cc_error_set(err, ENOMEM, "out of memory");
        s->cfg = cfg;
        s->root = strdup(cfg->root);
        if (!s->root || asprintf(&s->snapdir, "%s/snapshots", cfg->root) < 0)
                return cc_error_set(err, ENOMEM, "out of memory");
        int r = cc_mkdir_p(s->root, 0700);
        if (r < 0)
                return cc_error_set(err, -r, "create root %s", s->root);
        if (mkdir(s->snapdir, 0700) < 0 && errno != EEXIST)
                return cc_error_set(err, errno, "create %s", s->snapdir);
        _cleanup_free_ char *db = NULL;
        if (asprintf(&db, "%s/metadata.db", s->root) < 0)
                return cc_error_set(err, ENOMEM, "out of memory");
        r = snap_store_open(db, &s->store, err);
        if (r < 0)
                return r;
        s->index_off = access("/sys/module/overlay/parameters/index", F_OK) == 0;
        /* Directories a crash left without a row (and stray new-* temporaries). */
        r = snap_cleanup(s, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

void snap_close(struct snap *s)
{
        if (!s)
                return;
        snap_store_close(s->store);
        free(s->root);
        free(s->snapdir);
        free(s);
}

int snap_check(struct snap *s, struct cc_error **err)
{
        int r = snap_store_begin(s->store, err);
        if (r < 0)
                return r;
        r = snap_store_check(s->store, err);
        snap_store_rollback(s->store);
        return r;
}

static void chain_free(struct snap_info *chain, size_t n)
{
        for (size_t i = 0; i < n; i++)
                snap_info_clear(&chain[i]);
        free(chain);
}

/* The snapshot's ancestors (nearest first): its parent plus the parent's chain. */
static int load_chain(struct snap *s, const struct snap_info *self, struct snap_info **ret,
                      size_t *ret_n, struct cc_error **err)
{
        *ret = NULL;
        *ret_n = 0;
        if (!self->parent_id)
                return 0;
        struct snap_info parent;
        int r = snap_store_get_id(s->store, self->parent_id, &parent, err);
        if (r < 0)
                return r;
        struct snap_info *rest = NULL;
        size_t n = 0;
        r = snap_store_chain(s->store, parent.id, &rest, &n, err);
        if (r < 0) {
                snap_info_clear(&parent);
                return r;
        }
        struct snap_info *v = realloc(rest, (n + 1) * sizeof(*v));
        if (!v) {
                snap_info_clear(&parent);
                chain_free(rest, n);
                return cc_error_set(err, ENOMEM, "out of memory");
        }
        memmove(v + 1, v, n * sizeof(*v));
        v[0] = parent;
        *ret = v;
        *ret_n = n + 1;
        return 0;
}

static bool chain_has_guest(const struct snap_info *chain, size_t n, const char **image_ref)
{
        bool any = false;
        for (size_t i = 0; i < n; i++) {
                /* A committed guest rootfs (ctr commit of a guest container) holds no image
                 * data either: a chain through it is a guest chain. */
                if (chain[i].flavor == SNAP_LOCAL)
                        continue;
                if (!any && image_ref)
                        *image_ref = snap_labels_get(&chain[i].labels, SNAP_LABEL_IMAGE_REF);
                any = true;
        }
        return any;
}

/* The mounts of a snapshot: containerd's overlay rules, or the guest-pull mount. */
static int build_mounts(struct snap *s, const struct snap_info *self, const struct snap_info *chain,
                        size_t n, struct snap_mounts *ret, struct cc_error **err)
{
        _cleanup_free_ char *fs = path_of(s, self->id, "fs");
        _cleanup_free_ char *work = path_of(s, self->id, "work");
        _cleanup_free_ char *lower = NULL;
        if (!fs || !work)
                return cc_error_set(err, ENOMEM, "out of memory");
        /* lowerdir=<parent fs>:<grandparent fs>:... (nearest first). */
        size_t len = 16;
        for (size_t i = 0; i < n; i++)
                len += strlen(s->snapdir) + 32;
        lower = malloc(len);
        if (!lower)
                return cc_error_set(err, ENOMEM, "out of memory");
        size_t off = (size_t)snprintf(lower, len, "lowerdir=");
        for (size_t i = 0; i < n; i++)
                off += (size_t)snprintf(lower + off, len - off, "%s%s/%lld/fs", i ? ":" : "",
                                        s->snapdir, (long long)chain[i].id);

        _cleanup_free_ char *upper_opt = NULL, *work_opt = NULL;
        if (asprintf(&upper_opt, "upperdir=%s", fs) < 0 ||
            asprintf(&work_opt, "workdir=%s", work) < 0)
                return cc_error_set(err, ENOMEM, "out of memory");
        bool active = self->kind == SNAP_KIND_ACTIVE;
        int r;

        if (self->flavor == SNAP_GUEST_ROOTFS) {
                /* One mount the shim recognises (type fuse.nydus-overlayfs) whose
                 * io.katacontainers.volume names the image; a host-side mount of it goes
                 * through our helper and yields an (empty) overlay. */
                const char *image_ref = snap_labels_get(&self->labels, SNAP_LABEL_IMAGE_REF);
                const struct snap_labels *md = NULL;
                for (size_t i = 0; i < n && !md; i++) {
                        if (chain[i].flavor != SNAP_LOCAL) {
                                md = &chain[i].labels;
                                if (!image_ref)
                                        image_ref = snap_labels_get(md, SNAP_LABEL_IMAGE_REF);
                        }
                }
                _cleanup_free_ char *json = NULL;
                r = snap_guest_volume_json(image_ref, md, &json, err);
                if (r < 0)
                        return r;
                _cleanup_free_ char *b64 = snap_base64((const uint8_t *)json, strlen(json));
                _cleanup_free_ char *vol = NULL;
                if (!b64 || asprintf(&vol, "io.katacontainers.volume=%s", b64) < 0)
                        return cc_error_set(err, ENOMEM, "out of memory");
                const char *opts[6];
                size_t k = 0;
                if (active) {
                        opts[k++] = work_opt;
                        opts[k++] = upper_opt;
                } else {
                        opts[k++] = "ro";
                }
                if (n)
                        opts[k++] = lower;
                opts[k++] = vol;
                opts[k] = NULL;
                r = snap_mounts_add(ret, s->cfg->mount_type, "overlay", opts);
                return r < 0 ? cc_error_set(err, -r, "out of memory") : 0;
        }

        if (n == 0) {
                const char *opts[] = {active ? "rw" : "ro", "rbind", NULL};
                r = snap_mounts_add(ret, "bind", fs, opts);
                return r < 0 ? cc_error_set(err, -r, "out of memory") : 0;
        }
        if (!active && n == 1) {
                _cleanup_free_ char *pfs = path_of(s, chain[0].id, "fs");
                const char *opts[] = {"ro", "rbind", NULL};
                r = pfs ? snap_mounts_add(ret, "bind", pfs, opts) : -ENOMEM;
                return r < 0 ? cc_error_set(err, -r, "out of memory") : 0;
        }
        const char *opts[5];
        size_t k = 0;
        if (s->index_off)
                opts[k++] = "index=off";
        if (active) {
                opts[k++] = work_opt;
                opts[k++] = upper_opt;
        }
        opts[k++] = lower;
        opts[k] = NULL;
        r = snap_mounts_add(ret, "overlay", "overlay", opts);
        return r < 0 ? cc_error_set(err, -r, "out of memory") : 0;
}

static int hazard(struct cc_error **err, const char *key, const char *image_ref)
{
        return cc_error_set_code(
                err, CC_GRPC_FAILED_PRECONDITION,
                "snapshot %s would sit on layers that were guest-pulled for image %s and hold "
                "no data on this host: with one snapshotter for both modes (containerd 1.6), "
                "images that share base layers share snapshots, so a local (runc) image "
                "cannot use layers a confidential image left as guest-pull placeholders. "
                "Remove the confidential image first (crictl rmi), list this image under "
                "local_images in the policy, or use separate snapshotter names (containerd "
                "1.7+)",
                key, image_ref ? image_ref : "(unknown)");
}

/* Fills a fresh temporary snapshot directory: fs (owned like the parent's) and work. */
static int fill_dirs(struct snap *s, const char *dir, bool with_work,
                     const struct snap_info *parent, struct cc_error **err)
{
        _cleanup_free_ char *fs = NULL, *work = NULL;
        if (asprintf(&fs, "%s/fs", dir) < 0 || asprintf(&work, "%s/work", dir) < 0)
                return cc_error_set(err, ENOMEM, "out of memory");
        if (mkdir(fs, 0755) < 0 || (with_work && mkdir(work, 0711) < 0))
                return cc_error_set(err, errno, "create snapshot directories");
        if (parent) {
                /* The new upper belongs to whoever owns the parent's root (userns images). */
                _cleanup_free_ char *pfs = path_of(s, parent->id, "fs");
                struct stat st;
                if (pfs && stat(pfs, &st) == 0 && chown(fs, st.st_uid, st.st_gid) < 0)
                        return cc_error_set(err, errno, "chown %s", fs);
        }
        return 0;
}

/* Creates root/snapshots/<id>/{fs[,work]} through a temporary directory. */
static int make_dirs(struct snap *s, int64_t id, bool with_work, const struct snap_info *parent,
                     struct cc_error **err)
{
        _cleanup_free_ char *tmpl = NULL, *final = path_of(s, id, NULL);
        if (!final || asprintf(&tmpl, "%s/new-XXXXXX", s->snapdir) < 0)
                return cc_error_set(err, ENOMEM, "out of memory");
        if (!mkdtemp(tmpl))
                return cc_error_set(err, errno, "create temporary snapshot directory");
        int r = fill_dirs(s, tmpl, with_work, parent, err);
        if (r == 0) {
                /* An id can only exist on disk if a crash rolled back its row: garbage. */
                snap_rm_rf(final);
                if (rename(tmpl, final) < 0)
                        r = cc_error_set(err, errno, "rename %s to %s", tmpl, final);
        }
        if (r < 0)
                snap_rm_rf(tmpl);
        return r;
}

/* Records a committed placeholder for a guest-pulled layer at `target`: no data, an empty fs
 * dir that keeps the on-disk shape (and host mounts) uniform. */
static int record_guest_layer(struct snap *s, const char *ns, const char *target,
                              const struct snap_info *pinfo, const struct snap_labels *labels,
                              int64_t *ret_id, struct cc_error **err)
{
        struct snap_info existing;
        if (snap_store_get(s->store, ns, target, &existing, NULL) == 0) {
                snap_info_clear(&existing);
                return cc_error_set(err, EEXIST, "target snapshot %s: already exists", target);
        }
        struct snap_labels l = {0};
        int64_t id;
        int r = snap_labels_copy(&l, labels);
        if (r == 0)
                r = snap_labels_set(&l, SNAP_LABEL_GUEST, "true");
        if (r < 0)
                r = cc_error_set(err, ENOMEM, "out of memory");
        else
                r = snap_store_insert(s->store, ns, target, pinfo->id, SNAP_KIND_COMMITTED,
                                      SNAP_GUEST_LAYER, &l, &id, err);
        snap_labels_clear(&l);
        if (r == 0 && (r = make_dirs(s, id, false, NULL, err)) == 0)
                *ret_id = id;
        return r;
}

/* Creates the active snapshot (or view) `key` of `flavor` and its mounts. */
static int create_snapshot(struct snap *s, const char *ns, const char *key,
                           const struct snap_info *pinfo, const struct snap_info *chain, size_t n,
                           const struct snap_labels *labels, bool view, enum snap_flavor flavor,
                           int64_t *ret_id, struct snap_mounts *ret, struct cc_error **err)
{
        enum snap_kind kind = view ? SNAP_KIND_VIEW : SNAP_KIND_ACTIVE;
        int64_t id;
        int r = snap_store_insert(s->store, ns, key, pinfo->id, kind, flavor, labels, &id, err);
        if (r < 0)
                return r;
        r = make_dirs(s, id, !view, pinfo->id ? pinfo : NULL, err);
        if (r < 0)
                return r;
        *ret_id = id;
        struct snap_info self = {.id = id, .kind = kind, .flavor = flavor, .labels = *labels};
        return build_mounts(s, &self, chain, n, ret, err);
}

/* The parent (must be committed) and its chain, nearest first; nothing without a parent. */
static int load_parent(struct snap *s, const char *ns, const char *parent, struct snap_info *pinfo,
                       struct snap_info **chain, size_t *n, struct cc_error **err)
{
        if (cc_isempty(parent))
                return 0;
        int r = snap_store_get(s->store, ns, parent, pinfo, err);
        if (r == -ENOENT)
                return cc_error_set(err, ENOENT, "parent snapshot %s does not exist", parent);
        if (r < 0)
                return r;
        if (pinfo->kind != SNAP_KIND_COMMITTED)
                return cc_error_set(err, EINVAL,
                                    "failed to create snapshot: parent \"%s\" is not "
                                    "committed snapshot",
                                    parent);
        struct snap_info self = {.parent_id = pinfo->id};
        return load_chain(s, &self, chain, n, err);
}

#define PREPARED_GUEST_LAYER 1

/*
 * Prepare inside the transaction: gathers the facts, decides (snap_prepare_decide) and carries
 * the decision out. 0: a snapshot was created; PREPARED_GUEST_LAYER: a guest placeholder was
 * recorded; -errno. *ret_id is the id whose directory exists once made (0: none yet).
 */
static int prepare_txn(struct snap *s, const char *ns, const char *key, const char *parent,
                       const struct snap_labels *labels, bool view, int64_t *ret_id,
                       struct snap_mounts *ret, struct cc_error **err)
{
        struct snap_info pinfo = {0};
        struct snap_info *chain = NULL;
        size_t n = 0;
        int r = load_parent(s, ns, parent, &pinfo, &chain, &n, err);
        if (r < 0) {
                chain_free(chain, n);
                snap_info_clear(&pinfo);
                return r;
        }
        const char *target = snap_labels_get(labels, SNAP_LABEL_TARGET);
        const char *image_ref = snap_labels_get(labels, SNAP_LABEL_IMAGE_REF);
        const char *guest_ref = NULL;
        struct snap_prepare_facts f = {
                .mode = snap_config_mode(s->cfg, ns),
                .key = key,
                .view = view,
                .target = target != NULL,
                .cri = !cc_isempty(image_ref) &&
                       !cc_isempty(snap_labels_get(labels, SNAP_LABEL_LAYER_DIGEST)),
                .guest_chain = chain_has_guest(chain, n, &guest_ref),
                .chain_len = n,
                .pod_mode = snap_labels_get(labels, SNAP_LABEL_MODE),
        };
        f.guest_image = f.mode == SNAP_MODE_POLICY && f.cri && f.target && !view &&
                        snap_config_guest_image(s->cfg, image_ref);
        struct snap_prepare_decision d = snap_prepare_decide(&f);
        switch (d.action) {
        case SNAP_PREPARE_GUEST_LAYER:
                r = record_guest_layer(s, ns, target, &pinfo, labels, ret_id, err);
                if (r == 0)
                        r = PREPARED_GUEST_LAYER;
                break;
        case SNAP_PREPARE_NEED_CRI:
                r = cc_error_set_code(err, CC_GRPC_FAILED_PRECONDITION,
                                      "snapshotter %s pulls images in the guest and needs the "
                                      "CRI snapshot labels (%s, %s), which %s lacks: set "
                                      "disable_snapshot_annotations = false in containerd's CRI "
                                      "configuration",
                                      ns, SNAP_LABEL_IMAGE_REF, SNAP_LABEL_LAYER_DIGEST, key);
                break;
        case SNAP_PREPARE_HAZARD:
                r = hazard(err, key, guest_ref);
                break;
        case SNAP_PREPARE_CREATE:
                r = create_snapshot(s, ns, key, &pinfo, chain, n, labels, view, d.flavor, ret_id,
                                    ret, err);
                break;
        }
        chain_free(chain, n);
        snap_info_clear(&pinfo);
        return r;
}

/* One transaction: committed when prepare_txn succeeded, else rolled back; a directory it made
 * goes when the transaction does not commit. */
int snap_prepare(struct snap *s, const char *ns, const char *key, const char *parent,
                 const struct snap_labels *labels, bool view, struct snap_mounts *ret,
                 struct cc_error **err)
{
        if (cc_isempty(key))
                return cc_error_set(err, EINVAL, "snapshot key must not be empty");
        int r = snap_labels_validate(labels, err);
        if (r < 0 || (r = snap_store_begin(s->store, err)) < 0)
                return r;
        int64_t id = 0;
        r = prepare_txn(s, ns, key, parent, labels, view, &id, ret, err);
        if (r >= 0) {
                int c = snap_store_commit(s->store, err);
                if (c < 0)
                        snap_mounts_clear(ret);
                r = c < 0 ? c : r;
        } else {
                snap_store_rollback(s->store);
        }
        if (r < 0 && id) {
                _cleanup_free_ char *p = path_of(s, id, NULL);
                if (p)
                        snap_rm_rf(p);
        }
        if (r != PREPARED_GUEST_LAYER)
                return r;
        const char *target = snap_labels_get(labels, SNAP_LABEL_TARGET);
        cc_log_debug("guest layer %s of %s recorded", target,
                     snap_labels_get(labels, SNAP_LABEL_IMAGE_REF));
        /* AlreadyExists tells containerd to adopt it and skip the layer. */
        return cc_error_set(err, EEXIST, "target snapshot %s: already exists", target);
}

int snap_get_mounts(struct snap *s, const char *ns, const char *key, struct snap_mounts *ret,
                    struct cc_error **err)
{
        int r = snap_store_begin(s->store, err);
        if (r < 0)
                return r;
        struct snap_info self;
        r = snap_store_get(s->store, ns, key, &self, err);
        if (r < 0) {
                snap_store_rollback(s->store);
                return r;
        }
        struct snap_info *chain = NULL;
        size_t n = 0;
        r = load_chain(s, &self, &chain, &n, err);
        if (r == 0)
                r = build_mounts(s, &self, chain, n, ret, err);
        snap_store_rollback(s->store);
        chain_free(chain, n);
        snap_info_clear(&self);
        return r;
}

int snap_commit(struct snap *s, const char *ns, const char *name, const char *key,
                const struct snap_labels *labels, struct cc_error **err)
{
        if (cc_isempty(name))
                return cc_error_set(err, EINVAL, "snapshot name must not be empty");
        int r = snap_labels_validate(labels, err);
        if (r < 0)
                return r;
        /* Usage first, outside the lock: a big layer takes a while to walk. */
        r = snap_store_begin(s->store, err);
        if (r < 0)
                return r;
        struct snap_info self;
        r = snap_store_get(s->store, ns, key, &self, err);
        snap_store_rollback(s->store);
        if (r < 0)
                return r;
        int64_t id = self.id;
        enum snap_kind kind = self.kind;
        snap_info_clear(&self);
        if (kind != SNAP_KIND_ACTIVE)
                return cc_error_set_code(err, CC_GRPC_FAILED_PRECONDITION,
                                         "snapshot %s is not active", key);
        int64_t size = 0, inodes = 0;
        _cleanup_free_ char *fs = path_of(s, id, "fs");
        if (!fs)
                return cc_error_set(err, ENOMEM, "out of memory");
        r = snap_disk_usage(fs, &size, &inodes);
        if (r < 0)
                return cc_error_set(err, -r, "disk usage of %s", fs);

        r = snap_store_begin(s->store, err);
        if (r < 0)
                return r;
        r = snap_store_get(s->store, ns, key, &self, err);
        if (r == 0 && (self.id != id || self.kind != SNAP_KIND_ACTIVE))
                r = cc_error_set_code(err, CC_GRPC_FAILED_PRECONDITION,
                                      "snapshot %s changed during commit", key);
        snap_info_clear(&self);
        if (r == 0) {
                struct snap_info existing;
                if (snap_store_get(s->store, ns, name, &existing, NULL) == 0) {
                        snap_info_clear(&existing);
                        r = cc_error_set(err, EEXIST, "snapshot %s: already exists", name);
                }
        }
        if (r == 0)
                r = snap_store_commit_active(s->store, id, name, labels, size, inodes, err);
        if (r < 0) {
                snap_store_rollback(s->store);
                return r;
        }
        return snap_store_commit(s->store, err);
}

int snap_remove(struct snap *s, const char *ns, const char *key, struct cc_error **err)
{
        int r = snap_store_begin(s->store, err);
        if (r < 0)
                return r;
        struct snap_info self = {0};
        r = snap_store_get(s->store, ns, key, &self, err);
        if (r == 0)
                r = snap_store_delete(s->store, self.id, err);
        if (r < 0) {
                if (r == -EBUSY)
                        cc_error_set_code(err, CC_GRPC_FAILED_PRECONDITION,
                                          "cannot remove snapshot with child");
                snap_store_rollback(s->store);
                snap_info_clear(&self);
                return r;
        }
        int64_t id = self.id;
        snap_info_clear(&self);
        r = snap_store_commit(s->store, err);
        if (r < 0)
                return r;
        /* After the commit: a crash here leaves a directory the sweep removes. */
        _cleanup_free_ char *p = path_of(s, id, NULL);
        if (p && (r = snap_rm_rf(p)) < 0)
                cc_log_warn("remove %s: %s (Cleanup will retry)", p, strerror(-r));
        return 0;
}

int snap_stat(struct snap *s, const char *ns, const char *key, struct snap_info *ret,
              struct cc_error **err)
{
        int r = snap_store_begin(s->store, err);
        if (r < 0)
                return r;
        r = snap_store_get(s->store, ns, key, ret, err);
        snap_store_rollback(s->store);
        return r;
}

int snap_update(struct snap *s, const char *ns, const char *name, const struct snap_labels *labels,
                const char *const *paths, size_t n_paths, struct snap_info *ret,
                struct cc_error **err)
{
        int r = snap_store_begin(s->store, err);
        if (r < 0)
                return r;
        struct snap_info cur;
        r = snap_store_get(s->store, ns, name, &cur, err);
        if (r < 0) {
                snap_store_rollback(s->store);
                return r;
        }
        struct snap_labels next = {0};
        if (n_paths == 0) {
                r = snap_labels_copy(&next, labels);
        } else {
                r = snap_labels_copy(&next, &cur.labels);
                for (size_t i = 0; r == 0 && i < n_paths; i++) {
                        if (strcmp(paths[i], "labels") == 0) {
                                snap_labels_clear(&next);
                                r = snap_labels_copy(&next, labels);
                        } else if (strncmp(paths[i], "labels.", 7) == 0) {
                                /* No value in the request means: delete that label. */
                                const char *k = paths[i] + 7;
                                const char *v = snap_labels_get(labels, k);
                                r = snap_labels_set(&next, k, cc_isempty(v) ? NULL : v);
                        } else {
                                r = cc_error_set(err, EINVAL,
                                                 "cannot update %s field on snapshot %s", paths[i],
                                                 name);
                        }
                }
        }
        if (r == -ENOMEM)
                cc_error_set(err, ENOMEM, "out of memory");
        /* Our guest marker is not the caller's to drop. */
        if (r == 0 && cur.flavor == SNAP_GUEST_LAYER)
                r = snap_labels_set(&next, SNAP_LABEL_GUEST, "true");
        if (r == 0)
                r = snap_labels_validate(&next, err);
        if (r == 0)
                r = snap_store_set_labels(s->store, cur.id, &next, err);
        snap_labels_clear(&next);
        int64_t id = cur.id;
        snap_info_clear(&cur);
        if (r == 0)
                r = snap_store_get_id(s->store, id, ret, err);
        if (r < 0) {
                snap_store_rollback(s->store);
                return r;
        }
        r = snap_store_commit(s->store, err);
        if (r < 0)
                snap_info_clear(ret);
        return r;
}

struct list_ctx {
        struct snap_filter **filters;
        size_t n_filters;
        struct snap_info *v;
        size_t n, cap;
};

static int list_collect(const struct snap_info *info, void *userdata)
{
        struct list_ctx *ctx = userdata;
        bool match = ctx->n_filters == 0;
        for (size_t i = 0; !match && i < ctx->n_filters; i++)
                match = snap_filter_match(ctx->filters[i], info);
        if (!match)
                return 0;
        if (ctx->n == ctx->cap) {
                size_t cap = ctx->cap ? ctx->cap * 2 : 32;
                struct snap_info *v = realloc(ctx->v, cap * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                ctx->v = v;
                ctx->cap = cap;
        }
        /* Steal nothing: the walker clears its copy, so take a deep one. */
        struct snap_info c = *info;
        c.name = strdup(info->name);
        c.parent = strdup(info->parent);
        c.labels = (struct snap_labels){0};
        if (!c.name || !c.parent || snap_labels_copy(&c.labels, &info->labels) < 0) {
                snap_info_clear(&c);
                return -ENOMEM;
        }
        ctx->v[ctx->n++] = c;
        return 0;
}

int snap_list(struct snap *s, const char *ns, const char *const *filters, size_t n_filters,
              snap_store_walk_fn fn, void *userdata, struct cc_error **err)
{
        struct list_ctx ctx = {.n_filters = n_filters};
        int r = 0;
        if (n_filters) {
                ctx.filters = calloc(n_filters, sizeof(*ctx.filters));
                if (!ctx.filters)
                        return cc_error_set(err, ENOMEM, "out of memory");
        }
        for (size_t i = 0; r == 0 && i < n_filters; i++)
                r = snap_filter_parse(filters[i], &ctx.filters[i], err);
        if (r == 0)
                r = snap_store_begin(s->store, err);
        if (r == 0) {
                r = snap_store_walk(s->store, ns, list_collect, &ctx, err);
                if (r == -ENOMEM)
                        cc_error_set(err, ENOMEM, "out of memory");
                snap_store_rollback(s->store);
        }
        /* Results go out after the lock is released: a slow reader blocks nobody. */
        for (size_t i = 0; r == 0 && i < ctx.n; i++)
                r = fn(&ctx.v[i], userdata);
        for (size_t i = 0; i < ctx.n; i++)
                snap_info_clear(&ctx.v[i]);
        free(ctx.v);
        for (size_t i = 0; i < n_filters; i++)
                snap_filter_free(ctx.filters[i]);
        free(ctx.filters);
        return r;
}

int snap_usage(struct snap *s, const char *ns, const char *key, int64_t *ret_size,
               int64_t *ret_inodes, struct cc_error **err)
{
        struct snap_info self;
        int r = snap_stat(s, ns, key, &self, err);
        if (r < 0)
                return r;
        int64_t id = self.id;
        bool active = self.kind == SNAP_KIND_ACTIVE;
        *ret_size = self.size;
        *ret_inodes = self.inodes;
        snap_info_clear(&self);
        if (!active)
                return 0;
        /* An active snapshot changes: measure its upper directory now (views report 0, as
         * containerd's overlayfs does). */
        _cleanup_free_ char *fs = path_of(s, id, "fs");
        if (!fs)
                return cc_error_set(err, ENOMEM, "out of memory");
        r = snap_disk_usage(fs, ret_size, ret_inodes);
        if (r < 0)
                return cc_error_set(err, -r, "disk usage of %s", fs);
        return 0;
}

static int cmp_id(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return x < y ? -1 : x > y;
}

int snap_cleanup(struct snap *s, struct cc_error **err)
{
        _cleanup_free_ int64_t *ids = NULL;
        size_t n = 0;
        _cleanup_strv_ char **orphans = NULL;
        size_t n_orphans = 0;
        /* Under the lock so a Prepare's temporary directory is never taken for garbage. */
        int r = snap_store_begin(s->store, err);
        if (r < 0)
                return r;
        r = snap_store_ids(s->store, &ids, &n, err);
        DIR *d = r == 0 ? opendir(s->snapdir) : NULL;
        if (r == 0 && !d)
                r = cc_error_set(err, errno, "open %s", s->snapdir);
        struct dirent *de;
        while (r == 0 && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                char *end;
                errno = 0;
                long long v = strtoll(de->d_name, &end, 10);
                int64_t key = v;
                if (!errno && *end == '\0' && end != de->d_name &&
                    bsearch(&key, ids, n, sizeof(*ids), cmp_id))
                        continue;
                char **no = realloc(orphans, (n_orphans + 2) * sizeof(char *));
                if (!no) {
                        r = cc_error_set(err, ENOMEM, "out of memory");
                        break;
                }
                orphans = no;
                if (asprintf(&orphans[n_orphans], "%s/%s", s->snapdir, de->d_name) < 0) {
                        orphans[n_orphans] = NULL;
                        r = cc_error_set(err, ENOMEM, "out of memory");
                        break;
                }
                orphans[++n_orphans] = NULL;
        }
        if (d)
                closedir(d);
        snap_store_rollback(s->store);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_orphans; i++) {
                int e = snap_rm_rf(orphans[i]);
                if (e < 0)
                        cc_log_warn("cleanup: remove %s: %s", orphans[i], strerror(-e));
                else
                        cc_log_debug("cleanup: removed %s", orphans[i]);
        }
        return 0;
}
