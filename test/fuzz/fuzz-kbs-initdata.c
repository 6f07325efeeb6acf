/* Fuzz target: the init-data TOML of an Attestation: parse, digest, claims. */
#include <stdint.h>

#include "kbs/kbs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct kbs_initdata d = {};
        struct cc_error *err = NULL;
        if (kbs_initdata_parse("toml", (const char *)data, size, &d, &err) == 0)
                kbs_initdata_done(&d);
        cc_error_free(err);
        return 0;
}
