/*
 * OCI distribution client on libcurl: manifest and config GETs into bounded buffers, and a
 * pull-style blob reader for the layer pipeline.
 *
 * Authentication follows the registry's challenge: a 401 carries WWW-Authenticate; "Bearer"
 * sends us to the token server (realm, service, scope; with Basic credentials when we have
 * them), "Basic" makes us send the credentials. The resulting Authorization header is shared
 * by every request of the pull (token refreshed on the next 401). libcurl's default
 * CURLOPT_UNRESTRICTED_AUTH=0 keeps that header off redirects to another host (blob GETs are
 * often redirected to object storage).
 *
 * Failures that may heal (connection errors, 429/5xx, a transfer that stalls or ends early)
 * are retried with exponential backoff, honouring Retry-After. A blob transfer that broke
 * after N bytes resumes with "Range: bytes=N-"; bytes already delivered are never delivered
 * twice (if the server ignores Range, the first N bytes are skipped). A stall timeout, not a
 * total timeout, bounds each transfer: a large layer on a slow link is fine as long as bytes
 * keep coming.
 *
 * The blob reader never buffers more than one libcurl chunk: when the consumer has not taken
 * the previous chunk, the write callback pauses the transfer (CURL_WRITEFUNC_PAUSE) and the
 * next img__blob_next() resumes it. Its digest and size checks run on exactly the bytes
 * delivered, so a blob is either verified at EOF or reported as failed.
 */
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/log.h"

#include "guest-agent/image/image-internal.h"

#define CHUNK_SIZE         (256 * 1024)
#define MAX_TOKEN_RESPONSE (1 << 20)
#define MAX_RETRY_AFTER_MS (300 * 1000)

struct img_registry {
        char *host, *repo, *scheme;
        char *ca_file;
        char *user, *password;
        unsigned retries, stall_ms, connect_ms;
        pthread_mutex_t lock; /* guards authz */
        char *authz;          /* "Authorization: ..." header line, or NULL */
        /* The handle of the small GETs (manifests, config, signatures), kept so that they reuse
         * one connection: under TCG and slirp a new TCP connection costs ~10 ms. */
        pthread_mutex_t small_lock;
        CURL *small;
};

/* The response headers we act on; reset at every status line (redirects, 100-continue). */
struct resp {
        char *content_type;
        char *www_auth;
        char *retry_after;
        char *content_range;
        char *docker_digest;
        char *location;
        char *xrss; /* X-Registry-Supports-Signatures */
};

static void resp_done(struct resp *h)
{
        free(h->content_type);
        free(h->www_auth);
        free(h->retry_after);
        free(h->content_range);
        free(h->docker_digest);
        free(h->location);
        free(h->xrss);
        *h = (struct resp){0};
}

static size_t header_cb(char *line, size_t size, size_t n, void *userdata)
{
        struct resp *h = userdata;
        size_t len = size * n;
        if (len >= 5 && !strncmp(line, "HTTP/", 5)) {
                resp_done(h);
                return len;
        }
        static const struct {
                const char *name;
                size_t off;
        } known[] = {
                {"content-type", offsetof(struct resp, content_type)},
                {"www-authenticate", offsetof(struct resp, www_auth)},
                {"retry-after", offsetof(struct resp, retry_after)},
                {"content-range", offsetof(struct resp, content_range)},
                {"docker-content-digest", offsetof(struct resp, docker_digest)},
                {"location", offsetof(struct resp, location)},
                {"x-registry-supports-signatures", offsetof(struct resp, xrss)},
        };
        const char *colon = memchr(line, ':', len);
        if (!colon)
                return len;
        size_t nlen = (size_t)(colon - line);
        for (size_t i = 0; i < CC_ARRAY_SIZE(known); i++) {
                if (nlen != strlen(known[i].name) || strncasecmp(line, known[i].name, nlen))
                        continue;
                const char *v = colon + 1, *end = line + len;
                while (v < end && (*v == ' ' || *v == '\t'))
                        v++;
                while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
                        end--;
                char **slot = (char **)((char *)h + known[i].off);
                /* First challenge wins: registries may list several schemes. */
                if (*slot && known[i].off == offsetof(struct resp, www_auth))
                        break;
                free(*slot);
                *slot = strndup(v, (size_t)(end - v));
                break;
        }
        return len;
}

/* Stall detection through the progress callback: abort when no byte came for stall_ms. */
struct stall {
        unsigned limit_ms;
        uint64_t last_ms;
        curl_off_t last_now;
        bool fired;
};

static int xferinfo_cb(void *p, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
        struct stall *s = p;
        uint64_t now = img__now_ms();
        if (dlnow != s->last_now || s->last_ms == 0) {
                s->last_now = dlnow;
                s->last_ms = now;
                return 0;
        }
        if (now - s->last_ms > s->limit_ms) {
                s->fired = true;
                return 1;
        }
        return 0;
}

static void stall_reset(struct stall *s)
{
        s->last_ms = img__now_ms();
        s->fired = false;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
        curl_global_init(CURL_GLOBAL_DEFAULT);
}

void img_prepare(void)
{
        pthread_once(&curl_once, curl_init_once);
}

int img__registry_new(const struct img_registry_conf *c, struct img_registry **ret,
                      struct cc_error **err)
{
        img_prepare();
        struct img_registry *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        pthread_mutex_init(&r->lock, NULL);
        pthread_mutex_init(&r->small_lock, NULL);
        r->host = strdup(c->host);
        r->repo = strdup(c->repo);
        r->scheme = strdup(c->insecure ? "http" : "https");
        r->ca_file = c->ca_file ? strdup(c->ca_file) : NULL;
        r->user = c->user ? strdup(c->user) : NULL;
        r->password = c->password ? strdup(c->password) : NULL;
        r->retries = c->retries;
        r->stall_ms = c->stall_timeout_ms;
        r->connect_ms = c->connect_timeout_ms;
        if (!r->host || !r->repo || !r->scheme || (c->ca_file && !r->ca_file) ||
            (c->user && !r->user) || (c->password && !r->password)) {
                img__registry_free(r);
                return -ENOMEM;
        }
        *ret = r;
        return 0;
}

struct img_registry *img__registry_free(struct img_registry *r)
{
        if (!r)
                return NULL;
        free(r->host);
        free(r->repo);
        free(r->scheme);
        free(r->ca_file);
        free(r->user);
        if (r->password)
                explicit_bzero(r->password, strlen(r->password));
        free(r->password);
        if (r->authz)
                explicit_bzero(r->authz, strlen(r->authz));
        free(r->authz);
        if (r->small)
                curl_easy_cleanup(r->small);
        pthread_mutex_destroy(&r->lock);
        pthread_mutex_destroy(&r->small_lock);
        free(r);
        return NULL;
}

/*
 * Sockets with SOCK_CLOEXEC: the agent forks container processes while pulls run in other
 * threads, and libcurl's own socket() call does not set close-on-exec.
 */
static curl_socket_t open_socket_cb(void *data, curlsocktype purpose, struct curl_sockaddr *a)
{
        return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static void easy_common(struct img_registry *r, CURL *h, const char *url, struct resp *resp,
                        struct stall *st)
{
        curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket_cb);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)r->connect_ms);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "cc-image-pull/0.1");
        if (r->ca_file)
                curl_easy_setopt(h, CURLOPT_CAINFO, r->ca_file);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, st);
}

/* Headers of a registry request: Accept, the shared Authorization, optional Range. */
static struct curl_slist *request_headers(struct img_registry *r, const char *accept,
                                          uint64_t range_from)
{
        struct curl_slist *l = NULL, *t;
        char line[64];
        if (accept) {
                _cleanup_free_ char *a = NULL;
                if (asprintf(&a, "Accept: %s", accept) < 0)
                        return NULL;
                l = curl_slist_append(l, a);
        }
        pthread_mutex_lock(&r->lock);
        if (r->authz && (t = curl_slist_append(l, r->authz)))
                l = t;
        pthread_mutex_unlock(&r->lock);
        if (range_from) {
                snprintf(line, sizeof(line), "Range: bytes=%llu-", (unsigned long long)range_from);
                if ((t = curl_slist_append(l, line)))
                        l = t;
        }
        return l;
}

/* Parses `Scheme k=v, k="v"` (RFC 7235); unknown parameters are ignored. */
int img__auth_parse(const char *h, char **scheme, char **realm, char **service, char **scope)
{
        *scheme = *realm = *service = *scope = NULL;
        if (!h)
                return -EINVAL;
        size_t n = strcspn(h, " \t");
        if (n == 0 || n > 32)
                return -EINVAL;
        *scheme = strndup(h, n);
        if (!*scheme)
                return -ENOMEM;
        const char *p = h + n;
        while (*p) {
                while (*p == ' ' || *p == '\t' || *p == ',')
                        p++;
                if (!*p)
                        break;
                size_t klen = strcspn(p, "= \t,");
                const char *key = p;
                p += klen;
                if (*p != '=')
                        return -EINVAL;
                p++;
                char val[2048];
                size_t vlen = 0;
                if (*p == '"') {
                        p++;
                        while (*p && *p != '"') {
                                if (*p == '\\' && p[1])
                                        p++;
                                if (vlen + 1 >= sizeof(val))
                                        return -EINVAL;
                                val[vlen++] = *p++;
                        }
                        if (*p != '"')
                                return -EINVAL;
                        p++;
                } else {
                        while (*p && *p != ',' && *p != ' ' && *p != '\t') {
                                if (vlen + 1 >= sizeof(val))
                                        return -EINVAL;
                                val[vlen++] = *p++;
                        }
                }
                val[vlen] = 0;
                char **slot = NULL;
                if (klen == 5 && !strncasecmp(key, "realm", 5))
                        slot = realm;
                else if (klen == 7 && !strncasecmp(key, "service", 7))
                        slot = service;
                else if (klen == 5 && !strncasecmp(key, "scope", 5))
                        slot = scope;
                if (slot) {
                        free(*slot);
                        if (!(*slot = strdup(val)))
                                return -ENOMEM;
                }
        }
        return 0;
}

/* Growable response body with a hard limit. */
struct body {
        char *buf;
        size_t len, cap, max;
        bool too_big;
};

static size_t body_cb(char *data, size_t size, size_t n, void *userdata)
{
        struct body *b = userdata;
        size_t len = size * n;
        if (b->len + len > b->max) {
                b->too_big = true;
                return 0;
        }
        if (b->len + len + 1 > b->cap) {
                size_t cap = CC_MAX(b->cap * 2, b->len + len + 1);
                char *nb = realloc(b->buf, cap);
                if (!nb)
                        return 0;
                b->buf = nb;
                b->cap = cap;
        }
        memcpy(b->buf + b->len, data, len);
        b->len += len;
        b->buf[b->len] = 0;
        return len;
}

/* "code: message" of the first error of a registry's JSON error body, or "". */
static void error_text(const char *body, size_t len, char *out, size_t out_size)
{
        out[0] = 0;
        if (!body || !len)
                return;
        struct json_object *o = img__json_parse(body, CC_MIN(len, (size_t)4096), NULL);
        struct json_object *errs, *e0, *c, *m;
        if (o && json_object_object_get_ex(o, "errors", &errs) &&
            json_object_is_type(errs, json_type_array) && json_object_array_length(errs) > 0 &&
            (e0 = json_object_array_get_idx(errs, 0)) &&
            json_object_object_get_ex(e0, "code", &c) &&
            json_object_object_get_ex(e0, "message", &m))
                snprintf(out, out_size, ": %s: %s", json_object_get_string(c),
                         json_object_get_string(m));
        json_object_put(o);
}

static uint64_t retry_delay_ms(const char *retry_after, unsigned attempt)
{
        if (retry_after && *retry_after) {
                char *end;
                unsigned long long s = strtoull(retry_after, &end, 10);
                if (*end == 0)
                        return CC_MIN(s * 1000, (uint64_t)MAX_RETRY_AFTER_MS);
                time_t when = curl_getdate(retry_after, NULL);
                time_t now = time(NULL);
                if (when > 0)
                        return when > now ? CC_MIN((uint64_t)(when - now) * 1000,
                                                   (uint64_t)MAX_RETRY_AFTER_MS)
                                          : 0;
        }
        uint64_t d = 250ULL << CC_MIN(attempt, 6u);
        return CC_MIN(d, (uint64_t)10000);
}

static void sleep_ms(uint64_t ms)
{
        struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static bool curl_transient(CURLcode c)
{
        switch (c) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_PARTIAL_FILE:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_ABORTED_BY_CALLBACK: /* our stall timeout */
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_SSL_CONNECT_ERROR:
                return true;
        default:
                return false;
        }
}

static bool http_transient(long code)
{
        return code == 408 || code == 429 || code == 500 || code == 502 || code == 503 ||
               code == 504;
}

/* Answers a 401 challenge: sets r->authz for the following requests. */
static int authorize(struct img_registry *r, const char *challenge, struct cc_error **err)
{
        _cleanup_free_ char *scheme = NULL, *realm = NULL, *service = NULL, *scope = NULL;
        int q = img__auth_parse(challenge, &scheme, &realm, &service, &scope);
        if (q < 0)
                return cc_error_set(err, EACCES, "registry %s: unauthorized, bad challenge",
                                    r->host);
        _cleanup_free_ char *basic = NULL;
        if (r->user) {
                _cleanup_free_ char *up = NULL;
                if (asprintf(&up, "%s:%s", r->user, r->password ? r->password : "") < 0)
                        return -ENOMEM;
                basic = img__b64_encode((const uint8_t *)up, strlen(up));
                explicit_bzero(up, strlen(up));
                if (!basic)
                        return -ENOMEM;
        }
        _cleanup_free_ char *line = NULL;
        if (!strcasecmp(scheme, "Basic")) {
                if (!basic)
                        return cc_error_set(err, EACCES, "registry %s requires credentials (Basic)",
                                            r->host);
                if (asprintf(&line, "Authorization: Basic %s", basic) < 0)
                        return -ENOMEM;
        } else if (!strcasecmp(scheme, "Bearer")) {
                if (cc_isempty(realm) ||
                    (strncmp(realm, "https://", 8) && strncmp(realm, "http://", 7)))
                        return cc_error_set(err, EACCES, "registry %s: bad token realm", r->host);
                CURL *h = curl_easy_init();
                if (!h)
                        return -ENOMEM;
                _cleanup_free_ char *def_scope = NULL, *url = NULL;
                if (!scope && asprintf(&def_scope, "repository:%s:pull", r->repo) < 0) {
                        curl_easy_cleanup(h);
                        return -ENOMEM;
                }
                char *esc_service = curl_easy_escape(h, service ? service : "", 0);
                char *esc_scope = curl_easy_escape(h, scope ? scope : def_scope, 0);
                int n = asprintf(&url, "%s%sservice=%s&scope=%s", realm,
                                 strchr(realm, '?') ? "&" : "?", esc_service ? esc_service : "",
                                 esc_scope ? esc_scope : "");
                curl_free(esc_service);
                curl_free(esc_scope);
                if (n < 0) {
                        curl_easy_cleanup(h);
                        return -ENOMEM;
                }
                struct resp resp = {0};
                struct stall st = {.limit_ms = r->stall_ms};
                struct body b = {.max = MAX_TOKEN_RESPONSE};
                struct curl_slist *hl = NULL;
                _cleanup_free_ char *auth_hdr = NULL;
                if (basic && asprintf(&auth_hdr, "Authorization: Basic %s", basic) >= 0)
                        hl = curl_slist_append(NULL, auth_hdr);
                easy_common(r, h, url, &resp, &st);
                curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
                curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_cb);
                curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
                CURLcode c = curl_easy_perform(h);
                long code = 0;
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
                curl_easy_cleanup(h);
                curl_slist_free_all(hl);
                resp_done(&resp);
                _cleanup_free_ char *bbuf = b.buf;
                if (c != CURLE_OK || code != 200)
                        return cc_error_set(err, EACCES, "token server %s: %s", realm,
                                            c != CURLE_OK ? curl_easy_strerror(c)
                                            : code == 401 ? "credentials refused"
                                                          : "request failed");
                struct json_object *o = img__json_parse(bbuf, b.len, err);
                if (!o)
                        return cc_error_wrap(err, EACCES, "token server response");
                const char *tok = NULL;
                struct json_object *v;
                if ((json_object_object_get_ex(o, "token", &v) ||
                     json_object_object_get_ex(o, "access_token", &v)) &&
                    json_object_is_type(v, json_type_string))
                        tok = json_object_get_string(v);
                if (cc_isempty(tok) || strpbrk(tok, "\r\n")) {
                        json_object_put(o);
                        return cc_error_set(err, EACCES, "token server gave no token");
                }
                n = asprintf(&line, "Authorization: Bearer %s", tok);
                json_object_put(o);
                if (n < 0)
                        return -ENOMEM;
        } else {
                return cc_error_set(err, EACCES, "registry %s: unsupported auth scheme '%s'",
                                    r->host, scheme);
        }
        pthread_mutex_lock(&r->lock);
        free(r->authz);
        r->authz = TAKE_PTR(line);
        pthread_mutex_unlock(&r->lock);
        cc_log_debug("registry %s: authorized with %s", r->host, scheme);
        return 0;
}

/* GET url (on the registry) into memory; *ret_xrss (may be NULL) gets the response's
 * X-Registry-Supports-Signatures header or NULL. */
static int get_url(struct img_registry *r, const char *url, const char *accept, uint64_t max,
                   char **ret_buf, size_t *ret_len, char **ret_content_type, char **ret_xrss,
                   struct cc_error **err)
{
        bool auth_done = false;
        for (unsigned attempt = 0;; attempt++) {
                pthread_mutex_lock(&r->small_lock);
                if (!r->small && !(r->small = curl_easy_init())) {
                        pthread_mutex_unlock(&r->small_lock);
                        return -ENOMEM;
                }
                CURL *h = r->small;
                curl_easy_reset(h); /* options only: the connection stays for the next GET */
                struct resp resp = {0};
                struct stall st = {.limit_ms = r->stall_ms};
                struct body b = {.max = max};
                struct curl_slist *hl = request_headers(r, accept, 0);
                easy_common(r, h, url, &resp, &st);
                curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
                curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_cb);
                curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
                stall_reset(&st);
                CURLcode c = curl_easy_perform(h);
                long code = 0;
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
                pthread_mutex_unlock(&r->small_lock);
                curl_slist_free_all(hl);
                if (c == CURLE_OK && code == 200) {
                        /* A registry-announced digest must match what it sent (spec: MUST
                         * verify if used); only sha256, the one we can compute. Checked
                         * before anything is handed out. */
                        char got[72];
                        img__digest_buf(b.buf ? b.buf : "", b.len, got);
                        if (resp.docker_digest && !strncmp(resp.docker_digest, "sha256:", 7) &&
                            strcmp(got, resp.docker_digest)) {
                                int e = cc_error_set(err, EBADMSG,
                                                     "GET %s: Docker-Content-Digest %s, body is %s",
                                                     url, resp.docker_digest, got);
                                free(b.buf);
                                resp_done(&resp);
                                return e;
                        }
                        *ret_buf = b.buf ? b.buf : strdup("");
                        *ret_len = b.len;
                        if (ret_content_type) {
                                *ret_content_type = resp.content_type;
                                resp.content_type = NULL;
                        }
                        if (ret_xrss)
                                *ret_xrss = TAKE_PTR(resp.xrss);
                        resp_done(&resp);
                        return *ret_buf ? 0 : -ENOMEM;
                }
                char etext[256];
                error_text(b.buf, b.len, etext, sizeof(etext));
                free(b.buf);
                _cleanup_free_ char *www = TAKE_PTR(resp.www_auth);
                _cleanup_free_ char *retry_after = TAKE_PTR(resp.retry_after);
                resp_done(&resp);
                if (b.too_big)
                        return cc_error_set(err, EFBIG, "GET %s: larger than the %llu-byte limit",
                                            url, (unsigned long long)max);
                if (c == CURLE_OK && code == 401 && !auth_done && www) {
                        auth_done = true;
                        int q = authorize(r, www, err);
                        if (q < 0)
                                return q;
                        attempt--;
                        continue;
                }
                bool transient = c != CURLE_OK ? curl_transient(c) : http_transient(code);
                if (transient && attempt < r->retries) {
                        uint64_t d = retry_delay_ms(retry_after, attempt);
                        cc_log_debug("GET %s: %s, retry in %llu ms", url,
                                     c != CURLE_OK ? curl_easy_strerror(c) : "HTTP error",
                                     (unsigned long long)d);
                        sleep_ms(d);
                        continue;
                }
                if (c != CURLE_OK)
                        return cc_error_set(err, c == CURLE_ABORTED_BY_CALLBACK ? ETIMEDOUT : EIO,
                                            "GET %s: %s", url,
                                            c == CURLE_ABORTED_BY_CALLBACK ? "stalled"
                                                                           : curl_easy_strerror(c));
                int e = code == 404 ? ENOENT : code == 401 || code == 403 ? EACCES : EIO;
                return cc_error_set(err, e, "GET %s: HTTP %ld%s", url, code, etext);
        }
}

int img__registry_get(struct img_registry *r, const char *kind, const char *ref, const char *accept,
                      uint64_t max, char **ret_buf, size_t *ret_len, char **ret_content_type,
                      struct cc_error **err)
{
        _cleanup_free_ char *url = NULL;
        if (asprintf(&url, "%s://%s/v2/%s/%s/%s", r->scheme, r->host, r->repo, kind, ref) < 0)
                return -ENOMEM;
        return get_url(r, url, accept, max, ret_buf, ret_len, ret_content_type, NULL, err);
}

int img__registry_supports_signatures(struct img_registry *r, bool *ret, struct cc_error **err)
{
        _cleanup_free_ char *url = NULL, *buf = NULL, *xrss = NULL;
        size_t len;
        if (asprintf(&url, "%s://%s/v2/", r->scheme, r->host) < 0)
                return -ENOMEM;
        int q = get_url(r, url, NULL, 1 << 20, &buf, &len, NULL, &xrss, err);
        if (q < 0)
                return q;
        *ret = xrss && !strcmp(xrss, "1");
        return 0;
}

int img__registry_get_signatures(struct img_registry *r, const char *digest, char **ret_buf,
                                 size_t *ret_len, struct cc_error **err)
{
        _cleanup_free_ char *url = NULL;
        if (asprintf(&url, "%s://%s/extensions/v2/%s/signatures/%s", r->scheme, r->host, r->repo,
                     digest) < 0)
                return -ENOMEM;
        return get_url(r, url, NULL, 4 << 20, ret_buf, ret_len, NULL, NULL, err);
}

/* ---- streaming blob reader ---- */

struct img_blob {
        struct img_registry *r;
        char digest[72];
        uint64_t size;
        char *url;
        CURLM *multi;
        CURL *easy;
        struct curl_slist *hdrs;
        struct resp resp;
        struct stall stall;
        EVP_MD_CTX *md;

        uint8_t *buf;
        size_t have;
        bool paused, done, eof;
        CURLcode result;

        uint64_t offset;   /* bytes delivered (and hashed) so far */
        uint64_t req_from; /* Range start of the current request */
        uint64_t skip;     /* bytes to drop when a server ignored Range */
        bool started;      /* first body byte of the current response seen */
        long code;
        bool overflow, bad_range;
        char errbody[1024];
        size_t errlen;
        unsigned attempt;
        bool auth_done;
        uint64_t ns_digest;
};

static size_t blob_write_cb(char *data, size_t size, size_t n, void *userdata)
{
        struct img_blob *b = userdata;
        size_t len = size * n;
        if (!b->started) {
                b->started = true;
                curl_easy_getinfo(b->easy, CURLINFO_RESPONSE_CODE, &b->code);
                if (b->code == 200 && b->req_from > 0) {
                        b->skip = b->req_from;
                } else if (b->code == 206) {
                        unsigned long long from = 0;
                        if (!b->resp.content_range ||
                            sscanf(b->resp.content_range, "bytes %llu-", &from) != 1 ||
                            from != b->req_from) {
                                b->bad_range = true;
                                return 0;
                        }
                }
        }
        if (b->code != 200 && b->code != 206) {
                size_t k = CC_MIN(len, sizeof(b->errbody) - 1 - b->errlen);
                memcpy(b->errbody + b->errlen, data, k);
                b->errlen += k;
                return len;
        }
        if (b->have > 0) {
                b->paused = true;
                return CURL_WRITEFUNC_PAUSE;
        }
        if (b->skip) {
                size_t k = (size_t)CC_MIN((uint64_t)len, b->skip);
                b->skip -= k;
                data += k;
                len -= k;
                if (len == 0)
                        return size * n;
        }
        if (b->offset + len > b->size) {
                b->overflow = true;
                return 0;
        }
        if (len > CHUNK_SIZE) {
                /* libcurl hands at most CURLOPT_BUFFERSIZE per call; anything else is a bug. */
                b->overflow = true;
                return 0;
        }
        uint64_t t0 = img__now_ns();
        EVP_DigestUpdate(b->md, data, len);
        b->ns_digest += img__now_ns() - t0;
        memcpy(b->buf, data, len);
        b->have = len;
        b->offset += len;
        return size * n;
}

static int blob_start(struct img_blob *b)
{
        if (b->easy) {
                curl_multi_remove_handle(b->multi, b->easy);
                curl_easy_cleanup(b->easy);
        }
        curl_slist_free_all(b->hdrs);
        resp_done(&b->resp);
        b->easy = curl_easy_init();
        if (!b->easy)
                return -ENOMEM;
        b->req_from = b->offset;
        b->skip = 0;
        b->started = false;
        b->code = 0;
        b->errlen = 0;
        b->done = false;
        b->paused = false;
        b->bad_range = false;
        b->hdrs = request_headers(b->r, NULL, b->req_from);
        b->stall = (struct stall){.limit_ms = b->r->stall_ms};
        easy_common(b->r, b->easy, b->url, &b->resp, &b->stall);
        curl_easy_setopt(b->easy, CURLOPT_HTTPHEADER, b->hdrs);
        curl_easy_setopt(b->easy, CURLOPT_BUFFERSIZE, (long)CHUNK_SIZE);
        curl_easy_setopt(b->easy, CURLOPT_WRITEFUNCTION, blob_write_cb);
        curl_easy_setopt(b->easy, CURLOPT_WRITEDATA, b);
        stall_reset(&b->stall);
        if (curl_multi_add_handle(b->multi, b->easy) != CURLM_OK)
                return -ENOMEM;
        return 0;
}

int img__blob_open(struct img_registry *r, const char *digest, int64_t size, struct img_blob **ret,
                   struct cc_error **err)
{
        if (!img__digest_valid(digest) || size < 0)
                return cc_error_set(err, EINVAL, "blob: bad descriptor");
        struct img_blob *b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->r = r;
        snprintf(b->digest, sizeof(b->digest), "%s", digest);
        b->size = (uint64_t)size;
        b->buf = malloc(CHUNK_SIZE);
        b->md = EVP_MD_CTX_new();
        b->multi = curl_multi_init();
        if (asprintf(&b->url, "%s://%s/v2/%s/blobs/%s", r->scheme, r->host, r->repo, digest) < 0)
                b->url = NULL;
        if (!b->buf || !b->md || !b->multi || !b->url ||
            !EVP_DigestInit_ex(b->md, EVP_sha256(), NULL) || blob_start(b) < 0) {
                img__blob_free(b);
                return -ENOMEM;
        }
        *ret = b;
        return 0;
}

struct img_blob *img__blob_free(struct img_blob *b)
{
        if (!b)
                return NULL;
        if (b->easy) {
                curl_multi_remove_handle(b->multi, b->easy);
                curl_easy_cleanup(b->easy);
        }
        if (b->multi)
                curl_multi_cleanup(b->multi);
        curl_slist_free_all(b->hdrs);
        resp_done(&b->resp);
        EVP_MD_CTX_free(b->md);
        free(b->buf);
        free(b->url);
        free(b);
        return NULL;
}

uint64_t img__blob_digest_ns(const struct img_blob *b)
{
        return b->ns_digest;
}

uint64_t img__blob_offset(const struct img_blob *b)
{
        return b->offset;
}

/* Decides what a finished request means: EOF, retry (returns 1), or an error. */
static int blob_finished(struct img_blob *b, struct cc_error **err)
{
        CURLcode c = b->result;
        long code = b->code;
        if (!b->started)
                curl_easy_getinfo(b->easy, CURLINFO_RESPONSE_CODE, &code);
        if (b->overflow)
                return cc_error_set(err, EBADMSG, "blob %s: larger than its descriptor (%llu)",
                                    b->digest, (unsigned long long)b->size);
        if (b->bad_range)
                return cc_error_set(err, EPROTO, "blob %s: server answered a different range",
                                    b->digest);
        if (c == CURLE_OK && (code == 200 || code == 206 || (code == 0 && b->size == 0))) {
                if (b->offset == b->size) {
                        char got[72];
                        img__digest_final(b->md, got);
                        if (strcmp(got, b->digest))
                                return cc_error_set(err, EBADMSG,
                                                    "blob %s: digest mismatch (got %s)", b->digest,
                                                    got);
                        b->eof = true;
                        return 0;
                }
                /* Ended early without a transport error: treat as a broken transfer. */
                c = CURLE_PARTIAL_FILE;
        }
        if (c == CURLE_OK && code == 401 && !b->auth_done && b->resp.www_auth) {
                b->auth_done = true;
                _cleanup_free_ char *www = strdup(b->resp.www_auth);
                int q = www ? authorize(b->r, www, err) : -ENOMEM;
                return q < 0 ? q : 1;
        }
        bool transient = c != CURLE_OK ? curl_transient(c) : http_transient(code);
        if (transient && b->attempt < b->r->retries) {
                uint64_t d = retry_delay_ms(c == CURLE_OK ? b->resp.retry_after : NULL, b->attempt);
                cc_log_debug("blob %s: %s at %llu/%llu bytes, retry %u in %llu ms", b->digest,
                             c != CURLE_OK ? curl_easy_strerror(c) : "HTTP error",
                             (unsigned long long)b->offset, (unsigned long long)b->size,
                             b->attempt + 1, (unsigned long long)d);
                b->attempt++;
                sleep_ms(d);
                return 1;
        }
        if (c == CURLE_PARTIAL_FILE)
                return cc_error_set(err, EPIPE, "blob %s: truncated at %llu of %llu bytes",
                                    b->digest, (unsigned long long)b->offset,
                                    (unsigned long long)b->size);
        if (c != CURLE_OK)
                return cc_error_set(err, c == CURLE_ABORTED_BY_CALLBACK ? ETIMEDOUT : EIO,
                                    "blob %s: %s", b->digest,
                                    c == CURLE_ABORTED_BY_CALLBACK ? "transfer stalled"
                                                                   : curl_easy_strerror(c));
        char etext[256];
        error_text(b->errbody, b->errlen, etext, sizeof(etext));
        return cc_error_set(err,
                            code == 404                  ? ENOENT
                            : code == 401 || code == 403 ? EACCES
                                                         : EIO,
                            "blob %s: HTTP %ld%s", b->digest, code, etext);
}

int img__blob_next(struct img_blob *b, const uint8_t **ret, size_t *ret_len, struct cc_error **err)
{
        b->have = 0;
        for (;;) {
                if (b->eof) {
                        *ret = b->buf;
                        *ret_len = 0;
                        return 0;
                }
                if (b->have) {
                        *ret = b->buf;
                        *ret_len = b->have;
                        return 0;
                }
                if (b->paused) {
                        /* The consumer took the chunk: time spent there is not a stall. */
                        b->paused = false;
                        stall_reset(&b->stall);
                        curl_easy_pause(b->easy, CURLPAUSE_CONT);
                        continue;
                }
                if (b->done) {
                        int r = blob_finished(b, err);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                continue;
                        r = blob_start(b);
                        if (r < 0)
                                return cc_error_set(err, -r, "blob %s: restart", b->digest);
                        continue;
                }
                int running = 0;
                CURLMcode mc = curl_multi_perform(b->multi, &running);
                if (mc != CURLM_OK)
                        return cc_error_set(err, EIO, "blob %s: %s", b->digest,
                                            curl_multi_strerror(mc));
                CURLMsg *msg;
                int left;
                while ((msg = curl_multi_info_read(b->multi, &left)))
                        if (msg->msg == CURLMSG_DONE) {
                                b->done = true;
                                b->result = msg->data.result;
                        }
                if (b->have || b->done || b->paused)
                        continue;
                curl_multi_poll(b->multi, NULL, 0, 200, NULL);
        }
}

/* ---- uploads (cc-image-encrypt pushes through the same client and credentials) ---- */

struct upload {
        int fd; /* the body from fd at offset 0.., or from buf */
        const uint8_t *buf;
        uint64_t len, off;
        bool failed;
};

static size_t upload_read_cb(char *dst, size_t size, size_t n, void *userdata)
{
        struct upload *u = userdata;
        size_t want = size * n;
        if (u->off >= u->len)
                return 0;
        if (want > u->len - u->off)
                want = (size_t)(u->len - u->off);
        if (u->buf) {
                memcpy(dst, u->buf + u->off, want);
        } else {
                ssize_t got = pread(u->fd, dst, want, (off_t)u->off);
                if (got <= 0) {
                        u->failed = true;
                        return CURL_READFUNC_ABORT;
                }
                want = (size_t)got;
        }
        u->off += want;
        return want;
}

/*
 * One request with an optional body; a 401 with a challenge is authorized (the challenge's
 * scope, e.g. pull,push) and retried once. *ret_code is the final status; *ret_location the
 * Location header made absolute (NULL when absent).
 */
static int send_request(struct img_registry *r, const char *method, const char *url,
                        const char *content_type, struct upload *up, long *ret_code,
                        char **ret_location, struct cc_error **err)
{
        for (bool auth_done = false;;) {
                CURL *h = curl_easy_init();
                if (!h)
                        return -ENOMEM;
                struct resp resp = {0};
                struct stall st = {.limit_ms = r->stall_ms};
                struct body b = {.max = 64 * 1024};
                struct curl_slist *hl = request_headers(r, NULL, 0), *t;
                char ct[160];
                if (content_type) {
                        snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
                        if ((t = curl_slist_append(hl, ct)))
                                hl = t;
                }
                easy_common(r, h, url, &resp, &st);
                curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
                curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
                curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
                curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_cb);
                curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
                if (up) {
                        up->off = 0;
                        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
                        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
                        curl_easy_setopt(h, CURLOPT_READFUNCTION, upload_read_cb);
                        curl_easy_setopt(h, CURLOPT_READDATA, up);
                        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)up->len);
                } else if (!strcmp(method, "POST")) {
                        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
                        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
                } else if (!strcmp(method, "HEAD")) {
                        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
                }
                stall_reset(&st);
                CURLcode c = curl_easy_perform(h);
                long code = 0;
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
                curl_easy_cleanup(h);
                curl_slist_free_all(hl);
                char etext[256];
                error_text(b.buf, b.len, etext, sizeof(etext));
                free(b.buf);
                _cleanup_free_ char *www = TAKE_PTR(resp.www_auth);
                _cleanup_free_ char *loc = TAKE_PTR(resp.location);
                resp_done(&resp);
                if (c != CURLE_OK)
                        return cc_error_set(err, EIO, "%s %s: %s", method, url,
                                            up && up->failed ? "reading the blob failed"
                                                             : curl_easy_strerror(c));
                if (code == 401 && !auth_done && www) {
                        auth_done = true;
                        int q = authorize(r, www, err);
                        if (q < 0)
                                return q;
                        continue;
                }
                *ret_code = code;
                if (ret_location) {
                        *ret_location = NULL;
                        if (loc && loc[0] == '/') {
                                if (asprintf(ret_location, "%s://%s%s", r->scheme, r->host, loc) <
                                    0)
                                        return -ENOMEM;
                        } else if (loc) {
                                *ret_location = TAKE_PTR(loc);
                        }
                }
                if (code >= 300)
                        return cc_error_set(err, code == 401 || code == 403 ? EACCES : EIO,
                                            "%s %s: HTTP %ld%s", method, url, code, etext);
                return 0;
        }
}

int img__registry_push_blob(struct img_registry *r, const char *digest, int fd, uint64_t size,
                            struct cc_error **err)
{
        _cleanup_free_ char *url = NULL, *loc = NULL, *put = NULL;
        long code = 0;
        if (asprintf(&url, "%s://%s/v2/%s/blobs/%s", r->scheme, r->host, r->repo, digest) < 0)
                return -ENOMEM;
        /* Already there (same repository, or a previous push): nothing to send. */
        if (send_request(r, "HEAD", url, NULL, NULL, &code, NULL, NULL) == 0 && code == 200)
                return 0;
        free(url);
        if (asprintf(&url, "%s://%s/v2/%s/blobs/uploads/", r->scheme, r->host, r->repo) < 0)
                return -ENOMEM;
        int q = send_request(r, "POST", url, NULL, NULL, &code, &loc, err);
        if (q < 0)
                return q;
        if (code != 202 || !loc)
                return cc_error_set(err, EIO, "POST %s: HTTP %ld without an upload location", url,
                                    code);
        if (asprintf(&put, "%s%sdigest=%s", loc, strchr(loc, '?') ? "&" : "?", digest) < 0)
                return -ENOMEM;
        struct upload up = {.fd = fd, .len = size};
        q = send_request(r, "PUT", put, "application/octet-stream", &up, &code, NULL, err);
        if (q < 0)
                return q;
        return code == 201 ? 0 : cc_error_set(err, EIO, "PUT blob %s: HTTP %ld", digest, code);
}

int img__registry_push_manifest(struct img_registry *r, const char *tag, const char *media_type,
                                const void *buf, size_t len, struct cc_error **err)
{
        _cleanup_free_ char *url = NULL;
        long code = 0;
        if (asprintf(&url, "%s://%s/v2/%s/manifests/%s", r->scheme, r->host, r->repo, tag) < 0)
                return -ENOMEM;
        struct upload up = {.fd = -1, .buf = buf, .len = len};
        int q = send_request(r, "PUT", url, media_type, &up, &code, NULL, err);
        if (q < 0)
                return q;
        return code == 201 || code == 200
                       ? 0
                       : cc_error_set(err, EIO, "PUT manifest %s: HTTP %ld", tag, code);
}
