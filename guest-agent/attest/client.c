/*
 * The KBS protocol client (Trustee's RCAR, protocol 0.4.0; attestation-kbs.md 1 and 8.1), on
 * libcurl.
 *
 *   POST /kbs/v0/auth     {"version":"0.4.0","tee":..,"extra-params":{..}} -> challenge + cookie
 *   POST /kbs/v0/attest   runtime data (the challenge nonce, the TEE key's JWK), evidence that
 *                         binds H(JCS(runtime data + "additional-evidence")), initdata -> token
 *   GET  /kbs/v0/resource/<repo>/<type>/<tag>   with the session cookie -> JWE for the TEE key
 *
 * One attestation serves every resource of the pod until the KBS answers 401 (its session
 * expired: default 5 minutes) or the token's exp passed; then the client attests again with a
 * new key, once per request. Transport failures (KBS down, connection reset) are retried a
 * bounded number of times. Every failure names the KBS URL, the step, and the KBS's own error
 * type and detail.
 *
 * The KBS's bytes are hostile: bodies are bounded (max_body), JSON is parsed whole, the
 * cookie and token are length-checked, and the JWE is decrypted only with the key of this
 * attestation.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/json.h"
#include "cc/log.h"

#include "guest-agent/attest/kbc-internal.h"

#define PROTOCOL_VERSION "0.4.0"
#define ERROR_PREFIX     "https://github.com/confidential-containers/kbs/errors/"
#define TRANSPORT_TRIES  3
#define COOKIE_MAX       128

struct kbc_client {
        /* One request at a time: the image pull asks from several layer threads at once, and
         * an attestation (session, key) must not change under a request that uses it. */
        pthread_mutex_t lock;
        char *url;
        char *cert_pem;
        /* One libcurl handle for the client's life: its connection cache keeps the TLS session
         * to the KBS open from auth through attest to the resources (one handshake, not three:
         * a handshake costs tens of ms in a TCG guest). */
        CURL *h;
        enum kbc_tee tee;
        struct kbc_attester_paths paths;
        enum kbc_key_alg key_alg;
        char *initdata; /* the exact TOML bytes sent as init-data, or NULL */
        size_t initdata_len;
        unsigned timeout_ms, max_body;
        /* The attestation in force (none: session NULL). */
        char *session;
        struct kbc_tee_key *key;
        int64_t token_exp; /* seconds since the epoch; 0 = none given */
        struct kbc_timings t;
};

static void json_putp(struct json_object **p)
{
        json_object_put(*p);
}

static double now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A whole buffer as one JSON value, strictly (libcc's parser: RFC 8259, UTF-8, nothing after
 * the value); NULL if it is not exactly that. */
static struct json_object *parse_exact(const void *data, size_t len)
{
        struct json_object *o = NULL;
        return cc_json_parse("KBS answer", data, len, 32, &o, NULL) == 0 ? o : NULL;
}

int kbc_resource_path(const char *uri, char *out, size_t n)
{
        const char *p = uri;
        if (!strncmp(p, "kbs://", 6)) {
                /* The authority is ignored, as the guest components do (section 5). */
                p = strchr(p + 6, '/');
                if (!p)
                        return -EINVAL;
                p++;
        } else if (strstr(p, "://")) {
                return -EINVAL;
        }
        /* Three segments, each ^[a-zA-Z0-9_-]+[a-zA-Z0-9_.-]*$ (Trustee's ResourceDesc). */
        size_t len = strlen(p);
        if (len == 0 || len >= n)
                return -EINVAL;
        unsigned segs = 1;
        bool start = true;
        for (size_t i = 0; i < len; i++) {
                char c = p[i];
                if (c == '/') {
                        if (start)
                                return -EINVAL;
                        segs++;
                        start = true;
                        continue;
                }
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '_' || c == '-' || (!start && c == '.');
                if (!ok)
                        return -EINVAL;
                start = false;
        }
        if (start || segs != 3)
                return -EINVAL;
        memcpy(out, p, len + 1);
        return 0;
}

/* libcurl's global state, once per process (the pull helper may also use it for registries,
 * which initialises it the same way). */
static void global_init(void)
{
        curl_global_init(CURL_GLOBAL_DEFAULT);
}

int kbc_client_new(const struct kbc_client_config *cfg, struct kbc_client **ret,
                   struct cc_error **err)
{
        if (!cfg->url || (strncmp(cfg->url, "http://", 7) && strncmp(cfg->url, "https://", 8)))
                return cc_error_set(err, EINVAL, "KBS URL '%s' is not http:// or https://",
                                    cfg->url ? cfg->url : "");
        if (cfg->tee == KBC_TEE_SAMPLE && !cfg->sample_in_tee &&
            kbc_attester_detect(&cfg->paths) != KBC_TEE_SAMPLE)
                return cc_error_set(err, EPERM,
                                    "sample evidence is refused in a TEE guest (%s device present)",
                                    kbc_tee_name(kbc_attester_detect(&cfg->paths)));
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        (void)pthread_once(&once, global_init);
        _cleanup_(kbc_client_freep) struct kbc_client *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        size_t ul = strlen(cfg->url);
        while (ul > 0 && cfg->url[ul - 1] == '/')
                ul--;
        c->url = strndup(cfg->url, ul);
        c->cert_pem = cfg->cert_pem ? strdup(cfg->cert_pem) : NULL;
        if (!c->url || (cfg->cert_pem && !c->cert_pem))
                return -ENOMEM;
        c->tee = cfg->tee;
        c->paths = cfg->paths;
        c->key_alg = cfg->key_alg;
        if (cfg->initdata) {
                c->initdata = malloc(cfg->initdata->toml_len + 1);
                if (!c->initdata)
                        return -ENOMEM;
                memcpy(c->initdata, cfg->initdata->toml, cfg->initdata->toml_len + 1);
                c->initdata_len = cfg->initdata->toml_len;
        }
        pthread_mutex_init(&c->lock, NULL);
        c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : KBC_TIMEOUT_MS_DEFAULT;
        c->max_body = cfg->max_body ? cfg->max_body : 4u << 20;
        *ret = TAKE_PTR(c);
        return 0;
}

static void forget(struct kbc_client *c)
{
        free(c->session);
        c->session = NULL;
        c->key = kbc_tee_key_free(c->key);
        c->token_exp = 0;
}

struct kbc_client *kbc_client_free(struct kbc_client *c)
{
        if (c) {
                forget(c);
                free(c->url);
                free(c->cert_pem);
                free(c->initdata);
                if (c->h)
                        curl_easy_cleanup(c->h);
                pthread_mutex_destroy(&c->lock);
                free(c);
        }
        return NULL;
}

void kbc_client_timings(struct kbc_client *c, struct kbc_timings *ret)
{
        pthread_mutex_lock(&c->lock);
        *ret = c->t;
        pthread_mutex_unlock(&c->lock);
}

/* ---- HTTP ------------------------------------------------------------------------------- */

struct response {
        long status;
        char *body;
        size_t len, max;
        bool too_big;
        char cookie[COOKIE_MAX + 1];
};

static void response_done(struct response *r)
{
        free(r->body);
        r->body = NULL;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
        struct response *r = ud;
        size_t add = size * n;
        if (r->len + add > r->max) {
                r->too_big = true;
                return 0;
        }
        char *b = realloc(r->body, r->len + add + 1);
        if (!b)
                return 0;
        memcpy(b + r->len, p, add);
        r->body = b;
        r->len += add;
        r->body[r->len] = '\0';
        return add;
}

/* Set-Cookie: kbs-session-id=<32 hex>; Expires=... */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
        struct response *r = ud;
        size_t len = size * n;
        static const char h[] = "set-cookie:";
        if (len > sizeof(h) - 1 && !strncasecmp(p, h, sizeof(h) - 1)) {
                const char *v = p + sizeof(h) - 1, *end = p + len;
                while (v < end && (*v == ' ' || *v == '\t'))
                        v++;
                static const char name[] = "kbs-session-id=";
                if ((size_t)(end - v) > sizeof(name) - 1 && !strncmp(v, name, sizeof(name) - 1)) {
                        v += sizeof(name) - 1;
                        size_t k = 0;
                        while (v + k < end && v[k] != ';' && v[k] != '\r' && v[k] != '\n' &&
                               k < COOKIE_MAX)
                                k++;
                        memcpy(r->cookie, v, k);
                        r->cookie[k] = '\0';
                }
        }
        return len;
}

static void slist_freep(struct curl_slist **l)
{
        curl_slist_free_all(*l);
}

/* One request; transport failures are retried. 0 with *resp filled (any HTTP status). */
static int http(struct kbc_client *c, const char *step, const char *method, const char *path,
                const char *body, struct response *resp, struct cc_error **err)
{
        _cleanup_free_ char *url = NULL;
        if (asprintf(&url, "%s/kbs/v0/%s", c->url, path) < 0)
                return -ENOMEM;
        CURLcode last = CURLE_OK;
        char errbuf[CURL_ERROR_SIZE] = "";
        /* timeout_ms bounds the step, retries included: a KBS that hangs fails the step once,
         * well within a runtime's create_container_timeout, not once per try. */
        const double deadline = now_ms() + c->timeout_ms;
        for (int attempt = 1; attempt <= TRANSPORT_TRIES; attempt++) {
                long left = (long)(deadline - now_ms());
                if (left <= 0) {
                        last = CURLE_OPERATION_TIMEDOUT;
                        break;
                }
                free(resp->body);
                *resp = (struct response){.max = c->max_body};
                if (!c->h && !(c->h = curl_easy_init()))
                        return -ENOMEM;
                CURL *h = c->h;
                curl_easy_reset(h); /* options only: the connection cache stays */
                _cleanup_(slist_freep) struct curl_slist *hdrs = NULL;
                char cookie[COOKIE_MAX + 32];
                hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
                if (c->session) {
                        snprintf(cookie, sizeof(cookie), "Cookie: kbs-session-id=%s", c->session);
                        hdrs = curl_slist_append(hdrs, cookie);
                }
                if (!hdrs)
                        return -ENOMEM;
                curl_easy_setopt(h, CURLOPT_URL, url);
                curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
                curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
                curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
                curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, left);
                curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, left < 10000 ? left : 10000L);
                curl_easy_setopt(h, CURLOPT_USERAGENT,
                                 "cc-kbc/0.1 (attestation-agent-kbs-client compatible)");
                curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
                curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
                curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
                curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
                curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
                curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
                if (c->cert_pem) {
                        struct curl_blob blob = {.data = c->cert_pem,
                                                 .len = strlen(c->cert_pem),
                                                 .flags = CURL_BLOB_COPY};
                        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
                }
                if (!strcmp(method, "POST")) {
                        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
                        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
                }
                errbuf[0] = '\0';
                last = curl_easy_perform(h);
                if (last == CURLE_OK) {
                        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
                        /* A new connection's TLS handshake (0 on a reused one): the largest
                         * part of the first auth in a TCG guest. */
                        curl_off_t conn = 0, tls = 0;
                        curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &conn);
                        curl_easy_getinfo(h, CURLINFO_APPCONNECT_TIME_T, &tls);
                        if (tls > conn)
                                c->t.tls_ms += (double)(tls - conn) / 1e3;
                        return 0;
                }
                if (resp->too_big)
                        return cc_error_set(err, EMSGSIZE,
                                            "KBS %s: %s: the answer is larger than %u bytes",
                                            c->url, step, c->max_body);
                /* Only failures that another try can cure. */
                if (last != CURLE_COULDNT_CONNECT && last != CURLE_OPERATION_TIMEDOUT &&
                    last != CURLE_RECV_ERROR && last != CURLE_SEND_ERROR &&
                    last != CURLE_GOT_NOTHING)
                        break;
                /* A connection that failed is not reused. */
                curl_easy_cleanup(c->h);
                c->h = NULL;
                if (attempt < TRANSPORT_TRIES)
                        usleep(500 * 1000);
        }
        int e = last == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT
                : last == CURLE_COULDNT_CONNECT  ? ECONNREFUSED
                                                 : EPROTO;
        return cc_error_set(err, e, "KBS %s: %s: %s %s: %s", c->url, step, method, path,
                            errbuf[0] ? errbuf : curl_easy_strerror(last));
}

void kbc__error_body(const char *body, size_t len, char type[96], char detail[512])
{
        type[0] = detail[0] = '\0';
        _cleanup_(json_putp) struct json_object *o = body ? parse_exact(body, len) : NULL;
        struct json_object *v;
        if (o && json_object_object_get_ex(o, "type", &v) &&
            json_object_is_type(v, json_type_string)) {
                const char *t = json_object_get_string(v);
                if (!strncmp(t, ERROR_PREFIX, strlen(ERROR_PREFIX)))
                        t += strlen(ERROR_PREFIX);
                snprintf(type, 96, "%s", t);
        }
        if (o && json_object_object_get_ex(o, "detail", &v) &&
            json_object_is_type(v, json_type_string))
                snprintf(detail, 512, "%s", json_object_get_string(v));
        /* The KBS's text goes into our messages: keep it printable. */
        for (char *p = type; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        *p = '?';
        for (char *p = detail; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        *p = '?';
}

/* An error answer: "HTTP 401 PolicyDeny: Access denied by policy" (type without its prefix). */
static int kbs_error(struct kbc_client *c, const char *step, const struct response *r,
                     struct cc_error **err)
{
        char type[96], detail[512];
        kbc__error_body(r->body, r->len, type, detail);
        int e = r->status == 404 ? ENOENT : r->status == 401 ? EACCES : EPROTO;
        if (type[0])
                return cc_error_set(err, e, "KBS %s: %s: HTTP %ld %s: %s", c->url, step, r->status,
                                    type, detail);
        return cc_error_set(err, e, "KBS %s: %s: HTTP %ld (no KBS error body)", c->url, step,
                            r->status);
}

/* ---- RCAR ------------------------------------------------------------------------------- */

static const char *get_str(struct json_object *o, const char *k)
{
        struct json_object *v;
        if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static char *to_json(struct json_object *o)
{
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE);
        return s ? strdup(s) : NULL;
}

int kbc__parse_token(const char *body, size_t len, int64_t *exp)
{
        _cleanup_(json_putp) struct json_object *tok = parse_exact(body ? body : "", len);
        const char *token = tok ? get_str(tok, "token") : NULL;
        if (!token)
                return -EPROTO;
        /* exp (seconds), read without checking the signature, as the reference client does
         * (1.5): it only decides when to attest again. */
        *exp = 0;
        const char *a = strchr(token, '.'), *b = a ? strchr(a + 1, '.') : NULL;
        if (!b)
                return -EPROTO;
        _cleanup_free_ uint8_t *payload = NULL;
        size_t pl = 0;
        if (cc_b64_decode(a + 1, (size_t)(b - a - 1), true, &payload, &pl) < 0)
                return -EPROTO;
        _cleanup_(json_putp) struct json_object *o = parse_exact((const char *)payload, pl);
        struct json_object *v;
        if (!o || !json_object_is_type(o, json_type_object))
                return -EPROTO;
        if (json_object_object_get_ex(o, "exp", &v) && json_object_is_type(v, json_type_int))
                *exp = json_object_get_int64(v);
        return 0;
}

int kbc__parse_challenge(const char *body, size_t len, char **nonce, enum kbc_hash *hash)
{
        _cleanup_(json_putp) struct json_object *chal = parse_exact(body ? body : "", len);
        const char *n = chal ? get_str(chal, "nonce") : NULL;
        if (!n || !*n || strlen(n) > 4096)
                return -EPROTO;
        /* The hash: the challenge's selected-hash-algorithm, else sha384 (1.3). */
        *hash = KBC_SHA384;
        struct json_object *ep;
        if (json_object_object_get_ex(chal, "extra-params", &ep) &&
            json_object_is_type(ep, json_type_object)) {
                const char *sel = get_str(ep, "selected-hash-algorithm");
                if (sel && kbc_hash_from_name(sel, hash) < 0)
                        return -EOPNOTSUPP;
        }
        *nonce = strdup(n);
        return *nonce ? 0 : -ENOMEM;
}

static int attest(struct kbc_client *c, struct cc_error **err)
{
        forget(c);
        double t0 = now_ms();
        /* 1. auth */
        _cleanup_(json_putp) struct json_object *req = json_object_new_object();
        struct json_object *extra = json_object_new_object(), *algs = json_object_new_array();
        if (!req || !extra || !algs) {
                json_object_put(extra);
                json_object_put(algs);
                return -ENOMEM;
        }
        json_object_array_add(algs, json_object_new_string("sha384"));
        json_object_object_add(extra, "supported-hash-algorithms", algs);
        json_object_object_add(req, "version", json_object_new_string(PROTOCOL_VERSION));
        json_object_object_add(req, "tee", json_object_new_string(kbc_tee_name(c->tee)));
        json_object_object_add(req, "extra-params", extra);
        _cleanup_free_ char *body = to_json(req);
        if (!body)
                return -ENOMEM;
        _cleanup_(response_done) struct response r = {0};
        int k = http(c, "auth", "POST", "auth", body, &r, err);
        if (k < 0)
                return k;
        if (r.status != 200)
                return kbs_error(c, "auth", &r, err);
        _cleanup_free_ char *nonce = NULL;
        enum kbc_hash hash;
        k = kbc__parse_challenge(r.body, r.len, &nonce, &hash);
        if (k == -EOPNOTSUPP)
                return cc_error_set(err, EPROTO,
                                    "KBS %s: auth: the challenge selects an unknown hash", c->url);
        if (k < 0)
                return cc_error_set(err, EPROTO, "KBS %s: auth: the challenge has no nonce",
                                    c->url);
        size_t cl = strlen(r.cookie);
        if (cl == 0 || cl >= COOKIE_MAX)
                return cc_error_set(err, EPROTO, "KBS %s: auth: no kbs-session-id cookie", c->url);
        for (size_t i = 0; i < cl; i++)
                if (!((r.cookie[i] >= '0' && r.cookie[i] <= '9') ||
                      (r.cookie[i] >= 'a' && r.cookie[i] <= 'z') ||
                      (r.cookie[i] >= 'A' && r.cookie[i] <= 'Z') || r.cookie[i] == '-'))
                        return cc_error_set(err, EPROTO, "KBS %s: auth: a malformed session cookie",
                                            c->url);
        c->session = strdup(r.cookie);
        if (!c->session)
                return -ENOMEM;
        double t1 = now_ms();
        c->t.auth_ms = t1 - t0;

        /* 2. runtime data, evidence, attest */
        if ((k = kbc_tee_key_generate(c->key_alg, &c->key)) < 0)
                return cc_error_set(err, -k, "TEE key: %s", strerror(-k));
        _cleanup_(json_putp) struct json_object *rd = json_object_new_object();
        if (!rd)
                return -ENOMEM;
        json_object_object_add(rd, "additional-evidence", json_object_new_string(""));
        json_object_object_add(rd, "nonce", json_object_new_string(nonce));
        json_object_object_add(rd, "tee-pubkey", kbc_tee_key_jwk(c->key));
        _cleanup_free_ char *material = NULL;
        if ((k = cc_jcs(rd, &material)) < 0)
                return k;
        uint8_t digest[64];
        if (kbc_hash(hash, material, strlen(material), digest) < 0)
                return -EIO;
        _cleanup_(json_putp) struct json_object *ev = NULL;
        if ((k = kbc_attester_evidence(c->tee, &c->paths, digest, kbc_hash_len(hash), &ev, err)) <
            0)
                return cc_error_wrap(err, -k, "%s evidence", kbc_tee_name(c->tee));
        _cleanup_(json_putp) struct json_object *att = json_object_new_object();
        struct json_object *rtd = json_object_new_object(), *te = json_object_new_object();
        if (!att || !rtd || !te) {
                json_object_put(rtd);
                json_object_put(te);
                return -ENOMEM;
        }
        if (c->initdata) {
                struct json_object *id = json_object_new_object();
                json_object_object_add(id, "format", json_object_new_string("toml"));
                json_object_object_add(
                        id, "body", json_object_new_string_len(c->initdata, (int)c->initdata_len));
                json_object_object_add(att, "init-data", id);
        } else {
                json_object_object_add(att, "init-data", NULL);
        }
        json_object_object_add(rtd, "nonce", json_object_new_string(nonce));
        json_object_object_add(rtd, "tee-pubkey", kbc_tee_key_jwk(c->key));
        json_object_object_add(att, "runtime-data", rtd);
        json_object_object_add(te, "primary_evidence", TAKE_PTR(ev));
        json_object_object_add(te, "additional_evidence", json_object_new_string(""));
        json_object_object_add(att, "tee-evidence", te);
        _cleanup_free_ char *abody = to_json(att);
        if (!abody)
                return -ENOMEM;
        _cleanup_(response_done) struct response a = {0};
        k = http(c, "attest", "POST", "attest", abody, &a, err);
        if (k < 0)
                return k;
        if (a.status != 200)
                return kbs_error(c, "attest", &a, err);
        if (kbc__parse_token(a.body, a.len, &c->token_exp) < 0)
                return cc_error_set(err, EPROTO, "KBS %s: attest: the answer has no token", c->url);
        c->t.attest_ms = now_ms() - t1;
        c->t.attestations++;
        cc_log_debug("KBS %s: attested as %s (auth %.1f ms, attest %.1f ms)", c->url,
                     kbc_tee_name(c->tee), c->t.auth_ms, c->t.attest_ms);
        return 0;
}

/* A session whose token has not expired (as far as this side knows). */
static bool attested(const struct kbc_client *c)
{
        return c->session && (!c->token_exp || (int64_t)time(NULL) < c->token_exp);
}

int kbc_client_attest(struct kbc_client *c, struct cc_error **err)
{
        if (attested(c))
                return 0;
        c->t.auth_ms = c->t.attest_ms = c->t.tls_ms = 0;
        int k = attest(c, err);
        if (k < 0) {
                forget(c);
                return k;
        }
        /* The caller asks for resources soon: their unwrap's first use is paid here too. */
        kbc_jwe_warm(c->key);
        return 0;
}

int kbc_client_get_resource(struct kbc_client *c, const char *uri, uint8_t **ret, size_t *ret_len,
                            struct cc_error **err)
{
        char path[512];
        if (kbc_resource_path(uri, path, sizeof(path)) < 0)
                return cc_error_set(err, EINVAL,
                                    "resource URI '%.200s' is not kbs:///<repo>/<type>/<tag>", uri);
        _cleanup_free_ char *rpath = NULL;
        if (asprintf(&rpath, "resource/%s", path) < 0)
                return -ENOMEM;
        c->t.auth_ms = c->t.attest_ms = c->t.resource_ms = c->t.decrypt_ms = c->t.tls_ms = 0;
        for (int round = 0; round < 2; round++) {
                bool fresh = false;
                if (!attested(c)) {
                        int k = attest(c, err);
                        if (k < 0) {
                                forget(c);
                                return k;
                        }
                        fresh = true;
                }
                double t0 = now_ms();
                _cleanup_(response_done) struct response r = {0};
                int k = http(c, "resource", "GET", rpath, NULL, &r, err);
                c->t.resource_ms = now_ms() - t0;
                if (k < 0)
                        return k;
                if (r.status == 401 && !fresh) {
                        /* The session or token expired on the KBS's side: attest again. */
                        forget(c);
                        continue;
                }
                if (r.status != 200) {
                        char step[600];
                        snprintf(step, sizeof(step), "resource %s", path);
                        return kbs_error(c, step, &r, err);
                }
                double t1 = now_ms();
                k = kbc_jwe_decrypt(c->key, r.body ? r.body : "", r.len, ret, ret_len, err);
                c->t.decrypt_ms = now_ms() - t1;
                if (k < 0)
                        return cc_error_wrap(err, -k, "KBS %s: resource %s", c->url, path);
                return 0;
        }
        return cc_error_set(err, EACCES, "KBS %s: resource %s: refused twice after attesting again",
                            c->url, path);
}
