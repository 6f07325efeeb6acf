/*
 * Fuzz target: an SEV-SNP report in the sev crate's serde JSON form, rebuilt into the 1184
 * report bytes (every field's type and range is checked on the way).
 */
#include <stdint.h>

#include "cc/json.h"

#include "kbs/kbs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct json_object *o = NULL;
        struct cc_error *err = NULL;
        uint8_t report[KBS_SNP_REPORT_SIZE];
        if (cc_json_parse("report", (const char *)data, size, 8, &o, &err) == 0) {
                (void)kbs_snp_report_from_json(o, report, &err);
                json_object_put(o);
        }
        cc_error_free(err);
        return 0;
}
