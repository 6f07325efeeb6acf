/*
 * cc-kbs: the init-data of /attest (ref 7): a TOML document whose exact bytes are hashed with
 * its `algorithm`; its [data] table becomes the token's init_data_claims, with the values of
 * aa.toml and cdh.toml parsed from TOML (ref 3.3).
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "cc/toml.h"

#include "kbs/kbs.h"

void kbs_regularize(const uint8_t *in, size_t in_len, uint8_t *out, size_t size)
{
        size_t n = in_len < size ? in_len : size;
        memcpy(out, in, n);
        memset(out + n, 0, size - n);
}

static struct json_object *toml_to_json(const struct cc_toml_value *v);

static struct json_object *table_to_json(const struct cc_toml_table *t)
{
        struct json_object *o = json_object_new_object();
        for (size_t i = 0; o && i < cc_toml_table_size(t); i++) {
                const struct cc_toml_entry *e = cc_toml_table_entry(t, i);
                json_object_object_add(o, e->key, toml_to_json(&e->value));
        }
        return o;
}

static struct json_object *toml_to_json(const struct cc_toml_value *v)
{
        switch (v->type) {
        case CC_TOML_STRING:
                return json_object_new_string(v->string);
        case CC_TOML_INTEGER:
                return json_object_new_int64(v->integer);
        case CC_TOML_FLOAT:
                return json_object_new_double(v->floating);
        case CC_TOML_BOOL:
                return json_object_new_boolean(v->boolean);
        case CC_TOML_ARRAY: {
                struct json_object *a = json_object_new_array();
                for (size_t i = 0; a && i < v->array.n; i++)
                        json_object_array_add(a, toml_to_json(&v->array.items[i]));
                return a;
        }
        case CC_TOML_TABLE:
                return table_to_json(v->table);
        default:
                return NULL;
        }
}

void kbs_initdata_done(struct kbs_initdata *d)
{
        json_object_put(d->claims);
        memset(d, 0, sizeof(*d));
}

int kbs_initdata_parse(const char *format, const char *body, size_t len, struct kbs_initdata *ret,
                       struct cc_error **err)
{
        _cleanup_toml_ struct cc_toml_table *doc = NULL;
        const struct cc_toml_table *data;
        const char *version, *alg;
        const EVP_MD *md;
        int r;
        if (strcmp(format, "toml") != 0)
                return cc_error_set(err, EINVAL, "init-data format '%.16s' (only toml)", format);
        r = cc_toml_parse_string("init-data", body, len, &doc, err);
        if (r < 0)
                return r;
        r = cc_toml_get_string(doc, "version", &version, err);
        if (r == -ENOENT || (r == 0 && strcmp(version, "0.1.0") != 0))
                return cc_error_set(err, EINVAL, "init-data: version must be \"0.1.0\"");
        if (r < 0)
                return r;
        r = cc_toml_get_string(doc, "algorithm", &alg, err);
        if (r == -ENOENT)
                return cc_error_set(err, EINVAL, "init-data: missing 'algorithm'");
        if (r < 0)
                return r;
        if (strcmp(alg, "sha256") == 0)
                md = EVP_sha256();
        else if (strcmp(alg, "sha384") == 0)
                md = EVP_sha384();
        else if (strcmp(alg, "sha512") == 0)
                md = EVP_sha512();
        else
                return cc_error_set(err, EINVAL,
                                    "init-data: algorithm '%.16s' (sha256|sha384|sha512)", alg);
        r = cc_toml_get_table(doc, "data", &data, err);
        if (r == -ENOENT)
                return cc_error_set(err, EINVAL, "init-data: missing [data]");
        if (r < 0)
                return r;

        struct kbs_initdata d = {};
        d.claims = json_object_new_object();
        if (!d.claims)
                return -ENOMEM;
        for (size_t i = 0; i < cc_toml_table_size(data); i++) {
                const struct cc_toml_entry *e = cc_toml_table_entry(data, i);
                if (e->value.type != CC_TOML_STRING) {
                        kbs_initdata_done(&d);
                        return cc_error_set(err, EINVAL, "init-data: data.%.64s must be a string",
                                            e->key);
                }
                struct json_object *val = NULL;
                if (strcmp(e->key, "aa.toml") == 0 || strcmp(e->key, "cdh.toml") == 0) {
                        _cleanup_toml_ struct cc_toml_table *sub = NULL;
                        r = cc_toml_parse_string(e->key, e->value.string, strlen(e->value.string),
                                                 &sub, err);
                        if (r < 0) {
                                kbs_initdata_done(&d);
                                return r;
                        }
                        val = table_to_json(sub);
                } else {
                        val = json_object_new_string(e->value.string);
                }
                json_object_object_add(d.claims, e->key, val);
        }
        unsigned n = 0;
        if (!EVP_Digest(body, len, d.digest, &n, md, NULL)) {
                kbs_initdata_done(&d);
                return -EIO;
        }
        d.digest_len = n;
        snprintf(d.algorithm, sizeof(d.algorithm), "%s", alg);
        *ret = d;
        return 0;
}
