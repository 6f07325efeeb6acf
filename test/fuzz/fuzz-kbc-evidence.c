/*
 * Fuzz target: the parsers of TEE reports the guest turns into evidence
 * (guest-agent/attest/evidence.c): an SNP ATTESTATION_REPORT (the first 1184 bytes) with the
 * host-supplied certificate table (the rest), a TD quote (the whole input), and the host's QGS
 * answer (guest-agent/attest/qgs.c, the whole input as a GET_QUOTE_RESP message) with the quote
 * it carries.
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
        o = NULL;
        cc_error_free(e);
        e = NULL;
        const uint8_t *q;
        size_t ql;
        if (kbc_qgs_decode_response(data, size, &q, &ql, &e) == 0 &&
            kbc_evidence_tdx(q, ql, &o, NULL) == 0)
                (void)json_object_to_json_string(o);
        json_object_put(o);
        cc_error_free(e);
        return 0;
}
