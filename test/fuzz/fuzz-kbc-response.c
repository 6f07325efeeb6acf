/*
 * Fuzz target: the KBS's answers as the guest's client reads them (guest-agent/attest/
 * client.c): the challenge, the token and the error body, and the resource URIs it maps to
 * request paths.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guest-agent/attest/kbc-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > 1 << 20)
                return 0;
        char *s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';
        char *nonce = NULL;
        enum kbc_hash h;
        if (kbc__parse_challenge(s, size, &nonce, &h) == 0)
                free(nonce);
        int64_t exp;
        (void)kbc__parse_token(s, size, &exp);
        char type[96], detail[512];
        kbc__error_body(s, size, type, detail);
        char path[256];
        (void)kbc_resource_path(s, path, sizeof(path));
        free(s);
        return 0;
}
