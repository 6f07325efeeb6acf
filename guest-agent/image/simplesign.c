/*
 * Simple signing (containers-signature(5)): one signature blob checked end to end up to its
 * payload, and the payload JSON shared with sigstore signatures. The payload is parsed only
 * after its signature was accepted, and strictly (containers/image's rules): critical holds
 * exactly type/image/identity, each of those exactly its member, no duplicated key anywhere.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/json.h"

#include "guest-agent/image/image-internal.h"
#include "guest-agent/image/sig-internal.h"

void img__sig_payload_done(struct img_sig_payload *p)
{
        free(p->docker_reference);
        free(p->manifest_digest);
        *p = (struct img_sig_payload){0};
}

/* `o` is an object with exactly the one member `key`, a string; returns it. */
static const char *only_string(struct json_object *o, const char *key)
{
        struct json_object *v = img__jget(o, key);
        if (!json_object_is_type(o, json_type_object) || json_object_object_length(o) != 1 ||
            !json_object_is_type(v, json_type_string))
                return NULL;
        const char *s = json_object_get_string(v);
        /* A \u0000 escape would cut the C string short: refuse it. */
        return strlen(s) == (size_t)json_object_get_string_len(v) ? s : NULL;
}

/* go-digest syntax: algorithm ":" encoded, with sha256/sha384/sha512 lengths enforced. */
static bool digest_valid(const char *d)
{
        const char *c = strchr(d, ':');
        if (!c)
                return false;
        size_t want = !strncmp(d, "sha256:", 7)   ? 64
                      : !strncmp(d, "sha384:", 7) ? 96
                      : !strncmp(d, "sha512:", 7) ? 128
                                                  : 0;
        if (!want || strlen(c + 1) != want)
                return false;
        for (const char *p = c + 1; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

int img__sig_payload_parse(const uint8_t *buf, size_t len, const char *want_type,
                           struct img_sig_payload *ret, struct cc_error **err)
{
        if (len > IMG_SIG_MAX_BYTES)
                return cc_error_set(err, EFBIG, "payload larger than %u bytes", IMG_SIG_MAX_BYTES);
        _cleanup_(json_object_putp) struct json_object *o = img__json_parse_strict(buf, len, err);
        if (!o)
                return -EINVAL;
        /* json-c stores a JSON null as a NULL member: presence is asked separately. */
        struct json_object *crit = img__jget(o, "critical"), *opt = NULL;
        bool has_opt = json_object_object_get_ex(o, "optional", &opt);
        if (json_object_object_length(o) != 2 || !json_object_is_type(crit, json_type_object) ||
            !has_opt)
                return cc_error_set(err, EINVAL,
                                    "top level must be exactly \"critical\" and \"optional\"");
        bool cosign = !strcmp(want_type, IMG_PAYLOAD_COSIGN);
        if (!json_object_is_type(opt, json_type_object) && !(cosign && !opt))
                return cc_error_set(err, EINVAL, "\"optional\" is not an object");
        struct json_object *t = img__jget(crit, "type");
        struct json_object *img = img__jget(crit, "image"), *id = img__jget(crit, "identity");
        if (json_object_object_length(crit) != 3 || !json_object_is_type(t, json_type_string) ||
            !img || !id)
                return cc_error_set(err, EINVAL,
                                    "\"critical\" must be exactly \"type\", \"image\", "
                                    "\"identity\"");
        if (strcmp(json_object_get_string(t), want_type))
                return cc_error_set(err, EINVAL, "critical.type is \"%s\", not \"%s\"",
                                    json_object_get_string(t), want_type);
        const char *digest = only_string(img, "docker-manifest-digest");
        const char *ref = only_string(id, "docker-reference");
        if (!digest)
                return cc_error_set(err, EINVAL,
                                    "critical.image must be exactly {\"docker-manifest-digest\": "
                                    "string}");
        if (!ref)
                return cc_error_set(err, EINVAL,
                                    "critical.identity must be exactly "
                                    "{\"docker-reference\": string}");
        if (!digest_valid(digest))
                return cc_error_set(err, EINVAL, "critical.image: invalid digest \"%s\"", digest);
        if (json_object_is_type(opt, json_type_object)) {
                struct json_object *cr = NULL, *ts = NULL;
                if (json_object_object_get_ex(opt, "creator", &cr) &&
                    !json_object_is_type(cr, json_type_string))
                        return cc_error_set(err, EINVAL, "Field optional.creator is not a string");
                /* json-c keeps integers and reals apart: 1.5 and 1.0 are reals. Go accepts an
                 * integral float64, so 1.0 is accepted too (in range, to cast safely). */
                if (json_object_object_get_ex(opt, "timestamp", &ts)) {
                        bool ok = json_object_is_type(ts, json_type_int);
                        if (json_object_is_type(ts, json_type_double)) {
                                double d = json_object_get_double(ts);
                                ok = d > -9e18 && d < 9e18 && d == (double)(int64_t)d;
                        }
                        if (!ok)
                                return cc_error_set(err, EINVAL,
                                                    "Field optional.timestamp is not an integer");
                }
        }
        ret->docker_reference = strdup(ref);
        ret->manifest_digest = strdup(digest);
        if (!ret->docker_reference || !ret->manifest_digest) {
                img__sig_payload_done(ret);
                return -ENOMEM;
        }
        return 0;
}

int img__simple_sig_check(const struct img_pgp_keyring *kr, const uint8_t *blob, size_t len,
                          int64_t now, uint8_t **ret_payload, size_t *ret_len, char **ret_reason)
{
        *ret_reason = NULL;
        int r;
        if (len > IMG_SIG_MAX_BYTES) {
                r = asprintf(ret_reason, "signature larger than %u bytes", IMG_SIG_MAX_BYTES);
                return r < 0 ? -ENOMEM : -EFBIG;
        }
        /* containers/image's gate (internal/signature): a simple signature starts with a
         * compressed, one-pass or signature packet; this is what refuses ASCII armor and
         * cleartext signatures, which start with '-'. */
        static const uint8_t first[] = {0xa0, 0xa1, 0xa2, 0xa3, 0xc8, 0x90, 0x91, 0x92,
                                        0x3d, 0xc4, 0x88, 0x89, 0x8a, 0x8b, 0xc2};
        if (len == 0 || !memchr(first, blob[0], sizeof(first))) {
                r = asprintf(ret_reason,
                             "bad signature: unrecognized signature format, starting "
                             "with binary 0x%02x",
                             len ? blob[0] : 0);
                return r < 0 ? -ENOMEM : -EBADMSG;
        }
        _cleanup_error_ struct cc_error *e = NULL;
        char fpr[41];
        r = img__pgp_verify(kr, blob, len, now, ret_payload, ret_len, fpr, &e);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return asprintf(ret_reason, "%s", cc_error_message(e)) < 0 ? -ENOMEM : r;
        return 0;
}
