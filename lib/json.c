/*
 * JSON helpers on json-c (see cc/json.h): bounded parsing with readable errors, and typed
 * getters by member name or JSON Pointer whose errors name the key and the expected type.
 */
#include "cc/fileio.h"
#include "cc/json.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cc_json_parse(const char *name, const char *buf, size_t len, int max_depth,
                  struct json_object **ret, struct cc_error **err)
{
        if (!name)
                name = "<json>";
        if (max_depth <= 0 || max_depth > CC_JSON_MAX_DEPTH * 16)
                max_depth = CC_JSON_MAX_DEPTH;
        if (len > INT32_MAX)
                return cc_error_set(err, EFBIG, "%s: %zu bytes is too large", name, len);
        struct json_tokener *tok = json_tokener_new_ex(max_depth);
        if (!tok)
                return cc_error_set(err, ENOMEM, "%s: out of memory", name);
        /* Strict: RFC 8259 only, valid UTF-8, nothing but whitespace after the value. */
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        size_t offset = 0;
        struct json_object *obj = json_tokener_parse_ex(tok, buf ? buf : "", (int)len);
        enum json_tokener_error e = json_tokener_get_error(tok);
        if (!obj && e == json_tokener_continue) {
                /* A NUL ends the input, so a number at the very end is complete. */
                offset = len;
                obj = json_tokener_parse_ex(tok, "", 1);
                e = json_tokener_get_error(tok);
        } else if (obj && json_tokener_get_parse_end(tok) < len) {
                /* json-c stops after the value; only whitespace may follow it. */
                for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
                        if (!strchr(" \t\r\n", buf[i]) || !buf[i]) {
                                json_object_put(obj);
                                json_tokener_free(tok);
                                return cc_error_set(err, EINVAL,
                                                    "%s: offset %zu: data after the JSON value",
                                                    name, i);
                        }
                }
        }
        if (!obj || e != json_tokener_success) {
                if (e == json_tokener_success || e == json_tokener_continue)
                        e = json_tokener_error_parse_eof;
                if (offset == 0)
                        offset = json_tokener_get_parse_end(tok);
                json_object_put(obj);
                json_tokener_free(tok);
                if (len == 0)
                        return cc_error_set(err, EINVAL, "%s: empty input", name);
                return cc_error_set(err, EINVAL, "%s: offset %zu: %s", name, offset,
                                    json_tokener_error_desc(e));
        }
        json_tokener_free(tok);
        *ret = obj;
        return 0;
}

int cc_json_parse_file(const char *path, size_t max_size, int max_depth, struct json_object **ret,
                       struct cc_error **err)
{
        if (max_size == 0)
                max_size = CC_JSON_MAX_SIZE;
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r = cc_read_file(path, max_size, &buf, &len, err);
        if (r < 0)
                return r;
        return cc_json_parse(path, buf, len, max_depth, ret, err);
}

static const char *type_name(struct json_object *o)
{
        return json_type_to_name(json_object_get_type(o));
}

static int type_error(const char *key, struct json_object *o, const char *want,
                      struct cc_error **err)
{
        return cc_error_set(err, EINVAL, "key '%s' must be %s, got %s", key, want, type_name(o));
}

/* Appends pointer token [s, s+n) to out, undoing the ~1 ('/') and ~0 ('~') escapes. */
static int unescape_token(const char *s, size_t n, char *out)
{
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
                if (s[i] != '~') {
                        out[m++] = s[i];
                        continue;
                }
                if (i + 1 < n && (s[i + 1] == '0' || s[i + 1] == '1')) {
                        out[m++] = s[i + 1] == '0' ? '~' : '/';
                        i++;
                        continue;
                }
                return -EINVAL;
        }
        out[m] = 0;
        return 0;
}

/* An array index token: digits without a leading zero. */
static int parse_index(const char *s, size_t *ret)
{
        if (!*s || (s[0] == '0' && s[1]) || strspn(s, "0123456789") != strlen(s) || strlen(s) > 9)
                return -EINVAL;
        *ret = (size_t)strtoul(s, NULL, 10);
        return 0;
}

int cc_json_get(struct json_object *obj, const char *key, struct json_object **ret,
                struct cc_error **err)
{
        if (key[0] != '/') {
                if (!json_object_is_type(obj, json_type_object))
                        return cc_error_set(err, EINVAL, "cannot look up key '%s' in %s", key,
                                            type_name(obj));
                struct json_object *v;
                if (!json_object_object_get_ex(obj, key, &v))
                        return -ENOENT;
                *ret = v;
                return 0;
        }
        /* JSON Pointer: walk one token at a time. */
        _cleanup_free_ char *token = malloc(strlen(key) + 1);
        if (!token)
                return cc_error_set(err, ENOMEM, "out of memory");
        struct json_object *cur = obj;
        for (const char *s = key + 1;;) {
                size_t n = strcspn(s, "/");
                if (unescape_token(s, n, token) < 0)
                        return cc_error_set(err, EINVAL, "invalid JSON pointer '%s'", key);
                /* The part of the pointer walked so far, for messages. */
                int done = (int)(s - key) - 1;
                if (json_object_is_type(cur, json_type_object)) {
                        if (!json_object_object_get_ex(cur, token, &cur))
                                return -ENOENT;
                } else if (json_object_is_type(cur, json_type_array)) {
                        size_t i;
                        if (parse_index(token, &i) < 0)
                                return cc_error_set(err, EINVAL,
                                                    "key '%.*s' is an array: '%s' is not an index",
                                                    done, key, token);
                        if (i >= json_object_array_length(cur))
                                return -ENOENT;
                        cur = json_object_array_get_idx(cur, i);
                } else {
                        return cc_error_set(err, EINVAL, "key '%.*s' must be an object, got %s",
                                            done ? done : 1, key, type_name(cur));
                }
                if (!s[n])
                        break;
                s += n + 1;
        }
        *ret = cur;
        return 0;
}

static int get_typed(struct json_object *obj, const char *key, enum json_type type,
                     const char *want, struct json_object **ret, struct cc_error **err)
{
        struct json_object *v = NULL;
        int r = cc_json_get(obj, key, &v, err);
        if (r < 0)
                return r;
        if (!json_object_is_type(v, type))
                return type_error(key, v, want, err);
        *ret = v;
        return 0;
}

int cc_json_get_object(struct json_object *obj, const char *key, struct json_object **ret,
                       struct cc_error **err)
{
        return get_typed(obj, key, json_type_object, "an object", ret, err);
}

int cc_json_get_array(struct json_object *obj, const char *key, struct json_object **ret,
                      struct cc_error **err)
{
        return get_typed(obj, key, json_type_array, "an array", ret, err);
}

/* Strings with a NUL inside would be cut short by every C consumer: refuse them. */
static bool has_nul(struct json_object *s)
{
        return strlen(json_object_get_string(s)) != (size_t)json_object_get_string_len(s);
}

int cc_json_get_string(struct json_object *obj, const char *key, const char **ret,
                       struct cc_error **err)
{
        struct json_object *v = NULL;
        int r = get_typed(obj, key, json_type_string, "a string", &v, err);
        if (r < 0)
                return r;
        if (has_nul(v))
                return cc_error_set(err, EINVAL, "key '%s' contains a NUL character", key);
        *ret = json_object_get_string(v);
        return 0;
}

int cc_json_get_int64(struct json_object *obj, const char *key, int64_t *ret, struct cc_error **err)
{
        struct json_object *v = NULL;
        int r = get_typed(obj, key, json_type_int, "an integer", &v, err);
        if (r < 0)
                return r;
        /* json-c keeps integers above INT64_MAX as uint64 (and saturates beyond UINT64_MAX). */
        int64_t i = json_object_get_int64(v);
        if (i == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX)
                return cc_error_set(err, ERANGE, "key '%s' is out of range: %" PRIu64, key,
                                    json_object_get_uint64(v));
        *ret = i;
        return 0;
}

int cc_json_get_bool(struct json_object *obj, const char *key, bool *ret, struct cc_error **err)
{
        struct json_object *v = NULL;
        int r = get_typed(obj, key, json_type_boolean, "a boolean", &v, err);
        if (r < 0)
                return r;
        *ret = json_object_get_boolean(v);
        return 0;
}

int cc_json_array_to_strv(struct json_object *array, const char *what, char ***ret,
                          struct cc_error **err)
{
        if (!json_object_is_type(array, json_type_array))
                return type_error(what, array, "an array of strings", err);
        size_t n = json_object_array_length(array);
        _cleanup_strv_ char **v = calloc(n + 1, sizeof(char *));
        if (!v)
                return cc_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
                struct json_object *s = json_object_array_get_idx(array, i);
                if (!json_object_is_type(s, json_type_string))
                        return cc_error_set(err, EINVAL,
                                            "key '%s' must be an array of strings, element %zu "
                                            "is %s",
                                            what, i, type_name(s));
                if (has_nul(s))
                        return cc_error_set(err, EINVAL,
                                            "key '%s': element %zu contains a NUL character", what,
                                            i);
                v[i] = strdup(json_object_get_string(s));
                if (!v[i])
                        return cc_error_set(err, ENOMEM, "out of memory");
        }
        *ret = TAKE_PTR(v);
        return 0;
}

int cc_json_get_strv(struct json_object *obj, const char *key, char ***ret, struct cc_error **err)
{
        struct json_object *a = NULL;
        int r = get_typed(obj, key, json_type_array, "an array of strings", &a, err);
        if (r < 0)
                return r;
        return cc_json_array_to_strv(a, key, ret, err);
}
