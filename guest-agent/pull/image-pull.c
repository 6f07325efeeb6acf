/*
 * The image pull itself, with the image-pull library (guest-agent/image/, libccimage.a):
 * pulls, verifies and unpacks the image into the VM's layer store (shared by every container
 * of the pod), and mounts the container's rootfs as an overlay of its layers plus a writable
 * upper at <containers_dir>/<container_id>/rootfs: the root path CreateContainer then accepts.
 * agent_image_pull_here() runs in cc-agent (which links the library) or in the pull helper
 * cc-agent-pull that cc-agent-static starts for each pull (variants/image-pull-exec.c).
 *
 * Registry settings live in a JSON file in the guest image (default /etc/cc-agent/image.json,
 * $CC_AGENT_IMAGE_CONFIG for host tests), never in the request: the host is not trusted to
 * choose where the guest fetches from or which keys it uses.
 *   {"store_dir": "/run/kata-containers/image",
 *    "insecure_registries": ["10.0.2.2:5000"], "mirror": "host:port",
 *    "auth_file": "/etc/cc-agent/auth.json", "ca_file": "/etc/cc-agent/ca.pem",
 *    "key_files": ["/etc/cc-agent/keys/key.pem"],
 *    "keys_json": "/etc/cc-agent/keys.json",  (offline_fs KEKs: {"repo/type/tag": "base64"})
 *    "kbs_url": "https://kbs.example:8080", "kbs_cert_file": "/etc/cc-agent/kbs-ca.pem",
 *    "kbs_attest_early": true,  (attest as the pull starts, ahead of its first key request)
 *    "signature_policy": "/etc/containers/policy.json",
 *    "registries_d": "/etc/containers/registries.d"}
 * Every key is optional; no file means the defaults (TLS to every registry, no keys, image
 * signatures not verified). signature_policy and its keys are files of the measured guest
 * image (containers-policy.json(5), as for skopeo --policy). The pod's initdata can name
 * another in its cdh.toml, [image] image_security_policy_uri (CoCo's key): a kbs:/// resource
 * (fetched after attestation, its keys likewise) or a file of the guest image.
 *
 * Keys for layers encrypted with CoCo's key provider come from a KBS after attestation
 * (guest-agent/attest): the one the pod's initdata names (its cdh.toml [kbc] url and kbs_cert,
 * or aa.toml [token_configs.kbs]; the agent left the initdata at KBC_INITDATA_FILE, and its
 * digest is bound to the TEE launch), else kbs_url of this file. The initdata also goes with the
 * attestation, so the KBS's policy can tell pods apart by it. Registry credentials (an auth.json)
 * come from the URI its cdh.toml names ([image] authenticated_registry_credentials_uri), else
 * from Kata's kernel parameter agent.image_registry_auth=URI.
 *
 * Development images may also name plain-HTTP registries on the kernel command line,
 * agent.image_insecure=HOST:PORT[,HOST:PORT...] (guest-agent/init/config.c), added to the file's
 * insecure_registries: the guest image stays the same and only the boot line differs (the
 * host's registry is 10.0.2.2:PORT under QEMU user networking). This does not hand the choice
 * to an unmeasured host: in TEE launches the kernel command line is measured with the kernel
 * (SEV/SNP kernel-hashes, TDX RTMR[2]), so a different line gives a different measurement and
 * attestation fails. Only the request fields stay untrusted.
 */
#include "guest-agent/image-pull.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libgen.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cc/fileio.h"
#include "cc/json.h"
#include "cc/macro.h"

#include "guest-agent/agent.h"
#include "guest-agent/attest/kbc.h"
#include "guest-agent/image/image.h"

#define IMAGE_CONFIG_DEFAULT "/etc/cc-agent/image.json"
#define IMAGE_CONFIG_MAX     (64 * 1024)

struct image_settings {
        char *store_dir;
        char **insecure;
        char *mirror;
        char *auth_file;
        char *ca_file;
        char **key_files;
        char *kbs_url;
        char *kbs_cert_file;
        char *keys_json;
        char *signature_policy;
        char *registries_d;
        char *auth_json; /* the initdata's registry credentials (auth.json), in memory only */
        size_t auth_json_len;
        char *auth_json_uri;
        bool late; /* kbs_attest_early false: attest at the first resource request */
        bool policy_from_initdata;
};

static void settings_done(struct image_settings *s)
{
        free(s->store_dir);
        cc_strv_free(s->insecure);
        free(s->mirror);
        free(s->auth_file);
        free(s->kbs_url);
        free(s->kbs_cert_file);
        free(s->keys_json);
        free(s->ca_file);
        cc_strv_free(s->key_files);
        free(s->signature_policy);
        free(s->registries_d);
        if (s->auth_json)
                explicit_bzero(s->auth_json, s->auth_json_len);
        free(s->auth_json);
        free(s->auth_json_uri);
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

static int get_attest_early(struct json_object *o, struct image_settings *s, struct cc_error **err)
{
        bool early = true;
        int r = cc_json_get_bool(o, "kbs_attest_early", &early, err);
        s->late = !early;
        return r == -ENOENT ? 0 : r;
}

/* Reads the image settings; the store defaults to <parent of containers_dir>/image. */
static int load_settings(const struct agent_pull_req *req, struct image_settings *s,
                         struct cc_error **err)
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
                    (r = get_opt_strv(o, "key_files", &s->key_files, err)) < 0 ||
                    (r = get_opt_string(o, "keys_json", &s->keys_json, err)) < 0 ||
                    (r = get_opt_string(o, "kbs_url", &s->kbs_url, err)) < 0 ||
                    (r = get_opt_string(o, "kbs_cert_file", &s->kbs_cert_file, err)) < 0 ||
                    (r = get_opt_string(o, "signature_policy", &s->signature_policy, err)) < 0 ||
                    (r = get_opt_string(o, "registries_d", &s->registries_d, err)) < 0 ||
                    (r = get_attest_early(o, s, err)) < 0)
                        return cc_error_wrap(err, -r, "image configuration %s", path);
        }
        if (!cc_isempty(req->image_insecure) &&
            (r = merge_cmdline_insecure(s, req->image_insecure, err)) < 0)
                return r;
        if (!s->store_dir) {
                _cleanup_free_ char *copy = strdup(req->containers_dir);
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

/*
 * The KBS broker when a KBS is named (initdata first, then the image's file), wrapping the
 * offline_fs broker in *keys if any. The TEE is the guest's own: sample evidence only where no
 * TEE device exists (the client refuses it in a TEE).
 */
static int kbs_broker(struct image_settings *s, struct img_key_broker **keys, struct cc_error **err)
{
        _cleanup_(kbc_initdata_freep) struct kbc_initdata *id = NULL;
        _cleanup_free_ char *url = NULL, *cert = NULL, *text = NULL;
        size_t len = 0;
        _cleanup_error_ struct cc_error *rerr = NULL;
        int r = cc_read_file(KBC_INITDATA_FILE, 256 << 10, &text, &len, &rerr);
        if (r == 0) {
                _cleanup_free_ char *policy = NULL;
                if ((r = kbc_initdata_parse(text, len, &id, err)) < 0 ||
                    (r = kbc_initdata_kbs(id, &url, &cert, err)) < 0 ||
                    (r = kbc_initdata_cdh_get(id, "image.image_security_policy_uri", &policy,
                                              err)) < 0)
                        return cc_error_wrap(err, -r, "%s", KBC_INITDATA_FILE);
                /* The pod owner's signature policy (a kbs:/// resource or a guest file) replaces
                 * the image's: initdata is bound to the launch. */
                if (policy) {
                        cc_log_info("signature policy from initdata: %s", policy);
                        free(s->signature_policy);
                        s->signature_policy = TAKE_PTR(policy);
                        s->policy_from_initdata = true;
                }
        } else if (r != -ENOENT) {
                return cc_error_set(err, -r, "%s", cc_error_message(rerr));
        }
        if (!url && s->kbs_url) {
                url = strdup(s->kbs_url);
                if (!url)
                        return -ENOMEM;
                if (s->kbs_cert_file &&
                    (r = cc_read_file(s->kbs_cert_file, 1 << 20, &cert, &len, err)) < 0)
                        return cc_error_wrap(err, -r, "kbs_cert_file");
        }
        if (url) {
                struct kbc_client_config cfg = {
                        .url = url,
                        .cert_pem = cert,
                        .tee = kbc_attester_detect(NULL),
                        .key_alg = KBC_KEY_EC_P256,
                        .initdata = id,
                        .attest_early = !s->late,
                };
                struct img_key_broker *kb = NULL;
                if ((r = kbc_key_broker(&cfg, *keys, &kb, err)) < 0)
                        return cc_error_wrap(err, -r, "KBS key broker");
                *keys = kb;
        }
        /* Registry credentials the pod owner named in initdata, else in Kata's kernel parameter
         * agent.image_registry_auth= (measured with the kernel in a TEE launch); a kbs:///
         * resource is released after attestation, never written to a disk or sent to the host. */
        _cleanup_free_ char *cmdline = NULL;
        size_t cl = 0;
        _cleanup_error_ struct cc_error *cerr = NULL;
        (void)cc_read_file("/proc/cmdline", 64 << 10, &cmdline, &cl, &cerr);
        return kbc_registry_credentials(id, cmdline, *keys, &s->auth_json, &s->auth_json_len,
                                        &s->auth_json_uri, err);
}

static int make_dir(const char *path, mode_t mode, struct cc_error **err)
{
        if (mkdir(path, mode) < 0 && errno != EEXIST)
                return cc_error_set(err, errno, "mkdir %s: %m", path);
        return 0;
}

/* The settings and key brokers of a pull (the KBS's attestation starts here). */
static int pull_setup(const struct agent_pull_req *req, struct image_settings *s,
                      struct img_key_broker **keys, struct cc_error **err)
{
        int r = load_settings(req, s, err);
        if (r == 0 && (s->key_files || s->keys_json))
                r = img_key_broker_offline_fs((const char *const *)s->key_files, s->keys_json, keys,
                                              err);
        if (r == 0)
                r = kbs_broker(s, keys, err);
        return r;
}

/* A spare helper's setup, done while it waits for its pull (agent_image_pull_prepare). */
static struct {
        pthread_t thread;
        bool started;
        struct agent_pull_req req;
        struct image_settings s;
        struct img_key_broker *keys;
        struct img_sig_prepared *sig; /* the signature policy, its keys read, its code run */
        int r;
        struct cc_error *err;
} prepared;

static void *prepare_thread(void *data)
{
        prepared.r = pull_setup(&prepared.req, &prepared.s, &prepared.keys, &prepared.err);
        if (prepared.r < 0 || !prepared.s.signature_policy)
                return NULL;
        /* Best effort: on failure the pull loads the policy itself and reports why. */
        struct img_pull_opts o = {.policy_file = prepared.s.signature_policy,
                                  .registries_d = prepared.s.registries_d,
                                  .keys = prepared.keys};
        _cleanup_error_ struct cc_error *err = NULL;
        if (img_sig_prepare(&o, &prepared.sig, &err) < 0)
                cc_log_debug("spare helper: signature policy %s not loaded ahead: %s",
                             o.policy_file, cc_error_message(err));
        return NULL;
}

void agent_image_pull_prepare(const struct agent_pull_req *req)
{
        prepared.req = *req;
        prepared.started = pthread_create(&prepared.thread, NULL, prepare_thread, NULL) == 0;
}

void agent_image_pull_unprepare(void)
{
        if (!prepared.started)
                return;
        pthread_join(prepared.thread, NULL);
        prepared.started = false;
        settings_done(&prepared.s);
        prepared.sig = img_sig_prepared_free(prepared.sig);
        prepared.keys = img_key_broker_free(prepared.keys);
        cc_error_free(prepared.err);
        prepared.err = NULL;
}

int agent_image_pull_here(const struct agent_pull_req *req, struct cc_error **err)
{
        const char *image = req->image, *container_id = req->container_id, *creds = req->creds;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        struct image_settings s = {0};
        _cleanup_(img_key_broker_freep) struct img_key_broker *keys = NULL;
        _cleanup_(img_sig_prepared_freep) struct img_sig_prepared *sig = NULL;
        int r;
        if (prepared.started) {
                /* Same inputs (the helper's arguments, the guest's files): its result is ours,
                 * failure included, so that a KBS that hangs costs one timeout, not two. */
                pthread_join(prepared.thread, NULL);
                prepared.started = false;
                s = prepared.s;
                keys = TAKE_PTR(prepared.keys);
                sig = TAKE_PTR(prepared.sig);
                if ((r = prepared.r) < 0 && err) {
                        cc_error_free(*err);
                        *err = TAKE_PTR(prepared.err);
                }
                cc_error_free(prepared.err);
        } else {
                r = pull_setup(req, &s, &keys, err);
        }
        if (r < 0) {
                settings_done(&s);
                return r;
        }
        struct img_pull_opts o = {
                .store_dir = s.store_dir,
                .creds = cc_isempty(creds) ? NULL : creds,
                .auth_file = s.auth_file,
                .auth_json = s.auth_json,
                .auth_json_len = s.auth_json_len,
                .auth_json_from = s.auth_json_uri,
                .insecure_registries = (const char *const *)s.insecure,
                .ca_file = s.ca_file,
                .mirror = s.mirror,
                .flags = IMG_PULL_KEEP_OWNERS,
                .keys = keys,
                .policy_file = s.signature_policy,
                .registries_d = s.registries_d,
                .sig_prepared = sig,
        };
        if (s.signature_policy)
                cc_log_info("image %s: signature policy %s (%s, named by %s)%s", image,
                            s.signature_policy,
                            !strncmp(s.signature_policy, "kbs://", 6) ? "a KBS resource"
                                                                      : "a guest image file",
                            s.policy_from_initdata ? "the pod's initdata" : "the image settings",
                            sig ? "; loaded ahead" : "");
        _cleanup_(img_pulled_freep) struct img_pulled *img = NULL;
        /* Trusted storage that came with a container: layers and writable layers go there. */
        bool late = access(AGENT_TRUSTED_LATE_DIR "/containers", F_OK) == 0;
        const char *wdir = late ? AGENT_TRUSTED_LATE_DIR "/containers" : req->containers_dir;
        if (late)
                o.store_dir = AGENT_TRUSTED_LATE_DIR "/image";
        _cleanup_free_ char *dir = agent_container_path(req->containers_dir, container_id, NULL);
        _cleanup_free_ char *wcdir = agent_container_path(wdir, container_id, NULL);
        _cleanup_free_ char *upper = agent_container_path(wdir, container_id, "upper");
        _cleanup_free_ char *work = agent_container_path(wdir, container_id, "work");
        _cleanup_free_ char *rootfs =
                agent_container_path(req->containers_dir, container_id, "rootfs");
        if (!dir || !wcdir || !upper || !work || !rootfs)
                r = -ENOMEM;
        else if (access(rootfs, F_OK) == 0)
                r = cc_error_set(err, EEXIST, "container %s already has a rootfs", container_id);
        else if ((r = make_dir(o.store_dir, 0700, err)) == 0)
                r = img_pull(&o, image, &img, err);
        settings_done(&s);
        if (r < 0)
                return cc_error_wrap(err, -r, "pull image %s", image);

        if ((r = make_dir(dir, 0700, err)) < 0 || (r = make_dir(wcdir, 0700, err)) < 0 ||
            (r = make_dir(upper, 0755, err)) < 0 || (r = make_dir(work, 0700, err)) < 0 ||
            (r = make_dir(rootfs, 0755, err)) < 0 ||
            (r = img_rootfs_mount(img, upper, work, rootfs, IMG_PULL_KEEP_OWNERS, err)) < 0) {
                agent_image_remove_rootfs(req->containers_dir, container_id);
                return cc_error_wrap(err, -r, "rootfs of %s", container_id);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        cc_log_info("pulled image %s for container %s: %zu layers, %llu bytes fetched, in %.1f "
                    "ms%s",
                    image, container_id, img->n_layers, (unsigned long long)img->bytes_fetched,
                    (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
                    late ? ", onto the trusted storage" : "");
        return 0;
}

/* The agent built with the pull library pulls in its own process. */
static int pull_in_process(struct agent *a, const char *image, const char *container_id,
                           const char *creds, struct cc_error **err)
{
        const struct agent_pull_req req = {
                .containers_dir = a->cfg.containers_dir,
                .image_insecure = a->cfg.image_insecure,
                .image = image,
                .container_id = container_id,
                .creds = creds,
        };
        return agent_image_pull_here(&req, err);
}

/* The agent's own process is always ready to pull: nothing to start ahead. */
static void prestart_nothing(struct agent *a)
{
}

const struct agent_puller agent_puller_in_process = {
        .name = "in-process",
        .pull = pull_in_process,
        .prestart = prestart_nothing,
};
