/*
 * The verification code of a signature check, run once ahead of the check on inputs that
 * cannot verify. In the guest every pull runs in a new helper process, and under QEMU TCG a
 * process pays for translating each code path the first time it runs it: the first RSA-3072
 * or P-256 verification, the first decompression of an OpenPGP message, the first payload
 * parse cost tens of milliseconds there, not microseconds (bench/README.md). A helper started
 * ahead of its pull runs this while it waits (img_sig_prepare()), so that the check on the
 * pull's path does only the work that depends on the image.
 *
 * The inputs are made here, from the trusted keys only: a signed message naming the key as its
 * signer, with a hash that matches (so that the public-key operation runs) and a signature
 * value that cannot be valid. Nothing from a registry is read.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "cc/cleanup.h"
#include "cc/error.h"
#include "cc/log.h"

#include "guest-agent/image/sig-internal.h"

enum { TAG_SIG = 2, TAG_ONEPASS = 4, TAG_COMPRESSED = 8, TAG_LITERAL = 11 };
enum { PK_RSA = 1, PK_RSA_S = 3, PK_ECDSA = 19, PK_EDDSA = 22, HASH_SHA256 = 8 };

#define WARM_DIGEST "sha256:0000000000000000000000000000000000000000000000000000000000000000"
#define WARM_REF    "warm.invalid/ns/image:1"

/* A new-format packet header (RFC 4880 4.2.2) for `len` body bytes at out; its size. */
static size_t pkt_hdr(uint8_t *out, int tag, size_t len)
{
        out[0] = (uint8_t)(0xc0 | tag);
        if (len < 192) {
                out[1] = (uint8_t)len;
                return 2;
        }
        if (len < 8384) {
                out[1] = (uint8_t)(((len - 192) >> 8) + 192);
                out[2] = (uint8_t)(len - 192);
                return 3;
        }
        out[1] = 0xff;
        for (int i = 0; i < 4; i++)
                out[2 + i] = (uint8_t)(len >> (24 - 8 * i));
        return 6;
}

/* An MPI of `n` bytes whose value is `v` repeated (a leading 0x01 keeps an RSA value below any
 * modulus of that size, so that the modular exponentiation runs). */
static size_t mpi(uint8_t *out, size_t n, uint8_t lead)
{
        size_t bits = (n - 1) * 8 + 1;
        out[0] = (uint8_t)(bits >> 8);
        out[1] = (uint8_t)bits;
        memset(out + 2, 0x5a, n);
        out[2] = lead;
        return n + 2;
}

/* The one-pass, literal and signature packets of a message "signed" by key `fpr` (hex) with
 * public-key algorithm `algo`, into buf; its length, 0 when the key has no form here. */
static size_t message(uint8_t *buf, const char *fpr, int algo, size_t rsa_bytes,
                      const uint8_t *payload, size_t plen)
{
        size_t n = 0;
        /* one-pass: version 3, class 0x00, hash, algorithm, key ID (unused here), last */
        n += pkt_hdr(buf + n, TAG_ONEPASS, 13);
        uint8_t op[13] = {3, 0x00, HASH_SHA256, (uint8_t)algo, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        memcpy(buf + n, op, sizeof(op));
        n += sizeof(op);
        /* literal: binary, no file name, time 0 */
        n += pkt_hdr(buf + n, TAG_LITERAL, 6 + plen);
        const uint8_t *literal = buf + n + 6;
        memcpy(buf + n, "b\0\0\0\0\0", 6);
        memcpy(buf + n + 6, payload, plen);
        n += 6 + plen;
        /* signature v4: hashed creation time and issuer fingerprint, no unhashed part */
        uint8_t sig[1024];
        uint32_t now = (uint32_t)time(NULL);
        size_t s = 0;
        uint8_t head[] = {4,
                          0x00,
                          (uint8_t)algo,
                          HASH_SHA256,
                          0,
                          29,
                          5,
                          2,
                          (uint8_t)(now >> 24),
                          (uint8_t)(now >> 16),
                          (uint8_t)(now >> 8),
                          (uint8_t)now,
                          22,
                          33,
                          4};
        memcpy(sig, head, sizeof(head));
        s = sizeof(head);
        for (int i = 0; i < 20; i++) {
                unsigned x = 0;
                if (sscanf(fpr + 2 * i, "%2x", &x) != 1)
                        return 0;
                sig[s++] = (uint8_t)x;
        }
        size_t hashed_len = s;
        uint8_t trailer[6] = {4,
                              0xff,
                              (uint8_t)(hashed_len >> 24),
                              (uint8_t)(hashed_len >> 16),
                              (uint8_t)(hashed_len >> 8),
                              (uint8_t)hashed_len};
        uint8_t md[SHA256_DIGEST_LENGTH];
        SHA256_CTX c;
        SHA256_Init(&c);
        SHA256_Update(&c, literal, plen);
        SHA256_Update(&c, sig, hashed_len);
        SHA256_Update(&c, trailer, sizeof(trailer));
        SHA256_Final(md, &c);
        sig[s++] = 0; /* no unhashed subpackets */
        sig[s++] = 0;
        sig[s++] = md[0]; /* the hash's left 16 bits match: the key operation runs */
        sig[s++] = md[1];
        if ((algo == PK_RSA || algo == PK_RSA_S) && rsa_bytes > 0 && rsa_bytes <= 512)
                s += mpi(sig + s, rsa_bytes, 0x01);
        else if (algo == PK_ECDSA || algo == PK_EDDSA)
                for (int i = 0; i < 2; i++)
                        s += mpi(sig + s, 32, 0x01);
        else
                return 0;
        n += pkt_hdr(buf + n, TAG_SIG, s);
        memcpy(buf + n, sig, s);
        return n + s;
}

static const char payload_simple[] =
        "{\"critical\":{\"identity\":{\"docker-reference\":\"" WARM_REF "\"},"
        "\"image\":{\"docker-manifest-digest\":\"" WARM_DIGEST "\"},"
        "\"type\":\"" IMG_PAYLOAD_SIMPLE "\"},\"optional\":{\"creator\":\"warm\"}}";

size_t img__pgp_keyring_warm(const struct img_pgp_keyring *kr)
{
        size_t n_ran = 0;
        for (size_t i = 0; i < kr->n; i++) {
                size_t rsa_bytes = 0;
                int algo = img__pgp_key_algo(kr, i, &rsa_bytes);
                uint8_t plain[2048], packed[2304];
                size_t n = message(plain, img__pgp_key_fpr(kr, i), algo, rsa_bytes,
                                   (const uint8_t *)payload_simple, sizeof(payload_simple) - 1);
                if (n == 0)
                        continue;
                /* In a compressed packet (ZLIB), as gpg writes them. */
                uLongf zl = sizeof(packed) - 8;
                if (compress2(packed + 7, &zl, plain, n, Z_BEST_SPEED) != Z_OK)
                        continue;
                packed[6] = 2;
                uint8_t hdr[6];
                size_t hl = pkt_hdr(hdr, TAG_COMPRESSED, zl + 1);
                memmove(packed + 6 - hl, hdr, hl);
                uint8_t *msg = packed + 6 - hl;
                _cleanup_free_ uint8_t *out = NULL;
                _cleanup_free_ char *why = NULL;
                size_t ol = 0;
                (void)img__simple_sig_check(kr, msg, hl + zl + 1, (int64_t)time(NULL), &out, &ol,
                                            &why);
                /* The expected end: the public-key operation ran and refused the value. */
                if (why && strstr(why, "does not verify"))
                        n_ran++;
                else
                        cc_log_debug("signature code ahead, key %s: %s", img__pgp_key_fpr(kr, i),
                                     why ? why : "verified");
        }
        return n_ran;
}

void img__sigstore_pem_warm(const uint8_t *pem, size_t pem_len)
{
        static const char payload[] =
                "{\"critical\":{\"identity\":{\"docker-reference\":\"" WARM_REF "\"},"
                "\"image\":{\"docker-manifest-digest\":\"" WARM_DIGEST "\"},"
                "\"type\":\"" IMG_PAYLOAD_COSIGN "\"},\"optional\":null}";
        _cleanup_error_ struct cc_error *err = NULL;
        /* DER ECDSA-Sig-Value r = 1, s = 1: well formed, never valid; the verification runs. */
        (void)img__sigstore_verify(pem, pem_len, (const uint8_t *)payload, sizeof(payload) - 1,
                                   "MAYCAQECAQE=", &err);
        struct img_sig_payload pl;
        _cleanup_error_ struct cc_error *perr = NULL;
        if (img__sig_payload_parse((const uint8_t *)payload, sizeof(payload) - 1,
                                   IMG_PAYLOAD_COSIGN, &pl, &perr) == 0)
                img__sig_payload_done(&pl);
}

void img__sig_code_warm(void)
{
        struct img_sig_payload pl;
        _cleanup_error_ struct cc_error *err = NULL;
        if (img__sig_payload_parse((const uint8_t *)payload_simple, sizeof(payload_simple) - 1,
                                   IMG_PAYLOAD_SIMPLE, &pl, &err) == 0)
                img__sig_payload_done(&pl);
        struct img_dref d;
        if (img__dref_parse(WARM_REF, true, &d, NULL) == 0) {
                struct img_sig_identity id = {.type = IMG_ID_REPO_DIGEST_OR_EXACT};
                (void)img__identity_matches(&id, &d, WARM_REF);
                img__dref_done(&d);
        }
        cc_strv_free(img__policy_scopes(WARM_REF));
}
