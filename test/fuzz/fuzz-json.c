/*
 * Fuzz target for the JSON helpers: bounded parse of arbitrary bytes, then the typed getters
 * on the members an OCI spec or image manifest would have, by name and by JSON Pointer.
 */
#include <stdint.h>
#include <string.h>

#include "cc/json.h"

static const char *const keys[] = {
        "ociVersion",     "/process/args", "/process/env",     "/process/user/uid",
        "/root/readonly", "annotations",   "/layers/0/digest", "/layers/1/size",
        "mediaType",      "schemaVersion", "/a~1b/~0",         "/0",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct cc_error *err = NULL;
        struct json_object *o = NULL;
        if (cc_json_parse("fuzz.json", (const char *)data, size, 0, &o, &err) == 0) {
                for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                        const char *s;
                        int64_t n;
                        bool b;
                        struct json_object *x;
                        char **strv = NULL;
                        (void)cc_json_get(o, keys[i], &x, &err);
                        (void)cc_json_get_string(o, keys[i], &s, &err);
                        (void)cc_json_get_int64(o, keys[i], &n, &err);
                        (void)cc_json_get_bool(o, keys[i], &b, &err);
                        (void)cc_json_get_object(o, keys[i], &x, &err);
                        (void)cc_json_get_array(o, keys[i], &x, &err);
                        if (cc_json_get_strv(o, keys[i], &strv, &err) == 0)
                                cc_strv_free(strv);
                }
                json_object_put(o);
        } else if (!err || strncmp(cc_error_message(err), "fuzz.json", 9) != 0) {
                __builtin_trap();
        }
        cc_error_free(err);
        return 0;
}
