/*
 * Fuzz target for the bzImage version reader (hypervisor/kernel-info.c): the input is the
 * start of a kernel file. Errors are expected; reads past the input, crashes and leaks are not.
 */
#include <stdint.h>
#include <string.h>

#include "cc/error.h"

#include "hypervisor/hv-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char out[64];
        struct cc_error *err = NULL;
        if (hv__kernel_version_parse(data, size, out, sizeof(out), &err) == 0 &&
            strlen(out) >= sizeof(out))
                __builtin_trap();
        cc_error_free(err);
        return 0;
}
