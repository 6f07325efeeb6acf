/*
 * Strict JSON for signature payloads and policy.json: json-c, plus a refusal of duplicated
 * object keys, which containers/image applies and json-c cannot (it silently keeps the last
 * value, even with JSON_TOKENER_STRICT). jansson has the check built in but cannot share a
 * process with json-c: both export json_object_get() and friends with different meanings.
 *
 * The scan runs only on text json-c accepted, so it can rely on valid syntax; keys are
 * compared decoded (escapes resolved), so "type" and "typ\u0065" are the same key.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"

#include "guest-agent/image/image-internal.h"
#include "guest-agent/image/sig-internal.h"

struct key {
        char *s;
        size_t len;
};

static int key_cmp(const void *a, const void *b)
{
        const struct key *x = a, *y = b;
        size_t n = x->len < y->len ? x->len : y->len;
        int c = memcmp(x->s, y->s, n);
        return c ? c : (x->len > y->len) - (x->len < y->len);
}

static unsigned hex4(const char *p)
{
        unsigned v = 0;
        for (int i = 0; i < 4; i++) {
                char c = p[i];
                v = v << 4 | (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
        }
        return v;
}

static size_t put_utf8(char *o, unsigned cp)
{
        if (cp < 0x80) {
                o[0] = (char)cp;
                return 1;
        }
        if (cp < 0x800) {
                o[0] = (char)(0xc0 | cp >> 6);
                o[1] = (char)(0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                o[0] = (char)(0xe0 | cp >> 12);
                o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                o[2] = (char)(0x80 | (cp & 0x3f));
                return 3;
        }
        o[0] = (char)(0xf0 | cp >> 18);
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[3] = (char)(0x80 | (cp & 0x3f));
        return 4;
}

/* Decodes the string at s[*p] (the opening quote) into a new buffer; advances past it. */
static int string_read(const char *s, size_t len, size_t *p, struct key *ret)
{
        size_t i = *p + 1, o = 0;
        char *out = malloc(len - *p + 1);
        if (!out)
                return -ENOMEM;
        while (i < len && s[i] != '"') {
                if (s[i] != '\\') {
                        out[o++] = s[i++];
                        continue;
                }
                if (i + 1 >= len)
                        break;
                char c = s[i + 1];
                i += 2;
                if (c != 'u') {
                        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
                        const char *f = strchr(from, c);
                        out[o++] = f ? to[f - from] : c;
                        continue;
                }
                if (i + 4 > len)
                        break;
                unsigned cp = hex4(s + i);
                i += 4;
                if (cp >= 0xd800 && cp < 0xdc00 && i + 6 <= len && s[i] == '\\' &&
                    s[i + 1] == 'u') {
                        unsigned lo = hex4(s + i + 2);
                        if (lo >= 0xdc00 && lo < 0xe000) {
                                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                                i += 6;
                        }
                }
                o += put_utf8(out + o, cp);
        }
        *p = i + 1;
        ret->s = out;
        ret->len = o;
        return 0;
}

static void skip_ws(const char *s, size_t len, size_t *p)
{
        while (*p < len && strchr(" \t\r\n", s[*p]) && s[*p])
                (*p)++;
}

/* Walks one value at s[*p]; -EEXIST with *dup set to a duplicated key. */
static int value_scan(const char *s, size_t len, size_t *p, int depth, char **dup)
{
        skip_ws(s, len, p);
        if (*p >= len || depth > 64)
                return -EINVAL;
        char c = s[*p];
        if (c == '\'')
                return -EINVAL; /* json-c takes single-quoted strings; JSON does not */
        if (c == '"') {
                struct key k;
                int r = string_read(s, len, p, &k);
                free(k.s);
                return r;
        }
        if (c == '[') {
                (*p)++;
                skip_ws(s, len, p);
                if (*p < len && s[*p] == ']') {
                        (*p)++;
                        return 0;
                }
                for (;;) {
                        int r = value_scan(s, len, p, depth + 1, dup);
                        if (r < 0)
                                return r;
                        skip_ws(s, len, p);
                        if (*p >= len)
                                return -EINVAL;
                        if (s[(*p)++] == ']')
                                return 0;
                }
        }
        if (c == '{') {
                (*p)++;
                struct key *keys = NULL;
                size_t n = 0;
                int r = 0;
                skip_ws(s, len, p);
                if (*p < len && s[*p] == '}') {
                        (*p)++;
                        return 0;
                }
                for (;;) {
                        skip_ws(s, len, p);
                        if (*p >= len || s[*p] != '"') {
                                r = -EINVAL;
                                break;
                        }
                        struct key *nk = realloc(keys, (n + 1) * sizeof(*keys));
                        if (!nk) {
                                r = -ENOMEM;
                                break;
                        }
                        keys = nk;
                        if ((r = string_read(s, len, p, &keys[n])) < 0)
                                break;
                        n++;
                        skip_ws(s, len, p);
                        if (*p >= len || s[*p] != ':') {
                                r = -EINVAL;
                                break;
                        }
                        (*p)++;
                        if ((r = value_scan(s, len, p, depth + 1, dup)) < 0)
                                break;
                        skip_ws(s, len, p);
                        if (*p >= len) {
                                r = -EINVAL;
                                break;
                        }
                        if (s[(*p)++] == '}')
                                break;
                }
                if (r == 0 && n > 1) {
                        qsort(keys, n, sizeof(*keys), key_cmp);
                        for (size_t i = 1; i < n && r == 0; i++)
                                if (!key_cmp(&keys[i - 1], &keys[i])) {
                                        *dup = strndup(keys[i].s, keys[i].len);
                                        r = -EEXIST;
                                }
                }
                for (size_t i = 0; i < n; i++)
                        free(keys[i].s);
                free(keys);
                return r;
        }
        /* number, true, false, null */
        while (*p < len && !strchr(",]} \t\r\n", s[*p]) && s[*p])
                (*p)++;
        return 0;
}

struct json_object *img__jget(struct json_object *o, const char *key)
{
        struct json_object *v = NULL;
        if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
                return NULL;
        return v;
}

struct json_object *img__json_parse_strict(const void *buf, size_t len, struct cc_error **err)
{
        struct json_object *o = img__json_parse(buf, len, err);
        if (!o)
                return NULL;
        size_t p = 0;
        _cleanup_free_ char *dup = NULL;
        int r = value_scan(buf, len, &p, 0, &dup);
        if (r < 0) {
                json_object_put(o);
                if (r == -EEXIST)
                        cc_error_set(err, EINVAL, "invalid JSON: duplicate object key \"%s\"",
                                     dup ? dup : "");
                else
                        cc_error_set(err, -r, "invalid JSON");
                return NULL;
        }
        return o;
}

/* Refuses members of `o` not in the NULL-terminated `allowed`. */
int img__json_only_members(struct json_object *o, const char *what, const char *const *allowed,
                           struct cc_error **err)
{
        json_object_object_foreach(o, k, v)
        {
                (void)v;
                const char *const *a = allowed;
                while (*a && strcmp(*a, k))
                        a++;
                if (!*a)
                        return cc_error_set(err, EINVAL, "%s: unknown member \"%s\"", what, k);
        }
        return 0;
}

int img__json_get_string(struct json_object *o, const char *key, const char *what, bool required,
                         char **ret, struct cc_error **err)
{
        struct json_object *v = img__jget(o, key);
        *ret = NULL;
        if (!v)
                return required ? cc_error_set(err, EINVAL, "%s: \"%s\" is missing", what, key) : 0;
        if (!json_object_is_type(v, json_type_string))
                return cc_error_set(err, EINVAL, "%s: \"%s\" is not a string", what, key);
        *ret = strdup(json_object_get_string(v));
        return *ret ? 0 : -ENOMEM;
}
