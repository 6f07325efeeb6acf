/*
 * Unit tests of cc-kbs's encodings and cryptography against the wire reference's vectors
 * (../shared/reference/attestation-kbs.md section 8.3): base64 flavours, RFC 8785, the
 * runtime-data digest (V4), the /attest body (V5), JWE (V6 exactly; RSA-OAEP-256 decrypted
 * here with OpenSSL), JWK rules, tokens, and SNP reports (built, signed and altered here).
 */
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include "cc/json.h"

#include "kbs/kbs.h"

#define V1_X "wq5MNFXIQGWMRTtwsXEAJUw-RCQqnFVZT8fFEz6CdtQ"
#define V1_Y "1zlFiSil3VgltjfwPlQ0XdCKb2iu9f1V8Zn9Kh1aIHU"
#define V1_JWK                                                                       \
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ECDH-ES+A256KW\",\"x\":\"" V1_X \
        "\",\"y\":\"" V1_Y "\"}"
#define V3_NONCE "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define V2_N                                                                                    \
        "zzTcB3wjS-5Y5laaxtQJcEVKtzswjBNQnZXKrIL90GOFE6DF5i20ImEOcCoJ_"                         \
        "XWg166SM053Bfl860RsWLWK4JNsF"                                                          \
        "ssUSH4XFSWlbAvCIXEIMIhbY1QOPzkUVi3JpvQWAuJlty2GxM7iMUh_-_7pHIzS22FGLw7_"               \
        "zfvglgWW8pFmVb4AOG"                                                                    \
        "x6haVXrzoHkaQesTcIa1AOMstgDkvV3gRpHU1JMVmHLPxaLvx9Dz5AG4l65_KHhu4oj1UixeaP-MWTXHZCmV_" \
        "UptO"                                                                                  \
        "s4GiWBCztjZrOsi2yFDnQvsQwOzl2Vs-E3YUCMZ4pmHMjVeefidoiq8IxxZnlk4nDNhrShC1nTQ"

static struct json_object *parse(const char *s)
{
        struct json_object *o = NULL;
        assert_int_equal(cc_json_parse("t", s, strlen(s), 0, &o, NULL), 0);
        return o;
}

static void jwk_of(const char *json, struct kbs_jwk *k)
{
        _cleanup_json_ struct json_object *o = parse(json);
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(kbs_jwk_parse(o, k, &err), 0);
}

static char *hex_of(const uint8_t *b, size_t n)
{
        return cc_hex(b, n);
}

static void test_base64(void **state)
{
        uint8_t nonce[32];
        for (int i = 0; i < 32; i++)
                nonce[i] = (uint8_t)i;
        _cleanup_free_ char *s = cc_b64_encode(nonce, 32, false);
        assert_string_equal(s, V3_NONCE); /* V3 */
        _cleanup_free_ char *u = cc_b64_encode((const uint8_t *)"\xfb\xff", 2, true);
        assert_string_equal(u, "-_8");
        _cleanup_free_ uint8_t *d = NULL;
        size_t n;
        assert_int_equal(cc_b64_decode(V3_NONCE, 44, false, &d, &n), 0);
        assert_int_equal(n, 32);
        assert_memory_equal(d, nonce, 32);
        free(TAKE_PTR(d));
        /* strictness: missing padding, the other alphabet, padding in b64url, dirty tail bits */
        assert_int_equal(cc_b64_decode("AAECAw", 6, false, &d, &n), -EINVAL);
        assert_int_equal(cc_b64_decode("-_8=", 4, false, &d, &n), -EINVAL);
        assert_int_equal(cc_b64_decode("+/8", 3, true, &d, &n), -EINVAL);
        assert_int_equal(cc_b64_decode("-_8=", 4, true, &d, &n), -EINVAL);
        assert_int_equal(cc_b64_decode("-_9", 3, true, &d, &n), -EINVAL);
        assert_int_equal(cc_b64_decode("A", 1, true, &d, &n), -EINVAL);
        assert_int_equal(cc_b64_decode("", 0, true, &d, &n), 0);
        assert_int_equal(n, 0);
        /* V15: the policy body is b64url without padding */
        static const char rego[] =
                "package policy\n\ndefault allow = false\n\nallow if {\n\tdata.plugin "
                "== \"resource\"\n}\n";
        _cleanup_free_ char *p = cc_b64_encode((const uint8_t *)rego, strlen(rego), true);
        assert_string_equal(p,
                            "cGFja2FnZSBwb2xpY3kKCmRlZmF1bHQgYWxsb3cgPSBmYWxzZQoKYWxsb3cgaWYgewoJZG"
                            "F0YS5wbHVnaW4gPT0gInJlc291cmNlIgp9Cg");
}

static void test_jcs(void **state)
{
        _cleanup_json_ struct json_object *o =
                parse("{\"b\":1,\"a\":\"test\",\"c\":{\"d\":\"e\"}}");
        _cleanup_free_ char *c = NULL;
        assert_int_equal(cc_jcs(o, &c), 0);
        assert_string_equal(c, "{\"a\":\"test\",\"b\":1,\"c\":{\"d\":\"e\"}}");
        uint8_t md[48];
        unsigned n;
        EVP_Digest(c, strlen(c), md, &n, EVP_sha384(), NULL);
        _cleanup_free_ char *h = hex_of(md, 48);
        assert_string_equal(h,
                            "e71ce8e70d814ba6639c3612ebee0ff1f76f650f8dbb5e47157e0f3f525cd22c459748"
                            "0a186427c813ca941da78870c3"); /* Trustee's canonicalizer vector */
        /* escaping: '/' and non-ASCII literal, controls as \n or \u00xx; UTF-16 key order */
        _cleanup_json_ struct json_object *e =
                parse("{\"\\ud83d\\ude00\":1,\"\\ufb01\":2,\"s\":\"a/b\\u0001\\n\\u00e9\\\"\"}");
        _cleanup_free_ char *ec = NULL;
        assert_int_equal(cc_jcs(e, &ec), 0);
        assert_string_equal(ec, "{\"s\":\"a/b\\u0001\\n\xc3\xa9\\\"\",\"\xf0\x9f\x98\x80\":1,"
                                "\"\xef\xac\x81\":2}");
        _cleanup_json_ struct json_object *f = parse("[1.5]");
        _cleanup_free_ char *fc = NULL;
        assert_int_equal(cc_jcs(f, &fc), -EINVAL);
}

static void test_runtime_digest(void **state)
{
        struct kbs_jwk k = {};
        uint8_t d[48];
        jwk_of(V1_JWK, &k);
        assert_int_equal(kbs_runtime_data_digest(&k, V3_NONCE, "", d), 0);
        _cleanup_free_ char *h = hex_of(d, 48);
        assert_string_equal(h,
                            "ab8fc7597b2bce642fb271760f6ef8e5a69a7d93c992aae0a40ce52f150b5f5f61fbe0"
                            "ece9c5e67cc538c798329f34d4"); /* V4 */
        _cleanup_free_ char *s = cc_b64_encode(d, 48, false);
        assert_string_equal(s, "q4/HWXsrzmQvsnF2D2745aaafZPJkqrgpAzlLxULX19h++Ds6cXmfMU4x5gynzTU");
        kbs_jwk_done(&k);
        /* extra members are dropped: a JWK with "use" gives the same digest as without */
        jwk_of("{\"use\":\"enc\",\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ECDH-ES+A256KW\",\"x\":"
               "\"" V1_X "\",\"y\":\"" V1_Y "\"}",
               &k);
        uint8_t d2[48];
        assert_int_equal(kbs_runtime_data_digest(&k, V3_NONCE, "", d2), 0);
        assert_memory_equal(d, d2, 48);
        kbs_jwk_done(&k);
        jwk_of("{\"kty\":\"RSA\",\"alg\":\"RSA-OAEP-256\",\"n\":\"" V2_N "\",\"e\":\"AQAB\"}", &k);
        assert_int_equal(kbs_runtime_data_digest(&k, V3_NONCE, "", d), 0);
        _cleanup_free_ char *hr = hex_of(d, 48);
        assert_string_equal(hr,
                            "72e2d68b6c68a40af1d80b776b176da44412b73d146fb31ffe181fc6804c0d9539b1b9"
                            "55b93cb7a70660aa2cce62599e");
        kbs_jwk_done(&k);
}

static const char v5[] =
        "{\"init-data\":null,\"runtime-data\":{\"nonce\":\"" V3_NONCE "\",\"tee-pubkey\":" V1_JWK
        "},\"tee-evidence\":{\"primary_evidence\":{\"svn\":\"1\",\"report_data\":"
        "\"q4/HWXsrzmQvsnF2D2745aaafZPJkqrgpAzlLxULX19h++Ds6cXmfMU4x5gynzTU\"},"
        "\"additional_evidence\":\"\"}}";

static void test_attest_v5(void **state)
{
        _cleanup_error_ struct cc_error *err = NULL;
        struct kbs_attest_request a = {};
        assert_int_equal(kbs_parse_attest(v5, strlen(v5), &a, &err), 0);
        assert_false(a.has_init_data);
        assert_string_equal(a.nonce, V3_NONCE);
        uint8_t d[48];
        assert_int_equal(kbs_runtime_data_digest(&a.key, a.nonce, a.additional_evidence, d), 0);
        struct kbs_verifiers v = {.sample_enabled = true};
        struct kbs_evidence_in in = {.tee = KBS_TEE_SAMPLE,
                                     .evidence = a.primary_evidence,
                                     .report_data = d,
                                     .report_data_len = 48};
        _cleanup_json_ struct json_object *claims = NULL;
        assert_int_equal(kbs_verify_evidence(&v, &in, &claims, &err), 0);
        struct json_object *x;
        assert_true(json_object_object_get_ex(claims, "launch_digest", &x));
        /* sample disabled: refused */
        v.sample_enabled = false;
        _cleanup_json_ struct json_object *c2 = NULL;
        assert_int_equal(kbs_verify_evidence(&v, &in, &c2, &err), -EPERM);
        /* padded report_data: refused */
        v.sample_enabled = true;
        uint8_t pad[64] = {};
        memcpy(pad, d, 48);
        _cleanup_free_ char *p64 = cc_b64_encode(pad, 64, false);
        _cleanup_json_ struct json_object *ev = json_object_new_object();
        json_object_object_add(ev, "svn", json_object_new_string("1"));
        json_object_object_add(ev, "report_data", json_object_new_string(p64));
        in.evidence = ev;
        assert_int_equal(kbs_verify_evidence(&v, &in, &c2, &err), -EPERM);
        /* tdx: the stub refuses */
        in.tee = KBS_TEE_TDX;
        assert_int_equal(kbs_verify_evidence(&v, &in, &c2, &err), -ENOTSUP);
        kbs_attest_request_done(&a);
        /* missing additional_evidence */
        char bad[sizeof(v5)];
        snprintf(bad, sizeof(bad), "%s", v5);
        char *ae = strstr(bad, ",\"additional_evidence\":\"\"");
        memmove(ae, ae + 25, strlen(ae + 25) + 1);
        assert_int_equal(kbs_parse_attest(bad, strlen(bad), &a, &err), -EINVAL);
        assert_string_equal(cc_error_message(err), "tee-evidence: missing 'additional_evidence'");
}

static void test_auth(void **state)
{
        struct kbs_auth_request r;
        _cleanup_free_ char *why = NULL;
        static const char ok[] = "{\"version\":\"0.4.0\",\"tee\":\"tdx\",\"extra-params\":{}}";
        assert_int_equal(kbs_parse_auth(ok, strlen(ok), &r, &why), 0);
        assert_int_equal(r.tee, KBS_TEE_TDX);
        static const char old[] = "{\"version\":\"0.2.0\",\"tee\":\"tdx\",\"extra-params\":\"\"}";
        assert_int_equal(kbs_parse_auth(old, strlen(old), &r, &why), -EINVAL);
        assert_string_equal(why, "KBS Client Protocol Version Mismatch: expect =0.4.0 while the "
                                 "request is 0.2.0");
        free(TAKE_PTR(why));
        static const char noextra[] = "{\"version\":\"0.4.0\",\"tee\":\"tdx\"}";
        assert_int_equal(kbs_parse_auth(noextra, strlen(noextra), &r, &why), -EINVAL);
        assert_string_equal(why, "deserialize Request");
        free(TAKE_PTR(why));
        static const char sev[] = "{\"version\":\"0.4.0\",\"tee\":\"sev\",\"extra-params\":\"\"}";
        assert_int_equal(kbs_parse_auth(sev, strlen(sev), &r, &why), -EINVAL);
        free(TAKE_PTR(why));
        static const char azure[] =
                "{\"version\":\"0.4.0\",\"tee\":\"az-snp-vtpm\",\"extra-params\":1}";
        assert_int_equal(kbs_parse_auth(azure, strlen(azure), &r, &why), 0);
        assert_int_equal(r.tee, KBS_TEE_AZ_SNP_VTPM);
}

static EVP_PKEY *ec_key_from_scalar(const char *hex)
{
        uint8_t priv[32];
        assert_int_equal(cc_unhex(hex, priv, 32), 0);
        BIGNUM *bn = BN_bin2bn(priv, 32, NULL);
        EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
        EC_POINT *pt = EC_POINT_new(g);
        EC_POINT_mul(g, pt, bn, NULL, NULL, NULL);
        uint8_t pub[65];
        EC_POINT_point2oct(g, pt, POINT_CONVERSION_UNCOMPRESSED, pub, 65, NULL);
        OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
        OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
        OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, bn);
        OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pub, 65);
        OSSL_PARAM *p = OSSL_PARAM_BLD_to_param(b);
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        EVP_PKEY *k = NULL;
        assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
        assert_int_equal(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_KEYPAIR, p), 1);
        EVP_PKEY_CTX_free(ctx);
        OSSL_PARAM_free(p);
        OSSL_PARAM_BLD_free(b);
        EC_POINT_free(pt);
        EC_GROUP_free(g);
        BN_free(bn);
        return k;
}

static void test_jwe_v6(void **state)
{
        struct kbs_jwk k = {};
        uint8_t cek[32], iv[12];
        jwk_of(V1_JWK, &k);
        assert_int_equal(
                cc_unhex("25d60d3f1c9fe44e5ea8da61facd64ae5158870887f55e05656cd341685ca0f1", cek,
                          32),
                0);
        assert_int_equal(cc_unhex("000102030405060708090a0b", iv, 12), 0);
        EVP_PKEY *eph = ec_key_from_scalar(
                "05be979a45d73d5fc9423915a62b5de8a6ae7167e41ebf3d0f6f449e652555d3");
        _cleanup_free_ char *out = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(kbs__jwe_encrypt_with(&k, (const uint8_t *)"test content", 12, cek, iv,
                                               eph, &out, &err),
                         0);
        assert_string_equal(
                out, "{\"protected\":"
                     "\"eyJhbGciOiJFQ0RILUVTK0EyNTZLVyIsImVuYyI6IkEyNTZHQ00iLCJlcGsiOnsiY3J2Ij"
                     "oiUC0yNTYiLCJrdHkiOiJFQyIsIngiOiJUUWlJSlBVRlVuOXFvWTJmLXlLcHNfWVB6NmNueFNsam5"
                     "USFUwMGR1T"
                     "1NvIiwieSI6Inl3ZUFnV0lRN3BwUGhubTB4VW5ycmFjMlN6NUd4bGlyZ2E1NzZPR2Jla0kifX0\","
                     "\"encrypted_key\":\"ubBydxaRDT5G5TXdP6-YeFJNVqVXFbU3TcBHbgD16iZj64lYo_iO6Q\","
                     "\"iv\":"
                     "\"AAECAwQFBgcICQoL\",\"ciphertext\":\"6-vD6lCXTNHZHgJA\",\"tag\":"
                     "\"4Wm8GAJoG1L7-PBXUlpdIw\"}");
        EVP_PKEY_free(eph);
        kbs_jwk_done(&k);
}

/* RSA-OAEP-256 to a key made here, decrypted here: CEK unwrap, then A256GCM with AAD. */
static void test_jwe_rsa_roundtrip(void **state)
{
        EVP_PKEY *priv = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        BIGNUM *n = NULL, *e = NULL;
        EVP_PKEY_get_bn_param(priv, OSSL_PKEY_PARAM_RSA_N, &n);
        EVP_PKEY_get_bn_param(priv, OSSL_PKEY_PARAM_RSA_E, &e);
        uint8_t nb[256], eb[3];
        BN_bn2binpad(n, nb, 256);
        BN_bn2binpad(e, eb, 3);
        _cleanup_free_ char *n64 = cc_b64_encode(nb, 256, true),
                            *e64 = cc_b64_encode(eb, 3, true);
        struct kbs_jwk k = {.kty = KBS_KTY_RSA,
                            .alg = strdup("RSA-OAEP-256"),
                            .n = strdup(n64),
                            .e = strdup(e64)};
        _cleanup_free_ char *out = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        static const char secret[] = "a resource";
        assert_int_equal(kbs_jwe_encrypt(&k, (const uint8_t *)secret, 10, &out, &err), 0);
        _cleanup_json_ struct json_object *j = parse(out);
        const char *prot, *ek, *ivs, *ct, *tag;
        assert_int_equal(cc_json_get_string(j, "protected", &prot, NULL), 0);
        assert_int_equal(cc_json_get_string(j, "encrypted_key", &ek, NULL), 0);
        assert_int_equal(cc_json_get_string(j, "iv", &ivs, NULL), 0);
        assert_int_equal(cc_json_get_string(j, "ciphertext", &ct, NULL), 0);
        assert_int_equal(cc_json_get_string(j, "tag", &tag, NULL), 0);
        _cleanup_free_ uint8_t *hdr = NULL, *ekb = NULL, *ivb = NULL, *ctb = NULL, *tagb = NULL;
        size_t hl, el, il, cl, tl;
        assert_int_equal(cc_b64_decode(prot, strlen(prot), true, &hdr, &hl), 0);
        assert_string_equal((char *)hdr, "{\"alg\":\"RSA-OAEP-256\",\"enc\":\"A256GCM\"}");
        assert_int_equal(cc_b64_decode(ek, strlen(ek), true, &ekb, &el), 0);
        assert_int_equal(cc_b64_decode(ivs, strlen(ivs), true, &ivb, &il), 0);
        assert_int_equal(cc_b64_decode(ct, strlen(ct), true, &ctb, &cl), 0);
        assert_int_equal(cc_b64_decode(tag, strlen(tag), true, &tagb, &tl), 0);
        assert_int_equal(il, 12);
        assert_int_equal(tl, 16);
        EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(priv, NULL);
        uint8_t cek[512];
        size_t cek_len = sizeof(cek);
        assert_int_equal(EVP_PKEY_decrypt_init(pc), 1);
        EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING);
        EVP_PKEY_CTX_set_rsa_oaep_md(pc, EVP_sha256());
        EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256());
        assert_int_equal(EVP_PKEY_decrypt(pc, cek, &cek_len, ekb, el), 1);
        assert_int_equal(cek_len, 32);
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        uint8_t pt[64];
        int l = 0, l2 = 0;
        assert_int_equal(EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, cek, ivb), 1);
        assert_int_equal(EVP_DecryptUpdate(c, NULL, &l, (const uint8_t *)prot, (int)strlen(prot)),
                         1);
        assert_int_equal(EVP_DecryptUpdate(c, pt, &l, ctb, (int)cl), 1);
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tagb);
        assert_int_equal(EVP_DecryptFinal_ex(c, pt + l, &l2), 1);
        assert_int_equal(l + l2, 10);
        assert_memory_equal(pt, secret, 10);
        EVP_CIPHER_CTX_free(c);
        EVP_PKEY_CTX_free(pc);
        EVP_PKEY_free(priv);
        BN_free(n);
        BN_free(e);
        kbs_jwk_done(&k);
}

static void test_jwk_rules(void **state)
{
        static const struct {
                const char *json;
                const char *msg;
        } bad[] = {
                {"{\"kty\":\"RSA\",\"alg\":\"RSA-OAEP\",\"n\":\"" V2_N "\",\"e\":\"AQAB\"}",
                 "tee-pubkey: RSA alg 'RSA-OAEP' is not supported"},
                {"{\"kty\":\"EC\",\"crv\":\"P-384\",\"alg\":\"ECDH-ES+A256KW\",\"x\":\"" V1_X
                 "\",\"y\":\"" V1_Y "\"}",
                 "tee-pubkey: curve 'P-384' is not supported"},
                {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ECDH-ES+A256KW\",\"x\":\"AAAA\","
                 "\"y\":\"" V1_Y "\"}",
                 "tee-pubkey: P-256 coordinates must be 32 bytes"},
                {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ECDH-ES+A256KW\",\"x\":\"" V1_Y
                 "\",\"y\":\"" V1_X "\"}",
                 "tee-pubkey: not a valid EC public key"},
                {"{\"kty\":\"RSA\",\"alg\":\"RSA-OAEP-256\",\"n\":\"AQAB\",\"e\":\"AQAB\"}",
                 "tee-pubkey: RSA modulus of 17 bits (2048..8192)"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct kbs_jwk k = {};
                EVP_PKEY *p = NULL;
                _cleanup_error_ struct cc_error *err = NULL;
                jwk_of(bad[i].json, &k); /* parses: algorithms are checked at encryption time */
                assert_int_equal(kbs_jwk_to_pkey(&k, &p, &err), -EINVAL);
                assert_string_equal(cc_error_message(err), bad[i].msg);
                kbs_jwk_done(&k);
        }
        _cleanup_json_ struct json_object *o = parse("{\"kty\":\"OKP\",\"x\":\"a\"}");
        _cleanup_error_ struct cc_error *err = NULL;
        struct kbs_jwk k = {};
        assert_int_equal(kbs_jwk_parse(o, &k, &err), -EINVAL);
        assert_string_equal(cc_error_message(err), "tee-pubkey: unsupported kty 'OKP'");
        _cleanup_json_ struct json_object *o2 =
                parse("{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":1}");
        assert_int_equal(kbs_jwk_parse(o2, &k, &err), -EINVAL);
        assert_string_equal(cc_error_message(err), "tee-pubkey: member 'alg' must be a string");
}

static void test_tokens(void **state)
{
        struct kbs_token_signer s;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(kbs_token_signer_init(&s, NULL, &err), 0);
        _cleanup_json_ struct json_object *c = parse("{\"exp\":2000,\"x\":\"y\"}");
        _cleanup_free_ char *t = NULL;
        assert_int_equal(kbs_token_issue(&s, c, &t, &err), 0);
        _cleanup_json_ struct json_object *got = NULL;
        assert_int_equal(kbs_token_verify(&s, t, 1999, &got, &err), 0);
        assert_string_equal(json_object_get_string(json_object_object_get(got, "x")), "y");
        assert_int_equal(kbs_token_verify(&s, t, 2000, &got, &err), -EPERM);
        assert_string_equal(cc_error_message(err), "token: expired");
        t[strlen(t) - 2] ^= 1; /* a flipped signature bit */
        assert_true(kbs_token_verify(&s, t, 1000, &got, &err) < 0);
        struct kbs_token_signer other;
        assert_int_equal(kbs_token_signer_init(&other, NULL, &err), 0);
        t[strlen(t) - 2] ^= 1;
        assert_int_equal(kbs_token_verify(&other, t, 1000, &got, &err), -EPERM);
        kbs_token_signer_done(&other);
        kbs_token_signer_done(&s);

        EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        _cleanup_free_ char *at = NULL;
        assert_int_equal(kbs_admin_token_mint(ed, 1000, 300, &at, &err), 0);
        assert_int_equal(kbs_admin_token_verify(ed, at, 1200, &err), 0);
        assert_int_equal(kbs_admin_token_verify(ed, at, 1300, &err), -EPERM);
        EVP_PKEY *ed2 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        assert_int_equal(kbs_admin_token_verify(ed2, at, 1200, &err), -EPERM);
        /* an ES256 token is not an admin token */
        assert_int_equal(kbs_admin_token_verify(ed, t, 1200, &err), -EINVAL);
        assert_string_equal(cc_error_message(err), "token: alg 'ES256' not accepted");
        EVP_PKEY_free(ed);
        EVP_PKEY_free(ed2);
}

/* ---- SNP: a report made and signed here, in the sev crate's JSON form ---- */

static struct json_object *bytes_json(const uint8_t *b, size_t n)
{
        struct json_object *a = json_object_new_array();
        for (size_t i = 0; i < n; i++)
                json_object_array_add(a, json_object_new_int(b[i]));
        return a;
}

static struct json_object *tcb_json(const uint8_t *p, bool turin)
{
        struct json_object *t = json_object_new_object();
        json_object_object_add(t, "fmc", turin ? json_object_new_int(p[0]) : NULL);
        json_object_object_add(t, "bootloader", json_object_new_int(p[turin ? 1 : 0]));
        json_object_object_add(t, "tee", json_object_new_int(p[turin ? 2 : 1]));
        json_object_object_add(t, "snp", json_object_new_int(p[turin ? 3 : 6]));
        json_object_object_add(t, "microcode", json_object_new_int(p[7]));
        return t;
}

static uint64_t le(const uint8_t *p, size_t n)
{
        uint64_t v = 0;
        for (size_t i = n; i-- > 0;)
                v = v << 8 | p[i];
        return v;
}

static struct json_object *report_json(const uint8_t *r)
{
        bool turin = r[0x188] == 0x1A;
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "version", json_object_new_int64((int64_t)le(r, 4)));
        json_object_object_add(o, "guest_svn", json_object_new_int64((int64_t)le(r + 4, 4)));
        json_object_object_add(o, "policy", json_object_new_uint64(le(r + 8, 8)));
        json_object_object_add(o, "family_id", bytes_json(r + 0x10, 16));
        json_object_object_add(o, "image_id", bytes_json(r + 0x20, 16));
        json_object_object_add(o, "vmpl", json_object_new_int64((int64_t)le(r + 0x30, 4)));
        json_object_object_add(o, "sig_algo", json_object_new_int64((int64_t)le(r + 0x34, 4)));
        json_object_object_add(o, "current_tcb", tcb_json(r + 0x38, turin));
        json_object_object_add(o, "plat_info", json_object_new_uint64(le(r + 0x40, 8)));
        json_object_object_add(o, "key_info", json_object_new_int64((int64_t)le(r + 0x48, 4)));
        json_object_object_add(o, "report_data", bytes_json(r + 0x50, 64));
        json_object_object_add(o, "measurement", bytes_json(r + 0x90, 48));
        json_object_object_add(o, "host_data", bytes_json(r + 0xC0, 32));
        json_object_object_add(o, "id_key_digest", bytes_json(r + 0xE0, 48));
        json_object_object_add(o, "author_key_digest", bytes_json(r + 0x110, 48));
        json_object_object_add(o, "report_id", bytes_json(r + 0x140, 32));
        json_object_object_add(o, "report_id_ma", bytes_json(r + 0x160, 32));
        json_object_object_add(o, "reported_tcb", tcb_json(r + 0x180, turin));
        json_object_object_add(o, "cpuid_fam_id", json_object_new_int(r[0x188]));
        json_object_object_add(o, "cpuid_mod_id", json_object_new_int(r[0x189]));
        json_object_object_add(o, "cpuid_step", json_object_new_int(r[0x18A]));
        json_object_object_add(o, "chip_id", bytes_json(r + 0x1A0, 64));
        json_object_object_add(o, "committed_tcb", tcb_json(r + 0x1E0, turin));
        struct json_object *cur = json_object_new_object(), *com = json_object_new_object();
        json_object_object_add(cur, "major", json_object_new_int(r[0x1EA]));
        json_object_object_add(cur, "minor", json_object_new_int(r[0x1E9]));
        json_object_object_add(cur, "build", json_object_new_int(r[0x1E8]));
        json_object_object_add(com, "major", json_object_new_int(r[0x1EE]));
        json_object_object_add(com, "minor", json_object_new_int(r[0x1ED]));
        json_object_object_add(com, "build", json_object_new_int(r[0x1EC]));
        json_object_object_add(o, "current", cur);
        json_object_object_add(o, "committed", com);
        json_object_object_add(o, "launch_tcb", tcb_json(r + 0x1F0, turin));
        json_object_object_add(o, "launch_mit_vector", json_object_new_uint64(le(r + 0x1F8, 8)));
        json_object_object_add(o, "current_mit_vector", json_object_new_uint64(le(r + 0x200, 8)));
        struct json_object *sig = json_object_new_object();
        json_object_object_add(sig, "r", bytes_json(r + 0x2A0, 72));
        json_object_object_add(sig, "s", bytes_json(r + 0x2E8, 72));
        json_object_object_add(o, "signature", sig);
        return o;
}

static void sign_report(uint8_t *r, EVP_PKEY *k)
{
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        uint8_t der[128];
        size_t dl = sizeof(der);
        assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, k), 1);
        assert_int_equal(EVP_DigestSign(md, der, &dl, r, KBS_SNP_SIGNED_SIZE), 1);
        const uint8_t *p = der;
        ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)dl);
        BN_bn2lebinpad(ECDSA_SIG_get0_r(s), r + 0x2A0, 72);
        BN_bn2lebinpad(ECDSA_SIG_get0_s(s), r + 0x2E8, 72);
        ECDSA_SIG_free(s);
        EVP_MD_CTX_free(md);
}

static void test_snp_report(void **state)
{
        for (int turin = 0; turin < 2; turin++) {
                uint8_t r[KBS_SNP_REPORT_SIZE] = {}, back[KBS_SNP_REPORT_SIZE];
                for (size_t i = 0; i < 0x2A0; i++)
                        r[i] = (uint8_t)(i * 7);
                memset(r + 0x4C, 0, 4);     /* reserved */
                memset(r + 0x18B, 0, 0x15); /* reserved after the CPUID bytes */
                memset(r + 0x1EB, 0, 1);    /* reserved after CURRENT */
                memset(r + 0x1EF, 0, 1);    /* reserved after COMMITTED */
                memset(r + 0x208, 0, 0x98); /* reserved up to the signature */
                r[0x34] = 1, r[0x35] = r[0x36] = r[0x37] = 0;
                r[0x188] = turin ? 0x1A : 0x19;
                for (size_t t = 0; t < 4; t++) { /* TCB bytes that carry no field are zero */
                        static const size_t off[] = {0x38, 0x180, 0x1E0, 0x1F0};
                        uint8_t *p = r + off[t];
                        if (turin)
                                memset(p + 4, 0, 3);
                        else
                                memset(p + 2, 0, 4);
                }
                EVP_PKEY *vcek = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp384r1");
                sign_report(r, vcek);
                _cleanup_json_ struct json_object *j = report_json(r);
                _cleanup_error_ struct cc_error *err = NULL;
                if (kbs_snp_report_from_json(j, back, &err) < 0)
                        fail_msg("%s", cc_error_message(err));
                assert_memory_equal(back, r, KBS_SNP_REPORT_SIZE);
                assert_int_equal(kbs_snp_verify_signature(back, vcek, &err), 0);
                back[0x90] ^= 1; /* MEASUREMENT altered */
                assert_int_equal(kbs_snp_verify_signature(back, vcek, &err), -EPERM);
                assert_string_equal(cc_error_message(err),
                                    "snp report: signature does not verify with the VCEK");
                /* a byte out of range, a short array */
                json_object_array_put_idx(json_object_object_get(j, "measurement"), 3,
                                          json_object_new_int(256));
                assert_int_equal(kbs_snp_report_from_json(j, back, &err), -EINVAL);
                assert_string_equal(cc_error_message(err),
                                    "snp report: 'measurement'[3] is not a byte");
                json_object_object_add(j, "host_data", bytes_json(r, 31));
                json_object_array_put_idx(json_object_object_get(j, "measurement"), 3,
                                          json_object_new_int(1));
                assert_int_equal(kbs_snp_report_from_json(j, back, &err), -EINVAL);
                assert_string_equal(cc_error_message(err),
                                    "snp report: 'host_data' must be an array of 32 bytes");
                json_object_object_del(j, "vmpl");
                json_object_object_add(j, "host_data", bytes_json(r, 32));
                assert_int_equal(kbs_snp_report_from_json(j, back, &err), -EINVAL);
                assert_string_equal(cc_error_message(err), "snp report: missing 'vmpl'");
                EVP_PKEY_free(vcek);
        }
}

static void test_initdata(void **state)
{
        static const char v12[] =
                "version = \"0.1.0\"\nalgorithm = \"sha384\"\n\n[data]\n\"aa.toml\" = "
                "'''\n[token_configs]\n[token_configs.kbs]\nurl = "
                "\"http://10.0.2.2:8080\"\n'''\n\n\"cdh.toml\" = '''\nsocket = "
                "\"unix:///run/confidential-containers/cdh.sock\"\n[kbc]\nname = "
                "\"cc_kbc\"\nurl = \"http://10.0.2.2:8080\"\n'''\n";
        assert_int_equal(strlen(v12), 261);
        struct kbs_initdata d = {};
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(kbs_initdata_parse("toml", v12, strlen(v12), &d, &err), 0);
        _cleanup_free_ char *h = hex_of(d.digest, d.digest_len);
        assert_string_equal(h,
                            "ee8a5bcc957baba82b806bdf5070baa38682389e7d008207b45c7ce50ab8999be244c2"
                            "129710a460959f902e2f9bea75");
        struct json_object *v;
        assert_int_equal(cc_json_get(d.claims, "/aa.toml/token_configs/kbs/url", &v, NULL), 0);
        assert_string_equal(json_object_get_string(v), "http://10.0.2.2:8080");
        uint8_t host[32];
        kbs_regularize(d.digest, d.digest_len, host, 32);
        _cleanup_free_ char *hb = cc_b64_encode(host, 32, false);
        assert_string_equal(hb,
                            "7opbzJV7q6grgGvfUHC6o4aCOJ59AIIHtFx85Qq4mZs="); /* QEMU host-data */
        kbs_initdata_done(&d);
        assert_int_equal(kbs_initdata_parse("json", "{}", 2, &d, &err), -EINVAL);
        static const char md5[] = "version = \"0.1.0\"\nalgorithm = \"md5\"\n[data]\n";
        assert_int_equal(kbs_initdata_parse("toml", md5, strlen(md5), &d, &err), -EINVAL);
        assert_string_equal(cc_error_message(err),
                            "init-data: algorithm 'md5' (sha256|sha384|sha512)");
        static const char v2[] = "version = \"0.2.0\"\nalgorithm = \"sha256\"\n[data]\n";
        assert_int_equal(kbs_initdata_parse("toml", v2, strlen(v2), &d, &err), -EINVAL);
}

/* V9 and V10: an ocicrypt layer and CoCo's annotation packet, byte for byte. */
static void test_ocicrypt_v9_v10(void **state)
{
        uint8_t symkey[32], nonce[16], kek[32], iv[12], hmac[32], ct[18];
        assert_int_equal(
                cc_unhex("52eb62a4a4608841ad5255708352c2908606a893a288086314507fd8be3df5f6",
                          symkey, 32),
                0);
        assert_int_equal(cc_unhex("000102030405060708090a0b0c0d0e0f", nonce, 16), 0);
        assert_int_equal(
                cc_unhex("cf2fdba392a4686b3a861c97eea0d6f845d485de025ae9176ab0441e82a2ed33", kek,
                          32),
                0);
        assert_int_equal(cc_unhex("0102030405060708090a0b0c", iv, 12), 0);
        struct kbs_layer_crypt c;
        char plain[72], enc[72];
        assert_int_equal(kbs_layer_crypt_init(&c, symkey, nonce), 0);
        /* in two pieces: the counter must run on across updates */
        assert_int_equal(kbs_layer_crypt_update(&c, (const uint8_t *)"hello, coco", 11, ct), 0);
        assert_int_equal(kbs_layer_crypt_update(&c, (const uint8_t *)" layer\n", 7, ct + 11), 0);
        assert_int_equal(kbs_layer_crypt_final(&c, plain, enc, hmac), 0);
        kbs_layer_crypt_done(&c);
        _cleanup_free_ char *cth = hex_of(ct, 18);
        assert_string_equal(cth, "dc3a6bc90767989a74648927a6c8966edd98");
        assert_string_equal(
                enc, "sha256:444b70bc2c83e8f98d23dba6d0b919bd1bc83d31d9ea3e566dfe94619456ef47");
        assert_string_equal(
                plain, "sha256:16d84203bfaf290f647b6b567d7c8f10413d0f23df59b68f2f5afe723c18d5d8");
        _cleanup_free_ char *pub = NULL, *packet = NULL;
        _cleanup_error_ struct cc_error *err = NULL;
        assert_int_equal(kbs_ocicrypt_annotations(symkey, nonce, plain, hmac, kek,
                                                  "kbs:///default/image-kek/test1", iv, &pub,
                                                  &packet, &err),
                         0);
        assert_string_equal(
                pub, "eyJjaXBoZXIiOiJBRVNfMjU2X0NUUl9ITUFDX1NIQTI1NiIsImhtYWMiOiJhTHA4RDdCYWFtdH"
                     "YxYktiYkppQ2tkVFgzd29saWVZWnpxWWlxVDg5RTZNPSIsImNpcGhlcm9wdGlvbnMiOnt9fQ==");
        assert_string_equal(packet,
                            "eyJraWQiOiJrYnM6Ly8vZGVmYXVsdC9pbWFnZS1rZWsvdGVzdDEiLCJ3cmFwcGVkX2RhdG"
                            "EiOiJDdkJvbUltY215Y0"
                            "Q1Q0xrV0FEWnVYd2U4MFJoWUtJSVFDYXpJNStLNzE0ektSeW9PQlcyNXBCVGNjQ3pEZk1Z"
                            "U25XTTVXR1U2M2Y2Qk5u"
                            "akJhZlBuM2Q3T1pUeXRjd3dmYkREYkxtOUZIVE1mRzlYeFo0eTU5QWcvN2I3aTRRL0k3Zl"
                            "JCSEd3RFkyV0VvNjJSOW"
                            "hzVGVrYWp0cHFYRWRlL2xLdTJEbWZEZFNKRjBmTTVmbTVUUzE3ZzRYcG14WjkxM2F2V21v"
                            "d1BUcFZQelFwWHJpVFk5"
                            "d24rVmlpbGMzZzhpcDlaWFFTaG1rWldoOEN0aG9tRlJRdjNOUU1EakNZZGRnQWE0VGN5Sj"
                            "FMdnFVQmpzaWxta289Ii"
                            "wiaXYiOiJBUUlEQkFVR0J3Z0pDZ3NNIiwid3JhcF90eXBlIjoiQTI1NkdDTSJ9");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_base64),
                cmocka_unit_test(test_jcs),
                cmocka_unit_test(test_runtime_digest),
                cmocka_unit_test(test_attest_v5),
                cmocka_unit_test(test_auth),
                cmocka_unit_test(test_jwe_v6),
                cmocka_unit_test(test_jwe_rsa_roundtrip),
                cmocka_unit_test(test_jwk_rules),
                cmocka_unit_test(test_tokens),
                cmocka_unit_test(test_snp_report),
                cmocka_unit_test(test_initdata),
                cmocka_unit_test(test_ocicrypt_v9_v10),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
