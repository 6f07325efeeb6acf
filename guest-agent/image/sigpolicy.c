/*
 * containers-policy.json(5) for the `docker` transport, with containers/image's semantics
 * (the library behind skopeo and podman, whose verdicts the tests compare with):
 *   - strict load: unknown, duplicated or mistyped members reject the file, `default` is
 *     mandatory, requirement lists are non-empty;
 *   - the single most specific scope applies (identity, repository, namespaces up to the host,
 *     `*.domain` wildcards, "", then `default`); less specific scopes are not merged;
 *   - every requirement of the list must pass; for signedBy/sigstoreSigned one accepted
 *     signature suffices, and every rejected one contributes its reason to the error.
 * JSON goes through img__json_parse_strict() (sigjson.c): json-c plus a duplicated-key check.
 */
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/fileio.h"
#include "cc/json.h"
#include "cc/log.h"

#include "guest-agent/image/image-internal.h"
#include "guest-agent/image/sig-internal.h"

enum req_type { REQ_ACCEPT, REQ_REJECT, REQ_SIGNED_BY, REQ_SIGSTORE, REQ_BASE_LAYER };
static const char *const req_names[] = {
        [REQ_ACCEPT] = "insecureAcceptAnything",
        [REQ_REJECT] = "reject",
        [REQ_SIGNED_BY] = "signedBy",
        [REQ_SIGSTORE] = "sigstoreSigned",
        [REQ_BASE_LAYER] = "signedBaseLayer",
};

struct keysrc {
        char *path; /* read at evaluation (or by img__policy_prepare(), into data), or */
        uint8_t *data;
        size_t len;
};

struct requirement {
        enum req_type type;
        char *unimplemented_keytype; /* signedBy keyType that parses but cannot be evaluated */
        struct keysrc *keys;
        size_t n_keys;
        struct img_sig_identity id;
        struct img_pgp_keyring kr; /* signedBy: parsed by img__policy_prepare() (n == 0: not) */
};

struct reqlist {
        char *scope;
        struct requirement *reqs;
        size_t n;
};

struct img_policy {
        char *base_dir;
        const struct img_key_broker *broker; /* for kbs:/// key paths; may be NULL */
        bool prepared;                       /* img__policy_prepare() ran */
        struct reqlist def;
        struct reqlist *docker; /* transports.docker, "" included */
        size_t n_docker;
};

/* ---- loading ---- */

static void reqlist_done(struct reqlist *l)
{
        for (size_t i = 0; i < l->n; i++) {
                struct requirement *r = &l->reqs[i];
                for (size_t k = 0; k < r->n_keys; k++) {
                        free(r->keys[k].path);
                        free(r->keys[k].data);
                }
                free(r->keys);
                free(r->unimplemented_keytype);
                img__identity_done(&r->id);
                img__pgp_keyring_done(&r->kr);
        }
        free(l->reqs);
        free(l->scope);
        *l = (struct reqlist){0};
}

struct img_policy *img__policy_free(struct img_policy *p)
{
        if (!p)
                return NULL;
        reqlist_done(&p->def);
        for (size_t i = 0; i < p->n_docker; i++)
                reqlist_done(&p->docker[i]);
        free(p->docker);
        free(p->base_dir);
        free(p);
        return NULL;
}

/* keyPath | keyPaths | keyData (| keyDatas for sigstoreSigned): exactly one. */
static int keys_parse(struct json_object *o, const char *what, bool datas_allowed, bool b64_or_pem,
                      struct requirement *req, struct cc_error **err)
{
        struct json_object *kp = img__jget(o, "keyPath"), *kps = img__jget(o, "keyPaths"),
                           *kd = img__jget(o, "keyData"), *kds = img__jget(o, "keyDatas");
        if (!!kp + !!kps + !!kd + !!kds != 1)
                return cc_error_set(err, EINVAL,
                                    "%s: exactly one of keyPath, keyPaths, keyData%s "
                                    "must be set",
                                    what, datas_allowed ? ", keyDatas" : "");
        struct json_object *arr = kps ? kps : kds;
        struct json_object *one = kp ? kp : kd;
        if (arr && !json_object_is_type(arr, json_type_array))
                return cc_error_set(err, EINVAL, "%s: %s must be a non-empty array", what,
                                    kps ? "keyPaths" : "keyDatas");
        size_t n = arr ? json_object_array_length(arr) : 1;
        if (n == 0)
                return cc_error_set(err, EINVAL, "%s: %s must be a non-empty array", what,
                                    kps ? "keyPaths" : "keyDatas");
        req->keys = calloc(n, sizeof(*req->keys));
        if (!req->keys)
                return -ENOMEM;
        bool paths = kp || kps;
        for (size_t i = 0; i < n; i++) {
                struct json_object *v = arr ? json_object_array_get_idx(arr, i) : one;
                if (!json_object_is_type(v, json_type_string) || !*json_object_get_string(v))
                        return cc_error_set(err, EINVAL, "%s: %s must hold non-empty strings", what,
                                            paths ? "key paths" : "key data");
                const char *s = json_object_get_string(v);
                struct keysrc *k = &req->keys[req->n_keys++];
                if (paths) {
                        if (!(k->path = strdup(s)))
                                return -ENOMEM;
                        continue;
                }
                /* keyData is base64 (JSON []byte in Go). image-rs hands a cosign keyData to the
                 * PEM parser as it is, so a PEM text is accepted as such too. */
                if (b64_or_pem && !strncmp(s, "-----BEGIN", 10)) {
                        k->len = strlen(s);
                        if (!(k->data = (uint8_t *)strdup(s)))
                                return -ENOMEM;
                } else if (img__b64_decode(s, strlen(s), false, &k->data, &k->len) < 0 ||
                           k->len == 0) {
                        return cc_error_set(err, EINVAL, "%s: keyData is not base64", what);
                }
        }
        return 0;
}

static int requirement_parse(struct json_object *o, struct requirement *req, struct cc_error **err)
{
        if (!json_object_is_type(o, json_type_object))
                return cc_error_set(err, EINVAL, "requirement is not an object");
        struct json_object *t = img__jget(o, "type");
        if (!json_object_is_type(t, json_type_string))
                return cc_error_set(err, EINVAL, "requirement: \"type\" missing or not a string");
        const char *ts = json_object_get_string(t);
        size_t i = 0;
        while (i < CC_ARRAY_SIZE(req_names) && strcmp(req_names[i], ts))
                i++;
        if (i == CC_ARRAY_SIZE(req_names))
                return cc_error_set(err, EINVAL, "unknown policy requirement type \"%s\"", ts);
        req->type = (enum req_type)i;
        int r;
        switch (req->type) {
        case REQ_ACCEPT:
        case REQ_REJECT: {
                static const char *const allowed[] = {"type", NULL};
                return img__json_only_members(o, ts, allowed, err);
        }
        case REQ_BASE_LAYER: {
                static const char *const allowed[] = {"type", "layerIdentity", NULL};
                return img__json_only_members(o, ts, allowed, err);
        }
        case REQ_SIGNED_BY: {
                static const char *const allowed[] = {"type",     "keyType", "keyPath",
                                                      "keyPaths", "keyData", "signedIdentity",
                                                      NULL};
                if ((r = img__json_only_members(o, ts, allowed, err)) < 0)
                        return r;
                _cleanup_free_ char *kt = NULL;
                if ((r = img__json_get_string(o, "keyType", ts, true, &kt, err)) < 0)
                        return r;
                if (strcmp(kt, "GPGKeys")) {
                        if (strcmp(kt, "signedByGPGKeys") && strcmp(kt, "X509Certificates") &&
                            strcmp(kt, "signedByX509CAs"))
                                return cc_error_set(err, EINVAL,
                                                    "signedBy: Unrecognized keyType value \"%s\"",
                                                    kt);
                        req->unimplemented_keytype = TAKE_PTR(kt);
                }
                break;
        }
        case REQ_SIGSTORE: {
                /* Keyless verification needs X.509 chains and Rekor SETs: refused at load, so
                 * a policy cannot appear to demand something that is never checked. */
                static const char *const keyless[] = {"fulcio",
                                                      "pki",
                                                      "rekorPublicKeyPath",
                                                      "rekorPublicKeyPaths",
                                                      "rekorPublicKeyData",
                                                      "rekorPublicKeyDatas"};
                for (size_t k = 0; k < CC_ARRAY_SIZE(keyless); k++)
                        if (img__jget(o, keyless[k]))
                                return cc_error_set(
                                        err, EOPNOTSUPP,
                                        "sigstoreSigned: \"%s\": keyless (Fulcio/Rekor) "
                                        "signatures are not supported, only public "
                                        "keys (keyPath, keyPaths, keyData, keyDatas)",
                                        keyless[k]);
                static const char *const allowed[] = {"type",    "keyPath",  "keyPaths",
                                                      "keyData", "keyDatas", "signedIdentity",
                                                      NULL};
                if ((r = img__json_only_members(o, ts, allowed, err)) < 0)
                        return r;
                break;
        }
        }
        bool sigstore = req->type == REQ_SIGSTORE;
        if ((r = keys_parse(o, ts, sigstore, sigstore, req, err)) < 0)
                return r;
        struct json_object *id = img__jget(o, "signedIdentity");
        if (id && (r = img__identity_parse(id, &req->id, err)) < 0)
                return cc_error_wrap(err, EINVAL, "%s", ts);
        return 0;
}

static int reqlist_parse(struct json_object *arr, const char *scope, struct reqlist *l,
                         struct cc_error **err)
{
        if (!(l->scope = strdup(scope)))
                return -ENOMEM;
        if (!json_object_is_type(arr, json_type_array))
                return cc_error_set(err, EINVAL, "scope \"%s\": requirements are not an array",
                                    scope);
        size_t n = json_object_array_length(arr);
        if (n == 0)
                return cc_error_set(err, EINVAL,
                                    "scope \"%s\": List of verification policy requirements must "
                                    "not be empty",
                                    scope);
        if (!(l->reqs = calloc(n, sizeof(*l->reqs))))
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                l->n++;
                int r = requirement_parse(json_object_array_get_idx(arr, i), &l->reqs[i], err);
                if (r < 0)
                        return cc_error_wrap(err, EINVAL, "scope \"%s\", requirement %zu", scope,
                                             i + 1);
        }
        return 0;
}

int img__policy_load(const uint8_t *buf, size_t len, const char *base_dir, struct img_policy **ret,
                     struct cc_error **err)
{
        if (len > IMG_SIG_MAX_BYTES)
                return cc_error_set(err, EFBIG, "policy: larger than %u bytes", IMG_SIG_MAX_BYTES);
        _cleanup_(json_object_putp) struct json_object *o = img__json_parse_strict(buf, len, err);
        if (!o)
                return cc_error_wrap(err, EINVAL, "policy");
        if (!json_object_is_type(o, json_type_object))
                return cc_error_set(err, EINVAL, "policy: not a JSON object");
        static const char *const allowed[] = {"default", "transports", NULL};
        int r = img__json_only_members(o, "policy", allowed, err);
        if (r < 0)
                return r;
        _cleanup_(img__policy_freep) struct img_policy *p = calloc(1, sizeof(*p));
        if (!p || (base_dir && !(p->base_dir = strdup(base_dir))))
                return -ENOMEM;
        struct json_object *def = img__jget(o, "default");
        if (!def)
                return cc_error_set(err, EINVAL, "policy: Default policy is missing");
        if ((r = reqlist_parse(def, "default", &p->def, err)) < 0)
                return cc_error_wrap(err, EINVAL, "policy");
        struct json_object *tr = img__jget(o, "transports");
        if (tr && !json_object_is_type(tr, json_type_object))
                return cc_error_set(err, EINVAL, "policy: \"transports\" is not an object");
        if (!tr) {
                *ret = TAKE_PTR(p);
                return 0;
        }
        json_object_object_foreach(tr, tname, scopes)
        {
                if (!json_object_is_type(scopes, json_type_object))
                        return cc_error_set(err, EINVAL,
                                            "policy: transport \"%s\" is not an object", tname);
                bool docker = !strcmp(tname, "docker");
                size_t n = json_object_object_length(scopes);
                if (docker && n && !(p->docker = calloc(n, sizeof(*p->docker))))
                        return -ENOMEM;
                json_object_object_foreach(scopes, scope, arr)
                {
                        /* Other transports are validated but never used by an image pull. */
                        struct reqlist tmp = {0};
                        struct reqlist *l = docker ? &p->docker[p->n_docker++] : &tmp;
                        r = reqlist_parse(arr, scope, l, err);
                        if (!docker)
                                reqlist_done(&tmp);
                        if (r < 0)
                                return cc_error_wrap(err, EINVAL, "policy: transport \"%s\"",
                                                     tname);
                }
        }
        *ret = TAKE_PTR(p);
        return 0;
}

int img__policy_load_file(const char *path, struct img_policy **ret, struct cc_error **err)
{
        _cleanup_free_ char *buf = NULL, *dir = NULL;
        size_t len;
        int r = cc_read_file(path, IMG_SIG_MAX_BYTES, &buf, &len, err);
        if (r < 0)
                return cc_error_wrap(err, -r, "policy");
        const char *slash = strrchr(path, '/');
        if (slash && !(dir = strndup(path, (size_t)(slash - path))))
                return -ENOMEM;
        r = img__policy_load((const uint8_t *)buf, len, dir, ret, err);
        if (r < 0)
                return cc_error_wrap(err, -r, "%s", path);
        return 0;
}

int img__policy_load_uri(const char *uri, const struct img_key_broker *broker,
                         struct img_policy **ret, struct cc_error **err)
{
        if (strncmp(uri, "kbs://", 6)) {
                int r = img__policy_load_file(!strncmp(uri, "file://", 7) ? uri + 7 : uri, ret,
                                              err);
                if (r == 0)
                        (*ret)->broker = broker;
                return r;
        }
        if (!broker || !broker->resource)
                return cc_error_set(err, ENOKEY, "policy %s: no key broker configured", uri);
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len = 0;
        int r = broker->resource(broker->data, uri, &buf, &len, err);
        if (r < 0)
                return cc_error_wrap(err, -r, "policy %s", uri);
        r = img__policy_load(buf, len, NULL, ret, err);
        if (r < 0)
                return cc_error_wrap(err, -r, "%s", uri);
        (*ret)->broker = broker;
        return 0;
}

/* ---- scopes ---- */

char **img__policy_scopes(const char *ref)
{
        struct img_dref d;
        if (img__dref_parse(ref, true, &d, NULL) < 0)
                return NULL;
        _cleanup_free_ char *full = img__dref_string(&d);
        size_t cap = 8;
        for (const char *s = d.name; *s; s++)
                cap += *s == '/' || *s == '.';
        _cleanup_strv_ char **v = calloc(cap, sizeof(char *));
        size_t n = 0;
        bool oom = !full || !v;
        if (!oom) {
                v[n++] = TAKE_PTR(full);
                /* The repository, then each namespace down to the host[:port]. */
                _cleanup_free_ char *name = strdup(d.name);
                oom = !name;
                for (char *slash = NULL; name && !oom;) {
                        if (!(v[n++] = strdup(name)))
                                oom = true;
                        if (!(slash = strrchr(name, '/')))
                                break;
                        *slash = 0;
                }
                /* Wildcard domains, port dropped: *.b.c, *.c for host a.b.c. */
                if (name && !oom) {
                        char *colon = strchr(name, ':');
                        if (colon)
                                *colon = 0;
                        for (char *dot = strchr(name, '.'); dot && !oom; dot = strchr(dot + 1, '.'))
                                if (asprintf(&v[n++], "*%s", dot) < 0) {
                                        v[--n] = NULL;
                                        oom = true;
                                }
                }
        }
        img__dref_done(&d);
        return oom ? NULL : TAKE_PTR(v);
}

static const struct reqlist *reqs_for(const struct img_policy *p, const char *ref)
{
        _cleanup_strv_ char **cands = img__policy_scopes(ref);
        for (char **c = cands; c && *c; c++)
                for (size_t i = 0; i < p->n_docker; i++)
                        if (*p->docker[i].scope && !strcmp(p->docker[i].scope, *c))
                                return &p->docker[i];
        for (size_t i = 0; i < p->n_docker; i++)
                if (!*p->docker[i].scope)
                        return &p->docker[i];
        return &p->def;
}

const char *img__policy_scope_for(const struct img_policy *p, const char *ref)
{
        return reqs_for(p, ref)->scope;
}

void img__policy_reads(const struct img_policy *p, const char *ref, bool *simple, bool *sigstore)
{
        const struct reqlist *l = reqs_for(p, ref);
        *simple = *sigstore = false;
        for (size_t i = 0; i < l->n; i++) {
                *simple |= l->reqs[i].type == REQ_SIGNED_BY && !l->reqs[i].unimplemented_keytype;
                *sigstore |= l->reqs[i].type == REQ_SIGSTORE;
        }
}

/* ---- evaluation ---- */

struct pem_key {
        char *owned;
        const uint8_t *b;
        size_t l;
};

/* Reasons of rejected signatures, joined with "; ". */
struct reasons {
        char *buf;
        size_t len, n;
};

static void _printf_(2, 3) reason_add(struct reasons *rs, const char *fmt, ...)
{
        char *s = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        char *nb = realloc(rs->buf, rs->len + (size_t)n + 3);
        if (nb) {
                rs->len += (size_t)sprintf(nb + rs->len, "%s%s", rs->n ? "; " : "", s);
                rs->buf = nb;
                rs->n++;
        }
        free(s);
}

/* Checks a verified payload against the manifest digest and the identity rule. */
static int payload_check(const uint8_t *payload, size_t len, const char *type,
                         const struct requirement *req, const struct img_dref *img,
                         const char *digest, char **ret_reason)
{
        struct img_sig_payload pl;
        _cleanup_error_ struct cc_error *perr = NULL;
        int r = 0;
        if (img__sig_payload_parse(payload, len, type, &pl, &perr) < 0)
                return asprintf(ret_reason, "invalid payload: %s", cc_error_message(perr)) < 0
                               ? -ENOMEM
                               : -EBADMSG;
        if (strcmp(pl.manifest_digest, digest))
                r = asprintf(ret_reason, "digest mismatch: signature is for %s, manifest is %s",
                             pl.manifest_digest, digest);
        else if (!img__identity_matches(&req->id, img, pl.docker_reference))
                r = asprintf(ret_reason,
                             "identity mismatch: signed identity %s is not accepted "
                             "by %s",
                             pl.docker_reference, img__identity_names[req->id.type]);
        else
                r = 1;
        img__sig_payload_done(&pl);
        return r < 0 ? -ENOMEM : r == 1 ? 0 : -EBADMSG;
}

static int key_bytes(const struct img_policy *p, const struct keysrc *k, char **ret_owned,
                     const uint8_t **ret, size_t *ret_len, struct cc_error **err)
{
        if (k->data) {
                *ret = k->data;
                *ret_len = k->len;
                return 0;
        }
        /* A resource URI (as image-rs accepts): kbs:///repo/type/tag from the key broker, which
         * is what delivers keys after attestation; file:///path is a plain path. */
        if (!strncmp(k->path, "kbs://", 6)) {
                if (!p->broker || !p->broker->resource)
                        return cc_error_set(err, ENOKEY, "key %s: no key broker configured",
                                            k->path);
                uint8_t *b = NULL;
                int r = p->broker->resource(p->broker->data, k->path, &b, ret_len, err);
                if (r < 0)
                        return cc_error_wrap(err, -r, "key %s", k->path);
                *ret_owned = (char *)b;
                *ret = b;
                return 0;
        }
        const char *kp = !strncmp(k->path, "file://", 7) ? k->path + 7 : k->path;
        _cleanup_free_ char *path = NULL;
        if (kp[0] != '/' && p->base_dir) {
                if (asprintf(&path, "%s/%s", p->base_dir, kp) < 0)
                        return -ENOMEM;
        } else if (!(path = strdup(kp))) {
                return -ENOMEM;
        }
        int r = cc_read_file(path, IMG_SIG_MAX_BYTES, ret_owned, ret_len, err);
        if (r < 0)
                return cc_error_wrap(err, -r, "key file");
        *ret = (const uint8_t *)*ret_owned;
        return 0;
}

/* The signatures of one digest, read by a thread of their own while the keys are parsed and
 * their code first run: in the guest, under TCG, the first RSA or EC key costs the translation
 * of code the process never ran (20-50 ms) and the reads wait partly for the lookaside and the
 * registry, so the two can overlap (bench/README.md). */
struct sig_read {
        const struct img_sig_source *src;
        const char *digest;
        bool sigstore;
        struct img_sig_blob *blobs;    /* simple signatures */
        struct img_sigstore_sig *sigs; /* sigstore signatures */
        size_t n;
        int r;
        struct cc_error *err;
        pthread_t th;
        bool threaded;
        bool done; /* the reads have returned (set by their thread) */
};

static void *sig_read_run(void *p)
{
        struct sig_read *f = p;
        const struct img_sig_source *s = f->src;
        if (f->sigstore)
                f->r = s && s->sigstore ? s->sigstore(s->data, f->digest, &f->sigs, &f->n, &f->err)
                                        : 0;
        else
                f->r = s && s->simple ? s->simple(s->data, f->digest, &f->blobs, &f->n, &f->err)
                                      : 0;
        __atomic_store_n(&f->done, true, __ATOMIC_RELEASE);
        return NULL;
}

static void sig_read_start(struct sig_read *f)
{
        f->threaded = pthread_create(&f->th, NULL, sig_read_run, f) == 0;
}

/* Waits for the reads (or does them here if no thread could start); <0 with the read's error
 * in *err unless `r` (the caller's own result) is an error already. */
static int sig_read_finish(struct sig_read *f, int r, struct cc_error **err)
{
        if (f->threaded)
                pthread_join(f->th, NULL);
        else
                sig_read_run(f);
        if (r >= 0 && f->r < 0)
                r = cc_error_set(err, -f->r, "reading %s signatures: %s",
                                 f->sigstore ? "sigstore" : "simple",
                                 f->err ? cc_error_message(f->err) : strerror(-f->r));
        cc_error_free(TAKE_PTR(f->err));
        return r;
}

static int keyring_load(const struct img_policy *p, const struct requirement *req,
                        struct img_pgp_keyring *kr, struct cc_error **err)
{
        for (size_t i = 0; i < req->n_keys; i++) {
                _cleanup_free_ char *owned = NULL;
                const uint8_t *kb;
                size_t kl;
                int r = key_bytes(p, &req->keys[i], &owned, &kb, &kl, err);
                if (r < 0)
                        return r;
                r = img__pgp_keyring_add(kr, kb, kl, err);
                if (r < 0 && r != -ENOKEY)
                        return cc_error_wrap(err, -r, "key %s",
                                             req->keys[i].path ? req->keys[i].path : "keyData");
        }
        if (kr->n == 0)
                return cc_error_set(err, ENOKEY, "No public keys imported");
        return 0;
}

static int eval_signed_by(const struct img_policy *p, const struct requirement *req,
                          const struct img_dref *img, const char *digest,
                          const struct img_sig_source *src, int64_t now, struct reasons *rs,
                          bool *accepted, struct cc_error **err)
{
        if (req->unimplemented_keytype) {
                reason_add(rs, "Unimplemented \"keyType\" value \"%s\"",
                           req->unimplemented_keytype);
                return 0;
        }
        _cleanup_(img__pgp_keyring_done) struct img_pgp_keyring own = {0};
        const struct img_pgp_keyring *kr = req->kr.n ? &req->kr : &own;
        struct sig_read f = {.src = src, .digest = digest};
        sig_read_start(&f);
        int r = sig_read_finish(&f, req->kr.n ? 0 : keyring_load(p, req, &own, err), err);
        struct img_sig_blob *blobs = f.blobs;
        size_t n = f.n;
        if (r < 0) {
                img__sig_blobs_free(blobs, n);
                return r;
        }
        for (size_t i = 0; i < n && !*accepted; i++) {
                const struct img_sig_blob *b = &blobs[i];
                _cleanup_free_ char *why = NULL;
                _cleanup_free_ uint8_t *payload = NULL;
                size_t plen = 0;
                r = img__simple_sig_check(kr, b->data, b->len, now, &payload, &plen, &why);
                if (r == 0)
                        r = payload_check(payload, plen, IMG_PAYLOAD_SIMPLE, req, img, digest,
                                          &why);
                if (r == -ENOMEM)
                        break;
                if (r == 0)
                        *accepted = true;
                else
                        reason_add(rs, "%s: %s", b->name, why ? why : "rejected");
        }
        img__sig_blobs_free(blobs, n);
        if (r == -ENOMEM)
                return r;
        if (n == 0)
                reason_add(rs, "no signature: A signature was required, but no signature exists");
        return 0;
}

/* The sigstore signatures f read for its digest; `what` prefixes reasons ("layer" or "index
 * layer"). Frees them. */
static int sigstore_digest(const struct requirement *req, const struct img_dref *img,
                           struct sig_read *f, const char *what, const struct pem_key *keys,
                           size_t nk, struct reasons *rs, size_t *n_seen, bool *accepted)
{
        struct img_sigstore_sig *sigs = f->sigs;
        size_t n = f->n;
        const char *digest = f->digest;
        int r = 0;
        *n_seen += n;
        for (size_t i = 0; r >= 0 && i < n && !*accepted; i++) {
                const struct img_sigstore_sig *s = &sigs[i];
                if (!s->payload) {
                        reason_add(rs, "%s %zu: payload blob does not match its descriptor", what,
                                   i + 1);
                        continue;
                }
                if (!s->signature_b64) {
                        reason_add(rs, "%s %zu: missing " IMG_COSIGN_SIG_ANNOTATION " annotation",
                                   what, i + 1);
                        continue;
                }
                _cleanup_error_ struct cc_error *verr = NULL;
                bool verified = false;
                for (size_t k = 0; k < nk && !verified; k++) {
                        cc_error_free(TAKE_PTR(verr));
                        verified =
                                img__sigstore_verify(keys[k].b, keys[k].l, s->payload,
                                                     s->payload_len, s->signature_b64, &verr) == 0;
                }
                if (!verified) {
                        reason_add(rs, "%s %zu: bad signature or unknown key: %s", what, i + 1,
                                   cc_error_message(verr));
                        continue;
                }
                _cleanup_free_ char *why = NULL;
                int q = payload_check(s->payload, s->payload_len, IMG_PAYLOAD_COSIGN, req, img,
                                      digest, &why);
                if (q == -ENOMEM)
                        r = q;
                else if (q == 0)
                        *accepted = true;
                else
                        reason_add(rs, "%s %zu: %s", what, i + 1, why);
        }
        img__sigstore_sigs_free(sigs, n);
        return r;
}

/* Sigstore signatures over the (platform) manifest, then over the index that named it, as
 * image-rs tries them; cosign signs either, depending on how it was given the image. */
static int eval_sigstore(const struct img_policy *p, const struct requirement *req,
                         const struct img_dref *img, const char *digest, const char *index_digest,
                         const struct img_sig_source *src, struct reasons *rs, bool *accepted,
                         struct cc_error **err)
{
        struct pem_key keys[16] = {0};
        size_t nk = CC_MIN(req->n_keys, CC_ARRAY_SIZE(keys));
        struct sig_read f = {.src = src, .digest = digest, .sigstore = true};
        sig_read_start(&f);
        int r = 0;
        for (size_t i = 0; i < nk && r >= 0; i++)
                /* Only while the reads still wait (not prepared ahead, not read ahead): else
                 * this is one more verification on the check's path. */
                if ((r = key_bytes(p, &req->keys[i], &keys[i].owned, &keys[i].b, &keys[i].l,
                                   err)) >= 0 &&
                    !p->prepared && !__atomic_load_n(&f.done, __ATOMIC_ACQUIRE))
                        img__sigstore_key_warm(keys[i].b, keys[i].l);
        r = sig_read_finish(&f, r, err);
        size_t n = 0;
        if (r >= 0)
                r = sigstore_digest(req, img, &f, "layer", keys, nk, rs, &n, accepted);
        else
                img__sigstore_sigs_free(f.sigs, f.n);
        if (r >= 0 && !*accepted && index_digest) {
                struct sig_read fi = {.src = src, .digest = index_digest, .sigstore = true};
                if ((r = sig_read_finish(&fi, 0, err)) >= 0)
                        r = sigstore_digest(req, img, &fi, "index layer", keys, nk, rs, &n,
                                            accepted);
                else
                        img__sigstore_sigs_free(fi.sigs, fi.n);
        }
        for (size_t i = 0; i < nk; i++)
                free(keys[i].owned);
        if (r < 0)
                return r;
        if (n == 0)
                reason_add(rs, "no signature: A signature was required, but no signature exists "
                               "(no sigstore attachment)");
        return 0;
}

/* Reads the key files and resources of one requirement into their keysrc; a failure leaves the
 * rest for the check to read (and report). */
static int keys_read(const struct img_policy *p, struct requirement *req)
{
        for (size_t i = 0; i < req->n_keys; i++) {
                struct keysrc *k = &req->keys[i];
                _cleanup_free_ char *owned = NULL;
                _cleanup_error_ struct cc_error *err = NULL;
                const uint8_t *b;
                size_t l;
                if (k->data)
                        continue;
                int r = key_bytes(p, k, &owned, &b, &l, &err);
                if (r < 0) {
                        cc_log_debug("signature policy: key %s not read ahead: %s", k->path,
                                     err ? cc_error_message(err) : strerror(-r));
                        return r;
                }
                k->data = (uint8_t *)TAKE_PTR(owned);
                k->len = l;
        }
        return 0;
}

static void reqlist_prepare(struct img_policy *p, struct reqlist *l)
{
        for (size_t i = 0; i < l->n; i++) {
                struct requirement *req = &l->reqs[i];
                if ((req->type != REQ_SIGNED_BY && req->type != REQ_SIGSTORE) ||
                    req->unimplemented_keytype || keys_read(p, req) < 0)
                        continue;
                if (req->type == REQ_SIGSTORE) {
                        for (size_t k = 0; k < req->n_keys; k++)
                                img__sigstore_pem_warm(req->keys[k].data, req->keys[k].len);
                        continue;
                }
                _cleanup_error_ struct cc_error *err = NULL;
                if (keyring_load(p, req, &req->kr, &err) < 0) {
                        img__pgp_keyring_done(&req->kr); /* the check reports it */
                        continue;
                }
                img__pgp_keyring_warm(&req->kr);
        }
}

void img__policy_prepare(struct img_policy *p)
{
        reqlist_prepare(p, &p->def);
        for (size_t i = 0; i < p->n_docker; i++)
                reqlist_prepare(p, &p->docker[i]);
        img__sig_code_warm();
        p->prepared = true;
}

int img__policy_check(const struct img_policy *p, const char *ref, const char *manifest_digest,
                      const char *index_digest, const struct img_sig_source *src, int64_t now,
                      struct cc_error **err)
{
        struct img_dref img;
        int r = img__dref_parse(ref, true, &img, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *refs = img__dref_string(&img);
        const struct reqlist *l = reqs_for(p, ref);
        if (!refs) {
                img__dref_done(&img);
                return -ENOMEM;
        }
        for (size_t i = 0; i < l->n && r >= 0; i++) {
                const struct requirement *req = &l->reqs[i];
                struct reasons rs = {0};
                bool accepted = false;
                _cleanup_error_ struct cc_error *eerr = NULL;
                switch (req->type) {
                case REQ_ACCEPT:
                        accepted = true;
                        break;
                case REQ_REJECT:
                        reason_add(&rs, "Running image docker://%s is rejected by policy.", refs);
                        break;
                case REQ_BASE_LAYER:
                        reason_add(&rs, "signedBaseLayer not implemented yet!");
                        break;
                case REQ_SIGNED_BY:
                        r = eval_signed_by(p, req, &img, manifest_digest, src, now, &rs, &accepted,
                                           &eerr);
                        break;
                case REQ_SIGSTORE:
                        r = eval_sigstore(p, req, &img, manifest_digest, index_digest, src, &rs,
                                          &accepted, &eerr);
                        break;
                }
                const char *scope = *l->scope ? l->scope : "\"\" (docker default)";
                if (r == -ENOMEM) {
                        free(rs.buf);
                        break;
                }
                if (r < 0) {
                        /* Keys or signatures could not be read: still a denial, with the cause.
                         * A failed lookaside read is not "unsigned", hence not EACCES alone. */
                        cc_error_set(err, EACCES,
                                     "Image policy rejected: Denied by policy: image %s, scope %s, "
                                     "requirement %zu (%s): %s",
                                     refs, scope, i + 1, req_names[req->type],
                                     cc_error_message(eerr));
                        r = -EACCES;
                } else if (!accepted) {
                        bool several = rs.n > 1 &&
                                       (req->type == REQ_SIGNED_BY || req->type == REQ_SIGSTORE);
                        r = cc_error_set(err, EACCES,
                                         "Image policy rejected: Denied by policy: image %s, scope "
                                         "%s, requirement %zu (%s): %s%s",
                                         refs, scope, i + 1, req_names[req->type],
                                         several ? "None of the signatures were accepted, "
                                                   "reasons: "
                                                 : "",
                                         rs.buf ? rs.buf : "rejected");
                } else {
                        cc_log_debug("image %s: scope %s, requirement %zu (%s) satisfied", refs,
                                     scope, i + 1, req_names[req->type]);
                }
                free(rs.buf);
        }
        img__dref_done(&img);
        return r < 0 ? r : 0;
}
