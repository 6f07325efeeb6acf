/*
 * Unit tests of cc-kbs's state and decisions: the resource policy (format, errors, decisions,
 * the built-in default), resource path syntax, the SQLite store, sessions (ids, nonces,
 * expiry, the table limit) and the configuration file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include "cc/fileio.h"

#include "kbs/kbs.h"

static struct kbs_policy *policy(const char *text)
{
        _cleanup_error_ struct cc_error *err = NULL;
        struct kbs_policy *p = NULL;
        if (kbs_policy_parse(text, strlen(text), &p, &err) < 0)
                fail_msg("policy: %s", cc_error_message(err));
        return p;
}

static bool allows(const struct kbs_policy *p, const char *tee, const char *meas, const char *init,
                   const char *res)
{
        char why[32];
        struct kbs_policy_input in = {
                .tee = tee, .measurement = meas, .init_data = init, .resource = res};
        return kbs_policy_allows(p, &in, why, sizeof(why));
}

static void test_policy_decisions(void **state)
{
        _cleanup_(kbs_policy_freep) struct kbs_policy *def = policy(kbs_policy_default);
        assert_false(allows(def, "sample", NULL, NULL, "default/key/1"));
        assert_true(allows(def, "snp", NULL, NULL, "default/key/1"));
        assert_true(allows(def, "tdx", NULL, NULL, "a/b/c"));

        _cleanup_(kbs_policy_freep) struct kbs_policy *p = policy(
                "version = 1\n"
                "[[rule]]\nresources = [\"default/key/*\", \"x/y/z\"]\ntee = [\"snp\"]\n"
                "measurement = [\"AB01\"]\nallow = true\n"
                "[[rule]]\nresources = [\"default/id/*\"]\ninit_data = [\"cafe\"]\nallow = true\n"
                "[[rule]]\nresources = [\"*/*/*\"]\ntee = [\"sample\"]\nallow = false\n"
                "[[rule]]\nresources = [\"pub/*/*\"]\nallow = true\n");
        char why[32];
        struct kbs_policy_input in = {
                .tee = "snp", .measurement = "ab01", .resource = "default/key/1"};
        assert_true(kbs_policy_allows(p, &in, why, sizeof(why)));
        assert_string_equal(why, "rule 1");
        assert_true(allows(p, "snp", "AB01", NULL, "x/y/z"));
        assert_false(allows(p, "snp", "ab02", NULL, "default/key/1"));
        assert_false(allows(p, "snp", NULL, NULL, "default/key/1"));
        assert_false(allows(p, "sample", "ab01", NULL, "default/key/1"));
        assert_false(
                allows(p, "snp", "ab01", NULL, "default/key/1/2")); /* '*' stays in a segment */
        assert_true(allows(p, "snp", NULL, "CAFE", "default/id/7"));
        assert_false(allows(p, "snp", NULL, NULL, "default/id/7"));
        assert_false(allows(p, "sample", NULL, NULL, "pub/a/b")); /* rule 3 decides first */
        assert_true(allows(p, "snp", NULL, NULL, "pub/a/b"));
        in.resource = "other/a/b";
        assert_false(kbs_policy_allows(p, &in, why, sizeof(why)));
        assert_string_equal(why, "default");
        _cleanup_(kbs_policy_freep) struct kbs_policy *open =
                policy("version = 1\ndefault = \"allow\"\n");
        assert_true(allows(open, "sample", NULL, NULL, "a/b/c"));
}

static void test_policy_errors(void **state)
{
        static const struct {
                const char *text, *msg;
        } bad[] = {
                {"default = \"deny\"\n", "policy: 'version = 1' is required"},
                {"version = 2\n", "policy: 'version = 1' is required"},
                {"version = 1\ndefault = \"maybe\"\n",
                 "policy: default must be \"deny\" or \"allow\""},
                {"version = 1\nrules = 1\n", "policy:2: unknown key 'rules'"},
                {"version = 1\n[[rule]]\nallow = true\n", "policy:2: a rule needs 'resources'"},
                {"version = 1\n[[rule]]\nresources = [\"a/b/c\"]\n",
                 "policy:2: a rule needs 'allow'"},
                {"version = 1\n[[rule]]\nresources = [\"a/b/c\"]\ntee = [\"sev\"]\nallow = true\n",
                 "policy:2: unknown tee 'sev'"},
                {"version = 1\n[[rule]]\nresources = [\"a/b/c\"]\nmeasurement = [\"xyz1\"]\nallow "
                 "= true\n",
                 "policy:2: measurement 'xyz1' must be hex"},
                {"version = 1\n[[rule]]\nresources = [\"a/b/c\"]\nallow = true\nextra = 1\n",
                 "policy:5: unknown key 'extra' in rule"},
                {"version = 1\nrule = 3\n", "policy:2:1: key 'rule' must be an array, got integer"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                _cleanup_error_ struct cc_error *err = NULL;
                struct kbs_policy *p = NULL;
                assert_true(kbs_policy_parse(bad[i].text, strlen(bad[i].text), &p, &err) < 0);
                assert_null(p);
                assert_string_equal(cc_error_message(err), bad[i].msg);
        }
}

static void test_resource_paths(void **state)
{
        assert_true(kbs_resource_path_valid("default/key/1"));
        assert_true(kbs_resource_path_valid("_a-/b.c/-1.x"));
        assert_false(kbs_resource_path_valid("default/key"));
        assert_false(kbs_resource_path_valid("default/key/1/2"));
        assert_false(kbs_resource_path_valid("default//1"));
        assert_false(kbs_resource_path_valid("default/.key/1"));
        assert_false(kbs_resource_path_valid("default/../1"));
        assert_false(kbs_resource_path_valid("default/key/1/"));
        assert_false(kbs_resource_path_valid("default/k y/1"));
        assert_false(kbs_resource_path_valid(""));
}

static void test_store(void **state)
{
        char dir[] = "/tmp/kbs-store.XXXXXX", path[64];
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/kbs.db", dir);
        struct kbs_store *s = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(kbs_store_open(path, &s, &err), 0);
        uint8_t *d = NULL;
        size_t n;
        assert_int_equal(kbs_store_get(s, "a/b/c", &d, &n, &err), -ENOENT);
        static const uint8_t bin[] = {0, 1, 2, 0, 255};
        assert_int_equal(kbs_store_put(s, "a/b/c", bin, sizeof(bin), &err), 0);
        assert_int_equal(kbs_store_put(s, "a/b/empty", NULL, 0, &err), 0);
        assert_int_equal(kbs_store_get(s, "a/b/c", &d, &n, &err), 0);
        assert_int_equal(n, sizeof(bin));
        assert_memory_equal(d, bin, n);
        free(d);
        assert_int_equal(kbs_store_get(s, "a/b/empty", &d, &n, &err), 0);
        assert_int_equal(n, 0);
        free(d);
        char *t = NULL;
        assert_int_equal(kbs_store_policy_get(s, &t, &err), -ENOENT);
        assert_int_equal(kbs_store_policy_set(s, "version = 1\n", &err), 0);
        kbs_store_close(s);
        /* survives a reopen */
        assert_int_equal(kbs_store_open(path, &s, &err), 0);
        assert_int_equal(kbs_store_policy_get(s, &t, &err), 0);
        assert_string_equal(t, "version = 1\n");
        free(t);
        assert_int_equal(kbs_store_delete(s, "a/b/c", &err), 0);
        assert_int_equal(kbs_store_delete(s, "a/b/c", &err), -ENOENT);
        kbs_store_close(s);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(kbs_store_open("/nonexistent/dir/kbs.db", &s, &err), -EIO);
}

static void test_sessions(void **state)
{
        struct kbs_sessions *t = NULL;
        assert_int_equal(kbs_sessions_new(2, 300, &t), 0);
        struct kbs_session_view a = {}, b = {}, c = {}, g = {};
        assert_int_equal(kbs_session_create(t, KBS_TEE_SNP, 1000, &a), 0);
        assert_int_equal(strlen(a.id), 32);
        assert_int_equal(a.id[12], '4'); /* UUIDv4 version nibble */
        assert_int_equal(strlen(a.nonce), 44);
        assert_int_equal(a.expires, 1300);
        assert_int_equal(kbs_session_create(t, KBS_TEE_SAMPLE, 1100, &b), 0);
        assert_string_not_equal(a.id, b.id);
        assert_string_not_equal(a.nonce, b.nonce);
        assert_int_equal(kbs_session_create(t, KBS_TEE_SAMPLE, 1100, &c), -EBUSY); /* table full */
        assert_int_equal(kbs_session_get(t, a.id, 1299, &g), 0);
        assert_int_equal(g.tee, KBS_TEE_SNP);
        assert_int_equal(g.state, KBS_SESSION_AUTHED);
        assert_null(g.token);
        assert_int_equal(kbs_session_set_token(t, a.id, "tok"), 0);
        assert_int_equal(kbs_session_get(t, a.id, 1299, &g), 0);
        assert_int_equal(g.state, KBS_SESSION_ATTESTED);
        assert_string_equal(g.token, "tok");
        assert_int_equal(g.expires, 1300); /* attesting does not extend the session */
        free(g.token);
        assert_int_equal(kbs_session_get(t, a.id, 1300, &g), -ENOENT); /* expired, and dropped */
        assert_int_equal(kbs_session_get(t, a.id, 1000, &g), -ENOENT);
        assert_int_equal(kbs_session_create(t, KBS_TEE_SAMPLE, 1300, &c), 0); /* room again */
        assert_int_equal(kbs_session_get(t, "short", 1000, &g), -ENOENT);
        assert_int_equal(kbs_sessions_sweep(t, 2000), 2);
        assert_int_equal(kbs_session_get(t, b.id, 1101, &g), -ENOENT);
        kbs_sessions_free(t);
}

static void test_config(void **state)
{
        struct kbs_config c = {};
        _cleanup_error_ struct cc_error *err = NULL;
        static const char ok[] =
                "[http]\nlisten = \"0.0.0.0:8443\"\ntls_cert = \"c\"\ntls_key = \"k\"\n"
                "[verifier.sample]\nenabled = true\n[session]\ntimeout_s = 60\n";
        assert_int_equal(kbs_config_parse("k.toml", ok, strlen(ok), &c, &err), 0);
        assert_string_equal(c.listen, "0.0.0.0:8443");
        assert_true(c.sample_enabled);
        assert_false(c.snp_enabled);
        assert_int_equal(c.session_timeout_s, 60);
        assert_int_equal(c.max_body, 2 << 20);
        assert_int_equal(c.token_lifetime_s, 300);
        kbs_config_done(&c);
        static const struct {
                const char *text, *msg;
        } bad[] = {
                {"",
                 "k.toml: HTTPS needs http.tls_cert and http.tls_key (or http.insecure_http = true "
                 "for plain HTTP)"},
                {"[http]\ninsecure_http = true\nlisten = 1\n",
                 "k.toml:3:1: key 'http.listen' must be a string, got integer"},
                {"[http]\ninsecure_http = true\n[sesion]\ntimeout_s = 1\n",
                 "k.toml:3: unknown key 'sesion'"},
                {"[http]\ninsecure_http = true\nmax_body_bytes = 1\n",
                 "k.toml:3:1: key 'http.max_body_bytes' must be between 1024 and 67108864, got 1"},
                {"[http]\ninsecure_http = true\n[verifier.tdx]\nenabled = true\n",
                 "k.toml: verifier.tdx: TDX quote verification is not implemented; TDX evidence is "
                 "always refused"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_true(kbs_config_parse("k.toml", bad[i].text, strlen(bad[i].text), &c, &err) <
                            0);
                assert_string_equal(cc_error_message(err), bad[i].msg);
        }
}

/* The shipped examples (configs/kbs/) parse, and the policy admits what it says. */
static void test_shipped_examples(void **state)
{
        struct kbs_config c = {};
        _cleanup_error_ struct cc_error *err = NULL;
        if (kbs_config_load("configs/kbs/kbs.toml", &c, &err) < 0)
                fail_msg("%s", cc_error_message(err));
        assert_false(c.insecure_http);
        assert_false(c.sample_enabled);
        assert_true(c.snp_enabled);
        kbs_config_done(&c);
        _cleanup_free_ char *text = NULL, *init = NULL;
        size_t len = 0, ilen = 0;
        assert_int_equal(
                cc_read_file("configs/kbs/resource-policy.toml", 1 << 20, &text, &len, &err), 0);
        assert_int_equal(cc_read_file("configs/kbs/initdata.toml", 1 << 20, &init, &ilen, &err), 0);
        _cleanup_(kbs_policy_freep) struct kbs_policy *p = policy(text);
        struct kbs_initdata d = {};
        assert_int_equal(kbs_initdata_parse("toml", init, ilen, &d, &err), 0);
        _cleanup_free_ char *digest = cc_hex(d.digest, d.digest_len);
        kbs_initdata_done(&d);
        static const char zero[] =
                "000000000000000000000000000000000000000000000000000000000000000000000000"
                "000000000000000000000000";
        assert_true(allows(p, "snp", zero, digest, "default/image-kek/1"));
        assert_false(allows(p, "snp", zero, NULL, "default/image-kek/1"));
        assert_false(allows(p, "sample", zero, digest, "default/image-kek/1"));
        assert_false(allows(p, "snp", zero, digest, "default/other/1"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_policy_decisions), cmocka_unit_test(test_policy_errors),
                cmocka_unit_test(test_resource_paths),   cmocka_unit_test(test_store),
                cmocka_unit_test(test_sessions),         cmocka_unit_test(test_config),
                cmocka_unit_test(test_shipped_examples),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
