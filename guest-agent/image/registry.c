/*
 * OCI distribution client on libcurl: manifest and config GETs into bounded buffers, and
 * uploads (cc-image-encrypt pushes through the same client and credentials). Authentication
 * (401 challenges, credentials) is in registry-auth.c, the streaming blob reader of the layer
 * pipeline in registry-blob.c; what they share is registry-internal.h.
 *
 * Failures that may heal (connection errors, 429/5xx, a transfer that stalls or ends early)
 * are retried with exponential backoff, honouring Retry-After. A stall timeout, not a total
 * timeout, bounds each transfer: a large layer on a slow link is fine as long as bytes keep
 * coming. libcurl's default CURLOPT_UNRESTRICTED_AUTH=0 keeps the Authorization header off
 * redirects to another host (blob GETs are often redirected to object storage).
 */
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
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
#include "guest-agent/image/registry-internal.h"

#define MAX_RETRY_AFTER_MS (300 * 1000)

void img__reg_resp_done(struct img_reg_resp *h)
{
        free(h->content_type);
        free(h->www_auth);
        free(h->retry_after);
        free(h->content_range);
        free(h->docker_digest);
        free(h->location);
        free(h->xrss);
        *h = (struct img_reg_resp){0};
}

static size_t header_cb(char *line, size_t size, size_t n, void *userdata)
{
        struct img_reg_resp *h = userdata;
        size_t len = size * n;
        if (len >= 5 && !strncmp(line, "HTTP/", 5)) {
                img__reg_resp_done(h);
                return len;
        }
        static const struct {
                const char *name;
                size_t off;
        } known[] = {
                {"content-type", offsetof(struct img_reg_resp, content_type)},
                {"www-authenticate", offsetof(struct img_reg_resp, www_auth)},
                {"retry-after", offsetof(struct img_reg_resp, retry_after)},
                {"content-range", offsetof(struct img_reg_resp, content_range)},
                {"docker-content-digest", offsetof(struct img_reg_resp, docker_digest)},
                {"location", offsetof(struct img_reg_resp, location)},
                {"x-registry-supports-signatures", offsetof(struct img_reg_resp, xrss)},
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
                if (*slot && known[i].off == offsetof(struct img_reg_resp, www_auth))
                        break;
                free(*slot);
                *slot = strndup(v, (size_t)(end - v));
                break;
        }
        return len;
}

static int xferinfo_cb(void *p, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
        struct img_reg_stall *s = p;
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

void img__reg_stall_reset(struct img_reg_stall *s)
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
        for (int i = 0; i < 2; i++)
                pthread_mutex_init(&r->small_lock[i], NULL);
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
        for (int i = 0; i < 2; i++) {
                if (r->small[i])
                        curl_easy_cleanup(r->small[i]);
                pthread_mutex_destroy(&r->small_lock[i]);
        }
        pthread_mutex_destroy(&r->lock);
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

void img__reg_easy_common(struct img_registry *r, CURL *h, const char *url,
                          struct img_reg_resp *resp, struct img_reg_stall *st)
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
struct curl_slist *img__reg_request_headers(struct img_registry *r, const char *accept,
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

size_t img__reg_body_cb(char *data, size_t size, size_t n, void *userdata)
{
        struct img_reg_body *b = userdata;
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
void img__reg_error_text(const char *body, size_t len, char *out, size_t out_size)
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

uint64_t img__reg_retry_delay_ms(const char *retry_after, unsigned attempt)
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

void img__reg_sleep_ms(uint64_t ms)
{
        struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

bool img__reg_curl_transient(CURLcode c)
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

bool img__reg_http_transient(long code)
{
        return code == 408 || code == 429 || code == 500 || code == 502 || code == 503 ||
               code == 504;
}

/* GET url (on the registry) into memory; *ret_xrss (may be NULL) gets the response's
 * X-Registry-Supports-Signatures header or NULL. */
static int get_url(struct img_registry *r, const char *url, const char *accept, uint64_t max,
                   char **ret_buf, size_t *ret_len, char **ret_content_type, char **ret_xrss,
                   struct cc_error **err)
{
        bool auth_done = false;
        for (unsigned attempt = 0;; attempt++) {
                int k = pthread_mutex_trylock(&r->small_lock[0]) == 0 ? 0 : 1;
                if (k == 1)
                        pthread_mutex_lock(&r->small_lock[1]);
                if (!r->small[k] && !(r->small[k] = curl_easy_init())) {
                        pthread_mutex_unlock(&r->small_lock[k]);
                        return -ENOMEM;
                }
                CURL *h = r->small[k];
                curl_easy_reset(h); /* options only: the connection stays for the next GET */
                struct img_reg_resp resp = {0};
                struct img_reg_stall st = {.limit_ms = r->stall_ms};
                struct img_reg_body b = {.max = max};
                struct curl_slist *hl = img__reg_request_headers(r, accept, 0);
                img__reg_easy_common(r, h, url, &resp, &st);
                curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
                curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, img__reg_body_cb);
                curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
                img__reg_stall_reset(&st);
                CURLcode c = curl_easy_perform(h);
                long code = 0;
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
                pthread_mutex_unlock(&r->small_lock[k]);
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
                                img__reg_resp_done(&resp);
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
                        img__reg_resp_done(&resp);
                        return *ret_buf ? 0 : -ENOMEM;
                }
                char etext[256];
                img__reg_error_text(b.buf, b.len, etext, sizeof(etext));
                free(b.buf);
                _cleanup_free_ char *www = TAKE_PTR(resp.www_auth);
                _cleanup_free_ char *retry_after = TAKE_PTR(resp.retry_after);
                img__reg_resp_done(&resp);
                if (b.too_big)
                        return cc_error_set(err, EFBIG, "GET %s: larger than the %llu-byte limit",
                                            url, (unsigned long long)max);
                if (c == CURLE_OK && code == 401 && !auth_done && www) {
                        auth_done = true;
                        int q = img__reg_authorize(r, www, err);
                        if (q < 0)
                                return q;
                        attempt--;
                        continue;
                }
                bool transient =
                        c != CURLE_OK ? img__reg_curl_transient(c) : img__reg_http_transient(code);
                if (transient && attempt < r->retries) {
                        uint64_t d = img__reg_retry_delay_ms(retry_after, attempt);
                        cc_log_debug("GET %s: %s, retry in %llu ms", url,
                                     c != CURLE_OK ? curl_easy_strerror(c) : "HTTP error",
                                     (unsigned long long)d);
                        img__reg_sleep_ms(d);
                        continue;
                }
                if (c != CURLE_OK)
                        return cc_error_set(err, c == CURLE_ABORTED_BY_CALLBACK ? ETIMEDOUT : EIO,
                                            "GET %s: %s", url,
                                            c == CURLE_ABORTED_BY_CALLBACK ? "stalled"
                                                                           : curl_easy_strerror(c));
                if (code == 401 || code == 403) {
                        _cleanup_free_ char *what = NULL;
                        return asprintf(&what, "GET %s", url) < 0
                                       ? -ENOMEM
                                       : img__reg_refused(r, code, what, etext, err);
                }
                return cc_error_set(err, code == 404 ? ENOENT : EIO, "GET %s: HTTP %ld%s", url,
                                    code, etext);
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
                struct img_reg_resp resp = {0};
                struct img_reg_stall st = {.limit_ms = r->stall_ms};
                struct img_reg_body b = {.max = 64 * 1024};
                struct curl_slist *hl = img__reg_request_headers(r, NULL, 0), *t;
                char ct[160];
                if (content_type) {
                        snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
                        if ((t = curl_slist_append(hl, ct)))
                                hl = t;
                }
                img__reg_easy_common(r, h, url, &resp, &st);
                curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
                curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
                curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
                curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, img__reg_body_cb);
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
                img__reg_stall_reset(&st);
                CURLcode c = curl_easy_perform(h);
                long code = 0;
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
                curl_easy_cleanup(h);
                curl_slist_free_all(hl);
                char etext[256];
                img__reg_error_text(b.buf, b.len, etext, sizeof(etext));
                free(b.buf);
                _cleanup_free_ char *www = TAKE_PTR(resp.www_auth);
                _cleanup_free_ char *loc = TAKE_PTR(resp.location);
                img__reg_resp_done(&resp);
                if (c != CURLE_OK)
                        return cc_error_set(err, EIO, "%s %s: %s", method, url,
                                            up && up->failed ? "reading the blob failed"
                                                             : curl_easy_strerror(c));
                if (code == 401 && !auth_done && www) {
                        auth_done = true;
                        int q = img__reg_authorize(r, www, err);
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
                if (code == 401 || code == 403) {
                        _cleanup_free_ char *what = NULL;
                        return asprintf(&what, "%s %s", method, url) < 0
                                       ? -ENOMEM
                                       : img__reg_refused(r, code, what, etext, err);
                }
                if (code >= 300)
                        return cc_error_set(err, EIO, "%s %s: HTTP %ld%s", method, url, code,
                                            etext);
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