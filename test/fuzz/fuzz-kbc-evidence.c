/*
 * Fuzz target: the parsers of TEE reports the guest turns into evidence
 * (guest-agent/attest/evidence.c): an SNP ATTESTATION_REPORT (the first 1184 bytes) with the
 * host-supplied certificate table (the rest), and a TD quote (the whole input).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guest-agent/attest/kbc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > 1 << 20)
                return 0;
        struct json_object *o = NULL;
        struct cc_error *e = NULL;
        if (size >= KBC_SNP_REPORT_SIZE) {
                if (kbc_evidence_snp(data, KBC_SNP_REPORT_SIZE, data + KBC_SNP_REPORT_SIZE,
                                     size - KBC_SNP_REPORT_SIZE, &o, &e) == 0)
                        (void)json_object_to_json_string(o);
                json_object_put(o);
                o = NULL;
                cc_error_free(e);
                e = NULL;
        }
        if (kbc_evidence_tdx(data, size, &o, &e) == 0)
                (void)json_object_to_json_string(o);
        json_object_put(o);
        cc_error_free(e);
        return 0;
}
