/*
 * A walk of protobuf wire bytes, guided by the message descriptor, that finds string fields
 * holding a NUL byte. protobuf-c decodes a string into a NUL-terminated C string and drops its
 * length, so "c1\0x" would silently become "c1" for every later check: the check has to look
 * at the wire bytes, before decoding.
 */
#include <stdio.h>
#include <string.h>

#include "cc/ttrpc.h"

#define PB_MAX_DEPTH 32

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
        uint64_t x = 0;
        for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
                uint8_t b = *(*p)++;
                x |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *v = x;
                        return true;
                }
        }
        return false;
}

/* Appends ".name" (or "name" at the top) to path; truncation only shortens the message. */
static void path_push(char *path, size_t cap, const char *name)
{
        size_t n = strlen(path);
        if (n + 1 < cap)
                snprintf(path + n, cap - n, "%s%s", n ? "." : "", name);
}

static int walk(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end,
                unsigned depth, char *path, size_t cap)
{
        if (depth > PB_MAX_DEPTH)
                return 0; /* the decoder refuses what is this deep anyway */
        while (p < end) {
                uint64_t tag, len;
                if (!read_varint(&p, end, &tag))
                        return 0;
                switch (tag & 7) {
                case 0:
                        if (!read_varint(&p, end, &len))
                                return 0;
                        continue;
                case 1:
                        if (end - p < 8)
                                return 0;
                        p += 8;
                        continue;
                case 5:
                        if (end - p < 4)
                                return 0;
                        p += 4;
                        continue;
                case 2:
                        break;
                default:
                        return 0; /* groups or garbage: left to the decoder to refuse */
                }
                if (!read_varint(&p, end, &len) || len > (uint64_t)(end - p))
                        return 0;
                uint64_t num = tag >> 3;
                const ProtobufCFieldDescriptor *f =
                        num <= UINT32_MAX
                                ? protobuf_c_message_descriptor_get_field(d, (unsigned)num)
                                : NULL;
                if (f && f->type == PROTOBUF_C_TYPE_STRING && memchr(p, 0, len)) {
                        path_push(path, cap, f->name);
                        return 1;
                }
                if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                        size_t keep = strlen(path);
                        path_push(path, cap, f->name);
                        if (walk(f->descriptor, p, p + len, depth + 1, path, cap) > 0)
                                return 1;
                        path[keep] = '\0';
                }
                p += len;
        }
        return 0;
}

int cc_pb_find_nul_string(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                          char *path, size_t path_size)
{
        if (path_size == 0)
                return 0;
        path[0] = '\0';
        if (!data)
                return 0;
        int r = walk(desc, data, data + len, 0, path, path_size);
        if (r == 0)
                path[0] = '\0';
        return r;
}
