/* Unit tests of libccimage's ocicrypt decryption with CoCo's key-provider annotation packet and
 * the offline_fs key broker: a layer encrypted here with OpenSSL (AES-256-CTR + HMAC-SHA256,
 * private options wrapped with AES-256-GCM under a KEK named by kid) must decrypt and verify;
 * a flipped ciphertext byte, a wrong KEK and a missing HMAC must fail. */
/* cmocka.h needs the standard headers before it. */
/* clang-format off */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
/* clang-format on */

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "cc/error.h"

#include "guest-agent/image/image-internal.h"

#define LAYER_SIZE 100000

static uint8_t plain[LAYER_SIZE], cipher[LAYER_SIZE];
static char keys_path[] = "/tmp/img-keys.XXXXXX";

static char *b64(const uint8_t *p, size_t n)
{
        char *s = img__b64_encode(p, n);
        assert_non_null(s);
        return s;
}

/* Builds the descriptor annotations; `kek_in_file` is the KEK the broker will hold. */
static void make_layer(struct img_descriptor *d, const uint8_t kek[32], const uint8_t file_kek[32],
                       bool with_hmac)
{
        uint8_t key[32], nonce[16], iv[12], mac[32], tag[16];
        unsigned int mac_len = 0;
        int n = 0;
        RAND_bytes(plain, sizeof(plain));
        RAND_bytes(key, sizeof(key));
        RAND_bytes(nonce, sizeof(nonce));
        RAND_bytes(iv, sizeof(iv));
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        EVP_EncryptInit_ex(c, EVP_aes_256_ctr(), NULL, key, nonce);
        EVP_EncryptUpdate(c, cipher, &n, plain, sizeof(plain));
        EVP_CIPHER_CTX_free(c);
        HMAC(EVP_sha256(), key, 32, cipher, sizeof(cipher), mac, &mac_len);

        char digest[72], *bk = b64(key, 32), *bn = b64(nonce, 16), *bm = b64(mac, 32);
        img__digest_buf(plain, sizeof(plain), digest);
        char priv[512];
        int plen = snprintf(priv, sizeof(priv),
                            "{\"symkey\":\"%s\",\"digest\":\"%s\",\"cipheroptions\":{\"nonce\":"
                            "\"%s\"}}",
                            bk, digest, bn);
        uint8_t wrapped[512 + 16];
        c = EVP_CIPHER_CTX_new();
        EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, kek, iv);
        EVP_EncryptUpdate(c, wrapped, &n, (uint8_t *)priv, plen);
        int m = 0;
        EVP_EncryptFinal_ex(c, wrapped + n, &m);
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag);
        EVP_CIPHER_CTX_free(c);
        memcpy(wrapped + plen, tag, 16);
        char *bw = b64(wrapped, (size_t)plen + 16), *bi = b64(iv, 12);
        char packet[2048];
        snprintf(packet, sizeof(packet),
                 "{\"kid\":\"kbs:///default/key/1\",\"wrapped_data\":\"%s\",\"iv\":\"%s\","
                 "\"wrap_type\":\"A256GCM\"}",
                 bw, bi);
        char pub[256];
        snprintf(pub, sizeof(pub),
                 "{\"cipher\":\"AES_256_CTR_HMAC_SHA256\",\"hmac\":\"%s\",\"cipheroptions\":{}}",
                 with_hmac ? bm : "");
        d->enc_provider = b64((uint8_t *)packet, strlen(packet));
        d->enc_pubopts = b64((uint8_t *)pub, strlen(pub));
        d->digest =
                strdup("sha256:1111111111111111111111111111111111111111111111111111111111111111");
        d->encrypted = true;

        char *bf = b64(file_kek, 32);
        strcpy(keys_path, "/tmp/img-keys.XXXXXX");
        int fd = mkstemp(keys_path);
        assert_true(fd >= 0);
        dprintf(fd, "{\"default/key/1\":\"%s\",\"other/key/2\":\"AAAA\"}", bf);
        close(fd);
        free(bk), free(bn), free(bm), free(bw), free(bi), free(bf);
}

static void descriptor_free(struct img_descriptor *d)
{
        free(d->enc_provider);
        free(d->enc_pubopts);
        free(d->digest);
        unlink(keys_path);
}

static void test_packet_roundtrip(void **state)
{
        uint8_t kek[32];
        RAND_bytes(kek, sizeof(kek));
        struct img_descriptor d = {0};
        make_layer(&d, kek, kek, true);
        _cleanup_error_ struct cc_error *err = NULL;
        struct img_key_broker *kb = NULL;
        assert_int_equal(img_key_broker_offline_fs(NULL, keys_path, &kb, &err), 0);
        struct img_decryptor *dec = NULL;
        assert_int_equal(img__decryptor_new(&d, kb, &dec, &err), 0);
        static uint8_t buf[LAYER_SIZE];
        memcpy(buf, cipher, sizeof(buf));
        /* Uneven chunks: the CTR stream must carry across calls. */
        for (size_t off = 0; off < sizeof(buf);) {
                size_t n = CC_MIN((size_t)7777, sizeof(buf) - off);
                img__decrypt(dec, buf + off, n);
                off += n;
        }
        assert_int_equal(img__decrypt_final(dec, &err), 0);
        assert_memory_equal(buf, plain, sizeof(plain));
        img__decryptor_free(dec);

        /* One flipped ciphertext byte: the HMAC catches it at the end. */
        assert_int_equal(img__decryptor_new(&d, kb, &dec, &err), 0);
        memcpy(buf, cipher, sizeof(buf));
        buf[12345] ^= 1;
        img__decrypt(dec, buf, sizeof(buf));
        assert_int_equal(img__decrypt_final(dec, &err), -EBADMSG);
        assert_non_null(strstr(cc_error_message(err), "HMAC mismatch"));
        img__decryptor_free(dec);
        img_key_broker_free(kb);
        descriptor_free(&d);
}

static void test_wrong_kek(void **state)
{
        uint8_t kek[32], other[32];
        RAND_bytes(kek, sizeof(kek));
        RAND_bytes(other, sizeof(other));
        struct img_descriptor d = {0};
        make_layer(&d, kek, other, true);
        _cleanup_error_ struct cc_error *err = NULL;
        struct img_key_broker *kb = NULL;
        assert_int_equal(img_key_broker_offline_fs(NULL, keys_path, &kb, &err), 0);
        struct img_decryptor *dec = NULL;
        assert_int_equal(img__decryptor_new(&d, kb, &dec, &err), -ENOKEY);
        assert_non_null(strstr(cc_error_message(err), "tried: kbs:///default/key/1"));
        assert_non_null(strstr(cc_error_message(err), d.digest));
        img_key_broker_free(kb);
        descriptor_free(&d);
}

static void test_no_hmac(void **state)
{
        uint8_t kek[32];
        RAND_bytes(kek, sizeof(kek));
        struct img_descriptor d = {0};
        make_layer(&d, kek, kek, false);
        _cleanup_error_ struct cc_error *err = NULL;
        struct img_key_broker *kb = NULL;
        assert_int_equal(img_key_broker_offline_fs(NULL, keys_path, &kb, &err), 0);
        struct img_decryptor *dec = NULL;
        assert_int_equal(img__decryptor_new(&d, kb, &dec, &err), -EINVAL);
        assert_non_null(strstr(cc_error_message(err), "missing HMAC"));
        assert_int_equal(img__decryptor_new(&d, NULL, &dec, &err), -ENOKEY);
        img_key_broker_free(kb);
        descriptor_free(&d);
}

/*
 * The reference's vectors V9 and V10 (../shared/reference/attestation-kbs.md 8.3): a layer as
 * CoCo's key provider encrypts it, with the KEK the KBS would hold, and the same options
 * wrapped in the provider's "sample" mode (hard-coded key, zero IV): both must decrypt to the
 * plain blob and pass the HMAC and digest checks.
 */
static void test_coco_vectors(void **state)
{
        static const char pubopts[] =
                "eyJjaXBoZXIiOiJBRVNfMjU2X0NUUl9ITUFDX1NIQTI1NiIsImhtYWMiOiJhTHA4RDdCYWFtdHYxYktiYk"
                "ppQ2"
                "tkVFgzd29saWVZWnpxWWlxVDg5RTZNPSIsImNpcGhlcm9wdGlvbnMiOnt9fQ==";
        static const char v10[] =
                "{\"kid\":\"kbs:///default/image-kek/"
                "test1\",\"wrapped_data\":\"CvBomImcmycD5CLkWADZuXwe"
                "80RhYKIIQCazI5+"
                "K714zKRyoOBW25pBTccCzDfMYSnWM5WGU63f6BNnjBafPn3d7OZTytcwwfbDDbLm9FHTMfG9X"
                "xZ4y59Ag/7b7i4Q/I7fRBHGwDY2WEo62R9hsTekajtpqXEde/"
                "lKu2DmfDdSJF0fM5fm5TS17g4XpmxZ913avWmow"
                "PTpVPzQpXriTY9wn+Viilc3g8ip9ZXQShmkZWh8CthomFRQv3NQMDjCYddgAa4TcyJ1LvqUBjsilmko="
                "\","
                "\"iv\":\"AQIDBAUGBwgJCgsM\",\"wrap_type\":\"A256GCM\"}";
        static const char sample[] =
                "{\"kid\":\"kbs:///default/test-key/1\",\"wrapped_data\":\"/"
                "3LyhluQ5hn61UcUSjqNaa20EVR/"
                "/Yp76/hkEjqiDcvm5L6/"
                "jwMjVY7+yqM8l8taef6B4gIpmQEY35buwGNUxdH5wrykBkLv91dHqjEOY5BVO3Htg1"
                "NTj4JmLt9cTSavYBdDqRnqgcXTUkkUvJrAwOz2gebJCJL9RIK9gy4kbFkcbA0GsXdMEL+"
                "9da9l2MzjzIkn4m7z"
                "VeIzpTUTrnKH23TfZeVeFnKrovcTuAFCr+vFLIPtx0bjaxumbGNTv9/"
                "zlkYdQ58NrJLzRJxZn6hsFts=\","
                "\"iv\":\"AAAAAAAAAAAAAAAA\",\"wrap_type\":\"A256GCM\"}";
        static const uint8_t ct[18] = {0xdc, 0x3a, 0x6b, 0xc9, 0x07, 0x67, 0x98, 0x9a, 0x74,
                                       0x64, 0x89, 0x27, 0xa6, 0xc8, 0x96, 0x6e, 0xdd, 0x98};
        const char *packets[] = {v10, sample};
        strcpy(keys_path, "/tmp/img-keys.XXXXXX");
        int fd = mkstemp(keys_path);
        assert_true(fd >= 0);
        dprintf(fd, "{\"default/image-kek/test1\":\"zy/bo5KkaGs6hhyX7qDW+EXUhd4CWukXarBEHoKi7TM=\","
                    "\"default/test-key/1\":\"2Zt3BbC6ehaClbOjNnJwsN2bNxv1FMqLm6fwozcR2uo=\"}");
        close(fd);
        _cleanup_error_ struct cc_error *err = NULL;
        struct img_key_broker *kb = NULL;
        assert_int_equal(img_key_broker_offline_fs(NULL, keys_path, &kb, &err), 0);
        for (size_t i = 0; i < 2; i++) {
                struct img_descriptor d = {0};
                d.enc_provider = b64((const uint8_t *)packets[i], strlen(packets[i]));
                d.enc_pubopts = strdup(pubopts);
                d.digest = strdup(
                        "sha256:444b70bc2c83e8f98d23dba6d0b919bd1bc83d31d9ea3e566dfe94619456ef47");
                d.encrypted = true;
                struct img_decryptor *dec = NULL;
                if (img__decryptor_new(&d, kb, &dec, &err) < 0)
                        fail_msg("packet %zu: %s", i, cc_error_message(err));
                uint8_t buf[18];
                memcpy(buf, ct, sizeof(buf));
                img__decrypt(dec, buf, sizeof(buf));
                assert_int_equal(img__decrypt_final(dec, &err), 0);
                assert_memory_equal(buf, "hello, coco layer\n", 18);
                img__decryptor_free(dec);
                free(d.enc_provider);
                free(d.enc_pubopts);
                free(d.digest);
        }
        img_key_broker_free(kb);
        unlink(keys_path);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_packet_roundtrip),
                cmocka_unit_test(test_wrong_kek),
                cmocka_unit_test(test_no_hmac),
                cmocka_unit_test(test_coco_vectors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
