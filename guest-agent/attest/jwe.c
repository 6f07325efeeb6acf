/*
 * The TEE key (attestation-kbs.md 1.6) and JWE decryption of the KBS's resource answers (1.8),
 * on OpenSSL 3.
 *
 * The key is ephemeral: one per attestation, never written anywhere. The JWK carries exactly
 * the members Trustee re-serializes before it hashes the runtime data (kty,crv,alg,x,y or
 * kty,alg,n,e), coordinates left-padded to the field size.
 *
 * Decryption: ECDH-ES+A256KW (Concat KDF with SHA-256 in one round, AES key unwrap),
 * RSA-OAEP-256 (OAEP with SHA-256 and MGF1-SHA-256, empty label), RSA1_5; content always
 * A256GCM with the `protected` member's own bytes as AAD (never a re-serialized header).
 */
#include <endian.h>
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/json.h"

#include "guest-agent/attest/kbc.h"

#define JWE_MAX (8u << 20) /* the whole JWE text; resources are keys and small documents */

struct kbc_tee_key {
        enum kbc_key_alg alg;
        EVP_PKEY *pkey;
};

static void evp_pkey_freep(EVP_PKEY **p)
{
        EVP_PKEY_free(*p);
}
static void evp_pkey_ctx_freep(EVP_PKEY_CTX **p)
{
        EVP_PKEY_CTX_free(*p);
}
static void evp_cipher_ctx_freep(EVP_CIPHER_CTX **p)
{
        EVP_CIPHER_CTX_free(*p);
}
static void bn_freep(BIGNUM **p)
{
        BN_free(*p);
}
static void json_putp(struct json_object **p)
{
        json_object_put(*p);
}

/* A whole buffer as one JSON value (NULL if it is not exactly that). */
/* A whole buffer as one JSON value, strictly (libcc's parser: RFC 8259, UTF-8, nothing after
 * the value); NULL if it is not exactly that. */
static struct json_object *parse_exact(const void *data, size_t len)
{
        struct json_object *o = NULL;
        return cc_json_parse("KBS answer", data, len, 32, &o, NULL) == 0 ? o : NULL;
}

static int key_kind(EVP_PKEY *pkey, enum kbc_key_alg *alg)
{
        if (EVP_PKEY_is_a(pkey, "EC")) {
                char group[32] = "";
                size_t gl = 0;
                if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                   sizeof(group), &gl) != 1 ||
                    strcmp(group, "prime256v1") != 0)
                        return -EOPNOTSUPP;
                *alg = KBC_KEY_EC_P256;
                return 0;
        }
        if (EVP_PKEY_is_a(pkey, "RSA")) {
                *alg = KBC_KEY_RSA_OAEP_256;
                return 0;
        }
        return -EOPNOTSUPP;
}

/* The key object around pkey, which it takes (freed here on failure). */
static int tee_key_wrap(EVP_PKEY *pkey, enum kbc_key_alg alg, struct kbc_tee_key **ret)
{
        struct kbc_tee_key *k = calloc(1, sizeof(*k));
        if (!k) {
                EVP_PKEY_free(pkey);
                return -ENOMEM;
        }
        k->alg = alg;
        k->pkey = pkey;
        *ret = k;
        return 0;
}

int kbc_tee_key_generate(enum kbc_key_alg alg, struct kbc_tee_key **ret)
{
        EVP_PKEY *pkey = alg == KBC_KEY_EC_P256
                                 ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
                                 : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        if (!pkey)
                return -EIO;
        return tee_key_wrap(pkey, alg, ret);
}

int kbc_tee_key_from_pem(const char *pem, size_t len, struct kbc_tee_key **ret)
{
        BIO *bio = BIO_new_mem_buf(pem, (int)len);
        if (!bio)
                return -ENOMEM;
        EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (!pkey)
                return -EINVAL;
        enum kbc_key_alg alg;
        int r = key_kind(pkey, &alg);
        if (r < 0) {
                EVP_PKEY_free(pkey);
                return r;
        }
        return tee_key_wrap(pkey, alg, ret);
}

struct kbc_tee_key *kbc_tee_key_free(struct kbc_tee_key *k)
{
        if (k) {
                EVP_PKEY_free(k->pkey);
                free(k);
        }
        return NULL;
}

/* b64url of a big number, left-padded to `pad` bytes (0: minimal length). */
static char *bn_b64url(EVP_PKEY *pkey, const char *param, size_t pad)
{
        _cleanup_(bn_freep) BIGNUM *bn = NULL;
        if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1)
                return NULL;
        size_t n = pad ? pad : (size_t)BN_num_bytes(bn);
        if (n == 0 || n > 1024)
                return NULL;
        uint8_t buf[1024];
        if (BN_bn2binpad(bn, buf, (int)n) < 0)
                return NULL;
        return cc_b64_encode(buf, n, true);
}

static int add_str(struct json_object *o, const char *k, char *v_owned)
{
        if (!v_owned)
                return -ENOMEM;
        struct json_object *s = json_object_new_string(v_owned);
        free(v_owned);
        if (!s)
                return -ENOMEM;
        return json_object_object_add(o, k, s) == 0 ? 0 : -ENOMEM;
}

struct json_object *kbc_tee_key_jwk(const struct kbc_tee_key *k)
{
        _cleanup_(json_putp) struct json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        int r;
        if (k->alg == KBC_KEY_EC_P256) {
                r = add_str(o, "kty", strdup("EC"));
                if (r == 0)
                        r = add_str(o, "crv", strdup("P-256"));
                if (r == 0)
                        r = add_str(o, "alg", strdup("ECDH-ES+A256KW"));
                if (r == 0)
                        r = add_str(o, "x", bn_b64url(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, 32));
                if (r == 0)
                        r = add_str(o, "y", bn_b64url(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, 32));
        } else {
                r = add_str(o, "kty", strdup("RSA"));
                if (r == 0)
                        r = add_str(o, "alg", strdup("RSA-OAEP-256"));
                if (r == 0)
                        r = add_str(o, "n", bn_b64url(k->pkey, OSSL_PKEY_PARAM_RSA_N, 0));
                if (r == 0)
                        r = add_str(o, "e", bn_b64url(k->pkey, OSSL_PKEY_PARAM_RSA_E, 0));
        }
        return r == 0 ? TAKE_PTR(o) : NULL;
}

/* ---- JWE -------------------------------------------------------------------------------- */

static const char *get_str(struct json_object *o, const char *k)
{
        struct json_object *v;
        if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static int b64url_field(struct json_object *o, const char *k, uint8_t **ret, size_t *len,
                        struct cc_error **err)
{
        const char *s = get_str(o, k);
        if (!s)
                return cc_error_set(err, EBADMSG, "JWE: no string member '%s'", k);
        if (cc_b64_decode(s, strlen(s), true, ret, len) < 0)
                return cc_error_set(err, EBADMSG, "JWE: member '%s' is not base64url", k);
        return 0;
}

/* The peer's ephemeral P-256 key from the header's epk. */
static int epk_key(struct json_object *epk, EVP_PKEY **ret, struct cc_error **err)
{
        const char *kty = get_str(epk, "kty"), *crv = get_str(epk, "crv");
        if (!kty || strcmp(kty, "EC") || !crv)
                return cc_error_set(err, EBADMSG, "JWE: epk is not an EC key");
        if (strcmp(crv, "P-256"))
                return cc_error_set(err, EBADMSG, "JWE: epk curve %s is not the TEE key's P-256",
                                    crv);
        _cleanup_free_ uint8_t *x = NULL, *y = NULL;
        size_t xl = 0, yl = 0;
        int r = b64url_field(epk, "x", &x, &xl, err);
        if (r == 0)
                r = b64url_field(epk, "y", &y, &yl, err);
        if (r < 0)
                return r;
        if (xl != 32 || yl != 32)
                return cc_error_set(err, EBADMSG, "JWE: epk coordinates are not 32 bytes");
        uint8_t point[65] = {0x04};
        memcpy(point + 1, x, 32);
        memcpy(point + 33, y, 32);
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0),
                OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)),
                OSSL_PARAM_construct_end(),
        };
        _cleanup_(evp_pkey_ctx_freep) EVP_PKEY_CTX *ctx =
                EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        EVP_PKEY *pk = NULL;
        if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
            EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
                return cc_error_set(err, EBADMSG, "JWE: epk is not a point on P-256");
        *ret = pk;
        return 0;
}

static void be32(uint8_t *p, uint32_t v)
{
        v = htobe32(v);
        memcpy(p, &v, sizeof(v));
}

/* ECDH-ES+A256KW: Z, the Concat KDF (RFC 7518 4.6.2), then AES-256 key unwrap. */
static int unwrap_ecdh(const struct kbc_tee_key *k, struct json_object *hdr, const uint8_t *ek,
                       size_t ek_len, uint8_t cek[32], struct cc_error **err)
{
        struct json_object *epk;
        if (!json_object_object_get_ex(hdr, "epk", &epk) ||
            !json_object_is_type(epk, json_type_object))
                return cc_error_set(err, EBADMSG, "JWE: ECDH-ES+A256KW without epk");
        _cleanup_(evp_pkey_freep) EVP_PKEY *peer = NULL;
        int r = epk_key(epk, &peer, err);
        if (r < 0)
                return r;
        _cleanup_(evp_pkey_ctx_freep) EVP_PKEY_CTX *dctx = EVP_PKEY_CTX_new(k->pkey, NULL);
        uint8_t z[32];
        size_t zl = sizeof(z);
        if (!dctx || EVP_PKEY_derive_init(dctx) != 1 || EVP_PKEY_derive_set_peer(dctx, peer) != 1 ||
            EVP_PKEY_derive(dctx, z, &zl) != 1 || zl != 32)
                return cc_error_set(err, EBADMSG, "JWE: ECDH with the epk failed");
        static const char algid[] = "ECDH-ES+A256KW";
        uint8_t kdf[4 + 32 + 4 + sizeof(algid) - 1 + 4 + 4 + 4], *p = kdf;
        be32(p, 1), p += 4;
        memcpy(p, z, 32), p += 32;
        be32(p, sizeof(algid) - 1), p += 4;
        memcpy(p, algid, sizeof(algid) - 1), p += sizeof(algid) - 1;
        be32(p, 0), p += 4; /* apu */
        be32(p, 0), p += 4; /* apv */
        be32(p, 256), p += 4;
        uint8_t kek[64];
        r = kbc_hash(KBC_SHA256, kdf, sizeof(kdf), kek);
        OPENSSL_cleanse(z, sizeof(z));
        OPENSSL_cleanse(kdf, sizeof(kdf));
        if (r < 0)
                return cc_error_set(err, EIO, "JWE: Concat KDF");
        if (ek_len != 40) {
                OPENSSL_cleanse(kek, sizeof(kek));
                return cc_error_set(err, EBADMSG, "JWE: wrapped key is %zu bytes, not 40", ek_len);
        }
        _cleanup_(evp_cipher_ctx_freep) EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        int n1 = 0, n2 = 0;
        uint8_t out[48];
        bool ok = c != NULL;
        if (ok) {
                EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
                ok = EVP_DecryptInit_ex(c, EVP_aes_256_wrap(), NULL, kek, NULL) == 1 &&
                     EVP_DecryptUpdate(c, out, &n1, ek, (int)ek_len) == 1 &&
                     EVP_DecryptFinal_ex(c, out + n1, &n2) == 1 && n1 + n2 == 32;
        }
        OPENSSL_cleanse(kek, sizeof(kek));
        if (!ok) {
                OPENSSL_cleanse(out, sizeof(out));
                return cc_error_set(err, EBADMSG, "JWE: AES key unwrap failed (wrong key)");
        }
        memcpy(cek, out, 32);
        OPENSSL_cleanse(out, sizeof(out));
        return 0;
}

static int unwrap_rsa(const struct kbc_tee_key *k, bool oaep, const uint8_t *ek, size_t ek_len,
                      uint8_t cek[32], struct cc_error **err)
{
        _cleanup_(evp_pkey_ctx_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k->pkey, NULL);
        if (!ctx || EVP_PKEY_decrypt_init(ctx) != 1)
                return cc_error_set(err, EIO, "JWE: RSA context");
        if (oaep && (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
                     EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) != 1 ||
                     EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) != 1))
                return cc_error_set(err, EIO, "JWE: RSA-OAEP-256 parameters");
        if (!oaep && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1)
                return cc_error_set(err, EIO, "JWE: RSA1_5 parameters");
        uint8_t out[512];
        size_t n = sizeof(out);
        if (EVP_PKEY_decrypt(ctx, out, &n, ek, ek_len) != 1 || n != 32) {
                OPENSSL_cleanse(out, sizeof(out));
                ERR_clear_error();
                return cc_error_set(err, EBADMSG, "JWE: %s key decryption failed (wrong key)",
                                    oaep ? "RSA-OAEP-256" : "RSA1_5");
        }
        memcpy(cek, out, 32);
        OPENSSL_cleanse(out, sizeof(out));
        return 0;
}

/* A256GCM with the protected header's base64url text as AAD (RFC 7516 5.2): the plaintext,
 * malloc'ed; -EBADMSG when the tag does not match. */
static int gcm_open(const uint8_t cek[32], const uint8_t iv[12], const char *aad, const uint8_t *ct,
                    size_t ctl, const uint8_t tag[16], uint8_t **ret, size_t *ret_len)
{
        _cleanup_(evp_cipher_ctx_freep) EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        uint8_t *pt = malloc(ctl + 16);
        int n1 = 0, n2 = 0, dummy = 0;
        if (!c || !pt) {
                free(pt);
                return -ENOMEM;
        }
        bool ok = EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
                  EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 &&
                  EVP_DecryptInit_ex(c, NULL, NULL, cek, iv) == 1 &&
                  EVP_DecryptUpdate(c, NULL, &dummy, (const uint8_t *)aad, (int)strlen(aad)) == 1 &&
                  EVP_DecryptUpdate(c, pt, &n1, ct, (int)ctl) == 1 &&
                  EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag) == 1 &&
                  EVP_DecryptFinal_ex(c, pt + n1, &n2) == 1;
        if (!ok) {
                OPENSSL_cleanse(pt, ctl);
                free(pt);
                return -EBADMSG;
        }
        *ret = pt;
        *ret_len = (size_t)(n1 + n2);
        return 0;
}

int kbc_jwe_decrypt(const struct kbc_tee_key *k, const char *json, size_t len, uint8_t **ret,
                    size_t *ret_len, struct cc_error **err)
{
        if (len > JWE_MAX)
                return cc_error_set(err, EMSGSIZE, "JWE: %zu bytes, more than %u", len, JWE_MAX);
        _cleanup_(json_putp) struct json_object *o = parse_exact(json, len);
        if (!o || !json_object_is_type(o, json_type_object))
                return cc_error_set(err, EBADMSG, "JWE: not a JSON object");
        const char *prot = get_str(o, "protected");
        if (!prot)
                return cc_error_set(err, EBADMSG, "JWE: no string member 'protected'");
        _cleanup_free_ uint8_t *hdr_raw = NULL, *ek = NULL, *iv = NULL, *ct = NULL, *tag = NULL;
        size_t hl = 0, ekl = 0, ivl = 0, ctl = 0, tagl = 0;
        int r = b64url_field(o, "protected", &hdr_raw, &hl, err);
        if (r == 0)
                r = b64url_field(o, "encrypted_key", &ek, &ekl, err);
        if (r == 0)
                r = b64url_field(o, "iv", &iv, &ivl, err);
        if (r == 0)
                r = b64url_field(o, "ciphertext", &ct, &ctl, err);
        if (r == 0)
                r = b64url_field(o, "tag", &tag, &tagl, err);
        if (r < 0)
                return r;
        _cleanup_(json_putp) struct json_object *hdr = parse_exact(hdr_raw, hl);
        if (!hdr || !json_object_is_type(hdr, json_type_object))
                return cc_error_set(err, EBADMSG, "JWE: the protected header is not a JSON object");
        const char *alg = get_str(hdr, "alg"), *enc = get_str(hdr, "enc");
        if (!alg || !enc)
                return cc_error_set(err, EBADMSG, "JWE: the protected header lacks alg or enc");
        if (strcmp(enc, "A256GCM"))
                return cc_error_set(err, EBADMSG, "JWE: content encryption %s is not A256GCM", enc);
        if (ivl != 12 || tagl != 16)
                return cc_error_set(err, EBADMSG, "JWE: iv is %zu bytes and tag %zu (need 12, 16)",
                                    ivl, tagl);
        uint8_t cek[32];
        if (!strcmp(alg, "ECDH-ES+A256KW")) {
                if (k->alg != KBC_KEY_EC_P256)
                        return cc_error_set(err, EBADMSG, "JWE: %s for an RSA TEE key", alg);
                r = unwrap_ecdh(k, hdr, ek, ekl, cek, err);
        } else if (!strcmp(alg, "RSA-OAEP-256") || !strcmp(alg, "RSA1_5")) {
                if (k->alg != KBC_KEY_RSA_OAEP_256)
                        return cc_error_set(err, EBADMSG, "JWE: %s for an EC TEE key", alg);
                r = unwrap_rsa(k, !strcmp(alg, "RSA-OAEP-256"), ek, ekl, cek, err);
        } else {
                return cc_error_set(err, EBADMSG,
                                    "JWE: key management algorithm %.32s is not supported", alg);
        }
        if (r < 0)
                return r;
        r = gcm_open(cek, iv, prot, ct, ctl, tag, ret, ret_len);
        OPENSSL_cleanse(cek, sizeof(cek));
        if (r == -EBADMSG)
                return cc_error_set(err, EBADMSG, "JWE: A256GCM authentication failed (bad tag)");
        return r;
}

void kbc_jwe_warm(const struct kbc_tee_key *k)
{
        /* An RSA private-key operation would cost more than the warm-up saves. */
        if (k->alg != KBC_KEY_EC_P256)
                return;
        _cleanup_(kbc_tee_key_freep) struct kbc_tee_key *eph = NULL;
        _cleanup_(json_putp) struct json_object *hdr = json_object_new_object();
        if (!hdr || kbc_tee_key_generate(KBC_KEY_EC_P256, &eph) < 0)
                return;
        json_object_object_add(hdr, "epk", kbc_tee_key_jwk(eph));
        /* A zero wrapped key and tag: the unwrap and the tag check fail, as they must, after
         * running the code a real answer runs. */
        static const uint8_t zero[40], iv[12], tag[16];
        uint8_t cek[32];
        if (unwrap_ecdh(k, hdr, zero, sizeof(zero), cek, NULL) == 0)
                OPENSSL_cleanse(cek, sizeof(cek));
        uint8_t *pt = NULL;
        size_t n = 0;
        if (gcm_open(zero, iv, "e30", zero, 16, tag, &pt, &n) == 0) {
                OPENSSL_cleanse(pt, n);
                free(pt);
        }
        /* The expected failures leave nothing for this thread's next OpenSSL caller. */
        ERR_clear_error();
}
