/*
 * Sigstore (cosign-format) signatures stored as registry attachments: the OCI manifest tagged
 * sha256-<hex>.sig in the image's repository, one layer per signature whose blob is the
 * payload and whose `dev.cosignproject.cosign/signature` annotation is the base64 signature
 * over the payload's exact bytes. Only public keys are supported; Fulcio certificates and
 * Rekor bundles in other annotations are ignored, as containers/image and image-rs do when no
 * Rekor key is configured (keyless policies are refused when the policy is loaded).
 */
/* EC keys with the low-level EC_KEY/ECDSA_verify (deprecated in OpenSSL 3): less code to run
 * once per process than EVP's fetches, which under TCG is what costs (openpgp.c says more). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <errno.h>
#include <json-c/json.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/json.h"

#include "guest-agent/image/image-internal.h"
#include "guest-agent/image/sig-internal.h"

void img__sigstore_layers_free(struct img_sigstore_layer *l, size_t n)
{
        for (size_t i = 0; l && i < n; i++) {
                free(l[i].digest);
                free(l[i].signature_b64);
        }
        free(l);
}

void img__sigstore_sigs_free(struct img_sigstore_sig *s, size_t n)
{
        for (size_t i = 0; s && i < n; i++) {
                free(s[i].payload);
                free(s[i].signature_b64);
        }
        free(s);
}

int img__sigstore_manifest_parse(const char *content_type, const uint8_t *buf, size_t len,
                                 struct img_sigstore_layer **ret, size_t *ret_n, size_t *ret_other,
                                 struct cc_error **err)
{
        *ret = NULL;
        *ret_n = *ret_other = 0;
        if (content_type && *content_type &&
            strncmp(content_type, IMG_MT_OCI_MANIFEST, strlen(IMG_MT_OCI_MANIFEST)))
                return cc_error_set(err, EBADMSG,
                                    "unexpected MIME type for sigstore attachment manifest: %s",
                                    content_type);
        _cleanup_(json_object_putp) struct json_object *o = img__json_parse_strict(buf, len, err);
        if (!o)
                return cc_error_wrap(err, EBADMSG, "sigstore attachment manifest");
        struct json_object *mt = img__jget(o, "mediaType"), *sv = img__jget(o, "schemaVersion");
        if (!json_object_is_type(sv, json_type_int) || json_object_get_int64(sv) != 2 ||
            (mt && (!json_object_is_type(mt, json_type_string) ||
                    strcmp(json_object_get_string(mt), IMG_MT_OCI_MANIFEST))))
                return cc_error_set(err, EBADMSG,
                                    "sigstore attachment manifest: not an OCI image "
                                    "manifest");
        struct json_object *layers = img__jget(o, "layers");
        if (!json_object_is_type(layers, json_type_array))
                return cc_error_set(err, EBADMSG, "sigstore attachment manifest: no layers array");
        size_t n = json_object_array_length(layers);
        if (n > IMG_SIG_MAX_COUNT)
                return cc_error_set(err, E2BIG,
                                    "sigstore attachment manifest: %zu layers, at most "
                                    "%d read",
                                    n, IMG_SIG_MAX_COUNT);
        struct img_sigstore_layer *l = calloc(n + 1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                struct json_object *d = json_object_array_get_idx(layers, i);
                struct json_object *lmt = img__jget(d, "mediaType"), *dg = img__jget(d, "digest"),
                                   *sz = img__jget(d, "size"), *an = img__jget(d, "annotations");
                if (!json_object_is_type(d, json_type_object) ||
                    !json_object_is_type(lmt, json_type_string) ||
                    !json_object_is_type(dg, json_type_string) ||
                    !json_object_is_type(sz, json_type_int) || json_object_get_int64(sz) < 0 ||
                    (an && !json_object_is_type(an, json_type_object))) {
                        img__sigstore_layers_free(l, k);
                        return cc_error_set(err, EBADMSG,
                                            "sigstore attachment manifest: layer %zu malformed",
                                            i + 1);
                }
                if (strcmp(json_object_get_string(lmt), IMG_MT_COSIGN_SIMPLESIGNING)) {
                        (*ret_other)++;
                        continue;
                }
                if (!img__digest_valid(json_object_get_string(dg))) {
                        img__sigstore_layers_free(l, k);
                        return cc_error_set(err, EBADMSG,
                                            "sigstore attachment manifest: layer %zu: unsupported "
                                            "digest",
                                            i + 1);
                }
                struct json_object *sig = an ? img__jget(an, IMG_COSIGN_SIG_ANNOTATION) : NULL;
                l[k].size = json_object_get_int64(sz);
                l[k].digest = strdup(json_object_get_string(dg));
                if (json_object_is_type(sig, json_type_string))
                        l[k].signature_b64 = strdup(json_object_get_string(sig));
                if (!l[k].digest ||
                    (json_object_is_type(sig, json_type_string) && !l[k].signature_b64)) {
                        img__sigstore_layers_free(l, k + 1);
                        return -ENOMEM;
                }
                k++;
        }
        *ret = l;
        *ret_n = k;
        return 0;
}

/* Standard base64 with padding, canonical only (re-encoding gives the same text); newlines
 * are dropped first as some cosign versions wrap the annotation. */
static int b64_strict(const char *s, uint8_t **ret, size_t *ret_len)
{
        size_t n = strlen(s);
        _cleanup_free_ char *clean = malloc(n + 1);
        if (!clean)
                return -ENOMEM;
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                if (s[i] != '\n' && s[i] != '\r')
                        clean[k++] = s[i];
        clean[k] = 0;
        if (k == 0 || k % 4)
                return -EINVAL;
        _cleanup_free_ uint8_t *raw = NULL;
        size_t rl;
        if (img__b64_decode(clean, k, false, &raw, &rl) < 0)
                return -EINVAL;
        _cleanup_free_ char *again = img__b64_encode(raw, rl);
        if (!again)
                return -ENOMEM;
        if (strcmp(again, clean))
                return -EINVAL;
        *ret = TAKE_PTR(raw);
        *ret_len = rl;
        return 0;
}

/*
 * The public key of a PEM SubjectPublicKeyInfo. The forms cosign and skopeo make (EC P-256,
 * P-384, Ed25519) are recognised by their fixed DER prefix and built directly: OpenSSL 3's
 * generic PEM reader goes through its decoder framework, whose first use in a process cost
 * about 40 ms in the guest under TCG (each pull is a new helper process). EC keys become an
 * EC_KEY (*ret_ec), the rest an EVP_PKEY (*ret_pk); anything else goes to PEM_read_bio_PUBKEY.
 * Neither set: not a public key (or not a point on its curve).
 */
static void spki_read(const uint8_t *pem, size_t pem_len, EC_KEY **ret_ec, EVP_PKEY **ret_pk)
{
        static const uint8_t p256[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                       0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                       0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};
        static const uint8_t p384[] = {0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86,
                                       0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
                                       0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00};
        static const uint8_t ed25519[] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                          0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
        static const char begin[] = "-----BEGIN PUBLIC KEY-----",
                          end[] = "-----END PUBLIC KEY-----";
        *ret_ec = NULL;
        *ret_pk = NULL;
        const char *t = (const char *)pem;
        const char *b = memmem(t, pem_len, begin, sizeof(begin) - 1);
        if (b)
                b += sizeof(begin) - 1; /* the END line is looked for after the BEGIN line */
        const char *e = b ? memmem(b, pem_len - (size_t)(b - t), end, sizeof(end) - 1) : NULL;
        if (b && e) {
                _cleanup_free_ char *b64 = malloc((size_t)(e - b) + 1);
                size_t n = 0;
                for (const char *q = b; b64 && q < e; q++)
                        if (!strchr(" \t\r\n", *q))
                                b64[n++] = *q;
                _cleanup_free_ uint8_t *der = NULL;
                size_t dl = 0;
                if (b64 && img__b64_decode(b64, n, false, &der, &dl) == 0) {
                        int nid = NID_undef;
                        const uint8_t *point = NULL;
                        if (dl == sizeof(p256) + 65 && !memcmp(der, p256, sizeof(p256))) {
                                nid = NID_X9_62_prime256v1;
                                point = der + sizeof(p256);
                        } else if (dl == sizeof(p384) + 97 && !memcmp(der, p384, sizeof(p384))) {
                                nid = NID_secp384r1;
                                point = der + sizeof(p384);
                        } else if (dl == sizeof(ed25519) + 32 &&
                                   !memcmp(der, ed25519, sizeof(ed25519))) {
                                *ret_pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
                                                                      der + sizeof(ed25519), 32);
                                return;
                        }
                        if (point) {
                                EC_KEY *ec = EC_KEY_new_by_curve_name(nid);
                                if (ec && EC_KEY_oct2key(ec, point, dl - (size_t)(point - der),
                                                         NULL) == 1)
                                        *ret_ec = TAKE_PTR(ec);
                                EC_KEY_free(ec);
                                return;
                        }
                }
        }
        BIO *bio = BIO_new_mem_buf(pem, (int)CC_MIN(pem_len, (size_t)INT32_MAX));
        *ret_pk = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
}

void img__sigstore_key_warm(const uint8_t *pem, size_t pem_len)
{
        EC_KEY *ec;
        EVP_PKEY *pk;
        spki_read(pem, pem_len, &ec, &pk);
        EVP_PKEY_free(pk);
        ECDSA_SIG *es = ec ? ECDSA_SIG_new() : NULL;
        BIGNUM *r = BN_new(), *s = BN_new();
        if (es && r && s && BN_one(r) && BN_one(s) && ECDSA_SIG_set0(es, r, s)) {
                r = s = NULL;
                uint8_t md[SHA256_DIGEST_LENGTH];
                memset(md, 0x5a, sizeof(md));
                (void)ECDSA_do_verify(md, sizeof(md), es, ec); /* fails, as it must */
        }
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        EC_KEY_free(ec);
}

int img__sigstore_verify(const uint8_t *pem, size_t pem_len, const uint8_t *payload,
                         size_t payload_len, const char *sig_b64, struct cc_error **err)
{
        _cleanup_free_ uint8_t *sig = NULL;
        size_t sl;
        int r = b64_strict(sig_b64, &sig, &sl);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return cc_error_set(err, EBADMSG, "signature annotation is not canonical base64");
        EC_KEY *ec;
        EVP_PKEY *pk;
        spki_read(pem, pem_len, &ec, &pk);
        if (!ec && !pk)
                return cc_error_set(err, EINVAL, "public key is not a PEM SubjectPublicKeyInfo");
        /* containers/image hard-codes SHA-256 for ECDSA and RSA keys; Ed25519 is pure. */
        if (ec) {
                uint8_t md[SHA256_DIGEST_LENGTH];
                SHA256_CTX c;
                SHA256_Init(&c);
                SHA256_Update(&c, payload, payload_len);
                SHA256_Final(md, &c);
                int ok = ECDSA_verify(0, md, sizeof(md), sig, (int)CC_MIN(sl, (size_t)INT32_MAX),
                                      ec) == 1;
                EC_KEY_free(ec);
                return ok ? 0
                          : cc_error_set(err, EBADMSG,
                                         "cryptographic signature verification failed");
        }
        int id = EVP_PKEY_get_base_id(pk);
        const EVP_MD *md = id == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
        if (id != EVP_PKEY_EC && id != EVP_PKEY_RSA && id != EVP_PKEY_ED25519) {
                EVP_PKEY_free(pk);
                return cc_error_set(err, EOPNOTSUPP, "public key type not supported");
        }
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        int ok = c && EVP_DigestVerifyInit(c, NULL, md, NULL, pk) > 0 &&
                 EVP_DigestVerify(c, sig, sl, payload, payload_len) == 1;
        EVP_MD_CTX_free(c);
        EVP_PKEY_free(pk);
        if (!ok)
                return cc_error_set(err, EBADMSG, "cryptographic signature verification failed");
        return 0;
}
