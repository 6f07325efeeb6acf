/* Unix stream socket helpers shared by the servers and clients. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/ttrpc.h"

static int fill_addr(const char *path, struct sockaddr_un *sa, socklen_t *len)
{
        size_t n = strlen(path);
        memset(sa, 0, sizeof(*sa));
        sa->sun_family = AF_UNIX;
        if (n == 0 || n >= sizeof(sa->sun_path))
                return -ENAMETOOLONG;
        memcpy(sa->sun_path, path, n);
        /* A leading '@' names an abstract socket, as Go's net package does. */
        if (path[0] == '@')
                sa->sun_path[0] = '\0';
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '@' ? 0 : 1));
        return 0;
}

int cc_unix_connect(const char *path)
{
        struct sockaddr_un sa;
        socklen_t len;
        int r = fill_addr(path, &sa, &len);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        while (connect(fd, (struct sockaddr *)&sa, len) < 0)
                if (errno != EINTR)
                        return -errno;
        return TAKE_FD(fd);
}

int cc_unix_listen(const char *path, int backlog)
{
        struct sockaddr_un sa;
        socklen_t len;
        int r = fill_addr(path, &sa, &len);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* Remove a stale socket left by a dead process, but never another kind of file. */
        struct stat st;
        if (path[0] != '@' && lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                if (unlink(path) < 0 && errno != ENOENT)
                        return -errno;
        }
        if (bind(fd, (struct sockaddr *)&sa, len) < 0)
                return -errno;
        if (listen(fd, backlog > 0 ? backlog : 128) < 0)
                return -errno;
        return TAKE_FD(fd);
}
