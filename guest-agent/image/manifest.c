/*
 * Manifest, index and image-config parsing (OCI image-spec and Docker v2.2). Input comes
 * from an untrusted registry: sizes, nesting and every field type are checked, unknown fields
 * ignored, and only digests we can verify (sha256) are accepted for what we fetch.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"

#include "guest-agent/image/image-internal.h"

#define JSON_MAX_DEPTH 32
#define MAX_ENTRIES    4096

struct json_object *img__json_parse(const void *buf, size_t len, struct cc_error **err)
{
        if (len > INT32_MAX) {
                cc_error_set(err, EFBIG, "JSON document too large");
                return NULL;
        }
        if (memchr(buf, 0, len)) {
                cc_error_set(err, EINVAL, "JSON document contains a NUL byte");
                return NULL;
        }
        struct json_tokener *tok = json_tokener_new_ex(JSON_MAX_DEPTH);
        if (!tok) {
                cc_error_set(err, ENOMEM, "out of memory");
                return NULL;
        }
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        struct json_object *o = json_tokener_parse_ex(tok, buf, (int)len);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        size_t used = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (!o || jerr != json_tokener_success) {
                json_object_put(o);
                cc_error_set(err, EINVAL, "invalid JSON: %s",
                             jerr == json_tokener_continue ? "truncated"
                                                           : json_tokener_error_desc(jerr));
                return NULL;
        }
        for (; used < len; used++)
                if (!strchr(" \t\r\n", ((const char *)buf)[used])) {
                        json_object_put(o);
                        cc_error_set(err, EINVAL, "invalid JSON: trailing data");
                        return NULL;
                }
        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                cc_error_set(err, EINVAL, "invalid JSON: not an object");
                return NULL;
        }
        return o;
}

static const char *get_str(struct json_object *o, const char *key)
{
        struct json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static int dup_str(struct json_object *o, const char *key, char **ret)
{
        const char *s = get_str(o, key);
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

const char *img__arch_normalise(const char *arch)
{
        if (!arch)
                return NULL;
        if (!strcmp(arch, "x86_64") || !strcmp(arch, "x86-64"))
                return "amd64";
        if (!strcmp(arch, "aarch64"))
                return "arm64";
        if (!strcmp(arch, "armhf") || !strcmp(arch, "armel"))
                return "arm";
        return arch;
}

/* Variant as containerd normalises it: amd64 "v1" and arm64 "v8"/"8"/"v8.0" mean none. */
static const char *variant_normalise(const char *arch, const char *variant)
{
        if (cc_isempty(variant))
                return "";
        if (!strcmp(arch, "amd64") && !strcmp(variant, "v1"))
                return "";
        if (!strcmp(arch, "arm64") &&
            (!strcmp(variant, "v8") || !strcmp(variant, "8") || !strcmp(variant, "v8.0")))
                return "";
        return variant;
}

static void descriptor_done(struct img_descriptor *d)
{
        free(d->media_type);
        free(d->digest);
        free(d->os);
        free(d->arch);
        free(d->variant);
        free(d->enc_jwe);
        free(d->enc_provider);
        free(d->enc_pubopts);
}

static const struct {
        const char *type;
        enum img_compression comp;
        bool encrypted;
} layer_types[] = {
        {"application/vnd.oci.image.layer.v1.tar", IMG_COMP_NONE, false},
        {"application/vnd.oci.image.layer.v1.tar+gzip", IMG_COMP_GZIP, false},
        {"application/vnd.oci.image.layer.v1.tar+zstd", IMG_COMP_ZSTD, false},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar", IMG_COMP_NONE, false},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", IMG_COMP_GZIP, false},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", IMG_COMP_ZSTD, false},
        {"application/vnd.docker.image.rootfs.diff.tar.gzip", IMG_COMP_GZIP, false},
        {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", IMG_COMP_GZIP, false},
        {"application/vnd.oci.image.layer.v1.tar+encrypted", IMG_COMP_NONE, true},
        {"application/vnd.oci.image.layer.v1.tar+gzip+encrypted", IMG_COMP_GZIP, true},
        {"application/vnd.oci.image.layer.v1.tar+zstd+encrypted", IMG_COMP_ZSTD, true},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar+encrypted", IMG_COMP_NONE, true},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip+encrypted", IMG_COMP_GZIP,
         true},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd+encrypted", IMG_COMP_ZSTD,
         true},
};

enum desc_kind { DESC_CONFIG, DESC_LAYER, DESC_MANIFEST };

static int descriptor_parse(struct json_object *o, enum desc_kind kind, size_t idx,
                            struct img_descriptor *d, struct cc_error **err)
{
        static const char *const names[] = {"config", "layer", "manifest"};
        if (!json_object_is_type(o, json_type_object))
                return cc_error_set(err, EINVAL, "%s %zu: not an object", names[kind], idx);
        struct json_object *v;
        if (dup_str(o, "mediaType", &d->media_type) < 0 || dup_str(o, "digest", &d->digest) < 0)
                return -ENOMEM;
        if (!d->media_type)
                return cc_error_set(err, EINVAL, "%s %zu: missing mediaType", names[kind], idx);
        /* Unknown index entries are skipped later, not rejected: their digest may be exotic. */
        if (!d->digest || (kind != DESC_MANIFEST && !img__digest_valid(d->digest)))
                return cc_error_set(err, EINVAL, "%s %zu: missing or unsupported digest",
                                    names[kind], idx);
        if (!json_object_object_get_ex(o, "size", &v) || !json_object_is_type(v, json_type_int) ||
            (d->size = json_object_get_int64(v)) < 0 || d->size == INT64_MAX)
                return cc_error_set(err, EINVAL, "%s %zu: missing or invalid size", names[kind],
                                    idx);
        if (kind == DESC_LAYER) {
                size_t i;
                for (i = 0; i < CC_ARRAY_SIZE(layer_types); i++)
                        if (!strcmp(d->media_type, layer_types[i].type))
                                break;
                if (i == CC_ARRAY_SIZE(layer_types))
                        return cc_error_set(err, EOPNOTSUPP,
                                            "layer %zu: unsupported media type '%s'", idx,
                                            d->media_type);
                d->compression = layer_types[i].comp;
                d->encrypted = layer_types[i].encrypted;
        }
        struct json_object *ann;
        if (json_object_object_get_ex(o, "annotations", &ann) &&
            json_object_is_type(ann, json_type_object)) {
                if (dup_str(ann, "org.opencontainers.image.enc.keys.jwe", &d->enc_jwe) < 0 ||
                    dup_str(ann, "org.opencontainers.image.enc.keys.provider.attestation-agent",
                            &d->enc_provider) < 0 ||
                    dup_str(ann, "org.opencontainers.image.enc.pubopts", &d->enc_pubopts) < 0)
                        return -ENOMEM;
                const char *t = get_str(ann, "vnd.docker.reference.type");
                if (t && !strcmp(t, "attestation-manifest"))
                        d->attestation = true;
        }
        struct json_object *plat;
        if (kind == DESC_MANIFEST && json_object_object_get_ex(o, "platform", &plat) &&
            json_object_is_type(plat, json_type_object)) {
                if (dup_str(plat, "os", &d->os) < 0 ||
                    dup_str(plat, "architecture", &d->arch) < 0 ||
                    dup_str(plat, "variant", &d->variant) < 0)
                        return -ENOMEM;
                if (d->os && d->arch && !strcmp(d->os, "unknown") && !strcmp(d->arch, "unknown"))
                        d->attestation = true;
        }
        return 0;
}

struct img_manifest *img__manifest_free(struct img_manifest *m)
{
        if (!m)
                return NULL;
        free(m->media_type);
        descriptor_done(&m->config);
        for (size_t i = 0; i < m->n_layers; i++)
                descriptor_done(&m->layers[i]);
        free(m->layers);
        for (size_t i = 0; i < m->n_manifests; i++)
                descriptor_done(&m->manifests[i]);
        free(m->manifests);
        free(m);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct img_manifest *, img__manifest_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct json_object *, json_object_put)

static int descriptors_parse(struct json_object *arr, enum desc_kind kind,
                             struct img_descriptor **ret, size_t *ret_n, struct cc_error **err)
{
        size_t n = json_object_array_length(arr);
        if (n > MAX_ENTRIES)
                return cc_error_set(err, E2BIG, "too many entries (%zu)", n);
        *ret = calloc(n ? n : 1, sizeof(**ret));
        if (!*ret)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                *ret_n = i + 1;
                int r = descriptor_parse(json_object_array_get_idx(arr, i), kind, i, &(*ret)[i],
                                         err);
                if (r < 0)
                        return r;
        }
        *ret_n = n;
        return 0;
}

/* Drops parameters (";charset=...") and surrounding blanks from a Content-Type. */
static size_t media_type_len(const char *ct)
{
        size_t n = strcspn(ct, ";");
        while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
                n--;
        return n;
}

int img__manifest_parse(const char *content_type, const void *buf, size_t len,
                        struct img_manifest **ret, struct cc_error **err)
{
        _cleanup_(json_object_putp) struct json_object *o = img__json_parse(buf, len, err);
        if (!o)
                return cc_error_wrap(err, EINVAL, "manifest");
        _cleanup_(img__manifest_freep) struct img_manifest *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        struct json_object *v;
        if (json_object_object_get_ex(o, "schemaVersion", &v) &&
            (!json_object_is_type(v, json_type_int) || json_object_get_int(v) != 2))
                return cc_error_set(err, EOPNOTSUPP, "manifest: unsupported schemaVersion");

        /* The body's mediaType wins when present; it must then agree with the header. */
        const char *mt = get_str(o, "mediaType");
        if (mt && content_type && *content_type &&
            (strlen(mt) != media_type_len(content_type) ||
             strncmp(mt, content_type, media_type_len(content_type))))
                return cc_error_set(err, EINVAL,
                                    "manifest: mediaType '%s' differs from Content-Type", mt);
        if (!mt && content_type)
                m->media_type = strndup(content_type, media_type_len(content_type));
        else
                m->media_type = mt ? strdup(mt) : NULL;
        if (!m->media_type) {
                /* No type anywhere: guess from the shape, as OCI allows mediaType to be absent. */
                m->media_type = strdup(json_object_object_get_ex(o, "manifests", NULL)
                                               ? IMG_MT_OCI_INDEX
                                               : IMG_MT_OCI_MANIFEST);
                if (!m->media_type)
                        return -ENOMEM;
        }
        if (!strcmp(m->media_type, IMG_MT_OCI_INDEX) ||
            !strcmp(m->media_type, IMG_MT_DOCKER_LIST)) {
                m->is_index = true;
                if (!json_object_object_get_ex(o, "manifests", &v) ||
                    !json_object_is_type(v, json_type_array))
                        return cc_error_set(err, EINVAL, "index: missing manifests");
                int r = descriptors_parse(v, DESC_MANIFEST, &m->manifests, &m->n_manifests, err);
                if (r < 0)
                        return cc_error_wrap(err, r, "index");
        } else if (!strcmp(m->media_type, IMG_MT_OCI_MANIFEST) ||
                   !strcmp(m->media_type, IMG_MT_DOCKER_MANIFEST)) {
                if (!json_object_object_get_ex(o, "config", &v))
                        return cc_error_set(err, EINVAL, "manifest: missing config");
                int r = descriptor_parse(v, DESC_CONFIG, 0, &m->config, err);
                if (r < 0)
                        return cc_error_wrap(err, r, "manifest");
                if (!json_object_object_get_ex(o, "layers", &v) ||
                    !json_object_is_type(v, json_type_array))
                        return cc_error_set(err, EINVAL, "manifest: missing layers");
                r = descriptors_parse(v, DESC_LAYER, &m->layers, &m->n_layers, err);
                if (r < 0)
                        return cc_error_wrap(err, r, "manifest");
        } else {
                return cc_error_set(err, EOPNOTSUPP, "unsupported manifest media type '%s'",
                                    m->media_type);
        }
        *ret = TAKE_PTR(m);
        return 0;
}

int img__index_select(const struct img_manifest *idx, const char *os, const char *arch,
                      const char *variant, const struct img_descriptor **ret, struct cc_error **err)
{
        arch = img__arch_normalise(arch);
        const char *want_variant = variant_normalise(arch, variant);
        for (size_t i = 0; i < idx->n_manifests; i++) {
                const struct img_descriptor *d = &idx->manifests[i];
                if (d->attestation || !d->os || !d->arch || !img__digest_valid(d->digest))
                        continue;
                if (strcmp(d->media_type, IMG_MT_OCI_MANIFEST) &&
                    strcmp(d->media_type, IMG_MT_DOCKER_MANIFEST) &&
                    strcmp(d->media_type, IMG_MT_OCI_INDEX) &&
                    strcmp(d->media_type, IMG_MT_DOCKER_LIST))
                        continue;
                const char *a = img__arch_normalise(d->arch);
                if (strcmp(d->os, os) || strcmp(a, arch))
                        continue;
                /* No variant wanted: take the first entry of the arch (containerd's order). */
                if (*want_variant && strcmp(variant_normalise(a, d->variant), want_variant))
                        continue;
                *ret = d;
                return 0;
        }
        return cc_error_set(err, ENOENT, "no manifest for platform %s/%s%s%s in the index", os,
                            arch, *want_variant ? "/" : "", want_variant);
}

void img__config_done(struct img_image_config *c)
{
        cc_strv_free(c->entrypoint);
        cc_strv_free(c->cmd);
        cc_strv_free(c->env);
        free(c->workdir);
        free(c->user);
        free(c->os);
        free(c->arch);
        *c = (struct img_image_config){0};
}

/* Fills c from the config object; on failure the caller frees what was filled. */
static int config_fill(struct json_object *o, struct img_image_config *c, char ***ret_diff_ids,
                       struct cc_error **err)
{
        struct json_object *cc, *rootfs, *ids, *v;
        if (dup_str(o, "os", &c->os) < 0 || dup_str(o, "architecture", &c->arch) < 0)
                return -ENOMEM;
        if (json_object_object_get_ex(o, "config", &cc) &&
            json_object_is_type(cc, json_type_object)) {
                static const char *const keys[] = {"Entrypoint", "Cmd", "Env"};
                char ***dst[] = {&c->entrypoint, &c->cmd, &c->env};
                for (size_t i = 0; i < CC_ARRAY_SIZE(keys); i++) {
                        if (!json_object_object_get_ex(cc, keys[i], &v) ||
                            !json_object_is_type(v, json_type_array))
                                continue;
                        *dst[i] = img__strv_copy_json(v);
                        if (!*dst[i])
                                return cc_error_set(err, EINVAL, "image config: bad %s", keys[i]);
                }
                if (dup_str(cc, "WorkingDir", &c->workdir) < 0 || dup_str(cc, "User", &c->user) < 0)
                        return -ENOMEM;
        }
        if (!json_object_object_get_ex(o, "rootfs", &rootfs) ||
            !json_object_object_get_ex(rootfs, "diff_ids", &ids) ||
            !json_object_is_type(ids, json_type_array) ||
            json_object_array_length(ids) > MAX_ENTRIES)
                return cc_error_set(err, EINVAL, "image config: missing rootfs.diff_ids");
        _cleanup_strv_ char **d = img__strv_copy_json(ids);
        if (!d)
                return cc_error_set(err, EINVAL, "image config: bad rootfs.diff_ids");
        for (char **p = d; *p; p++)
                if (!img__digest_valid(*p))
                        return cc_error_set(err, EINVAL, "image config: unsupported diff_id");
        *ret_diff_ids = TAKE_PTR(d);
        return 0;
}

int img__config_parse(const void *buf, size_t len, struct img_image_config *cfg,
                      char ***ret_diff_ids, struct cc_error **err)
{
        _cleanup_(json_object_putp) struct json_object *o = img__json_parse(buf, len, err);
        if (!o)
                return cc_error_wrap(err, EINVAL, "image config");
        struct img_image_config c = {0};
        int r = config_fill(o, &c, ret_diff_ids, err);
        if (r < 0) {
                img__config_done(&c);
                return r;
        }
        *cfg = c;
        return 0;
}
