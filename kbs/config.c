/* cc-kbs configuration: a TOML file read with lib/toml.c; the format is in kbs/README.md. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cc/fileio.h"
#include "cc/toml.h"

#include "kbs/kbs.h"

void kbs_config_done(struct kbs_config *c)
{
        free(c->listen);
        free(c->tls_cert);
        free(c->tls_key);
        free(c->token_key);
        free(c->store_path);
        free(c->snp_ark);
        free(c->snp_ask);
        free(c->snp_vcek);
        free(c->admin_public_key);
        free(c->log_level);
        memset(c, 0, sizeof(*c));
}

enum kind { STR, INT, BOOL };

struct key {
        const char *path;
        enum kind kind;
        size_t off;
        int64_t min, max;
};

#define S(p, f)                                              \
        {                                                    \
                p, STR, offsetof(struct kbs_config, f), 0, 0 \
        }
#define I(p, f, lo, hi)                                        \
        {                                                      \
                p, INT, offsetof(struct kbs_config, f), lo, hi \
        }
#define B(p, f)                                               \
        {                                                     \
                p, BOOL, offsetof(struct kbs_config, f), 0, 0 \
        }

static const struct key keys[] = {
        S("http.listen", listen),
        B("http.insecure_http", insecure_http),
        S("http.tls_cert", tls_cert),
        S("http.tls_key", tls_key),
        I("http.max_body_bytes", max_body, 1024, 64 << 20),
        I("http.timeout_s", timeout_s, 1, 3600),
        I("http.max_connections", max_connections, 1, 65536),
        I("http.threads", threads, 1, 64),
        I("session.timeout_s", session_timeout_s, 1, 86400),
        I("session.max_sessions", max_sessions, 1, 10000000),
        I("token.lifetime_s", token_lifetime_s, 1, 86400),
        S("token.signing_key", token_key),
        S("store.path", store_path),
        B("verifier.sample.enabled", sample_enabled),
        S("verifier.snp.ark", snp_ark),
        S("verifier.snp.ask", snp_ask),
        S("verifier.snp.vcek", snp_vcek),
        B("verifier.tdx.enabled", tdx_enabled),
        S("admin.public_key", admin_public_key),
        B("admin.insecure_allow_all", admin_insecure),
        S("log.level", log_level),
};

/* Every key of the file must be one we know: a typo must not silently mean a default. */
static int check_known(const struct cc_toml_table *t, const char *prefix, struct cc_error **err)
{
        for (size_t i = 0; i < cc_toml_table_size(t); i++) {
                const struct cc_toml_entry *e = cc_toml_table_entry(t, i);
                char path[128];
                snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", e->key);
                size_t plen = strlen(path);
                bool leaf = false, inner = false;
                for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
                        if (strcmp(keys[k].path, path) == 0)
                                leaf = true;
                        else if (strncmp(keys[k].path, path, plen) == 0 &&
                                 keys[k].path[plen] == '.')
                                inner = true;
                }
                if (inner && e->value.type == CC_TOML_TABLE) {
                        int r = check_known(e->value.table, path, err);
                        if (r < 0)
                                return r;
                } else if (!leaf) {
                        return cc_error_set(err, EINVAL, "%s:%u: unknown key '%s'",
                                            cc_toml_table_file(t), e->line, path);
                }
        }
        return 0;
}

int kbs_config_parse(const char *name, const char *text, size_t len, struct kbs_config *ret,
                     struct cc_error **err)
{
        _cleanup_toml_ struct cc_toml_table *doc = NULL;
        struct kbs_config c = {
                .max_body = 2 << 20, /* Trustee's payload_request_size */
                .timeout_s = 30,
                .max_connections = 256,
                .threads = 4,
                .session_timeout_s = 300, /* Trustee: 5 minutes */
                .max_sessions = 10000,    /* ~2 KiB each once attested (the token) */
                .token_lifetime_s = 300,
        };
        int r = cc_toml_parse_string(name, text, len, &doc, err);
        if (r < 0)
                return r;
        r = check_known(doc, "", err);
        if (r < 0)
                return r;
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
                void *field = (char *)&c + keys[k].off;
                const char *s;
                switch (keys[k].kind) {
                case STR:
                        r = cc_toml_get_string(doc, keys[k].path, &s, err);
                        if (r == 0 && !(*(char **)field = strdup(s)))
                                r = -ENOMEM;
                        break;
                case INT:
                        r = cc_toml_get_int64_range(doc, keys[k].path, keys[k].min, keys[k].max,
                                                    (int64_t *)field, err);
                        break;
                case BOOL:
                        r = cc_toml_get_bool(doc, keys[k].path, (bool *)field, err);
                        break;
                }
                if (r < 0 && r != -ENOENT) {
                        kbs_config_done(&c);
                        return r;
                }
        }
        if (!c.listen)
                c.listen = strdup("127.0.0.1:8080");
        if (!c.store_path)
                c.store_path = strdup("/var/lib/cc-kbs/kbs.db");
        if (!c.listen || !c.store_path) {
                kbs_config_done(&c);
                return -ENOMEM;
        }
        if (!c.insecure_http && (!c.tls_cert || !c.tls_key)) {
                kbs_config_done(&c);
                return cc_error_set(err, EINVAL,
                                    "%s: HTTPS needs http.tls_cert and http.tls_key "
                                    "(or http.insecure_http = true for plain HTTP)",
                                    name);
        }
        if (c.tdx_enabled) {
                kbs_config_done(&c);
                return cc_error_set(err, ENOTSUP,
                                    "%s: verifier.tdx: TDX quote verification is "
                                    "not implemented; TDX evidence is always refused",
                                    name);
        }
        c.snp_enabled = c.snp_ark || c.snp_ask || c.snp_vcek;
        *ret = c;
        return 0;
}

int kbs_config_load(const char *path, struct kbs_config *ret, struct cc_error **err)
{
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = cc_read_file(path, CC_TOML_MAX_SIZE, &text, &len, err);
        if (r < 0)
                return r;
        return kbs_config_parse(path, text, len, ret, err);
}
