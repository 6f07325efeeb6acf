/*
 * cc-kbs tokens. Attestation tokens are ES256 JWTs with Trustee's EAR claim layout (ref 1.5,
 * 3.3) signed by a P-256 key (per process unless configured), the public key in the header's
 * `jwk` as Trustee does. Admin tokens are EdDSA (Ed25519) JWTs like Trustee's kbs-client mints
 * (ref 3.5): `exp` is required and checked, `nbf` when present.
 */
#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/pem.h>
#include <string.h>

#include "cc/json.h"

#include "kbs/kbs.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ECDSA_SIG *, ECDSA_SIG_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_free)

#define TOKEN_MAX 65536

static char *coord(EVP_PKEY *k, const char *name)
{
        _cleanup_(BN_freep) BIGNUM *bn = NULL;
        uint8_t buf[32];
        if (!EVP_PKEY_get_bn_param(k, name, &bn) || BN_bn2binpad(bn, buf, 32) < 0)
                return NULL;
        return cc_b64_encode(buf, 32, true);
}

int kbs_token_signer_init(struct kbs_token_signer *s, const char *pem_path, struct cc_error **err)
{
        memset(s, 0, sizeof(*s));
        if (pem_path) {
                _cleanup_fclose_ FILE *f = fopen(pem_path, "re");
                if (!f)
                        return cc_error_set(err, errno, "%s: %m", pem_path);
                s->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
                char group[32] = "";
                if (!s->key ||
                    !EVP_PKEY_get_utf8_string_param(s->key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                    sizeof(group), NULL) ||
                    strcmp(group, "prime256v1") != 0) {
                        kbs_token_signer_done(s);
                        return cc_error_set(err, EINVAL, "%s: not a P-256 private key", pem_path);
                }
        } else {
                s->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "prime256v1");
                if (!s->key)
                        return cc_error_set(err, EIO, "generating the token key failed");
        }
        _cleanup_free_ char *x = coord(s->key, OSSL_PKEY_PARAM_EC_PUB_X);
        _cleanup_free_ char *y = coord(s->key, OSSL_PKEY_PARAM_EC_PUB_Y);
        if (!x || !y ||
            asprintf(&s->jwk_json,
                     "{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ES256\",\"x\":\"%s\","
                     "\"y\":\"%s\"}",
                     x, y) < 0) {
                s->jwk_json = NULL;
                kbs_token_signer_done(s);
                return -ENOMEM;
        }
        return 0;
}

void kbs_token_signer_done(struct kbs_token_signer *s)
{
        EVP_PKEY_free(s->key);
        free(s->jwk_json);
        memset(s, 0, sizeof(*s));
}

/* Signs `input` and returns the JWS signature part (b64url). */
static int sign(EVP_PKEY *key, bool es256, const char *input, char **ret)
{
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
        uint8_t der[160];
        size_t len = sizeof(der);
        if (!md || EVP_DigestSignInit(md, NULL, es256 ? EVP_sha256() : NULL, NULL, key) != 1 ||
            EVP_DigestSign(md, der, &len, (const uint8_t *)input, strlen(input)) != 1)
                return -EIO;
        if (!es256) {
                *ret = cc_b64_encode(der, len, true);
                return *ret ? 0 : -ENOMEM;
        }
        /* JWS wants r || s, 32 bytes each, not DER. */
        const uint8_t *p = der;
        _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
        uint8_t raw[64];
        if (!sig || BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32) < 0 ||
            BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32) < 0)
                return -EIO;
        *ret = cc_b64_encode(raw, 64, true);
        return *ret ? 0 : -ENOMEM;
}

int kbs_token_issue(const struct kbs_token_signer *s, struct json_object *claims, char **ret,
                    struct cc_error **err)
{
        _cleanup_free_ char *header = NULL, *h64 = NULL, *p64 = NULL, *input = NULL, *sig = NULL;
        const char *payload = json_object_to_json_string_ext(
                claims, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (asprintf(&header, "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"jwk\":%s}", s->jwk_json) < 0)
                return -ENOMEM;
        h64 = cc_b64_encode((const uint8_t *)header, strlen(header), true);
        p64 = cc_b64_encode((const uint8_t *)payload, strlen(payload), true);
        if (!h64 || !p64 || asprintf(&input, "%s.%s", h64, p64) < 0)
                return -ENOMEM;
        if (sign(s->key, true, input, &sig) < 0)
                return cc_error_set(err, EIO, "signing the token failed");
        if (asprintf(ret, "%s.%s", input, sig) < 0)
                return -ENOMEM;
        return 0;
}

/*
 * Splits a compact JWS, checks the header's alg and the signature, and returns the payload.
 * `es256` picks ES256 (raw r||s) or EdDSA.
 */
static int jws_verify(EVP_PKEY *key, bool es256, const char *token, struct json_object **ret,
                      struct cc_error **err)
{
        size_t len = strnlen(token, TOKEN_MAX + 1);
        if (len > TOKEN_MAX)
                return cc_error_set(err, EINVAL, "token longer than %d bytes", TOKEN_MAX);
        const char *d1 = strchr(token, '.');
        const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
        if (!d2 || strchr(d2 + 1, '.'))
                return cc_error_set(err, EINVAL, "token is not a compact JWS");
        _cleanup_free_ uint8_t *h = NULL, *p = NULL, *sig = NULL;
        size_t hl, pl, sl;
        if (cc_b64_decode(token, (size_t)(d1 - token), true, &h, &hl) < 0 ||
            cc_b64_decode(d1 + 1, (size_t)(d2 - d1 - 1), true, &p, &pl) < 0 ||
            cc_b64_decode(d2 + 1, strlen(d2 + 1), true, &sig, &sl) < 0)
                return cc_error_set(err, EINVAL, "token: bad base64url");
        _cleanup_json_ struct json_object *hdr = NULL;
        const char *alg;
        if (cc_json_parse("token header", (const char *)h, hl, 8, &hdr, err) < 0 ||
            cc_json_get_string(hdr, "alg", &alg, err) < 0)
                return cc_error_set(err, EINVAL, "token: bad header");
        if (strcmp(alg, es256 ? "ES256" : "EdDSA") != 0)
                return cc_error_set(err, EINVAL, "token: alg '%.16s' not accepted", alg);

        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
        uint8_t der[160];
        size_t der_len = sl;
        const uint8_t *s = sig;
        if (es256) {
                if (sl != 64)
                        return cc_error_set(err, EINVAL, "token: bad signature length");
                _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *es = ECDSA_SIG_new();
                BIGNUM *r = BN_bin2bn(sig, 32, NULL), *ss = BN_bin2bn(sig + 32, 32, NULL);
                if (!es || !r || !ss || !ECDSA_SIG_set0(es, r, ss)) {
                        BN_free(r);
                        BN_free(ss);
                        return -ENOMEM;
                }
                uint8_t *dp = der;
                int n = i2d_ECDSA_SIG(es, &dp);
                if (n <= 0)
                        return -EIO;
                der_len = (size_t)n;
                s = der;
        }
        if (!md || EVP_DigestVerifyInit(md, NULL, es256 ? EVP_sha256() : NULL, NULL, key) != 1 ||
            EVP_DigestVerify(md, s, der_len, (const uint8_t *)token, (size_t)(d2 - token)) != 1)
                return cc_error_set(err, EPERM, "token: signature does not verify");
        return cc_json_parse("token claims", (const char *)p, pl, 32, ret, err);
}

static int check_times(struct json_object *claims, int64_t now, bool need_exp,
                       struct cc_error **err)
{
        int64_t exp, nbf;
        int r = cc_json_get_int64(claims, "exp", &exp, err);
        if (r == -ENOENT && need_exp)
                return cc_error_set(err, EINVAL, "token: no 'exp'");
        if (r == 0 && exp <= now)
                return cc_error_set(err, EPERM, "token: expired");
        if (r < 0 && r != -ENOENT)
                return r;
        r = cc_json_get_int64(claims, "nbf", &nbf, err);
        if (r == 0 && nbf > now)
                return cc_error_set(err, EPERM, "token: not valid yet");
        return r == -ENOENT ? 0 : r;
}

int kbs_token_verify(const struct kbs_token_signer *s, const char *token, int64_t now,
                     struct json_object **claims, struct cc_error **err)
{
        _cleanup_json_ struct json_object *c = NULL;
        int r = jws_verify(s->key, true, token, &c, err);
        if (r == 0)
                r = check_times(c, now, true, err);
        if (r < 0)
                return r;
        *claims = TAKE_PTR(c);
        return 0;
}

int kbs_admin_token_verify(EVP_PKEY *pub, const char *token, int64_t now, struct cc_error **err)
{
        _cleanup_json_ struct json_object *c = NULL;
        int r = jws_verify(pub, false, token, &c, err);
        return r < 0 ? r : check_times(c, now, true, err);
}

int kbs_admin_token_mint(EVP_PKEY *priv, int64_t now, int64_t lifetime, char **ret,
                         struct cc_error **err)
{
        static const char header[] = "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}";
        _cleanup_free_ char *claims = NULL, *h64 = NULL, *p64 = NULL, *input = NULL, *sig = NULL;
        if (asprintf(&claims,
                     "{\"iss\":\"cc-kbs\",\"sub\":\"admin\",\"aud\":[\"KBS\"],"
                     "\"role\":\"admin\",\"iat\":%lld,\"exp\":%lld}",
                     (long long)now, (long long)(now + lifetime)) < 0)
                return -ENOMEM;
        h64 = cc_b64_encode((const uint8_t *)header, strlen(header), true);
        p64 = cc_b64_encode((const uint8_t *)claims, strlen(claims), true);
        if (!h64 || !p64 || asprintf(&input, "%s.%s", h64, p64) < 0)
                return -ENOMEM;
        if (sign(priv, false, input, &sig) < 0)
                return cc_error_set(err, EINVAL,
                                    "signing the admin token failed (an Ed25519 "
                                    "private key is needed)");
        if (asprintf(ret, "%s.%s", input, sig) < 0)
                return -ENOMEM;
        return 0;
}
