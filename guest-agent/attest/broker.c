/*
 * The `kbs` key broker for the image pull (struct img_key_broker, guest-agent/image/image.h):
 * a layer whose key-provider annotation names `kbs:///repo/type/tag` gets that KEK from the
 * KBS after attestation (attestation-kbs.md 6.3), one attestation for all the layers of the
 * pull. Private keys for JWE recipients, and resources it holds, still come from the
 * offline_fs broker when one is configured too, so an image encrypted for both opens either
 * way. Keys stay in this process's memory, which is the guest's.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cc/cleanup.h"
#include "cc/fileio.h"
#include "cc/log.h"

#include "guest-agent/attest/kbc.h"
#include "guest-agent/image/image.h"

/* The KEKs fetched during this pull: the layers of one image usually share one, and the
 * layer threads ask for it at once. Wiped when the broker goes. */
struct cached {
        char *uri;
        uint8_t *data;
        size_t len;
};

struct kbs_broker {
        struct kbc_client *client;
        struct img_key_broker *local; /* offline_fs, or NULL */
        char *url;
        pthread_mutex_t lock; /* the cache; held across a fetch so that one fetch serves all */
        struct cached *cache;
        size_t n_cache;
        /* The early attestation (cfg->attest_early): its thread, and its failure, which the
         * first resource request reports rather than attesting again (a KBS that hangs would
         * otherwise cost two timeouts). */
        pthread_t early;
        bool early_started;
        int early_r;
        char *early_msg;
        double early_ms;
};

static double mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Attests while the pull does its first steps (manifest, config, signatures), so that the first
 * resource request, which waits for the lock, finds a session and a token. The first TLS
 * handshake to the KBS (and the first use of libssl's pages in a fresh helper) is paid here. */
static void *early_attest(void *data)
{
        struct kbs_broker *b = data;
        _cleanup_error_ struct cc_error *err = NULL;
        pthread_mutex_lock(&b->lock);
        double t0 = mono_ms();
        b->early_r = kbc_client_attest(b->client, &err);
        b->early_ms = mono_ms() - t0;
        if (b->early_r < 0)
                b->early_msg = strdup(err ? cc_error_message(err) : strerror(-b->early_r));
        /* Read before a resource request, waiting for the lock, resets them. */
        struct kbc_timings t;
        kbc_client_timings(b->client, &t);
        int r = b->early_r;
        pthread_mutex_unlock(&b->lock);
        if (r == 0) {
                cc_log_info("KBS %s: attested ahead of the first resource request in %.1f ms "
                            "(auth_ms=%.1f attest_ms=%.1f tls_ms=%.1f)",
                            b->url, b->early_ms, t.auth_ms, t.attest_ms, t.tls_ms);
        }
        return NULL;
}

static int kb_private_key(void *data, size_t n, const char **ret_pem, size_t *ret_len,
                          const char **ret_id)
{
        struct kbs_broker *b = data;
        if (!b->local || !b->local->private_key)
                return -ENOENT;
        return b->local->private_key(b->local->data, n, ret_pem, ret_len, ret_id);
}

static int kb_resource(void *data, const char *uri, uint8_t **ret, size_t *ret_len,
                       struct cc_error **err)
{
        struct kbs_broker *b = data;
        if (b->local && b->local->resource) {
                _cleanup_error_ struct cc_error *e = NULL;
                if (b->local->resource(b->local->data, uri, ret, ret_len, &e) == 0)
                        return 0;
        }
        pthread_mutex_lock(&b->lock);
        if (b->early_r < 0) {
                /* Once: later requests attest again by themselves. */
                int r = cc_error_set(err, -b->early_r, "%s",
                                     b->early_msg ? b->early_msg : "early attestation failed");
                b->early_r = 0;
                pthread_mutex_unlock(&b->lock);
                return r;
        }
        for (size_t i = 0; i < b->n_cache; i++)
                if (!strcmp(b->cache[i].uri, uri)) {
                        *ret = malloc(b->cache[i].len ? b->cache[i].len : 1);
                        if (*ret)
                                memcpy(*ret, b->cache[i].data, b->cache[i].len);
                        *ret_len = b->cache[i].len;
                        pthread_mutex_unlock(&b->lock);
                        return *ret ? 0 : -ENOMEM;
                }
        int r = kbc_client_get_resource(b->client, uri, ret, ret_len, err);
        if (r == 0) {
                struct cached *nc = realloc(b->cache, (b->n_cache + 1) * sizeof(*nc));
                uint8_t *copy = malloc(*ret_len ? *ret_len : 1);
                char *u = strdup(uri);
                if (nc)
                        b->cache = nc;
                if (nc && copy && u) {
                        memcpy(copy, *ret, *ret_len);
                        b->cache[b->n_cache++] = (struct cached){u, copy, *ret_len};
                } else {
                        free(copy);
                        free(u);
                }
        }
        pthread_mutex_unlock(&b->lock);
        if (r < 0)
                return r;
        struct kbc_timings t;
        kbc_client_timings(b->client, &t);
        cc_log_info("key %s from the KBS %s: %zu bytes auth_ms=%.1f attest_ms=%.1f "
                    "resource_ms=%.1f decrypt_ms=%.1f attestations=%u early_attest_ms=%.1f "
                    "tls_ms=%.1f",
                    uri, b->url, *ret_len, t.auth_ms, t.attest_ms, t.resource_ms, t.decrypt_ms,
                    t.attestations, b->early_ms, t.tls_ms);
        return 0;
}

static void kb_free(void *data)
{
        struct kbs_broker *b = data;
        if (!b)
                return;
        if (b->early_started)
                pthread_join(b->early, NULL);
        free(b->early_msg);
        kbc_client_free(b->client);
        img_key_broker_free(b->local);
        for (size_t i = 0; i < b->n_cache; i++) {
                OPENSSL_cleanse(b->cache[i].data, b->cache[i].len);
                free(b->cache[i].data);
                free(b->cache[i].uri);
        }
        free(b->cache);
        pthread_mutex_destroy(&b->lock);
        free(b->url);
        free(b);
}

int kbc_key_broker(const struct kbc_client_config *cfg, struct img_key_broker *local,
                   struct img_key_broker **ret, struct cc_error **err)
{
        struct kbs_broker *b = calloc(1, sizeof(*b));
        struct img_key_broker *kb = calloc(1, sizeof(*kb));
        if (!b || !kb || !(b->url = strdup(cfg->url))) {
                free(b);
                free(kb);
                return -ENOMEM;
        }
        int r = kbc_client_new(cfg, &b->client, err);
        if (r < 0) {
                kb_free(b);
                free(kb);
                return r;
        }
        b->local = local;
        pthread_mutex_init(&b->lock, NULL);
        if (cfg->attest_early)
                b->early_started = pthread_create(&b->early, NULL, early_attest, b) == 0;
        *kb = (struct img_key_broker){
                .name = "kbs",
                .data = b,
                .private_key = kb_private_key,
                .resource = kb_resource,
                .free = kb_free,
        };
        *ret = kb;
        return 0;
}

/* The value of the last non-empty agent.image_registry_auth= word of a kernel command line
 * (*ret NULL when there is none). */
static int cmdline_registry_auth(const char *cmdline, char **ret)
{
        static const char key[] = "agent.image_registry_auth=";
        const char *val = NULL;
        size_t vl = 0;
        for (const char *p = cmdline; *p;) {
                p += strspn(p, " \t\n");
                size_t wl = strcspn(p, " \t\n");
                if (wl > sizeof(key) - 1 && !strncmp(p, key, sizeof(key) - 1)) {
                        val = p + sizeof(key) - 1;
                        vl = wl - (sizeof(key) - 1);
                }
                p += wl;
        }
        *ret = val ? strndup(val, vl) : NULL;
        return val && !*ret ? -ENOMEM : 0;
}

int kbc_registry_credentials(const struct kbc_initdata *d, const char *cmdline,
                             const struct img_key_broker *keys, char **ret, size_t *ret_len,
                             char **ret_uri, struct cc_error **err)
{
        *ret = *ret_uri = NULL;
        *ret_len = 0;
        _cleanup_free_ char *uri = NULL;
        int r = d ? kbc_initdata_cdh_get(d, "image.authenticated_registry_credentials_uri", &uri,
                                         err)
                  : 0;
        if (r == 0 && !uri && cmdline)
                r = cmdline_registry_auth(cmdline, &uri);
        if (r < 0 || !uri)
                return r;
        uint8_t *buf = NULL;
        size_t len = 0;
        if (!strncmp(uri, "kbs://", 6)) {
                if (!keys || !keys->resource)
                        return cc_error_set(
                                err, ENOENT,
                                "registry credentials %s: no KBS is configured (initdata "
                                "cdh.toml [kbc] url or aa.toml [token_configs.kbs] url)",
                                uri);
                r = keys->resource(keys->data, uri, &buf, &len, err);
        } else if (!strncmp(uri, "file:///", 8)) {
                /* A file of the guest image: initdata is measured, so naming it is the pod
                 * owner's choice, not the host's. */
                char *text = NULL;
                r = cc_read_file(uri + 7, KBC_AUTH_JSON_MAX, &text, &len, err);
                buf = (uint8_t *)text;
        } else {
                return cc_error_set(err, EINVAL,
                                    "registry credentials '%.128s': neither kbs:/// nor file:///",
                                    uri);
        }
        if (r < 0)
                return cc_error_wrap(err, -r, "registry credentials %s", uri);
        if (len > KBC_AUTH_JSON_MAX || memchr(buf, '\0', len)) {
                OPENSSL_cleanse(buf, len);
                free(buf);
                return cc_error_set(err, EINVAL,
                                    "registry credentials %s: not a containers-auth.json document",
                                    uri);
        }
        /* NUL-terminated for the JSON parser's callers; the length excludes it. */
        char *text = realloc(buf, len + 1);
        if (!text) {
                OPENSSL_cleanse(buf, len);
                free(buf);
                return -ENOMEM;
        }
        text[len] = '\0';
        cc_log_info("registry credentials from %s: %zu bytes (kept in memory)", uri, len);
        *ret = text;
        *ret_len = len;
        *ret_uri = TAKE_PTR(uri);
        return 0;
}
