/*
 * cc-kbs HTTP server: Trustee's KBS endpoints (ref 1.1) on libmicrohttpd.
 *
 * Why libmicrohttpd (Debian 12: libmicrohttpd-dev 0.9.75): it is a small, embeddable HTTP/1.1
 * server library with TLS built in (GnuTLS, certificate and key given as PEM in memory), a thread
 * pool over epoll, and the limits a daemon facing hostile clients needs as plain options
 * (connection count, per-connection memory for headers, idle timeout), with cookies and headers
 * parsed for us. The alternatives were worse fits: nghttp2 (already a dependency) speaks only
 * HTTP/2, which Trustee's clients do not use over plain HTTP; libevent's evhttp has no TLS of
 * its own; a hand-written HTTP/1.1 parser would be one more untrusted-input decoder to own.
 *
 * Error bodies are Trustee's: {"type": KBS_ERROR_PREFIX <Variant>, "detail": <text>}, 401 for
 * everything except unknown plugins and paths (404), no Content-Type (ref 1.9). Reasons a
 * client is refused are logged, never sent. Logs never contain a resource's bytes, a token or
 * a nonce.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "cc/fileio.h"
#include "cc/json.h"
#include "cc/log.h"

#include "kbs/kbs.h"

struct kbs_server {
        const struct kbs_config *cfg;
        struct MHD_Daemon *daemon;
        struct kbs_sessions *sessions;
        struct kbs_store *store;
        struct kbs_token_signer signer;
        struct kbs_verifiers verifiers;
        EVP_PKEY *admin_pub;
        pthread_rwlock_t policy_lock;
        struct kbs_policy *policy;
        char *cert_pem;
        char *key_pem;
};

/* Per-request state: the body as it arrives. */
struct request {
        char *body;
        size_t len;
        size_t cap;
        bool too_large;
        bool answered;
        struct timespec start;
};

static int64_t now_s(void)
{
        return (int64_t)time(NULL);
}

static const char *peer(struct MHD_Connection *c, char *buf, size_t size)
{
        const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        buf[0] = 0;
        if (ci && ci->client_addr) {
                const struct sockaddr *sa = ci->client_addr;
                if (sa->sa_family == AF_INET)
                        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf,
                                  (socklen_t)size);
                else if (sa->sa_family == AF_INET6)
                        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf,
                                  (socklen_t)size);
        }
        return buf;
}

/* One logfmt line per answered request; `reason` is the server-side why of a refusal. */
static void log_request(struct MHD_Connection *c, struct request *rq, const char *method,
                        const char *url, unsigned status, const char *reason)
{
        char addr[64], fields[1024], path[300];
        struct timespec end;
        clock_gettime(CLOCK_MONOTONIC, &end);
        double ms = (double)(end.tv_sec - rq->start.tv_sec) * 1e3 +
                    (double)(end.tv_nsec - rq->start.tv_nsec) / 1e6;
        snprintf(path, sizeof(path), "%.256s", url);
        size_t n = (size_t)snprintf(fields, sizeof(fields), "method=%.16s path=", method);
        n += cc_logfmt_quote(fields + n, sizeof(fields) - n, path);
        if (n < sizeof(fields))
                n += (size_t)snprintf(fields + n, sizeof(fields) - n,
                                      " status=%u duration_ms=%.3f remote=%s", status, ms,
                                      peer(c, addr, sizeof(addr)));
        if (reason && n < sizeof(fields)) {
                n += (size_t)snprintf(fields + n, sizeof(fields) - n, " reason=");
                if (n < sizeof(fields))
                        cc_logfmt_quote(fields + n, sizeof(fields) - n, reason);
        }
        cc_log_full(status < 400 ? CC_LOG_INFO : CC_LOG_WARN, 0, fields, "request");
}

static enum MHD_Result send_response(struct MHD_Connection *c, unsigned status, const char *body,
                                     size_t len, const char *content_type, const char *cookie)
{
        struct MHD_Response *resp =
                MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
        if (!resp)
                return MHD_NO;
        if (content_type)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        if (cookie)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, cookie);
        enum MHD_Result r = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return r;
}

struct ctx {
        struct kbs_server *srv;
        struct MHD_Connection *conn;
        struct request *rq;
        const char *method;
        const char *url;
};

static enum MHD_Result reply(struct ctx *x, unsigned status, const char *body,
                             const char *content_type, const char *cookie)
{
        log_request(x->conn, x->rq, x->method, x->url, status, NULL);
        x->rq->answered = true;
        return send_response(x->conn, status, body ? body : "", body ? strlen(body) : 0,
                             content_type, cookie);
}

/* Trustee's error body (ref 1.9); `reason` goes to the log only. */
static enum MHD_Result fail(struct ctx *x, unsigned status, const char *variant, const char *detail,
                            const char *reason)
{
        _cleanup_free_ char *qt = NULL, *qd = NULL, *body = NULL;
        size_t n1 = 0, c1 = 0, n2 = 0, c2 = 0;
        char type[128];
        snprintf(type, sizeof(type), KBS_ERROR_PREFIX "%s", variant);
        log_request(x->conn, x->rq, x->method, x->url, status, reason ? reason : detail);
        x->rq->answered = true;
        if (cc_json_quote(type, strlen(type), &qt, &n1, &c1) < 0 ||
            cc_json_quote(detail, strlen(detail), &qd, &n2, &c2) < 0 ||
            asprintf(&body, "{\"type\":%s,\"detail\":%s}", qt, qd) < 0)
                return MHD_NO;
        return send_response(x->conn, status, body, strlen(body), NULL, NULL);
}

static void cookie_header(const struct kbs_session_view *s, char *buf, size_t size)
{
        struct tm tm;
        time_t t = (time_t)s->expires;
        char date[64];
        gmtime_r(&t, &tm);
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        snprintf(buf, size, KBS_SESSION_COOKIE "=%s; Expires=%s", s->id, date);
}

/* ---- POST /kbs/v0/auth ---- */

static enum MHD_Result handle_auth(struct ctx *x)
{
        struct kbs_auth_request req;
        _cleanup_free_ char *reason = NULL;
        char detail[512], cookie[160], body[160];
        if (kbs_parse_auth(x->rq->body, x->rq->len, &req, &reason) < 0) {
                snprintf(detail, sizeof(detail),
                         "Attestation error: RCAR handshake Auth failed: %s",
                         reason ? reason : "deserialize Request");
                return fail(x, MHD_HTTP_UNAUTHORIZED, "AttestationError", detail, NULL);
        }
        struct kbs_session_view s = {};
        int r = kbs_session_create(x->srv->sessions, req.tee, now_s(), &s);
        if (r < 0)
                return fail(x, MHD_HTTP_UNAUTHORIZED, "AttestationError",
                            "Attestation error: RCAR handshake Auth failed: too many sessions",
                            r == -EBUSY ? "session table full" : strerror(-r));
        free(s.token);
        cookie_header(&s, cookie, sizeof(cookie));
        snprintf(body, sizeof(body), "{\"nonce\":\"%s\",\"extra-params\":\"\"}", s.nonce);
        return reply(x, MHD_HTTP_OK, body, "application/json", cookie);
}

/* ---- POST /kbs/v0/attest ---- */

#define ATTEST_FAILED "Attestation error: RCAR handshake Attest failed"

/* The token's claims in Trustee's EAR layout (ref 3.3), plus our own policy inputs. */
static struct json_object *token_claims(struct kbs_server *srv, enum kbs_tee tee,
                                        const struct kbs_attest_request *a,
                                        struct json_object *tee_claims,
                                        const struct kbs_initdata *init)
{
        int64_t now = now_s();
        struct json_object *c = json_object_new_object();
        struct json_object *ae = json_object_new_object();
        struct json_object *rdc = json_object_new_object();
        struct json_object *cpu0 = json_object_new_object();
        struct json_object *submods = json_object_new_object();
        struct json_object *ours = json_object_new_object();
        if (!c || !ae || !rdc || !cpu0 || !submods || !ours) {
                json_object_put(c);
                json_object_put(ae);
                json_object_put(rdc);
                json_object_put(cpu0);
                json_object_put(submods);
                json_object_put(ours);
                return NULL;
        }
        struct json_object *v;
        if (json_object_object_get_ex(tee_claims, "report_data", &v)) {
                json_object_object_add(ae, "report_data", json_object_get(v));
                json_object_object_del(tee_claims, "report_data");
        }
        json_object_object_add(rdc, "additional-evidence",
                               json_object_new_string(a->additional_evidence));
        json_object_object_add(rdc, "nonce", json_object_new_string(a->nonce));
        json_object_object_add(rdc, "tee-pubkey", kbs_jwk_to_json(&a->key));
        json_object_object_add(ae, "runtime_data_claims", rdc);
        if (json_object_object_get_ex(tee_claims, "init_data", &v)) {
                json_object_object_add(ae, "init_data", json_object_get(v));
                json_object_object_del(tee_claims, "init_data");
                json_object_object_add(ae, "init_data_claims",
                                       init ? json_object_get(init->claims) : NULL);
        }
        if (json_object_object_get_ex(tee_claims, "measurement", &v))
                json_object_object_add(ours, "measurement", json_object_get(v));
        json_object_object_add(ae, kbs_tee_to_string(tee), json_object_get(tee_claims));
        /* sample: nothing is measured (Trustee: contraindicated with an empty RVPS). */
        json_object_object_add(
                cpu0, "ear.status",
                json_object_new_string(tee == KBS_TEE_SAMPLE ? "contraindicated" : "affirming"));
        json_object_object_add(cpu0, "ear.appraisal-policy-id", json_object_new_string("default"));
        json_object_object_add(cpu0, "ear.veraison.annotated-evidence", ae);
        json_object_object_add(submods, "cpu0", cpu0);
        json_object_object_add(
                c, "eat_profile",
                json_object_new_string("tag:github.com,2024:confidential-containers/Trustee"));
        json_object_object_add(c, "iat", json_object_new_int64(now));
        json_object_object_add(c, "exp", json_object_new_int64(now + srv->cfg->token_lifetime_s));
        json_object_object_add(c, "iss", json_object_new_string("cc-kbs"));
        json_object_object_add(c, "submods", submods);
        json_object_object_add(ours, "tee", json_object_new_string(kbs_tee_to_string(tee)));
        if (init) {
                _cleanup_free_ char *h = cc_hex(init->digest, init->digest_len);
                json_object_object_add(ours, "init_data_digest",
                                       json_object_new_string(h ? h : ""));
        }
        json_object_object_add(c, "cc-kbs", ours);
        return c;
}

static enum MHD_Result handle_attest(struct ctx *x)
{
        struct kbs_server *srv = x->srv;
        _cleanup_error_ struct cc_error *err = NULL;
        const char *id = MHD_lookup_connection_value(x->conn, MHD_COOKIE_KIND, KBS_SESSION_COOKIE);
        if (!id)
                return fail(x, MHD_HTTP_UNAUTHORIZED, "AttestationError", ATTEST_FAILED,
                            "no session cookie");
        struct kbs_attest_request a = {};
        if (kbs_parse_attest(x->rq->body, x->rq->len, &a, &err) < 0)
                return fail(x, MHD_HTTP_UNAUTHORIZED, "AttestationError", ATTEST_FAILED,
                            cc_error_message(err));
        struct kbs_session_view s = {};
        char cookie[160];
        enum MHD_Result res;
        if (kbs_session_get(srv->sessions, id, now_s(), &s) < 0) {
                kbs_attest_request_done(&a);
                return fail(x, MHD_HTTP_UNAUTHORIZED, "AttestationError", ATTEST_FAILED,
                            "unknown or expired session");
        }
        _cleanup_free_ char *token = TAKE_PTR(s.token);
        cookie_header(&s, cookie, sizeof(cookie));
        if (s.state == KBS_SESSION_ATTESTED) {
                /* Trustee returns the stored token again without re-verifying (ref 1.4). */
                kbs_attest_request_done(&a);
                _cleanup_free_ char *body = NULL;
                if (asprintf(&body, "{\"token\":\"%s\"}", token) < 0)
                        return MHD_NO;
                return reply(x, MHD_HTTP_OK, body, "application/json", cookie);
        }
        if (strcmp(a.nonce, s.nonce) != 0) {
                kbs_attest_request_done(&a);
                return fail(x, MHD_HTTP_UNAUTHORIZED, "AttestationError", ATTEST_FAILED,
                            "nonce does not match the session's challenge");
        }
        uint8_t digest[48];
        struct kbs_initdata init = {};
        _cleanup_json_ struct json_object *claims = NULL;
        int r = kbs_runtime_data_digest(&a.key, s.nonce, a.additional_evidence, digest);
        if (r < 0)
                cc_error_set(&err, -r, "runtime data cannot be canonicalized");
        if (r == 0 && a.has_init_data)
                r = kbs_initdata_parse(a.init_data_format, a.init_data_body, a.init_data_len, &init,
                                       &err);
        if (r == 0) {
                struct kbs_evidence_in in = {
                        .tee = s.tee,
                        .evidence = a.primary_evidence,
                        .report_data = digest,
                        .report_data_len = sizeof(digest),
                        .init_data = a.has_init_data ? &init : NULL,
                };
                r = kbs_verify_evidence(&srv->verifiers, &in, &claims, &err);
        }
        if (r < 0) {
                kbs_initdata_done(&init);
                kbs_attest_request_done(&a);
                return fail(x, MHD_HTTP_UNAUTHORIZED, "AttestationError", ATTEST_FAILED,
                            cc_error_message(err));
        }
        _cleanup_json_ struct json_object *tc =
                token_claims(srv, s.tee, &a, claims, a.has_init_data ? &init : NULL);
        kbs_initdata_done(&init);
        kbs_attest_request_done(&a);
        free(TAKE_PTR(token));
        if (!tc || kbs_token_issue(&srv->signer, tc, &token, &err) < 0 ||
            kbs_session_set_token(srv->sessions, s.id, token) < 0)
                return fail(x, MHD_HTTP_UNAUTHORIZED, "AttestationError", ATTEST_FAILED,
                            err ? cc_error_message(err) : "issuing the token failed");
        _cleanup_free_ char *body = NULL;
        if (asprintf(&body, "{\"token\":\"%s\"}", token) < 0)
                return MHD_NO;
        res = reply(x, MHD_HTTP_OK, body, "application/json", cookie);
        return res;
}

/* ---- GET /kbs/v0/resource/<repo>/<type>/<tag> ---- */

/* The attested session's token, else the Bearer token, else NULL (ref 1.7). */
static char *request_token(struct ctx *x)
{
        const char *id = MHD_lookup_connection_value(x->conn, MHD_COOKIE_KIND, KBS_SESSION_COOKIE);
        if (id) {
                struct kbs_session_view s = {};
                if (kbs_session_get(x->srv->sessions, id, now_s(), &s) == 0) {
                        if (s.state == KBS_SESSION_ATTESTED)
                                return s.token;
                        free(s.token);
                }
        }
        const char *auth = MHD_lookup_connection_value(x->conn, MHD_HEADER_KIND,
                                                       MHD_HTTP_HEADER_AUTHORIZATION);
        if (auth && strncmp(auth, "Bearer ", 7) == 0 && auth[7])
                return strdup(auth + 7);
        return NULL;
}

static const char *claim_str(struct json_object *o, const char *ptr)
{
        struct json_object *v;
        if (cc_json_get(o, ptr, &v, NULL) < 0 || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static enum MHD_Result handle_resource_get(struct ctx *x, const char *path)
{
        struct kbs_server *srv = x->srv;
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_free_ char *token = request_token(x);
        if (!token)
                return fail(x, MHD_HTTP_UNAUTHORIZED, "TokenNotFound",
                            "Attestation Token not found", NULL);
        _cleanup_json_ struct json_object *claims = NULL;
        if (kbs_token_verify(&srv->signer, token, now_s(), &claims, &err) < 0)
                return fail(x, MHD_HTTP_UNAUTHORIZED, "TokenVerifierError", "Token Verifier error",
                            cc_error_message(err));
        struct json_object *key_json;
        struct kbs_jwk key = {};
        if (cc_json_get(
                    claims,
                    "/submods/cpu0/ear.veraison.annotated-evidence/runtime_data_claims/tee-pubkey",
                    &key_json, NULL) < 0 ||
            kbs_jwk_parse(key_json, &key, &err) < 0)
                return fail(x, MHD_HTTP_UNAUTHORIZED, "TokenVerifierError", "Token Verifier error",
                            "token carries no tee-pubkey");
        struct kbs_policy_input in = {
                .tee = claim_str(claims, "/cc-kbs/tee"),
                .measurement = claim_str(claims, "/cc-kbs/measurement"),
                .init_data = claim_str(claims, "/cc-kbs/init_data_digest"),
                .resource = path,
        };
        char why[64];
        pthread_rwlock_rdlock(&srv->policy_lock);
        bool allowed = in.tee && kbs_policy_allows(srv->policy, &in, why, sizeof(why));
        pthread_rwlock_unlock(&srv->policy_lock);
        if (!allowed) {
                kbs_jwk_done(&key);
                char reason[128];
                snprintf(reason, sizeof(reason), "policy: %s denies tee=%s", in.tee ? why : "-",
                         in.tee ? in.tee : "?");
                return fail(x, MHD_HTTP_UNAUTHORIZED, "PolicyDeny", "Access denied by policy",
                            reason);
        }
        _cleanup_free_ uint8_t *data = NULL;
        size_t len = 0;
        int r = -EINVAL;
        if (kbs_resource_path_valid(path))
                r = kbs_store_get(srv->store, path, &data, &len, &err);
        if (r < 0) {
                kbs_jwk_done(&key);
                return fail(x, MHD_HTTP_UNAUTHORIZED, "PluginInternalError",
                            "Plugin internal error",
                            r == -ENOENT   ? "no such resource"
                            : r == -EINVAL ? "invalid resource path"
                                           : cc_error_message(err));
        }
        _cleanup_free_ char *jwe = NULL;
        r = kbs_jwe_encrypt(&key, data, len, &jwe, &err);
        OPENSSL_cleanse(data, len);
        kbs_jwk_done(&key);
        if (r < 0)
                return fail(x, MHD_HTTP_UNAUTHORIZED, "JweError", "JWE failed",
                            cc_error_message(err));
        return reply(x, MHD_HTTP_OK, jwe, "application/json", NULL);
}

/* ---- admin ---- */

/* 0 when the request may administer; else -EPERM with the reason in *reason. */
static int admin_check(struct ctx *x, const char **reason, struct cc_error **err)
{
        if (x->srv->cfg->admin_insecure)
                return 0;
        if (!x->srv->admin_pub) {
                *reason = "admin API disabled (no admin.public_key configured)";
                return -EPERM;
        }
        const char *auth = MHD_lookup_connection_value(x->conn, MHD_HEADER_KIND,
                                                       MHD_HTTP_HEADER_AUTHORIZATION);
        if (!auth || strncmp(auth, "Bearer ", 7) != 0) {
                *reason = "no Bearer token";
                return -EPERM;
        }
        if (kbs_admin_token_verify(x->srv->admin_pub, auth + 7, now_s(), err) < 0) {
                *reason = cc_error_message(*err);
                return -EPERM;
        }
        return 0;
}

static enum MHD_Result handle_resource_admin(struct ctx *x, const char *path, bool del)
{
        _cleanup_error_ struct cc_error *err = NULL;
        const char *why = NULL;
        char detail[300];
        if (admin_check(x, &why, &err) < 0) {
                snprintf(detail, sizeof(detail), "failed to initialize [admin] configuration: %s",
                         why);
                return fail(x, MHD_HTTP_UNAUTHORIZED, "AdminAuthInitialization", detail, NULL);
        }
        if (!kbs_resource_path_valid(path))
                return fail(x, MHD_HTTP_UNAUTHORIZED, "PluginInternalError",
                            "Plugin internal error", "invalid resource path");
        int r = del ? kbs_store_delete(x->srv->store, path, &err)
                    : kbs_store_put(x->srv->store, path, (const uint8_t *)x->rq->body, x->rq->len,
                                    &err);
        if (x->rq->body)
                OPENSSL_cleanse(x->rq->body, x->rq->len);
        if (r < 0)
                return fail(x, MHD_HTTP_UNAUTHORIZED, "PluginInternalError",
                            "Plugin internal error",
                            r == -ENOENT ? "no such resource" : cc_error_message(err));
        cc_log_info("resource %s: %s (%zu bytes)", del ? "deleted" : "stored", path,
                    del ? (size_t)0 : x->rq->len);
        return reply(x, MHD_HTTP_OK, "", del ? NULL : "text/xml", NULL);
}

static enum MHD_Result handle_policy(struct ctx *x, bool set)
{
        struct kbs_server *srv = x->srv;
        _cleanup_error_ struct cc_error *err = NULL;
        const char *why = NULL;
        char detail[512];
        if (admin_check(x, &why, &err) < 0) {
                snprintf(detail, sizeof(detail),
                         "admin access denied for endpoint resource-policy: %s", why);
                return fail(x, MHD_HTTP_UNAUTHORIZED, "AdminAuthAccess", detail, NULL);
        }
        if (!set)
                return reply(x, MHD_HTTP_OK, "[\"resource-policy\"]", "application/json", NULL);
        _cleanup_json_ struct json_object *o = NULL;
        const char *b64;
        _cleanup_free_ uint8_t *text = NULL;
        size_t len = 0;
        _cleanup_(kbs_policy_freep) struct kbs_policy *p = NULL;
        int r = cc_json_parse("policy request", x->rq->body, x->rq->len, 4, &o, &err);
        if (r == 0)
                r = cc_json_get_string(o, "policy", &b64, &err);
        if (r == -ENOENT)
                r = cc_error_set(&err, EINVAL, "missing 'policy'");
        if (r == 0 && cc_b64_decode(b64, strlen(b64), true, &text, &len) < 0)
                r = cc_error_set(&err, EINVAL, "'policy' is not base64url without padding");
        if (r == 0 && memchr(text, 0, len))
                r = cc_error_set(&err, EINVAL, "policy contains a NUL byte");
        if (r == 0)
                r = kbs_policy_parse((const char *)text, len, &p, &err);
        if (r == 0)
                r = kbs_store_policy_set(srv->store, (const char *)text, &err);
        if (r < 0) {
                snprintf(detail, sizeof(detail), "Policy Engine error: %s", cc_error_message(err));
                return fail(x, MHD_HTTP_UNAUTHORIZED, "PolicyEngine", detail, NULL);
        }
        pthread_rwlock_wrlock(&srv->policy_lock);
        struct kbs_policy *old = srv->policy;
        srv->policy = TAKE_PTR(p);
        pthread_rwlock_unlock(&srv->policy_lock);
        kbs_policy_free(old);
        cc_log_info("resource policy replaced (%zu bytes)", len);
        return reply(x, MHD_HTTP_OK, "", NULL, NULL);
}

/* ---- routing ---- */

/* An URL echoed in an error detail: printable ASCII only, so the body stays valid UTF-8. */
static void printable(const char *in, size_t n, char *out, size_t size)
{
        size_t i = 0;
        for (; i < n && in[i] && i + 1 < size; i++)
                out[i] = in[i] >= 0x20 && in[i] < 0x7f ? in[i] : '?';
        out[i] = 0;
}

static enum MHD_Result route(struct ctx *x)
{
        char shown[260];
        const char *url = x->url, *m = x->method;
        bool get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0;
        if (strcmp(url, "/healthz") == 0 && get)
                return reply(x, MHD_HTTP_OK, "", NULL, NULL);
        if (strncmp(url, "/kbs/v0/", 8) != 0) {
                char detail[300];
                printable(url, strlen(url), shown, sizeof(shown));
                snprintf(detail, sizeof(detail), "Invalid request path %s", shown);
                return fail(x, MHD_HTTP_NOT_FOUND, "InvalidRequestPath", detail, NULL);
        }
        const char *rest = url + 8;
        size_t seg = strcspn(rest, "/");
        if (strcmp(rest, "auth") == 0 && post)
                return handle_auth(x);
        if (strcmp(rest, "attest") == 0 && post)
                return handle_attest(x);
        if (strcmp(rest, "resource-policy") == 0 && (post || get))
                return handle_policy(x, post);
        if (seg == 8 && strncmp(rest, "resource", 8) == 0 && rest[8] == '/') {
                const char *path = rest + 9;
                if (get)
                        return handle_resource_get(x, path);
                if (post || strcmp(m, "DELETE") == 0)
                        return handle_resource_admin(x, path, !post);
        }
        char detail[300];
        printable(rest, seg, shown, 65);
        snprintf(detail, sizeof(detail), "Plugin %s not found", shown);
        return fail(x, MHD_HTTP_NOT_FOUND, "PluginNotFound", detail, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
        struct kbs_server *srv = cls;
        struct request *rq = *con_cls;
        if (!rq) {
                rq = calloc(1, sizeof(*rq));
                if (!rq)
                        return MHD_NO;
                clock_gettime(CLOCK_MONOTONIC, &rq->start);
                *con_cls = rq;
                const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
                if (cl && strtoull(cl, NULL, 10) > (unsigned long long)srv->cfg->max_body)
                        rq->too_large = true;
                else
                        return MHD_YES;
        }
        struct ctx x = {.srv = srv, .conn = conn, .rq = rq, .method = method, .url = url};
        if (rq->answered) {
                *upload_data_size = 0; /* discard the rest of a refused body */
                return MHD_YES;
        }
        if (*upload_data_size && !rq->too_large) {
                size_t n = *upload_data_size;
                if (rq->len + n > (size_t)srv->cfg->max_body) {
                        rq->too_large = true;
                } else {
                        if (rq->len + n + 1 > rq->cap) {
                                size_t cap = rq->cap ? rq->cap : 4096;
                                while (cap < rq->len + n + 1)
                                        cap *= 2;
                                char *b = realloc(rq->body, cap);
                                if (!b)
                                        return MHD_NO;
                                rq->body = b;
                                rq->cap = cap;
                        }
                        memcpy(rq->body + rq->len, upload_data, n);
                        rq->len += n;
                        rq->body[rq->len] = 0;
                        *upload_data_size = 0;
                        return MHD_YES;
                }
        }
        if (rq->too_large) {
                /* Answer at once; MHD closes the connection instead of reading the rest. */
                char detail[96];
                *upload_data_size = 0;
                snprintf(detail, sizeof(detail), "request body larger than %lld bytes",
                         (long long)srv->cfg->max_body);
                return fail(&x, MHD_HTTP_CONTENT_TOO_LARGE, "PayloadTooLarge", detail, NULL);
        }
        if (!rq->body) {
                rq->body = strdup("");
                if (!rq->body)
                        return MHD_NO;
        }
        return route(&x);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        struct request *rq = *con_cls;
        if (!rq)
                return;
        if (rq->body)
                OPENSSL_cleanse(rq->body, rq->cap);
        free(rq->body);
        free(rq);
        *con_cls = NULL;
}

/* libmicrohttpd's own messages (its format strings), at debug. */
_printf_(2, 0) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
        char buf[512];
        vsnprintf(buf, sizeof(buf), fmt, ap);
        buf[strcspn(buf, "\n")] = 0;
        cc_log_debug("http: %s", buf);
}

static int parse_listen(const char *s, struct sockaddr_storage *ss, bool *v6, struct cc_error **err)
{
        char host[128];
        const char *colon = strrchr(s, ':');
        if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host))
                return cc_error_set(err, EINVAL, "http.listen '%s': want host:port", s);
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = 0;
        char *end;
        unsigned long port = strtoul(colon + 1, &end, 10);
        if (*end || port > 65535 || end == colon + 1)
                return cc_error_set(err, EINVAL, "http.listen '%s': bad port", s);
        memset(ss, 0, sizeof(*ss));
        if (host[0] == '[') {
                size_t n = strlen(host);
                if (host[n - 1] != ']')
                        return cc_error_set(err, EINVAL, "http.listen '%s': bad address", s);
                host[n - 1] = 0;
                struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
                a->sin6_family = AF_INET6;
                a->sin6_port = htons((uint16_t)port);
                if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
                        return cc_error_set(err, EINVAL, "http.listen '%s': bad address", s);
                *v6 = true;
                return 0;
        }
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
                return cc_error_set(err, EINVAL, "http.listen '%s': bad IPv4 address", s);
        *v6 = false;
        return 0;
}

void kbs_server_stop(struct kbs_server *s)
{
        if (!s)
                return;
        if (s->daemon)
                MHD_stop_daemon(s->daemon);
        kbs_sessions_free(s->sessions);
        kbs_store_close(s->store);
        kbs_token_signer_done(&s->signer);
        kbs_verifiers_done(&s->verifiers);
        EVP_PKEY_free(s->admin_pub);
        kbs_policy_free(s->policy);
        pthread_rwlock_destroy(&s->policy_lock);
        free(s->cert_pem);
        if (s->key_pem)
                OPENSSL_cleanse(s->key_pem, strlen(s->key_pem));
        free(s->key_pem);
        free(s);
}

static int load_policy(struct kbs_server *s, struct cc_error **err)
{
        _cleanup_free_ char *text = NULL;
        int r = kbs_store_policy_get(s->store, &text, err);
        if (r == -ENOENT)
                return kbs_policy_parse(kbs_policy_default, strlen(kbs_policy_default), &s->policy,
                                        err);
        if (r < 0)
                return r;
        r = kbs_policy_parse(text, strlen(text), &s->policy, err);
        return r < 0 ? cc_error_wrap(err, EINVAL, "stored resource policy") : 0;
}

static int server_init(const struct kbs_config *c, struct kbs_server *s, struct cc_error **err)
{
        size_t n;
        int r = kbs_sessions_new((size_t)c->max_sessions, c->session_timeout_s, &s->sessions);
        if (r == 0)
                r = kbs_store_open(c->store_path, &s->store, err);
        if (r == 0)
                r = kbs_token_signer_init(&s->signer, c->token_key, err);
        if (r == 0)
                r = load_policy(s, err);
        if (r < 0)
                return r;
        s->verifiers.sample_enabled = c->sample_enabled;
        if (c->snp_enabled) {
                r = kbs_verifiers_load_snp(&s->verifiers, c->snp_ark, c->snp_ask, c->snp_vcek, err);
                if (r < 0)
                        return r;
        }
        if (c->admin_public_key) {
                _cleanup_fclose_ FILE *f = fopen(c->admin_public_key, "re");
                if (!f)
                        return cc_error_set(err, errno, "admin.public_key %s: %m",
                                            c->admin_public_key);
                s->admin_pub = PEM_read_PUBKEY(f, NULL, NULL, NULL);
                if (!s->admin_pub || EVP_PKEY_get_base_id(s->admin_pub) != EVP_PKEY_ED25519)
                        return cc_error_set(err, EINVAL,
                                            "admin.public_key %s: not an Ed25519 "
                                            "public key (PEM)",
                                            c->admin_public_key);
        }
        if (!c->insecure_http) {
                r = cc_read_file(c->tls_cert, 1 << 20, &s->cert_pem, &n, err);
                if (r == 0)
                        r = cc_read_file(c->tls_key, 1 << 20, &s->key_pem, &n, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

int kbs_server_start(const struct kbs_config *c, struct kbs_server **ret, struct cc_error **err)
{
        struct kbs_server *s = calloc(1, sizeof(*s));
        struct sockaddr_storage ss;
        bool v6 = false;
        if (!s)
                return -ENOMEM;
        s->cfg = c;
        pthread_rwlock_init(&s->policy_lock, NULL);
        int r = parse_listen(c->listen, &ss, &v6, err);
        if (r == 0)
                r = server_init(c, s, err);
        if (r < 0) {
                kbs_server_stop(s);
                return r;
        }
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
        if (v6)
                flags |= MHD_USE_IPv6;
        if (!c->insecure_http)
                flags |= MHD_USE_TLS;
        struct MHD_OptionItem tls[] = {
                {MHD_OPTION_HTTPS_MEM_KEY, 0, s->key_pem},
                {MHD_OPTION_HTTPS_MEM_CERT, 0, s->cert_pem},
                {MHD_OPTION_END, 0, NULL},
        };
        struct MHD_OptionItem none[] = {{MHD_OPTION_END, 0, NULL}};
        s->daemon = MHD_start_daemon(
                flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &ss,
                MHD_OPTION_THREAD_POOL_SIZE, (unsigned)c->threads, MHD_OPTION_CONNECTION_TIMEOUT,
                (unsigned)c->timeout_s, MHD_OPTION_CONNECTION_LIMIT, (unsigned)c->max_connections,
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 << 10), MHD_OPTION_NOTIFY_COMPLETED,
                on_completed, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_ARRAY,
                c->insecure_http ? none : tls, MHD_OPTION_END);
        if (!s->daemon) {
                kbs_server_stop(s);
                return cc_error_set(err, EADDRNOTAVAIL, "cannot listen on %s%s", c->listen,
                                    c->insecure_http ? "" : " (or the TLS key/certificate is bad)");
        }
        const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
        char fields[160];
        snprintf(fields, sizeof(fields), "address=%.*s:%u scheme=%s",
                 (int)(strrchr(c->listen, ':') - c->listen), c->listen, di ? di->port : 0,
                 c->insecure_http ? "http" : "https");
        cc_log_full(CC_LOG_INFO, 0, fields, "listening");
        *ret = s;
        return 0;
}
