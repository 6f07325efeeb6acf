/*
 * The streaming blob reader of the layer pipeline. It never buffers more than one libcurl
 * chunk: when the consumer has not taken the previous chunk, the write callback pauses the
 * transfer (CURL_WRITEFUNC_PAUSE) and the next img__blob_next() resumes it. Its digest and
 * size checks run on exactly the bytes delivered, so a blob is either verified at EOF or
 * reported as failed. A transfer that broke after N bytes resumes with "Range: bytes=N-";
 * bytes already delivered are never delivered twice (if the server ignores Range, the first N
 * bytes are skipped).
 */
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/log.h"

#include "guest-agent/image/image-internal.h"
#include "guest-agent/image/registry-internal.h"

struct img_blob {
        struct img_registry *r;
        char digest[72];
        uint64_t size;
        char *url;
        CURLM *multi;
        CURL *easy;
        struct curl_slist *hdrs;
        struct img_reg_resp resp;
        struct img_reg_stall stall;
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
        if (len > IMG_REG_CHUNK_SIZE) {
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
        img__reg_resp_done(&b->resp);
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
        b->hdrs = img__reg_request_headers(b->r, NULL, b->req_from);
        b->stall = (struct img_reg_stall){.limit_ms = b->r->stall_ms};
        img__reg_easy_common(b->r, b->easy, b->url, &b->resp, &b->stall);
        curl_easy_setopt(b->easy, CURLOPT_HTTPHEADER, b->hdrs);
        curl_easy_setopt(b->easy, CURLOPT_BUFFERSIZE, (long)IMG_REG_CHUNK_SIZE);
        curl_easy_setopt(b->easy, CURLOPT_WRITEFUNCTION, blob_write_cb);
        curl_easy_setopt(b->easy, CURLOPT_WRITEDATA, b);
        img__reg_stall_reset(&b->stall);
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
        b->buf = malloc(IMG_REG_CHUNK_SIZE);
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
        img__reg_resp_done(&b->resp);
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
                int q = www ? img__reg_authorize(b->r, www, err) : -ENOMEM;
                return q < 0 ? q : 1;
        }
        bool transient = c != CURLE_OK ? img__reg_curl_transient(c) : img__reg_http_transient(code);
        if (transient && b->attempt < b->r->retries) {
                uint64_t d = img__reg_retry_delay_ms(c == CURLE_OK ? b->resp.retry_after : NULL,
                                                     b->attempt);
                cc_log_debug("blob %s: %s at %llu/%llu bytes, retry %u in %llu ms", b->digest,
                             c != CURLE_OK ? curl_easy_strerror(c) : "HTTP error",
                             (unsigned long long)b->offset, (unsigned long long)b->size,
                             b->attempt + 1, (unsigned long long)d);
                b->attempt++;
                img__reg_sleep_ms(d);
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
        img__reg_error_text(b->errbody, b->errlen, etext, sizeof(etext));
        if (code == 401 || code == 403) {
                _cleanup_free_ char *what = NULL;
                return asprintf(&what, "blob %s", b->digest) < 0
                               ? -ENOMEM
                               : img__reg_refused(b->r, code, what, etext, err);
        }
        return cc_error_set(err, code == 404 ? ENOENT : EIO, "blob %s: HTTP %ld%s", b->digest, code,
                            etext);
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
                        img__reg_stall_reset(&b->stall);
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