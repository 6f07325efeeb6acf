#pragma once
/*
 * cc-snapshotter internals: a containerd proxy snapshotter with two kinds of snapshots.
 *
 *  - local: overlay snapshots with the semantics and on-disk shape of containerd's overlayfs
 *    snapshotter (root/snapshots/<id>/fs and work, never-reused numeric ids, lower dirs
 *    nearest first, a bind mount for a lone layer), so containerd can unpack into them and
 *    runc can run on them;
 *  - guest: committed placeholders with no data, recorded when containerd asks to unpack a
 *    layer that the guest will pull itself (remote-snapshot protocol: we answer AlreadyExists
 *    and containerd never fetches the layer). A container on a guest chain gets one
 *    fuse.nydus-overlayfs mount carrying io.katacontainers.volume=<base64 JSON>, which the
 *    shim (and Kata >= 3.3) turns into a pull inside the VM.
 *
 * Layers: labels.c (label rules, filters, the guest volume), store.c (SQLite: one
 * transaction per change), fsutil.c (directories, disk usage), snapshotter.c (the operations),
 * config.c (TOML and mode policy), service.c (the gRPC service). main.c is the daemon.
 *
 * Every snapshotter name containerd uses (field 1 of every request) is its own keyspace:
 * containerd's garbage collector for one name removes whatever that name's List returns.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cc/cleanup.h"
#include "cc/error.h"
#include "cc/fileio.h"

/* Label names containerd and its CRI plugin pass (reference/snapshotter.md 3.3). */
#define SNAP_LABEL_TARGET       "containerd.io/snapshot.ref"
#define SNAP_LABEL_IMAGE_REF    "containerd.io/snapshot/cri.image-ref"
#define SNAP_LABEL_LAYER_DIGEST "containerd.io/snapshot/cri.layer-digest"
#define SNAP_LABEL_MANIFEST     "containerd.io/snapshot/cri.manifest-digest"
#define SNAP_LABEL_IMAGE_LAYERS "containerd.io/snapshot/cri.image-layers"
/* Ours: set on guest placeholders; and the pod annotation that picks a mode on 1.6. */
#define SNAP_LABEL_GUEST        "containerd.io/snapshot/cc.guest"
#define SNAP_LABEL_MODE         "containerd.io/snapshot/cc.mode"
/* containerd limits a label's key and value together to 4096 bytes. */
#define SNAP_LABEL_MAX          4096

/* Values of containerd.services.snapshots.v1.Kind. */
enum snap_kind {
        SNAP_KIND_UNKNOWN = 0,
        SNAP_KIND_VIEW = 1,
        SNAP_KIND_ACTIVE = 2,
        SNAP_KIND_COMMITTED = 3,
};

/* What a snapshot's data is. */
enum snap_flavor {
        SNAP_LOCAL = 0,        /* ordinary overlay snapshot */
        SNAP_GUEST_LAYER = 1,  /* committed placeholder of a guest-pulled layer */
        SNAP_GUEST_ROOTFS = 2, /* active/view whose mount asks for a guest pull */
};

/* How a snapshotter name treats layer unpacks. */
enum snap_mode {
        SNAP_MODE_POLICY = 0, /* CRI pulls: by image reference (config policy); others local */
        SNAP_MODE_GUEST = 1,  /* every CRI pull is guest-pulled; a pull without labels fails */
        SNAP_MODE_LOCAL = 2,  /* an ordinary overlay snapshotter */
        _SNAP_MODE_MAX,
};

struct snap_label {
        char *key;
        char *value;
};

struct snap_labels {
        struct snap_label *v;
        size_t n;
};

struct snap_info {
        int64_t id;
        char *name;
        char *parent;      /* "" when none */
        int64_t parent_id; /* 0 when none */
        enum snap_kind kind;
        enum snap_flavor flavor;
        int64_t created_ns; /* since the epoch */
        int64_t updated_ns;
        int64_t size;
        int64_t inodes;
        struct snap_labels labels;
};

struct snap_mount {
        char *type;
        char *source;
        char **options; /* NULL-terminated */
};

struct snap_mounts {
        struct snap_mount *v;
        size_t n;
};

/* ---- labels.c ------------------------------------------------------------------------------ */

void snap_labels_clear(struct snap_labels *l);
const char *snap_labels_get(const struct snap_labels *l, const char *key);
/* Sets (copying) or, with value NULL, deletes key. */
int snap_labels_set(struct snap_labels *l, const char *key, const char *value);
int snap_labels_copy(struct snap_labels *dst, const struct snap_labels *src);
/* Checks containerd's rules: non-empty keys, key+value <= 4096 bytes, valid UTF-8. */
int snap_labels_validate(const struct snap_labels *l, struct cc_error **err);

void snap_info_clear(struct snap_info *i);
void snap_mounts_clear(struct snap_mounts *m);
/* Appends a mount; options is a NULL-terminated list that is copied. */
int snap_mounts_add(struct snap_mounts *m, const char *type, const char *source,
                    const char *const *options);

/* containerd filters ("labels.\"k\"==v,parent==\"\""): one compiled filter string. */
struct snap_filter;
int snap_filter_parse(const char *s, struct snap_filter **ret, struct cc_error **err);
void snap_filter_free(struct snap_filter *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct snap_filter *, snap_filter_free)
bool snap_filter_match(const struct snap_filter *f, const struct snap_info *info);

/* Standard base64 (with padding) of len bytes; malloc'ed. */
char *snap_base64(const uint8_t *data, size_t len);
/*
 * The io.katacontainers.volume JSON of a guest-pull rootfs: volume_type image_guest_pull,
 * source = image reference (a dummy when unknown), image_pull.metadata = the labels.
 */
int snap_guest_volume_json(const char *image_ref, const struct snap_labels *metadata, char **ret,
                           struct cc_error **err);

/* ---- store.c: SQLite state --------------------------------------------------------------- */

struct snap_store;

/* Opens (creating) root/metadata.db with WAL + synchronous=FULL; checks integrity. */
int snap_store_open(const char *path, struct snap_store **ret, struct cc_error **err);
void snap_store_close(struct snap_store *st);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct snap_store *, snap_store_close)

/* Transactions: begin takes the store's lock (BEGIN IMMEDIATE), commit/rollback release it. */
int snap_store_begin(struct snap_store *st, struct cc_error **err);
int snap_store_commit(struct snap_store *st, struct cc_error **err);
void snap_store_rollback(struct snap_store *st);

/* Inside a transaction. */
int snap_store_get(struct snap_store *st, const char *ns, const char *name, struct snap_info *ret,
                   struct cc_error **err);
int snap_store_get_id(struct snap_store *st, int64_t id, struct snap_info *ret,
                      struct cc_error **err);
int snap_store_insert(struct snap_store *st, const char *ns, const char *name, int64_t parent_id,
                      enum snap_kind kind, enum snap_flavor flavor,
                      const struct snap_labels *labels, int64_t *ret_id, struct cc_error **err);
int snap_store_commit_active(struct snap_store *st, int64_t id, const char *name,
                             const struct snap_labels *labels, int64_t size, int64_t inodes,
                             struct cc_error **err);
/* -EBUSY when the snapshot has children. */
int snap_store_delete(struct snap_store *st, int64_t id, struct cc_error **err);
int snap_store_set_labels(struct snap_store *st, int64_t id, const struct snap_labels *labels,
                          struct cc_error **err);
/* Ancestors of id, nearest first (not id itself). */
int snap_store_chain(struct snap_store *st, int64_t id, struct snap_info **ret, size_t *ret_n,
                     struct cc_error **err);
typedef int (*snap_store_walk_fn)(const struct snap_info *info, void *userdata);
int snap_store_walk(struct snap_store *st, const char *ns, snap_store_walk_fn fn, void *userdata,
                    struct cc_error **err);
/* Every live id (all names), sorted. */
int snap_store_ids(struct snap_store *st, int64_t **ret, size_t *ret_n, struct cc_error **err);
/* PRAGMA integrity_check == ok. */
int snap_store_check(struct snap_store *st, struct cc_error **err);

/* ---- fsutil.c ------------------------------------------------------------------------------- */

int snap_rm_rf(const char *path);
/* Bytes (st_blocks * 512, hard links once) and inodes under path, like containerd's du. */
int snap_disk_usage(const char *path, int64_t *ret_size, int64_t *ret_inodes);

/* ---- config.c ------------------------------------------------------------------------------- */

struct snap_name_config {
        char *name;
        enum snap_mode mode;
};

struct snap_config {
        char *root;
        char *address;
        char *log_level;
        enum snap_mode default_mode; /* names not listed */
        struct snap_name_config *names;
        size_t n_names;
        /* Policy for CRI pulls in SNAP_MODE_POLICY (fnmatch patterns on the image reference). */
        bool policy_default_guest;
        char **guest_images;
        char **local_images;
        /* Path of our mount helper's directory, for messages only. */
        char *mount_type; /* default "fuse.nydus-overlayfs" */
};

void snap_config_init(struct snap_config *c);
void snap_config_clear(struct snap_config *c);
int snap_config_load(struct snap_config *c, const char *path, struct cc_error **err);
int snap_mode_from_string(const char *s, enum snap_mode *ret);
const char *snap_mode_to_string(enum snap_mode m);
enum snap_mode snap_config_mode(const struct snap_config *c, const char *name);
/* Policy decision for a CRI pull of image_ref. */
bool snap_config_guest_image(const struct snap_config *c, const char *image_ref);

/* ---- decide.c: what Prepare does (pure) ---------------------------------------------------- */

/* What Prepare knows before it acts: the request, the mode and the parent chain. */
struct snap_prepare_facts {
        enum snap_mode mode; /* of the request's snapshotter name */
        const char *key;
        bool view;
        bool target;          /* the remote-snapshot target label is set: a layer unpack */
        bool cri;             /* the CRI image reference and layer digest labels are set */
        bool guest_image;     /* the policy sends that image to the guest (asked in policy mode) */
        bool guest_chain;     /* a snapshot of the parent chain is a guest placeholder */
        size_t chain_len;     /* snapshots in the parent chain */
        const char *pod_mode; /* the pod's cc.mode label ("guest", "local") or NULL */
};

enum snap_prepare_action {
        SNAP_PREPARE_CREATE,      /* an active snapshot or a view, of the decided flavor */
        SNAP_PREPARE_GUEST_LAYER, /* a committed placeholder at the target; AlreadyExists */
        SNAP_PREPARE_NEED_CRI,    /* refused: guest mode without the CRI labels */
        SNAP_PREPARE_HAZARD,      /* refused: local data on guest placeholders */
};

struct snap_prepare_decision {
        enum snap_prepare_action action;
        enum snap_flavor flavor;
};

struct snap_prepare_decision snap_prepare_decide(const struct snap_prepare_facts *f);
/* A layer unpack's key: "[<ns>/<seq>/]extract-<unique> sha256:<chain id>". */
bool snap_is_unpack_key(const char *key);

/* ---- snapshotter.c: the operations ----------------------------------------------------------- */

struct snap;

/* Opens the state under cfg->root, sweeps orphan directories. cfg is borrowed. */
int snap_open(const struct snap_config *cfg, struct snap **ret, struct cc_error **err);
void snap_close(struct snap *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct snap *, snap_close)

int snap_prepare(struct snap *s, const char *ns, const char *key, const char *parent,
                 const struct snap_labels *labels, bool view, struct snap_mounts *ret,
                 struct cc_error **err);
int snap_get_mounts(struct snap *s, const char *ns, const char *key, struct snap_mounts *ret,
                    struct cc_error **err);
int snap_commit(struct snap *s, const char *ns, const char *name, const char *key,
                const struct snap_labels *labels, struct cc_error **err);
int snap_remove(struct snap *s, const char *ns, const char *key, struct cc_error **err);
int snap_stat(struct snap *s, const char *ns, const char *key, struct snap_info *ret,
              struct cc_error **err);
int snap_update(struct snap *s, const char *ns, const char *name, const struct snap_labels *labels,
                const char *const *paths, size_t n_paths, struct snap_info *ret,
                struct cc_error **err);
/* Calls fn for each snapshot of ns matching any filter (all when n_filters == 0). */
int snap_list(struct snap *s, const char *ns, const char *const *filters, size_t n_filters,
              snap_store_walk_fn fn, void *userdata, struct cc_error **err);
int snap_usage(struct snap *s, const char *ns, const char *key, int64_t *ret_size,
               int64_t *ret_inodes, struct cc_error **err);
/* Removes directories no snapshot owns (any name). */
int snap_cleanup(struct snap *s, struct cc_error **err);
int snap_check(struct snap *s, struct cc_error **err);

/* ---- service.c ----------------------------------------------------------------------------------
 */

struct cc_grpc_service;
/* The containerd.services.snapshots.v1.Snapshots service; userdata is the struct snap. */
extern const struct cc_grpc_service snap_grpc_service;
