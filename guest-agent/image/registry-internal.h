#pragma once
/*
 * What the files of the registry client share: registry.c (the client, small GETs with
 * retries, uploads), registry-auth.c (401 challenges, credentials, containers-auth.json) and
 * registry-blob.c (the streaming blob reader). Internal to libccimage; the API the rest of the
 * library uses is in image-internal.h.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cc/error.h"

/* Largest chunk the blob reader holds (libcurl's buffer size for blob transfers). */
#define IMG_REG_CHUNK_SIZE (256 * 1024)

struct img_registry {
        char *host, *repo, *scheme;
        char *ca_file;
        char *user, *password;
        unsigned retries, stall_ms, connect_ms;
        pthread_mutex_t lock; /* guards authz */
        char *authz;          /* "Authorization: ..." header line, or NULL */
        /* The handles of the small GETs (manifests, config, signatures), kept so that they reuse
         * their connections: under TCG and slirp a new TCP connection costs ~10 ms. A GET takes
         * the first when it is free, else the second: signatures read ahead of the manifest GET
         * (pull.c) go beside it on a connection of their own. */
        pthread_mutex_t small_lock[2];
        CURL *small[2];
};

/* The response headers we act on; reset at every status line (redirects, 100-continue). */
struct img_reg_resp {
        char *content_type;
        char *www_auth;
        char *retry_after;
        char *content_range;
        char *docker_digest;
        char *location;
        char *xrss; /* X-Registry-Supports-Signatures */
};

/* Stall detection through the progress callback: abort when no byte came for stall_ms. */
struct img_reg_stall {
        unsigned limit_ms;
        uint64_t last_ms;
        curl_off_t last_now;
        bool fired;
};
/* Growable response body with a hard limit. */
struct img_reg_body {
        char *buf;
        size_t len, cap, max;
        bool too_big;
};

void img__reg_resp_done(struct img_reg_resp *h);
void img__reg_stall_reset(struct img_reg_stall *s);
/* The options every request shares: URL, protocols, timeouts, CA, header and stall callbacks. */
void img__reg_easy_common(struct img_registry *r, CURL *h, const char *url,
                          struct img_reg_resp *resp, struct img_reg_stall *st);
/* Accept (when given), the shared Authorization, and "Range: bytes=N-" when range_from > 0. */
struct curl_slist *img__reg_request_headers(struct img_registry *r, const char *accept,
                                            uint64_t range_from);
size_t img__reg_body_cb(char *data, size_t size, size_t n, void *userdata);
/* ": code: message" of the first error of a registry's JSON error body, or "". */
void img__reg_error_text(const char *body, size_t len, char *out, size_t out_size);
uint64_t img__reg_retry_delay_ms(const char *retry_after, unsigned attempt);
void img__reg_sleep_ms(uint64_t ms);
bool img__reg_curl_transient(CURLcode c);
bool img__reg_http_transient(long code);

/* Answers a 401 challenge (Basic, or Bearer through the token server): sets r->authz for the
 * following requests. */
int img__reg_authorize(struct img_registry *r, const char *challenge, struct cc_error **err);
/* The error for a request the registry still refused with 401 (or 403): names the registry,
 * the request, the registry's own error text, and whether credentials were sent. */
int img__reg_refused(const struct img_registry *r, long code, const char *what, const char *etext,
                     struct cc_error **err);
