/*
 * grpc.Image (Kata CC-0.8.0 image.proto): PullImage inside the guest, with the image-pull
 * library (guest-agent/image/, libccimage.a). The handler admits the request (policy, ids),
 * pulls, verifies and unpacks the image into the VM's layer store (shared by every container
 * of the pod), and mounts the container's rootfs as an overlay of its layers plus a writable
 * upper at <containers_dir>/<container_id>/rootfs: the root path CreateContainer then accepts.
 * RemoveContainer releases it (agent_image_release).
 *
 * Registry settings live in a JSON file in the guest image (default /etc/cc-agent/image.json,
 * $CC_AGENT_IMAGE_CONFIG for host tests), never in the request: the host is not trusted to
 * choose where the guest fetches from or which keys it uses.
 *   {"store_dir": "/run/kata-containers/image",
 *    "insecure_registries": ["10.0.2.2:5000"], "mirror": "host:port",
 *    "auth_file": "/etc/cc-agent/auth.json", "ca_file": "/etc/cc-agent/ca.pem",
 *    "key_files": ["/etc/cc-agent/keys/key.pem"]}
 * Every key is optional; no file means the defaults (TLS to every registry, no keys).
 *
 * Development images may also name plain-HTTP registries on the kernel command line,
 * agent.image_insecure=HOST:PORT[,HOST:PORT...] (guest-agent/config.c), added to the file's
 * insecure_registries: the guest image stays the same and only the boot line differs (the
 * host's registry is 10.0.2.2:PORT under QEMU user networking). This does not hand the choice
 * to an unmeasured host: in TEE launches the kernel command line is measured with the kernel
 * (SEV/SNP kernel-hashes, TDX RTMR[2]), so a different line gives a different measurement and
 * attestation fails. Only the request fields stay untrusted.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cc/fileio.h"
#include "cc/json.h"
#include "cc/macro.h"

#include "guest-agent/agent.h"
#include "guest-agent/image/image.h"
#include "guest-agent/validate.h"
#include "kata/agent.pb-c.h"
#include "kata/image.pb-c.h"

#define IMAGE_CONFIG_DEFAULT "/etc/cc-agent/image.json"
#define IMAGE_CONFIG_MAX     (64 * 1024)

struct image_settings {
        char *store_dir;
        char **insecure;
        char *mirror;
        char *auth_file;
        char *ca_file;
        char **key_files;
};

static void settings_done(struct image_settings *s)
{
        free(s->store_dir);
        cc_strv_free(s->insecure);
        free(s->mirror);
        free(s->auth_file);
        free(s->ca_file);
        cc_strv_free(s->key_files);
}

static int get_opt_string(struct json_object *o, const char *key, char **ret, struct cc_error **err)
{
        const char *v;
        int r = cc_json_get_string(o, key, &v, err);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        return (*ret = strdup(v)) ? 0 : -ENOMEM;
}

/* A registry host[:port] as it appears in an image reference: letters, digits, '.', '-', ':',
 * '[' and ']' (IPv6), 1..255 bytes. */
static bool valid_registry(const char *s, size_t n)
{
        if (n == 0 || n > 255)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                      (s[i] >= '0' && s[i] <= '9') || strchr(".-:[]", s[i])))
                        return false;
        return true;
}

/* Adds the comma-separated registries of agent.image_insecure= to s->insecure (no duplicates). */
static int merge_cmdline_insecure(struct image_settings *s, const char *list, struct cc_error **err)
{
        size_t n = 0;
        while (s->insecure && s->insecure[n])
                n++;
        for (const char *p = list; *p;) {
                size_t len = strcspn(p, ",");
                if (!valid_registry(p, len))
                        return cc_error_set(err, EINVAL,
                                            "agent.image_insecure: invalid registry '%.*s'",
                                            (int)(len > 64 ? 64 : len), p);
                bool dup = false;
                for (size_t i = 0; i < n && !dup; i++)
                        dup = strlen(s->insecure[i]) == len && memcmp(s->insecure[i], p, len) == 0;
                if (!dup) {
                        char **v = realloc(s->insecure, (n + 2) * sizeof(*v));
                        if (!v)
                                return -ENOMEM;
                        s->insecure = v;
                        if (!(v[n] = strndup(p, len)))
                                return -ENOMEM;
                        v[++n] = NULL;
                }
                p += len;
                if (*p == ',')
                        p++;
        }
        return 0;
}

static int get_opt_strv(struct json_object *o, const char *key, char ***ret, struct cc_error **err)
{
        int r = cc_json_get_strv(o, key, ret, err);
        return r == -ENOENT ? 0 : r;
}

/* Reads the image settings; the store defaults to <parent of containers_dir>/image. */
static int load_settings(struct agent *a, struct image_settings *s, struct cc_error **err)
{
        const char *path = getenv("CC_AGENT_IMAGE_CONFIG");
        if (cc_isempty(path))
                path = IMAGE_CONFIG_DEFAULT;
        _cleanup_json_ struct json_object *o = NULL;
        int r = cc_json_parse_file(path, IMAGE_CONFIG_MAX, 8, &o, err);
        if (r == -ENOENT && err) {
                /* No file: the defaults. */
                cc_error_free(*err);
                *err = NULL;
        } else if (r < 0) {
                return cc_error_wrap(err, -r, "image configuration %s", path);
        }
        if (o) {
                if ((r = get_opt_string(o, "store_dir", &s->store_dir, err)) < 0 ||
                    (r = get_opt_string(o, "mirror", &s->mirror, err)) < 0 ||
                    (r = get_opt_string(o, "auth_file", &s->auth_file, err)) < 0 ||
                    (r = get_opt_string(o, "ca_file", &s->ca_file, err)) < 0 ||
                    (r = get_opt_strv(o, "insecure_registries", &s->insecure, err)) < 0 ||
                    (r = get_opt_strv(o, "key_files", &s->key_files, err)) < 0)
                        return cc_error_wrap(err, -r, "image configuration %s", path);
        }
        if (!cc_isempty(a->cfg.image_insecure) &&
            (r = merge_cmdline_insecure(s, a->cfg.image_insecure, err)) < 0)
                return r;
        if (!s->store_dir) {
                _cleanup_free_ char *copy = strdup(a->cfg.containers_dir);
                if (!copy || asprintf(&s->store_dir, "%s/image", dirname(copy)) < 0)
                        return -ENOMEM;
        }
        if (s->store_dir[0] != '/')
                return cc_error_set(err, EINVAL,
                                    "image configuration %s: store_dir must be "
                                    "absolute",
                                    path);
        return 0;
}

/* <containers_dir>/<id>/<leaf> (id already validated as an identifier). */
static char *container_path(struct agent *a, const char *id, const char *leaf)
{
        char *p = NULL;
        if (asprintf(&p, "%s/%s%s%s", a->cfg.containers_dir, id, leaf ? "/" : "",
                     leaf ? leaf : "") < 0)
                return NULL;
        return p;
}

static int make_dir(const char *path, mode_t mode, struct cc_error **err)
{
        if (mkdir(path, mode) < 0 && errno != EEXIST)
                return cc_error_set(err, errno, "mkdir %s: %m", path);
        return 0;
}

int agent_image_pull(struct agent *a, const char *image, const char *container_id,
                     const char *creds, struct cc_error **err)
{
        struct image_settings s = {0};
        int r = load_settings(a, &s, err);
        _cleanup_(img_key_broker_freep) struct img_key_broker *keys = NULL;
        if (r == 0 && s.key_files)
                r = img_key_broker_offline_fs((const char *const *)s.key_files, NULL, &keys, err);
        if (r < 0) {
                settings_done(&s);
                return r;
        }
        struct img_pull_opts o = {
                .store_dir = s.store_dir,
                .creds = cc_isempty(creds) ? NULL : creds,
                .auth_file = s.auth_file,
                .insecure_registries = (const char *const *)s.insecure,
                .ca_file = s.ca_file,
                .mirror = s.mirror,
                .flags = IMG_PULL_KEEP_OWNERS,
                .keys = keys,
        };
        _cleanup_(img_pulled_freep) struct img_pulled *img = NULL;
        _cleanup_free_ char *dir = container_path(a, container_id, NULL);
        _cleanup_free_ char *upper = container_path(a, container_id, "upper");
        _cleanup_free_ char *work = container_path(a, container_id, "work");
        _cleanup_free_ char *rootfs = container_path(a, container_id, "rootfs");
        if (!dir || !upper || !work || !rootfs)
                r = -ENOMEM;
        else if (access(rootfs, F_OK) == 0)
                r = cc_error_set(err, EEXIST, "container %s already has a rootfs", container_id);
        else if ((r = make_dir(s.store_dir, 0700, err)) == 0)
                r = img_pull(&o, image, &img, err);
        settings_done(&s);
        if (r < 0)
                return cc_error_wrap(err, -r, "pull image %s", image);

        if ((r = make_dir(dir, 0700, err)) < 0 || (r = make_dir(upper, 0755, err)) < 0 ||
            (r = make_dir(work, 0700, err)) < 0 || (r = make_dir(rootfs, 0755, err)) < 0 ||
            (r = img_rootfs_mount(img, upper, work, rootfs, IMG_PULL_KEEP_OWNERS, err)) < 0) {
                agent_image_release(a, container_id);
                return cc_error_wrap(err, -r, "rootfs of %s", container_id);
        }
        cc_log_info("pulled image %s for container %s: %zu layers, %llu bytes fetched", image,
                    container_id, img->n_layers, (unsigned long long)img->bytes_fetched);
        return 0;
}

/*
 * Kata >= 3.3's guest pull: CreateContainer carries one Storage with driver
 * "image_guest_pull", source = the image reference ("pause" for the sandbox, whose process is
 * the agent's own), and a driver option "image_guest_pull=<json metadata>" (unused here). The
 * rootfs is made where every rootfs of ours lives; a mount point elsewhere is refused, since the
 * host does not choose guest paths.
 */
int agent_image_storages(struct agent *a, const char *container_id, Grpc__Storage **storages,
                         size_t n, struct cc_error **err)
{
        if (n != 1 || !storages[0] || !cc_streq(storages[0]->driver, "image_guest_pull"))
                return cc_error_set(err, EOPNOTSUPP,
                                    "storage driver '%s' is not supported (only one "
                                    "image_guest_pull storage is)",
                                    n && storages[0] ? storages[0]->driver : "");
        const Grpc__Storage *st = storages[0];
        if (cc_isempty(st->source) || strlen(st->source) > 4096)
                return cc_error_set(err, EINVAL, "image_guest_pull storage has no image reference");
        _cleanup_free_ char *rootfs = container_path(a, container_id, "rootfs");
        if (!rootfs)
                return -ENOMEM;
        if (!cc_isempty(st->mount_point) && strcmp(st->mount_point, rootfs) != 0)
                return cc_error_set(err, EPERM,
                                    "image_guest_pull mount point %s refused: the rootfs of %s "
                                    "is made at %s",
                                    st->mount_point, container_id, rootfs);
        if (strcmp(st->source, "pause") == 0)
                return 0;
        return agent_image_pull(a, st->source, container_id, NULL, err);
}

static int pull_image(struct cc_ttrpc_call *call, void *userdata, const ProtobufCMessage *req_,
                      ProtobufCMessage *resp_, struct cc_error **err)
{
        struct agent *a = userdata;
        const Grpc__PullImageRequest *req = (const void *)req_;
        Grpc__PullImageResponse *resp = (void *)resp_;
        int r = agent_rpc_admit(a, "PullImage",
                                cc_isempty(req->container_id) ? NULL : req->container_id, err);
        if (r < 0)
                return r;
        if (cc_isempty(req->image) || strlen(req->image) > 4096)
                return cc_error_set(err, EINVAL, "image reference is empty or too long");
        /* The rootfs goes under the container's directory: without an id there is nowhere. */
        if (cc_isempty(req->container_id))
                return cc_error_set(err, EINVAL, "PullImage needs a container_id");
        if ((r = agent_validate_id(req->container_id, "container id", err)) < 0)
                return r;
        if ((r = agent_image_pull(a, req->image, req->container_id, req->source_creds, err)) < 0)
                return r;
        resp->image_ref = cc_ttrpc_call_strdup(call, req->image);
        return resp->image_ref ? 0 : -ENOMEM;
}

void agent_image_release(struct agent *a, const char *container_id)
{
        _cleanup_free_ char *rootfs = container_path(a, container_id, "rootfs");
        if (!rootfs)
                return;
        /* Only what PullImage made: a container without a pulled rootfs keeps its files. */
        if (umount2(rootfs, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
                cc_log_warn("unmount %s: %m", rootfs);
        _cleanup_close_ int base = open(a->cfg.containers_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (base < 0)
                return;
        _cleanup_close_ int cdir =
                openat(base, container_id, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cdir < 0 || faccessat(cdir, "upper", F_OK, AT_SYMLINK_NOFOLLOW) < 0)
                return;
        int r = cc_rm_rf_at(base, container_id);
        if (r < 0)
                cc_log_warn("remove %s/%s: %s", a->cfg.containers_dir, container_id, strerror(-r));
}

static const struct cc_ttrpc_method image_methods[] = {
        {"PullImage", &grpc__pull_image_request__descriptor, &grpc__pull_image_response__descriptor,
         pull_image, 0},
};

static const struct cc_ttrpc_service image_service = {
        .name = "grpc.Image",
        .methods = image_methods,
        .n_methods = CC_ARRAY_SIZE(image_methods),
};

int agent_rpc_register_image(struct agent *a, struct cc_ttrpc_server *srv)
{
        return cc_ttrpc_server_register(srv, &image_service, a);
}
