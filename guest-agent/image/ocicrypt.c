/*
 * ocicrypt layer decryption (containers/ocicrypt's format, what `skopeo copy --encryption-key`
 * writes), all with OpenSSL:
 *   - the layer key (private options JSON: symkey, nonce, plain digest) is wrapped in a JWE
 *     per recipient in `org.opencontainers.image.enc.keys.jwe` (comma-separated base64 JWE
 *     JSON documents), or in CoCo's AnnotationPacket in
 *     `org.opencontainers.image.enc.keys.provider.attestation-agent` (KEK named by `kid`,
 *     fetched from the key broker);
 *   - the layer is AES-256-CTR (IV = the 16-byte nonce) with HMAC-SHA256 (key = symkey) over the
 *     whole ciphertext, given in `org.opencontainers.image.enc.pubopts`.
 * The stream is decrypted as it arrives and is untrusted until img__decrypt_final() has
 * compared the HMAC (constant time) and the plain digest; the layer code only publishes after
 * that.
 *
 * JWE is written here rather than taken from a library: Debian's C JOSE library (cjose 0.6)
 * has no ECDH-ES+A256KW key wrapping nor the general (multi-recipient) JSON serialisation
 * skopeo produces, and the subset needed (RSA-OAEP[-256], ECDH-ES+A*KW with the Concat KDF,
 * A*GCM content encryption) is a few OpenSSL calls each.
 */
#include <endian.h>
#include <errno.h>
#include <json-c/json.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/log.h"

#include "guest-agent/image/image-internal.h"

#define MAX_ANNOTATION (1 << 20)

DEFINE_TRIVIAL_CLEANUP_FUNC(struct json_object *, json_object_put)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_free)

struct img_decryptor {
        uint8_t key[32];
        EVP_CIPHER_CTX *ctr;
        EVP_MAC_CTX *hmac;
        EVP_MD_CTX *plain_md;
        uint8_t want_hmac[32];
        char want_digest[72];
        char layer[72];
};

static const char *jstr(struct json_object *o, const char *k)
{
        struct json_object *v;
        if (!o || !json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static int b64_field(struct json_object *o, const char *k, bool url, uint8_t **ret, size_t *ret_len)
{
        const char *s = jstr(o, k);
        if (!s)
                return -ENOENT;
        return img__b64_decode(s, strlen(s), url, ret, ret_len);
}

/* AES-GCM decrypt with a 12-byte IV and 16-byte tag; key 16/24/32 bytes. */
static int gcm_decrypt(const uint8_t *key, size_t key_len, const uint8_t *iv, size_t iv_len,
                       const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len,
                       const uint8_t *tag, size_t tag_len, uint8_t **ret, size_t *ret_len)
{
        const EVP_CIPHER *c = key_len == 32   ? EVP_aes_256_gcm()
                              : key_len == 24 ? EVP_aes_192_gcm()
                              : key_len == 16 ? EVP_aes_128_gcm()
                                              : NULL;
        if (!c || tag_len != 16 || iv_len == 0 || ct_len > INT32_MAX || aad_len > INT32_MAX)
                return -EINVAL;
        _cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        _cleanup_free_ uint8_t *out = malloc(ct_len + 1);
        int n = 0, m = 0;
        if (!ctx || !out)
                return -ENOMEM;
        if (!EVP_DecryptInit_ex(ctx, c, NULL, NULL, NULL) ||
            !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, (int)iv_len, NULL) ||
            !EVP_DecryptInit_ex(ctx, NULL, NULL, key, iv) ||
            (aad_len && !EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len)) ||
            !EVP_DecryptUpdate(ctx, out, &n, ct, (int)ct_len) ||
            !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag) ||
            EVP_DecryptFinal_ex(ctx, out + n, &m) <= 0)
                return -EBADMSG;
        *ret_len = (size_t)(n + m);
        *ret = TAKE_PTR(out);
        return 0;
}

static int rsa_oaep(EVP_PKEY *pk, bool sha256, const uint8_t *in, size_t in_len, uint8_t *out,
                    size_t *out_len)
{
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
        if (!ctx || EVP_PKEY_decrypt_init(ctx) <= 0 ||
            EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0)
                return -EINVAL;
        if (sha256 && (EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) <= 0 ||
                       EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) <= 0))
                return -EINVAL;
        return EVP_PKEY_decrypt(ctx, out, out_len, in, in_len) > 0 ? 0 : -EBADMSG;
}

/* The sender's ephemeral EC key from a JWK ({"kty":"EC","crv","x","y"}). */
static int epk_import(struct json_object *jwk, EVP_PKEY **ret)
{
        const char *crv = jstr(jwk, "crv");
        const char *group = NULL;
        size_t clen = 0;
        if (!crv || !cc_streq(jstr(jwk, "kty"), "EC"))
                return -EINVAL;
        if (!strcmp(crv, "P-256"))
                group = "prime256v1", clen = 32;
        else if (!strcmp(crv, "P-384"))
                group = "secp384r1", clen = 48;
        else if (!strcmp(crv, "P-521"))
                group = "secp521r1", clen = 66;
        else
                return -EOPNOTSUPP;
        _cleanup_free_ uint8_t *x = NULL, *y = NULL;
        size_t xl, yl;
        if (b64_field(jwk, "x", true, &x, &xl) < 0 || b64_field(jwk, "y", true, &y, &yl) < 0 ||
            xl != clen || yl != clen)
                return -EINVAL;
        uint8_t pt[1 + 2 * 66];
        pt[0] = 4;
        memcpy(pt + 1, x, clen);
        memcpy(pt + 1 + clen, y, clen);
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0),
                OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * clen),
                OSSL_PARAM_construct_end(),
        };
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx =
                EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
            EVP_PKEY_fromdata(ctx, ret, EVP_PKEY_PUBLIC_KEY, params) <= 0)
                return -EINVAL;
        return 0;
}

static void be32(uint8_t *p, uint32_t v)
{
        v = htobe32(v);
        memcpy(p, &v, sizeof(v));
}

/*
 * ECDH-ES+A{128,192,256}KW (RFC 7518 4.6): Z = ECDH(epk, our key); KEK = Concat KDF with
 * SHA-256 over counter || Z || len||alg || len||apu || len||apv || keybits; CEK = AES key
 * unwrap (RFC 3394) of encrypted_key.
 */
static int ecdh_es_kw(EVP_PKEY *pk, struct json_object *hdr, const char *alg, const uint8_t *ek,
                      size_t ek_len, uint8_t *out, size_t *out_len)
{
        size_t kbits = !strcmp(alg, "ECDH-ES+A256KW")   ? 256
                       : !strcmp(alg, "ECDH-ES+A192KW") ? 192
                       : !strcmp(alg, "ECDH-ES+A128KW") ? 128
                                                        : 0;
        struct json_object *jwk;
        if (!kbits || !json_object_object_get_ex(hdr, "epk", &jwk))
                return -EINVAL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *peer = NULL;
        int r = epk_import(jwk, &peer);
        if (r < 0)
                return r;
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
        uint8_t z[132];
        size_t zlen = sizeof(z);
        if (!ctx || EVP_PKEY_derive_init(ctx) <= 0 || EVP_PKEY_derive_set_peer(ctx, peer) <= 0 ||
            EVP_PKEY_derive(ctx, z, &zlen) <= 0)
                return -EBADMSG;
        _cleanup_free_ uint8_t *apu = NULL, *apv = NULL;
        size_t apu_len = 0, apv_len = 0;
        if (jstr(hdr, "apu") && b64_field(hdr, "apu", true, &apu, &apu_len) < 0)
                return -EINVAL;
        if (jstr(hdr, "apv") && b64_field(hdr, "apv", true, &apv, &apv_len) < 0)
                return -EINVAL;
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        uint8_t b4[4], kek[32];
        unsigned int kl = 0;
        if (!md)
                return -ENOMEM;
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        be32(b4, 1);
        EVP_DigestUpdate(md, b4, 4);
        EVP_DigestUpdate(md, z, zlen);
        be32(b4, (uint32_t)strlen(alg));
        EVP_DigestUpdate(md, b4, 4);
        EVP_DigestUpdate(md, alg, strlen(alg));
        be32(b4, (uint32_t)apu_len);
        EVP_DigestUpdate(md, b4, 4);
        EVP_DigestUpdate(md, apu, apu_len);
        be32(b4, (uint32_t)apv_len);
        EVP_DigestUpdate(md, b4, 4);
        EVP_DigestUpdate(md, apv, apv_len);
        be32(b4, (uint32_t)kbits);
        EVP_DigestUpdate(md, b4, 4);
        EVP_DigestFinal_ex(md, kek, &kl);
        EVP_MD_CTX_free(md);
        OPENSSL_cleanse(z, sizeof(z));

        const EVP_CIPHER *wrap = kbits == 256   ? EVP_aes_256_wrap()
                                 : kbits == 192 ? EVP_aes_192_wrap()
                                                : EVP_aes_128_wrap();
        _cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        int n = 0, m = 0;
        r = -EBADMSG;
        if (c && ek_len >= 16 && ek_len - 8 <= *out_len && ek_len < 1024) {
                EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
                if (EVP_DecryptInit_ex(c, wrap, NULL, kek, NULL) &&
                    EVP_DecryptUpdate(c, out, &n, ek, (int)ek_len) &&
                    EVP_DecryptFinal_ex(c, out + n, &m)) {
                        *out_len = (size_t)(n + m);
                        r = 0;
                }
        }
        OPENSSL_cleanse(kek, sizeof(kek));
        return r;
}

/* Merges the protected header with a recipient's unprotected one (protected wins). */
static const char *hdr_get(struct json_object *prot, struct json_object *rcpt, const char *k,
                           struct json_object **obj)
{
        struct json_object *v;
        if (prot && json_object_object_get_ex(prot, k, &v)) {
                if (obj)
                        *obj = prot;
                return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
        }
        if (rcpt && json_object_object_get_ex(rcpt, k, &v)) {
                if (obj)
                        *obj = rcpt;
                return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
        }
        return NULL;
}

/* Unwraps the CEK of one recipient with one key: 0 and the CEK, or <0. */
static int recipient_unwrap(EVP_PKEY *pk, struct json_object *prot, struct json_object *rcpt,
                            const uint8_t *ek, size_t ek_len, uint8_t *cek, size_t *cek_len)
{
        const char *alg = hdr_get(prot, rcpt, "alg", NULL);
        if (!alg)
                return -EINVAL;
        int type = EVP_PKEY_get_base_id(pk);
        if (!strcmp(alg, "RSA-OAEP") || !strcmp(alg, "RSA-OAEP-256")) {
                if (type != EVP_PKEY_RSA)
                        return -ENOKEY;
                return rsa_oaep(pk, !strcmp(alg, "RSA-OAEP-256"), ek, ek_len, cek, cek_len);
        }
        if (!strncmp(alg, "ECDH-ES+", 8)) {
                if (type != EVP_PKEY_EC)
                        return -ENOKEY;
                struct json_object *holder = NULL;
                hdr_get(prot, rcpt, "epk", &holder);
                /* apu/apv live with epk; pass the header that holds them. */
                return ecdh_es_kw(pk, holder ? holder : prot, alg, ek, ek_len, cek, cek_len);
        }
        return -EOPNOTSUPP;
}

int img__jwe_decrypt(const char *jwe_json, size_t len, const char *pem, size_t pem_len,
                     uint8_t **ret, size_t *ret_len, struct cc_error **err)
{
        _cleanup_(json_object_putp) struct json_object *o = img__json_parse(jwe_json, len, err);
        if (!o)
                return cc_error_wrap(err, EINVAL, "JWE");
        const char *prot_b64 = jstr(o, "protected");
        if (!prot_b64)
                return cc_error_set(err, EINVAL, "JWE: no protected header");
        _cleanup_free_ uint8_t *prot_raw = NULL, *iv = NULL, *ct = NULL, *tag = NULL;
        size_t prot_len, iv_len, ct_len, tag_len;
        if (img__b64_decode(prot_b64, strlen(prot_b64), true, &prot_raw, &prot_len) < 0 ||
            b64_field(o, "iv", true, &iv, &iv_len) < 0 ||
            b64_field(o, "ciphertext", true, &ct, &ct_len) < 0 ||
            b64_field(o, "tag", true, &tag, &tag_len) < 0)
                return cc_error_set(err, EINVAL, "JWE: bad or missing base64url member");
        _cleanup_(json_object_putp) struct json_object *prot =
                img__json_parse(prot_raw, prot_len, err);
        if (!prot)
                return cc_error_wrap(err, EINVAL, "JWE protected header");
        const char *enc = jstr(prot, "enc");
        size_t want_cek = cc_streq(enc, "A256GCM")   ? 32
                          : cc_streq(enc, "A192GCM") ? 24
                          : cc_streq(enc, "A128GCM") ? 16
                                                     : 0;
        if (!want_cek)
                return cc_error_set(err, EOPNOTSUPP, "JWE: unsupported enc '%s'",
                                    enc ? enc : "(none)");
        /* AAD: the protected header as sent, plus "." and the aad member when present. */
        _cleanup_free_ char *aad = NULL;
        const char *aad_ext = jstr(o, "aad");
        if (asprintf(&aad, "%s%s%s", prot_b64, aad_ext ? "." : "", aad_ext ? aad_ext : "") < 0)
                return -ENOMEM;

        BIO *bio = BIO_new_mem_buf(pem, (int)pem_len);
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pk =
                bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        if (!pk)
                return cc_error_set(err, EINVAL, "private key: not a PEM private key");

        struct json_object *rcpts = NULL;
        size_t n = 1;
        if (json_object_object_get_ex(o, "recipients", &rcpts)) {
                if (!json_object_is_type(rcpts, json_type_array))
                        return cc_error_set(err, EINVAL, "JWE: bad recipients");
                n = json_object_array_length(rcpts);
        }
        for (size_t i = 0; i < n && i < 64; i++) {
                struct json_object *r = rcpts ? json_object_array_get_idx(rcpts, i) : o;
                struct json_object *hdr = NULL;
                json_object_object_get_ex(r, "header", &hdr);
                _cleanup_free_ uint8_t *ek = NULL;
                size_t ek_len;
                if (b64_field(r, "encrypted_key", true, &ek, &ek_len) < 0)
                        continue;
                uint8_t cek[512];
                size_t cek_len = sizeof(cek);
                if (recipient_unwrap(pk, prot, hdr, ek, ek_len, cek, &cek_len) < 0)
                        continue;
                if (cek_len != want_cek) {
                        OPENSSL_cleanse(cek, sizeof(cek));
                        continue;
                }
                int q = gcm_decrypt(cek, cek_len, iv, iv_len, (const uint8_t *)aad, strlen(aad), ct,
                                    ct_len, tag, tag_len, ret, ret_len);
                OPENSSL_cleanse(cek, sizeof(cek));
                if (q == 0)
                        return 0;
        }
        return cc_error_set(err, ENOKEY, "JWE: the key matches no recipient");
}

/* CoCo AnnotationPacket: {"kid","wrapped_data","iv","wrap_type"} with a KEK from the broker. */
static int packet_unwrap(const char *json, size_t len, const struct img_key_broker *kb,
                         uint8_t **ret, size_t *ret_len, char *kid_out, size_t kid_size,
                         struct cc_error **err)
{
        _cleanup_(json_object_putp) struct json_object *o = img__json_parse(json, len, err);
        if (!o)
                return cc_error_wrap(err, EINVAL, "annotation packet");
        const char *kid = jstr(o, "kid");
        const char *wt = jstr(o, "wrap_type");
        if (!kid)
                return cc_error_set(err, EINVAL, "annotation packet: no kid");
        snprintf(kid_out, kid_size, "%s", kid);
        if (wt && strcmp(wt, "A256GCM"))
                return cc_error_set(err, EOPNOTSUPP, "annotation packet: wrap_type '%s'", wt);
        if (!kb->resource)
                return cc_error_set(err, ENOKEY, "key broker %s has no resources", kb->name);
        _cleanup_free_ uint8_t *kek = NULL, *wd = NULL, *iv = NULL;
        size_t kek_len, wd_len, iv_len;
        int r = kb->resource(kb->data, kid, &kek, &kek_len, err);
        if (r < 0)
                return r;
        if (b64_field(o, "wrapped_data", false, &wd, &wd_len) < 0 ||
            b64_field(o, "iv", false, &iv, &iv_len) < 0 || wd_len < 16 || kek_len != 32) {
                OPENSSL_cleanse(kek, kek_len);
                return cc_error_set(err, EINVAL, "annotation packet: bad fields or key size");
        }
        r = gcm_decrypt(kek, kek_len, iv, iv_len, NULL, 0, wd, wd_len - 16, wd + wd_len - 16, 16,
                        ret, ret_len);
        OPENSSL_cleanse(kek, kek_len);
        if (r < 0)
                return cc_error_set(err, EBADMSG, "annotation packet: KEK '%s' does not open it",
                                    kid);
        return 0;
}

/* Walks the comma-separated base64 items of an annotation, calling fn on each decoded one. */
static int private_opts(const struct img_descriptor *d, const struct img_key_broker *kb,
                        uint8_t **ret, size_t *ret_len, struct cc_error **err)
{
        char tried[512] = "";
        size_t tl = 0;
        /* Why the last key-provider packet could not be opened (the KBS's refusal, ...). */
        _cleanup_error_ struct cc_error *last = NULL;
        const char *ann[2] = {d->enc_jwe, d->enc_provider};
        for (int which = 0; which < 2; which++) {
                if (!ann[which])
                        continue;
                if (strlen(ann[which]) > MAX_ANNOTATION)
                        return cc_error_set(err, EFBIG, "key annotation too large");
                const char *p = ann[which];
                while (*p) {
                        size_t n = strcspn(p, ",");
                        _cleanup_free_ uint8_t *doc = NULL;
                        size_t doc_len;
                        if (n && img__b64_decode(p, n, false, &doc, &doc_len) == 0) {
                                if (which == 0) {
                                        for (size_t k = 0;; k++) {
                                                const char *pem, *id;
                                                size_t pem_len;
                                                if (!kb->private_key ||
                                                    kb->private_key(kb->data, k, &pem, &pem_len,
                                                                    &id) < 0)
                                                        break;
                                                if (img__jwe_decrypt((char *)doc, doc_len, pem,
                                                                     pem_len, ret, ret_len,
                                                                     NULL) == 0)
                                                        return 0;
                                                if (!strstr(tried, id) &&
                                                    tl + strlen(id) + 3 < sizeof(tried))
                                                        tl += (size_t)snprintf(
                                                                tried + tl, sizeof(tried) - tl,
                                                                "%s%s", tl ? ", " : "", id);
                                        }
                                } else {
                                        char kid[256] = "";
                                        cc_error_free(last);
                                        last = NULL;
                                        if (packet_unwrap((char *)doc, doc_len, kb, ret, ret_len,
                                                          kid, sizeof(kid), &last) == 0)
                                                return 0;
                                        if (*kid && tl + strlen(kid) + 3 < sizeof(tried))
                                                tl += (size_t)snprintf(tried + tl,
                                                                       sizeof(tried) - tl, "%s%s",
                                                                       tl ? ", " : "", kid);
                                }
                        }
                        p += n;
                        if (*p == ',')
                                p++;
                }
        }
        if (last)
                return cc_error_set(err, ENOKEY,
                                    "encrypted layer %s: no usable key (tried: %s): %s", d->digest,
                                    tl ? tried : "none", cc_error_message(last));
        return cc_error_set(err, ENOKEY, "encrypted layer %s: no usable key (tried: %s)", d->digest,
                            tl ? tried : "none");
}

int img__decryptor_new(const struct img_descriptor *d, const struct img_key_broker *kb,
                       struct img_decryptor **ret, struct cc_error **err)
{
        if (!kb)
                return cc_error_set(err, ENOKEY, "encrypted layer %s: no key broker configured",
                                    d->digest);
        if (!d->enc_pubopts || (!d->enc_jwe && !d->enc_provider))
                return cc_error_set(err, EINVAL, "encrypted layer %s: missing annotations",
                                    d->digest);
        _cleanup_free_ uint8_t *pub_raw = NULL, *priv_raw = NULL;
        size_t pub_len, priv_len = 0;
        if (strlen(d->enc_pubopts) > MAX_ANNOTATION ||
            img__b64_decode(d->enc_pubopts, strlen(d->enc_pubopts), false, &pub_raw, &pub_len) < 0)
                return cc_error_set(err, EINVAL, "encrypted layer %s: bad pubopts", d->digest);
        _cleanup_(json_object_putp) struct json_object *pub =
                img__json_parse(pub_raw, pub_len, err);
        if (!pub)
                return cc_error_wrap(err, EINVAL, "layer %s pubopts", d->digest);
        if (!cc_streq(jstr(pub, "cipher"), "AES_256_CTR_HMAC_SHA256"))
                return cc_error_set(err, EOPNOTSUPP, "layer %s: unsupported cipher", d->digest);
        _cleanup_free_ uint8_t *hmac = NULL;
        size_t hmac_len;
        if (b64_field(pub, "hmac", false, &hmac, &hmac_len) < 0 || hmac_len != 32)
                return cc_error_set(err, EINVAL, "layer %s: missing HMAC, refusing to decrypt",
                                    d->digest);
        int r = private_opts(d, kb, &priv_raw, &priv_len, err);
        if (r < 0)
                return r;
        _cleanup_(json_object_putp) struct json_object *priv =
                img__json_parse(priv_raw, priv_len, NULL);
        OPENSSL_cleanse(priv_raw, priv_len);
        if (!priv)
                return cc_error_set(err, EINVAL, "layer %s: bad private options", d->digest);
        struct json_object *copts = NULL;
        json_object_object_get_ex(priv, "cipheroptions", &copts);
        _cleanup_free_ uint8_t *key = NULL, *nonce = NULL;
        size_t key_len = 0, nonce_len = 0;
        const char *digest = jstr(priv, "digest");
        if (b64_field(priv, "symkey", false, &key, &key_len) < 0 || key_len != 32 ||
            b64_field(copts, "nonce", false, &nonce, &nonce_len) < 0 || nonce_len != 16 ||
            !img__digest_valid(digest)) {
                if (key)
                        OPENSSL_cleanse(key, key_len);
                return cc_error_set(err, EINVAL, "layer %s: bad private options", d->digest);
        }
        struct img_decryptor *x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        memcpy(x->key, key, 32);
        OPENSSL_cleanse(key, key_len);
        memcpy(x->want_hmac, hmac, 32);
        snprintf(x->want_digest, sizeof(x->want_digest), "%s", digest);
        snprintf(x->layer, sizeof(x->layer), "%s", d->digest);
        x->ctr = EVP_CIPHER_CTX_new();
        x->plain_md = EVP_MD_CTX_new();
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        x->hmac = mac ? EVP_MAC_CTX_new(mac) : NULL;
        EVP_MAC_free(mac);
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                               OSSL_PARAM_construct_end()};
        if (!x->ctr || !x->plain_md || !x->hmac ||
            !EVP_DecryptInit_ex(x->ctr, EVP_aes_256_ctr(), NULL, x->key, nonce) ||
            !EVP_MAC_init(x->hmac, x->key, 32, params) ||
            !EVP_DigestInit_ex(x->plain_md, EVP_sha256(), NULL)) {
                img__decryptor_free(x);
                return cc_error_set(err, ENOMEM, "layer %s: crypto init", d->digest);
        }
        *ret = x;
        return 0;
}

int img__decrypt(struct img_decryptor *d, uint8_t *buf, size_t len)
{
        int n = 0;
        EVP_MAC_update(d->hmac, buf, len);
        EVP_DecryptUpdate(d->ctr, buf, &n, buf, (int)len);
        EVP_DigestUpdate(d->plain_md, buf, len);
        return 0;
}

int img__decrypt_final(struct img_decryptor *d, struct cc_error **err)
{
        uint8_t mac[64];
        size_t mac_len = 0;
        if (!EVP_MAC_final(d->hmac, mac, &mac_len, sizeof(mac)) || mac_len != 32 ||
            CRYPTO_memcmp(mac, d->want_hmac, 32) != 0)
                return cc_error_set(err, EBADMSG, "encrypted layer %s: HMAC mismatch", d->layer);
        char got[72];
        img__digest_final(d->plain_md, got);
        if (strcmp(got, d->want_digest))
                return cc_error_set(err, EBADMSG,
                                    "encrypted layer %s: decrypted digest %s, expected %s",
                                    d->layer, got, d->want_digest);
        return 0;
}

struct img_decryptor *img__decryptor_free(struct img_decryptor *d)
{
        if (!d)
                return NULL;
        OPENSSL_cleanse(d->key, sizeof(d->key));
        EVP_CIPHER_CTX_free(d->ctr);
        EVP_MAC_CTX_free(d->hmac);
        EVP_MD_CTX_free(d->plain_md);
        free(d);
        return NULL;
}
