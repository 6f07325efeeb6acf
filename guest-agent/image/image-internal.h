#pragma once
/* Internal interfaces of libccimage, shared between its files and its tests. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cc/error.h"
#include "cc/fileio.h"

#include "guest-agent/image/image.h"

struct archive;
struct archive_entry;
struct json_object;
typedef struct evp_md_ctx_st EVP_MD_CTX;

/* ---- util.c ---- */

/* True when s is "sha256:" followed by 64 lower-case hex digits. */
bool img__digest_valid(const char *s);
/* "sha256:<hex>" of a finished sha256 context into out[72]. */
void img__digest_final(EVP_MD_CTX *md, char out[72]);
void img__digest_buf(const void *buf, size_t len, char out[72]);
/* Base64 decode, standard alphabet (padding optional) or URL-safe (url=true). */
int img__b64_decode(const char *in, size_t in_len, bool url, uint8_t **ret, size_t *ret_len);
char *img__b64_encode(const uint8_t *in, size_t len);
char **img__strv_copy_json(struct json_object *arr); /* NULL unless an array of strings */
size_t img__strv_len(char **v);
/* Monotonic milliseconds / nanoseconds. */
uint64_t img__now_ms(void);
uint64_t img__now_ns(void);

/* ---- ref.c ---- */

struct img_ref {
        char *registry; /* host[:port] as in URLs ("registry-1.docker.io" for docker.io) */
        char *repo;     /* path, e.g. "library/busybox" */
        char *tag;      /* NULL when only a digest was given */
        char *digest;   /* NULL unless @sha256:... */
};
int img__ref_parse(const char *s, struct img_ref *ret, struct cc_error **err);
void img__ref_done(struct img_ref *r);
char *img__ref_string(const struct img_ref *r);

/* ---- manifest.c ---- */

#define IMG_MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define IMG_MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define IMG_MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define IMG_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

enum img_compression { IMG_COMP_NONE, IMG_COMP_GZIP, IMG_COMP_ZSTD };

struct img_descriptor {
        char *media_type;
        char *digest;
        int64_t size;
        /* platform, for index entries */
        char *os, *arch, *variant;
        bool attestation; /* BuildKit attestation manifest: never selected */
        /* layer properties derived from media_type */
        enum img_compression compression;
        bool encrypted;
        char *enc_jwe;      /* org.opencontainers.image.enc.keys.jwe */
        char *enc_provider; /* ...enc.keys.provider.attestation-agent */
        char *enc_pubopts;  /* org.opencontainers.image.enc.pubopts */
};

struct img_manifest {
        bool is_index;
        char *media_type;
        struct img_descriptor config;
        struct img_descriptor *layers;
        size_t n_layers;
        struct img_descriptor *manifests;
        size_t n_manifests;
};

/* Parses a manifest or index; `content_type` is the response's (may be NULL). */
int img__manifest_parse(const char *content_type, const void *buf, size_t len,
                        struct img_manifest **ret, struct cc_error **err);
struct img_manifest *img__manifest_free(struct img_manifest *m);
/* First entry matching os/arch/variant (normalised), skipping attestations. */
int img__index_select(const struct img_manifest *idx, const char *os, const char *arch,
                      const char *variant, const struct img_descriptor **ret,
                      struct cc_error **err);
/* Parses the image config: fills cfg and the diff_ids. */
int img__config_parse(const void *buf, size_t len, struct img_image_config *cfg,
                      char ***ret_diff_ids, struct cc_error **err);
void img__config_done(struct img_image_config *cfg);
/* Canonical GOARCH name for a uname/dpkg-style arch ("x86_64" -> "amd64"). */
const char *img__arch_normalise(const char *arch);
/* Parses JSON with size/depth limits; NULL on error. */
struct json_object *img__json_parse(const void *buf, size_t len, struct cc_error **err);

/* ---- registry.c ---- */

struct img_registry;
struct img_registry_conf {
        const char *host; /* host[:port] */
        const char *repo;
        bool insecure;
        const char *ca_file;
        const char *user, *password; /* may be NULL */
        unsigned retries, stall_timeout_ms, connect_timeout_ms;
};
int img__registry_new(const struct img_registry_conf *c, struct img_registry **ret,
                      struct cc_error **err);
struct img_registry *img__registry_free(struct img_registry *r);
/* GET /v2/<repo>/<kind>/<ref> into memory (bounded by max). */
int img__registry_get(struct img_registry *r, const char *kind, const char *ref, const char *accept,
                      uint64_t max, char **ret_buf, size_t *ret_len, char **ret_content_type,
                      struct cc_error **err);

/* GET /v2/ and read X-Registry-Supports-Signatures (the simple-signing API extension). */
int img__registry_supports_signatures(struct img_registry *r, bool *ret, struct cc_error **err);
/* GET /extensions/v2/<repo>/signatures/<digest> (at most 4 MiB). */
int img__registry_get_signatures(struct img_registry *r, const char *digest, char **ret_buf,
                                 size_t *ret_len, struct cc_error **err);

/* Streaming blob reader: yields chunks whose sha256 and total size are checked at EOF. */
struct img_blob;
int img__blob_open(struct img_registry *r, const char *digest, int64_t size, struct img_blob **ret,
                   struct cc_error **err);
/* Next chunk (valid until the next call); *ret_len == 0 at verified EOF. */
int img__blob_next(struct img_blob *b, const uint8_t **ret, size_t *ret_len, struct cc_error **err);
uint64_t img__blob_offset(const struct img_blob *b);
uint64_t img__blob_digest_ns(const struct img_blob *b); /* time spent hashing */
struct img_blob *img__blob_free(struct img_blob *b);
/* Uploads (cc-image-encrypt): a blob from fd (size bytes, skipped when the registry has it),
 * a manifest under a tag. Credentials and token challenges as for pulls. */
int img__registry_push_blob(struct img_registry *r, const char *digest, int fd, uint64_t size,
                            struct cc_error **err);
int img__registry_push_manifest(struct img_registry *r, const char *tag, const char *media_type,
                                const void *buf, size_t len, struct cc_error **err);
/* Parses a WWW-Authenticate challenge; exposed for the fuzzer. */
int img__auth_parse(const char *h, char **scheme, char **realm, char **service, char **scope);
/* user:password for host from a containers-auth.json document; 0 with *ret NULL if none,
 * -EINVAL for a document that is not one (exposed for the unit test and the fuzzer). */
int img__auth_json_lookup(const char *json, size_t len, const char *host, char **ret);
/* The credentials for host from o->auth_json, then o->auth_file (registry-auth.c). */
int img__auth_creds(const struct img_pull_opts *o, const char *host, char **ret,
                    struct cc_error **err);

/* ---- apply.c ---- */

struct img_limits {
        uint64_t max_bytes;  /* per image */
        uint64_t max_inodes; /* per image */
        uint64_t min_free;
        /* shared counters (atomics) across concurrent layers */
        uint64_t *bytes;
        uint64_t *inodes;
};

struct img_applier;
int img__applier_new(int rootfd, unsigned flags, const struct img_limits *lim,
                     struct img_applier **ret);
struct img_applier *img__applier_free(struct img_applier *a);
/* Applies one tar entry (and reads its data from `ar`). */
int img__apply_entry(struct img_applier *a, struct archive *ar, struct archive_entry *e,
                     struct cc_error **err);
/* Sets directory times recorded while applying; call after the last entry. */
int img__applier_finish(struct img_applier *a, struct cc_error **err);
/*
 * Cleans a tar path into out (size PATH_MAX): drops "." and empty components and one leading
 * "./"; refuses absolute paths, ".." components, and the reserved ".wh." names misused.
 * Returns 0 (out may be "" for the root), or -EINVAL/-ENAMETOOLONG.
 */
int img__path_clean(const char *in, char *out, size_t out_size);

/* ---- ocicrypt.c ---- */

struct img_decryptor;
/* Unwraps the layer key from the descriptor's annotations with keys from the broker. */
int img__decryptor_new(const struct img_descriptor *d, const struct img_key_broker *keys,
                       struct img_decryptor **ret, struct cc_error **err);
/* Decrypts in place (AES-256-CTR), feeding the ciphertext to the HMAC first. */
int img__decrypt(struct img_decryptor *d, uint8_t *buf, size_t len);
/* At EOF: checks the HMAC and the plain (compressed) digest. */
int img__decrypt_final(struct img_decryptor *d, struct cc_error **err);
struct img_decryptor *img__decryptor_free(struct img_decryptor *d);
/* Parses the JWE JSON (flattened or general) and unwraps the CEK/plaintext with pkey; for
 * the fuzzer and tests. Returns the decrypted payload. */
int img__jwe_decrypt(const char *jwe_json, size_t len, const char *pem, size_t pem_len,
                     uint8_t **ret, size_t *ret_len, struct cc_error **err);

/* ---- layer.c ---- */

struct img_layer_job {
        struct img_registry *reg;
        const struct img_descriptor *desc;
        const char *diff_id;
        const char *store_dir;
        const struct img_pull_opts *opts;
        const struct img_limits *limits;
        unsigned index, n_layers;
        volatile int *abort; /* set by another layer's failure */
        uint64_t fetched;    /* out: bytes fetched */
        uint64_t ns_network, ns_digest, ns_decrypt, ns_inflate, ns_total; /* out: timings */
};
/* Streams, verifies and publishes one layer; returns 0 when it is in the store. */
int img__layer_pull(struct img_layer_job *job, struct cc_error **err);
/* Unpacks a (compressed) tar stream from a fd into rootfd, with the layer pipeline's decoders
 * and test-sized limits; for tests and fuzzing. */
int img__unpack_fd(int fd, int rootfd, enum img_compression comp, unsigned flags,
                   struct cc_error **err);
