/*
 * Registry authentication. A 401 carries WWW-Authenticate: "Bearer" sends us to the token
 * server (realm, service, scope; with Basic credentials when we have them), "Basic" makes us
 * send the credentials. The resulting Authorization header is shared by every request of the
 * pull (token refreshed on the next 401). Credentials come from the caller (PullImage's
 * source_creds) or from a containers-auth.json document: a file, or one held in memory (the
 * agent's, released by a KBS after attestation, which never touches a disk).
 */
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cc/cleanup.h"
#include "cc/log.h"
#include "cc/macro.h"

#include "guest-agent/image/image-internal.h"
#include "guest-agent/image/registry-internal.h"

#define MAX_TOKEN_RESPONSE (1 << 20)

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

/* Asks the token server at realm for a Bearer token (Distribution's token flow), sending our
 * Basic credentials when we have any; *ret is the Authorization header line. */
static int token_request(struct img_registry *r, const char *realm, const char *service,
                         const char *scope, const char *basic, char **ret, struct cc_error **err)
{
        if (cc_isempty(realm) || (strncmp(realm, "https://", 8) && strncmp(realm, "http://", 7)))
                return cc_error_set(err, EACCES, "registry %s: bad token realm", r->host);
        CURL *h = curl_easy_init();
        if (!h)
                return -ENOMEM;
        _cleanup_free_ char *def_scope = NULL, *url = NULL, *auth_hdr = NULL;
        char *esc_service = curl_easy_escape(h, service ? service : "", 0);
        char *esc_scope = NULL;
        int n = -1;
        if (scope || asprintf(&def_scope, "repository:%s:pull", r->repo) >= 0)
                esc_scope = curl_easy_escape(h, scope ? scope : def_scope, 0);
        if (esc_service && esc_scope)
                n = asprintf(&url, "%s%sservice=%s&scope=%s", realm, strchr(realm, '?') ? "&" : "?",
                             esc_service, esc_scope);
        curl_free(esc_service);
        curl_free(esc_scope);
        struct curl_slist *hl = NULL;
        if (n >= 0 && basic &&
            (asprintf(&auth_hdr, "Authorization: Basic %s", basic) < 0 ||
             !(hl = curl_slist_append(NULL, auth_hdr))))
                n = -1;
        if (n < 0) {
                curl_easy_cleanup(h);
                return -ENOMEM;
        }
        struct img_reg_resp resp = {0};
        struct img_reg_stall st = {.limit_ms = r->stall_ms};
        struct img_reg_body b = {.max = MAX_TOKEN_RESPONSE};
        img__reg_easy_common(r, h, url, &resp, &st);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, img__reg_body_cb);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        CURLcode c = curl_easy_perform(h);
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_cleanup(h);
        curl_slist_free_all(hl);
        if (auth_hdr)
                OPENSSL_cleanse(auth_hdr, strlen(auth_hdr));
        img__reg_resp_done(&resp);
        _cleanup_free_ char *bbuf = b.buf;
        if (c != CURLE_OK)
                return cc_error_set(err, EACCES, "registry %s: token server %s: %s", r->host, realm,
                                    curl_easy_strerror(c));
        if (code == 401 || code == 403)
                return cc_error_set(err, EACCES, "registry %s: token server %s: HTTP %ld, %s",
                                    r->host, realm, code,
                                    basic ? "the credentials were refused"
                                          : "it wants credentials and the pull has none for "
                                            "this registry");
        if (code != 200)
                return cc_error_set(err, EACCES, "registry %s: token server %s: HTTP %ld", r->host,
                                    realm, code);
        struct json_object *o = img__json_parse(bbuf, b.len, err);
        if (!o)
                return cc_error_wrap(err, EACCES, "registry %s: token server response", r->host);
        const char *tok = NULL;
        struct json_object *v;
        if ((json_object_object_get_ex(o, "token", &v) ||
             json_object_object_get_ex(o, "access_token", &v)) &&
            json_object_is_type(v, json_type_string))
                tok = json_object_get_string(v);
        if (cc_isempty(tok) || strpbrk(tok, "\r\n")) {
                json_object_put(o);
                return cc_error_set(err, EACCES, "registry %s: token server %s gave no token",
                                    r->host, realm);
        }
        n = asprintf(ret, "Authorization: Bearer %s", tok);
        json_object_put(o);
        return n < 0 ? -ENOMEM : 0;
}

int img__reg_authorize(struct img_registry *r, const char *challenge, struct cc_error **err)
{
        _cleanup_free_ char *scheme = NULL, *realm = NULL, *service = NULL, *scope = NULL;
        int q = img__auth_parse(challenge, &scheme, &realm, &service, &scope);
        if (q < 0)
                return cc_error_set(err, EACCES, "registry %s: HTTP 401 with a bad challenge",
                                    r->host);
        _cleanup_free_ char *basic = NULL;
        if (r->user) {
                _cleanup_free_ char *up = NULL;
                if (asprintf(&up, "%s:%s", r->user, r->password ? r->password : "") < 0)
                        return -ENOMEM;
                basic = img__b64_encode((const uint8_t *)up, strlen(up));
                OPENSSL_cleanse(up, strlen(up));
                if (!basic)
                        return -ENOMEM;
        }
        _cleanup_free_ char *line = NULL;
        if (!strcasecmp(scheme, "Basic")) {
                if (!basic)
                        return cc_error_set(err, EACCES,
                                            "registry %s: HTTP 401, it requires credentials "
                                            "(Basic) and the pull has none for this registry",
                                            r->host);
                if (asprintf(&line, "Authorization: Basic %s", basic) < 0)
                        return -ENOMEM;
        } else if (!strcasecmp(scheme, "Bearer")) {
                if ((q = token_request(r, realm, service, scope, basic, &line, err)) < 0)
                        return q;
        } else {
                return cc_error_set(err, EACCES, "registry %s: unsupported auth scheme '%s'",
                                    r->host, scheme);
        }
        if (basic)
                OPENSSL_cleanse(basic, strlen(basic));
        pthread_mutex_lock(&r->lock);
        if (r->authz)
                OPENSSL_cleanse(r->authz, strlen(r->authz));
        free(r->authz);
        r->authz = TAKE_PTR(line);
        pthread_mutex_unlock(&r->lock);
        cc_log_debug("registry %s: authorized with %s", r->host, scheme);
        return 0;
}

int img__reg_refused(const struct img_registry *r, long code, const char *what, const char *etext,
                     struct cc_error **err)
{
        return cc_error_set(err, EACCES, "registry %s: HTTP %ld on %s%s (%s)", r->host, code, what,
                            etext,
                            !r->user      ? "the pull has no credentials for this registry"
                            : code == 401 ? "the credentials were refused"
                                          : "the credentials give no access to this");
}

/* ---- containers-auth.json ---- */

/* user:password for `host` from a containers-auth.json document ({"auths":{"host":{"auth":
 * "base64(user:pass)"}}}, Docker Hub's legacy keys too); 0 with *ret NULL if none. */
int img__auth_json_lookup(const char *json, size_t len, const char *host, char **ret)
{
        *ret = NULL;
        struct json_object *o = img__json_parse(json, len, NULL);
        if (!o)
                return -EINVAL;
        struct json_object *auths, *entry, *auth;
        bool hub = !strcmp(host, "registry-1.docker.io");
        const char *keys[] = {host, hub ? "docker.io" : NULL,
                              hub ? "https://index.docker.io/v1/" : NULL};
        int r = 0;
        if (json_object_object_get_ex(o, "auths", &auths) &&
            !json_object_is_type(auths, json_type_object))
                r = -EINVAL;
        for (size_t i = 0; r == 0 && i < CC_ARRAY_SIZE(keys) && !*ret; i++) {
                if (!keys[i] || !json_object_object_get_ex(auths, keys[i], &entry) ||
                    !json_object_object_get_ex(entry, "auth", &auth))
                        continue;
                if (!json_object_is_type(auth, json_type_string)) {
                        r = -EINVAL;
                        break;
                }
                const char *s = json_object_get_string(auth);
                uint8_t *raw;
                size_t n;
                if (img__b64_decode(s, strlen(s), false, &raw, &n) < 0) {
                        r = -EINVAL;
                        break;
                }
                /* "user:password", no NUL inside: anything else is not a credential. */
                if (!memchr(raw, ':', n) || memchr(raw, '\0', n))
                        r = -EINVAL;
                else if (!(*ret = strndup((char *)raw, n)))
                        r = -ENOMEM;
                OPENSSL_cleanse(raw, n);
                free(raw);
        }
        json_object_put(o);
        return r;
}

int img__auth_creds(const struct img_pull_opts *o, const char *host, char **ret,
                    struct cc_error **err)
{
        *ret = NULL;
        int r;
        if (o->auth_json) {
                if ((r = img__auth_json_lookup(o->auth_json, o->auth_json_len, host, ret)) < 0)
                        return cc_error_set(err, -r,
                                            "registry credentials (%s): not a valid "
                                            "containers-auth.json document",
                                            o->auth_json_from ? o->auth_json_from : "in memory");
                if (*ret) {
                        cc_log_info("registry %s: credentials from %s", host,
                                    o->auth_json_from ? o->auth_json_from : "memory");
                        return 0;
                }
        }
        if (!o->auth_file)
                return 0;
        FILE *f = fopen(o->auth_file, "re");
        if (!f)
                return errno == ENOENT ? 0
                                       : cc_error_set(err, errno, "auth file '%s' unreadable: %m",
                                                      o->auth_file);
        char buf[65536];
        size_t n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        r = img__auth_json_lookup(buf, n, host, ret);
        OPENSSL_cleanse(buf, sizeof(buf));
        if (r < 0)
                return cc_error_set(err, -r, "auth file '%s': %s", o->auth_file,
                                    r == -EINVAL ? "not a valid containers-auth.json document"
                                                 : "unreadable");
        return 0;
}
