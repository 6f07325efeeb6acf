/*
 * Encodings the attestation protocols mix (../shared/reference/attestation-kbs.md section 0):
 * base64 in both flavours, hex, RFC 8785 canonical JSON. Shared by cc-kbs (kbs/) and the guest's
 * KBS client (guest-agent/attest/). Written here rather than taken from OpenSSL: EVP_EncodeBlock
 * and EVP_DecodeBlock know neither the URL-safe alphabet nor unpadded input; and Debian packages no
 * C implementation of RFC 8785 (json-c's printer sorts nothing and escapes '/').
 */
#include "cc/codec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *cc_b64_encode(const uint8_t *in, size_t len, bool url)
{
        const char *abc = url ? b64_url : b64_std;
        char *out = malloc(4 * ((len + 2) / 3) + 1);
        if (!out)
                return NULL;
        size_t o = 0, i = 0;
        for (; i + 2 < len; i += 3) {
                uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
                out[o++] = abc[v >> 18];
                out[o++] = abc[(v >> 12) & 63];
                out[o++] = abc[(v >> 6) & 63];
                out[o++] = abc[v & 63];
        }
        if (len - i == 1) {
                uint32_t v = (uint32_t)in[i] << 16;
                out[o++] = abc[v >> 18];
                out[o++] = abc[(v >> 12) & 63];
                if (!url) {
                        out[o++] = '=';
                        out[o++] = '=';
                }
        } else if (len - i == 2) {
                uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
                out[o++] = abc[v >> 18];
                out[o++] = abc[(v >> 12) & 63];
                out[o++] = abc[(v >> 6) & 63];
                if (!url)
                        out[o++] = '=';
        }
        out[o] = 0;
        return out;
}

static int b64_val(char c, bool url)
{
        const char *abc = url ? b64_url : b64_std;
        const char *p = c ? strchr(abc, c) : NULL;
        return p ? (int)(p - abc) : -1;
}

int cc_b64_decode(const char *in, size_t len, bool url, uint8_t **ret, size_t *ret_len)
{
        size_t data = len;
        if (!url) {
                if (len % 4 != 0)
                        return -EINVAL;
                if (data > 0 && in[data - 1] == '=')
                        data--;
                if (data > 0 && in[data - 1] == '=')
                        data--;
        }
        if (data % 4 == 1)
                return -EINVAL;
        _cleanup_free_ uint8_t *out = malloc(data / 4 * 3 + 3);
        if (!out)
                return -ENOMEM;
        size_t o = 0;
        uint32_t acc = 0;
        unsigned bits = 0;
        for (size_t i = 0; i < data; i++) {
                int v = b64_val(in[i], url);
                if (v < 0)
                        return -EINVAL;
                acc = (acc << 6) | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (uint8_t)(acc >> bits);
                        acc &= (1u << bits) - 1;
                }
        }
        if (acc != 0) /* non-canonical: leftover bits must be zero */
                return -EINVAL;
        out[o] = 0;
        *ret_len = o;
        *ret = TAKE_PTR(out);
        return 0;
}

char *cc_hex(const uint8_t *in, size_t len)
{
        static const char hex[] = "0123456789abcdef";
        char *out = malloc(2 * len + 1);
        if (!out)
                return NULL;
        for (size_t i = 0; i < len; i++) {
                out[2 * i] = hex[in[i] >> 4];
                out[2 * i + 1] = hex[in[i] & 15];
        }
        out[2 * len] = 0;
        return out;
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int cc_unhex(const char *in, uint8_t *out, size_t len)
{
        if (strlen(in) != 2 * len)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                out[i] = (uint8_t)(hi << 4 | lo);
        }
        return 0;
}

static int buf_add(char **buf, size_t *n, size_t *cap, const char *s, size_t len)
{
        if (*n + len + 1 > *cap) {
                size_t c = *cap ? *cap : 256;
                while (c < *n + len + 1)
                        c *= 2;
                char *b = realloc(*buf, c);
                if (!b)
                        return -ENOMEM;
                *buf = b;
                *cap = c;
        }
        memcpy(*buf + *n, s, len);
        *n += len;
        (*buf)[*n] = 0;
        return 0;
}

int cc_json_quote(const char *s, size_t len, char **buf, size_t *n, size_t *cap)
{
        int r = buf_add(buf, n, cap, "\"", 1);
        for (size_t i = 0; r == 0 && i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                char esc[8];
                switch (c) {
                case '"':
                        r = buf_add(buf, n, cap, "\\\"", 2);
                        break;
                case '\\':
                        r = buf_add(buf, n, cap, "\\\\", 2);
                        break;
                case '\b':
                        r = buf_add(buf, n, cap, "\\b", 2);
                        break;
                case '\f':
                        r = buf_add(buf, n, cap, "\\f", 2);
                        break;
                case '\n':
                        r = buf_add(buf, n, cap, "\\n", 2);
                        break;
                case '\r':
                        r = buf_add(buf, n, cap, "\\r", 2);
                        break;
                case '\t':
                        r = buf_add(buf, n, cap, "\\t", 2);
                        break;
                default:
                        if (c < 0x20) {
                                snprintf(esc, sizeof(esc), "\\u%04x", c);
                                r = buf_add(buf, n, cap, esc, 6);
                        } else {
                                r = buf_add(buf, n, cap, (const char *)&s[i], 1);
                        }
                }
        }
        return r ?: buf_add(buf, n, cap, "\"", 1);
}

/* Next code point of UTF-8 `s` (json-c has validated it); advances *i. */
static uint32_t utf8_next(const unsigned char *s, size_t len, size_t *i)
{
        uint32_t c = s[(*i)++];
        int more = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
        if (more)
                c &= 0x3F >> more;
        while (more-- > 0 && *i < len)
                c = (c << 6) | (s[(*i)++] & 0x3F);
        return c;
}

/* RFC 8785 3.2.3: member names compare as arrays of UTF-16 code units. */
static int utf16_cmp(const char *a, const char *b)
{
        size_t al = strlen(a), bl = strlen(b), i = 0, j = 0;
        uint16_t ua[2], ub[2];
        int na = 0, nb = 0, ia = 0, ib = 0;
        for (;;) {
                if (ia == na) {
                        if (i >= al)
                                return (ib < nb || j < bl) ? -1 : 0;
                        uint32_t c = utf8_next((const unsigned char *)a, al, &i);
                        if (c >= 0x10000) {
                                c -= 0x10000;
                                ua[0] = (uint16_t)(0xD800 + (c >> 10));
                                ua[1] = (uint16_t)(0xDC00 + (c & 0x3FF));
                                na = 2;
                        } else {
                                ua[0] = (uint16_t)c;
                                na = 1;
                        }
                        ia = 0;
                }
                if (ib == nb) {
                        if (j >= bl)
                                return 1;
                        uint32_t c = utf8_next((const unsigned char *)b, bl, &j);
                        if (c >= 0x10000) {
                                c -= 0x10000;
                                ub[0] = (uint16_t)(0xD800 + (c >> 10));
                                ub[1] = (uint16_t)(0xDC00 + (c & 0x3FF));
                                nb = 2;
                        } else {
                                ub[0] = (uint16_t)c;
                                nb = 1;
                        }
                        ib = 0;
                }
                if (ua[ia] != ub[ib])
                        return ua[ia] < ub[ib] ? -1 : 1;
                ia++;
                ib++;
        }
}

static int key_cmp(const void *x, const void *y)
{
        return utf16_cmp(*(const char *const *)x, *(const char *const *)y);
}

static int jcs_add(struct json_object *v, int depth, char **buf, size_t *n, size_t *cap)
{
        char num[32];
        int r;
        if (depth > 64)
                return -ELOOP;
        switch (json_object_get_type(v)) {
        case json_type_null:
                return buf_add(buf, n, cap, "null", 4);
        case json_type_boolean:
                return json_object_get_boolean(v) ? buf_add(buf, n, cap, "true", 4)
                                                  : buf_add(buf, n, cap, "false", 5);
        case json_type_int:
                snprintf(num, sizeof(num), "%lld", (long long)json_object_get_int64(v));
                return buf_add(buf, n, cap, num, strlen(num));
        case json_type_double:
                return -EINVAL;
        case json_type_string:
                return cc_json_quote(json_object_get_string(v),
                                     (size_t)json_object_get_string_len(v), buf, n, cap);
        case json_type_array: {
                size_t len = json_object_array_length(v);
                r = buf_add(buf, n, cap, "[", 1);
                for (size_t i = 0; r == 0 && i < len; i++) {
                        if (i)
                                r = buf_add(buf, n, cap, ",", 1);
                        if (r == 0)
                                r = jcs_add(json_object_array_get_idx(v, i), depth + 1, buf, n,
                                            cap);
                }
                return r ?: buf_add(buf, n, cap, "]", 1);
        }
        case json_type_object: {
                size_t cnt = (size_t)json_object_object_length(v), k = 0;
                _cleanup_free_ const char **keys = calloc(cnt ? cnt : 1, sizeof(*keys));
                if (!keys)
                        return -ENOMEM;
                json_object_object_foreach(v, key, val)
                {
                        (void)val;
                        keys[k++] = key;
                }
                qsort(keys, cnt, sizeof(*keys), key_cmp);
                r = buf_add(buf, n, cap, "{", 1);
                for (size_t i = 0; r == 0 && i < cnt; i++) {
                        if (i)
                                r = buf_add(buf, n, cap, ",", 1);
                        if (r == 0)
                                r = cc_json_quote(keys[i], strlen(keys[i]), buf, n, cap);
                        if (r == 0)
                                r = buf_add(buf, n, cap, ":", 1);
                        if (r == 0)
                                r = jcs_add(json_object_object_get(v, keys[i]), depth + 1, buf, n,
                                            cap);
                }
                return r ?: buf_add(buf, n, cap, "}", 1);
        }
        }
        return -EINVAL;
}

int cc_jcs(struct json_object *v, char **ret)
{
        _cleanup_free_ char *buf = NULL;
        size_t n = 0, cap = 0;
        int r = jcs_add(v, 0, &buf, &n, &cap);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(buf);
        return 0;
}
