/* Unit tests of libccimage's parsers: references, manifests/indexes, image configs, the
 * WWW-Authenticate parser, base64. */
/* cmocka.h needs the standard headers before it. */
/* clang-format off */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include "cc/error.h"

#include "guest-agent/image/image-internal.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static void check_ref(const char *in, const char *reg, const char *repo, const char *tag,
                      const char *digest)
{
        struct img_ref r;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(img__ref_parse(in, &r, &err), 0);
        assert_string_equal(r.registry, reg);
        assert_string_equal(r.repo, repo);
        if (tag)
                assert_string_equal(r.tag, tag);
        else
                assert_null(r.tag);
        if (digest)
                assert_string_equal(r.digest, digest);
        else
                assert_null(r.digest);
        img__ref_done(&r);
}

static void test_ref(void **state)
{
        check_ref("busybox", "registry-1.docker.io", "library/busybox", "latest", NULL);
        check_ref("docker.io/foo/bar:1.0", "registry-1.docker.io", "foo/bar", "1.0", NULL);
        check_ref("127.0.0.1:5000/a/b/c:v1", "127.0.0.1:5000", "a/b/c", "v1", NULL);
        check_ref("localhost/x", "localhost", "x", "latest", NULL);
        check_ref("quay.io/x/y@" D1, "quay.io", "x/y", NULL, D1);
        check_ref("quay.io/x/y:t@" D1, "quay.io", "x/y", "t", D1);
        check_ref("reg:5000/my-app__x.y", "reg:5000", "my-app__x.y", "latest", NULL);
        const char *bad[] = {"",
                             "UPPER/case",
                             "a//b",
                             "x:",
                             "x@sha256:abc",
                             "x/-y",
                             "x:.tag",
                             "x@md5:11111111111111111111111111111111",
                             "a/b_"};
        for (size_t i = 0; i < CC_ARRAY_SIZE(bad); i++) {
                struct img_ref r;
                _cleanup_error_ struct cc_error *err = NULL;
                assert_int_equal(img__ref_parse(bad[i], &r, &err), -EINVAL);
                assert_non_null(err);
        }
}

static const char manifest_oci[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D1
        "\",\"size\":10},\"layers\":[{\"mediaType\":\"application/"
        "vnd.oci.image.layer.v1.tar+gzip\","
        "\"digest\":\"" D2 "\",\"size\":20},{\"mediaType\":"
        "\"application/vnd.oci.image.layer.v1.tar+zstd+encrypted\",\"digest\":\"" D3
        "\",\"size\":30,"
        "\"annotations\":{\"org.opencontainers.image.enc.keys.jwe\":\"abc\","
        "\"org.opencontainers.image.enc.pubopts\":\"def\"}}]}";

static void test_manifest(void **state)
{
        struct img_manifest *m = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(img__manifest_parse(IMG_MT_OCI_MANIFEST "; charset=utf-8", manifest_oci,
                                             strlen(manifest_oci), &m, &err),
                         0);
        assert_false(m->is_index);
        assert_string_equal(m->config.digest, D1);
        assert_int_equal(m->n_layers, 2);
        assert_int_equal(m->layers[0].compression, IMG_COMP_GZIP);
        assert_false(m->layers[0].encrypted);
        assert_int_equal(m->layers[1].compression, IMG_COMP_ZSTD);
        assert_true(m->layers[1].encrypted);
        assert_string_equal(m->layers[1].enc_jwe, "abc");
        assert_string_equal(m->layers[1].enc_pubopts, "def");
        img__manifest_free(m);

        /* The body's mediaType must agree with the Content-Type. */
        m = NULL;
        assert_int_equal(img__manifest_parse(IMG_MT_DOCKER_MANIFEST, manifest_oci,
                                             strlen(manifest_oci), &m, &err),
                         -EINVAL);
        assert_null(m);
        /* Trailing garbage, truncation, bad digests, unknown layer types are refused. */
        char buf[2048];
        snprintf(buf, sizeof(buf), "%s x", manifest_oci);
        assert_int_equal(img__manifest_parse(NULL, buf, strlen(buf), &m, &err), -EINVAL);
        assert_int_equal(img__manifest_parse(NULL, manifest_oci, 40, &m, &err), -EINVAL);
        const char *docker_bad =
                "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution."
                "manifest.v2+json\",\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:AB\","
                "\"size\":1},\"layers\":[]}";
        assert_int_equal(img__manifest_parse(NULL, docker_bad, strlen(docker_bad), &m, &err),
                         -EINVAL);
        const char *weird =
                "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"" D1
                "\",\"size\":1},\"layers\":[{\"mediaType\":\"application/x-foo\",\"digest\":\"" D2
                "\",\"size\":1}]}";
        assert_int_equal(img__manifest_parse(NULL, weird, strlen(weird), &m, &err), -EOPNOTSUPP);
        const char *schema1 = "{\"schemaVersion\":1,\"name\":\"x\"}";
        assert_int_equal(img__manifest_parse(NULL, schema1, strlen(schema1), &m, &err),
                         -EOPNOTSUPP);
        assert_null(m);
}

static const char index_json[] =
        "{\"schemaVersion\":2,\"mediaType\":\"application/"
        "vnd.docker.distribution.manifest.list.v2+json\","
        "\"manifests\":["
        "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1 "\","
        "\"size\":1,\"platform\":{\"architecture\":\"unknown\",\"os\":\"unknown\"}},"
        "{\"mediaType\":\"application/vnd.example+json\",\"digest\":\"blake9:zz\",\"size\":1,"
        "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
        "{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"digest\":\"" D2
        "\",\"size\":2,\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\"}}"
        ","
        "{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"digest\":\"" D3
        "\",\"size\":3,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\",\"variant\":"
        "\"v1\"}}]}";

static void test_index(void **state)
{
        struct img_manifest *m = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(img__manifest_parse(NULL, index_json, strlen(index_json), &m, &err), 0);
        assert_true(m->is_index);
        assert_int_equal(m->n_manifests, 4);
        const struct img_descriptor *d = NULL;
        /* x86_64 normalises to amd64; variant v1 means none; unknown types are skipped. */
        assert_int_equal(img__index_select(m, "linux", "x86_64", NULL, &d, &err), 0);
        assert_string_equal(d->digest, D3);
        assert_int_equal(img__index_select(m, "linux", "arm", "v7", &d, &err), 0);
        assert_string_equal(d->digest, D2);
        assert_int_equal(img__index_select(m, "linux", "arm", "v6", &d, &err), -ENOENT);
        /* The attestation entry (unknown/unknown) is never chosen. */
        assert_int_equal(img__index_select(m, "unknown", "unknown", NULL, &d, &err), -ENOENT);
        assert_int_equal(img__index_select(m, "linux", "s390x", NULL, &d, &err), -ENOENT);
        assert_non_null(strstr(cc_error_message(err), "linux/s390x"));
        img__manifest_free(m);
}

static void test_config(void **state)
{
        const char *c = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Entrypoint\":"
                        "[\"/bin/sh\",\"-c\"],\"Cmd\":[\"echo hi\"],\"Env\":[\"A=1\",\"B=2\"],"
                        "\"WorkingDir\":\"/w\",\"User\":\"1:2\"},\"rootfs\":{\"type\":\"layers\","
                        "\"diff_ids\":[\"" D1 "\",\"" D2 "\"]}}";
        struct img_image_config cfg;
        char **ids = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(img__config_parse(c, strlen(c), &cfg, &ids, &err), 0);
        assert_string_equal(cfg.entrypoint[1], "-c");
        assert_null(cfg.entrypoint[2]);
        assert_string_equal(cfg.cmd[0], "echo hi");
        assert_string_equal(cfg.env[1], "B=2");
        assert_string_equal(cfg.workdir, "/w");
        assert_string_equal(cfg.user, "1:2");
        assert_string_equal(ids[1], D2);
        assert_int_equal(img__strv_len(ids), 2);
        cc_strv_free(ids);
        img__config_done(&cfg);

        const char *bad = "{\"config\":{\"Env\":[1]},\"rootfs\":{\"diff_ids\":[]}}";
        assert_int_equal(img__config_parse(bad, strlen(bad), &cfg, &ids, &err), -EINVAL);
        const char *noids = "{\"config\":{}}";
        assert_int_equal(img__config_parse(noids, strlen(noids), &cfg, &ids, &err), -EINVAL);
}

static void test_auth_parse(void **state)
{
        char *scheme, *realm, *service, *scope;
        assert_int_equal(img__auth_parse("Bearer realm=\"https://auth.docker.io/token\","
                                         "service=\"registry.docker.io\",scope=\"repository:"
                                         "samalba/my-app:pull,push\"",
                                         &scheme, &realm, &service, &scope),
                         0);
        assert_string_equal(scheme, "Bearer");
        assert_string_equal(realm, "https://auth.docker.io/token");
        assert_string_equal(service, "registry.docker.io");
        assert_string_equal(scope, "repository:samalba/my-app:pull,push");
        free(scheme), free(realm), free(service), free(scope);
        assert_int_equal(img__auth_parse("Basic realm=x", &scheme, &realm, &service, &scope), 0);
        assert_string_equal(scheme, "Basic");
        assert_string_equal(realm, "x");
        assert_null(scope);
        free(scheme), free(realm), free(service), free(scope);
        assert_int_equal(
                img__auth_parse("Bearer realm=\"unterminated", &scheme, &realm, &service, &scope),
                -EINVAL);
        free(scheme), free(realm), free(service), free(scope);
}

/* containers-auth.json lookups: the credentials the guest gets from a KBS resource. */
static void test_auth_json(void **state)
{
        /* dXNlcjpwYXNz = user:pass, b3RoZXI6c2VjcmV0 = other:secret */
        const char *doc = "{\"auths\":{\"10.0.2.2:5000\":{\"auth\":\"dXNlcjpwYXNz\"},"
                          "\"docker.io\":{\"auth\":\"b3RoZXI6c2VjcmV0\"},"
                          "\"tok.example\":{\"identitytoken\":\"x\"}}}";
        char *c = NULL;
        assert_int_equal(img__auth_json_lookup(doc, strlen(doc), "10.0.2.2:5000", &c), 0);
        assert_string_equal(c, "user:pass");
        free(c);
        assert_int_equal(img__auth_json_lookup(doc, strlen(doc), "registry-1.docker.io", &c), 0);
        assert_string_equal(c, "other:secret");
        free(c);
        /* Not named, or an entry without "auth": no credentials, not an error. */
        assert_int_equal(img__auth_json_lookup(doc, strlen(doc), "10.0.2.2:5001", &c), 0);
        assert_null(c);
        assert_int_equal(img__auth_json_lookup(doc, strlen(doc), "tok.example", &c), 0);
        assert_null(c);
        assert_int_equal(img__auth_json_lookup("{}", 2, "h", &c), 0);
        assert_null(c);
        /* Not a credential: bad base64, no ':', a NUL inside, a number, auths not an object,
         * not JSON. */
        const char *bad[] = {
                "{\"auths\":{\"h\":{\"auth\":\"*\"}}}",
                "{\"auths\":{\"h\":{\"auth\":\"dXNlcg==\"}}}",
                "{\"auths\":{\"h\":{\"auth\":\"dQA6cA==\"}}}",
                "{\"auths\":{\"h\":{\"auth\":1}}}",
                "{\"auths\":[]}",
                "{\"auths\":",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(img__auth_json_lookup(bad[i], strlen(bad[i]), "h", &c), -EINVAL);
                assert_null(c);
        }
        /* In memory first, then the file; errors name where the document came from. */
        struct img_pull_opts o = {.auth_json = doc,
                                  .auth_json_len = strlen(doc),
                                  .auth_json_from = "kbs:///default/credential/test"};
        struct cc_error *err = NULL;
        assert_int_equal(img__auth_creds(&o, "10.0.2.2:5000", &c, &err), 0);
        assert_string_equal(c, "user:pass");
        free(c);
        o.auth_json = bad[1];
        o.auth_json_len = strlen(bad[1]);
        assert_int_equal(img__auth_creds(&o, "h", &c, &err), -EINVAL);
        assert_non_null(strstr(cc_error_message(err), "kbs:///default/credential/test"));
        cc_error_free(err);
}

static void test_b64(void **state)
{
        uint8_t *out;
        size_t len;
        assert_int_equal(img__b64_decode("aGVsbG8=", 8, false, &out, &len), 0);
        assert_int_equal(len, 5);
        assert_memory_equal(out, "hello", 5);
        free(out);
        assert_int_equal(img__b64_decode("_-8", 3, true, &out, &len), 0);
        assert_int_equal(len, 2);
        assert_int_equal(out[0], 0xff);
        assert_int_equal(out[1], 0xef);
        free(out);
        assert_int_equal(img__b64_decode("a", 1, false, &out, &len), -EINVAL);
        assert_int_equal(img__b64_decode("a*bc", 4, false, &out, &len), -EINVAL);
        char *e = img__b64_encode((const uint8_t *)"hello", 5);
        assert_string_equal(e, "aGVsbG8=");
        free(e);
        assert_true(img__digest_valid(D1));
        assert_false(img__digest_valid("sha256:ABCD"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ref),        cmocka_unit_test(test_manifest),
                cmocka_unit_test(test_index),      cmocka_unit_test(test_config),
                cmocka_unit_test(test_auth_parse), cmocka_unit_test(test_b64),
                cmocka_unit_test(test_auth_json),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
