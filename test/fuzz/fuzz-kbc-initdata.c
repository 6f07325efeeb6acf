/*
 * Fuzz target: initdata as the shim and the agent read it from the host (guest-agent/attest/
 * initdata.c): the first byte picks the form (the TOML itself, Kata's disk image, the pod
 * annotation's base64), the rest is the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guest-agent/attest/kbc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1 || size > 300000)
                return 0;
        struct kbc_initdata *d = NULL;
        struct cc_error *e = NULL;
        const uint8_t *p = data + 1;
        size_t n = size - 1;
        switch (data[0] % 3) {
        case 0:
                kbc_initdata_parse((const char *)p, n, &d, &e);
                break;
        case 1:
                kbc_initdata_from_disk(p, n, &d, &e);
                break;
        default: {
                char *s = malloc(n + 1);
                if (!s)
                        return 0;
                memcpy(s, p, n);
                s[n] = '\0';
                kbc_initdata_from_annotation(s, &d, &e);
                uint8_t *disk = NULL;
                size_t dl = 0;
                struct cc_error *e2 = NULL;
                if (kbc_initdata_disk_encode(s, &disk, &dl, &e2) == 0)
                        free(disk);
                cc_error_free(e2);
                free(s);
        }
        }
        if (d)
                (void)kbc_initdata_get(d, "aa.toml");
        kbc_initdata_free(d);
        cc_error_free(e);
        return 0;
}
