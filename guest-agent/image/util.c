/* Small helpers of libccimage: digests, base64, string vectors, directory trees. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"

#include "guest-agent/image/image-internal.h"

bool img__digest_valid(const char *s)
{
        if (!s || strncmp(s, "sha256:", 7) != 0)
                return false;
        s += 7;
        size_t n = 0;
        for (; s[n]; n++)
                if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
                        return false;
        return n == 64;
}

static void hex_digest(const unsigned char *md, char out[72])
{
        static const char hex[] = "0123456789abcdef";
        memcpy(out, "sha256:", 7);
        for (int i = 0; i < 32; i++) {
                out[7 + 2 * i] = hex[md[i] >> 4];
                out[8 + 2 * i] = hex[md[i] & 15];
        }
        out[71] = 0;
}

void img__digest_final(EVP_MD_CTX *md, char out[72])
{
        unsigned char buf[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        EVP_DigestFinal_ex(md, buf, &n);
        hex_digest(buf, out);
}

void img__digest_buf(const void *buf, size_t len, char out[72])
{
        unsigned char md[32];
        unsigned int n = 0;
        EVP_Digest(buf, len, md, &n, EVP_sha256(), NULL);
        hex_digest(md, out);
}

static int b64_val(char c, bool url)
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

/*
 * Hand-written rather than OpenSSL's EVP_DecodeBlock because JWE needs the URL alphabet
 * without padding, and EVP_DecodeBlock neither handles it nor reports the exact length.
 */
int img__b64_decode(const char *in, size_t in_len, bool url, uint8_t **ret, size_t *ret_len)
{
        while (in_len > 0 && in[in_len - 1] == '=')
                in_len--;
        if (in_len % 4 == 1)
                return -EINVAL;
        _cleanup_free_ uint8_t *out = malloc(in_len / 4 * 3 + 3);
        if (!out)
                return -ENOMEM;
        size_t o = 0;
        uint32_t acc = 0;
        int bits = 0;
        for (size_t i = 0; i < in_len; i++) {
                int v = b64_val(in[i], url);
                if (v < 0)
                        return -EINVAL;
                acc = (acc << 6) | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (uint8_t)(acc >> bits);
                }
        }
        *ret = TAKE_PTR(out);
        *ret_len = o;
        return 0;
}

char *img__b64_encode(const uint8_t *in, size_t len)
{
        char *out = malloc(4 * ((len + 2) / 3) + 1);
        if (!out)
                return NULL;
        EVP_EncodeBlock((unsigned char *)out, in, (int)len);
        return out;
}

char **img__strv_copy_json(struct json_object *arr)
{
        if (!arr || !json_object_is_type(arr, json_type_array))
                return NULL;
        size_t n = json_object_array_length(arr);
        char **v = calloc(n + 1, sizeof(char *));
        if (!v)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                struct json_object *s = json_object_array_get_idx(arr, i);
                if (!json_object_is_type(s, json_type_string) ||
                    !(v[i] = strdup(json_object_get_string(s)))) {
                        cc_strv_free(v);
                        return NULL;
                }
        }
        return v;
}

size_t img__strv_len(char **v)
{
        size_t n = 0;
        while (v && v[n])
                n++;
        return n;
}

uint64_t img__now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

uint64_t img__now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

