#pragma once
/*
 * cc-kbs internals: a development key broker that speaks Trustee's KBS protocol 0.4.0
 * (RCAR: /kbs/v0/auth, /kbs/v0/attest, /kbs/v0/resource/<repo>/<type>/<tag>). Wire facts follow
 * ../shared/reference/attestation-kbs.md; section numbers below ("ref 1.8") point into it.
 *
 * Every decoder of untrusted bytes here (request bodies, JWKs, evidence, SNP reports, initdata,
 * policies) is a pure function with a fuzz target in test/fuzz/fuzz-kbs-*.c.
 */

#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cc/cleanup.h"
#include "cc/codec.h"
#include "cc/error.h"

#define KBS_PROTOCOL_VERSION "0.4.0"
#define KBS_ERROR_PREFIX     "https://github.com/confidential-containers/kbs/errors/"
#define KBS_NONCE_BYTES      32
#define KBS_SESSION_COOKIE   "kbs-session-id"

/* Encodings (base64, hex, RFC 8785): lib/codec.c, cc/codec.h. */

/* ---- tee.c ---- */

/* The TEE names of kbs-types 0.16 (ref 1.2); an unknown name is a deserialization error. */
enum kbs_tee {
        KBS_TEE_AZ_SNP_VTPM,
        KBS_TEE_AZ_TDX_VTPM,
        KBS_TEE_NVIDIA,
        KBS_TEE_SGX,
        KBS_TEE_SNP,
        KBS_TEE_TDX,
        KBS_TEE_CCA,
        KBS_TEE_CSV,
        KBS_TEE_SE,
        KBS_TEE_HYGONDCU,
        KBS_TEE_TPM,
        KBS_TEE_SAMPLE,
        KBS_TEE_SAMPLEDEVICE,
        _KBS_TEE_MAX,
};
int kbs_tee_from_string(const char *s, enum kbs_tee *ret);
const char *kbs_tee_to_string(enum kbs_tee tee);

/* ---- jwk.c: the TEE public key of /attest (ref 1.6) ---- */

enum kbs_kty { KBS_KTY_EC, KBS_KTY_RSA };

/* kbs_types::TeePubKey: only the typed members, as Trustee keeps them (extra members dropped). */
struct kbs_jwk {
        enum kbs_kty kty;
        char *alg;
        char *crv; /* EC */
        char *x;
        char *y;
        char *n; /* RSA */
        char *e;
};

/*
 * Parses a JWK object the way serde parses TeePubKey: `kty` picks EC (crv, alg, x, y) or RSA
 * (alg, n, e), every member a string, others ignored. Algorithms and curves are not checked here:
 * like Trustee, an unusable key is found when a resource is encrypted to it (JweError).
 */
int kbs_jwk_parse(struct json_object *o, struct kbs_jwk *ret, struct cc_error **err);
/* The key re-serialized from its typed members (what the runtime-data digest covers). */
struct json_object *kbs_jwk_to_json(const struct kbs_jwk *k);
void kbs_jwk_done(struct kbs_jwk *k);
/*
 * The OpenSSL key for a JWK Trustee would encrypt to: EC P-256/P-521 with ECDH-ES+A256KW
 * (coordinates exactly 32/66 bytes, point on the curve) or RSA (2048..8192 bits) with
 * RSA-OAEP-256 or RSA1_5. -EINVAL with a message naming the problem otherwise.
 */
int kbs_jwk_to_pkey(const struct kbs_jwk *k, EVP_PKEY **ret, struct cc_error **err);

/* ---- jwe.c: resource responses, RFC 7516 flattened JSON (ref 1.8) ---- */

int kbs_jwe_encrypt(const struct kbs_jwk *k, const uint8_t *pt, size_t len, char **ret,
                    struct cc_error **err);
/* The same with chosen CEK, IV and (EC only) ephemeral key, for test vectors. */
int kbs__jwe_encrypt_with(const struct kbs_jwk *k, const uint8_t *pt, size_t len,
                          const uint8_t cek[32], const uint8_t iv[12], EVP_PKEY *eph, char **ret,
                          struct cc_error **err);

/*
 * A JWE in general JSON serialization to several public keys, as ocicrypt's JWE key wrapper
 * writes for `org.opencontainers.image.enc.keys.jwe`: protected {"enc":"A256GCM"}, each
 * recipient's alg in its own header: RSA-OAEP (SHA-1, go-jose's RSA_OAEP) or ECDH-ES+A256KW.
 */
int kbs_jwe_encrypt_recipients(EVP_PKEY *const *keys, size_t n, const uint8_t *pt, size_t len,
                               char **ret, struct cc_error **err);

/* ---- request.c: the bodies of /auth and /attest (ref 1.2, 1.4) ---- */

struct kbs_auth_request {
        enum kbs_tee tee;
};

/*
 * Parses a Request. On failure returns -EINVAL and sets *reason to the text Trustee puts after
 * "RCAR handshake Auth failed: " ("deserialize Request", or the version mismatch sentence).
 */
int kbs_parse_auth(const char *body, size_t len, struct kbs_auth_request *ret, char **reason);

struct kbs_attest_request {
        struct json_object *root; /* owns everything borrowed below */
        bool has_init_data;
        const char *init_data_format;
        const char *init_data_body;
        size_t init_data_len;
        const char *nonce;
        struct kbs_jwk key;
        struct json_object *primary_evidence;
        const char *additional_evidence;
};

/* Parses an Attestation of protocol 0.4.0; errors say what is wrong (logged, never sent). */
int kbs_parse_attest(const char *body, size_t len, struct kbs_attest_request *ret,
                     struct cc_error **err);
void kbs_attest_request_done(struct kbs_attest_request *r);

/*
 * The runtime-data digest (ref 2.1): sha384 of
 * JCS({"additional-evidence": a, "nonce": nonce, "tee-pubkey": typed key}).
 */
int kbs_runtime_data_digest(const struct kbs_jwk *key, const char *nonce,
                            const char *additional_evidence, uint8_t out[48]);

/* ---- initdata.c (ref 7) ---- */

struct kbs_initdata {
        char algorithm[8]; /* sha256 | sha384 | sha512 */
        uint8_t digest[64];
        size_t digest_len;
        struct json_object *claims; /* the [data] table, aa.toml/cdh.toml parsed (ref 3.3) */
};

int kbs_initdata_parse(const char *format, const char *body, size_t len, struct kbs_initdata *ret,
                       struct cc_error **err);
void kbs_initdata_done(struct kbs_initdata *d);
/* Truncates or zero-pads `in` to `size` bytes (ref 2.2 "regularization"). */
void kbs_regularize(const uint8_t *in, size_t in_len, uint8_t *out, size_t size);

/* ---- snp.c: SEV-SNP attestation reports (ref 4.2) ---- */

#define KBS_SNP_REPORT_SIZE 0x4A0
#define KBS_SNP_SIGNED_SIZE 0x2A0

/* Rebuilds the 1184 report bytes from the sev crate's serde JSON form of a report. */
int kbs_snp_report_from_json(struct json_object *o, uint8_t out[KBS_SNP_REPORT_SIZE],
                             struct cc_error **err);
/* Checks the report's ECDSA P-384 signature with the VCEK's public key. */
int kbs_snp_verify_signature(const uint8_t report[KBS_SNP_REPORT_SIZE], EVP_PKEY *vcek,
                             struct cc_error **err);

/* ---- verifier.c ---- */

struct kbs_verifiers {
        bool sample_enabled;
        bool snp_enabled;
        /* SNP chain from the configuration: ARK self-signed, ASK signed by ARK, VCEK by ASK. */
        void *snp_ark; /* X509 * */
        void *snp_ask;
        void *snp_vcek; /* optional: else the evidence's cert_chain must carry a VCEK */
};

struct kbs_evidence_in {
        enum kbs_tee tee;
        struct json_object *evidence;
        const uint8_t *report_data; /* the runtime-data digest */
        size_t report_data_len;
        const struct kbs_initdata *init_data; /* NULL when no init-data was sent */
};

/*
 * Verifies evidence; on success *claims is the TEE's claims object (ref 3.2, 3.3), including
 * `report_data` and `init_data`, which the token builder moves up one level.
 */
int kbs_verify_evidence(const struct kbs_verifiers *v, const struct kbs_evidence_in *in,
                        struct json_object **claims, struct cc_error **err);
int kbs_verifiers_load_snp(struct kbs_verifiers *v, const char *ark, const char *ask,
                           const char *vcek, struct cc_error **err);
void kbs_verifiers_done(struct kbs_verifiers *v);
/* Checks a PEM/DER chain: ARK self-signed, ASK by ARK, `leaf` by ASK, names chained. */
int kbs_snp_check_chain(const struct kbs_verifiers *v, void *leaf, struct cc_error **err);

/* ---- token.c: attestation tokens (ES256 JWT, ref 1.5) and admin tokens (EdDSA JWT) ---- */

struct kbs_token_signer {
        EVP_PKEY *key;  /* P-256 */
        char *jwk_json; /* public part for the JWS header */
};

int kbs_token_signer_init(struct kbs_token_signer *s, const char *pem_path, struct cc_error **err);
void kbs_token_signer_done(struct kbs_token_signer *s);
int kbs_token_issue(const struct kbs_token_signer *s, struct json_object *claims, char **ret,
                    struct cc_error **err);
/* Signature, `alg`, and `exp` > now; *claims is the payload object. */
int kbs_token_verify(const struct kbs_token_signer *s, const char *token, int64_t now,
                     struct json_object **claims, struct cc_error **err);
/* An admin JWT: header alg EdDSA, signed by `pub` (Ed25519), exp > now required. */
int kbs_admin_token_verify(EVP_PKEY *pub, const char *token, int64_t now, struct cc_error **err);
/* Mints an admin token valid for `lifetime` seconds (the CLI's side). */
int kbs_admin_token_mint(EVP_PKEY *priv, int64_t now, int64_t lifetime, char **ret,
                         struct cc_error **err);

/* ---- policy.c: the resource policy (documented in kbs/README.md) ---- */

struct kbs_policy;

struct kbs_policy_input {
        const char *tee;         /* "snp", "sample", ... */
        const char *measurement; /* hex, NULL if the TEE has none */
        const char *init_data;   /* hex of the initdata digest, NULL when none was sent */
        const char *resource;    /* "repo/type/tag" */
};

int kbs_policy_parse(const char *text, size_t len, struct kbs_policy **ret, struct cc_error **err);
void kbs_policy_free(struct kbs_policy *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kbs_policy *, kbs_policy_free)
/* True when allowed; *why names the deciding rule ("rule 2" or "default"). */
bool kbs_policy_allows(const struct kbs_policy *p, const struct kbs_policy_input *in, char *why,
                       size_t why_size);
extern const char kbs_policy_default[];

/* ---- store.c: resources and the policy in SQLite ---- */

struct kbs_store;
int kbs_store_open(const char *path, struct kbs_store **ret, struct cc_error **err);
void kbs_store_close(struct kbs_store *s);
int kbs_store_put(struct kbs_store *s, const char *path, const uint8_t *data, size_t len,
                  struct cc_error **err);
/* -ENOENT when absent. */
int kbs_store_get(struct kbs_store *s, const char *path, uint8_t **data, size_t *len,
                  struct cc_error **err);
int kbs_store_delete(struct kbs_store *s, const char *path, struct cc_error **err);
/* -ENOENT when no policy was ever set. */
int kbs_store_policy_get(struct kbs_store *s, char **text, struct cc_error **err);
int kbs_store_policy_set(struct kbs_store *s, const char *text, struct cc_error **err);

/* Resource path segments: ^[a-zA-Z0-9_-]+[a-zA-Z0-9_.-]*$, exactly three (ref 1.7). */
bool kbs_resource_path_valid(const char *path);

/* ---- session.c ---- */

enum kbs_session_state { KBS_SESSION_AUTHED, KBS_SESSION_ATTESTED };

struct kbs_session_view {
        char id[33];
        enum kbs_tee tee;
        char nonce[64];
        enum kbs_session_state state;
        char *token;     /* attested only; the caller frees */
        int64_t expires; /* unix seconds */
};

struct kbs_sessions;
int kbs_sessions_new(size_t max, int64_t timeout_s, struct kbs_sessions **ret);
void kbs_sessions_free(struct kbs_sessions *t);
/* New session with a fresh id and nonce; -EBUSY when `max` live sessions exist. */
int kbs_session_create(struct kbs_sessions *t, enum kbs_tee tee, int64_t now,
                       struct kbs_session_view *ret);
/* -ENOENT for unknown or expired ids (expired ones are deleted). */
int kbs_session_get(struct kbs_sessions *t, const char *id, int64_t now,
                    struct kbs_session_view *ret);
int kbs_session_set_token(struct kbs_sessions *t, const char *id, const char *token);
size_t kbs_sessions_sweep(struct kbs_sessions *t, int64_t now);

/* ---- config.c ---- */

struct kbs_config {
        char *listen; /* "127.0.0.1:8080" */
        bool insecure_http;
        char *tls_cert;
        char *tls_key;
        int64_t max_body;
        int64_t timeout_s; /* per connection, idle */
        int64_t max_connections;
        int64_t threads;
        int64_t session_timeout_s;
        int64_t max_sessions;
        int64_t token_lifetime_s;
        char *token_key; /* optional PEM; else a per-process key */
        char *store_path;
        bool sample_enabled;
        bool snp_enabled;
        char *snp_ark;
        char *snp_ask;
        char *snp_vcek;
        bool tdx_enabled;
        char *admin_public_key;
        bool admin_insecure;
        char *log_level;
};

int kbs_config_load(const char *path, struct kbs_config *ret, struct cc_error **err);
int kbs_config_parse(const char *name, const char *text, size_t len, struct kbs_config *ret,
                     struct cc_error **err);
void kbs_config_done(struct kbs_config *c);

/* ---- imgenc.c: encrypted images in CoCo's key-provider format (ref 6) ---- */

/* One layer's stream: AES-256-CTR, SHA-256 of plain and cipher text, HMAC of the cipher text. */
struct kbs_layer_crypt {
        EVP_CIPHER_CTX *ctr;
        EVP_MD_CTX *plain;
        EVP_MD_CTX *enc;
        EVP_MAC_CTX *mac;
        uint64_t size;
};

int kbs_layer_crypt_init(struct kbs_layer_crypt *c, const uint8_t symkey[32],
                         const uint8_t nonce[16]);
int kbs_layer_crypt_update(struct kbs_layer_crypt *c, const uint8_t *in, size_t n, uint8_t *out);
int kbs_layer_crypt_final(struct kbs_layer_crypt *c, char plain_digest[72], char enc_digest[72],
                          uint8_t hmac[32]);
void kbs_layer_crypt_done(struct kbs_layer_crypt *c);
/* The two layer annotations' values (b64 of pubopts JSON and of the annotation packet). */
int kbs_ocicrypt_annotations(const uint8_t symkey[32], const uint8_t nonce[16],
                             const char *plain_digest, const uint8_t hmac[32],
                             const uint8_t kek[32], const char *kid, const uint8_t iv[12],
                             char **ret_pubopts, char **ret_packet, struct cc_error **err);
/*
 * Encrypts every layer of the image `src_tag` of OCI layout `src` (NULL: its only image) into
 * layout `dst` (created if needed; may be `src`) as `dst_tag`, the layer keys wrapped under
 * `kek` named by `kid` (kbs:///repo/type/tag) and, when `nrcpts` > 0, also in a JWE to those
 * public keys (annotation org.opencontainers.image.enc.keys.jwe, as `skopeo --encryption-key
 * jwe:` writes).
 */
int kbs_image_encrypt(const char *src, const char *src_tag, const char *dst, const char *dst_tag,
                      const uint8_t kek[32], const char *kid, EVP_PKEY *const *rcpts, size_t nrcpts,
                      unsigned *ret_layers, struct cc_error **err);

/* Adds a manifest (bytes as given) to a layout under `tag`; reads one back. */
int kbs__layout_add(const char *layout, const char *tag, const char *media_type, const char *buf,
                    size_t len, struct cc_error **err);
int kbs__layout_manifest(const char *layout, const char *tag, char **ret, size_t *ret_len,
                         char **ret_type, struct cc_error **err);

/* ---- imgreg.c: registries, through the image library's client ---- */

struct kbs_registry_opts {
        bool insecure;       /* plain HTTP */
        const char *ca_file; /* extra CA for HTTPS */
        const char *creds;   /* "user:password" or NULL */
};

/* Fetches one platform's image (linux/this arch when `ref` names an index) into `layout`:`tag`. */
int kbs_image_fetch(const char *ref, const struct kbs_registry_opts *o, const char *layout,
                    const char *tag, struct cc_error **err);
/* Pushes layout:tag to `ref` (host/repo:tag): every blob, then the manifest. */
int kbs_image_push(const char *layout, const char *tag, const char *ref,
                   const struct kbs_registry_opts *o, struct cc_error **err);

/* ---- admin-client.c: Trustee's admin API from the client side (libcurl) ---- */

struct kbs_admin_client {
        const char *url;       /* "https://host:port" */
        const char *admin_key; /* Ed25519 private key (PEM), or NULL: no Authorization */
        const char *cacert;
        bool insecure; /* no TLS verification */
};

/* One admin request; HTTP status other than 200 is an error quoting the body. */
int kbs_admin_call(const struct kbs_admin_client *cl, const char *method, const char *path,
                   const void *body, size_t len, const char *content_type, char **ret_body,
                   struct cc_error **err);

/* ---- server.c ---- */

struct kbs_server;
int kbs_server_start(const struct kbs_config *c, struct kbs_server **ret, struct cc_error **err);
void kbs_server_stop(struct kbs_server *s);
