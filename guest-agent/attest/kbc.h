#pragma once
/*
 * libccattest: the guest's key broker client (KBC) for Trustee's KBS protocol 0.4.0 (RCAR:
 * auth, attest, resource), the attesters that produce TEE evidence, JWE decryption of the
 * KBS's answers, and initdata. Wire facts: ../shared/reference/attestation-kbs.md (section
 * numbers below refer to it).
 *
 *   kbc_tee_key_*()       the ephemeral TEE key and its JWK (1.6)
 *   kbc_jwe_decrypt()     flattened JWE: ECDH-ES+A256KW, RSA-OAEP-256, RSA1_5 with A256GCM (1.8)
 *   kbc_evidence_*()      sample, SNP and TDX evidence JSON; report parsers (3.1, 4)
 *   kbc_attester_*()      which TEE this guest is in, and the device calls (4)
 *   kbc_client_*()        the protocol client: one attestation serves every resource until the
 *                         KBS says the session or token expired (1.3-1.9, 8.1)
 *   kbc_initdata_*()      initdata TOML, its digest, the pod annotation and disk format (7)
 */
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cc/cleanup.h"
#include "cc/codec.h"
#include "cc/error.h"

/* Encodings (b64, b64url, RFC 8785 JSON) are libcc's: cc/codec.h. */

/* ---- hashes ----------------------------------------------------------------------------- */

enum kbc_hash { KBC_SHA256, KBC_SHA384, KBC_SHA512 };
int kbc_hash_from_name(const char *name, enum kbc_hash *ret); /* "sha256", ... */
const char *kbc_hash_name(enum kbc_hash h);
size_t kbc_hash_len(enum kbc_hash h);
int kbc_hash(enum kbc_hash h, const void *data, size_t len, uint8_t out[64]);
/* Truncate or zero-pad to n bytes (Trustee's regularize_data, 2.2 and 7.3). */
void kbc_regularize(const uint8_t *in, size_t in_len, uint8_t *out, size_t n);

/* ---- the TEE key (1.6) ------------------------------------------------------------------ */

enum kbc_key_alg { KBC_KEY_EC_P256, KBC_KEY_RSA_OAEP_256 };
struct kbc_tee_key;
int kbc_tee_key_generate(enum kbc_key_alg alg, struct kbc_tee_key **ret);
/* A fixed key from PKCS#8 PEM (tests and the reference's vectors). */
int kbc_tee_key_from_pem(const char *pem, size_t len, struct kbc_tee_key **ret);
/* The JWK with exactly the members Trustee re-serializes: kty,crv,alg,x,y or kty,alg,n,e. */
struct json_object *kbc_tee_key_jwk(const struct kbc_tee_key *k);
struct kbc_tee_key *kbc_tee_key_free(struct kbc_tee_key *k);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kbc_tee_key *, kbc_tee_key_free)

/* ---- JWE (1.8) -------------------------------------------------------------------------- */

/* Decrypts a flattened-JSON JWE addressed to k; the plaintext is malloc'ed. */
int kbc_jwe_decrypt(const struct kbc_tee_key *k, const char *json, size_t len, uint8_t **ret,
                    size_t *ret_len, struct cc_error **err);
/* Runs the EC unwrap's code once on throwaway inputs (ECDH with a fresh epk, Concat KDF, AES
 * key unwrap, A256GCM), so that the first real answer does not pay its first use (tens of ms of
 * code translation in a TCG guest); nothing for an RSA key. */
void kbc_jwe_warm(const struct kbc_tee_key *k);

/* ---- evidence (3.1, 4) ------------------------------------------------------------------ */

enum kbc_tee { KBC_TEE_SAMPLE, KBC_TEE_SNP, KBC_TEE_TDX };
const char *kbc_tee_name(enum kbc_tee t); /* the protocol's spelling: sample, snp, tdx */

#define KBC_SNP_REPORT_SIZE     1184
#define KBC_SNP_REPORT_DATA     0x50
#define KBC_SNP_MEASUREMENT     0x90
#define KBC_SNP_HOST_DATA       0xC0
#define KBC_TDREPORT_SIZE       1024
#define KBC_TDREPORT_REPORTDATA 128
#define KBC_TDREPORT_MRCONFIGID 576

/* {"svn":"1","report_data":"<b64 of the raw digest>"} (never padded, 2.2). */
struct json_object *kbc_evidence_sample(const uint8_t *digest, size_t len);
/* {"attestation_report":{...serde form...},"cert_chain":null|[...]} from a raw 1184-byte
 * ATTESTATION_REPORT and an optional GHCB certificate table. */
int kbc_evidence_snp(const uint8_t *report, size_t len, const uint8_t *certs, size_t certs_len,
                     struct json_object **ret, struct cc_error **err);
/* {"cc_eventlog":null,"quote":"<b64>"} from a TD quote, after checking its header. */
int kbc_evidence_tdx(const uint8_t *quote, size_t len, struct json_object **ret,
                     struct cc_error **err);
/* A TD quote's REPORTDATA (64) and MRCONFIGID (48), per its version (4 or 5). */
int kbc_tdx_quote_fields(const uint8_t *quote, size_t len, const uint8_t **report_data,
                         const uint8_t **mrconfigid, struct cc_error **err);

/* ---- the host's Quote Generation Service over vsock (4.3, legacy path) ------------------- */

#define KBC_QGS_REQUEST_SIZE (4 + 16 + 8 + KBC_TDREPORT_SIZE)
#define KBC_QGS_PORT_DEFAULT 4050
/* The framed GET_QUOTE_REQ for a TDREPORT: 4-byte big-endian length, qgs_msg header, body. */
void kbc_qgs_encode_request(const uint8_t tdreport[KBC_TDREPORT_SIZE],
                            uint8_t out[KBC_QGS_REQUEST_SIZE]);
/* The quote inside a GET_QUOTE_RESP message (after the length prefix); *quote points into msg. */
int kbc_qgs_decode_response(const uint8_t *msg, size_t len, const uint8_t **quote,
                            size_t *quote_len, struct cc_error **err);
/* One request and its answer on a connected stream (bounded by timeout_ms; 0 = 30 s). */
int kbc_qgs_exchange(int fd, const uint8_t tdreport[KBC_TDREPORT_SIZE], unsigned timeout_ms,
                     uint8_t **ret, size_t *ret_len, struct cc_error **err);
/* The port of /etc/tdx-attest.conf's "port=" line (conf_path NULL), else 4050. */
unsigned kbc_qgs_port(const char *conf_path);
/* A quote from the QGS at vsock CID 2 (the host), port. */
int kbc_qgs_quote(unsigned port, const uint8_t tdreport[KBC_TDREPORT_SIZE], uint8_t **ret,
                  size_t *ret_len, struct cc_error **err);

/* ---- attesters (4) ---------------------------------------------------------------------- */

struct kbc_attester_paths {
        const char *tsm;       /* configfs-tsm report dir; default /sys/kernel/config/tsm/report */
        const char *sev_guest; /* default /dev/sev-guest */
        const char *tdx_guest; /* default /dev/tdx_guest */
};
/* The TEE this guest runs in: SNP or TDX when their device (or configfs-tsm provider) is
 * there, else sample. */
enum kbc_tee kbc_attester_detect(const struct kbc_attester_paths *p);
/* Evidence binding report_data (at most 64 bytes): sample JSON, or a fresh SNP report / TD
 * quote from the device. */
int kbc_attester_evidence(enum kbc_tee tee, const struct kbc_attester_paths *p,
                          const uint8_t *report_data, size_t len, struct json_object **ret,
                          struct cc_error **err);
/* The launch-bound initdata field (SNP HOST_DATA, 32 bytes; TDX MRCONFIGID, 48) of this
 * guest; -EOPNOTSUPP for sample. */
int kbc_attester_init_data_field(enum kbc_tee tee, const struct kbc_attester_paths *p, uint8_t *out,
                                 size_t *out_len, struct cc_error **err);

/* ---- initdata (7) ----------------------------------------------------------------------- */

struct kbc_initdata {
        char *toml; /* the exact bytes, NUL-terminated */
        size_t toml_len;
        enum kbc_hash alg;
        uint8_t digest[64];
        size_t digest_len;
        struct json_object *data; /* the [data] table: name -> string */
};
/* Parses and validates (version "0.1.0", algorithm sha256|sha384|sha512, [data] of strings;
 * at most 256 KiB) and computes the digest over the exact bytes. */
int kbc_initdata_parse(const char *toml, size_t len, struct kbc_initdata **ret,
                       struct cc_error **err);
/* The pod annotation: base64(gzip(TOML)). */
int kbc_initdata_from_annotation(const char *b64, struct kbc_initdata **ret, struct cc_error **err);
/* The annotation for a TOML (gzip, then base64): what a pod owner puts on the pod. */
int kbc_initdata_annotation_encode(const char *toml, size_t len, char **ret);
/* Kata's disk: "initdata" + u64 LE length of the gzip stream + the stream, padded to 512. */
int kbc_initdata_disk_encode(const char *b64_annotation, uint8_t **ret, size_t *ret_len,
                             struct cc_error **err);
int kbc_initdata_from_disk(const uint8_t *disk, size_t len, struct kbc_initdata **ret,
                           struct cc_error **err);
/* One [data] entry, or NULL. */
const char *kbc_initdata_get(const struct kbc_initdata *d, const char *name);
struct kbc_initdata *kbc_initdata_free(struct kbc_initdata *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kbc_initdata *, kbc_initdata_free)

/* ---- the protocol client (1, 8.1) ------------------------------------------------------- */

/* 20 s per step: a KBS that hangs fails the pull within Kata's create_container_timeout
 * (60 s by default), with its step named. */
#define KBC_TIMEOUT_MS_DEFAULT 20000
struct kbc_client_config {
        const char *url;      /* http(s)://host:port of the KBS */
        const char *cert_pem; /* the KBS's certificate or CA (PEM text) for https; NULL:
                               * the system's CAs */
        enum kbc_tee tee;     /* the attester to use */
        struct kbc_attester_paths paths;
        enum kbc_key_alg key_alg;            /* default EC P-256 */
        const struct kbc_initdata *initdata; /* sent as init-data; NULL: null */
        unsigned timeout_ms;                 /* per step (auth, attest, resource), retries
                                              * included; default KBC_TIMEOUT_MS_DEFAULT */
        unsigned max_body;                   /* largest response accepted; default 4 MiB */
        bool sample_in_tee; /* tests only: allow `sample` evidence (never in a TEE) */
        bool attest_early;  /* kbc_key_broker: attest in a thread as the broker is made */
};
struct kbc_client;
int kbc_client_new(const struct kbc_client_config *cfg, struct kbc_client **ret,
                   struct cc_error **err);
/* GET the resource named by a kbs:///repo/type/tag URI (or repo/type/tag), attesting first
 * when there is no valid session; the plaintext is malloc'ed. Errors name the KBS URL, the
 * step (auth, attest, resource) and the KBS's own `type` and `detail`. */
int kbc_client_get_resource(struct kbc_client *c, const char *uri, uint8_t **ret, size_t *ret_len,
                            struct cc_error **err);
/* Attests now unless a session with an unexpired token is in force (auth and attest only, then
 * kbc_jwe_warm): what a caller that knows it will ask for resources soon runs ahead of them. */
int kbc_client_attest(struct kbc_client *c, struct cc_error **err);
/* Timings of the last get_resource or attest (ms): auth, attest, resource request, decryption;
 * tls_ms is the part of them spent in TLS handshakes (a new connection's). */
struct kbc_timings {
        double auth_ms, attest_ms, resource_ms, decrypt_ms, tls_ms;
        unsigned attestations;
};
void kbc_client_timings(struct kbc_client *c, struct kbc_timings *ret);
/* Thread-safe: requests from several threads are served one at a time. */
struct kbc_client *kbc_client_free(struct kbc_client *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kbc_client *, kbc_client_free)

/* ---- the image pull's key broker ----------------------------------------------------- */

struct img_key_broker;
/*
 * A `kbs` broker for the image library: resources (key-provider KEKs) from the KBS named in
 * cfg, after attestation; `local` (an offline_fs broker, may be NULL) is asked first and
 * supplies the private keys. On success the new broker owns `local`.
 */
int kbc_key_broker(const struct kbc_client_config *cfg, struct img_key_broker *local,
                   struct img_key_broker **ret, struct cc_error **err);

/* Where the agent leaves the pod's initdata for the pull helper (Kata's path). */
#define KBC_INITDATA_FILE "/run/confidential-containers/initdata/initdata.toml"
/* The KBS settings of an initdata's cdh.toml ([kbc] url, kbs_cert) or aa.toml
 * ([token_configs.kbs] url, cert); *url NULL when it names none. Strings are malloc'ed. */
int kbc_initdata_kbs(const struct kbc_initdata *d, char **url, char **cert_pem,
                     struct cc_error **err);

/* One string of the initdata's cdh.toml by dotted path (e.g.
 * "image.image_security_policy_uri", CoCo's CDH key); *ret NULL when absent. */
int kbc_initdata_cdh_get(const struct kbc_initdata *d, const char *path, char **ret,
                         struct cc_error **err);

/* The registry credentials the initdata's cdh.toml names, as CoCo's CDH does ([image]
 * authenticated_registry_credentials_uri), else the kernel command line's
 * agent.image_registry_auth=URI (Kata's parameter; d and cmdline may be NULL): a
 * containers-auth.json document, the resource of a kbs:/// URI fetched through `keys` (the KBS
 * broker: after attestation), or a file:/// of the guest image. *ret (NUL-terminated, *ret_len
 * bytes; wipe it after use) and *ret_uri are NULL when neither names any. */
#define KBC_AUTH_JSON_MAX (64u << 10)
int kbc_registry_credentials(const struct kbc_initdata *d, const char *cmdline,
                             const struct img_key_broker *keys, char **ret, size_t *ret_len,
                             char **ret_uri, struct cc_error **err);

/* The keys of the initdata's cdh.toml and aa.toml this guest does not apply, as
 * "cdh.toml:socket, cdh.toml:image.max_concurrent_layer_downloads_per_image, ..."; *ret NULL
 * when every key is applied. An error when either document is not TOML. */
int kbc_initdata_ignored(const struct kbc_initdata *d, char **ret, struct cc_error **err);

/* A resource path from a URI: "kbs:///a/b/c", "kbs://host:1/a/b/c" (host ignored, as the
 * guest components do) or "a/b/c"; three segments matching Trustee's segment syntax. */
int kbc_resource_path(const char *uri, char *out, size_t n);
