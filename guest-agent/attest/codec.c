/* The hashes the KBS protocol and initdata name (base64 and RFC 8785 JSON: lib/codec.c). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest-agent/attest/kbc.h"

/* ---- hashes ----------------------------------------------------------------------------- */

int kbc_hash_from_name(const char *name, enum kbc_hash *ret)
{
        if (!name)
                return -EINVAL;
        if (!strcasecmp(name, "sha256"))
                *ret = KBC_SHA256;
        else if (!strcasecmp(name, "sha384"))
                *ret = KBC_SHA384;
        else if (!strcasecmp(name, "sha512"))
                *ret = KBC_SHA512;
        else
                return -EINVAL;
        return 0;
}

const char *kbc_hash_name(enum kbc_hash h)
{
        return h == KBC_SHA256 ? "sha256" : h == KBC_SHA384 ? "sha384" : "sha512";
}

size_t kbc_hash_len(enum kbc_hash h)
{
        return h == KBC_SHA256 ? 32 : h == KBC_SHA384 ? 48 : 64;
}

/* libcrypto's low-level SHA_Init/Update/Final, not EVP (nor the one-shot SHA256(), which
 * OpenSSL 3 implements with EVP): the static agent and shim link this file for initdata, and
 * EVP would pull OpenSSL's provider machinery into them (4.7 MiB; guest-agent/selfcheck.c). */
int kbc_hash(enum kbc_hash h, const void *data, size_t len, uint8_t out[64])
{
        if (h == KBC_SHA256) {
                SHA256_CTX c;
                SHA256_Init(&c);
                SHA256_Update(&c, data, len);
                SHA256_Final(out, &c);
        } else {
                SHA512_CTX c;
                if (h == KBC_SHA384)
                        SHA384_Init(&c);
                else
                        SHA512_Init(&c);
                SHA512_Update(&c, data, len);
                if (h == KBC_SHA384)
                        SHA384_Final(out, &c);
                else
                        SHA512_Final(out, &c);
        }
        return 0;
}

void kbc_regularize(const uint8_t *in, size_t in_len, uint8_t *out, size_t n)
{
        size_t k = in_len < n ? in_len : n;
        memcpy(out, in, k);
        memset(out + k, 0, n - k);
}
