/*
 * The guest image checks itself before the agent reports ready: every file the image builder
 * listed in /etc/cc-agent/image.sha256 (the pull helper, its loader and library image, the
 * kernel modules, the CA bundle; not /init, which is running) must have the SHA-256 the
 * builder recorded. A truncated or corrupt initramfs then fails the pod's start with the file
 * named, instead of booting to READY and failing at the first image pull. (In a TEE the launch
 * measurement covers the whole initrd; this check is about images damaged on the node's disk or
 * built wrong, which a measurement only reports to a verifier much later.)
 *
 * SHA-256 comes from libcrypto's low-level SHA256_* functions, deprecated in OpenSSL 3 but
 * kept: linked statically into cc-agent-static they add about 30 KiB, where the EVP interface
 * pulls in the provider machinery (4.7 MiB, measured with a one-call program).
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/log.h"

#include "guest-agent/agent.h"

#define LIST_MAX   (256u << 10) /* the list itself: a few hundred lines at most */
#define READ_CHUNK (256u << 10)

static void hex(const unsigned char *md, char out[2 * SHA256_DIGEST_LENGTH + 1])
{
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) {
                out[2 * i] = digits[md[i] >> 4];
                out[2 * i + 1] = digits[md[i] & 15];
        }
        out[2 * SHA256_DIGEST_LENGTH] = '\0';
}

/* SHA-256 of a regular file (no symlink followed) as hex; *size gets its length. */
static int file_sha256(const char *path, char out[2 * SHA256_DIGEST_LENGTH + 1], uint64_t *size)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        _cleanup_free_ unsigned char *buf = malloc(READ_CHUNK);
        if (!buf)
                return -ENOMEM;
        SHA256_CTX ctx;
        SHA256_Init(&ctx);
        *size = 0;
        for (;;) {
                ssize_t n;
                do
                        n = read(fd, buf, READ_CHUNK);
                while (n < 0 && errno == EINTR);
                if (n <= 0) {
                        if (n < 0)
                                return -errno;
                        break;
                }
                SHA256_Update(&ctx, buf, (size_t)n);
                *size += (uint64_t)n;
        }
        unsigned char md[SHA256_DIGEST_LENGTH];
        SHA256_Final(md, &ctx);
        hex(md, out);
        return 0;
}

static bool is_hex64(const char *s)
{
        for (size_t i = 0; i < 64; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

int agent_selfcheck(const char *list_path, const char *root, unsigned *ret_files,
                    uint64_t *ret_bytes, struct cc_error **err)
{
        _cleanup_close_ int fd = open(list_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return cc_error_set(err, errno, "guest image check: %s: %m", list_path);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return cc_error_set(err, errno, "guest image check: %s: %m", list_path);
        if (!S_ISREG(st.st_mode) || st.st_size > (off_t)LIST_MAX)
                return cc_error_set(err, EINVAL,
                                    "guest image check: %s is not a regular file of at most %u "
                                    "bytes",
                                    list_path, LIST_MAX);
        _cleanup_free_ char *text = malloc((size_t)st.st_size + 1);
        if (!text)
                return -ENOMEM;
        ssize_t got = pread(fd, text, (size_t)st.st_size, 0);
        if (got != st.st_size)
                return cc_error_set(err, got < 0 ? errno : EIO, "guest image check: read %s",
                                    list_path);
        text[got] = '\0';
        if (memchr(text, '\0', (size_t)got))
                return cc_error_set(err, EINVAL, "guest image check: %s holds a NUL byte",
                                    list_path);

        unsigned files = 0, lineno = 0;
        uint64_t bytes = 0;
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                lineno++;
                /* sha256sum's format: 64 hex digits, two spaces, an absolute path. */
                if (strlen(line) < 67 || !is_hex64(line) || line[64] != ' ' || line[65] != ' ' ||
                    line[66] != '/' || strstr(line + 66, "/../") || strstr(line + 66, "/./"))
                        return cc_error_set(err, EINVAL,
                                            "guest image check: %s:%u: not '<sha256>  /path'",
                                            list_path, lineno);
                const char *path = line + 66;
                char full[4096];
                if ((size_t)snprintf(full, sizeof(full), "%s%s", root ? root : "", path) >=
                    sizeof(full))
                        return cc_error_set(err, ENAMETOOLONG,
                                            "guest image check: %s:%u: path too long", list_path,
                                            lineno);
                char have[2 * SHA256_DIGEST_LENGTH + 1];
                uint64_t size = 0;
                int r = file_sha256(full, have, &size);
                if (r == -EINVAL)
                        return cc_error_set(err, EINVAL,
                                            "the guest image is corrupt: %s is not a regular file",
                                            path);
                if (r < 0)
                        return cc_error_set(err, -r, "the guest image is corrupt: %s: %s", path,
                                            strerror(-r));
                if (memcmp(have, line, 64) != 0)
                        return cc_error_set(err, EBADMSG,
                                            "the guest image is corrupt: %s has sha256 %s (%llu "
                                            "bytes), the image was built with %.64s",
                                            path, have, (unsigned long long)size, line);
                files++;
                bytes += size;
        }
        if (ret_files)
                *ret_files = files;
        if (ret_bytes)
                *ret_bytes = bytes;
        return 0;
}
