#pragma once
/*
 * Small helpers on json-c for OCI runtime specs, image manifests and configs: parsing with a
 * depth limit and a clear error, typed getters that name the key and the expected type.
 *
 * A `key` is either one member name ("ociVersion", "io.kubernetes.cri.sandbox-id": dots are
 * plain characters) or, when it starts with '/', a JSON Pointer (RFC 6901) such as
 * "/process/args" or "/layers/0/digest". Getters return 0 and store the result, -ENOENT when
 * the key (or a step of the pointer) is absent (no error set, *ret untouched), -EINVAL with
 * "key '/process/args' must be an array, got string" when the type is wrong. Returned objects
 * and strings are borrowed from `obj`.
 */

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cc/cleanup.h"
#include "cc/error.h"

#define CC_JSON_MAX_DEPTH 64          /* nesting accepted by default */
#define CC_JSON_MAX_SIZE  (16u << 20) /* bytes cc_json_parse_file() reads at most by default */

DEFINE_TRIVIAL_CLEANUP_FUNC(struct json_object *, json_object_put)
#define _cleanup_json_ _cleanup_(json_object_putp)

/*
 * Parses exactly one JSON value from `len` bytes of `buf` (need not be NUL-terminated; only
 * whitespace may follow the value). json-c's strict mode (no comments, no trailing commas,
 * though it still takes 'single-quoted' strings) and valid UTF-8. `max_depth` bounds nesting
 * as json-c counts it (`[]` is 1 level, `[1]` and `[[]]` are 2); <= 0 means CC_JSON_MAX_DEPTH.
 * Errors name json-c's byte offset:
 * "name: offset 12: unexpected character".
 */
int cc_json_parse(const char *name, const char *buf, size_t len, int max_depth,
                  struct json_object **ret, struct cc_error **err);

/* Reads and parses a file of at most `max_size` bytes (0: CC_JSON_MAX_SIZE). */
int cc_json_parse_file(const char *path, size_t max_size, int max_depth, struct json_object **ret,
                       struct cc_error **err);

/* The value at `key` whatever its type (JSON null included). */
int cc_json_get(struct json_object *obj, const char *key, struct json_object **ret,
                struct cc_error **err);
int cc_json_get_object(struct json_object *obj, const char *key, struct json_object **ret,
                       struct cc_error **err);
int cc_json_get_array(struct json_object *obj, const char *key, struct json_object **ret,
                      struct cc_error **err);
int cc_json_get_string(struct json_object *obj, const char *key, const char **ret,
                       struct cc_error **err);
/* Integers only (no floats, no strings); -ERANGE outside int64_t. */
int cc_json_get_int64(struct json_object *obj, const char *key, int64_t *ret,
                      struct cc_error **err);
int cc_json_get_bool(struct json_object *obj, const char *key, bool *ret, struct cc_error **err);
/* An array of strings copied into a new NULL-terminated vector (free with cc_strv_free). */
int cc_json_get_strv(struct json_object *obj, const char *key, char ***ret, struct cc_error **err);
/* The same for an array object already in hand; `what` names it in errors. */
int cc_json_array_to_strv(struct json_object *array, const char *what, char ***ret,
                          struct cc_error **err);
