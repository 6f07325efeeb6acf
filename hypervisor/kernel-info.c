/*
 * The guest kernel's own version string, read from its bzImage header (x86 boot protocol,
 * Documentation/x86/boot.rst): "HdrS" at 0x202, the protocol version at 0x206, and at 0x20e the
 * offset (minus 0x200) of a NUL-terminated string in the setup code, e.g.
 * "6.1.192-cc (cc@cc-guest-kernel) #1 SMP PREEMPT_DYNAMIC Thu, 26 Nov 2026 18:12:56 +0100".
 * cc-runtime check prints it, so a node shows which kernel its pods boot.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/error.h"

#include "hypervisor/hv-internal.h"

#define BZ_MAGIC_OFF 0x202
#define BZ_PROTO_OFF 0x206
#define BZ_KVER_OFF  0x20e
/* The offset is 16 bits from 0x200: the string starts in the first 0x10200 bytes; a version
 * string is far shorter than the 512 bytes allowed past that. */
#define BZ_HEAD_MAX  (0x10200 + 512)

static unsigned le16(const uint8_t *p)
{
        return (unsigned)p[0] | (unsigned)p[1] << 8;
}

int hv__kernel_version_parse(const uint8_t *buf, size_t len, char *out, size_t out_len,
                             struct cc_error **err)
{
        if (out_len == 0)
                return cc_error_set(err, EINVAL, "no room for the kernel version");
        out[0] = '\0';
        if (len < BZ_KVER_OFF + 2 || memcmp(buf + BZ_MAGIC_OFF, "HdrS", 4) != 0)
                return cc_error_set(err, EINVAL, "not a bzImage (no HdrS boot header)");
        if (le16(buf + BZ_PROTO_OFF) < 0x0200)
                return cc_error_set(err, EINVAL, "boot protocol %#x has no kernel version",
                                    le16(buf + BZ_PROTO_OFF));
        unsigned rel = le16(buf + BZ_KVER_OFF);
        if (rel == 0)
                return cc_error_set(err, ENOENT, "the boot header names no kernel version");
        size_t off = (size_t)rel + 0x200;
        if (off >= len)
                return cc_error_set(err, EINVAL,
                                    "the kernel version offset %#zx is past the setup code", off);
        size_t n = 0;
        for (; off + n < len && buf[off + n] != '\0'; n++) {
                unsigned char c = buf[off + n];
                if (c < 0x20 || c > 0x7e)
                        return cc_error_set(err, EINVAL,
                                            "the kernel version has a non-printable byte %#x", c);
        }
        if (off + n == len)
                return cc_error_set(err, EINVAL, "the kernel version is not terminated");
        if (n == 0)
                return cc_error_set(err, ENOENT, "the kernel version is empty");
        if (n >= out_len)
                n = out_len - 1;
        memcpy(out, buf + off, n);
        out[n] = '\0';
        return 0;
}

int hv__kernel_version(const char *path, char *out, size_t out_len, struct cc_error **err)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return cc_error_set(err, errno, "%s: %m", path);
        _cleanup_free_ uint8_t *buf = malloc(BZ_HEAD_MAX);
        if (!buf)
                return cc_error_set(err, ENOMEM, "out of memory");
        size_t len = 0;
        while (len < BZ_HEAD_MAX) {
                ssize_t k = read(fd, buf + len, BZ_HEAD_MAX - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return cc_error_set(err, errno, "read %s: %m", path);
                if (k == 0)
                        break;
                len += (size_t)k;
        }
        _cleanup_error_ struct cc_error *e = NULL;
        int r = hv__kernel_version_parse(buf, len, out, out_len, &e);
        if (r < 0)
                return cc_error_set(err, -r, "%s: %s", path, cc_error_message(e));
        return 0;
}
