/*
 * initdata (attestation-kbs.md section 7): the pod owner's TOML document (which KBS, which
 * policies), its digest over the exact bytes, the pod annotation (base64 of gzip of the TOML)
 * and Kata's disk format ("initdata", u64 LE length of the gzip stream, the stream, zero
 * padding to 512 bytes). The shim decodes the annotation and writes the disk; the agent reads
 * the disk. Both ends use this file, so the digest the TEE launch carries and the one the
 * guest checks are computed by one function.
 *
 * The annotation and the disk come from the host (hostile); sizes are bounded before any
 * allocation and the gzip stream is inflated with a bound (zlib).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cc/cleanup.h"
#include "cc/toml.h"

#include "guest-agent/attest/kbc.h"

#define INITDATA_MAX    (256u << 10) /* the TOML */
#define INITDATA_GZ_MAX (256u << 10) /* the gzip stream */
#define INITDATA_MAGIC  "initdata"

struct kbc_initdata *kbc_initdata_free(struct kbc_initdata *d)
{
        if (d) {
                free(d->toml);
                json_object_put(d->data);
                free(d);
        }
        return NULL;
}

const char *kbc_initdata_get(const struct kbc_initdata *d, const char *name)
{
        struct json_object *v;
        if (!d || !d->data || !json_object_object_get_ex(d->data, name, &v))
                return NULL;
        return json_object_get_string(v);
}

int kbc_initdata_parse(const char *toml, size_t len, struct kbc_initdata **ret,
                       struct cc_error **err)
{
        if (len > INITDATA_MAX)
                return cc_error_set(err, EFBIG, "initdata: %zu bytes, more than %u", len,
                                    INITDATA_MAX);
        if (memchr(toml, '\0', len))
                return cc_error_set(err, EINVAL, "initdata: the TOML holds a NUL byte");
        _cleanup_toml_ struct cc_toml_table *t = NULL;
        int r = cc_toml_parse_string("initdata", toml, len, &t, err);
        if (r < 0)
                return r;
        const char *version = NULL, *alg = NULL;
        if (cc_toml_get_string(t, "version", &version, err) < 0 || !version)
                return cc_error_set(err, EINVAL, "initdata: no string 'version'");
        if (strcmp(version, "0.1.0"))
                return cc_error_set(err, EINVAL, "initdata: version '%.16s' (only 0.1.0 is known)",
                                    version);
        if (cc_toml_get_string(t, "algorithm", &alg, err) < 0 || !alg)
                return cc_error_set(err, EINVAL, "initdata: no string 'algorithm'");
        _cleanup_(kbc_initdata_freep) struct kbc_initdata *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        /* Exactly the names every implementation uses (no "sha-384"). */
        if (strcmp(alg, "sha256") && strcmp(alg, "sha384") && strcmp(alg, "sha512"))
                return cc_error_set(err, EINVAL,
                                    "initdata: algorithm '%.16s' (sha256, sha384 or sha512)", alg);
        kbc_hash_from_name(alg, &d->alg);
        const struct cc_toml_table *data = NULL;
        r = cc_toml_get_table(t, "data", &data, err);
        if (r == -ENOENT)
                return cc_error_set(err, EINVAL, "initdata: no [data] table");
        if (r < 0)
                return r;
        d->data = json_object_new_object();
        if (!d->data)
                return -ENOMEM;
        for (size_t i = 0; i < cc_toml_table_size(data); i++) {
                const struct cc_toml_entry *e = cc_toml_table_entry(data, i);
                if (e->value.type != CC_TOML_STRING)
                        return cc_error_set(err, EINVAL,
                                            "initdata:%u: [data] '%.64s' is a %s, not a string",
                                            e->line, e->key, cc_toml_type_name(e->value.type));
                if (json_object_object_add(d->data, e->key,
                                           json_object_new_string(e->value.string)) < 0)
                        return -ENOMEM;
        }
        d->toml = malloc(len + 1);
        if (!d->toml)
                return -ENOMEM;
        memcpy(d->toml, toml, len);
        d->toml[len] = '\0';
        d->toml_len = len;
        d->digest_len = kbc_hash_len(d->alg);
        if (kbc_hash(d->alg, toml, len, d->digest) < 0)
                return -EIO;
        *ret = TAKE_PTR(d);
        return 0;
}

/* Inflates a gzip stream into at most INITDATA_MAX bytes. */
static int gunzip(const uint8_t *in, size_t len, char **ret, size_t *ret_len, struct cc_error **err)
{
        if (len > INITDATA_GZ_MAX)
                return cc_error_set(err, EFBIG, "initdata: gzip stream of %zu bytes, more than %u",
                                    len, INITDATA_GZ_MAX);
        _cleanup_free_ char *out = malloc(INITDATA_MAX + 1);
        if (!out)
                return -ENOMEM;
        z_stream z = {0};
        if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
                return -ENOMEM;
        z.next_in = (Bytef *)in;
        z.avail_in = (uInt)len;
        z.next_out = (Bytef *)out;
        z.avail_out = INITDATA_MAX + 1;
        int zr = inflate(&z, Z_FINISH);
        size_t n = z.total_out;
        bool trailing = z.avail_in != 0;
        inflateEnd(&z);
        if (zr != Z_STREAM_END) {
                if (n > INITDATA_MAX)
                        return cc_error_set(err, EFBIG,
                                            "initdata: the TOML is larger than %u bytes",
                                            INITDATA_MAX);
                return cc_error_set(err, EINVAL, "initdata: not a complete gzip stream");
        }
        if (trailing)
                return cc_error_set(err, EINVAL, "initdata: bytes after the gzip stream");
        *ret = TAKE_PTR(out);
        *ret_len = n;
        return 0;
}

/* The annotation's base64 decoded: the gzip bytes, bounded before decoding. */
static int annotation_gz(const char *b64, uint8_t **gz, size_t *gl, struct cc_error **err)
{
        size_t bl = strlen(b64);
        if (bl > INITDATA_GZ_MAX * 4 / 3 + 4)
                return cc_error_set(err, EFBIG, "initdata annotation: %zu characters, too long",
                                    bl);
        if (cc_b64_decode(b64, bl, false, gz, gl) < 0)
                return cc_error_set(err, EINVAL, "initdata annotation: not base64");
        return 0;
}

int kbc_initdata_from_annotation(const char *b64, struct kbc_initdata **ret, struct cc_error **err)
{
        _cleanup_free_ uint8_t *gz = NULL;
        size_t gl = 0;
        int r = annotation_gz(b64, &gz, &gl, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *toml = NULL;
        size_t tl = 0;
        r = gunzip(gz, gl, &toml, &tl, err);
        if (r < 0)
                return r;
        return kbc_initdata_parse(toml, tl, ret, err);
}

int kbc_initdata_annotation_encode(const char *toml, size_t len, char **ret)
{
        if (len > INITDATA_MAX)
                return -EFBIG;
        /* gzip with zlib's default header (mtime 0): the same TOML gives the same bytes. */
        z_stream z = {0};
        if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK)
                return -ENOMEM;
        uLong bound = deflateBound(&z, (uLong)len) + 32;
        _cleanup_free_ uint8_t *gz = malloc(bound);
        if (!gz) {
                deflateEnd(&z);
                return -ENOMEM;
        }
        z.next_in = (Bytef *)toml;
        z.avail_in = (uInt)len;
        z.next_out = gz;
        z.avail_out = (uInt)bound;
        int zr = deflate(&z, Z_FINISH);
        size_t n = z.total_out;
        deflateEnd(&z);
        if (zr != Z_STREAM_END)
                return -EIO;
        *ret = cc_b64_encode(gz, n, false);
        return *ret ? 0 : -ENOMEM;
}

int kbc_initdata_disk_encode(const char *b64_annotation, uint8_t **ret, size_t *ret_len,
                             struct cc_error **err)
{
        _cleanup_free_ uint8_t *gz = NULL;
        size_t gl = 0;
        int r = annotation_gz(b64_annotation, &gz, &gl, err);
        if (r < 0)
                return r;
        size_t total = (16 + gl + 511) / 512 * 512;
        uint8_t *disk = calloc(1, total);
        if (!disk)
                return -ENOMEM;
        memcpy(disk, INITDATA_MAGIC, 8);
        for (int i = 0; i < 8; i++)
                disk[8 + i] = (uint8_t)((uint64_t)gl >> (8 * i));
        memcpy(disk + 16, gz, gl);
        *ret = disk;
        *ret_len = total;
        return 0;
}

int kbc_initdata_from_disk(const uint8_t *disk, size_t len, struct kbc_initdata **ret,
                           struct cc_error **err)
{
        if (len < 16 || memcmp(disk, INITDATA_MAGIC, 8))
                return cc_error_set(err, EINVAL, "initdata disk: no 'initdata' magic");
        uint64_t gl = 0;
        for (int i = 0; i < 8; i++)
                gl |= (uint64_t)disk[8 + i] << (8 * i);
        if (gl > INITDATA_GZ_MAX || gl > len - 16)
                return cc_error_set(
                        err, EINVAL,
                        "initdata disk: gzip length %llu does not fit the %zu-byte disk",
                        (unsigned long long)gl, len);
        _cleanup_free_ char *toml = NULL;
        size_t tl = 0;
        int r = gunzip(disk + 16, (size_t)gl, &toml, &tl, err);
        if (r < 0)
                return r;
        return kbc_initdata_parse(toml, tl, ret, err);
}

/* One string key of a TOML document held in a [data] entry; NULL when absent. */
static int toml_str(const char *doc, const char *name, const char *path, char **ret,
                    struct cc_error **err)
{
        *ret = NULL;
        _cleanup_toml_ struct cc_toml_table *t = NULL;
        int r = cc_toml_parse_string(name, doc, strlen(doc), &t, err);
        if (r < 0)
                return r;
        const char *v = NULL;
        r = cc_toml_get_string(t, path, &v, err);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        *ret = strdup(v);
        return *ret ? 0 : -ENOMEM;
}

static int kbs_settings(const struct kbc_initdata *d, char **url, char **cert_pem,
                        struct cc_error **err)
{
        const char *cdh = kbc_initdata_get(d, "cdh.toml"), *aa = kbc_initdata_get(d, "aa.toml");
        int r;
        if (cdh && ((r = toml_str(cdh, "initdata cdh.toml", "kbc.url", url, err)) < 0 ||
                    (r = toml_str(cdh, "initdata cdh.toml", "kbc.kbs_cert", cert_pem, err)) < 0))
                return r;
        if (!*url && aa) {
                free(*cert_pem);
                *cert_pem = NULL;
                if ((r = toml_str(aa, "initdata aa.toml", "token_configs.kbs.url", url, err)) < 0 ||
                    (r = toml_str(aa, "initdata aa.toml", "token_configs.kbs.cert", cert_pem,
                                  err)) < 0)
                        return r;
        }
        return 0;
}

int kbc_initdata_kbs(const struct kbc_initdata *d, char **url, char **cert_pem,
                     struct cc_error **err)
{
        *url = *cert_pem = NULL;
        int r = kbs_settings(d, url, cert_pem, err);
        if (r < 0) {
                free(*url);
                free(*cert_pem);
                *url = *cert_pem = NULL;
        }
        return r;
}

int kbc_initdata_cdh_get(const struct kbc_initdata *d, const char *path, char **ret,
                         struct cc_error **err)
{
        *ret = NULL;
        const char *cdh = kbc_initdata_get(d, "cdh.toml");
        return cdh ? toml_str(cdh, "initdata cdh.toml", path, ret, err) : 0;
}

/* The keys of cdh.toml and aa.toml this guest applies (dotted paths); kbc.name is CDH's KBC
 * choice, and cc_kbc is the only one there is here. */
static const char *const applied_keys[] = {
        "cdh.toml:kbc.url",
        "cdh.toml:kbc.kbs_cert",
        "cdh.toml:kbc.name",
        "cdh.toml:image.image_security_policy_uri",
        "cdh.toml:image.authenticated_registry_credentials_uri",
        "aa.toml:token_configs.kbs.url",
        "aa.toml:token_configs.kbs.cert",
};

static bool applied(const char *doc, const char *path)
{
        size_t dl = strlen(doc);
        for (size_t i = 0; i < sizeof(applied_keys) / sizeof(applied_keys[0]); i++)
                if (!strncmp(applied_keys[i], doc, dl) && applied_keys[i][dl] == ':' &&
                    !strcmp(applied_keys[i] + dl + 1, path))
                        return true;
        return false;
}

/* Appends "doc:path" of every leaf of t not applied to *list (comma-separated). */
static int collect_ignored(const char *doc, const struct cc_toml_table *t, const char *prefix,
                           int depth, char **list)
{
        for (size_t i = 0; i < cc_toml_table_size(t); i++) {
                const struct cc_toml_entry *e = cc_toml_table_entry(t, i);
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s%s%s", prefix, *prefix ? "." : "", e->key) < 0)
                        return -ENOMEM;
                if (e->value.type == CC_TOML_TABLE && depth < 8) {
                        int r = collect_ignored(doc, e->value.table, path, depth + 1, list);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (applied(doc, path))
                        continue;
                char *n = NULL;
                if (asprintf(&n, "%s%s%s:%s", *list ? *list : "", *list ? ", " : "", doc, path) < 0)
                        return -ENOMEM;
                free(*list);
                *list = n;
        }
        return 0;
}

int kbc_initdata_ignored(const struct kbc_initdata *d, char **ret, struct cc_error **err)
{
        *ret = NULL;
        static const char *const docs[] = {"cdh.toml", "aa.toml"};
        _cleanup_free_ char *list = NULL;
        for (size_t i = 0; i < 2; i++) {
                const char *text = kbc_initdata_get(d, docs[i]);
                if (!text)
                        continue;
                _cleanup_toml_ struct cc_toml_table *t = NULL;
                char name[32];
                snprintf(name, sizeof(name), "initdata %s", docs[i]);
                int r = cc_toml_parse_string(name, text, strlen(text), &t, err);
                if (r < 0 || (r = collect_ignored(docs[i], t, "", 0, &list)) < 0)
                        return r;
        }
        *ret = TAKE_PTR(list);
        return 0;
}
