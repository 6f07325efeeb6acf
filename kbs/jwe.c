/*
 * cc-kbs: resource responses as RFC 7516 flattened JSON, the way Trustee builds them (ref 1.8):
 * A256GCM content encryption with AAD = the ASCII `protected` member; the CEK wrapped with
 * RSA1_5, RSA-OAEP-256 (SHA-256 and MGF1-SHA-256) or ECDH-ES+A256KW (Concat KDF, one round,
 * empty apu/apv, then AES-256 key wrap). The header is emitted compact with `alg` first and
 * `enc` second, as the Rust client recomputes the AAD from it.
 */
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <string.h>

#include "kbs/kbs.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_free)

/* oaep_md: SHA-256 (RSA-OAEP-256), SHA-1 (RSA-OAEP, ocicrypt's choice), NULL: PKCS#1 v1.5. */
static int rsa_wrap(EVP_PKEY *pub, const EVP_MD *oaep_md, const uint8_t cek[32], uint8_t **ret,
                    size_t *ret_len)
{
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pub, NULL);
        if (!ctx || EVP_PKEY_encrypt_init(ctx) <= 0)
                return -EIO;
        if (oaep_md) {
                if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
                    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, oaep_md) <= 0 ||
                    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, oaep_md) <= 0)
                        return -EIO;
        } else if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0) {
                return -EIO;
        }
        size_t len = 0;
        if (EVP_PKEY_encrypt(ctx, NULL, &len, cek, 32) <= 0)
                return -EIO;
        _cleanup_free_ uint8_t *out = malloc(len);
        if (!out || EVP_PKEY_encrypt(ctx, out, &len, cek, 32) <= 0)
                return out ? -EIO : -ENOMEM;
        *ret = TAKE_PTR(out);
        *ret_len = len;
        return 0;
}

static char *coord(EVP_PKEY *k, const char *name, size_t size)
{
        _cleanup_(BN_freep) BIGNUM *bn = NULL;
        uint8_t buf[66];
        if (!EVP_PKEY_get_bn_param(k, name, &bn) || BN_bn2binpad(bn, buf, (int)size) < 0)
                return NULL;
        return cc_b64_encode(buf, size, true);
}

/* The JWK curve name and coordinate size of an EC key; 0 for curves JWE does not name. */
static size_t ec_curve(EVP_PKEY *k, const char **crv, const char **group)
{
        static const struct {
                const char *group, *crv;
                size_t size;
        } curves[] = {
                {"prime256v1", "P-256", 32},
                {"secp384r1", "P-384", 48},
                {"secp521r1", "P-521", 66},
        };
        char name[32] = "";
        if (!EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name),
                                            NULL))
                return 0;
        for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
                if (strcmp(name, curves[i].group) == 0) {
                        *crv = curves[i].crv;
                        *group = curves[i].group;
                        return curves[i].size;
                }
        return 0;
}

/* ECDH-ES+A256KW to `pub`: the wrapped CEK and the ephemeral key as a JWK (crv, kty, x, y). */
static int ecdh_wrap(EVP_PKEY *pub, EVP_PKEY *eph_in, const uint8_t cek[32], char **ret_epk,
                     uint8_t **ret, size_t *ret_len)
{
        const char *crv = NULL, *group = NULL;
        size_t size = ec_curve(pub, &crv, &group);
        if (!size)
                return -EINVAL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *eph = eph_in;
        if (eph)
                EVP_PKEY_up_ref(eph);
        else
                eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
        if (!eph)
                return -EIO;
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(eph, NULL);
        uint8_t z[66];
        size_t zl = sizeof(z);
        if (!ctx || EVP_PKEY_derive_init(ctx) <= 0 || EVP_PKEY_derive_set_peer(ctx, pub) <= 0 ||
            EVP_PKEY_derive(ctx, z, &zl) <= 0 || zl != size)
                return -EIO;
        /* Concat KDF (RFC 7518 4.6.2): one SHA-256 round, AlgorithmID, empty PartyU/VInfo. */
        static const uint8_t alg_id[] = "\0\0\0\x0e"
                                        "ECDH-ES+A256KW";
        static const uint8_t tail[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
        static const uint8_t round1[] = {0, 0, 0, 1};
        uint8_t kek[32];
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
                  EVP_DigestUpdate(md, round1, 4) && EVP_DigestUpdate(md, z, zl) &&
                  EVP_DigestUpdate(md, alg_id, sizeof(alg_id) - 1) &&
                  EVP_DigestUpdate(md, tail, sizeof(tail)) && EVP_DigestFinal_ex(md, kek, NULL);
        EVP_MD_CTX_free(md);
        OPENSSL_cleanse(z, sizeof(z));
        if (!ok)
                return -EIO;
        _cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        uint8_t wrapped[40];
        int l1 = 0, l2 = 0;
        if (!c)
                return -ENOMEM;
        EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
        ok = EVP_EncryptInit_ex(c, EVP_aes_256_wrap(), NULL, kek, NULL) &&
             EVP_EncryptUpdate(c, wrapped, &l1, cek, 32) &&
             EVP_EncryptFinal_ex(c, wrapped + l1, &l2) && l1 + l2 == 40;
        OPENSSL_cleanse(kek, sizeof(kek));
        if (!ok)
                return -EIO;
        _cleanup_free_ char *x = coord(eph, OSSL_PKEY_PARAM_EC_PUB_X, size);
        _cleanup_free_ char *y = coord(eph, OSSL_PKEY_PARAM_EC_PUB_Y, size);
        if (!x || !y)
                return -EIO;
        if (asprintf(ret_epk, "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", crv, x,
                     y) < 0)
                return -ENOMEM;
        *ret = malloc(40);
        if (!*ret) {
                free(*ret_epk);
                return -ENOMEM;
        }
        memcpy(*ret, wrapped, 40);
        *ret_len = 40;
        return 0;
}

/* A256GCM of `pt` with AAD = `prot` (the b64url protected header): iv, ciphertext, tag in b64url.
 */
static int gcm_parts(const uint8_t cek[32], const uint8_t iv[12], const char *prot,
                     const uint8_t *pt, size_t len, char **iv64, char **ct64, char **tag64)
{
        _cleanup_free_ uint8_t *ct = malloc(len ? len : 1);
        uint8_t tag[16];
        if (!ct || len > INT32_MAX)
                return -ENOMEM;
        _cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        int l = 0, l2 = 0;
        if (!c || !EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, cek, iv) ||
            !EVP_EncryptUpdate(c, NULL, &l, (const uint8_t *)prot, (int)strlen(prot)) ||
            !EVP_EncryptUpdate(c, ct, &l, pt, (int)len) || !EVP_EncryptFinal_ex(c, ct + l, &l2) ||
            !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag))
                return -EIO;
        *iv64 = cc_b64_encode(iv, 12, true);
        *ct64 = cc_b64_encode(ct, len, true);
        *tag64 = cc_b64_encode(tag, 16, true);
        return *iv64 && *ct64 && *tag64 ? 0 : -ENOMEM;
}

int kbs__jwe_encrypt_with(const struct kbs_jwk *k, const uint8_t *pt, size_t len,
                          const uint8_t cek[32], const uint8_t iv[12], EVP_PKEY *eph, char **ret,
                          struct cc_error **err)
{
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        _cleanup_free_ char *header = NULL, *epk = NULL;
        _cleanup_free_ uint8_t *ek = NULL;
        size_t ek_len = 0;
        int r = kbs_jwk_to_pkey(k, &pub, err);
        if (r < 0)
                return r;
        if (k->kty == KBS_KTY_RSA) {
                const EVP_MD *md = strcmp(k->alg, "RSA-OAEP-256") == 0 ? EVP_sha256() : NULL;
                r = rsa_wrap(pub, md, cek, &ek, &ek_len);
                if (r == 0 && asprintf(&header, "{\"alg\":\"%s\",\"enc\":\"A256GCM\"}", k->alg) < 0)
                        r = -ENOMEM;
        } else {
                r = ecdh_wrap(pub, eph, cek, &epk, &ek, &ek_len);
                if (r == 0 &&
                    asprintf(&header, "{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\",\"epk\":%s}",
                             epk) < 0)
                        r = -ENOMEM;
        }
        if (r < 0)
                return cc_error_set(err, -r, "wrapping the content key failed");
        _cleanup_free_ char *prot = cc_b64_encode((const uint8_t *)header, strlen(header), true);
        _cleanup_free_ char *ek64 = cc_b64_encode(ek, ek_len, true);
        _cleanup_free_ char *iv64 = NULL, *ct64 = NULL, *tag64 = NULL;
        if (!prot || !ek64)
                return -ENOMEM;
        if (gcm_parts(cek, iv, prot, pt, len, &iv64, &ct64, &tag64) < 0)
                return cc_error_set(err, EIO, "AES-256-GCM failed");
        if (asprintf(ret,
                     "{\"protected\":\"%s\",\"encrypted_key\":\"%s\",\"iv\":\"%s\","
                     "\"ciphertext\":\"%s\",\"tag\":\"%s\"}",
                     prot, ek64, iv64, ct64, tag64) < 0)
                return -ENOMEM;
        return 0;
}

int kbs_jwe_encrypt_recipients(EVP_PKEY *const *keys, size_t n, const uint8_t *pt, size_t len,
                               char **ret, struct cc_error **err)
{
        uint8_t cek[32], iv[12];
        static const char header[] = "{\"enc\":\"A256GCM\"}";
        _cleanup_free_ char *rcpts = NULL;
        size_t rn = 0;
        _cleanup_fclose_ FILE *f = open_memstream(&rcpts, &rn);
        if (!f)
                return -ENOMEM;
        if (RAND_bytes(cek, sizeof(cek)) != 1 || RAND_bytes(iv, sizeof(iv)) != 1)
                return cc_error_set(err, EIO, "no random bytes");
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ uint8_t *ek = NULL;
                _cleanup_free_ char *epk = NULL, *ek64 = NULL;
                size_t ek_len = 0;
                int r, type = EVP_PKEY_get_base_id(keys[i]);
                if (type == EVP_PKEY_RSA)
                        r = rsa_wrap(keys[i], EVP_sha1(), cek, &ek, &ek_len);
                else if (type == EVP_PKEY_EC)
                        r = ecdh_wrap(keys[i], NULL, cek, &epk, &ek, &ek_len);
                else
                        r = -EOPNOTSUPP;
                if (r < 0) {
                        OPENSSL_cleanse(cek, sizeof(cek));
                        return cc_error_set(err, -r,
                                            "recipient %zu: only RSA and EC P-256/P-384/P-521 "
                                            "public keys",
                                            i + 1);
                }
                ek64 = cc_b64_encode(ek, ek_len, true);
                if (!ek64)
                        return -ENOMEM;
                if (epk)
                        fprintf(f,
                                "%s{\"header\":{\"alg\":\"ECDH-ES+A256KW\",\"epk\":%s},"
                                "\"encrypted_key\":\"%s\"}",
                                i ? "," : "", epk, ek64);
                else
                        fprintf(f, "%s{\"header\":{\"alg\":\"RSA-OAEP\"},\"encrypted_key\":\"%s\"}",
                                i ? "," : "", ek64);
        }
        if (fflush(f) != 0)
                return -ENOMEM;
        _cleanup_free_ char *prot = cc_b64_encode((const uint8_t *)header, strlen(header), true);
        _cleanup_free_ char *iv64 = NULL, *ct64 = NULL, *tag64 = NULL;
        int r = prot ? gcm_parts(cek, iv, prot, pt, len, &iv64, &ct64, &tag64) : -ENOMEM;
        OPENSSL_cleanse(cek, sizeof(cek));
        if (r < 0)
                return cc_error_set(err, -r, "AES-256-GCM failed");
        if (asprintf(
                    ret,
                    "{\"protected\":\"%s\",\"recipients\":[%s],\"iv\":\"%s\",\"ciphertext\":\"%s\","
                    "\"tag\":\"%s\"}",
                    prot, rcpts, iv64, ct64, tag64) < 0)
                return -ENOMEM;
        return 0;
}

int kbs_jwe_encrypt(const struct kbs_jwk *k, const uint8_t *pt, size_t len, char **ret,
                    struct cc_error **err)
{
        uint8_t cek[32], iv[12];
        if (RAND_bytes(cek, sizeof(cek)) != 1 || RAND_bytes(iv, sizeof(iv)) != 1)
                return cc_error_set(err, EIO, "no random bytes");
        int r = kbs__jwe_encrypt_with(k, pt, len, cek, iv, NULL, ret, err);
        OPENSSL_cleanse(cek, sizeof(cek));
        return r;
}
