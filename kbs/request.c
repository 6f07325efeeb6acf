/* cc-kbs: parsing the RCAR request bodies of protocol 0.4.0 (ref 1.2, 1.4, 2.1). */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "cc/json.h"

#include "kbs/kbs.h"

static const char *const tee_names[_KBS_TEE_MAX] = {
        [KBS_TEE_AZ_SNP_VTPM] = "az-snp-vtpm",
        [KBS_TEE_AZ_TDX_VTPM] = "az-tdx-vtpm",
        [KBS_TEE_NVIDIA] = "nvidia",
        [KBS_TEE_SGX] = "sgx",
        [KBS_TEE_SNP] = "snp",
        [KBS_TEE_TDX] = "tdx",
        [KBS_TEE_CCA] = "cca",
        [KBS_TEE_CSV] = "csv",
        [KBS_TEE_SE] = "se",
        [KBS_TEE_HYGONDCU] = "hygondcu",
        [KBS_TEE_TPM] = "tpm",
        [KBS_TEE_SAMPLE] = "sample",
        [KBS_TEE_SAMPLEDEVICE] = "sampledevice",
};

int kbs_tee_from_string(const char *s, enum kbs_tee *ret)
{
        for (int i = 0; i < _KBS_TEE_MAX; i++)
                if (strcmp(s, tee_names[i]) == 0) {
                        *ret = (enum kbs_tee)i;
                        return 0;
                }
        return -EINVAL;
}

const char *kbs_tee_to_string(enum kbs_tee tee)
{
        return tee >= 0 && tee < _KBS_TEE_MAX ? tee_names[tee] : "unknown";
}

/* Bodies are small JSON documents: 32 levels is far beyond any valid one. */
#define BODY_DEPTH 32

int kbs_parse_auth(const char *body, size_t len, struct kbs_auth_request *ret, char **reason)
{
        _cleanup_json_ struct json_object *root = NULL;
        struct json_object *v, *tee;
        enum kbs_tee t;
        const char *why = "deserialize Request";
        if (cc_json_parse("request", body, len, BODY_DEPTH, &root, NULL) < 0 ||
            !json_object_is_type(root, json_type_object) ||
            !json_object_object_get_ex(root, "version", &v) ||
            !json_object_is_type(v, json_type_string) ||
            !json_object_object_get_ex(root, "tee", &tee) ||
            !json_object_is_type(tee, json_type_string) ||
            kbs_tee_from_string(json_object_get_string(tee), &t) < 0 ||
            !json_object_object_get_ex(root, "extra-params", NULL)) {
                *reason = strdup(why);
                return -EINVAL;
        }
        if (strcmp(json_object_get_string(v), KBS_PROTOCOL_VERSION) != 0) {
                /* The version is echoed: bound it so a log line stays a line. */
                if (asprintf(reason,
                             "KBS Client Protocol Version Mismatch: expect =" KBS_PROTOCOL_VERSION
                             " while the request is %.64s",
                             json_object_get_string(v)) < 0)
                        *reason = NULL;
                return -EINVAL;
        }
        ret->tee = t;
        return 0;
}

void kbs_attest_request_done(struct kbs_attest_request *r)
{
        kbs_jwk_done(&r->key);
        json_object_put(r->root);
        memset(r, 0, sizeof(*r));
}

static int get_string(struct json_object *o, const char *key, const char *what, const char **ret,
                      size_t *ret_len, struct cc_error **err)
{
        struct json_object *v;
        if (!json_object_object_get_ex(o, key, &v))
                return cc_error_set(err, EINVAL, "%s: missing '%s'", what, key);
        if (!json_object_is_type(v, json_type_string))
                return cc_error_set(err, EINVAL, "%s: '%s' must be a string", what, key);
        size_t n = (size_t)json_object_get_string_len(v);
        if (memchr(json_object_get_string(v), 0, n))
                return cc_error_set(err, EINVAL, "%s: '%s' contains a NUL character", what, key);
        *ret = json_object_get_string(v);
        if (ret_len)
                *ret_len = n;
        return 0;
}

/* Fills `a` from the body; on failure the caller releases what was filled. */
static int attest_fill(const char *body, size_t len, struct kbs_attest_request *a,
                       struct cc_error **err)
{
        struct json_object *v, *rd, *te;
        int r = cc_json_parse("attestation", body, len, BODY_DEPTH, &a->root, err);
        if (r < 0)
                return r;
        if (!json_object_is_type(a->root, json_type_object))
                return cc_error_set(err, EINVAL, "attestation must be an object");
        if (json_object_object_get_ex(a->root, "init-data", &v) && v) {
                if (!json_object_is_type(v, json_type_object))
                        return cc_error_set(err, EINVAL, "init-data must be an object or null");
                r = get_string(v, "format", "init-data", &a->init_data_format, NULL, err);
                if (r == 0)
                        r = get_string(v, "body", "init-data", &a->init_data_body,
                                       &a->init_data_len, err);
                if (r < 0)
                        return r;
                a->has_init_data = true;
        }
        if (!json_object_object_get_ex(a->root, "runtime-data", &rd) ||
            !json_object_is_type(rd, json_type_object))
                return cc_error_set(err, EINVAL, "runtime-data must be an object");
        r = get_string(rd, "nonce", "runtime-data", &a->nonce, NULL, err);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(rd, "tee-pubkey", &v))
                return cc_error_set(err, EINVAL, "runtime-data: missing 'tee-pubkey'");
        r = kbs_jwk_parse(v, &a->key, err);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(a->root, "tee-evidence", &te) ||
            !json_object_is_type(te, json_type_object))
                return cc_error_set(err, EINVAL, "tee-evidence must be an object");
        if (!json_object_object_get_ex(te, "primary_evidence", &a->primary_evidence))
                return cc_error_set(err, EINVAL, "tee-evidence: missing 'primary_evidence'");
        return get_string(te, "additional_evidence", "tee-evidence", &a->additional_evidence, NULL,
                          err);
}

int kbs_parse_attest(const char *body, size_t len, struct kbs_attest_request *ret,
                     struct cc_error **err)
{
        struct kbs_attest_request a = {};
        int r = attest_fill(body, len, &a, err);
        if (r < 0) {
                kbs_attest_request_done(&a);
                return r;
        }
        *ret = a;
        return 0;
}

int kbs_runtime_data_digest(const struct kbs_jwk *key, const char *nonce,
                            const char *additional_evidence, uint8_t out[48])
{
        _cleanup_json_ struct json_object *o = json_object_new_object();
        _cleanup_free_ char *canon = NULL;
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "tee-pubkey", kbs_jwk_to_json(key));
        json_object_object_add(o, "nonce", json_object_new_string(nonce));
        json_object_object_add(o, "additional-evidence",
                               json_object_new_string(additional_evidence));
        int r = cc_jcs(o, &canon);
        if (r < 0)
                return r;
        unsigned n = 0;
        return EVP_Digest(canon, strlen(canon), out, &n, EVP_sha384(), NULL) ? 0 : -EIO;
}
