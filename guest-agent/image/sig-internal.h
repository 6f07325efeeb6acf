#pragma once
/*
 * Internal interfaces of image signature verification (containers-policy.json(5), simple
 * signing, sigstore attachments), shared between its files, the pull and the tests.
 *
 *   sigpolicy.c   policy.json: load, scope choice, requirement evaluation
 *   sigident.c    docker references and the signedIdentity rules
 *   sigjson.c     strict JSON (json-c plus a duplicated-key refusal) and small JSON helpers
 *   openpgp.c     the OpenPGP subset simple signing needs: keyrings and signed messages
 *   simplesign.c  the signature payload (both critical.type values) and one simple signature
 *   sigstore.c    sigstore attachment manifests, one cosign layer (ECDSA/RSA/Ed25519 key)
 *   sigsource.c   registries.d, lookaside (file/http), attachments from the registry
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cc/cleanup.h"
#include "cc/error.h"

#include "guest-agent/image/image.h"

/* containers/image reads at most this much per signature (iolimits.MaxSignatureBodySize). */
#define IMG_SIG_MAX_BYTES (4u << 20)
/* ...and gives up after this many lookaside signatures. */
#define IMG_SIG_MAX_COUNT 128

#define IMG_MT_COSIGN_SIMPLESIGNING "application/vnd.dev.cosign.simplesigning.v1+json"
#define IMG_COSIGN_SIG_ANNOTATION   "dev.cosignproject.cosign/signature"

#define IMG_PAYLOAD_SIMPLE "atomic container signature"
#define IMG_PAYLOAD_COSIGN "cosign container image signature"

/* ---- strict JSON (sigjson.c) ---- */

struct json_object;
/* img__json_parse() (an object, size and depth limits) that also refuses duplicated keys. */
struct json_object *img__json_parse_strict(const void *buf, size_t len, struct cc_error **err);
/* Member `key` of `o` when `o` is an object and has it (NULL for absent, and for JSON null). */
struct json_object *img__jget(struct json_object *o, const char *key);
/* Refuses members of object `o` not in the NULL-terminated `allowed` ("<what>: unknown
 * member"). */
int img__json_only_members(struct json_object *o, const char *what, const char *const *allowed,
                           struct cc_error **err);
/* *ret = strdup of string member `key`; absent is an error only when `required`. */
int img__json_get_string(struct json_object *o, const char *key, const char *what, bool required,
                         char **ret, struct cc_error **err);

/* ---- docker references as policy and signatures see them (sigpolicy.c) ---- */

/* A reference normalised with Docker's rules: name is host/path with "docker.io" for Docker
 * Hub and "library/" added there; tag/digest NULL when absent (no default tag). */
struct img_dref {
        char *name;
        char *tag;
        char *digest;
};
/* Parses `s`; with default_tag, a name-only reference gets ":latest" (how images are pulled);
 * without, it stays name-only (how signatures and policy identities are read). */
int img__dref_parse(const char *s, bool default_tag, struct img_dref *ret, struct cc_error **err);
void img__dref_done(struct img_dref *r);
/* name[:tag][@digest] into a new string. */
char *img__dref_string(const struct img_dref *r);

/* signedIdentity (sigident.c) */
enum img_id_type {
        IMG_ID_REPO_DIGEST_OR_EXACT, /* the default when signedIdentity is absent */
        IMG_ID_MATCH_REPOSITORY,
        IMG_ID_MATCH_EXACT,
        IMG_ID_EXACT_REFERENCE,
        IMG_ID_EXACT_REPOSITORY,
        IMG_ID_REMAP,
};
extern const char *const img__identity_names[]; /* by enum img_id_type */
struct img_sig_identity {
        enum img_id_type type;
        char *ref;                    /* dockerReference / dockerRepository */
        char *prefix, *signed_prefix; /* remapIdentity */
};
int img__identity_parse(struct json_object *o, struct img_sig_identity *id, struct cc_error **err);
void img__identity_done(struct img_sig_identity *id);
/* Does a signature claiming `signed_ref` satisfy `id` for the image `img` (as pulled)? */
bool img__identity_matches(const struct img_sig_identity *id, const struct img_dref *img,
                           const char *signed_ref);

/* ---- OpenPGP (openpgp.c) ---- */

struct img_pgp_key;
struct img_pgp_keyring {
        struct img_pgp_key *keys; /* primary keys only: they are the trusted identities */
        size_t n;
};
/* Adds every primary public key of `buf` (binary packets or ASCII armor, several keys and
 * blocks allowed). -ENOKEY when nothing usable was found. */
int img__pgp_keyring_add(struct img_pgp_keyring *kr, const uint8_t *buf, size_t len,
                         struct cc_error **err);
void img__pgp_keyring_done(struct img_pgp_keyring *kr);
/* Uppercase hex fingerprint of the n-th key. */
const char *img__pgp_key_fpr(const struct img_pgp_keyring *kr, size_t n);
/* The n-th key's OpenPGP algorithm (1 RSA, 19 ECDSA, 22 EdDSA) and, for RSA, its signature
 * size in bytes (*ret_rsa_bytes, else 0); -ENOENT past the end. */
int img__pgp_key_algo(const struct img_pgp_keyring *kr, size_t n, size_t *ret_rsa_bytes);

/*
 * Verifies a binary OpenPGP signed message (one-pass signature, literal data, signature; in a
 * compressed packet or not) made by one of `kr`'s keys, at time `now` (seconds). On success
 * returns the literal data (the payload) and the signer's fingerprint. Errors:
 *   -ENOKEY       signer not in the keyring (message names its key ID / fingerprint)
 *   -EKEYEXPIRED  the signature, or the key (per its self-signatures), has expired
 *   -EKEYREVOKED  the keyring holds a valid revocation of the key
 *   -EBADMSG      bad signature, or not exactly one one-pass/literal/signature sequence
 *   -EPROTONOSUPPORT  an algorithm refused here (MD5, SHA-1, ElGamal, v3/v5 packets...)
 */
int img__pgp_verify(const struct img_pgp_keyring *kr, const uint8_t *msg, size_t len, int64_t now,
                    uint8_t **ret_payload, size_t *ret_len, char ret_fpr[41],
                    struct cc_error **err);

/* ---- signature payloads (simplesign.c) ---- */

struct img_sig_payload {
        char *docker_reference; /* critical.identity.docker-reference, as signed */
        char *manifest_digest;  /* critical.image.docker-manifest-digest */
};
/* Parses a payload strictly (containers-signature(5)): critical has exactly type/image/
 * identity, `type` equals `want_type`, no duplicated keys, optional.creator a string,
 * optional.timestamp an integer; `optional` may be null for cosign payloads only. */
int img__sig_payload_parse(const uint8_t *buf, size_t len, const char *want_type,
                           struct img_sig_payload *ret, struct cc_error **err);
void img__sig_payload_done(struct img_sig_payload *p);

/* One simple-signing blob: size limit, the first-byte format gate containers/image applies,
 * the OpenPGP verification with `kr`. 0 with the signed payload, or <0 with *ret_reason saying
 * why ("unknown key ...", "bad signature ...", "signature expired", "unrecognized signature
 * format ..."). The payload is only returned once the signature has been accepted. */
int img__simple_sig_check(const struct img_pgp_keyring *kr, const uint8_t *blob, size_t len,
                          int64_t now, uint8_t **ret_payload, size_t *ret_len, char **ret_reason);

/* ---- sigstore (sigstore.c) ---- */

/* One cosign signature layer taken from an attachment manifest, blob verified. */
struct img_sigstore_sig {
        uint8_t *payload; /* NULL when the blob did not match its descriptor */
        size_t payload_len;
        char *signature_b64; /* the annotation; NULL when missing */
};
/* Parses an attachment manifest: the simple-signing layers' digests/sizes and signatures.
 * Layers of other media types are counted in *ret_other. */
struct img_sigstore_layer {
        char *digest;
        int64_t size;
        char *signature_b64;
};
int img__sigstore_manifest_parse(const char *content_type, const uint8_t *buf, size_t len,
                                 struct img_sigstore_layer **ret, size_t *ret_n, size_t *ret_other,
                                 struct cc_error **err);
void img__sigstore_layers_free(struct img_sigstore_layer *l, size_t n);
/* Verifies base64 `sig_b64` over `payload` with the public key `pem` (SubjectPublicKeyInfo:
 * ECDSA P-256/384 as cosign makes, RSA, Ed25519). -EBADMSG on a bad signature. */
int img__sigstore_verify(const uint8_t *pem, size_t pem_len, const uint8_t *payload,
                         size_t payload_len, const char *sig_b64, struct cc_error **err);
/* Runs the verification code of the EC key `pem` once, on a signature that cannot verify, so
 * that its first run in the process (under TCG, translating that code is most of the first
 * verification's cost) overlaps the reading of the attachments instead of following it. */
void img__sigstore_key_warm(const uint8_t *pem, size_t pem_len);

/* ---- ahead of a check (sigwarm.c) ---- */

/* Runs img__simple_sig_check() once per key of `kr` on a signed message made here that names
 * the key as its signer but cannot verify (decompression, packet parsing, the hash and the
 * public-key operation all run): what a pull helper waiting for its request does, so that the
 * first run of that code in the process (under TCG, its translation) is not on a pull's path.
 * Returns how many keys got as far as their public-key operation (all, unless a key has a
 * form the message cannot be made for). */
size_t img__pgp_keyring_warm(const struct img_pgp_keyring *kr);
/* The same for a sigstore public key (PEM): img__sigstore_verify() on a signature that fails. */
void img__sigstore_pem_warm(const uint8_t *pem, size_t pem_len);
/* The payload parser (both critical.type values) and the scope and identity code, on fixed
 * input. */
void img__sig_code_warm(void);

/* ---- where signatures come from (sigsource.c, or a test's mock) ---- */

struct img_sig_blob {
        uint8_t *data;
        size_t len;
        char *name; /* for messages: "signature-2", a URL... */
};
void img__sig_blobs_free(struct img_sig_blob *b, size_t n);

struct img_sig_source {
        void *data;
        /* Simple-signing blobs for the manifest `digest`: 0 with *ret_n == 0 when there are
         * none; <0 when they could not be read (an error, not "unsigned"). */
        int (*simple)(void *data, const char *digest, struct img_sig_blob **ret, size_t *ret_n,
                      struct cc_error **err);
        /* Sigstore signatures attached to `digest` (payload verified against its descriptor). */
        int (*sigstore)(void *data, const char *digest, struct img_sigstore_sig **ret,
                        size_t *ret_n, struct cc_error **err);
};
void img__sigstore_sigs_free(struct img_sigstore_sig *s, size_t n);

/* ---- policy (sigpolicy.c) ---- */

struct img_policy;
/* Loads policy.json bytes strictly (containers/image rules); key files named in it are read
 * when a requirement needing them is evaluated, relative paths from `base_dir` (may be NULL). */
int img__policy_load(const uint8_t *buf, size_t len, const char *base_dir, struct img_policy **ret,
                     struct cc_error **err);
int img__policy_load_file(const char *path, struct img_policy **ret, struct cc_error **err);
/* The policy from `uri`: a path, file:///path, or kbs:///repo/type/tag through `broker`'s
 * resource(); key paths in it may be such URIs too (kbs:/// ones need the broker). */
struct img_key_broker;
int img__policy_load_uri(const char *uri, const struct img_key_broker *broker,
                         struct img_policy **ret, struct cc_error **err);
struct img_policy *img__policy_free(struct img_policy *p);
/* Reads every key the policy names now (files, kbs:/// resources through its broker), parses
 * the GPG keyrings and runs each key's verification code once (sigwarm.c): checks then reuse
 * them. A key that cannot be read is left to the check that needs it, which reports it. */
void img__policy_prepare(struct img_policy *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct img_policy *, img__policy_free)
/* The scope whose requirements apply to `ref` (a normalised reference with tag or digest):
 * "" for transports.docker[""], "default" for the top-level default. */
const char *img__policy_scope_for(const struct img_policy *p, const char *ref);
/* Which signatures the scope of `ref` asks for: simple (signedBy), sigstore (sigstoreSigned). */
void img__policy_reads(const struct img_policy *p, const char *ref, bool *simple, bool *sigstore);
/* Candidate scopes of `ref`, most specific first (for tests); NULL-terminated, caller frees. */
char **img__policy_scopes(const char *ref);

/*
 * Decides whether `ref` (as pulled), whose manifest hashed to `manifest_digest`, may be used.
 * For a multi-platform image, manifest_digest is the platform manifest's and index_digest the
 * index's (else NULL): simple signatures are checked against the platform manifest (as skopeo
 * and image-rs do), sigstore signatures against either (as image-rs does).
 * 0 = allowed; -EACCES = denied, the message names the image, the scope, the requirement and
 * why each signature failed; other -errno = signatures could not be read.
 */
int img__policy_check(const struct img_policy *p, const char *ref, const char *manifest_digest,
                      const char *index_digest, const struct img_sig_source *src, int64_t now,
                      struct cc_error **err);

/* signedIdentity checks for tests (sigident.c): does a signature claiming `signed_ref` satisfy
 * identity rule `rule` (JSON object text) for the image `image_ref`? */
int img__policy_identity_test(const char *rule_json, const char *image_ref, const char *signed_ref,
                              bool *ret_match, struct cc_error **err);

/* ---- registries.d (sigsource.c) ---- */

struct img_regsd;
/* Loads every *.yaml of `dir` (merged; a scope may appear once). NULL dir: defaults only. */
int img__regsd_load(const char *dir, struct img_regsd **ret, struct cc_error **err);
/* Parses one YAML document into `rd` (for tests and fuzzing); `name` for messages. */
int img__regsd_add(struct img_regsd *rd, const char *name, const uint8_t *buf, size_t len,
                   struct cc_error **err);
struct img_regsd *img__regsd_free(struct img_regsd *rd);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct img_regsd *, img__regsd_free)
/* Lookaside base URL for `ref` (normalised); the default store when nothing is configured. */
const char *img__regsd_lookaside(const struct img_regsd *rd, const char *ref);
/* Whether sigstore attachments are read for `ref`. */
bool img__regsd_use_attachments(const struct img_regsd *rd, const char *ref);
/* <base>/<repository path>@<algo>=<hex>/signature-<n> */
char *img__lookaside_url(const char *base, const char *ref_name, const char *digest, unsigned n);

/* Parses the registry signature extension's answer ({"signatures":[{"schemaVersion":2,
 * "type":"atomic","content":"<base64>",...}]}); other entries are skipped. */
int img__xrss_parse(const uint8_t *buf, size_t len, struct img_sig_blob **ret, size_t *ret_n,
                    struct cc_error **err);

struct img_registry;
struct img_sig_prefetch;
/* A source reading the lookaside of `rd` and the attachments of `reg` (may be NULL). */
struct img_sigsrc_ctx {
        const struct img_regsd *rd;
        struct img_registry *reg;
        const char *ref;  /* normalised, with tag or digest */
        uint64_t read_ns; /* time spent reading (or waiting for) signatures, for the log */
        struct img_sig_prefetch *prefetch; /* reads started ahead, or NULL */
};
void img__sig_source_init(struct img_sig_source *src, struct img_sigsrc_ctx *ctx);
/*
 * For a reference pinned to `digest` (CRI's tag@digest): starts reading, in a thread, the
 * signatures the policy's scope for ctx->ref asks for, while the pull GETs the manifest. The
 * source of ctx then answers from them when asked for that digest (the manifest's own digest,
 * checked against the pinned one; or an index's), and reads as before otherwise. Nothing is
 * decided from them before the manifest's digest is known.
 */
void img__sig_prefetch_start(struct img_sigsrc_ctx *ctx, const struct img_policy *p,
                             const char *digest);
/* Waits for the reads started ahead and frees what was not used. */
void img__sig_prefetch_end(struct img_sigsrc_ctx *ctx);

/* A policy and registries.d loaded ahead of the pulls that use them (img_sig_prepare()). */
struct img_sig_prepared {
        struct img_policy *policy;
        struct img_regsd *rd;
};
