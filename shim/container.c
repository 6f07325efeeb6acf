/*
 * Task.Create: the task is reserved in CREATING at once (so a second Create of the id fails
 * and Shutdown waits), then, depending on the role (shim_spec_role), the pod's VM is booted
 * (sandbox, single container) and the container is made in the guest (single container, app
 * container): its rootfs pulled by the guest (guest pull) or copied from the host (non-TEE
 * development only), its spec translated, the small host files it mounts copied, then the
 * agent's CreateContainer. On failure everything made is removed again, the VM included when
 * this Create booted it.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "cc/cleanup.h"
#include "cc/json.h"
#include "cc/log.h"

#include "containerd/events/task.pb-c.h"
#include "kata/image.pb-c.h"
#include "runtimeoptions/v1/config.pb-c.h"
#include "shim/task-internal.h"

#define SMALL_FILES_MAX (16u << 20) /* the host files a spec mounts, copied into the guest */

bool shim__type_url_is(const char *url, const char *name)
{
        const char *slash = url ? strrchr(url, '/') : NULL;
        const char *tail = slash ? slash + 1 : url;
        return cc_streq(tail, name);
}

/* The handler's configuration: runtime options ConfigPath, KATA_CONF_FILE, default (Kata's
 * precedence); the pod's io.katacontainers.config_path may then select another file within the
 * limits that configuration sets (shim_config_resolve). */
static int resolve_config(const Containerd__Task__V2__CreateTaskRequest *req,
                          struct json_object *spec, struct shim_config *cfg, struct cc_error **err)
{
        _cleanup_free_ char *from_opts = NULL;
        if (req->options &&
            (shim__type_url_is(req->options->type_url, "runtimeoptions.v1.Options") ||
             shim__type_url_is(req->options->type_url, "cri.runtimeoptions.v1.Options"))) {
                Runtimeoptions__V1__Options *o = runtimeoptions__v1__options__unpack(
                        NULL, req->options->value.len, req->options->value.data);
                if (!o)
                        return cc_error_set(err, EINVAL, "cannot decode the runtime options (%s)",
                                            req->options->type_url);
                if (!cc_isempty(o->config_path))
                        from_opts = strdup(o->config_path);
                runtimeoptions__v1__options__free_unpacked(o, NULL);
        }
        const char *path = from_opts;
        if (cc_isempty(path))
                path = getenv("KATA_CONF_FILE");
        if (cc_isempty(path))
                path = SHIM_DEFAULT_CONFIG;
        int r = shim_config_resolve(path, spec, cfg, err);
        if (r < 0)
                return cc_error_wrap(err, -r, "configuration");
        return 0;
}

/* ---- the rootfs ------------------------------------------------------------------------- */

static bool dir_has_entries(const char *path)
{
        DIR *d = opendir(path);
        if (!d)
                return false;
        struct dirent *de;
        bool any = false;
        while (!any && (de = readdir(d)))
                any = strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
        closedir(d);
        return any;
}

/* Mounts the rootfs mounts on <bundle>/rootfs (containerd's contract), for copying only. */
static int mount_rootfs(const Containerd__Task__V2__CreateTaskRequest *req, const char *target,
                        struct cc_error **err)
{
        for (size_t i = 0; i < req->n_rootfs; i++) {
                const Containerd__Types__Mount *m = req->rootfs[i];
                unsigned long flags = 0;
                _cleanup_free_ char *data = NULL;
                size_t len = 0;
                for (size_t k = 0; k < m->n_options; k++) {
                        const char *o = m->options[k];
                        if (strcmp(o, "ro") == 0) {
                                flags |= MS_RDONLY;
                                continue;
                        }
                        if (strcmp(o, "rbind") == 0 || strcmp(o, "bind") == 0) {
                                flags |= MS_BIND | (o[0] == 'r' ? MS_REC : 0);
                                continue;
                        }
                        size_t ol = strlen(o);
                        char *nd = realloc(data, len + ol + 2);
                        if (!nd)
                                return -ENOMEM;
                        data = nd;
                        if (len)
                                data[len++] = ',';
                        memcpy(data + len, o, ol + 1);
                        len += ol;
                }
                if (mount(m->source, target, m->type, flags, data) < 0)
                        return cc_error_set(err, errno, "mount %s (%s) on %s: %m", m->source,
                                            m->type, target);
        }
        return 0;
}

/* Where a container's rootfs comes from. */
struct rootfs {
        enum shim_rootfs_kind kind;
        char *image;      /* the guest-pull volume's image (may be NULL) */
        char *host_dir;   /* no mounts: root.path on the host */
        char *guest_root; /* where the agent expects it */
};

static void rootfs_done(struct rootfs *rf)
{
        free(rf->image);
        free(rf->host_dir);
        free(rf->guest_root);
}

static int rootfs_classify(const Containerd__Task__V2__CreateTaskRequest *req,
                           struct json_object *spec, struct rootfs *rf, struct cc_error **err)
{
        _cleanup_free_ struct shim_mount *ms = calloc(req->n_rootfs + 1, sizeof(*ms));
        if (!ms)
                return -ENOMEM;
        for (size_t i = 0; i < req->n_rootfs; i++)
                ms[i] = (struct shim_mount){req->rootfs[i]->type, req->rootfs[i]->source,
                                            req->rootfs[i]->options, req->rootfs[i]->n_options};
        int r = shim_rootfs_classify(ms, req->n_rootfs, &rf->kind, &rf->image, err);
        if (r < 0)
                return r;
        if (asprintf(&rf->guest_root, "%s/%s/rootfs", SHIM_GUEST_CONTAINERS_DIR, req->id) < 0)
                return -ENOMEM;
        if (rf->kind != SHIM_ROOTFS_NONE)
                return 0;
        /* No mounts: ctr --rootfs (a host directory in root.path), or the CC fork, where the
         * guest supplies the image named by the CRI annotation. */
        const char *rp = NULL;
        cc_json_get_string(spec, "/root/path", &rp, NULL);
        if (rp && rp[0] != '/' && asprintf(&rf->host_dir, "%s/%s", req->bundle, rp) < 0)
                return -ENOMEM;
        if (rp && rp[0] == '/' && !(rf->host_dir = strdup(rp)))
                return -ENOMEM;
        if (rf->host_dir && dir_has_entries(rf->host_dir))
                rf->kind = SHIM_ROOTFS_HOST;
        else if (!cc_isempty(shim_spec_annotation(spec, ANNO_IMAGE_NAME)))
                rf->kind = SHIM_ROOTFS_GUEST_PULL;
        else
                return cc_error_set(err, EINVAL,
                                    "container %s has no rootfs: no mounts, an empty root.path "
                                    "and no %s annotation",
                                    req->id, ANNO_IMAGE_NAME);
        return 0;
}

static int guest_pull(struct shim *s, const char *cid, const char *image, struct cc_error **err)
{
        Grpc__PullImageRequest req = GRPC__PULL_IMAGE_REQUEST__INIT;
        req.image = (char *)image;
        req.container_id = (char *)cid;
        Grpc__PullImageResponse *resp = NULL;
        int64_t t0 = shim_mono_ns();
        int r = shim_agent_call(s->sb, "grpc.Image", "PullImage", &req.base,
                                &grpc__pull_image_response__descriptor, (ProtobufCMessage **)&resp,
                                (int64_t)s->sb->cfg.create_container_timeout_s * SEC, err);
        if (r < 0)
                return cc_error_wrap(err, -r, "pull image %s in the guest", image);
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        /* For bench/pod-start.sh's breakdown: the pull's share of the container's create. */
        char f[768] = "";
        shim_logfmt_add(f, sizeof(f), "container", "%s", cid);
        shim_logfmt_add(f, sizeof(f), "image", "%s", image);
        shim_logfmt_add(f, sizeof(f), "guest_pull_ms", "%.1f", (double)(shim_mono_ns() - t0) / 1e6);
        cc_log_full(CC_LOG_INFO, 0, f, "container %s: guest pull done", cid);
        return 0;
}

/*
 * A host rootfs travels over the agent channel with CopyFile, file by file: no virtio-fs or 9p
 * share exists in a CoCo guest, and this keeps development pods on the same single channel
 * (bounded by host_rootfs_max_mib). Refused for every TEE profile, and unless the
 * configuration allows it.
 */
static int host_rootfs_copy(struct shim *s, const Containerd__Task__V2__CreateTaskRequest *req,
                            const struct rootfs *rf, struct cc_error **err)
{
        const struct shim_config *cfg = &s->sb->cfg;
        const char *what = req->n_rootfs ? req->rootfs[0]->type : "a host directory";
        if (cfg->tee != HV_TEE_NONE)
                return cc_error_set_code(
                        err, CC_GRPC_FAILED_PRECONDITION,
                        "container %s: its rootfs is on the host (%s), which a confidential (%s) "
                        "pod must not use: configure containerd to use the guest-pull "
                        "snapshotter (cc-snapshotter, or nydus in proxy mode) so that the image is "
                        "pulled inside the guest",
                        req->id, what, hv_tee_to_string(cfg->tee));
        if (!cfg->allow_host_rootfs)
                return cc_error_set_code(
                        err, CC_GRPC_FAILED_PRECONDITION,
                        "container %s: its rootfs is on the host (%s) and %s does not allow "
                        "sharing it ([runtime] allow_host_rootfs = false): use the guest-pull "
                        "snapshotter, or allow it for non-TEE development",
                        req->id, what, cfg->path ? cfg->path : "the built-in configuration");
        _cleanup_free_ char *mnt = NULL;
        bool mounted = false;
        int r;
        if (req->n_rootfs) {
                if (asprintf(&mnt, "%s/rootfs", req->bundle) < 0)
                        return -ENOMEM;
                (void)mkdir(mnt, 0711);
                if ((r = mount_rootfs(req, mnt, err)) < 0)
                        return r;
                mounted = true;
        }
        uint64_t budget = cfg->host_rootfs_max_bytes;
        r = shim_agent_copy_tree(s->sb, mounted ? mnt : rf->host_dir, rf->guest_root, &budget, err);
        if (mounted && umount2(mnt, MNT_DETACH) < 0)
                cc_log_warn("umount %s: %m", mnt);
        if (r < 0)
                return cc_error_wrap(err, -r, "copy the rootfs of %s into the guest", req->id);
        return 0;
}

/* The rootfs into the guest: pulled there, or copied from the host. */
static int rootfs_to_guest(struct shim *s, const Containerd__Task__V2__CreateTaskRequest *req,
                           struct json_object *spec, const struct rootfs *rf, struct cc_error **err)
{
        if (rf->kind != SHIM_ROOTFS_GUEST_PULL)
                return host_rootfs_copy(s, req, rf, err);
        /* The volume's reference when it is pinned to the digest containerd resolved
         * (shim_rootfs_classify), else the CRI annotation's name. */
        const char *anno = shim_spec_annotation(spec, ANNO_IMAGE_NAME);
        const char *name = rf->image && strchr(rf->image, '@') ? rf->image
                           : !cc_isempty(anno)                 ? anno
                                                               : rf->image;
        if (cc_isempty(name))
                return cc_error_set(err, EINVAL,
                                    "container %s: the guest-pull rootfs names no image and the "
                                    "spec has no %s annotation",
                                    req->id, ANNO_IMAGE_NAME);
        return guest_pull(s, req->id, name, err);
}

/* ---- the guest container ------------------------------------------------------------------ */

static int copy_small_files(struct shim *s, struct shim_file_copy *files, size_t n,
                            struct cc_error **err)
{
        uint64_t budget = SMALL_FILES_MAX;
        for (size_t i = 0; i < n; i++) {
                struct stat st;
                if (stat(files[i].host_path, &st) < 0)
                        return cc_error_set(err, errno, "stat %s: %m", files[i].host_path);
                int r = S_ISDIR(st.st_mode)
                                ? shim_agent_copy_tree(s->sb, files[i].host_path,
                                                       files[i].guest_path, &budget, err)
                                : shim_agent_copy_file(s->sb, files[i].host_path,
                                                       files[i].guest_path, &budget, err);
                if (r < 0)
                        return cc_error_wrap(err, -r, "copy %s into the guest", files[i].host_path);
        }
        return 0;
}

/* The translated spec, the files it mounts from the host, the pod volumes it names (storage.c),
 * then CreateContainer with the devices attached for it (devices.c). */
static int create_in_guest(struct shim *s, const char *cid, struct json_object *spec,
                           const char *guest_root, Grpc__Device **devs, size_t n_devs,
                           struct cc_error **err)
{
        Grpc__Spec *gspec = NULL;
        struct shim_file_copy *files = NULL;
        size_t n_files = 0;
        int r = shim_spec_from_oci(spec, cid, guest_root, &gspec, &files, &n_files, err);
        if (r < 0)
                return cc_error_wrap(err, -r, "config.json of %s", cid);
        r = copy_small_files(s, files, n_files, err);
        shim_file_copies_free(files, n_files);
        Grpc__Storage **storages = NULL;
        size_t n_storages = 0;
        if (r >= 0)
                r = shim_storages_for(gspec, &storages, &n_storages);
        if (r >= 0) {
                Grpc__CreateContainerRequest creq = GRPC__CREATE_CONTAINER_REQUEST__INIT;
                creq.container_id = (char *)cid;
                creq.exec_id = (char *)cid;
                creq.oci = gspec;
                creq.storages = storages;
                creq.n_storages = n_storages;
                creq.devices = devs;
                creq.n_devices = n_devs;
                r = shim_agent_call(s->sb, AGENT_SERVICE, "CreateContainer", &creq.base, NULL, NULL,
                                    (int64_t)s->sb->cfg.create_container_timeout_s * SEC, err);
        }
        shim_storages_free(storages, n_storages);
        protobuf_c_message_free_unpacked(&gspec->base, NULL);
        return r;
}

/* The devices first (a host device that is not there fails before any pull), then the rootfs,
 * then the container; a failure detaches what was attached. */
static int create_guest_container(struct shim *s, struct task *t,
                                  const Containerd__Task__V2__CreateTaskRequest *req,
                                  struct json_object *spec, struct cc_error **err)
{
        _cleanup_(rootfs_done) struct rootfs rf = {0};
        Grpc__Device **devs = NULL;
        size_t n_devs = 0;
        int r = shim__devices_attach(s, t, spec, &devs, &n_devs, err);
        if (r >= 0)
                r = rootfs_classify(req, spec, &rf, err);
        if (r >= 0)
                r = rootfs_to_guest(s, req, spec, &rf, err);
        if (r >= 0)
                r = create_in_guest(s, req->id, spec, rf.guest_root, devs, n_devs, err);
        shim__devices_free(devs, n_devs);
        if (r < 0)
                shim__devices_detach(s, t, true);
        return r;
}

/* ---- the pod's VM ----------------------------------------------------------------------- */

/* Boots the pod's VM for a sandbox or a single container (create_lock held). */
static int sandbox_create(struct shim *s, const Containerd__Task__V2__CreateTaskRequest *req,
                          struct json_object *spec, struct cc_error **err)
{
        struct shim_sandbox *sb = calloc(1, sizeof(*sb));
        if (!sb)
                return -ENOMEM;
        shim_config_init(&sb->cfg);
        sb->id = strdup(req->id);
        sb->ns = strdup(s->ns);
        int r;
        if (!sb->id || !sb->ns || (r = shim_vm_run_dir(s->ns, req->id, &sb->run_dir)) < 0) {
                shim_sandbox_free(sb);
                return -ENOMEM;
        }
        if ((r = resolve_config(req, spec, &sb->cfg, err)) < 0 ||
            (r = shim_sandbox_start(sb, spec, err)) < 0) {
                shim_sandbox_free(sb); /* stops what started, removes the run dir */
                return r;
        }
        s->sb = sb;
        shim__watch_start(s);
        return 0;
}

/* Which pod this task belongs to, and whether this shim can hold it. */
static int role_check(struct shim *s, const char *id, enum shim_role role, const char *sbid,
                      struct cc_error **err)
{
        if (role != SHIM_ROLE_CONTAINER && s->sb)
                return cc_error_set_code(err, CC_GRPC_FAILED_PRECONDITION,
                                         "task %s: this shim already runs sandbox %s; it cannot "
                                         "create another sandbox",
                                         id, s->sb->id);
        if (role == SHIM_ROLE_CONTAINER && (!s->sb || strcmp(s->sb->id, sbid) != 0))
                return cc_error_set_code(err, CC_GRPC_FAILED_PRECONDITION,
                                         "container %s: its sandbox %s does not run in this shim",
                                         id, sbid);
        if (role == SHIM_ROLE_CONTAINER && s->sb->vm_dead)
                return cc_error_set_code(err, CC_GRPC_UNAVAILABLE, "sandbox %s: the VM is gone",
                                         sbid);
        return 0;
}

/* ---- the task -------------------------------------------------------------------------- */

static struct task *task_new(const Containerd__Task__V2__CreateTaskRequest *req)
{
        struct task *t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        t->init.task = t;
        shim_proc_sm_init(&t->init.sm, false);
        t->init.terminal = req->terminal;
        t->id = strdup(req->id);
        t->bundle = strdup(req->bundle);
        t->init.stdin_path = strdup(req->stdin ? req->stdin : "");
        t->init.stdout_path = strdup(req->stdout ? req->stdout : "");
        t->init.stderr_path = strdup(req->stderr ? req->stderr : "");
        if (!t->id || !t->bundle || !t->init.stdin_path || !t->init.stdout_path ||
            !t->init.stderr_path) {
                shim__task_free(t);
                return NULL;
        }
        return t;
}

/* Reserves the id (the check and the insertion under one lock): the task is CREATING. */
static int task_reserve(struct shim *s, struct task *t, struct cc_error **err)
{
        pthread_mutex_lock(&s->lock);
        bool exists = shim__task_find(s, t->id) != NULL;
        if (!exists) {
                t->next = s->tasks;
                s->tasks = t;
        }
        pthread_mutex_unlock(&s->lock);
        return exists ? cc_error_set(err, EEXIST, "task %s already exists", t->id) : 0;
}

static void task_unlink(struct shim *s, struct task *t)
{
        struct task **tp = &s->tasks;
        while (*tp && *tp != t)
                tp = &(*tp)->next;
        if (*tp)
                *tp = t->next;
}

static void publish_create(struct shim *s, const struct task *t,
                           const Containerd__Task__V2__CreateTaskRequest *req)
{
        Containerd__Events__TaskCreate ev = CONTAINERD__EVENTS__TASK_CREATE__INIT;
        Containerd__Events__TaskIO io = CONTAINERD__EVENTS__TASK_IO__INIT;
        io.stdin = t->init.stdin_path;
        io.stdout = t->init.stdout_path;
        io.stderr = t->init.stderr_path;
        io.terminal = req->terminal;
        ev.container_id = t->id;
        ev.bundle = t->bundle;
        ev.n_rootfs = req->n_rootfs;
        ev.rootfs = req->rootfs;
        ev.io = &io;
        ev.pid = shim__vmm_pid(s);
        shim_events_publish(s->ev, "/tasks/create", &ev.base);
}

/* What a reserved task becomes: the pod's VM, the guest container, the stdio relays. */
static int task_make(struct shim *s, struct task *t,
                     const Containerd__Task__V2__CreateTaskRequest *req, struct cc_error **err)
{
        _cleanup_free_ char *cfgpath = NULL;
        if (asprintf(&cfgpath, "%s/config.json", req->bundle) < 0)
                return -ENOMEM;
        _cleanup_json_ struct json_object *spec = NULL;
        int r = cc_json_parse_file(cfgpath, 0, 0, &spec, err);
        if (r < 0)
                return r;
        const char *sbid = NULL;
        t->role = shim_spec_role(spec, req->id, &sbid);
        t->in_guest = t->role != SHIM_ROLE_SANDBOX;
        bool new_vm = t->role != SHIM_ROLE_CONTAINER;
        if ((r = role_check(s, req->id, t->role, sbid, err)) < 0)
                return r;
        if (new_vm && (r = sandbox_create(s, req, spec, err)) < 0)
                return r;
        if (t->in_guest && (r = create_guest_container(s, t, req, spec, err)) >= 0)
                r = shim_io_new(s->sb, t->id, NULL, req->terminal, req->stdin, req->stdout,
                                req->stderr, &t->init.io, err);
        if (r < 0 && new_vm) {
                shim__pod_stop(s);
                shim_sandbox_free(s->sb);
                s->sb = NULL;
        }
        return r;
}

int shim__create(struct shim *s, const Containerd__Task__V2__CreateTaskRequest *req,
                 uint32_t *ret_pid, struct cc_error **err)
{
        if (cc_isempty(req->id) || cc_isempty(req->bundle))
                return cc_error_set(err, EINVAL, "id and bundle are required");
        if (!cc_isempty(req->checkpoint))
                return cc_error_set(err, EOPNOTSUPP,
                                    "restoring from a checkpoint is not supported");
        struct task *t = task_new(req);
        if (!t)
                return -ENOMEM;
        int r = task_reserve(s, t, err);
        if (r < 0) {
                shim__task_free(t);
                return r;
        }
        r = task_make(s, t, req, err);
        pthread_mutex_lock(&s->lock);
        if (r < 0) {
                task_unlink(s, t);
        } else {
                (void)shim__proc_fire(s, &t->init, SHIM_PEV_CREATED, 0, NULL, NULL);
                publish_create(s, t, req);
        }
        pthread_mutex_unlock(&s->lock);
        if (r < 0) {
                shim__task_free(t);
                return r;
        }
        *ret_pid = shim__vmm_pid(s);
        cc_log_info("task %s created (%s)", req->id,
                    t->role == SHIM_ROLE_SANDBOX  ? "sandbox"
                    : t->role == SHIM_ROLE_SINGLE ? "single"
                                                  : "container");
        return 0;
}
