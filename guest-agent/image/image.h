#pragma once
/*
 * libccimage: pull an OCI image from a registry and unpack it into a layer store, inside the
 * guest (the host never sees a layer). The same library backs the host command cc-image-pull,
 * used by the tests and the benchmark.
 *
 * What img_pull() does, in order:
 *   1. parses the reference (docker.io/library defaults, tag or digest);
 *   2. GETs the manifest with all four manifest media types in Accept, verifies its digest when
 *      the reference names one, checks the signature policy (policy_file) against that
 *      digest, and for an index picks the entry for the wanted platform;
 *   3. GETs and verifies the image config (entrypoint, cmd, env, workdir, user, diff_ids);
 *   4. streams every layer not yet in the store, at most `max_parallel_layers` at once:
 *      network -> size guard + sha256 of the blob -> [ocicrypt AES-CTR + HMAC] -> gzip/zstd/none
 *      -> sha256 of the tar (diff_id) -> libarchive tar reader -> confined writes into
 *      <store>/staging/; whiteouts become overlay whiteouts (char 0/0, opaque xattr);
 *   5. publishes a layer with rename() to <store>/layers/sha256/<hex of the blob digest> only
 *      when the blob digest, the diff_id and (when encrypted) the HMAC and plain digest all
 *      match; otherwise the staging tree is removed.
 * Nothing is buffered whole: memory per layer in flight is a few hundred KiB.
 *
 * Errors: every function returns 0 or -errno and fills `err` with a message naming the step
 * (and the layer digest for layer failures). The library logs at debug level only.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cc/error.h"

/* Pull behaviour flags (img_pull_opts.flags). */
enum {
        IMG_PULL_KEEP_OWNERS = 1 << 0,   /* chown entries to the tar's uid/gid (needs root) */
        IMG_PULL_ALLOW_DEVICES = 1 << 1, /* create char/block device nodes (else skipped) */
        IMG_PULL_NO_SETID = 1 << 2,      /* strip setuid/setgid bits from every entry */
        IMG_PULL_USER_XATTR = 1 << 3,   /* opaque dirs as user.overlay.opaque (overlay userxattr) */
        IMG_PULL_ALL_INSECURE = 1 << 4, /* plain HTTP to every registry (tests, cc-image-pull) */
};

/* Progress of one layer, called from the thread pulling it (serialise in the callback). */
typedef void (*img_progress_fn)(void *userdata, unsigned layer, unsigned n_layers,
                                const char *digest, uint64_t done, uint64_t total);

struct img_key_broker;
struct img_sig_prepared;

struct img_pull_opts {
        const char *store_dir; /* layer store root (required); shared by all pulls of a VM */

        /* Platform wanted from an index; NULL = the platform this library was built for. */
        const char *os, *arch, *variant;

        /* Credentials: "user:password" (the PullImage source_creds) or an auth file
         * (containers-auth.json, {"auths":{"host":{"auth":"base64(user:pass)"}}}). */
        const char *creds;
        const char *auth_file;
        /* A containers-auth.json document in memory (the agent's, released by a KBS), asked
         * before auth_file; auth_json_from names where it came from in logs and errors. */
        const char *auth_json;
        size_t auth_json_len;
        const char *auth_json_from;

        /* Registries reached over plain HTTP (host[:port]), NULL-terminated; see also
         * IMG_PULL_ALL_INSECURE. */
        const char *const *insecure_registries;
        const char *ca_file; /* extra CA bundle (PEM) for TLS registries */
        const char *mirror;  /* host[:port] tried before the reference's registry, or NULL */

        unsigned max_parallel_layers; /* layers in flight; 0 = min(3, CPUs), at least 2 */
        unsigned retries;             /* per request after the first attempt; 0 = 5 */
        unsigned stall_timeout_ms;    /* abort a transfer after this long without a byte; 0=30s */
        unsigned connect_timeout_ms;  /* 0 = 10 s */

        uint64_t max_manifest_bytes; /* 0 = 4 MiB */
        uint64_t max_config_bytes;   /* 0 = 8 MiB */
        uint64_t max_layer_bytes;    /* uncompressed tar bytes per layer; 0 = 16 GiB */
        uint64_t max_image_bytes;    /* file bytes written for the whole image; 0 = unlimited */
        uint64_t max_inodes;         /* entries created for the whole image; 0 = 1,000,000 */
        uint64_t min_free_bytes;     /* keep this much free in the store; 0 = 16 MiB */

        unsigned flags; /* IMG_PULL_* */

        /* Signature verification: a containers-policy.json(5) file and a
         * containers-registries.d(5) directory (lookaside stores, sigstore attachments), with
         * skopeo's meaning. policy_file (and key paths inside the policy) may also be
         * kbs:///repo/type/tag resource URIs, fetched through `keys` (the key broker). With a
         * policy, the manifest digest the reference resolves to is checked against it before the
         * config or any layer is fetched; NULL = signatures are not verified (logged once per
         * process). registries_d NULL = no lookaside but the default store, sigstore attachments
         * read. */
        const char *policy_file;
        const char *registries_d;
        /* The same policy and registries.d loaded ahead by img_sig_prepare() (a helper waiting
         * for its pull); when set, policy_file and registries_d are not read again. */
        const struct img_sig_prepared *sig_prepared;

        /* Where decryption keys come from; NULL = encrypted layers fail with EACCES. */
        const struct img_key_broker *keys;

        img_progress_fn progress;
        void *progress_data;
};

/* What a container needs from the image config (OCI image-spec config.config). */
struct img_image_config {
        char **entrypoint; /* NULL-terminated, NULL when absent */
        char **cmd;
        char **env;
        char *workdir; /* NULL when absent */
        char *user;
        char *os;
        char *arch;
};

struct img_pulled {
        char *ref;             /* normalised reference, registry/repo:tag[@digest] */
        char *manifest_digest; /* digest of the platform manifest (the image identity) */
        char *config_digest;
        size_t n_layers;
        char **layer_dirs;    /* bottom to top, absolute paths inside store_dir */
        char **layer_digests; /* blob digests, bottom to top */
        struct img_image_config config;
        char *config_json; /* raw image config as received (verified) */
        size_t config_json_len;
        uint64_t bytes_fetched; /* blob bytes fetched by this pull (0 if every layer cached) */
        /* Where layer time went, summed over the layer threads (they overlap): waiting for
         * the network, sha256 (blob, plain and diff_id), decryption, decompression, and the
         * rest (tar parsing and file system writes). */
        struct {
                uint64_t network, digest, decrypt, inflate, extract;
                uint64_t verify; /* signature policy check (0 without a policy) */
        } ns;
};

/* Sets up what every pull needs first (libcurl and its TLS library); img_pull() does it on
 * first use, so this only moves the cost earlier (a helper started ahead of its pull). */
void img_prepare(void);

/*
 * Loads opts->policy_file (kbs:/// through opts->keys) and opts->registries_d as img_pull()
 * would, reads and parses every key the policy names and runs the verification code of each
 * once on a signature that cannot verify, so that a pull given the result (sig_prepared) does
 * only the work that depends on its image. For a helper waiting for its pull: under TCG the
 * first run of that code in a process costs tens of milliseconds (bench/README.md). The keys
 * (and opts->keys) must outlive the result; a pull may use it from several threads.
 */
int img_sig_prepare(const struct img_pull_opts *opts, struct img_sig_prepared **ret,
                    struct cc_error **err);
struct img_sig_prepared *img_sig_prepared_free(struct img_sig_prepared *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct img_sig_prepared *, img_sig_prepared_free)

/* Pulls `ref` per `opts`; *ret is set on success only (free with img_pulled_free()). */
int img_pull(const struct img_pull_opts *opts, const char *ref, struct img_pulled **ret,
             struct cc_error **err);
struct img_pulled *img_pulled_free(struct img_pulled *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct img_pulled *, img_pulled_free)

/*
 * Mounts the container rootfs at `target`: overlayfs with the image layers as lowerdirs (top
 * first), `upper` and `work` (created if missing, same filesystem) as the writable part. With
 * IMG_PULL_USER_XATTR in `flags` adds the `userxattr` option to match how layers were unpacked.
 */
int img_rootfs_mount(const struct img_pulled *p, const char *upper, const char *work,
                     const char *target, unsigned flags, struct cc_error **err);

/*
 * Key brokers: where ocicrypt layer keys come from. A broker hands out private keys (PEM) to
 * try against a layer's JWE recipients, and resources by URI (e.g. kbs:///default/key/1) for
 * key-provider annotations. `offline_fs` (keys in files in the guest image) is implemented
 * here; a KBS-protocol broker plugs in by filling the same struct.
 */
struct img_key_broker {
        const char *name;
        void *data;
        /* Returns the n-th private key (PEM bytes) or -ENOENT after the last; *ret_id names
         * it for error messages. */
        int (*private_key)(void *data, size_t n, const char **ret_pem, size_t *ret_len,
                           const char **ret_id);
        /* Returns the resource named `uri` (raw bytes, caller frees) or -ENOENT. */
        int (*resource)(void *data, const char *uri, uint8_t **ret, size_t *ret_len,
                        struct cc_error **err);
        void (*free)(void *data);
};

/*
 * offline_fs broker: private keys from `key_files` (PEM files, NULL-terminated list) and
 * resource keys from `keys_json` (CoCo's aa-offline_fs_kbc-keys.json: {"repo/type/tag":
 * "base64"}), either may be NULL.
 */
int img_key_broker_offline_fs(const char *const *key_files, const char *keys_json,
                              struct img_key_broker **ret, struct cc_error **err);
struct img_key_broker *img_key_broker_free(struct img_key_broker *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct img_key_broker *, img_key_broker_free)
