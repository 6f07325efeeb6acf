/* cc-kbs: the TEE public key a client sends in /attest (ref 1.6), as Trustee types it. */
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <string.h>

#include "kbs/kbs.h"

static int member(struct json_object *o, const char *key, char **ret, struct cc_error **err)
{
        struct json_object *v;
        if (!json_object_object_get_ex(o, key, &v))
                return cc_error_set(err, EINVAL, "tee-pubkey: missing member '%s'", key);
        if (!json_object_is_type(v, json_type_string))
                return cc_error_set(err, EINVAL, "tee-pubkey: member '%s' must be a string", key);
        size_t len = (size_t)json_object_get_string_len(v);
        if (memchr(json_object_get_string(v), 0, len))
                return cc_error_set(err, EINVAL, "tee-pubkey: member '%s' contains NUL", key);
        *ret = strdup(json_object_get_string(v));
        return *ret ? 0 : -ENOMEM;
}

void kbs_jwk_done(struct kbs_jwk *k)
{
        free(k->alg);
        free(k->crv);
        free(k->x);
        free(k->y);
        free(k->n);
        free(k->e);
        memset(k, 0, sizeof(*k));
}

int kbs_jwk_parse(struct json_object *o, struct kbs_jwk *ret, struct cc_error **err)
{
        struct kbs_jwk k = {};
        _cleanup_free_ char *kty = NULL;
        int r;
        if (!json_object_is_type(o, json_type_object))
                return cc_error_set(err, EINVAL, "tee-pubkey must be an object");
        r = member(o, "kty", &kty, err);
        if (r < 0)
                return r;
        if (strcmp(kty, "EC") == 0) {
                k.kty = KBS_KTY_EC;
                r = member(o, "crv", &k.crv, err);
                if (r == 0)
                        r = member(o, "alg", &k.alg, err);
                if (r == 0)
                        r = member(o, "x", &k.x, err);
                if (r == 0)
                        r = member(o, "y", &k.y, err);
        } else if (strcmp(kty, "RSA") == 0) {
                k.kty = KBS_KTY_RSA;
                r = member(o, "alg", &k.alg, err);
                if (r == 0)
                        r = member(o, "n", &k.n, err);
                if (r == 0)
                        r = member(o, "e", &k.e, err);
        } else {
                r = cc_error_set(err, EINVAL, "tee-pubkey: unsupported kty '%.16s'", kty);
        }
        if (r < 0) {
                kbs_jwk_done(&k);
                return r;
        }
        *ret = k;
        return 0;
}

struct json_object *kbs_jwk_to_json(const struct kbs_jwk *k)
{
        struct json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "kty",
                               json_object_new_string(k->kty == KBS_KTY_EC ? "EC" : "RSA"));
        if (k->kty == KBS_KTY_EC) {
                json_object_object_add(o, "crv", json_object_new_string(k->crv));
                json_object_object_add(o, "alg", json_object_new_string(k->alg));
                json_object_object_add(o, "x", json_object_new_string(k->x));
                json_object_object_add(o, "y", json_object_new_string(k->y));
        } else {
                json_object_object_add(o, "alg", json_object_new_string(k->alg));
                json_object_object_add(o, "n", json_object_new_string(k->n));
                json_object_object_add(o, "e", json_object_new_string(k->e));
        }
        return o;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM_BLD *, OSSL_PARAM_BLD_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM *, OSSL_PARAM_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_free)

static int pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld, EVP_PKEY **ret,
                         struct cc_error **err)
{
        _cleanup_(OSSL_PARAM_freep) OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx =
                EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
        EVP_PKEY *pkey = NULL;
        if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
            EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0 || !pkey)
                return cc_error_set(err, EINVAL, "tee-pubkey: not a valid %s public key", type);
        *ret = pkey;
        return 0;
}

static int ec_pkey(const struct kbs_jwk *k, EVP_PKEY **ret, struct cc_error **err)
{
        const char *group;
        size_t size;
        if (strcmp(k->alg, "ECDH-ES+A256KW") != 0)
                return cc_error_set(err, EINVAL, "tee-pubkey: EC alg '%.32s' is not supported",
                                    k->alg);
        if (strcmp(k->crv, "P-256") == 0) {
                group = "prime256v1";
                size = 32;
        } else if (strcmp(k->crv, "P-521") == 0) {
                group = "secp521r1";
                size = 66;
        } else {
                return cc_error_set(err, EINVAL, "tee-pubkey: curve '%.16s' is not supported",
                                    k->crv);
        }
        _cleanup_free_ uint8_t *x = NULL, *y = NULL;
        size_t xl, yl;
        if (cc_b64_decode(k->x, strlen(k->x), true, &x, &xl) < 0 ||
            cc_b64_decode(k->y, strlen(k->y), true, &y, &yl) < 0)
                return cc_error_set(err, EINVAL, "tee-pubkey: x/y are not base64url");
        if (xl != size || yl != size)
                return cc_error_set(err, EINVAL, "tee-pubkey: %s coordinates must be %zu bytes",
                                    k->crv, size);
        uint8_t point[1 + 2 * 66];
        point[0] = 4;
        memcpy(point + 1, x, size);
        memcpy(point + 1 + size, y, size);
        _cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
            !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * size))
                return -ENOMEM;
        EVP_PKEY *pkey = NULL;
        int r = pkey_fromdata("EC", bld, &pkey, err);
        if (r < 0)
                return r;
        /* fromdata does not prove the point is on the curve: check it before any ECDH. */
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
        if (!ctx || EVP_PKEY_public_check(ctx) != 1) {
                EVP_PKEY_free(pkey);
                return cc_error_set(err, EINVAL, "tee-pubkey: point is not on %s", k->crv);
        }
        *ret = pkey;
        return 0;
}

static int rsa_pkey(const struct kbs_jwk *k, EVP_PKEY **ret, struct cc_error **err)
{
        if (strcmp(k->alg, "RSA-OAEP-256") != 0 && strcmp(k->alg, "RSA1_5") != 0)
                return cc_error_set(err, EINVAL, "tee-pubkey: RSA alg '%.32s' is not supported",
                                    k->alg);
        _cleanup_free_ uint8_t *n = NULL, *e = NULL;
        size_t nl, el;
        if (cc_b64_decode(k->n, strlen(k->n), true, &n, &nl) < 0 ||
            cc_b64_decode(k->e, strlen(k->e), true, &e, &el) < 0)
                return cc_error_set(err, EINVAL, "tee-pubkey: n/e are not base64url");
        _cleanup_(BN_freep) BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL);
        _cleanup_(BN_freep) BIGNUM *be = BN_bin2bn(e, (int)el, NULL);
        if (!bn || !be)
                return -ENOMEM;
        int bits = BN_num_bits(bn);
        if (bits < 2048 || bits > 8192)
                return cc_error_set(err, EINVAL, "tee-pubkey: RSA modulus of %d bits (2048..8192)",
                                    bits);
        if (BN_num_bits(be) > 64 || !BN_is_odd(be) || BN_is_one(be))
                return cc_error_set(err, EINVAL, "tee-pubkey: bad RSA exponent");
        _cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        if (!bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
                return -ENOMEM;
        return pkey_fromdata("RSA", bld, ret, err);
}

int kbs_jwk_to_pkey(const struct kbs_jwk *k, EVP_PKEY **ret, struct cc_error **err)
{
        return k->kty == KBS_KTY_EC ? ec_pkey(k, ret, err) : rsa_pkey(k, ret, err);
}
