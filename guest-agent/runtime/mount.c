/*
 * Rootfs and mounts of a new container, run in the container's init process after it entered
 * its new mount namespace and before pivot_root.
 *
 * Security: the rootfs content comes from an image and may hold symlinks meant to redirect a
 * mount onto the guest's own directories (/run, the agent's state, another container). Every
 * mount target is therefore resolved inside the rootfs with openat2(RESOLVE_IN_ROOT), created
 * one component at a time below an fd, and mounted through its /proc/self/fd/N link, so the
 * kernel mounts on exactly the inode we resolved. Bind sources were opened by the parent
 * beneath the container's area (RESOLVE_BENEATH) and are likewise used through their fds.
 */
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/macro.h"

#include "guest-agent/runtime/runtime.h"

int agent__openat2(int dirfd, const char *path, int flags, unsigned long long resolve)
{
        struct open_how how = {.flags = (unsigned long long)flags, .resolve = resolve};
        long r = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
        return r < 0 ? -errno : (int)r;
}

#define IN_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

/*
 * Opens (O_PATH) `path` inside the tree of `rootfd`, creating missing directories, and the
 * last component as an empty file when `file` is set. Returns the fd or -errno.
 */
static int mkpath_in_root(int rootfd, const char *path, bool file)
{
        char prefix[4096];
        size_t plen = 0;
        int dfd = dup(rootfd);
        if (dfd < 0)
                return -errno;
        const char *s = path;
        while (*s) {
                while (*s == '/')
                        s++;
                if (!*s)
                        break;
                const char *e = strchrnul(s, '/');
                size_t clen = (size_t)(e - s);
                const char *rest = e;
                while (*rest == '/')
                        rest++;
                bool last = !*rest;
                if (plen + clen + 2 >= sizeof(prefix) || clen >= 256) {
                        close(dfd);
                        return -ENAMETOOLONG;
                }
                prefix[plen++] = '/';
                memcpy(prefix + plen, s, clen);
                plen += clen;
                prefix[plen] = '\0';
                char comp[256];
                memcpy(comp, s, clen);
                comp[clen] = '\0';
                bool want_file = last && file;
                int fd =
                        agent__openat2(rootfd, prefix,
                                       O_PATH | O_CLOEXEC | (want_file ? 0 : O_DIRECTORY), IN_ROOT);
                if (fd == -ENOENT) {
                        int r;
                        if (want_file) {
                                r = openat(dfd, comp,
                                           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                           0644);
                                if (r >= 0)
                                        close(r);
                        } else {
                                r = mkdirat(dfd, comp, 0755);
                        }
                        if (r < 0 && errno != EEXIST) {
                                int k = -errno;
                                close(dfd);
                                return k;
                        }
                        fd = agent__openat2(rootfd, prefix,
                                            O_PATH | O_CLOEXEC | (want_file ? 0 : O_DIRECTORY),
                                            IN_ROOT);
                }
                close(dfd);
                if (fd < 0)
                        return fd;
                dfd = fd;
                s = e;
        }
        return dfd;
}

static void fdpath(char buf[32], int fd)
{
        snprintf(buf, 32, "/proc/self/fd/%d", fd);
}

static bool is_dir_fd(int fd)
{
        struct stat st;
        return fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
}

static const char *const allowed_types[] = {"proc",   "sysfs",   "tmpfs",  "devpts",
                                            "mqueue", "cgroup2", "cgroup", "bind"};

static int mount_one(int rootfd, const struct agent_mount *m, int srcfd,
                     struct agent_child_error *e)
{
        bool known = false;
        for (size_t i = 0; i < CC_ARRAY_SIZE(allowed_types); i++)
                known = known || cc_streq(m->type, allowed_types[i]);
        if (!m->bind && !known)
                return agent__child_fail(e, EPERM, "mount type '%s' at %s is not allowed", m->type,
                                         m->destination);
        bool file = m->bind && srcfd >= 0 && !is_dir_fd(srcfd);
        _cleanup_close_ int dfd = mkpath_in_root(rootfd, m->destination, file);
        if (dfd < 0)
                return agent__child_fail(e, -dfd, "mount target %s", m->destination);
        char target[32], source[32];
        fdpath(target, dfd);
        unsigned long flags = m->flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
        if (m->bind) {
                /* The parent opened the source in the agent's mount namespace, and a bind
                 * mount's source must be in ours: reopen it by its path here and check that
                 * it is still the same inode. */
                char spath[4096];
                fdpath(source, srcfd);
                ssize_t n = readlink(source, spath, sizeof(spath) - 1);
                if (n < 0)
                        return agent__child_fail(e, errno, "bind source of %s", m->destination);
                spath[n] = '\0';
                _cleanup_close_ int nsrc =
                        agent__openat2(AT_FDCWD, spath, O_PATH | O_CLOEXEC, RESOLVE_NO_SYMLINKS);
                struct stat a, b;
                if (nsrc < 0 || fstat(nsrc, &a) < 0 || fstat(srcfd, &b) < 0 ||
                    a.st_dev != b.st_dev || a.st_ino != b.st_ino)
                        return agent__child_fail(e, EPERM, "bind source of %s changed",
                                                 m->destination);
                fdpath(source, nsrc);
                if (mount(source, target, NULL, MS_BIND | (m->flags & MS_REC), NULL) < 0)
                        return agent__child_fail(e, errno, "bind mount %s", m->destination);
                /* Bind mounts ignore the other flags until a remount applies them. The target
                 * fd still names the covered directory: reopen through the new mount. */
                if (flags) {
                        _cleanup_close_ int nfd =
                                agent__openat2(rootfd, m->destination, O_PATH | O_CLOEXEC, IN_ROOT);
                        if (nfd < 0)
                                return agent__child_fail(e, -nfd, "reopen %s", m->destination);
                        fdpath(target, nfd);
                        if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | flags, NULL) < 0)
                                return agent__child_fail(e, errno, "remount %s", m->destination);
                }
        } else {
                const char *type = cc_streq(m->type, "cgroup") ? "cgroup2" : m->type;
                /* No device nodes outside devpts: see agent__rootfs_setup(). */
                if (!cc_streq(type, "devpts"))
                        flags |= MS_NODEV;
                if (mount(type, target, type, flags, m->data) < 0) {
                        /* sysfs cannot always be mounted (e.g. in a foreign network namespace);
                         * runc falls back to a bind of /sys, as we do. */
                        if (!cc_streq(type, "sysfs") ||
                            mount("/sys", target, NULL, MS_BIND | MS_REC, NULL) < 0)
                                return agent__child_fail(e, errno, "mount %s on %s", type,
                                                         m->destination);
                }
        }
        if (m->propagation) {
                _cleanup_close_ int nfd =
                        agent__openat2(rootfd, m->destination, O_PATH | O_CLOEXEC, IN_ROOT);
                if (nfd >= 0) {
                        fdpath(target, nfd);
                        (void)mount(NULL, target, NULL, m->propagation, NULL);
                }
        }
        return 0;
}

static bool has_mount(const struct agent_spec *s, const char *dest)
{
        for (size_t i = 0; i < s->n_mounts; i++)
                if (cc_streq(s->mounts[i].destination, dest))
                        return true;
        return false;
}

/* The standard devices, bind-mounted from the guest's /dev: no mknod needed, and the nodes are
 * exactly the guest's (no device a spec could name beyond these). */
static int setup_dev(int rootfd, const struct agent_spec *s, struct agent_child_error *e)
{
        static const char *const devs[] = {"null", "zero", "full", "random", "urandom", "tty"};
        if (!has_mount(s, "/dev")) {
                _cleanup_close_ int dfd = mkpath_in_root(rootfd, "/dev", false);
                char target[32];
                if (dfd < 0)
                        return agent__child_fail(e, -dfd, "create /dev");
                fdpath(target, dfd);
                if (mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_STRICTATIME,
                          "mode=755,size=65536k") < 0)
                        return agent__child_fail(e, errno, "mount tmpfs on /dev");
        }
        _cleanup_close_ int devfd = agent__openat2(rootfd, "/dev", O_PATH | O_CLOEXEC, IN_ROOT);
        if (devfd < 0)
                return agent__child_fail(e, -devfd, "open /dev");
        for (size_t i = 0; i < CC_ARRAY_SIZE(devs); i++) {
                char src[32], dst[32], path[32];
                snprintf(path, sizeof(path), "/dev/%s", devs[i]);
                _cleanup_close_ int fd = mkpath_in_root(rootfd, path, true);
                if (fd < 0)
                        return agent__child_fail(e, -fd, "create %s", path);
                snprintf(src, sizeof(src), "/dev/%s", devs[i]);
                struct stat st;
                if (lstat(src, &st) < 0 || !S_ISCHR(st.st_mode))
                        return agent__child_fail(e, ENODEV, "%s is not a character device", src);
                fdpath(dst, fd);
                if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
                        return agent__child_fail(e, errno, "bind %s", path);
        }
        static const char *const links[][2] = {
                {"/proc/self/fd", "fd"},       {"/proc/self/fd/0", "stdin"},
                {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
                {"/proc/kcore", "core"},
        };
        for (size_t i = 0; i < CC_ARRAY_SIZE(links); i++)
                if (symlinkat(links[i][0], devfd, links[i][1]) < 0 && errno != EEXIST)
                        return agent__child_fail(e, errno, "symlink /dev/%s", links[i][1]);
        if (has_mount(s, "/dev/pts")) {
                /* ptmx of the container's own devpts instance. */
                (void)unlinkat(devfd, "ptmx", 0);
                if (symlinkat("pts/ptmx", devfd, "ptmx") < 0)
                        return agent__child_fail(e, errno, "symlink /dev/ptmx");
        }
        return 0;
}

/* The spec's block devices (storage/devices.c): the guest's node bind-mounted at the
 * container's path, as the standard devices are. A node the container makes with mknod stays
 * unusable (nodev); the disk's own read-only flag holds for the bound node too. */
static int setup_devices(int rootfd, const struct agent_spec *s, struct agent_child_error *e)
{
        for (size_t i = 0; i < s->n_devices; i++) {
                const struct agent_device *d = &s->devices[i];
                struct stat st;
                char dst[32];
                if (lstat(d->source, &st) < 0 || !S_ISBLK(st.st_mode))
                        return agent__child_fail(e, ENODEV, "%s is not a block device", d->source);
                _cleanup_close_ int fd = mkpath_in_root(rootfd, d->path, true);
                if (fd < 0)
                        return agent__child_fail(e, -fd, "create %s", d->path);
                fdpath(dst, fd);
                if (mount(d->source, dst, NULL, MS_BIND, NULL) < 0)
                        return agent__child_fail(e, errno, "bind %s on %s", d->source, d->path);
        }
        return 0;
}

/* Opens a masked or read-only path of the spec (O_PATH) and gives its /proc/self/fd link in
 * target; -ENOENT (with nothing in e) when it does not exist. */
static int open_listed_path(const char *path, const char *what, char target[32],
                            struct agent_child_error *e)
{
        int fd = open(path, O_PATH | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? -ENOENT : agent__child_fail(e, errno, "%s %s", what, path);
        fdpath(target, fd);
        return fd;
}

/* Masked paths: an empty read-only tmpfs over a directory, /dev/null over a file. Missing
 * paths are fine (the kernel may not have them). Runs after pivot_root: '/' is the rootfs. */
static int mask_path(const char *path, struct agent_child_error *e)
{
        char target[32];
        _cleanup_close_ int fd = open_listed_path(path, "masked path", target, e);
        if (fd < 0)
                return fd == -ENOENT ? 0 : fd;
        int r = is_dir_fd(fd) ? mount("tmpfs", target, "tmpfs", MS_RDONLY, "size=0k")
                              : mount("/dev/null", target, NULL, MS_BIND, NULL);
        return r < 0 ? agent__child_fail(e, errno, "mask %s", path) : 0;
}

static int readonly_path(const char *path, struct agent_child_error *e)
{
        char target[32];
        _cleanup_close_ int fd = open_listed_path(path, "readonly path", target, e);
        if (fd < 0)
                return fd == -ENOENT ? 0 : fd;
        if (mount(target, target, NULL, MS_BIND | MS_REC, NULL) < 0)
                return agent__child_fail(e, errno, "bind %s", path);
        _cleanup_close_ int nfd = open(path, O_PATH | O_CLOEXEC);
        if (nfd < 0)
                return agent__child_fail(e, errno, "reopen %s", path);
        fdpath(target, nfd);
        if (mount(NULL, target, NULL,
                  MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                return agent__child_fail(e, errno, "remount %s read-only", path);
        return 0;
}

int agent__rootfs_setup(const struct agent_spec *s, int rootfd_in, const int *bind_fds,
                        struct agent_child_error *e)
{
        char path[4096], link[32];
        /* Nothing we mount may propagate back to the guest's namespace. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return agent__child_fail(e, errno, "make / private");
        fdpath(link, rootfd_in);
        ssize_t n = readlink(link, path, sizeof(path) - 1);
        if (n < 0)
                return agent__child_fail(e, errno, "readlink rootfs");
        path[n] = '\0';
        /* pivot_root needs the new root to be a mount point. */
        if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
                return agent__child_fail(e, errno, "bind rootfs %s", path);
        /*
         * Device isolation without a device cgroup: the rootfs and every file system the spec
         * mounts (devpts excepted) are nodev, so a node made with mknod (CAP_MKNOD is in
         * common default capability sets) cannot be opened, e.g. to read the guest's disks
         * or another container's decrypted storage. The standard devices in /dev are bind
         * mounts of the guest's own nodes, which keep their source mount's flags and work.
         */
        if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_NODEV | MS_NOSUID, NULL) < 0 &&
            mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_NODEV, NULL) < 0)
                return agent__child_fail(e, errno, "make rootfs nodev");
        if (chdir(path) < 0)
                return agent__child_fail(e, errno, "chdir rootfs");
        _cleanup_close_ int rootfd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return agent__child_fail(e, errno, "open rootfs");
        int r;
        for (size_t i = 0; i < s->n_mounts; i++)
                if ((r = mount_one(rootfd, &s->mounts[i], bind_fds[i], e)) < 0)
                        return r;
        if ((r = setup_dev(rootfd, s, e)) < 0 || (r = setup_devices(rootfd, s, e)) < 0)
                return r;
        if (fchdir(rootfd) < 0)
                return agent__child_fail(e, errno, "fchdir rootfs");
        /* pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves
         * only the rootfs, without needing a directory for the old root inside it. */
        if (syscall(SYS_pivot_root, ".", ".") < 0)
                return agent__child_fail(e, errno, "pivot_root");
        if (umount2(".", MNT_DETACH) < 0)
                return agent__child_fail(e, errno, "detach old root");
        if (chdir("/") < 0)
                return agent__child_fail(e, errno, "chdir /");
        for (char **p = s->masked_paths; p && *p; p++)
                if ((r = mask_path(*p, e)) < 0)
                        return r;
        for (char **p = s->readonly_paths; p && *p; p++)
                if ((r = readonly_path(*p, e)) < 0)
                        return r;
        if (s->root_readonly && mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
                return agent__child_fail(e, errno, "remount / read-only");
        return 0;
}
