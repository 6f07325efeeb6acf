/*
 * Encodings the KBS protocol mixes (attestation-kbs.md section 0): b64 with padding, b64url
 * without, RFC 8785 canonical JSON (JCS) for the runtime data that is hashed, and the hashes.
 *
 * Base64 is written here rather than taken from OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock:
 * those know neither the URL-safe alphabet nor unpadded input, and decode padding into
 * trailing zero bytes the caller would have to guess away. JCS has no packaged C
 * implementation in Debian; json-c's own printer sorts nothing and escapes '/'.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest-agent/attest/kbc.h"

static const char std_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *kbc_b64_encode(const uint8_t *in, size_t len, bool url)
{
        const char *a = url ? url_alphabet : std_alphabet;
        char *out = malloc(4 * ((len + 2) / 3) + 1);
        if (!out)
                return NULL;
        size_t o = 0, i = 0;
        for (; i + 2 < len; i += 3) {
                uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
                out[o++] = a[v >> 18];
                out[o++] = a[(v >> 12) & 63];
                out[o++] = a[(v >> 6) & 63];
                out[o++] = a[v & 63];
        }
        if (i < len) {
                uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
                out[o++] = a[v >> 18];
                out[o++] = a[(v >> 12) & 63];
                if (i + 1 < len)
                        out[o++] = a[(v >> 6) & 63];
                else if (!url)
                        out[o++] = '=';
                if (!url)
                        out[o++] = '=';
        }
        out[o] = '\0';
        return out;
}

static int b64_value(char c, bool url)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == (url ? '-' : '+'))
                return 62;
        if (c == (url ? '_' : '/'))
                return 63;
        return -1;
}

int kbc_b64_decode(const char *in, size_t in_len, bool url, uint8_t **ret, size_t *ret_len)
{
        /* Padding only at the end, at most two. */
        size_t n = in_len;
        while (n > 0 && in[n - 1] == '=' && in_len - n < 2)
                n--;
        if (n % 4 == 1)
                return -EINVAL;
        uint8_t *out = malloc(n / 4 * 3 + 3);
        if (!out)
                return -ENOMEM;
        size_t o = 0;
        uint32_t acc = 0;
        unsigned bits = 0;
        for (size_t i = 0; i < n; i++) {
                int v = b64_value(in[i], url);
                if (v < 0) {
                        free(out);
                        return -EINVAL;
                }
                acc = acc << 6 | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (uint8_t)(acc >> bits);
                }
        }
        /* Leftover bits must be zero (a canonical encoding). */
        if (bits && (acc & ((1u << bits) - 1))) {
                free(out);
                return -EINVAL;
        }
        *ret = out;
        *ret_len = o;
        return 0;
}

/* ---- JCS -------------------------------------------------------------------------------- */

struct buf {
        char *p;
        size_t len, cap;
        int err;
};

static void put(struct buf *b, const char *s, size_t n)
{
        if (b->err)
                return;
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 256;
                while (cap < b->len + n + 1)
                        cap *= 2;
                char *p = realloc(b->p, cap);
                if (!p) {
                        b->err = -ENOMEM;
                        return;
                }
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
}

/* ECMAScript JSON.stringify escaping: only '"', '\\' and controls below 0x20. */
static void put_string(struct buf *b, const char *s, size_t n)
{
        put(b, "\"", 1);
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                char esc[8];
                switch (c) {
                case '"':
                        put(b, "\\\"", 2);
                        break;
                case '\\':
                        put(b, "\\\\", 2);
                        break;
                case '\b':
                        put(b, "\\b", 2);
                        break;
                case '\f':
                        put(b, "\\f", 2);
                        break;
                case '\n':
                        put(b, "\\n", 2);
                        break;
                case '\r':
                        put(b, "\\r", 2);
                        break;
                case '\t':
                        put(b, "\\t", 2);
                        break;
                default:
                        if (c < 0x20) {
                                snprintf(esc, sizeof(esc), "\\u%04x", c);
                                put(b, esc, 6);
                        } else {
                                put(b, (const char *)&c, 1);
                        }
                }
        }
        put(b, "\"", 1);
}

/* Next UTF-16 code unit of a UTF-8 string (surrogate pairs split); *pending carries the low
 * surrogate. Invalid bytes compare as themselves. */
static unsigned next_u16(const unsigned char **s, const unsigned char *end, unsigned *pending)
{
        if (*pending) {
                unsigned u = *pending;
                *pending = 0;
                return u;
        }
        unsigned c = *(*s)++;
        unsigned cp = c, extra = 0;
        if (c >= 0xF0)
                cp = c & 7, extra = 3;
        else if (c >= 0xE0)
                cp = c & 15, extra = 2;
        else if (c >= 0xC0)
                cp = c & 31, extra = 1;
        for (; extra && *s < end; extra--)
                cp = cp << 6 | (*(*s)++ & 63);
        if (cp >= 0x10000) {
                cp -= 0x10000;
                *pending = 0xDC00 | (cp & 0x3FF);
                return 0xD800 | (cp >> 10);
        }
        return cp;
}

static int cmp_utf16(const void *a, const void *b)
{
        const char *x = *(const char *const *)a, *y = *(const char *const *)b;
        const unsigned char *p = (const unsigned char *)x, *q = (const unsigned char *)y;
        const unsigned char *pe = p + strlen(x), *qe = q + strlen(y);
        unsigned pp = 0, qp = 0;
        while ((p < pe || pp) && (q < qe || qp)) {
                unsigned u = next_u16(&p, pe, &pp), v = next_u16(&q, qe, &qp);
                if (u != v)
                        return u < v ? -1 : 1;
        }
        return (p < pe || pp) ? 1 : (q < qe || qp) ? -1 : 0;
}

static void jcs(struct buf *b, struct json_object *v, unsigned depth)
{
        if (depth > 64) {
                b->err = -ELOOP;
                return;
        }
        char num[32];
        switch (json_object_get_type(v)) {
        case json_type_null:
                put(b, "null", 4);
                break;
        case json_type_boolean:
                if (json_object_get_boolean(v))
                        put(b, "true", 4);
                else
                        put(b, "false", 5);
                break;
        case json_type_int:
                snprintf(num, sizeof(num), "%lld", (long long)json_object_get_int64(v));
                put(b, num, strlen(num));
                break;
        case json_type_double:
                b->err = -EINVAL;
                break;
        case json_type_string:
                put_string(b, json_object_get_string(v), (size_t)json_object_get_string_len(v));
                break;
        case json_type_array: {
                put(b, "[", 1);
                size_t n = json_object_array_length(v);
                for (size_t i = 0; i < n; i++) {
                        if (i)
                                put(b, ",", 1);
                        jcs(b, json_object_array_get_idx(v, i), depth + 1);
                }
                put(b, "]", 1);
                break;
        }
        case json_type_object: {
                size_t n = (size_t)json_object_object_length(v), i = 0;
                const char **keys = calloc(n ? n : 1, sizeof(*keys));
                if (!keys) {
                        b->err = -ENOMEM;
                        return;
                }
                json_object_object_foreach(v, k, val)
                {
                        (void)val;
                        keys[i++] = k;
                }
                qsort(keys, n, sizeof(*keys), cmp_utf16);
                put(b, "{", 1);
                for (i = 0; i < n; i++) {
                        if (i)
                                put(b, ",", 1);
                        put_string(b, keys[i], strlen(keys[i]));
                        put(b, ":", 1);
                        jcs(b, json_object_object_get(v, keys[i]), depth + 1);
                }
                put(b, "}", 1);
                free(keys);
                break;
        }
        }
}

int kbc_jcs(struct json_object *v, char **ret)
{
        struct buf b = {0};
        jcs(&b, v, 0);
        if (b.err) {
                free(b.p);
                return b.err;
        }
        if (!b.p && !(b.p = strdup("")))
                return -ENOMEM;
        *ret = b.p;
        return 0;
}

/* ---- hashes ----------------------------------------------------------------------------- */

int kbc_hash_from_name(const char *name, enum kbc_hash *ret)
{
        if (!name)
                return -EINVAL;
        if (!strcasecmp(name, "sha256"))
                *ret = KBC_SHA256;
        else if (!strcasecmp(name, "sha384"))
                *ret = KBC_SHA384;
        else if (!strcasecmp(name, "sha512"))
                *ret = KBC_SHA512;
        else
                return -EINVAL;
        return 0;
}

const char *kbc_hash_name(enum kbc_hash h)
{
        return h == KBC_SHA256 ? "sha256" : h == KBC_SHA384 ? "sha384" : "sha512";
}

size_t kbc_hash_len(enum kbc_hash h)
{
        return h == KBC_SHA256 ? 32 : h == KBC_SHA384 ? 48 : 64;
}

/* libcrypto's low-level SHA_Init/Update/Final, not EVP (nor the one-shot SHA256(), which
 * OpenSSL 3 implements with EVP): the static agent and shim link this file for initdata, and
 * EVP would pull OpenSSL's provider machinery into them (4.7 MiB; guest-agent/selfcheck.c). */
int kbc_hash(enum kbc_hash h, const void *data, size_t len, uint8_t out[64])
{
        if (h == KBC_SHA256) {
                SHA256_CTX c;
                SHA256_Init(&c);
                SHA256_Update(&c, data, len);
                SHA256_Final(out, &c);
        } else {
                SHA512_CTX c;
                if (h == KBC_SHA384)
                        SHA384_Init(&c);
                else
                        SHA512_Init(&c);
                SHA512_Update(&c, data, len);
                if (h == KBC_SHA384)
                        SHA384_Final(out, &c);
                else
                        SHA512_Final(out, &c);
        }
        return 0;
}

void kbc_regularize(const uint8_t *in, size_t in_len, uint8_t *out, size_t n)
{
        size_t k = in_len < n ? in_len : n;
        memcpy(out, in, k);
        memset(out + k, 0, n - k);
}
