/*
 * Unit tests: the guest's KBS client library (guest-agent/attest/) against the known-answer
 * vectors of ../shared/reference/attestation-kbs.md section 8.3 (V1-V12), plus the parsers'
 * refusals. The vectors were computed outside this project (Python cryptography, OpenSSL,
 * cross-checked with jwcrypto), so these tests check the wire format, not our own assumptions.
 */
#include <errno.h>
#include <stdint.h>
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

#include "guest-agent/attest/kbc.h"
#include "guest-agent/image/image.h"

/* V1: the TEE EC key. */
static const char v1_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                             "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSnraOS8HjHXehgPw\n"
                             "906l3EOwtAI47vSfcIOra2rCI4ChRANCAATCrkw0VchAZYxFO3CxcQAlTD5EJCqc\n"
                             "VVlPx8UTPoJ21Nc5RYkopd1YJbY38D5UNF3Qim9orvX9VfGZ/SodWiB1\n"
                             "-----END PRIVATE KEY-----\n";
static const char v1_jwk_x[] = "wq5MNFXIQGWMRTtwsXEAJUw-RCQqnFVZT8fFEz6CdtQ";
static const char v1_jwk_y[] = "1zlFiSil3VgltjfwPlQ0XdCKb2iu9f1V8Zn9Kh1aIHU";

/* V2: the TEE RSA key, PKCS#8 of the reference's p, q, e (computed here with Python's
 * cryptography from those numbers). */
static const char v2_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                             "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDPNNwHfCNL7ljm\n"
                             "VprG1AlwRUq3OzCME1Cdlcqsgv3QY4UToMXmLbQiYQ5wKgn9daDXrpIzTncF+Xzr\n"
                             "RGxYtYrgk2wWyxRIfhcVJaVsC8IhcQgwiFtjVA4/ORRWLcmm9BYC4mW3LYbEzuIx\n"
                             "SH/7/ukcjNLbYUYvDv/N++CWBZbykWZVvgA4bHqFpVevOgeRpB6xNwhrUA4yy2AO\n"
                             "S9XeBGkdTUkxWYcs/Fou/H0PPkAbiXrn8oeG7iiPVSLF5o/4xZNcdkKZX9Sm06zg\n"
                             "aJYELO2Nms6yLbIUOdC+xDA7OXZWz4TdhQIxnimYcyNV55+J2iKrwjHFmeWTicM2\n"
                             "GtKELWdNAgMBAAECggEAP1qEI+26xQ6dM+Aq9rwCHsew7pE0aL/HGEeiblimzj5/\n"
                             "g97WY2h5+UD/rx/Laim7AfcoUHOfRL5hiXWkQwNO8RdiJx30l62l1RtrlruJobvz\n"
                             "qxMmDhq3OHF1XFwnmdprmHosa3OKD0bKNhNavmvUTpxoJBd75AuL/ykSJAyVeJia\n"
                             "0N5Wa1783OIsTjOwYKSO/4ml5r7u64GgBIh5wYoiS0dev3KgEgOyR1lT6PkAZBkz\n"
                             "WAguZic8CPfM6BdvP8/nFtuVvSa9rHe6opNwEsG85ZrTgHYe5mUV8uvXk8atrfNx\n"
                             "BsEXbS5OQvijU/TnSiMM8U46rt8gfgd01WGzAPFuqQKBgQD+Maw1yi8LdVJi4CEu\n"
                             "l3kLrZWpUjGX8L0DD7BjgN1WpYkX5u6ojsjgjRf1WyhPjWnBYgF4ZU8osvAtP38s\n"
                             "GA45A3rQ+kngipQE0ZjAP1R1f/D4X7W5O2zTpLiOgw8N0eaYrKO32Ry7a6pqcRmP\n"
                             "36De+ZoDGuUOb4WaoGbxfFyHswKBgQDQrbnaC9lR/ORHGvwlWKVEEl2DlJ/BrihH\n"
                             "TKKSZ7t6IziNsyku12NhXubdX6btPrcZP65jzfhmzhz7dE8f66m/fv6AnFh6n5Cx\n"
                             "DE6P25AwNgnLWBhDtL9xKAZWEQE57kuW//kaIGxvJ7agw/5wkXxMMzPO7+Bp60Ri\n"
                             "RO1+HNbU/wKBgQCuheQ6uio6r7507HVby9vrzK5opmoua7caFveAGcXd66GIq6FI\n"
                             "UWBR7A17A69Vjz4A7A0eYFBNHS4Rovrph0qckmsMeAupAvxForJBrDmMwt7raKsY\n"
                             "FljNptaf4hO/5VFxmXZ+j65Ob8l9c1GdmmiVLsIzR4/krWUJmP+U5VGSSQKBgHnU\n"
                             "02q//DLnyIbS9F8BcAtcBYiqntK+0Pk/frKnKUdXhM8FyId2bKkOdQ7Np3Ffahqt\n"
                             "mSzftaSftUABWaizN7l7dS61GNsOibU0EDHg6D+dbP5xAkmVHyf7TCe3adXej/cq\n"
                             "ns5oG6aRswgNJWGnLsB2LEsmtQhhuNz+jQFR6QMVAoGANf3k6Xkehzpwvn9Ccp5p\n"
                             "F4KbbcKkcKJwbyvOVJiOK4FFZgUNr/o8CTcUxcSDskQ6/V2R6szyKYFgpeYUnL0M\n"
                             "b3inIgrB4TvrbQgymyikENayYz+3r06s8OmxzySmYmycDDTSCo1nHKPvWxVpNAq8\n"
                             "s3VFZqw1DntRJb+L6whrXak=\n"
                             "-----END PRIVATE KEY-----\n";
static const char v2_n[] = "zzTcB3wjS-5Y5laaxtQJcEVKtzswjBNQnZXKrIL90GOFE6DF5i20ImEOcCoJ_"
                           "XWg166SM053Bfl860RsWLWK4JNsFssUSH4XFSWlbAvCIXEIMIhbY1QOPzkUVi3JpvQWAuJl"
                           "ty2GxM7iMUh_-_7pHIzS22FGLw7_"
                           "zfvglgWW8pFmVb4AOGx6haVXrzoHkaQesTcIa1AOMstgDkvV3gRpHU1JMVmHLPxaLvx9Dz5"
                           "AG4l65_KHhu4oj1UixeaP-MWTXHZCmV_UptOs4GiWBCztjZrOsi2yFDnQvsQwOzl2Vs-"
                           "E3YUCMZ4pmHMjVeefidoiq8IxxZnlk4nDNhrShC1nTQ";

static const char v3_nonce[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

static void hex(const uint8_t *p, size_t n, char *out)
{
        for (size_t i = 0; i < n; i++)
                sprintf(out + 2 * i, "%02x", p[i]);
}

static struct kbc_tee_key *key_of(const char *pem)
{
        struct kbc_tee_key *k = NULL;
        assert_int_equal(kbc_tee_key_from_pem(pem, strlen(pem), &k), 0);
        return k;
}

static void test_b64(void **state)
{
        uint8_t v3[32];
        for (int i = 0; i < 32; i++)
                v3[i] = (uint8_t)i;
        char *s = cc_b64_encode(v3, 32, false);
        assert_string_equal(s, v3_nonce);
        free(s);
        s = cc_b64_encode((const uint8_t *)"\xfb\xff", 2, true);
        assert_string_equal(s, "-_8");
        free(s);
        uint8_t *d = NULL;
        size_t n = 0;
        assert_int_equal(cc_b64_decode(v3_nonce, strlen(v3_nonce), false, &d, &n), 0);
        assert_int_equal(n, 32);
        assert_memory_equal(d, v3, 32);
        free(d);
        /* Wrong alphabet, junk, a non-canonical tail: refused. */
        assert_int_equal(cc_b64_decode("-_8", 3, false, &d, &n), -EINVAL);
        assert_int_equal(cc_b64_decode("ab$d", 4, false, &d, &n), -EINVAL);
        assert_int_equal(cc_b64_decode("QR==", 4, false, &d, &n), -EINVAL);
        assert_int_equal(cc_b64_decode("A", 1, true, &d, &n), -EINVAL);
}

static void test_jcs(void **state)
{
        /* Trustee's canonicalizer vector (2.1). */
        struct json_object *o = json_tokener_parse("{\"b\":1,\"a\":\"test\",\"c\":{\"d\":\"e\"}}");
        char *s = NULL;
        assert_int_equal(cc_jcs(o, &s), 0);
        assert_string_equal(s, "{\"a\":\"test\",\"b\":1,\"c\":{\"d\":\"e\"}}");
        uint8_t md[64];
        char h[129];
        kbc_hash(KBC_SHA384, s, strlen(s), md);
        hex(md, 48, h);
        assert_string_equal(h, "e71ce8e70d814ba6639c3612ebee0ff1f76f650f8dbb5e47157e0f3f525cd22c459"
                               "7480a186427c813ca941da78870c3");
        free(s);
        json_object_put(o);
        /* Escaping: '/' and non-ASCII literal, controls as \u00xx or short forms; keys by
         * UTF-16 code units (U+10000 sorts before U+E000 there, after it in UTF-8). */
        o = json_tokener_parse(
                "{\"\\ue000\":1,\"\\ud800\\udc00\":2,\"x\":\"a/\\u0001\\n\\\"\\u00e9\"}");
        assert_int_equal(cc_jcs(o, &s), 0);
        assert_string_equal(
                s,
                "{\"x\":\"a/\\u0001\\n\\\"\xc3\xa9\",\"\xf0\x90\x80\x80\":2,\"\xee\x80\x80\":1}");
        free(s);
        json_object_put(o);
        o = json_tokener_parse("{\"f\":1.5}");
        assert_int_equal(cc_jcs(o, &s), -EINVAL);
        json_object_put(o);
}

/* V1 JWK and V4: the runtime-data material, its digests, the sample evidence. */
static void test_runtime_data_v4(void **state)
{
        struct kbc_tee_key *k = key_of(v1_pem);
        struct json_object *jwk = kbc_tee_key_jwk(k);
        assert_string_equal(json_object_to_json_string_ext(jwk, JSON_C_TO_STRING_PLAIN),
                            "{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ECDH-ES+A256KW\",\"x\":"
                            "\"wq5MNFXIQGWMRTtwsXEAJUw-RCQqnFVZT8fFEz6CdtQ\",\"y\":"
                            "\"1zlFiSil3VgltjfwPlQ0XdCKb2iu9f1V8Zn9Kh1aIHU\"}");
        struct json_object *rd = json_object_new_object();
        json_object_object_add(rd, "tee-pubkey", jwk);
        json_object_object_add(rd, "nonce", json_object_new_string(v3_nonce));
        json_object_object_add(rd, "additional-evidence", json_object_new_string(""));
        char *m = NULL;
        assert_int_equal(cc_jcs(rd, &m), 0);
        char want[512];
        snprintf(want, sizeof(want),
                 "{\"additional-evidence\":\"\",\"nonce\":\"%s\",\"tee-pubkey\":{\"alg\":\"ECDH-ES+"
                 "A256KW\",\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}}",
                 v3_nonce, v1_jwk_x, v1_jwk_y);
        assert_string_equal(m, want);
        uint8_t md[64];
        char h[129];
        kbc_hash(KBC_SHA384, m, strlen(m), md);
        hex(md, 48, h);
        assert_string_equal(h, "ab8fc7597b2bce642fb271760f6ef8e5a69a7d93c992aae0a40ce52f150b5f5f61f"
                               "be0ece9c5e67cc538c798329f34d4");
        struct json_object *ev = kbc_evidence_sample(md, 48);
        assert_string_equal(json_object_to_json_string_ext(
                                    ev, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                            "{\"svn\":\"1\",\"report_data\":\"q4/"
                            "HWXsrzmQvsnF2D2745aaafZPJkqrgpAzlLxULX19h++Ds6cXmfMU4x5gynzTU\"}");
        kbc_hash(KBC_SHA512, m, strlen(m), md);
        hex(md, 64, h);
        assert_string_equal(h, "f2ef4f1621033ef973d41320a0718defeeeb7c1d9093a11e6747dcdf36bfcd312aa"
                               "7371b0dd11f290eafc6970af8f85f2a93710839ecd6d20724b0f156070b86");
        kbc_hash(KBC_SHA256, m, strlen(m), md);
        hex(md, 32, h);
        assert_string_equal(h, "195d6094712d6957fdcfadb368853230ea1329942588c771b2b03a0ce850649a");
        /* Sample evidence through the attester: unpadded. */
        struct json_object *ev2 = NULL;
        kbc_hash(KBC_SHA384, m, strlen(m), md);
        assert_int_equal(kbc_attester_evidence(KBC_TEE_SAMPLE, NULL, md, 48, &ev2, NULL), 0);
        assert_string_equal(json_object_get_string(json_object_object_get(ev2, "report_data")),
                            "q4/HWXsrzmQvsnF2D2745aaafZPJkqrgpAzlLxULX19h++Ds6cXmfMU4x5gynzTU");
        json_object_put(ev2);
        json_object_put(ev);
        free(m);
        json_object_put(rd);
        kbc_tee_key_free(k);
}

static void test_rsa_jwk_v4(void **state)
{
        struct kbc_tee_key *k = key_of(v2_pem);
        struct json_object *rd = json_object_new_object();
        struct json_object *jwk = kbc_tee_key_jwk(k);
        assert_string_equal(json_object_get_string(json_object_object_get(jwk, "n")), v2_n);
        assert_string_equal(json_object_get_string(json_object_object_get(jwk, "e")), "AQAB");
        assert_string_equal(json_object_get_string(json_object_object_get(jwk, "alg")),
                            "RSA-OAEP-256");
        assert_int_equal(json_object_object_length(jwk), 4);
        json_object_object_add(rd, "tee-pubkey", jwk);
        json_object_object_add(rd, "nonce", json_object_new_string(v3_nonce));
        json_object_object_add(rd, "additional-evidence", json_object_new_string(""));
        char *m = NULL;
        assert_int_equal(cc_jcs(rd, &m), 0);
        uint8_t md[64];
        char h[129];
        kbc_hash(KBC_SHA384, m, strlen(m), md);
        hex(md, 48, h);
        assert_string_equal(h, "72e2d68b6c68a40af1d80b776b176da44412b73d146fb31ffe181fc6804c0d9539b"
                               "1b955b93cb7a70660aa2cce62599e");
        free(m);
        json_object_put(rd);
        kbc_tee_key_free(k);
}

static const char v6[] =
        "{\"protected\":"
        "\"eyJhbGciOiJFQ0RILUVTK0EyNTZLVyIsImVuYyI6IkEyNTZHQ00iLCJlcGsiOnsiY3J2IjoiUC0yNTYiLCJrdHki"
        "OiJFQyIsIngiOiJUUWlJSlBVRlVuOXFvWTJmLXlLcHNfWVB6NmNueFNsam5USFUwMGR1T1NvIiwieSI6Inl3ZUFnV0"
        "lRN3BwUGhubTB4VW5ycmFjMlN6NUd4bGlyZ2E1NzZPR2Jla0kifX0\",\"encrypted_key\":"
        "\"ubBydxaRDT5G5TXdP6-YeFJNVqVXFbU3TcBHbgD16iZj64lYo_iO6Q\",\"iv\":\"AAECAwQFBgcICQoL\","
        "\"ciphertext\":\"6-vD6lCXTNHZHgJA\",\"tag\":\"4Wm8GAJoG1L7-PBXUlpdIw\"}";
static const char v7[] =
        "{\"protected\":\"eyJhbGciOiJSU0EtT0FFUC0yNTYiLCJlbmMiOiJBMjU2R0NNIn0\",\"encrypted_key\":"
        "\"yTdpU0SQmu_mBTTzJzdO8QaaxlFhQPQknnzTkoKmq86nHRSVLfaE-"
        "eEvJcypNE2vBy8TJ3j6iwiNvIkG4Bk7ZQfemxuiSt_C6BLULUqnGI_qOpzL1NrpZYs3T5OcA8q-"
        "hZDim8EEReKoFfQSPcvTgCBui6WvJZDIajDNt3dMWZL9T_FtTotLz1jujDUK21SSPK6wqsL7pms_wHS-"
        "JpWonU5JcqIsnED43Zib81Oiry8FPBTrONbjcftqqZDVzHPOXJp7d_VAgVtQi3VsalgZvaqlSOS0Fk8dftAj-"
        "JR2az9LbpRQRH6z9I5qPaqkm0es3uFy81KQ7gZk4SrVBfrOpQ\",\"iv\":\"AAECAwQFBgcICQoL\","
        "\"ciphertext\":\"VgZHRHalDYsmvwpq\",\"tag\":\"kd19LY_63y-xKkDN4gIGkQ\"}";
static const char v8[] =
        "{\"protected\":\"eyJhbGciOiJSU0ExXzUiLCJlbmMiOiJBMjU2R0NNIn0\",\"encrypted_key\":"
        "\"OxXUoapg4SJKp1mBoHimsTto-tnra9OlQ2AhMLalCddm_ysCDzpARwA4QvU-"
        "YDFsJWkKXuxtAsf0gaWQHKwPGchwmZtw23goY6kR72qsPkFnEXkgBgKNCnOcoUwjLMkCtxhVdco5rp3hwtEBasEnPL"
        "nkGXCSS8duKA1EnL7lRYDT2bjZkMhQNWBuag5ZbuUL0jT1wyDKXNd0M-uiVVadItvWOBN7BgMyZuhn2vG-"
        "Bpmiox36b6XNUZdJpccr9CRrCrjHewiddHlMA_a6HUi-1lfHSLExvnlTG2IEE4qxUCGsLvXynqvZzBOUUH_"
        "LahXM2WH0vjYpMTD1xfohkEdrtw\",\"iv\":\"AAECAwQFBgcICQoL\",\"ciphertext\":"
        "\"VgZHRHalDYsmvwpq\",\"tag\":\"Fd756QRQDq1HolFTNvzx_Q\"}";

static void expect_plain(const struct kbc_tee_key *k, const char *jwe)
{
        uint8_t *pt = NULL;
        size_t n = 0;
        struct cc_error *e = NULL;
        int r = kbc_jwe_decrypt(k, jwe, strlen(jwe), &pt, &n, &e);
        if (r < 0)
                fail_msg("decrypt: %s", cc_error_message(e));
        assert_int_equal(n, 12);
        assert_memory_equal(pt, "test content", 12);
        free(pt);
}

static void expect_refused(const struct kbc_tee_key *k, const char *jwe, const char *why)
{
        uint8_t *pt = NULL;
        size_t n = 0;
        struct cc_error *e = NULL;
        assert_true(kbc_jwe_decrypt(k, jwe, strlen(jwe), &pt, &n, &e) < 0);
        if (!strstr(cc_error_message(e), why))
                fail_msg("'%s' does not say '%s'", cc_error_message(e), why);
        cc_error_free(e);
        assert_null(pt);
}

/* V6 with one tag byte flipped: refused by the tag check. */
static void expect_bad_tag_refused(const struct kbc_tee_key *ec)
{
        char *bad = strdup(v6);
        char *t = strstr(bad, "\"tag\":\"") + 7;
        t[0] = t[0] == 'A' ? 'B' : 'A';
        expect_refused(ec, bad, "A256GCM authentication failed");
        free(bad);
}

static void test_jwe_v6_v7_v8(void **state)
{
        struct kbc_tee_key *ec = key_of(v1_pem), *rsa = key_of(v2_pem);
        expect_plain(ec, v6);
        expect_plain(rsa, v7);
        expect_plain(rsa, v8);
        /* A flipped tag byte, a flipped ciphertext byte, the other key type, a foreign EC key. */
        expect_bad_tag_refused(ec);
        char *bad = strdup(v6);
        char *t = strstr(bad, "\"ciphertext\":\"") + 14;
        t[1] = t[1] == 'A' ? 'B' : 'A';
        expect_refused(ec, bad, "A256GCM authentication failed");
        free(bad);
        expect_refused(rsa, v6, "for an RSA TEE key");
        expect_refused(ec, v7, "for an EC TEE key");
        struct kbc_tee_key *other = NULL;
        assert_int_equal(kbc_tee_key_generate(KBC_KEY_EC_P256, &other), 0);
        expect_refused(other, v6, "AES key unwrap failed");
        kbc_tee_key_free(other);
        /* Structure: not JSON, trailing bytes, a missing member, an unknown alg. */
        expect_refused(ec, "[]", "not a JSON object");
        char trailing[sizeof(v6) + 2];
        snprintf(trailing, sizeof(trailing), "%s{", v6);
        expect_refused(ec, trailing, "not a JSON object");
        expect_refused(ec, "{\"protected\":\"eyJhbGciOiJmYWtlYWxnIiwiZW5jIjoiZmFrZWVuYyJ9\"}",
                       "encrypted_key");
        expect_refused(ec,
                       "{\"protected\":\"eyJhbGciOiJmYWtlYWxnIiwiZW5jIjoiQTI1NkdDTSJ9\","
                       "\"encrypted_key\":\"\",\"iv\":\"AAECAwQFBgcICQoL\",\"ciphertext\":\"\","
                       "\"tag\":\"4Wm8GAJoG1L7-PBXUlpdIw\"}",
                       "fakealg");
        kbc_tee_key_free(ec);
        kbc_tee_key_free(rsa);
}

/* kbc_jwe_warm runs the EC unwrap on throwaway inputs: it leaves the key as it was (V6 still
 * opens, its tag is still checked) and does nothing for an RSA key (V7 still opens). */
static void test_jwe_warm(void **state)
{
        struct kbc_tee_key *ec = key_of(v1_pem), *rsa = key_of(v2_pem);
        kbc_jwe_warm(ec);
        kbc_jwe_warm(ec);
        kbc_jwe_warm(rsa);
        expect_plain(ec, v6);
        expect_plain(rsa, v7);
        expect_bad_tag_refused(ec);
        kbc_tee_key_free(ec);
        kbc_tee_key_free(rsa);
}

static const char v12_toml[] = "version = \"0.1.0\"\n"
                               "algorithm = \"sha384\"\n"
                               "\n"
                               "[data]\n"
                               "\"aa.toml\" = '''\n"
                               "[token_configs]\n"
                               "[token_configs.kbs]\n"
                               "url = \"http://10.0.2.2:8080\"\n"
                               "'''\n"
                               "\n"
                               "\"cdh.toml\" = '''\n"
                               "socket = \"unix:///run/confidential-containers/cdh.sock\"\n"
                               "[kbc]\n"
                               "name = \"cc_kbc\"\n"
                               "url = \"http://10.0.2.2:8080\"\n"
                               "'''\n";
static const char v12_annotation[] =
        "H4sIAAAAAAACA4WOQQ7CIBBF95yiYdOVQKuLxsSTNE0zpVgIdDAwNR5fcKcbl/9P3pv/"
        "NCm7iM2t4Up0QnEGYYvJkd1rly2chwtnbFyBYGIcQFDcAy/"
        "Htm3ZSNEbnHXEu9vy9JOFX0p3pFBVluhxlbJTQole9NdBDeVblTCuV/"
        "ulzVF7Q5U60L0KJdOB8mNdDZKDcCqBwGGZLytdCc5Gv+iJIeymslrPJfP/A97nqIAcBQEAAA==";

static void test_initdata_v12(void **state)
{
        assert_int_equal(strlen(v12_toml), 261);
        struct kbc_initdata *d = NULL;
        struct cc_error *e = NULL;
        assert_int_equal(kbc_initdata_from_annotation(v12_annotation, &d, &e), 0);
        assert_int_equal(d->toml_len, 261);
        assert_memory_equal(d->toml, v12_toml, 261);
        char h[129];
        hex(d->digest, d->digest_len, h);
        assert_string_equal(h, "ee8a5bcc957baba82b806bdf5070baa38682389e7d008207b45c7ce50ab8999be24"
                               "4c2129710a460959f902e2f9bea75");
        uint8_t f[48];
        kbc_regularize(d->digest, d->digest_len, f, 48);
        char *b = cc_b64_encode(f, 48, false);
        assert_string_equal(b, "7opbzJV7q6grgGvfUHC6o4aCOJ59AIIHtFx85Qq4mZviRMISlxCkYJWfkC4vm+p1");
        free(b);
        kbc_regularize(d->digest, d->digest_len, f, 32);
        b = cc_b64_encode(f, 32, false);
        assert_string_equal(b, "7opbzJV7q6grgGvfUHC6o4aCOJ59AIIHtFx85Qq4mZs=");
        free(b);
        assert_non_null(strstr(kbc_initdata_get(d, "aa.toml"), "url = \"http://10.0.2.2:8080\""));
        assert_null(kbc_initdata_get(d, "policy.rego"));
        kbc_initdata_free(d);
        /* The disk: magic, LE length 181, the stream, 512 bytes; and back. */
        uint8_t *disk = NULL;
        size_t dl = 0;
        assert_int_equal(kbc_initdata_disk_encode(v12_annotation, &disk, &dl, &e), 0);
        assert_int_equal(dl, 512);
        hex(disk, 16, h);
        assert_string_equal(h, "696e697464617461b500000000000000");
        assert_int_equal(kbc_initdata_from_disk(disk, dl, &d, &e), 0);
        assert_memory_equal(d->toml, v12_toml, 261);
        kbc_initdata_free(d);
        /* A length past the disk, a bad magic. */
        disk[8] = 0xff;
        disk[9] = 0x01;
        assert_int_equal(kbc_initdata_from_disk(disk, dl, &d, &e), -EINVAL);
        assert_non_null(strstr(cc_error_message(e), "does not fit"));
        cc_error_free(e);
        e = NULL;
        disk[0] = 'X';
        assert_int_equal(kbc_initdata_from_disk(disk, dl, &d, &e), -EINVAL);
        cc_error_free(e);
        e = NULL;
        free(disk);
}

static void initdata_refused(const char *toml, const char *why)
{
        struct kbc_initdata *d = NULL;
        struct cc_error *e = NULL;
        assert_true(kbc_initdata_parse(toml, strlen(toml), &d, &e) < 0);
        if (!strstr(cc_error_message(e), why))
                fail_msg("'%s' does not say '%s'", cc_error_message(e), why);
        cc_error_free(e);
}

static void test_initdata_refusals(void **state)
{
        initdata_refused("version = \"0.2.0\"\nalgorithm = \"sha384\"\n[data]\n",
                         "version '0.2.0'");
        initdata_refused("version = \"0.1.0\"\nalgorithm = \"sha-384\"\n[data]\n",
                         "algorithm 'sha-384'");
        initdata_refused("version = \"0.1.0\"\nalgorithm = \"sha256\"\n", "no [data] table");
        initdata_refused("version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\nx = 1\n",
                         "is a integer, not a string");
        initdata_refused("algorithm = \"sha256\"\n[data]\n", "no string 'version'");
        initdata_refused("version = \"0.1.0\"\nalgorithm = [\n", "initdata:");
        struct kbc_initdata *d = NULL;
        struct cc_error *e = NULL;
        assert_int_equal(kbc_initdata_from_annotation("not base64!", &d, &e), -EINVAL);
        cc_error_free(e);
        e = NULL;
        assert_int_equal(kbc_initdata_from_annotation("aGVsbG8=", &d, &e), -EINVAL); /* not gzip */
        cc_error_free(e);
        /* sha256 and sha512 digests are over the exact bytes too. */
        const char *t = "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n";
        e = NULL;
        assert_int_equal(kbc_initdata_parse(t, strlen(t), &d, &e), 0);
        assert_int_equal(d->digest_len, 32);
        uint8_t md[64];
        kbc_hash(KBC_SHA256, t, strlen(t), md);
        assert_memory_equal(md, d->digest, 32);
        kbc_initdata_free(d);
}

static void test_resource_path(void **state)
{
        char p[128];
        assert_int_equal(kbc_resource_path("kbs:///default/key/1", p, sizeof(p)), 0);
        assert_string_equal(p, "default/key/1");
        assert_int_equal(
                kbc_resource_path("kbs://example.org:8081/alice/decryption-key/1", p, sizeof(p)),
                0);
        assert_string_equal(p, "alice/decryption-key/1");
        assert_int_equal(kbc_resource_path("a/b.c/_d-1", p, sizeof(p)), 0);
        static const char *const bad[] = {"kbs:///a/b",     "kbs:///a/b/c/d", "kbs:///a/../c",
                                          "kbs:///.a/b/c",  "kbs:///a//c",    "kbs:///a/b/c?x=1",
                                          "http://x/a/b/c", "kbs:///a/b/",    "",
                                          "a/b/c\n"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                if (kbc_resource_path(bad[i], p, sizeof(p)) == 0)
                        fail_msg("'%s' accepted as '%s'", bad[i], p);
}

/* SNP: a report built from the documented layout (V13 offsets) becomes the sev crate's JSON. */
/* A stand-in KBS broker: one resource, counting the requests. */
static const char creds_doc[] = "{\"auths\":{\"10.0.2.2:5000\":{\"auth\":\"dTpw\"}}}";
static int fake_calls;
static int fake_resource(void *data, const char *uri, uint8_t **ret, size_t *ret_len,
                         struct cc_error **err)
{
        fake_calls++;
        if (strcmp(uri, "kbs:///default/credential/reg"))
                return cc_error_set(err, ENOENT, "no resource %s", uri);
        *ret = (uint8_t *)strdup(creds_doc);
        *ret_len = strlen(creds_doc);
        return 0;
}

static struct kbc_initdata *creds_initdata(const char *uri)
{
        char toml[512];
        snprintf(toml, sizeof(toml),
                 "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n\"cdh.toml\" = \"\"\"\n"
                 "[kbc]\nname = \"cc_kbc\"\nurl = \"http://10.0.2.2:8080\"\n[image]\n"
                 "authenticated_registry_credentials_uri = \"%s\"\n\"\"\"\n",
                 uri);
        struct kbc_initdata *d = NULL;
        assert_int_equal(kbc_initdata_parse(toml, strlen(toml), &d, NULL), 0);
        return d;
}

/* CDH's [image] authenticated_registry_credentials_uri: the auth.json from the KBS broker, a
 * guest file, or a clear error. */
static void test_registry_credentials(void **state)
{
        struct img_key_broker kb = {.name = "kbs", .resource = fake_resource};
        char *doc = NULL, *uri = NULL;
        size_t len = 0;
        struct cc_error *err = NULL;
        struct kbc_initdata *d = creds_initdata("kbs:///default/credential/reg");
        assert_int_equal(kbc_registry_credentials(d, NULL, &kb, &doc, &len, &uri, &err), 0);
        assert_int_equal(fake_calls, 1);
        assert_int_equal(len, strlen(creds_doc));
        assert_string_equal(doc, creds_doc);
        assert_string_equal(uri, "kbs:///default/credential/reg");
        free(doc), free(uri);
        /* No KBS to ask: the error names the URI and what is missing. */
        assert_int_equal(kbc_registry_credentials(d, NULL, NULL, &doc, &len, &uri, &err), -ENOENT);
        assert_non_null(strstr(cc_error_message(err), "kbs:///default/credential/reg: no KBS"));
        cc_error_free(err), err = NULL;
        kbc_initdata_free(d);
        /* The KBS has no such resource: its error, wrapped with the URI. */
        d = creds_initdata("kbs:///default/credential/other");
        assert_int_equal(kbc_registry_credentials(d, NULL, &kb, &doc, &len, &uri, &err), -ENOENT);
        assert_non_null(strstr(cc_error_message(err), "registry credentials kbs:///default/"
                                                      "credential/other: no resource"));
        cc_error_free(err), err = NULL;
        kbc_initdata_free(d);
        /* A guest file. */
        char path[] = "/tmp/test-kbc-auth.XXXXXX", furi[64];
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, creds_doc, strlen(creds_doc)), (ssize_t)strlen(creds_doc));
        close(fd);
        snprintf(furi, sizeof(furi), "file://%s", path);
        d = creds_initdata(furi);
        assert_int_equal(kbc_registry_credentials(d, NULL, NULL, &doc, &len, &uri, &err), 0);
        assert_string_equal(doc, creds_doc);
        free(doc), free(uri);
        unlink(path);
        kbc_initdata_free(d);
        /* Neither scheme. */
        d = creds_initdata("https://example.org/auth.json");
        assert_int_equal(kbc_registry_credentials(d, NULL, &kb, &doc, &len, &uri, &err), -EINVAL);
        assert_non_null(strstr(cc_error_message(err), "neither kbs:/// nor file:///"));
        cc_error_free(err), err = NULL;
        kbc_initdata_free(d);
        /* Not named: nothing, no request. */
        const char *plain = "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n";
        assert_int_equal(kbc_initdata_parse(plain, strlen(plain), &d, NULL), 0);
        assert_int_equal(kbc_registry_credentials(d, NULL, &kb, &doc, &len, &uri, &err), 0);
        assert_null(doc);
        assert_null(uri);
        assert_int_equal(fake_calls, 2);
        /* Kata's kernel parameter, when the initdata names none (or there is no initdata); the
         * initdata's URI wins over it. */
        const char *cmdline = "console=ttyS0 agent.image_registry_auth=kbs:///x/y/z quiet "
                              "agent.image_registry_auth=kbs:///default/credential/reg\n";
        assert_int_equal(kbc_registry_credentials(d, cmdline, &kb, &doc, &len, &uri, &err), 0);
        assert_string_equal(uri, "kbs:///default/credential/reg");
        assert_string_equal(doc, creds_doc);
        free(doc), free(uri);
        assert_int_equal(kbc_registry_credentials(NULL, cmdline, &kb, &doc, &len, &uri, &err), 0);
        assert_string_equal(uri, "kbs:///default/credential/reg");
        free(doc), free(uri);
        assert_int_equal(fake_calls, 4);
        kbc_initdata_free(d);
        d = creds_initdata("kbs:///default/credential/other");
        assert_int_equal(kbc_registry_credentials(d, cmdline, &kb, &doc, &len, &uri, &err),
                         -ENOENT);
        assert_non_null(strstr(cc_error_message(err), "credential/other"));
        cc_error_free(err), err = NULL;
        kbc_initdata_free(d);
        /* Neither names any, or the parameter is empty: nothing, no request. */
        assert_int_equal(kbc_registry_credentials(NULL, "quiet agent.image_registry_auth= x", &kb,
                                                  &doc, &len, &uri, &err),
                         0);
        assert_null(doc);
        assert_int_equal(kbc_registry_credentials(NULL, NULL, &kb, &doc, &len, &uri, &err), 0);
        assert_null(uri);
        assert_int_equal(fake_calls, 5);
}

/* The cdh.toml/aa.toml keys this guest does not apply are named, the applied ones are not. */
static void test_initdata_ignored(void **state)
{
        const char *toml = "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n"
                           "\"cdh.toml\" = \"\"\"\nsocket = \"unix:///run/cdh.sock\"\n[kbc]\n"
                           "name = \"cc_kbc\"\nurl = \"http://10.0.2.2:8080\"\n[image]\n"
                           "authenticated_registry_credentials_uri = \"kbs:///a/b/c\"\n"
                           "max_concurrent_layer_downloads_per_image = 1\n\"\"\"\n"
                           "\"aa.toml\" = \"\"\"\n[token_configs.kbs]\nurl = \"http://x\"\n"
                           "[eventlog_config]\nenable_eventlog = false\n\"\"\"\n";
        struct kbc_initdata *d = NULL;
        struct cc_error *err = NULL;
        char *list = NULL;
        assert_int_equal(kbc_initdata_parse(toml, strlen(toml), &d, &err), 0);
        assert_int_equal(kbc_initdata_ignored(d, &list, &err), 0);
        assert_string_equal(list, "cdh.toml:socket, "
                                  "cdh.toml:image.max_concurrent_layer_downloads_per_image, "
                                  "aa.toml:eventlog_config.enable_eventlog");
        free(list);
        kbc_initdata_free(d);
        const char *plain = "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n"
                            "\"cdh.toml\" = \"[kbc]\\nurl = \\\"http://x\\\"\"\n";
        assert_int_equal(kbc_initdata_parse(plain, strlen(plain), &d, &err), 0);
        assert_int_equal(kbc_initdata_ignored(d, &list, &err), 0);
        assert_null(list);
        kbc_initdata_free(d);
        const char *bad = "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n"
                          "\"cdh.toml\" = \"[kbc\"\n";
        assert_int_equal(kbc_initdata_parse(bad, strlen(bad), &d, &err), 0);
        assert_true(kbc_initdata_ignored(d, &list, &err) < 0);
        assert_non_null(strstr(cc_error_message(err), "initdata cdh.toml"));
        cc_error_free(err);
        kbc_initdata_free(d);
}

static void test_snp_evidence(void **state)
{
        uint8_t r[KBC_SNP_REPORT_SIZE] = {0};
        r[0] = 3;                                             /* version */
        r[0x30] = 0;                                          /* vmpl */
        r[0x34] = 1;                                          /* sig algo */
        r[0x38] = 3, r[0x39] = 0, r[0x3E] = 8, r[0x3F] = 115; /* current TCB, Milan layout */
        for (int i = 0; i < 64; i++)
                r[KBC_SNP_REPORT_DATA + i] = (uint8_t)i;
        for (int i = 0; i < 32; i++)
                r[KBC_SNP_HOST_DATA + i] = (uint8_t)(0xA0 + i);
        r[0x188] = 0x19, r[0x189] = 0x01, r[0x18A] = 1; /* Milan */
        r[0x1E8] = 7, r[0x1E9] = 55, r[0x1EA] = 1;      /* build 7, minor 55, major 1 */
        r[0x2A0] = 0x11, r[0x2E8] = 0x22;
        struct json_object *ev = NULL;
        struct cc_error *e = NULL;
        assert_int_equal(kbc_evidence_snp(r, sizeof(r), NULL, 0, &ev, &e), 0);
        struct json_object *rep = json_object_object_get(ev, "attestation_report");
        assert_int_equal(json_object_get_int(json_object_object_get(rep, "version")), 3);
        struct json_object *rd = json_object_object_get(rep, "report_data");
        assert_int_equal(json_object_array_length(rd), 64);
        assert_int_equal(json_object_get_int(json_object_array_get_idx(rd, 63)), 63);
        struct json_object *hd = json_object_object_get(rep, "host_data");
        assert_int_equal(json_object_array_length(hd), 32);
        assert_int_equal(json_object_get_int(json_object_array_get_idx(hd, 0)), 0xA0);
        struct json_object *tcb = json_object_object_get(rep, "current_tcb");
        assert_int_equal(json_object_get_int(json_object_object_get(tcb, "bootloader")), 3);
        assert_int_equal(json_object_get_int(json_object_object_get(tcb, "snp")), 8);
        assert_int_equal(json_object_get_int(json_object_object_get(tcb, "microcode")), 115);
        assert_true(json_object_is_type(json_object_object_get(tcb, "fmc"), json_type_null));
        struct json_object *cur = json_object_object_get(rep, "current");
        assert_int_equal(json_object_get_int(json_object_object_get(cur, "major")), 1);
        assert_int_equal(json_object_get_int(json_object_object_get(cur, "minor")), 55);
        assert_int_equal(json_object_get_int(json_object_object_get(cur, "build")), 7);
        assert_true(json_object_is_type(json_object_object_get(rep, "launch_mit_vector"),
                                        json_type_null));
        struct json_object *sig = json_object_object_get(rep, "signature");
        assert_int_equal(json_object_array_length(json_object_object_get(sig, "r")), 72);
        assert_int_equal(
                json_object_get_int(json_object_array_get_idx(json_object_object_get(sig, "s"), 0)),
                0x22);
        assert_true(json_object_is_type(json_object_object_get(ev, "cert_chain"), json_type_null));
        json_object_put(ev);
        /* Turin's TCB layout; a certificate table with a VCEK entry. */
        r[0x188] = 0x1A, r[0x189] = 0x02;
        uint8_t certs[24 * 2 + 4] = {0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64,
                                     0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd};
        certs[16] = 48, certs[20] = 4;
        memcpy(certs + 48, "\x30\x82\x01\x02", 4);
        assert_int_equal(kbc_evidence_snp(r, sizeof(r), certs, sizeof(certs), &ev, &e), 0);
        rep = json_object_object_get(ev, "attestation_report");
        tcb = json_object_object_get(rep, "current_tcb");
        assert_int_equal(json_object_get_int(json_object_object_get(tcb, "fmc")), 3);
        struct json_object *chain = json_object_object_get(ev, "cert_chain");
        assert_int_equal(json_object_array_length(chain), 1);
        struct json_object *c0 = json_object_array_get_idx(chain, 0);
        assert_string_equal(json_object_get_string(json_object_object_get(c0, "cert_type")),
                            "VCEK");
        assert_int_equal(json_object_array_length(json_object_object_get(c0, "data")), 4);
        json_object_put(ev);
        /* Refusals: size, version, a table entry pointing outside, no terminator. */
        assert_int_equal(kbc_evidence_snp(r, 1000, NULL, 0, &ev, &e), -EBADMSG);
        cc_error_free(e), e = NULL;
        r[0] = 9;
        assert_int_equal(kbc_evidence_snp(r, sizeof(r), NULL, 0, &ev, &e), -EBADMSG);
        cc_error_free(e), e = NULL;
        r[0] = 3;
        certs[16] = 200;
        assert_int_equal(kbc_evidence_snp(r, sizeof(r), certs, sizeof(certs), &ev, &e), -EBADMSG);
        assert_non_null(strstr(cc_error_message(e), "outside the table"));
        cc_error_free(e), e = NULL;
        assert_int_equal(kbc_evidence_snp(r, sizeof(r), certs, 20, &ev, &e), -EBADMSG);
        cc_error_free(e);
}

/* TDX: REPORTDATA and MRCONFIGID at the offsets of quote v4 and v5. */
static void test_tdx_quote(void **state)
{
        uint8_t q[800] = {0};
        q[0] = 4, q[2] = 2, q[4] = 0x81;
        q[568] = 0xAB, q[232] = 0xCD;
        const uint8_t *rd = NULL, *mc = NULL;
        struct cc_error *e = NULL;
        assert_int_equal(kbc_tdx_quote_fields(q, sizeof(q), &rd, &mc, &e), 0);
        assert_int_equal(rd[0], 0xAB);
        assert_int_equal(mc[0], 0xCD);
        memset(q, 0, sizeof(q));
        q[0] = 5, q[2] = 2, q[4] = 0x81, q[48] = 3;
        q[574] = 0xAB, q[238] = 0xCD;
        assert_int_equal(kbc_tdx_quote_fields(q, sizeof(q), &rd, &mc, &e), 0);
        assert_int_equal(rd[0], 0xAB);
        assert_int_equal(mc[0], 0xCD);
        struct json_object *ev = NULL;
        assert_int_equal(kbc_evidence_tdx(q, sizeof(q), &ev, &e), 0);
        assert_true(json_object_is_type(json_object_object_get(ev, "cc_eventlog"), json_type_null));
        json_object_put(ev);
        /* v5 1.5 body needs 702 bytes; other TEE types and key types refused. */
        assert_int_equal(kbc_tdx_quote_fields(q, 700, &rd, &mc, &e), -EBADMSG);
        cc_error_free(e), e = NULL;
        q[4] = 0x00;
        assert_int_equal(kbc_tdx_quote_fields(q, sizeof(q), &rd, &mc, &e), -EBADMSG);
        cc_error_free(e), e = NULL;
        q[4] = 0x81, q[2] = 3;
        assert_int_equal(kbc_tdx_quote_fields(q, sizeof(q), &rd, &mc, &e), -EBADMSG);
        cc_error_free(e), e = NULL;
        q[2] = 2, q[0] = 3;
        assert_int_equal(kbc_tdx_quote_fields(q, sizeof(q), &rd, &mc, &e), -EBADMSG);
        cc_error_free(e);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_b64),
                cmocka_unit_test(test_jcs),
                cmocka_unit_test(test_runtime_data_v4),
                cmocka_unit_test(test_rsa_jwk_v4),
                cmocka_unit_test(test_jwe_v6_v7_v8),
                cmocka_unit_test(test_jwe_warm),
                cmocka_unit_test(test_initdata_v12),
                cmocka_unit_test(test_initdata_refusals),
                cmocka_unit_test(test_resource_path),
                cmocka_unit_test(test_snp_evidence),
                cmocka_unit_test(test_tdx_quote),
                cmocka_unit_test(test_registry_credentials),
                cmocka_unit_test(test_initdata_ignored),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
