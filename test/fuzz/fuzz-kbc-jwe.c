/*
 * Fuzz target: the guest's JWE decryption of KBS resource answers (guest-agent/attest/jwe.c)
 * with the reference's V1 TEE key (EC P-256). The seeds are the reference's V6 (which
 * decrypts with this key) and V7/V8 (RSA: refused for an EC key), so mutations start from
 * inputs that reach the key unwrap and the GCM check.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guest-agent/attest/kbc.h"

static const char v1_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                             "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSnraOS8HjHXehgPw\n"
                             "906l3EOwtAI47vSfcIOra2rCI4ChRANCAATCrkw0VchAZYxFO3CxcQAlTD5EJCqc\n"
                             "VVlPx8UTPoJ21Nc5RYkopd1YJbY38D5UNF3Qim9orvX9VfGZ/SodWiB1\n"
                             "-----END PRIVATE KEY-----\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct kbc_tee_key *k;
        if (!k && kbc_tee_key_from_pem(v1_pem, strlen(v1_pem), &k) < 0)
                abort();
        if (size > 65536)
                return 0;
        char *s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';
        uint8_t *pt = NULL;
        size_t n = 0;
        struct cc_error *e = NULL;
        if (kbc_jwe_decrypt(k, s, size, &pt, &n, &e) == 0)
                free(pt);
        cc_error_free(e);
        free(s);
        return 0;
}
