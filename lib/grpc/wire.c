/* gRPC-over-HTTP/2 value encodings shared by the server, the client and the tests. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc/grpc.h"

char *cc_grpc_percent_encode(const char *s)
{
        static const char hex[] = "0123456789ABCDEF";
        size_t n = strlen(s);
        char *out = malloc(n * 3 + 1);
        if (!out)
                return NULL;
        char *p = out;
        for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
                /* The spec keeps printable ASCII except '%' and encodes everything else, which
                 * also makes a multi-byte UTF-8 message survive byte by byte. */
                if (*c >= 0x20 && *c <= 0x7e && *c != '%') {
                        *p++ = (char)*c;
                } else {
                        *p++ = '%';
                        *p++ = hex[*c >> 4];
                        *p++ = hex[*c & 0xf];
                }
        }
        *p = '\0';
        return out;
}


char *cc_grpc_percent_decode(const char *s, size_t len)
{
        char *out = malloc(len + 1);
        if (!out)
                return NULL;
        size_t o = 0;
        for (size_t i = 0; i < len; i++) {
                int hi, lo;
                if (s[i] == '%' && i + 2 < len && (hi = cc_hexval(s[i + 1])) >= 0 &&
                    (lo = cc_hexval(s[i + 2])) >= 0) {
                        out[o++] = (char)(hi << 4 | lo);
                        i += 2;
                } else {
                        out[o++] = s[i];
                }
        }
        out[o] = '\0';
        return out;
}

int cc_grpc_parse_timeout(const char *s, size_t len, int64_t *ret_ns)
{
        /* TimeoutValue is 1 to 8 ASCII digits, then one unit letter. */
        if (len < 2 || len > 9)
                return -EINVAL;
        int64_t v = 0;
        for (size_t i = 0; i + 1 < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (s[i] - '0');
        }
        int64_t mul;
        switch (s[len - 1]) {
        case 'H':
                mul = 3600LL * 1000000000LL;
                break;
        case 'M':
                mul = 60LL * 1000000000LL;
                break;
        case 'S':
                mul = 1000000000LL;
                break;
        case 'm':
                mul = 1000000LL;
                break;
        case 'u':
                mul = 1000LL;
                break;
        case 'n':
                mul = 1;
                break;
        default:
                return -EINVAL;
        }
        /* 99999999 hours overflows int64 nanoseconds: saturate instead. */
        if (v > INT64_MAX / mul)
                *ret_ns = INT64_MAX;
        else
                *ret_ns = v * mul;
        return 0;
}

void cc_grpc_format_timeout(int64_t ns, char buf[16])
{
        static const struct {
                char unit;
                int64_t div;
        } units[] = {{'n', 1},
                     {'u', 1000},
                     {'m', 1000000},
                     {'S', 1000000000LL},
                     {'M', 60000000000LL},
                     {'H', 3600000000000LL}};
        if (ns < 1)
                ns = 1;
        /* The smallest unit whose value fits in 8 digits, rounding up so we never shorten. */
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                int64_t v = (ns + units[i].div - 1) / units[i].div;
                if (v <= 99999999) {
                        snprintf(buf, 16, "%u%c", (unsigned)v, units[i].unit);
                        return;
                }
        }
        snprintf(buf, 16, "99999999H");
}
