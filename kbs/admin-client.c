/*
 * The admin side of Trustee's API as cc-kbs's CLI and cc-image-encrypt use it: one HTTP(S)
 * request with an EdDSA admin token minted from the Ed25519 private key (libcurl).
 */
#include <curl/curl.h>
#include <errno.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kbs/kbs.h"

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
        return fwrite(p, size, n, (FILE *)ud);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(CURL *, curl_easy_cleanup)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct curl_slist *, curl_slist_free_all)

static int mint(const char *path, char **ret, struct cc_error **err)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return cc_error_set(err, errno, "%s: %m", path);
        EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        int r = k ? kbs_admin_token_mint(k, (int64_t)time(NULL), 300, ret, err)
                  : cc_error_set(err, EINVAL, "%s: not a PEM private key", path);
        EVP_PKEY_free(k);
        return r < 0 ? cc_error_wrap(err, EINVAL, "%s", path) : 0;
}

int kbs_admin_call(const struct kbs_admin_client *cl, const char *method, const char *path,
                   const void *body, size_t len, const char *content_type, char **ret_body,
                   struct cc_error **err)
{
        _cleanup_free_ char *token = NULL, *url = NULL, *auth = NULL, *resp = NULL;
        size_t resp_len = 0;
        int r;
        if (cl->admin_key) {
                r = mint(cl->admin_key, &token, err);
                if (r < 0)
                        return r;
                if (asprintf(&auth, "Authorization: Bearer %s", token) < 0)
                        return -ENOMEM;
        }
        if (asprintf(&url, "%s/kbs/v0/%s", cl->url, path) < 0)
                return -ENOMEM;
        _cleanup_(curl_easy_cleanupp) CURL *c = curl_easy_init();
        _cleanup_fclose_ FILE *out = open_memstream(&resp, &resp_len);
        _cleanup_(curl_slist_free_allp) struct curl_slist *hdrs = NULL;
        char ct[128];
        if (!c || !out)
                return -ENOMEM;
        if (auth)
                hdrs = curl_slist_append(hdrs, auth);
        if (content_type) {
                snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
                hdrs = curl_slist_append(hdrs, ct);
        }
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (body) {
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        }
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
        if (cl->cacert)
                curl_easy_setopt(c, CURLOPT_CAINFO, cl->cacert);
        if (cl->insecure) {
                curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
                curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
        }
        CURLcode rc = curl_easy_perform(c);
        fflush(out);
        if (rc != CURLE_OK)
                return cc_error_set(err, EIO, "%s %s: %s", method, url, curl_easy_strerror(rc));
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (status != 200)
                return cc_error_set(err, EPERM, "%s %s: HTTP %ld: %.*s", method, url, status,
                                    (int)(resp_len > 1024 ? 1024 : resp_len), resp ? resp : "");
        if (ret_body) {
                fclose(TAKE_PTR(out));
                *ret_body = TAKE_PTR(resp);
        }
        return 0;
}
