/*
 * img_pull(): reference -> manifest (index -> platform manifest) -> config -> layers, with
 * a bounded pool of layer threads, and img_rootfs_mount() for the container rootfs.
 */
#include <errno.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/log.h"

#include "guest-agent/image/image-internal.h"
#include "guest-agent/image/sig-internal.h"

#define ACCEPT_MANIFESTS                                                  \
        IMG_MT_OCI_INDEX ", " IMG_MT_OCI_MANIFEST ", " IMG_MT_DOCKER_LIST \
                         ", " IMG_MT_DOCKER_MANIFEST

#if defined(__x86_64__)
#define BUILD_ARCH "amd64"
#elif defined(__aarch64__)
#define BUILD_ARCH "arm64"
#elif defined(__s390x__)
#define BUILD_ARCH "s390x"
#elif defined(__powerpc64__)
#define BUILD_ARCH "ppc64le"
#else
#define BUILD_ARCH "unknown"
#endif

DEFINE_TRIVIAL_CLEANUP_FUNC(struct img_manifest *, img__manifest_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct img_registry *, img__registry_free)

/* The signature policy of one pull, loaded once for the mirror and the origin. */
struct sigcheck {
        const struct img_policy *policy; /* NULL: not verified */
        const struct img_regsd *rd;
        const char *ref; /* as the caller named the image */
};

/* Applies the policy to the digest of the image's manifest (for a multi-platform image, the
 * platform manifest chosen from the index, which is what skopeo checks when it copies one
 * platform; sigstore signatures over the index count too), before the config or any layer is
 * fetched. */
static int signature_check(const struct sigcheck *sc, struct img_sigsrc_ctx *ctx,
                           const char *digest, const char *index_digest, struct cc_error **err)
{
        if (!sc->policy)
                return 0;
        struct img_sig_source src;
        img__sig_source_init(&src, ctx);
        uint64_t t0 = img__now_ns();
        int r = img__policy_check(sc->policy, sc->ref, digest, index_digest, &src,
                                  (int64_t)time(NULL), err);
        if (r < 0)
                return r;
        cc_log_info("image %s: manifest %s accepted by the signature policy (scope %s) in %.1f ms "
                    "(reading signatures %.1f ms)",
                    sc->ref, digest, img__policy_scope_for(sc->policy, sc->ref),
                    (double)(img__now_ns() - t0) / 1e6, (double)ctx->read_ns / 1e6);
        return 0;
}

struct img_pulled *img_pulled_free(struct img_pulled *p)
{
        if (!p)
                return NULL;
        free(p->ref);
        free(p->manifest_digest);
        free(p->config_digest);
        for (size_t i = 0; i < p->n_layers; i++) {
                free(p->layer_dirs ? p->layer_dirs[i] : NULL);
                free(p->layer_digests ? p->layer_digests[i] : NULL);
        }
        free(p->layer_dirs);
        free(p->layer_digests);
        img__config_done(&p->config);
        free(p->config_json);
        free(p);
        return NULL;
}

static bool host_insecure(const struct img_pull_opts *o, const char *host)
{
        if (o->flags & IMG_PULL_ALL_INSECURE)
                return true;
        for (const char *const *p = o->insecure_registries; p && *p; p++)
                if (!strcmp(*p, host))
                        return true;
        return false;
}

struct pool {
        struct img_layer_job *jobs;
        struct cc_error **errs;
        int *rcs;
        size_t n;
        size_t next;
        volatile int abort;
};

static void *worker(void *arg)
{
        struct pool *p = arg;
        for (;;) {
                size_t i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
                if (i >= p->n || p->abort)
                        break;
                p->rcs[i] = img__layer_pull(&p->jobs[i], &p->errs[i]);
                if (p->rcs[i] < 0)
                        p->abort = 1;
        }
        return NULL;
}

static int fetch_manifest(struct img_registry *reg, const struct img_pull_opts *o, const char *ref,
                          const char *want_digest, int64_t want_size, struct img_manifest **ret,
                          char ret_digest[72], struct cc_error **err)
{
        _cleanup_free_ char *buf = NULL, *ct = NULL;
        size_t len;
        int r = img__registry_get(reg, "manifests", ref, ACCEPT_MANIFESTS, o->max_manifest_bytes,
                                  &buf, &len, &ct, err);
        if (r < 0)
                return cc_error_wrap(err, r, "manifest %s", ref);
        img__digest_buf(buf, len, ret_digest);
        if (want_digest && strcmp(ret_digest, want_digest))
                return cc_error_set(err, EBADMSG, "manifest %s: digest mismatch (got %s)",
                                    want_digest, ret_digest);
        if (want_size >= 0 && (size_t)want_size != len)
                return cc_error_set(err, EBADMSG, "manifest %s: size %zu, index says %lld", ref,
                                    len, (long long)want_size);
        return img__manifest_parse(ct, buf, len, ret, err);
}

/* A registry client for ref's repository on `host`, with creds ("user:password" or NULL). */
static int open_registry(const struct img_pull_opts *o, const struct img_ref *ref, const char *host,
                         const char *creds, struct img_registry **ret, struct cc_error **err)
{
        _cleanup_free_ char *user = NULL;
        const char *pass = NULL;
        if (creds) {
                user = strdup(creds);
                if (!user)
                        return cc_error_set(err, ENOMEM, "out of memory");
                char *c = strchr(user, ':');
                if (c) {
                        *c = 0;
                        pass = c + 1;
                }
        }
        struct img_registry_conf rc = {
                .host = host,
                .repo = ref->repo,
                .insecure = host_insecure(o, host),
                .ca_file = o->ca_file,
                .user = user,
                .password = pass,
                .retries = o->retries,
                .stall_timeout_ms = o->stall_timeout_ms,
                .connect_timeout_ms = o->connect_timeout_ms,
        };
        int r = img__registry_new(&rc, ret, err);
        if (user)
                OPENSSL_cleanse(user, strlen(user));
        return r;
}

/*
 * The manifest step: the manifest ref names, through nested indexes (OCI allows them; at most
 * a few levels) to the platform's manifest. mdigest gets the platform manifest's digest,
 * index_digest the top index's ("" when the image has none).
 */
static int resolve_manifest(struct img_registry *reg, const struct img_pull_opts *o,
                            const struct img_ref *ref, struct img_manifest **ret, char mdigest[72],
                            char index_digest[72], struct cc_error **err)
{
        _cleanup_(img__manifest_freep) struct img_manifest *m = NULL;
        int r = fetch_manifest(reg, o, ref->digest ? ref->digest : ref->tag, ref->digest, -1, &m,
                               mdigest, err);
        if (r < 0)
                return r;
        index_digest[0] = '\0';
        if (m->is_index)
                memcpy(index_digest, mdigest, 72);
        for (int depth = 0; m->is_index; depth++) {
                const struct img_descriptor *d;
                if (depth > 3)
                        return cc_error_set(err, ELOOP, "index nesting too deep");
                r = img__index_select(m, o->os ? o->os : "linux", o->arch ? o->arch : BUILD_ARCH,
                                      o->variant, &d, err);
                if (r < 0)
                        return r;
                _cleanup_free_ char *dg = strdup(d->digest);
                int64_t size = d->size;
                if (!dg)
                        return cc_error_set(err, ENOMEM, "out of memory");
                struct img_manifest *sub = NULL;
                r = fetch_manifest(reg, o, dg, dg, size, &sub, mdigest, err);
                if (r < 0)
                        return r;
                img__manifest_free(m);
                m = sub;
        }
        *ret = TAKE_PTR(m);
        return 0;
}

/*
 * The config step: small, fetched whole, verified against the manifest before it is parsed
 * into p->config; one diff_id per layer. p->config_json keeps the bytes.
 */
static int fetch_config(struct img_registry *reg, const struct img_pull_opts *o,
                        const struct img_manifest *m, struct img_pulled *p, char ***ret_diff_ids,
                        struct cc_error **err)
{
        if ((uint64_t)m->config.size > o->max_config_bytes)
                return cc_error_set(err, EFBIG, "config %s: %lld bytes exceeds the limit",
                                    m->config.digest, (long long)m->config.size);
        _cleanup_free_ char *cbuf = NULL;
        size_t clen;
        int r = img__registry_get(reg, "blobs", m->config.digest, NULL, o->max_config_bytes, &cbuf,
                                  &clen, NULL, err);
        if (r < 0)
                return cc_error_wrap(err, r, "config");
        char cdigest[72];
        img__digest_buf(cbuf, clen, cdigest);
        if (strcmp(cdigest, m->config.digest) || clen != (size_t)m->config.size)
                return cc_error_set(err, EBADMSG, "config %s: digest or size mismatch",
                                    m->config.digest);
        _cleanup_strv_ char **diff_ids = NULL;
        r = img__config_parse(cbuf, clen, &p->config, &diff_ids, err);
        if (r < 0)
                return r;
        if (p->config.os && strcmp(p->config.os, "linux"))
                return cc_error_set(err, EOPNOTSUPP, "image is for os '%s', not linux",
                                    p->config.os);
        if (img__strv_len(diff_ids) != m->n_layers)
                return cc_error_set(err, EBADMSG, "config lists %zu diff_ids for %zu layers",
                                    img__strv_len(diff_ids), m->n_layers);
        if (!(p->config_digest = strdup(cdigest)))
                return cc_error_set(err, ENOMEM, "out of memory");
        p->config_json = TAKE_PTR(cbuf);
        p->config_json_len = clen;
        *ret_diff_ids = TAKE_PTR(diff_ids);
        return 0;
}

/* Names what the pull makes: the image, its digests, one store directory per layer. */
static int pulled_names(struct img_pulled *p, const struct img_pull_opts *o,
                        const struct img_ref *ref, const struct img_manifest *m,
                        const char *mdigest, struct cc_error **err)
{
        p->n_layers = m->n_layers;
        p->layer_dirs = calloc(m->n_layers + 1, sizeof(char *));
        p->layer_digests = calloc(m->n_layers + 1, sizeof(char *));
        p->ref = img__ref_string(ref);
        p->manifest_digest = strdup(mdigest);
        if (!p->layer_dirs || !p->layer_digests || !p->ref || !p->manifest_digest)
                return cc_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < m->n_layers; i++) {
                if (asprintf(&p->layer_dirs[i], "%s/layers/sha256/%s", o->store_dir,
                             m->layers[i].digest + 7) < 0 ||
                    !(p->layer_digests[i] = strdup(m->layers[i].digest)))
                        return cc_error_set(err, ENOMEM, "out of memory");
        }
        return 0;
}

static void pool_done(struct pool *pool)
{
        for (size_t i = 0; pool->errs && i < pool->n; i++)
                cc_error_free(pool->errs[i]);
        free(pool->jobs);
        free(pool->errs);
        free(pool->rcs);
}

/*
 * The layer step: a pool of threads, each pulling whole layers; the first failure cancels
 * all, and the error reported is the root cause (the first failure that was not a
 * cancellation). The layers' bytes and timings are added to p.
 */
static int pull_layers(struct img_registry *reg, const struct img_pull_opts *o,
                       const struct img_manifest *m, char **diff_ids, struct img_pulled *p,
                       struct cc_error **err)
{
        uint64_t bytes = 0, inodes = 0;
        struct img_limits lim = {.max_bytes = o->max_image_bytes,
                                 .max_inodes = o->max_inodes,
                                 .min_free = o->min_free_bytes,
                                 .bytes = &bytes,
                                 .inodes = &inodes};
        _cleanup_(pool_done) struct pool pool = {.n = m->n_layers};
        pool.jobs = calloc(m->n_layers + 1, sizeof(*pool.jobs));
        pool.errs = calloc(m->n_layers + 1, sizeof(*pool.errs));
        pool.rcs = calloc(m->n_layers + 1, sizeof(int));
        if (!pool.jobs || !pool.errs || !pool.rcs)
                return cc_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < m->n_layers; i++)
                pool.jobs[i] = (struct img_layer_job){
                        .reg = reg,
                        .desc = &m->layers[i],
                        .diff_id = diff_ids[i],
                        .store_dir = o->store_dir,
                        .opts = o,
                        .limits = &lim,
                        .index = (unsigned)i,
                        .n_layers = (unsigned)m->n_layers,
                        .abort = &pool.abort,
                };
        size_t nthreads = CC_MIN((size_t)o->max_parallel_layers, m->n_layers);
        pthread_t th[64];
        size_t started = 0;
        for (; started < nthreads && started < CC_ARRAY_SIZE(th); started++)
                if (pthread_create(&th[started], NULL, worker, &pool) != 0)
                        break;
        if (started == 0 && m->n_layers > 0)
                worker(&pool);
        for (size_t i = 0; i < started; i++)
                pthread_join(th[i], NULL);
        int r = 0;
        for (int round = 0; round < 2 && r == 0; round++)
                for (size_t i = 0; i < m->n_layers; i++) {
                        if (pool.rcs[i] < 0 && (round == 1 || pool.rcs[i] != -ECANCELED)) {
                                r = pool.rcs[i];
                                cc_error_set(err, -r, "%s", cc_error_message(pool.errs[i]));
                                break;
                        }
                }
        for (size_t i = 0; i < m->n_layers; i++) {
                const struct img_layer_job *j = &pool.jobs[i];
                p->bytes_fetched += j->fetched;
                p->ns.network += j->ns_network;
                p->ns.digest += j->ns_digest;
                p->ns.decrypt += j->ns_decrypt;
                p->ns.inflate += j->ns_inflate;
                uint64_t known = j->ns_network + j->ns_digest + j->ns_decrypt + j->ns_inflate;
                p->ns.extract += j->ns_total > known ? j->ns_total - known : 0;
        }
        return r;
}

/* One pull from one host: manifest (and the signature policy on it), config, layers. */
static int pull_from(const struct img_pull_opts *o, const struct img_ref *ref, const char *host,
                     const char *creds, const struct sigcheck *sc, struct img_pulled **ret,
                     struct cc_error **err)
{
        _cleanup_(img__registry_freep) struct img_registry *reg = NULL;
        int r = open_registry(o, ref, host, creds, &reg, err);
        if (r < 0)
                return r;
        /* A reference pinned to a digest (CRI's tag@digest): its signatures are read while the
         * manifest is fetched, and used once the manifest is known to be that digest's. */
        _cleanup_(img__sig_prefetch_end) struct img_sigsrc_ctx sctx = {
                .rd = sc->rd, .reg = reg, .ref = sc->ref};
        if (sc->policy && ref->digest)
                img__sig_prefetch_start(&sctx, sc->policy, ref->digest);
        _cleanup_(img__manifest_freep) struct img_manifest *m = NULL;
        char mdigest[72], index_digest[72];
        if ((r = resolve_manifest(reg, o, ref, &m, mdigest, index_digest, err)) < 0)
                return r;
        cc_log_debug("image %s/%s: manifest %s, %zu layers", host, ref->repo, mdigest, m->n_layers);
        uint64_t t_verify = img__now_ns();
        if ((r = signature_check(sc, &sctx, mdigest, *index_digest ? index_digest : NULL, err)) < 0)
                return r;
        img__sig_prefetch_end(&sctx);
        t_verify = sc->policy ? img__now_ns() - t_verify : 0;

        _cleanup_(img_pulled_freep) struct img_pulled *p = calloc(1, sizeof(*p));
        if (!p)
                return cc_error_set(err, ENOMEM, "out of memory");
        _cleanup_strv_ char **diff_ids = NULL;
        if ((r = fetch_config(reg, o, m, p, &diff_ids, err)) < 0)
                return r;
        if ((r = pulled_names(p, o, ref, m, mdigest, err)) < 0)
                return r;
        if ((r = pull_layers(reg, o, m, diff_ids, p, err)) < 0)
                return r;
        p->ns.verify = t_verify;
        *ret = TAKE_PTR(p);
        return 0;
}

static int pull(const struct img_pull_opts *opts, const char *refstr, struct img_pulled **ret,
                struct cc_error **err);

struct img_sig_prepared *img_sig_prepared_free(struct img_sig_prepared *p)
{
        if (!p)
                return NULL;
        img__policy_free(p->policy);
        img__regsd_free(p->rd);
        free(p);
        return NULL;
}

/* The policy and registries.d of opts (policy_file set). */
static int sig_load(const struct img_pull_opts *o, struct img_sig_prepared **ret,
                    struct cc_error **err)
{
        _cleanup_(img_sig_prepared_freep) struct img_sig_prepared *p = calloc(1, sizeof(*p));
        if (!p)
                return cc_error_set(err, ENOMEM, "out of memory");
        int r;
        if ((r = img__policy_load_uri(o->policy_file, o->keys, &p->policy, err)) < 0 ||
            (r = img__regsd_load(o->registries_d, &p->rd, err)) < 0)
                return cc_error_wrap(err, -r, "signature policy");
        cc_log_debug("signature policy %s (%s)", o->policy_file,
                     !strncmp(o->policy_file, "kbs://", 6) ? "resource from the key broker"
                                                           : "file");
        *ret = TAKE_PTR(p);
        return 0;
}

int img_sig_prepare(const struct img_pull_opts *opts, struct img_sig_prepared **ret,
                    struct cc_error **err)
{
        if (!opts || !opts->policy_file)
                return cc_error_set(err, EINVAL, "signature policy: none configured");
        img_prepare();
        _cleanup_(img_sig_prepared_freep) struct img_sig_prepared *p = NULL;
        int r = sig_load(opts, &p, err);
        if (r < 0)
                return r;
        img__policy_prepare(p->policy);
        *ret = TAKE_PTR(p);
        return 0;
}

/* Every error leaving the library names its errno's text ("... (Disk quota exceeded)"): the
 * agent's callers see a status code and this message only. */
int img_pull(const struct img_pull_opts *opts, const char *refstr, struct img_pulled **ret,
             struct cc_error **err)
{
        int r = pull(opts, refstr, ret, err);
        if (r < 0 && err)
                cc_error_add_errno_text(*err);
        return r;
}

static int pull(const struct img_pull_opts *opts, const char *refstr, struct img_pulled **ret,
                struct cc_error **err)
{
        if (!opts || cc_isempty(opts->store_dir) || opts->store_dir[0] != '/')
                return cc_error_set(err, EINVAL, "pull: store_dir must be an absolute path");
        struct img_pull_opts o = *opts;
        if (!o.max_parallel_layers) {
                /* CDH's default of 3, but no more threads than CPUs (at least 2, so that one
                 * layer's network wait overlaps another's unpacking): each layer thread is
                 * CPU-bound once bytes arrive (sha256 twice, inflate, file system). */
                long cpus = sysconf(_SC_NPROCESSORS_ONLN);
                o.max_parallel_layers = (unsigned)CC_MAX(2L, CC_MIN(3L, cpus));
        }
        if (!o.retries)
                o.retries = 5;
        if (!o.stall_timeout_ms)
                o.stall_timeout_ms = 30000;
        if (!o.connect_timeout_ms)
                o.connect_timeout_ms = 10000;
        if (!o.max_manifest_bytes)
                o.max_manifest_bytes = 4 << 20;
        if (!o.max_config_bytes)
                o.max_config_bytes = 8 << 20;
        if (!o.max_layer_bytes)
                o.max_layer_bytes = 16ULL << 30;
        if (!o.max_inodes)
                o.max_inodes = 1000000;
        if (!o.min_free_bytes)
                o.min_free_bytes = 16 << 20;

        struct img_ref ref;
        int r = img__ref_parse(refstr, &ref, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *layers = NULL, *staging = NULL, *creds = NULL;
        if (asprintf(&layers, "%s/layers/sha256", o.store_dir) < 0 ||
            asprintf(&staging, "%s/staging", o.store_dir) < 0) {
                img__ref_done(&ref);
                return cc_error_set(err, ENOMEM, "out of memory");
        }
        if ((r = cc_mkdir_p(layers, 0700)) < 0 || (r = cc_mkdir_p(staging, 0700)) < 0) {
                img__ref_done(&ref);
                return cc_error_set(err, -r, "layer store '%s'", o.store_dir);
        }
        if (!o.creds && (r = img__auth_creds(&o, ref.registry, &creds, err)) < 0) {
                img__ref_done(&ref);
                return r;
        }
        const char *cr = o.creds ? o.creds : creds;
        _cleanup_(img_sig_prepared_freep) struct img_sig_prepared *own = NULL;
        const struct img_sig_prepared *sp = o.sig_prepared;
        if (!sp && o.policy_file) {
                if ((r = sig_load(&o, &own, err)) < 0) {
                        img__ref_done(&ref);
                        return r;
                }
                sp = own;
        } else if (!sp) {
                static bool logged;
                if (!__atomic_exchange_n(&logged, true, __ATOMIC_RELAXED))
                        cc_log_info("no image signature policy configured: signatures not "
                                    "verified");
        }
        struct sigcheck sc = {
                .policy = sp ? sp->policy : NULL, .rd = sp ? sp->rd : NULL, .ref = refstr};
        r = -ENOENT;
        if (o.mirror) {
                /* A failed mirror is not the caller's error: log it and try the origin. The
                 * mirror is another host: it gets only the credentials auth.json has for it
                 * (never the origin's, nor the request's, which belong to the image's registry,
                 * as containerd scopes a CRI auth to its server address). */
                _cleanup_error_ struct cc_error *merr = NULL;
                _cleanup_free_ char *mcreds = NULL;
                if ((r = img__auth_creds(&o, o.mirror, &mcreds, &merr)) >= 0)
                        r = pull_from(&o, &ref, o.mirror, mcreds, &sc, ret, &merr);
                if (mcreds)
                        OPENSSL_cleanse(mcreds, strlen(mcreds));
                if (r < 0)
                        cc_log_debug("mirror %s: %s; trying %s", o.mirror, cc_error_message(merr),
                                     ref.registry);
        }
        if (r < 0)
                r = pull_from(&o, &ref, ref.registry, cr, &sc, ret, err);
        if (creds)
                OPENSSL_cleanse(creds, strlen(creds));
        img__ref_done(&ref);
        return r;
}

int img_rootfs_mount(const struct img_pulled *p, const char *upper, const char *work,
                     const char *target, unsigned flags, struct cc_error **err)
{
        if (!p || p->n_layers == 0)
                return cc_error_set(err, EINVAL, "rootfs: image has no layers");
        int r;
        if ((r = cc_mkdir_p(upper, 0755)) < 0 || (r = cc_mkdir_p(work, 0700)) < 0 ||
            (r = cc_mkdir_p(target, 0755)) < 0)
                return cc_error_set(err, -r, "rootfs: create upper/work/target");
        char opts[4096];
        size_t o = (size_t)snprintf(opts, sizeof(opts), "lowerdir=");
        for (size_t i = p->n_layers; i-- > 0;) {
                if (strpbrk(p->layer_dirs[i], ",:"))
                        return cc_error_set(err, EINVAL, "rootfs: layer path has ',' or ':'");
                o += (size_t)snprintf(opts + o, o < sizeof(opts) ? sizeof(opts) - o : 0, "%s%s",
                                      p->layer_dirs[i], i ? ":" : "");
        }
        o += (size_t)snprintf(opts + o, o < sizeof(opts) ? sizeof(opts) - o : 0,
                              ",upperdir=%s,workdir=%s%s", upper, work,
                              flags & IMG_PULL_USER_XATTR ? ",userxattr" : "");
        if (o >= sizeof(opts))
                return cc_error_set(err, E2BIG, "rootfs: overlay options exceed a page");
        if (mount("overlay", target, "overlay", 0, opts) < 0)
                return cc_error_set(err, errno, "rootfs: mount overlay on '%s'", target);
        return 0;
}
