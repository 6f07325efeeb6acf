/*
 * Fuzz target: the registry-facing parsers of libccimage. The input is parsed as a manifest or
 * index (then a platform is selected), as an image config, and as an image reference.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/error.h"

#include "guest-agent/image/image-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct cc_error *err = NULL;
        struct img_manifest *m = NULL;
        if (img__manifest_parse(NULL, data, size, &m, &err) == 0) {
                const struct img_descriptor *d;
                if (m->is_index) {
                        img__index_select(m, "linux", "amd64", NULL, &d, &err);
                        img__index_select(m, "linux", "arm", "v7", &d, &err);
                }
                img__manifest_free(m);
        }
        struct img_image_config cfg;
        char **ids = NULL;
        if (img__config_parse(data, size, &cfg, &ids, &err) == 0) {
                cc_strv_free(ids);
                img__config_done(&cfg);
        }
        if (size < 2048) {
                char *s = strndup((const char *)data, size);
                struct img_ref r;
                if (s && img__ref_parse(s, &r, &err) == 0) {
                        free(img__ref_string(&r));
                        img__ref_done(&r);
                }
                free(s);
        }
        cc_error_free(err);
        return 0;
}
