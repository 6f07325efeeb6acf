/*
 * cc-kbs: a development key broker speaking Trustee's KBS protocol 0.4.0.
 *
 *   cc-kbs serve --config FILE
 *   cc-kbs [--url URL] [--admin-key PEM] [--cacert PEM] resource set REPO/TYPE/TAG FILE
 *   cc-kbs ... resource delete REPO/TYPE/TAG
 *   cc-kbs ... policy set FILE
 *
 * The admin commands talk to a running cc-kbs over its Trustee-shaped admin API
 * (POST/DELETE /kbs/v0/resource/..., POST /kbs/v0/resource-policy), authenticated by an
 * EdDSA JWT signed with the Ed25519 key whose public half is the server's admin.public_key.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cc/fileio.h"
#include "cc/log.h"

#include "kbs/kbs.h"

#define RESOURCE_MAX (64u << 20)

static int serve(const char *config)
{
        _cleanup_error_ struct cc_error *err = NULL;
        struct kbs_config c = {};
        enum cc_log_level lvl;
        if (kbs_config_load(config, &c, &err) < 0) {
                cc_log_error("%s", cc_error_message(err));
                return 1;
        }
        if (c.log_level && cc_log_level_from_string(c.log_level, &lvl) == 0)
                cc_log_set_level(lvl);
        if (!c.sample_enabled)
                cc_log_info("sample verifier disabled (verifier.sample.enabled = false)");
        if (c.admin_insecure)
                cc_log_warn("admin API open to everyone (admin.insecure_allow_all = true)");
        if (c.insecure_http)
                cc_log_warn("plain HTTP (http.insecure_http = true): tokens travel in clear");
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        signal(SIGPIPE, SIG_IGN);
        struct kbs_server *s = NULL;
        if (kbs_server_start(&c, &s, &err) < 0) {
                cc_log_error("%s", cc_error_message(err));
                kbs_config_done(&c);
                return 1;
        }
        int sig = 0;
        sigwait(&set, &sig);
        cc_log_info("signal %d: stopping", sig);
        kbs_server_stop(s);
        kbs_config_done(&c);
        return 0;
}

/* Runs one admin request; prints the answer's body, or the error. */
static int admin(const struct kbs_admin_client *cl, const char *method, const char *path,
                 const void *body, size_t len, const char *content_type)
{
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_free_ char *resp = NULL;
        if (kbs_admin_call(cl, method, path, body, len, content_type, &resp, &err) < 0) {
                fprintf(stderr, "cc-kbs: %s\n", cc_error_message(err));
                return 1;
        }
        if (resp && *resp)
                printf("%s\n", resp);
        return 0;
}

static int cmd_resource(const struct kbs_admin_client *cl, int argc, char **argv)
{
        if (argc >= 3 && strcmp(argv[0], "set") == 0) {
                _cleanup_error_ struct cc_error *err = NULL;
                _cleanup_free_ char *data = NULL, *path = NULL;
                size_t len = 0;
                if (!kbs_resource_path_valid(argv[1])) {
                        fprintf(stderr, "cc-kbs: '%s' is not REPO/TYPE/TAG\n", argv[1]);
                        return 2;
                }
                if (cc_read_file(argv[2], RESOURCE_MAX, &data, &len, &err) < 0) {
                        fprintf(stderr, "cc-kbs: %s\n", cc_error_message(err));
                        return 1;
                }
                if (asprintf(&path, "resource/%s", argv[1]) < 0)
                        return 1;
                int r = admin(cl, "POST", path, data, len, "application/octet-stream");
                OPENSSL_cleanse(data, len);
                return r;
        }
        if (argc >= 2 && strcmp(argv[0], "delete") == 0) {
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "resource/%s", argv[1]) < 0)
                        return 1;
                return admin(cl, "DELETE", path, NULL, 0, NULL);
        }
        fprintf(stderr, "usage: cc-kbs resource set REPO/TYPE/TAG FILE | delete REPO/TYPE/TAG\n");
        return 2;
}

static int cmd_policy(const struct kbs_admin_client *cl, int argc, char **argv)
{
        if (argc < 2 || strcmp(argv[0], "set") != 0) {
                fprintf(stderr, "usage: cc-kbs policy set FILE\n");
                return 2;
        }
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_free_ char *text = NULL, *b64 = NULL, *body = NULL;
        _cleanup_(kbs_policy_freep) struct kbs_policy *p = NULL;
        size_t len = 0;
        if (cc_read_file(argv[1], 1 << 20, &text, &len, &err) < 0 ||
            kbs_policy_parse(text, len, &p, &err) < 0) {
                fprintf(stderr, "cc-kbs: %s\n", cc_error_message(err));
                return 1;
        }
        b64 = cc_b64_encode((const uint8_t *)text, len, true);
        if (!b64 || asprintf(&body, "{\"policy\":\"%s\"}", b64) < 0)
                return 1;
        return admin(cl, "POST", "resource-policy", body, strlen(body), "application/json");
}

static void usage(FILE *f)
{
        fprintf(f, "usage: cc-kbs serve --config FILE\n"
                   "       cc-kbs [--url URL] [--admin-key ED25519.pem] [--cacert CA.pem] "
                   "[--insecure]\n"
                   "              resource set REPO/TYPE/TAG FILE | resource delete REPO/TYPE/TAG"
                   " | policy set FILE\n");
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"config", required_argument, NULL, 'c'},
                {"url", required_argument, NULL, 'u'},
                {"admin-key", required_argument, NULL, 'k'},
                {"cacert", required_argument, NULL, 'a'},
                {"insecure", no_argument, NULL, 'i'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        struct kbs_admin_client cl = {.url = "https://127.0.0.1:8080"};
        const char *config = NULL;
        int o;
        while ((o = getopt_long(argc, argv, "+c:u:k:a:ih", opts, NULL)) != -1) {
                switch (o) {
                case 'c':
                        config = optarg;
                        break;
                case 'u':
                        cl.url = optarg;
                        break;
                case 'k':
                        cl.admin_key = optarg;
                        break;
                case 'a':
                        cl.cacert = optarg;
                        break;
                case 'i':
                        cl.insecure = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        argc -= optind;
        argv += optind;
        if (argc >= 1 && strcmp(argv[0], "serve") == 0) {
                /* `cc-kbs serve --config FILE` as well as `cc-kbs --config FILE serve`. */
                optind = 1;
                while ((o = getopt_long(argc, argv, "c:", opts, NULL)) != -1)
                        if (o == 'c')
                                config = optarg;
                if (!config) {
                        usage(stderr);
                        return 2;
                }
                return serve(config);
        }
        if (argc < 1) {
                usage(stderr);
                return 2;
        }
        curl_global_init(CURL_GLOBAL_DEFAULT);
        int r;
        if (strcmp(argv[0], "resource") == 0)
                r = cmd_resource(&cl, argc - 1, argv + 1);
        else if (strcmp(argv[0], "policy") == 0)
                r = cmd_policy(&cl, argc - 1, argv + 1);
        else {
                usage(stderr);
                r = 2;
        }
        curl_global_cleanup();
        return r;
}
