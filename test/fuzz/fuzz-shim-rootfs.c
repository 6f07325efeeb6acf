/*
 * Fuzz target: rootfs mount classification (shim_rootfs_classify), i.e. the guest-pull volume
 * option io.katacontainers.volume=<base64 JSON> a snapshotter hands the shim, and the runtime
 * options decoding of Create (runtimeoptions.v1.Options). Input: mount options, one per line;
 * the first line is also decoded as a protobuf Options message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cc/error.h"
#include "runtimeoptions/v1/config.pb-c.h"
#include "shim/shim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        Runtimeoptions__V1__Options *o = runtimeoptions__v1__options__unpack(NULL, size, data);
        if (o)
                runtimeoptions__v1__options__free_unpacked(o, NULL);
        char *text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        char *opts[64];
        size_t n = 0;
        for (char *save = NULL, *t = strtok_r(text, "\n", &save); t && n < 64;
             t = strtok_r(NULL, "\n", &save))
                opts[n++] = t;
        struct shim_mount m = {"fuse.nydus-overlayfs", "overlay", opts, n};
        enum shim_rootfs_kind kind;
        char *image = NULL;
        struct cc_error *err = NULL;
        if (shim_rootfs_classify(&m, 1, &kind, &image, &err) == 0)
                free(image);
        cc_error_free(err);
        free(text);
        return 0;
}
