/* Fuzz target: cc-kbs's resource policy (TOML) parsed, then asked one decision. */
#include <stdint.h>

#include "kbs/kbs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct kbs_policy *p = NULL;
        struct cc_error *err = NULL;
        if (kbs_policy_parse((const char *)data, size, &p, &err) == 0) {
                char why[32];
                struct kbs_policy_input in = {.tee = "snp",
                                              .measurement = "ab",
                                              .init_data = "cd",
                                              .resource = "default/key/1"};
                (void)kbs_policy_allows(p, &in, why, sizeof(why));
                kbs_policy_free(p);
        }
        cc_error_free(err);
        return 0;
}
