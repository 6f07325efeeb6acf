/*
 * Where signatures come from: containers-registries.d(5) configuration, the lookaside store
 * (file:// or http(s)://) for simple signatures, and sigstore attachments in the registry.
 *
 * A registry whose /v2/ answers X-Registry-Supports-Signatures: 1 is asked for simple
 * signatures at /extensions/v2/<repo>/signatures/<digest> instead of the lookaside.
 *
 * registries.d is YAML. libyaml's document API is used and only what verification needs is
 * read: `default-docker` and `docker.<scope>` sections with `lookaside` (or its older
 * spelling `sigstore`, the only one image-rs knows) and `use-sigstore-attachments`; the
 * `*-staging` keys are write-side and ignored. Anything else in the files is ignored too,
 * as containers/image ignores what it does not use; a scope in two files is an error.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "cc/cleanup.h"
#include "cc/fileio.h"
#include "cc/json.h"
#include "cc/log.h"

#include "guest-agent/image/image-internal.h"
#include "guest-agent/image/sig-internal.h"

#define DEFAULT_LOOKASIDE "file:///var/lib/containers/sigstore"

struct section {
        char *scope; /* NULL for default-docker */
        char *lookaside;
        int use_attachments; /* -1 unset, 0, 1 */
};

struct img_regsd {
        bool configured; /* a directory was given */
        struct section *s;
        size_t n;
        bool has_default;
        struct section def;
};

struct img_regsd *img__regsd_free(struct img_regsd *rd)
{
        if (!rd)
                return NULL;
        for (size_t i = 0; i < rd->n; i++) {
                free(rd->s[i].scope);
                free(rd->s[i].lookaside);
        }
        free(rd->s);
        free(rd->def.lookaside);
        free(rd);
        return NULL;
}

static const char *scalar(yaml_document_t *d, yaml_node_t *n)
{
        return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int section_parse(yaml_document_t *d, yaml_node_t *m, struct section *s, const char *name,
                         struct cc_error **err)
{
        s->use_attachments = -1;
        if (!m || m->type != YAML_MAPPING_NODE)
                return cc_error_set(err, EINVAL, "%s: section \"%s\" is not a mapping", name,
                                    s->scope ? s->scope : "default-docker");
        for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top;
             p++) {
                const char *k = scalar(d, yaml_document_get_node(d, p->key));
                const char *v = scalar(d, yaml_document_get_node(d, p->value));
                if (!k)
                        continue;
                if (!strcmp(k, "lookaside") || !strcmp(k, "sigstore")) {
                        if (!v)
                                return cc_error_set(err, EINVAL, "%s: %s is not a string", name, k);
                        free(s->lookaside);
                        if (!(s->lookaside = strdup(v)))
                                return -ENOMEM;
                } else if (!strcmp(k, "use-sigstore-attachments")) {
                        if (!v || (strcmp(v, "true") && strcmp(v, "false")))
                                return cc_error_set(err, EINVAL,
                                                    "%s: use-sigstore-attachments is not a boolean",
                                                    name);
                        s->use_attachments = !strcmp(v, "true");
                }
        }
        return 0;
}

int img__regsd_add(struct img_regsd *rd, const char *name, const uint8_t *buf, size_t len,
                   struct cc_error **err)
{
        yaml_parser_t ps;
        yaml_document_t doc;
        if (!yaml_parser_initialize(&ps))
                return -ENOMEM;
        yaml_parser_set_input_string(&ps, buf, len);
        if (!yaml_parser_load(&ps, &doc)) {
                int e = cc_error_set(err, EINVAL, "%s: invalid YAML at line %zu: %s", name,
                                     ps.problem_mark.line + 1,
                                     ps.problem ? ps.problem : "parse error");
                yaml_parser_delete(&ps);
                return e;
        }
        yaml_parser_delete(&ps);
        int r = 0;
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (root && root->type != YAML_MAPPING_NODE)
                r = cc_error_set(err, EINVAL, "%s: not a YAML mapping", name);
        for (yaml_node_pair_t *p = root && r == 0 ? root->data.mapping.pairs.start : NULL;
             p && p < root->data.mapping.pairs.top && r == 0; p++) {
                const char *k = scalar(&doc, yaml_document_get_node(&doc, p->key));
                yaml_node_t *v = yaml_document_get_node(&doc, p->value);
                if (k && !strcmp(k, "default-docker")) {
                        if (rd->has_default) {
                                r = cc_error_set(err, EINVAL, "%s: default-docker defined twice",
                                                 name);
                                break;
                        }
                        rd->has_default = true;
                        r = section_parse(&doc, v, &rd->def, name, err);
                } else if (k && !strcmp(k, "docker")) {
                        if (!v || v->type != YAML_MAPPING_NODE) {
                                if (v && v->type == YAML_SCALAR_NODE && !v->data.scalar.length)
                                        continue; /* "docker:" with nothing under it */
                                r = cc_error_set(err, EINVAL, "%s: docker is not a mapping", name);
                                break;
                        }
                        for (yaml_node_pair_t *q = v->data.mapping.pairs.start;
                             q < v->data.mapping.pairs.top && r == 0; q++) {
                                const char *scope =
                                        scalar(&doc, yaml_document_get_node(&doc, q->key));
                                if (!scope) {
                                        r = cc_error_set(err, EINVAL, "%s: invalid scope", name);
                                        break;
                                }
                                for (size_t i = 0; i < rd->n; i++)
                                        if (!strcmp(rd->s[i].scope, scope))
                                                r = cc_error_set(err, EINVAL,
                                                                 "%s: scope %s defined twice", name,
                                                                 scope);
                                if (r < 0)
                                        break;
                                struct section *ns = realloc(rd->s, (rd->n + 1) * sizeof(*ns));
                                if (!ns) {
                                        r = -ENOMEM;
                                        break;
                                }
                                rd->s = ns;
                                struct section *s = &rd->s[rd->n++];
                                *s = (struct section){.scope = strdup(scope)};
                                if (!s->scope)
                                        r = -ENOMEM;
                                else
                                        r = section_parse(&doc,
                                                          yaml_document_get_node(&doc, q->value), s,
                                                          name, err);
                        }
                }
        }
        yaml_document_delete(&doc);
        return r;
}

static int yaml_filter(const struct dirent *e)
{
        size_t n = strlen(e->d_name);
        return e->d_name[0] != '.' && n > 5 && !strcmp(e->d_name + n - 5, ".yaml");
}

int img__regsd_load(const char *dir, struct img_regsd **ret, struct cc_error **err)
{
        _cleanup_(img__regsd_freep) struct img_regsd *rd = calloc(1, sizeof(*rd));
        if (!rd)
                return -ENOMEM;
        if (dir) {
                rd->configured = true;
                struct dirent **names;
                int n = scandir(dir, &names, yaml_filter, alphasort);
                if (n < 0 && errno == ENOENT) {
                        /* As containers/image: a missing directory is an empty configuration. */
                        *ret = TAKE_PTR(rd);
                        return 0;
                }
                if (n < 0)
                        return cc_error_set(err, errno, "registries.d '%s'", dir);
                int r = 0;
                for (int i = 0; i < n; i++) {
                        _cleanup_free_ char *path = NULL, *buf = NULL;
                        size_t len;
                        if (r == 0 && asprintf(&path, "%s/%s", dir, names[i]->d_name) < 0)
                                r = -ENOMEM;
                        if (r == 0)
                                r = cc_read_file(path, 1 << 20, &buf, &len, err);
                        if (r == 0)
                                r = img__regsd_add(rd, path, (const uint8_t *)buf, len, err);
                        free(names[i]);
                }
                free(names);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(rd);
        return 0;
}

/* The most specific section setting the key (each key resolved on its own, as
 * containers/image does): identity, repository, namespaces, *.domain, then default-docker. */
static const struct section *find(const struct img_regsd *rd, const char *ref, bool lookaside)
{
        _cleanup_strv_ char **cands = img__policy_scopes(ref);
        for (char **c = cands; c && *c; c++)
                for (size_t i = 0; i < rd->n; i++)
                        if (!strcmp(rd->s[i].scope, *c) &&
                            (lookaside ? rd->s[i].lookaside != NULL
                                       : rd->s[i].use_attachments >= 0))
                                return &rd->s[i];
        if (rd->has_default &&
            (lookaside ? rd->def.lookaside != NULL : rd->def.use_attachments >= 0))
                return &rd->def;
        return NULL;
}

const char *img__regsd_lookaside(const struct img_regsd *rd, const char *ref)
{
        const struct section *s = find(rd, ref, true);
        return s ? s->lookaside : DEFAULT_LOOKASIDE;
}

bool img__regsd_use_attachments(const struct img_regsd *rd, const char *ref)
{
        /* Without any registries.d (the guest's usual case) attachments are read, as image-rs
         * does: a sigstoreSigned policy would otherwise reject every image. With one, its
         * use-sigstore-attachments decides, as for skopeo. */
        if (!rd->configured)
                return true;
        const struct section *s = find(rd, ref, false);
        return s && s->use_attachments == 1;
}

char *img__lookaside_url(const char *base, const char *ref_name, const char *digest, unsigned n)
{
        /* The path holds the repository without its host; the digest's ':' becomes '='. */
        const char *slash = strchr(ref_name, '/');
        const char *colon = strchr(digest, ':');
        if (!slash || !colon || strchr(digest, '/') || strstr(ref_name, ".."))
                return NULL;
        size_t bl = strlen(base);
        while (bl > 0 && base[bl - 1] == '/')
                bl--;
        char *s;
        if (asprintf(&s, "%.*s/%s@%.*s=%s/signature-%u", (int)bl, base, slash + 1,
                     (int)(colon - digest), digest, colon + 1, n) < 0)
                return NULL;
        return s;
}

void img__sig_blobs_free(struct img_sig_blob *b, size_t n)
{
        for (size_t i = 0; b && i < n; i++) {
                free(b[i].data);
                free(b[i].name);
        }
        free(b);
}

struct http_body {
        uint8_t *buf;
        size_t len;
        bool too_big;
};

static size_t http_cb(char *d, size_t sz, size_t nm, void *u)
{
        struct http_body *b = u;
        size_t n = sz * nm;
        if (b->len + n > IMG_SIG_MAX_BYTES) {
                b->too_big = true;
                return 0;
        }
        uint8_t *x = realloc(b->buf, b->len + n + 1);
        if (!x)
                return 0;
        memcpy(x + b->len, d, n);
        b->buf = x;
        b->len += n;
        return n;
}

/* One lookaside signature: 0 with data, -ENOENT when absent (the end of the list). */
static int lookaside_get(CURL **hp, const char *url, uint8_t **ret, size_t *ret_len,
                         struct cc_error **err)
{
        if (!strncmp(url, "file://", 7)) {
                char *buf;
                int r = cc_read_file(url + 7, IMG_SIG_MAX_BYTES, &buf, ret_len, err);
                if (r == -ENOENT)
                        return r;
                if (r < 0)
                        return cc_error_wrap(err, -r, "lookaside %s", url);
                *ret = (uint8_t *)buf;
                return 0;
        }
        if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
                return cc_error_set(err, EPROTONOSUPPORT,
                                    "lookaside %s: only file://, http:// and https://", url);
        /* One handle for signature-1, -2, ...: they share a connection. */
        if (!*hp && !(*hp = curl_easy_init()))
                return -ENOMEM;
        CURL *h = *hp;
        curl_easy_reset(h);
        struct http_body b = {0};
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_cb);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        CURLcode c = curl_easy_perform(h);
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        if (c == CURLE_OK && code == 200) {
                *ret = b.buf ? b.buf : calloc(1, 1);
                *ret_len = b.len;
                return *ret ? 0 : -ENOMEM;
        }
        free(b.buf);
        if (c == CURLE_OK && code == 404)
                return -ENOENT;
        /* Any other answer is an error, not "unsigned": a failing store must not read as an
         * image without signatures. */
        if (b.too_big)
                return cc_error_set(err, EFBIG, "lookaside %s: larger than %u bytes", url,
                                    IMG_SIG_MAX_BYTES);
        return cc_error_set(err, EIO, "lookaside %s: %s%ld", url,
                            c != CURLE_OK ? curl_easy_strerror(c) : "HTTP ",
                            c != CURLE_OK ? 0L : code);
}

int img__xrss_parse(const uint8_t *buf, size_t len, struct img_sig_blob **ret, size_t *ret_n,
                    struct cc_error **err)
{
        *ret = NULL;
        *ret_n = 0;
        _cleanup_(json_object_putp) struct json_object *o = img__json_parse_strict(buf, len, err);
        if (!o)
                return cc_error_wrap(err, EBADMSG, "signature extension response");
        struct json_object *arr = img__jget(o, "signatures");
        if (!arr)
                return 0;
        if (!json_object_is_type(arr, json_type_array))
                return cc_error_set(err, EBADMSG,
                                    "signature extension response: \"signatures\" is not an array");
        size_t n = json_object_array_length(arr);
        if (n > IMG_SIG_MAX_COUNT)
                return cc_error_set(err, E2BIG, "signature extension: %zu signatures, at most %d",
                                    n, IMG_SIG_MAX_COUNT);
        struct img_sig_blob *v = calloc(n + 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        size_t k = 0;
        int r = 0;
        for (size_t i = 0; i < n && r == 0; i++) {
                struct json_object *e = json_object_array_get_idx(arr, i);
                struct json_object *sv = img__jget(e, "schemaVersion"), *t = img__jget(e, "type"),
                                   *c = img__jget(e, "content");
                /* Only version 2 "atomic" entries are simple signatures; others are skipped. */
                if (!json_object_is_type(sv, json_type_int) || json_object_get_int64(sv) != 2 ||
                    !json_object_is_type(t, json_type_string) ||
                    strcmp(json_object_get_string(t), "atomic"))
                        continue;
                const char *b64 = json_object_get_string(c);
                if (!json_object_is_type(c, json_type_string) ||
                    img__b64_decode(b64, strlen(b64), false, &v[k].data, &v[k].len) < 0) {
                        r = cc_error_set(err, EBADMSG,
                                         "signature extension: entry %zu: content is not base64",
                                         i + 1);
                        break;
                }
                if (asprintf(&v[k].name, "signature-%zu (registry extension)", k + 1) < 0) {
                        v[k].name = NULL;
                        r = -ENOMEM;
                }
                k++;
        }
        if (r < 0) {
                img__sig_blobs_free(v, k);
                return r;
        }
        *ret = v;
        *ret_n = k;
        return 0;
}

/* The lookaside's signatures of `digest` (signature-1, -2, ... until one is absent). */
static int lookaside_read(const struct img_sigsrc_ctx *ctx, const char *digest,
                          struct img_sig_blob **ret, size_t *ret_n, struct cc_error **err)
{
        *ret = NULL;
        *ret_n = 0;
        struct img_dref d;
        int r = img__dref_parse(ctx->ref, true, &d, err);
        if (r < 0)
                return r;
        const char *base = img__regsd_lookaside(ctx->rd, ctx->ref);
        struct img_sig_blob *v = NULL;
        size_t n = 0;
        CURL *h = NULL;
        for (unsigned i = 1;; i++) {
                if (i > IMG_SIG_MAX_COUNT) {
                        r = cc_error_set(err, E2BIG,
                                         "lookaside provided %d signatures, assuming that's "
                                         "unreasonable",
                                         IMG_SIG_MAX_COUNT);
                        break;
                }
                _cleanup_free_ char *url = img__lookaside_url(base, d.name, digest, i);
                if (!url) {
                        r = cc_error_set(err, EINVAL, "lookaside URL for %s", d.name);
                        break;
                }
                uint8_t *buf = NULL;
                size_t len = 0;
                r = lookaside_get(&h, url, &buf, &len, err);
                if (r == -ENOENT) {
                        r = 0;
                        break;
                }
                if (r < 0)
                        break;
                struct img_sig_blob *nv = realloc(v, (n + 1) * sizeof(*v));
                if (!nv) {
                        free(buf);
                        r = -ENOMEM;
                        break;
                }
                v = nv;
                v[n++] = (struct img_sig_blob){.data = buf, .len = len};
                if (asprintf(&v[n - 1].name, "signature-%u", i) < 0) {
                        v[n - 1].name = NULL;
                        r = -ENOMEM;
                        break;
                }
        }
        if (h)
                curl_easy_cleanup(h);
        cc_log_debug("lookaside %s: %zu signatures for %s@%s", base, n, d.name, digest);
        img__dref_done(&d);
        if (r < 0) {
                img__sig_blobs_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

/* A lookaside read in a thread of its own, while the registry is asked about the extension. */
struct lookaside_job {
        const struct img_sigsrc_ctx *ctx;
        const char *digest;
        struct img_sig_blob *blobs;
        size_t n;
        int r;
        struct cc_error *err;
};

static void *lookaside_job_run(void *p)
{
        struct lookaside_job *j = p;
        j->r = lookaside_read(j->ctx, j->digest, &j->blobs, &j->n, &j->err);
        return NULL;
}

static int simple_read(void *data, const char *digest, struct img_sig_blob **ret, size_t *ret_n,
                       struct cc_error **err)
{
        const struct img_sigsrc_ctx *ctx = data;
        *ret = NULL;
        *ret_n = 0;
        if (!ctx->reg)
                return lookaside_read(ctx, digest, ret, ret_n, err);
        /* A registry announcing the signature API extension is asked instead of the lookaside,
         * as containers/image does. An http(s) lookaside is read at the same time as the
         * registry is asked (another connection), its answer dropped if the registry has the
         * extension: under TCG and slirp each round trip costs milliseconds, and asking first
         * put a whole one before the lookaside's. */
        struct lookaside_job j = {.ctx = ctx, .digest = digest};
        const char *base = img__regsd_lookaside(ctx->rd, ctx->ref);
        pthread_t th;
        bool ahead =
                !strncmp(base, "http", 4) && pthread_create(&th, NULL, lookaside_job_run, &j) == 0;
        bool ext = false;
        int q = img__registry_supports_signatures(ctx->reg, &ext, err);
        if (ahead)
                pthread_join(th, NULL);
        if (q < 0 || ext) {
                img__sig_blobs_free(j.blobs, j.n);
                cc_error_free(j.err);
                if (q < 0)
                        return cc_error_wrap(err, -q, "signature extension probe");
                _cleanup_free_ char *buf = NULL;
                size_t len;
                if ((q = img__registry_get_signatures(ctx->reg, digest, &buf, &len, err)) < 0)
                        return q == -ENOENT ? 0 : q;
                q = img__xrss_parse((const uint8_t *)buf, len, ret, ret_n, err);
                cc_log_debug("registry signature extension: %zu signatures for %s", *ret_n, digest);
                return q;
        }
        if (!ahead)
                return lookaside_read(ctx, digest, ret, ret_n, err);
        if (j.r < 0) {
                if (err && j.err) {
                        cc_error_free(*err);
                        *err = TAKE_PTR(j.err);
                }
                cc_error_free(j.err);
                return j.r;
        }
        *ret = j.blobs;
        *ret_n = j.n;
        return 0;
}

static int sigstore_read(void *data, const char *digest, struct img_sigstore_sig **ret,
                         size_t *ret_n, struct cc_error **err)
{
        const struct img_sigsrc_ctx *ctx = data;
        *ret = NULL;
        *ret_n = 0;
        if (!ctx->reg || !img__regsd_use_attachments(ctx->rd, ctx->ref))
                return 0;
        if (!img__digest_valid(digest))
                return cc_error_set(err, EINVAL, "attachments: unsupported digest %s", digest);
        char tag[80];
        snprintf(tag, sizeof(tag), "sha256-%s.sig", digest + 7);
        _cleanup_free_ char *buf = NULL, *ct = NULL;
        size_t len;
        _cleanup_error_ struct cc_error *gerr = NULL;
        int r = img__registry_get(ctx->reg, "manifests", tag, IMG_MT_OCI_MANIFEST,
                                  IMG_SIG_MAX_BYTES, &buf, &len, &ct, &gerr);
        if (r == -ENOENT)
                return 0; /* no attachment: no sigstore signatures */
        if (r < 0)
                return cc_error_set(err, -r, "%s", cc_error_message(gerr));
        struct img_sigstore_layer *l;
        size_t n, other;
        r = img__sigstore_manifest_parse(ct, (const uint8_t *)buf, len, &l, &n, &other, err);
        if (r < 0)
                return r;
        cc_log_debug("attachment %s: %zu signature layers, %zu others", tag, n, other);
        struct img_sigstore_sig *s = calloc(n + 1, sizeof(*s));
        if (!s) {
                img__sigstore_layers_free(l, n);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n && r >= 0; i++) {
                if (l[i].size > (int64_t)IMG_SIG_MAX_BYTES) {
                        r = cc_error_set(err, EFBIG, "attachment layer %s too large", l[i].digest);
                        break;
                }
                char *pb = NULL;
                size_t pl = 0;
                /* Signers that add a layer for the same payload (one per key) share its blob:
                 * fetched once. */
                for (size_t j = 0; j < i && !pb && r >= 0; j++)
                        if (s[j].payload && !strcmp(l[j].digest, l[i].digest)) {
                                pl = s[j].payload_len;
                                if ((pb = malloc(pl + 1)))
                                        memcpy(pb, s[j].payload, pl);
                                else
                                        r = -ENOMEM;
                        }
                if (r == 0 && !pb)
                        r = img__registry_get(ctx->reg, "blobs", l[i].digest, NULL,
                                              IMG_SIG_MAX_BYTES, &pb, &pl, NULL, err);
                if (r < 0)
                        break;
                char got[72];
                img__digest_buf(pb, pl, got);
                if (strcmp(got, l[i].digest) || (int64_t)pl != l[i].size) {
                        /* That signature is refused (payload NULL), the others still count. */
                        cc_log_debug("attachment layer %s: blob is %s, %zu bytes", l[i].digest, got,
                                     pl);
                        free(pb);
                        continue;
                }
                s[i].payload = (uint8_t *)pb;
                s[i].payload_len = pl;
                s[i].signature_b64 = TAKE_PTR(l[i].signature_b64);
        }
        img__sigstore_layers_free(l, n);
        if (r < 0) {
                img__sigstore_sigs_free(s, n);
                return r;
        }
        *ret = s;
        *ret_n = n;
        return 0;
}

/* ---- reads started ahead, for a reference pinned to a digest ---- */

struct img_sig_prefetch {
        char digest[72];
        bool simple, sigstore; /* what the thread reads */
        pthread_t th;
        bool joined;
        struct img_sigsrc_ctx ctx; /* a copy: the thread's own, read_ns unused */
        struct img_sig_blob *blobs;
        size_t n_blobs;
        int r_simple;
        struct cc_error *err_simple;
        struct img_sigstore_sig *sigs;
        size_t n_sigs;
        int r_sigstore;
        struct cc_error *err_sigstore;
};

static void *prefetch_run(void *p)
{
        struct img_sig_prefetch *f = p;
        if (f->simple)
                f->r_simple =
                        simple_read(&f->ctx, f->digest, &f->blobs, &f->n_blobs, &f->err_simple);
        if (f->sigstore)
                f->r_sigstore =
                        sigstore_read(&f->ctx, f->digest, &f->sigs, &f->n_sigs, &f->err_sigstore);
        return NULL;
}

void img__sig_prefetch_start(struct img_sigsrc_ctx *ctx, const struct img_policy *p,
                             const char *digest)
{
        bool simple, sigstore;
        img__policy_reads(p, ctx->ref, &simple, &sigstore);
        if ((!simple && !sigstore) || !img__digest_valid(digest))
                return;
        struct img_sig_prefetch *f = calloc(1, sizeof(*f));
        if (!f)
                return;
        snprintf(f->digest, sizeof(f->digest), "%s", digest);
        f->simple = simple;
        f->sigstore = sigstore;
        f->ctx = *ctx;
        f->ctx.prefetch = NULL;
        if (pthread_create(&f->th, NULL, prefetch_run, f) != 0) {
                free(f);
                return;
        }
        ctx->prefetch = f;
}

static void prefetch_join(struct img_sig_prefetch *f)
{
        if (!f->joined)
                pthread_join(f->th, NULL);
        f->joined = true;
}

void img__sig_prefetch_end(struct img_sigsrc_ctx *ctx)
{
        struct img_sig_prefetch *f = TAKE_PTR(ctx->prefetch);
        if (!f)
                return;
        prefetch_join(f);
        img__sig_blobs_free(f->blobs, f->n_blobs);
        img__sigstore_sigs_free(f->sigs, f->n_sigs);
        cc_error_free(f->err_simple);
        cc_error_free(f->err_sigstore);
        free(f);
}

/* Hands over what was read ahead for `digest` (once): true with *r and the results set. */
static bool prefetched(struct img_sig_prefetch *f, const char *digest, bool sigstore, int *r,
                       struct cc_error **err)
{
        if (!f || strcmp(f->digest, digest) || !(sigstore ? f->sigstore : f->simple))
                return false;
        prefetch_join(f);
        struct cc_error **e = sigstore ? &f->err_sigstore : &f->err_simple;
        *r = sigstore ? f->r_sigstore : f->r_simple;
        if (*r < 0 && err && *e) {
                cc_error_free(*err);
                *err = TAKE_PTR(*e);
        }
        if (sigstore)
                f->sigstore = false;
        else
                f->simple = false;
        return true;
}

/* The source's entry points: the reads (or the wait for those started ahead), timed for the
 * pull's log. */
static int src_simple(void *data, const char *digest, struct img_sig_blob **ret, size_t *ret_n,
                      struct cc_error **err)
{
        struct img_sigsrc_ctx *ctx = data;
        uint64_t t0 = img__now_ns();
        int r;
        if (prefetched(ctx->prefetch, digest, false, &r, err)) {
                *ret = TAKE_PTR(ctx->prefetch->blobs);
                *ret_n = ctx->prefetch->n_blobs;
                ctx->prefetch->n_blobs = 0;
        } else {
                r = simple_read(data, digest, ret, ret_n, err);
        }
        ctx->read_ns += img__now_ns() - t0;
        return r;
}

static int src_sigstore(void *data, const char *digest, struct img_sigstore_sig **ret,
                        size_t *ret_n, struct cc_error **err)
{
        struct img_sigsrc_ctx *ctx = data;
        uint64_t t0 = img__now_ns();
        int r;
        if (prefetched(ctx->prefetch, digest, true, &r, err)) {
                *ret = TAKE_PTR(ctx->prefetch->sigs);
                *ret_n = ctx->prefetch->n_sigs;
                ctx->prefetch->n_sigs = 0;
        } else {
                r = sigstore_read(data, digest, ret, ret_n, err);
        }
        ctx->read_ns += img__now_ns() - t0;
        return r;
}

void img__sig_source_init(struct img_sig_source *src, struct img_sigsrc_ctx *ctx)
{
        *src = (struct img_sig_source){.data = ctx, .simple = src_simple, .sigstore = src_sigstore};
}
