/*
 * Fuzz target: a TEE public key (JWK) as a client sends it: parse, re-serialize, convert to an
 * OpenSSL key and, when that works, encrypt a resource to it (the JWE path of a GET).
 */
#include <stdint.h>
#include <stdlib.h>

#include "cc/json.h"

#include "kbs/kbs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct json_object *o = NULL;
        struct cc_error *err = NULL;
        if (cc_json_parse("jwk", (const char *)data, size, 8, &o, &err) == 0) {
                struct kbs_jwk k = {};
                if (kbs_jwk_parse(o, &k, &err) == 0) {
                        json_object_put(kbs_jwk_to_json(&k));
                        char *jwe = NULL;
                        if (kbs_jwe_encrypt(&k, (const uint8_t *)"x", 1, &jwe, &err) == 0)
                                free(jwe);
                        kbs_jwk_done(&k);
                }
                json_object_put(o);
        }
        cc_error_free(err);
        return 0;
}
