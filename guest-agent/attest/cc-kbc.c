/*
 * cc-kbc: the guest's KBS client as a command, for tests, benchmarks and debugging on a host
 * or in a guest (the pull helper links the same library).
 *
 *   cc-kbc --url URL [--cert PEM] [--initdata TOML] [--rsa] [--sample-in-tee]
 *          [--repeat N --pause-ms MS] [--timeout-ms MS] [--early]
 *          get URI [OUT]        the resource's bytes to OUT (default stdout); timings on stderr;
 *                               with --repeat, N fetches by one client (one attestation while
 *                               the KBS's session lasts), a line of timings each; with --early,
 *                               attests first as the spare pull helper does (its own line)
 *   cc-kbc initdata TOML        the digest of an initdata file and its TEE launch fields
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/fileio.h"
#include "cc/log.h"

#include "guest-agent/attest/kbc.h"

static int usage(void)
{
        fprintf(stderr, "usage: cc-kbc --url URL [--cert PEM] [--initdata TOML] [--rsa] "
                        "[--sample-in-tee] [--timeout-ms MS] [--early] get URI [OUT]\n"
                        "       cc-kbc initdata TOML\n");
        return 2;
}

static char *slurp(const char *path, size_t *len)
{
        FILE *f = fopen(path, "re");
        if (!f)
                return NULL;
        char *buf = NULL;
        size_t cap = 0, n = 0;
        for (;;) {
                if (n + 4096 > cap) {
                        cap = cap ? cap * 2 : 8192;
                        char *b = realloc(buf, cap + 1);
                        if (!b)
                                break;
                        buf = b;
                }
                size_t k = fread(buf + n, 1, cap - n, f);
                n += k;
                if (k == 0)
                        break;
        }
        fclose(f);
        if (buf)
                buf[n] = '\0';
        *len = n;
        return buf;
}

static void hexprint(const char *label, const uint8_t *p, size_t n)
{
        printf("%s ", label);
        for (size_t i = 0; i < n; i++)
                printf("%02x", p[i]);
        printf("\n");
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"url", required_argument, NULL, 'u'},
                {"cert", required_argument, NULL, 'c'},
                {"initdata", required_argument, NULL, 'i'},
                {"rsa", no_argument, NULL, 'r'},
                {"sample-in-tee", no_argument, NULL, 's'},
                {"debug", no_argument, NULL, 'd'},
                {"repeat", required_argument, NULL, 'n'},
                {"pause-ms", required_argument, NULL, 'p'},
                {"timeout-ms", required_argument, NULL, 't'},
                {"early", no_argument, NULL, 'e'},
                {NULL, 0, NULL, 0},
        };
        struct kbc_client_config cfg = {.key_alg = KBC_KEY_EC_P256};
        const char *cert = NULL, *initdata = NULL;
        unsigned repeat = 1, pause_ms = 0;
        bool early = false;
        int o;
        while ((o = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
                switch (o) {
                case 'u':
                        cfg.url = optarg;
                        break;
                case 'c':
                        cert = optarg;
                        break;
                case 'i':
                        initdata = optarg;
                        break;
                case 'r':
                        cfg.key_alg = KBC_KEY_RSA_OAEP_256;
                        break;
                case 's':
                        cfg.sample_in_tee = true;
                        break;
                case 'n':
                        repeat = (unsigned)atoi(optarg);
                        break;
                case 'p':
                        pause_ms = (unsigned)atoi(optarg);
                        break;
                case 't':
                        cfg.timeout_ms = (unsigned)atoi(optarg);
                        break;
                case 'd':
                        cc_log_set_level(CC_LOG_DEBUG);
                        break;
                case 'e':
                        early = true;
                        break;
                default:
                        return usage();
                }
        }
        if (optind >= argc)
                return usage();
        const char *cmd = argv[optind++];
        _cleanup_error_ struct cc_error *err = NULL;
        _cleanup_(kbc_initdata_freep) struct kbc_initdata *id = NULL;
        if (initdata || !strcmp(cmd, "initdata")) {
                const char *path = initdata ? initdata : (optind < argc ? argv[optind] : NULL);
                size_t len = 0;
                _cleanup_free_ char *text = path ? slurp(path, &len) : NULL;
                if (!text) {
                        fprintf(stderr, "cc-kbc: cannot read initdata %s\n",
                                path ? path : "(none)");
                        return 1;
                }
                if (kbc_initdata_parse(text, len, &id, &err) < 0) {
                        fprintf(stderr, "cc-kbc: %s: %s\n", path, cc_error_message(err));
                        return 1;
                }
        }
        if (!strcmp(cmd, "initdata")) {
                uint8_t f[64];
                printf("algorithm %s\n", kbc_hash_name(id->alg));
                hexprint("digest", id->digest, id->digest_len);
                kbc_regularize(id->digest, id->digest_len, f, 48);
                _cleanup_free_ char *mr = cc_b64_encode(f, 48, false);
                kbc_regularize(id->digest, id->digest_len, f, 32);
                _cleanup_free_ char *hd = cc_b64_encode(f, 32, false);
                printf("tdx-mrconfigid %s\nsnp-host-data %s\n", mr, hd);
                return 0;
        }
        if (strcmp(cmd, "get") || optind >= argc || !cfg.url)
                return usage();
        const char *uri = argv[optind++], *out = optind < argc ? argv[optind] : NULL;
        size_t cl = 0;
        _cleanup_free_ char *pem = cert ? slurp(cert, &cl) : NULL;
        if (cert && !pem) {
                fprintf(stderr, "cc-kbc: cannot read %s\n", cert);
                return 1;
        }
        cfg.cert_pem = pem;
        cfg.initdata = id;
        cfg.tee = kbc_attester_detect(&cfg.paths);
        _cleanup_(kbc_client_freep) struct kbc_client *c = NULL;
        if (kbc_client_new(&cfg, &c, &err) < 0) {
                fprintf(stderr, "cc-kbc: %s\n", cc_error_message(err));
                return 1;
        }
        struct kbc_timings t;
        if (early) {
                if (kbc_client_attest(c, &err) < 0) {
                        fprintf(stderr, "cc-kbc: %s\n", cc_error_message(err));
                        return 1;
                }
                kbc_client_timings(c, &t);
                fprintf(stderr, "early: auth_ms=%.1f attest_ms=%.1f tls_ms=%.1f\n", t.auth_ms,
                        t.attest_ms, t.tls_ms);
        }
        _cleanup_free_ uint8_t *data = NULL;
        size_t dl = 0;
        for (unsigned i = 0; i < (repeat ? repeat : 1); i++) {
                if (i && pause_ms)
                        usleep(pause_ms * 1000u);
                free(data);
                data = NULL;
                if (kbc_client_get_resource(c, uri, &data, &dl, &err) < 0) {
                        fprintf(stderr, "cc-kbc: %s\n", cc_error_message(err));
                        return 1;
                }
                kbc_client_timings(c, &t);
                fprintf(stderr,
                        "tee=%s bytes=%zu attestations=%u auth_ms=%.1f attest_ms=%.1f "
                        "resource_ms=%.1f decrypt_ms=%.1f tls_ms=%.1f\n",
                        kbc_tee_name(cfg.tee), dl, t.attestations, t.auth_ms, t.attest_ms,
                        t.resource_ms, t.decrypt_ms, t.tls_ms);
        }
        int fd = out ? open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : STDOUT_FILENO;
        if (fd < 0 || cc_write_all(fd, data, dl) < 0) {
                fprintf(stderr, "cc-kbc: write %s: %m\n", out ? out : "stdout");
                return 1;
        }
        if (out)
                close(fd);
        return 0;
}
