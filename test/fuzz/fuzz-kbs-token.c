/*
 * Fuzz target: Bearer tokens as clients present them, checked both as attestation tokens
 * (ES256, our key) and as admin tokens (EdDSA): splitting, base64url, header JSON, signature.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kbs/kbs.h"

static struct kbs_token_signer signer;
static EVP_PKEY *admin;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct cc_error *err = NULL;
        struct json_object *claims = NULL;
        if (!signer.key) {
                kbs_token_signer_init(&signer, NULL, NULL);
                admin = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        }
        char *t = strndup((const char *)data, size);
        if (!t)
                return 0;
        if (kbs_token_verify(&signer, t, 1000, &claims, &err) == 0)
                json_object_put(claims);
        (void)kbs_admin_token_verify(admin, t, 1000, &err);
        free(t);
        cc_error_free(err);
        return 0;
}
