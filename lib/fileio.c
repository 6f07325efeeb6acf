/* File helpers shared by every component (see cc/fileio.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/error.h"
#include "cc/fileio.h"

int cc_read_file(const char *path, size_t max_size, char **ret, size_t *ret_len,
                 struct cc_error **err)
{
        /* O_NONBLOCK: a FIFO (or a device) named where a file belongs opens at once and is
         * refused by the type check below instead of blocking the caller; it changes nothing
         * for a regular file. */
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return cc_error_set(err, errno, "open %s: %s", path, strerror(errno));
        struct stat st;
        if (fstat(fd, &st) < 0)
                return cc_error_set(err, errno, "stat %s: %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return cc_error_set(err, EINVAL, "%s: not a regular file", path);
        if ((uint64_t)st.st_size > max_size)
                return cc_error_set(err, EFBIG, "%s: larger than %zu bytes", path, max_size);
        /* Room for one byte more than the size seen, to notice a file that grew since fstat(). */
        size_t cap = (size_t)st.st_size + 2, len = 0;
        _cleanup_free_ char *buf = malloc(cap);
        if (!buf)
                return cc_error_set(err, ENOMEM, "%s: out of memory", path);
        for (;;) {
                if (len + 1 == cap) {
                        if (len > max_size)
                                return cc_error_set(err, EFBIG, "%s: larger than %zu bytes", path,
                                                    max_size);
                        char *q = realloc(buf, cap * 2);
                        if (!q)
                                return cc_error_set(err, ENOMEM, "%s: out of memory", path);
                        buf = q;
                        cap *= 2;
                }
                ssize_t n = read(fd, buf + len, cap - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return cc_error_set(err, errno, "read %s: %s", path, strerror(errno));
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        if (len > max_size)
                return cc_error_set(err, EFBIG, "%s: larger than %zu bytes", path, max_size);
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

int cc_mkdir_p(const char *path, mode_t mode)
{
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int cc_rm_rf_at(int parent, const char *name)
{
        if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
                return 0;
        if (errno != EISDIR && errno != EPERM)
                return -errno;
        int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                int q = cc_rm_rf_at(dirfd(d), de->d_name);
                if (q < 0 && r == 0)
                        r = q;
        }
        closedir(d);
        if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && r == 0)
                r = -errno;
        return r;
}

int cc_write_all(int fd, const void *buf, size_t n)
{
        struct stat st;
        bool sock = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
        for (const char *p = buf; n;) {
                ssize_t k = sock ? send(fd, p, n, MSG_NOSIGNAL) : write(fd, p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                p += k;
                n -= (size_t)k;
        }
        return 0;
}

int cc_read_full(int fd, void *buf, size_t n)
{
        for (char *p = buf; n;) {
                ssize_t k = read(fd, p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -EPIPE;
                p += k;
                n -= (size_t)k;
        }
        return 0;
}
