/*
 * Fuzz target: cc-kbs's /auth and /attest body parsers, then (when an Attestation parses) the
 * runtime-data digest over what was accepted, as the server computes it.
 */
#include <stdint.h>
#include <stdlib.h>

#include "kbs/kbs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct kbs_auth_request req;
        char *why = NULL;
        (void)kbs_parse_auth((const char *)data, size, &req, &why);
        free(why);
        struct kbs_attest_request a = {};
        struct cc_error *err = NULL;
        if (kbs_parse_attest((const char *)data, size, &a, &err) == 0) {
                uint8_t d[48];
                (void)kbs_runtime_data_digest(&a.key, a.nonce, a.additional_evidence, d);
                kbs_attest_request_done(&a);
        }
        cc_error_free(err);
        return 0;
}
