/*
 * Applies tar entries to a layer directory, confined to it.
 *
 * The tar comes from an untrusted registry (and, in a confidential VM, through an untrusted
 * host), so no entry may create or change anything outside the layer directory:
 *   - paths are cleaned first: absolute paths and ".." components are refused outright rather
 *     than rewritten, so a hostile layer fails loudly instead of landing somewhere unexpected;
 *   - parent directories are opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 *     RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV) relative to the layer's fd, and created one
 *     component at a time with the same resolution; a symlink in a parent path (the
 *     "symlink, then a file through it" attack) is an error, never followed;
 *   - the last component is created with O_CREAT|O_EXCL|O_NOFOLLOW (or mkdirat/symlinkat/
 *     mknodat/linkat, none of which follow a final symlink); an existing entry is removed
 *     first (a tar may replace what it wrote earlier), except that a directory over a directory
 *     only updates its attributes;
 *   - hardlink targets get the same cleaning and confined lookup, and linkat() runs without
 *     AT_SYMLINK_FOLLOW, so a hardlink can only name a file already in this layer;
 *   - overlay xattrs (trusted.overlay.*, user.overlay.*) in the tar are dropped: only the
 *     applier itself may mark a directory opaque.
 * Whiteouts are converted for an overlay stack (one directory per layer): ".wh.NAME" becomes
 * a 0/0 character device NAME, ".wh..wh..opq" sets the opaque xattr on its directory.
 * Device nodes, setuid/setgid bits and ownership follow the IMG_PULL_* flags. Sizes and inode
 * counts are charged to image-wide counters, and the filesystem's free space is checked as we
 * go so a full store gives a clear ENOSPC instead of a half-written layer.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/log.h"

#include "guest-agent/image/image-internal.h"

#define STATVFS_EVERY (32ULL << 20)

struct dirtime {
        char *path;
        struct timespec ts[2];
};

struct img_applier {
        int rootfd;
        unsigned flags;
        const struct img_limits *lim;
        char cached_path[PATH_MAX];
        int cached_fd;
        struct dirtime *dirs;
        size_t n_dirs, cap_dirs;
        uint64_t until_statvfs; /* bytes to write before the next free-space check */
        /* Syscall savings for the common case (root unpacking root-owned files): skip
         * fchown when the new file already has the entry's owner, and fchmod when the
         * create mode already gave the entry's mode. */
        uid_t euid;
        gid_t egid;
        bool owner_inherited; /* setgid root: new files may not get egid */
        int umask;            /* -1 = unknown: always fchmod */
};

/* The process umask, read without changing it (umask(2) is process-wide and racy). */
static int read_umask(void)
{
        FILE *f = fopen("/proc/self/status", "re");
        char line[256];
        int m = -1;
        while (f && fgets(line, sizeof(line), f))
                if (!strncmp(line, "Umask:", 6)) {
                        m = (int)strtol(line + 6, NULL, 8);
                        break;
                }
        if (f)
                fclose(f);
        return m;
}

int img__applier_new(int rootfd, unsigned flags, const struct img_limits *lim,
                     struct img_applier **ret)
{
        struct img_applier *a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->rootfd = rootfd;
        a->flags = flags;
        a->lim = lim;
        a->cached_fd = -1;
        a->until_statvfs = 0; /* check at the first entry */
        a->euid = geteuid();
        a->egid = getegid();
        a->umask = read_umask();
        struct stat st;
        a->owner_inherited = fstat(rootfd, &st) < 0 || (st.st_mode & S_ISGID);
        *ret = a;
        return 0;
}

struct img_applier *img__applier_free(struct img_applier *a)
{
        if (!a)
                return NULL;
        cc_close(a->cached_fd);
        for (size_t i = 0; i < a->n_dirs; i++)
                free(a->dirs[i].path);
        free(a->dirs);
        free(a);
        return NULL;
}

int img__path_clean(const char *in, char *out, size_t out_size)
{
        if (!in || !*in)
                return -EINVAL;
        if (in[0] == '/')
                return -EINVAL;
        size_t o = 0;
        const char *p = in;
        while (*p) {
                size_t n = strcspn(p, "/");
                if (n == 0 || (n == 1 && p[0] == '.')) {
                        /* empty or "." component */
                } else if (n == 2 && p[0] == '.' && p[1] == '.') {
                        return -EINVAL;
                } else {
                        if (n > NAME_MAX || o + n + 2 > out_size)
                                return -ENAMETOOLONG;
                        if (o)
                                out[o++] = '/';
                        memcpy(out + o, p, n);
                        o += n;
                }
                p += n;
                if (*p == '/')
                        p++;
        }
        out[o] = 0;
        return 0;
}

static int openat2_beneath(int dirfd, const char *path, int flags)
{
        struct open_how how = {
                .flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
                           RESOLVE_NO_XDEV,
        };
        long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
        return fd < 0 ? -errno : (int)fd;
}

static void cache_drop(struct img_applier *a)
{
        a->cached_fd = cc_close(a->cached_fd);
        a->cached_path[0] = 0;
}

/*
 * Returns a borrowed O_PATH fd of the directory `dir` (a cleaned path, "" = root), creating
 * missing components (mode 0755) when `create`.
 */
static int open_dir(struct img_applier *a, const char *dir, bool create, int *ret_fd,
                    struct cc_error **err)
{
        if (!*dir) {
                *ret_fd = a->rootfd;
                return 0;
        }
        if (a->cached_fd >= 0 && !strcmp(a->cached_path, dir)) {
                *ret_fd = a->cached_fd;
                return 0;
        }
        int fd = openat2_beneath(a->rootfd, dir, O_PATH | O_DIRECTORY);
        if (fd == -ENOENT && create) {
                /* Walk and create one component at a time, each confined the same way. */
                char buf[PATH_MAX];
                snprintf(buf, sizeof(buf), "%s", dir);
                int cur = -1;
                char *p = buf;
                while (p) {
                        char *slash = strchr(p, '/');
                        if (slash)
                                *slash = 0;
                        int base = cur >= 0 ? cur : a->rootfd;
                        int next = openat2_beneath(base, p, O_PATH | O_DIRECTORY);
                        if (next == -ENOENT) {
                                if (mkdirat(base, p, 0755) < 0 && errno != EEXIST) {
                                        int e = errno;
                                        cc_close(cur);
                                        return cc_error_set(err, e, "mkdir '%s'", dir);
                                }
                                next = openat2_beneath(base, p, O_PATH | O_DIRECTORY);
                        }
                        cc_close(cur);
                        if (next < 0) {
                                fd = next;
                                break;
                        }
                        cur = next;
                        p = slash ? slash + 1 : NULL;
                }
                if (!p)
                        fd = cur;
        }
        if (fd < 0) {
                if (fd == -ELOOP || fd == -EXDEV)
                        return cc_error_set(err, ELOOP, "'%s': a parent is a symlink, refused",
                                            dir);
                if (fd == -ENOTDIR)
                        return cc_error_set(
                                err, ENOTDIR,
                                "'%s': a parent is a symlink or not a directory, refused", dir);
                return cc_error_set(err, -fd, "open '%s'", dir);
        }
        cache_drop(a);
        a->cached_fd = fd;
        snprintf(a->cached_path, sizeof(a->cached_path), "%s", dir);
        *ret_fd = fd;
        return 0;
}

/* Splits a cleaned path into its directory (in place) and returns the last component. */
static char *split(char *path)
{
        char *slash = strrchr(path, '/');
        if (!slash) {
                memmove(path + 1, path, strlen(path) + 1);
                path[0] = 0;
                return path + 1;
        }
        *slash = 0;
        return slash + 1;
}

static int charge(struct img_applier *a, uint64_t bytes, uint64_t inodes, int fd,
                  struct cc_error **err)
{
        const struct img_limits *l = a->lim;
        if (!l)
                return 0;
        if (inodes && l->inodes) {
                uint64_t n = __atomic_add_fetch(l->inodes, inodes, __ATOMIC_RELAXED);
                if (l->max_inodes && n > l->max_inodes)
                        return cc_error_set(err, EDQUOT, "image has more than %llu entries",
                                            (unsigned long long)l->max_inodes);
        }
        if (bytes && l->bytes) {
                uint64_t n = __atomic_add_fetch(l->bytes, bytes, __ATOMIC_RELAXED);
                if (l->max_bytes && n > l->max_bytes)
                        return cc_error_set(err, EFBIG, "image is larger than %llu bytes",
                                            (unsigned long long)l->max_bytes);
        }
        /*
         * Free space: checked every 32 MiB, and more often as the store fills (a quarter of
         * the headroom, as other layer threads write too), so that we stop with a clear error
         * before the file system is full rather than at a failed write.
         */
        if (bytes < a->until_statvfs) {
                a->until_statvfs -= bytes;
                return 0;
        }
        struct statvfs sv;
        if (fstatvfs(fd >= 0 ? fd : a->rootfd, &sv) < 0) {
                a->until_statvfs = STATVFS_EVERY;
                return 0;
        }
        uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
        if (avail < l->min_free + bytes)
                return cc_error_set(
                        err, ENOSPC,
                        "layer store nearly full: %llu bytes free, %llu kept in reserve",
                        (unsigned long long)avail, (unsigned long long)l->min_free);
        if (sv.f_files && sv.f_favail < 64)
                return cc_error_set(err, ENOSPC, "layer store out of inodes");
        a->until_statvfs = CC_MIN(STATVFS_EVERY, (avail - l->min_free - bytes) / 4);
        return 0;
}

/* Removes whatever is at dirfd/name (tree included) so a new entry can take its place. */
static int replace_existing(struct img_applier *a, int dirfd, const char *name, bool want_dir,
                            bool *ret_keep_dir)
{
        struct stat st;
        *ret_keep_dir = false;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (want_dir && S_ISDIR(st.st_mode)) {
                *ret_keep_dir = true;
                return 0;
        }
        /* Removal may delete a directory the cache points into: forget the cached path, but
         * keep its fd open, as the caller may be holding it (borrowed) right now. */
        a->cached_path[0] = 0;
        return cc_rm_rf_at(dirfd, name);
}

static void apply_xattrs(struct archive_entry *e, int fd)
{
        const char *name;
        const void *value;
        size_t size;
        if (archive_entry_xattr_reset(e) == 0)
                return;
        while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
                if (!strncmp(name, "trusted.overlay.", 16) || !strncmp(name, "user.overlay.", 13))
                        continue;
                if (fsetxattr(fd, name, value, size, 0) < 0)
                        cc_log_debug("xattr %s: %m", name);
        }
}

static mode_t entry_mode(struct img_applier *a, struct archive_entry *e)
{
        mode_t m = archive_entry_perm(e) & 07777;
        if (a->flags & IMG_PULL_NO_SETID)
                m &= ~(mode_t)06000;
        return m;
}

static int set_owner(struct img_applier *a, int dirfd, const char *name, int fd,
                     struct archive_entry *e)
{
        if (!(a->flags & IMG_PULL_KEEP_OWNERS))
                return 0;
        uid_t u = (uid_t)archive_entry_uid(e);
        gid_t g = (gid_t)archive_entry_gid(e);
        if (fd >= 0 && u == a->euid && g == a->egid && !a->owner_inherited)
                return 0;
        int r = fd >= 0 ? fchown(fd, u, g) : fchownat(dirfd, name, u, g, AT_SYMLINK_NOFOLLOW);
        return r < 0 ? -errno : 0;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2])
{
        ts[0].tv_sec =
                archive_entry_atime_is_set(e) ? archive_entry_atime(e) : archive_entry_mtime(e);
        ts[0].tv_nsec = archive_entry_atime_is_set(e) ? archive_entry_atime_nsec(e)
                                                      : archive_entry_mtime_nsec(e);
        ts[1].tv_sec = archive_entry_mtime(e);
        ts[1].tv_nsec = archive_entry_mtime_nsec(e);
}

static int write_file(struct img_applier *a, struct archive *ar, struct archive_entry *e, int dirfd,
                      const char *name, const char *path, struct cc_error **err)
{
        bool keep;
        mode_t mode = entry_mode(a, e);
        /* Created with its final permission bits: the staging root is 0700 until publish. */
        _cleanup_close_ int fd = openat(
                dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0777);
        if (fd < 0 && errno == EEXIST) {
                int r = replace_existing(a, dirfd, name, false, &keep);
                if (r < 0)
                        return cc_error_set(err, -r, "replace '%s'", path);
                fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                            mode & 0777);
        }
        if (fd < 0)
                return cc_error_set(err, errno, "create '%s'", path);
        const void *buf;
        size_t size;
        la_int64_t off;
        uint64_t end = 0;
        for (;;) {
                int r = archive_read_data_block(ar, &buf, &size, &off);
                if (r == ARCHIVE_EOF)
                        break;
                if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
                        return cc_error_set(err, archive_errno(ar) > 0 ? archive_errno(ar) : EIO,
                                            "'%s': %s", path, archive_error_string(ar));
                if (size == 0)
                        continue;
                int q = charge(a, size, 0, fd, err);
                if (q < 0)
                        return q;
                const char *p = buf;
                size_t left = size;
                while (left) {
                        ssize_t n = pwrite(fd, p, left, off);
                        if (n < 0) {
                                if (errno == EINTR)
                                        continue;
                                return cc_error_set(err, errno, "write '%s'", path);
                        }
                        p += n;
                        left -= (size_t)n;
                        off += n;
                }
                if ((uint64_t)off > end)
                        end = (uint64_t)off;
        }
        la_int64_t want = archive_entry_size(e);
        if (want > 0 && (uint64_t)want > end && ftruncate(fd, want) < 0)
                return cc_error_set(err, errno, "truncate '%s'", path);
        int r = set_owner(a, dirfd, name, fd, e);
        if (r < 0)
                return cc_error_set(err, -r, "chown '%s'", path);
        bool exact = a->umask >= 0 && !(mode & ~(mode_t)0777) && !(mode & (mode_t)a->umask);
        if (!exact && fchmod(fd, mode) < 0)
                return cc_error_set(err, errno, "chmod '%s'", path);
        apply_xattrs(e, fd);
        struct timespec ts[2];
        entry_times(e, ts);
        futimens(fd, ts);
        return 0;
}

static int make_dir(struct img_applier *a, struct archive_entry *e, int dirfd, const char *name,
                    const char *path, struct cc_error **err)
{
        bool keep = false;
        if (mkdirat(dirfd, name, 0700) < 0) {
                if (errno != EEXIST)
                        return cc_error_set(err, errno, "mkdir '%s'", path);
                int r = replace_existing(a, dirfd, name, true, &keep);
                if (r < 0)
                        return cc_error_set(err, -r, "replace '%s'", path);
                if (!keep && mkdirat(dirfd, name, 0700) < 0)
                        return cc_error_set(err, errno, "mkdir '%s'", path);
        }
        _cleanup_close_ int fd =
                openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return cc_error_set(err, errno, "open '%s'", path);
        int r = set_owner(a, dirfd, name, fd, e);
        if (r < 0)
                return cc_error_set(err, -r, "chown '%s'", path);
        if (fchmod(fd, entry_mode(a, e)) < 0)
                return cc_error_set(err, errno, "chmod '%s'", path);
        apply_xattrs(e, fd);
        if (a->n_dirs == a->cap_dirs) {
                size_t cap = a->cap_dirs ? a->cap_dirs * 2 : 64;
                struct dirtime *d = realloc(a->dirs, cap * sizeof(*d));
                if (!d)
                        return -ENOMEM;
                a->dirs = d;
                a->cap_dirs = cap;
        }
        struct dirtime *d = &a->dirs[a->n_dirs];
        if (!(d->path = strdup(path)))
                return -ENOMEM;
        entry_times(e, d->ts);
        a->n_dirs++;
        return 0;
}

/* Creates a node with one of the *at() calls below, replacing what was there. */
enum node_kind { NODE_SYMLINK, NODE_HARDLINK, NODE_MKNOD };

static int make_node(struct img_applier *a, enum node_kind kind, int dirfd, const char *name,
                     const char *path, const char *target, int tdirfd, const char *tname,
                     mode_t mode, dev_t dev, struct cc_error **err)
{
        for (int attempt = 0;; attempt++) {
                int r;
                switch (kind) {
                case NODE_SYMLINK:
                        r = symlinkat(target, dirfd, name);
                        break;
                case NODE_HARDLINK:
                        r = linkat(tdirfd, tname, dirfd, name, 0);
                        break;
                default:
                        r = mknodat(dirfd, name, mode, dev);
                        break;
                }
                if (r == 0)
                        return 0;
                if (errno != EEXIST || attempt > 0)
                        return cc_error_set(err, errno, "create '%s'", path);
                bool keep;
                r = replace_existing(a, dirfd, name, false, &keep);
                if (r < 0)
                        return cc_error_set(err, -r, "replace '%s'", path);
        }
}

static int whiteout(struct img_applier *a, struct archive_entry *e, const char *dir,
                    const char *name, struct cc_error **err)
{
        int dirfd;
        int r = open_dir(a, dir, true, &dirfd, err);
        if (r < 0)
                return r;
        if (!strcmp(name, ".wh..wh..opq")) {
                _cleanup_close_ int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                const char *x = a->flags & IMG_PULL_USER_XATTR ? "user.overlay.opaque"
                                                               : "trusted.overlay.opaque";
                if (fd < 0 || fsetxattr(fd, x, "y", 1, 0) < 0)
                        return cc_error_set(err, errno, "opaque '%s': set %s", dir, x);
                return 0;
        }
        if (!strncmp(name, ".wh..wh.", 8)) {
                /* Other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not part of the image. */
                return 0;
        }
        const char *victim = name + 4;
        if (!*victim || !strcmp(victim, ".") || !strcmp(victim, ".."))
                return cc_error_set(err, EINVAL, "invalid whiteout '%s/%s'", dir, name);
        r = charge(a, 0, 1, -1, err);
        if (r < 0)
                return r;
        if (mknodat(dirfd, victim, S_IFCHR | 0, makedev(0, 0)) < 0) {
                /* The same layer created the name: its own entry wins over the whiteout. */
                if (errno == EEXIST)
                        return 0;
                return cc_error_set(err, errno, "whiteout '%s/%s'", dir, victim);
        }
        r = set_owner(a, dirfd, victim, -1, e);
        return r < 0 ? cc_error_set(err, -r, "chown whiteout '%s/%s'", dir, victim) : 0;
}

int img__apply_entry(struct img_applier *a, struct archive *ar, struct archive_entry *e,
                     struct cc_error **err)
{
        const char *raw = archive_entry_pathname(e);
        char path[PATH_MAX];
        int r = img__path_clean(raw, path, sizeof(path));
        if (r < 0)
                return cc_error_set(err, -r, "entry '%s': %s", raw ? raw : "(null)",
                                    r == -EINVAL ? "path escapes the layer, refused"
                                                 : "path too long");
        if (!*path)
                return 0; /* "./": the layer root keeps the store's attributes */
        char dirbuf[PATH_MAX + 1];
        snprintf(dirbuf, sizeof(dirbuf), "%s", path);
        char *name = split(dirbuf);
        const char *dir = dirbuf;
        if (!strncmp(name, ".wh.", 4))
                return whiteout(a, e, dir, name, err);

        const char *hl = archive_entry_hardlink(e);
        mode_t type = archive_entry_filetype(e);
        if (!hl && (type == AE_IFSOCK || ((type == AE_IFCHR || type == AE_IFBLK) &&
                                          !(a->flags & IMG_PULL_ALLOW_DEVICES)))) {
                cc_log_debug("skipping device/socket entry '%s'", path);
                return 0;
        }
        r = charge(a, 0, 1, -1, err);
        if (r < 0)
                return r;
        int dirfd;
        r = open_dir(a, dir, true, &dirfd, err);
        if (r < 0)
                return cc_error_wrap(err, r, "entry '%s'", path);

        if (hl) {
                char tpath[PATH_MAX];
                if (img__path_clean(hl, tpath, sizeof(tpath)) < 0 || !*tpath)
                        return cc_error_set(err, EINVAL,
                                            "hardlink '%s' -> '%s': target escapes the layer, "
                                            "refused",
                                            path, hl);
                char tdir[PATH_MAX + 1];
                snprintf(tdir, sizeof(tdir), "%s", tpath);
                char *tname = split(tdir);
                /* Hold our own fd: open_dir() below may replace the cached one. */
                _cleanup_close_ int dfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
                int borrowed;
                r = open_dir(a, tdir, false, &borrowed, err);
                if (r == -ENOENT)
                        return cc_error_set(err, ENOENT,
                                            "hardlink '%s' -> '%s': target not in this layer", path,
                                            hl);
                if (r < 0 || dfd < 0)
                        return cc_error_wrap(err, r < 0 ? r : -errno, "hardlink '%s' -> '%s'", path,
                                             hl);
                /* Own fds: replacing an existing entry drops the cache. */
                _cleanup_close_ int tfd = fcntl(borrowed, F_DUPFD_CLOEXEC, 3);
                if (tfd < 0)
                        return cc_error_set(err, errno, "hardlink '%s'", path);
                struct stat st;
                if (fstatat(tfd, tname, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return cc_error_set(err, errno,
                                            "hardlink '%s' -> '%s': target not in this layer", path,
                                            hl);
                if (S_ISDIR(st.st_mode))
                        return cc_error_set(err, EPERM, "hardlink '%s' to a directory", path);
                return make_node(a, NODE_HARDLINK, dfd, name, path, NULL, tfd, tname, 0, 0, err);
        }
        switch (type) {
        case AE_IFREG:
                return write_file(a, ar, e, dirfd, name, path, err);
        case AE_IFDIR:
                return make_dir(a, e, dirfd, name, path, err);
        case AE_IFLNK: {
                const char *target = archive_entry_symlink(e);
                if (!target)
                        return cc_error_set(err, EINVAL, "symlink '%s' without target", path);
                r = make_node(a, NODE_SYMLINK, dirfd, name, path, target, -1, NULL, 0, 0, err);
                if (r < 0)
                        return r;
                r = set_owner(a, dirfd, name, -1, e);
                if (r < 0)
                        return cc_error_set(err, -r, "chown '%s'", path);
                struct timespec ts[2];
                entry_times(e, ts);
                utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW);
                return 0;
        }
        case AE_IFCHR:
        case AE_IFBLK:
        case AE_IFIFO: {
                mode_t m = (type == AE_IFCHR ? S_IFCHR : type == AE_IFBLK ? S_IFBLK : S_IFIFO);
                r = make_node(a, NODE_MKNOD, dirfd, name, path, NULL, -1, NULL,
                              m | entry_mode(a, e), archive_entry_rdev(e), err);
                if (r < 0)
                        return r;
                r = set_owner(a, dirfd, name, -1, e);
                if (r < 0)
                        return cc_error_set(err, -r, "chown '%s'", path);
                /* mknod honours the umask: set the exact mode (a FIFO/device, no symlink). */
                if (fchmodat(dirfd, name, entry_mode(a, e), 0) < 0)
                        return cc_error_set(err, errno, "chmod '%s'", path);
                return 0;
        }
        default:
                return cc_error_set(err, EINVAL, "entry '%s': unsupported type 0%o", path,
                                    (unsigned)type);
        }
}

int img__applier_finish(struct img_applier *a, struct cc_error **err)
{
        /* Directory times last: creating children changed them while applying. */
        for (size_t i = a->n_dirs; i-- > 0;) {
                char buf[PATH_MAX + 1];
                snprintf(buf, sizeof(buf), "%s", a->dirs[i].path);
                char *name = split(buf);
                int dirfd;
                if (open_dir(a, buf, false, &dirfd, NULL) < 0)
                        continue; /* replaced later in the layer */
                utimensat(dirfd, name, a->dirs[i].ts, AT_SYMLINK_NOFOLLOW);
        }
        return 0;
}
