/*
 * Trusted ephemeral storage: the pod's image layers, containers' writable layers and
 * default-medium emptyDirs on an encrypted disk instead of guest RAM.
 *
 * The shim attaches a scratch disk with a serial and names it on the kernel command line
 * (agent.trusted_storage=<serial>[,integrity], measured with the kernel in a TEE launch). At
 * boot the agent finds the disk by that serial in /sys/block/<dev>/serial (never by its order)
 * and runs cc-agent-storage (guest-agent/storage/), which formats it as LUKS2 with a key made
 * in the guest and never stored, makes ext4 and mounts it on AGENT_TRUSTED_STORAGE_DIR, the
 * parent of the image store, the containers area and the pod's volumes, before the agent
 * answers. Any failure stops the boot (a pod that asked for the disk must not fall back to RAM
 * silently). (Made in a thread while the agent answers, with the requests that need it waiting,
 * pod start was no faster under TCG with one vCPU: the guest's CPU is the bottleneck either
 * way, bench/README.md.)
 *
 * A disk can also come with a container: CreateContainer's Device at /dev/trusted_store
 * (devices.c, the release notes' pod). Containers may exist then, so it is mounted apart, on
 * AGENT_TRUSTED_LATE_DIR, and the pulls from then on keep their layers and writable layers
 * there (image-pull.c); DestroySandbox unmounts it and removes the mapping.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/dm-ioctl.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/fileio.h"
#include "cc/log.h"
#include "cc/macro.h"

#include "guest-agent/agent.h"
#include "guest-agent/image-pull.h"

#define STORAGE_HELPER "/usr/libexec/cc-agent/cc-agent-storage"
#define MAPPING_NAME   "cc-trusted-store"
#define FIND_WAIT_MS   10000

extern char **environ;

/* The guest image built for the dynamic agent has its libraries in place: nothing to mount
 * (variants/pull-libs.c has the static agent's definition). */
__attribute__((weak)) int agent_pull_libs_mount(struct cc_error **err)
{
        (void)err;
        return 0;
}

#define SERIAL_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

bool agent_serial_valid(const char *s)
{
        size_t n = s ? strlen(s) : 0;
        return n >= 1 && n <= 20 && strspn(s, SERIAL_CHARS) == n;
}

int agent_trusted_storage_parse(const char *spec, char *serial, size_t len, bool *integrity,
                                struct cc_error **err)
{
        const char *comma = strchr(spec, ',');
        size_t n = comma ? (size_t)(comma - spec) : strlen(spec);
        *integrity = false;
        if (comma && strcmp(comma + 1, "integrity") != 0)
                return cc_error_set(err, EINVAL,
                                    "agent.trusted_storage: unknown option '%.32s' (only "
                                    "'integrity')",
                                    comma + 1);
        *integrity = comma != NULL;
        if (n == 0 || n > 20 || n >= len || strspn(spec, SERIAL_CHARS) < n)
                return cc_error_set(err, EINVAL,
                                    "agent.trusted_storage: '%.32s' is not a disk serial (1-20 "
                                    "of [A-Za-z0-9._-])",
                                    spec);
        memcpy(serial, spec, n);
        serial[n] = '\0';
        return 0;
}

int agent_block_by_serial(const char *sys_block, const char *serial, char *name, size_t len)
{
        _cleanup_closedir_ DIR *d = opendir(sys_block);
        if (!d)
                return -errno;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                char path[512], buf[64];
                snprintf(path, sizeof(path), "%s/%s/serial", sys_block, de->d_name);
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                ssize_t k = read(fd, buf, sizeof(buf) - 1);
                if (k <= 0)
                        continue;
                buf[k] = '\0';
                buf[strcspn(buf, "\n")] = '\0';
                if (strcmp(buf, serial) == 0 && strlen(de->d_name) < len) {
                        snprintf(name, len, "%s", de->d_name);
                        return 0;
                }
        }
        return -ENOENT;
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the helper and returns its result line in *msg. The runtime's reaper reaps it (the
 * runtime runs by then): the result line, which the helper writes last, is all we wait for. */
static int run_helper(char *const argv[], char *msg, size_t len, struct cc_error **err)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return cc_error_set(err, errno, "pipe: %m");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
        pid_t pid;
        int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(p[1]);
        if (r) {
                close(p[0]);
                return cc_error_set(err, r, "start %s: %s", argv[0], strerror(r));
        }
        size_t off = 0;
        for (;;) {
                ssize_t k = read(p[0], msg + off, len - 1 - off);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                off += (size_t)k;
                if (off == len - 1 || memchr(msg + off - (size_t)k, '\n', (size_t)k))
                        break;
        }
        msg[off] = '\0';
        msg[strcspn(msg, "\n")] = '\0';
        close(p[0]);
        char *end = NULL;
        long e = strtol(msg, &end, 10);
        if (end == msg || e < 0 || e > 4095 || *end != ' ')
                return cc_error_set(err, EIO, "%s (pid %d) gave no result: '%.200s'", argv[0],
                                    (int)pid, msg);
        memmove(msg, end + 1, strlen(end + 1) + 1);
        if (e)
                return cc_error_set(err, (int)e, "%s", msg);
        return 0;
}

/* The helper on /dev/<name>: LUKS2 + ext4 mounted on mountpoint; its result line in msg. */
static int format_and_mount(const char *name, const char *mountpoint, bool integrity, char *msg,
                            size_t len, struct cc_error **err)
{
        int r;
        if ((r = agent_pull_libs_mount(err)) < 0)
                return cc_error_wrap(err, -r, "trusted storage: the helper's libraries");
        char dev[96];
        snprintf(dev, sizeof(dev), "/dev/%s", name);
        if ((r = cc_mkdir_p(mountpoint, 0755)) < 0)
                return cc_error_set(err, -r, "mkdir %s: %s", mountpoint, strerror(-r));
        char *argv[] = {(char *)STORAGE_HELPER,
                        dev,
                        (char *)MAPPING_NAME,
                        (char *)mountpoint,
                        integrity ? (char *)"integrity" : NULL,
                        NULL};
        if ((r = run_helper(argv, msg, len, err)) < 0)
                return cc_error_wrap(err, -r, "trusted storage on %s", dev);
        return 0;
}

int agent_trusted_storage_setup(const char *spec, const char *mountpoint, struct cc_error **err)
{
        char serial[32];
        bool integrity;
        int r = agent_trusted_storage_parse(spec, serial, sizeof(serial), &integrity, err);
        if (r < 0)
                return r;
        int64_t t0 = now_ms();
        /* virtio-blk probes asynchronously to PID 1's start: give it a moment. */
        struct agent_block b;
        if ((r = agent_block_wait("/sys/block", serial, FIND_WAIT_MS, &b, err)) < 0)
                return cc_error_wrap(err, -r, "trusted storage");
        int64_t found_ms = now_ms() - t0;
        char msg[1024];
        int64_t t1 = now_ms();
        if ((r = format_and_mount(b.name, mountpoint, integrity, msg, sizeof(msg), err)) < 0)
                return cc_error_wrap(err, -r, "serial %s", serial);
        cc_log_info("trusted storage: %s (disk found in %lld ms, helper %lld ms, %lld ms in all)",
                    msg, (long long)found_ms, (long long)(now_ms() - t1),
                    (long long)(now_ms() - t0));
        return 0;
}

int agent_trusted_storage_boot(struct agent *a, struct cc_error **err)
{
        int r = agent_trusted_storage_setup(a->cfg.trusted_storage, AGENT_TRUSTED_STORAGE_DIR, err);
        if (r == 0 && (r = agent_runtime_reopen_area(a->rt)) < 0)
                cc_error_set(err, -r, "the containers area on the trusted storage: %s",
                             strerror(-r));
        return r;
}

/* One device-mapper request on the mapping `name` (no library: the agent is static). */
static int dm_ioctl_name(unsigned long req, const char *name)
{
        struct dm_ioctl io = {
                .version = {DM_VERSION_MAJOR, 0, 0},
                .data_size = sizeof(io),
                .data_start = sizeof(io),
        };
        snprintf(io.name, sizeof(io.name), "%s", name);
        _cleanup_close_ int fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return ioctl(fd, req, &io) < 0 ? -errno : 0;
}

/* Removes the trusted storage's mappings (dm-crypt, then the dm-integrity one under it, which
 * libcryptsetup names <name>_dif) and checks that they are gone. */
static int dm_remove_trusted(void)
{
        static const char *const names[] = {MAPPING_NAME, MAPPING_NAME "_dif"};
        for (size_t i = 0; i < CC_ARRAY_SIZE(names); i++) {
                int r = dm_ioctl_name(DM_DEV_REMOVE, names[i]);
                if (r < 0 && r != -ENXIO)
                        return r;
                if ((r = dm_ioctl_name(DM_DEV_STATUS, names[i])) != -ENXIO)
                        return r < 0 ? r : -EBUSY;
        }
        return 0;
}

int agent_trusted_storage_attach(struct agent *a, const char *name, bool integrity,
                                 struct cc_error **err)
{
        pthread_mutex_lock(&a->lock);
        const char *had = a->cfg.trusted_storage ? "the boot's scratch disk" : a->trusted_disk;
        /* The same disk again: a restarted sidecar (a new container of the pod naming the
         * volume the first one named; the shim keeps the disk attached and sends its serial
         * again). The store stays as it is: formatting it again would lose the pod's layers. */
        bool same = had && !a->cfg.trusted_storage && cc_streq(had, name);
        if (!had)
                a->trusted_disk = strdup(name);
        bool oom = !had && !a->trusted_disk;
        pthread_mutex_unlock(&a->lock);
        if (same) {
                cc_log_info("%s on %s: the pod's trusted storage already (kept as it is)",
                            AGENT_TRUSTED_STORE_PATH, name);
                return 0;
        }
        if (had)
                return cc_error_set(err, EEXIST,
                                    "%s on %s: the pod already has trusted storage (%s)",
                                    AGENT_TRUSTED_STORE_PATH, name, had);
        if (oom)
                return -ENOMEM;
        char msg[1024];
        int64_t t0 = now_ms();
        int r = format_and_mount(name, AGENT_TRUSTED_LATE_DIR, integrity, msg, sizeof(msg), err);
        /* containers/ last: the pulls take the store when they see it (image-pull.c). */
        if (r == 0 && ((r = cc_mkdir_p(AGENT_TRUSTED_LATE_DIR "/image", 0700)) < 0 ||
                       (r = cc_mkdir_p(AGENT_TRUSTED_LATE_DIR "/containers", 0700)) < 0))
                cc_error_set(err, -r, "trusted storage: mkdir in %s: %s", AGENT_TRUSTED_LATE_DIR,
                             strerror(-r));
        if (r < 0) {
                /* A mount without its directories must not stay either. */
                (void)umount2(AGENT_TRUSTED_LATE_DIR, MNT_DETACH);
                dm_remove_trusted();
                pthread_mutex_lock(&a->lock);
                free(TAKE_PTR(a->trusted_disk));
                pthread_mutex_unlock(&a->lock);
                return r;
        }
        cc_log_info("trusted storage from %s: %s (%lld ms)", AGENT_TRUSTED_STORE_PATH, msg,
                    (long long)(now_ms() - t0));
        return 0;
}

/* The pulled rootfs of containers still there hold the file system through overlayfs'
 * private clones of its mount: an unmount would succeed and leave the mapping busy. (The
 * directory is closed on return, before the unmount.) */
static void release_pulled(struct agent *a)
{
        _cleanup_closedir_ DIR *d = opendir(AGENT_TRUSTED_LATE_DIR "/containers");
        for (struct dirent *de; d && (de = readdir(d));)
                if (de->d_name[0] != '.')
                        agent_image_release(a, de->d_name);
}

void agent_trusted_storage_close(struct agent *a)
{
        pthread_mutex_lock(&a->lock);
        _cleanup_free_ char *disk = TAKE_PTR(a->trusted_disk);
        pthread_mutex_unlock(&a->lock);
        if (!disk)
                return;
        release_pulled(a);
        /* A detached overlay lets its layers go a moment later: until then the file system is
         * busy. Wait for it as for the mapping below; in the end detach it, so that the
         * mapping can go once the last user let go. */
        int r;
        for (int i = 0;
             (r = umount2(AGENT_TRUSTED_LATE_DIR, 0) < 0 ? -errno : 0) == -EBUSY && i < 100; i++)
                poll(NULL, 0, 50);
        if (r == -EBUSY && umount2(AGENT_TRUSTED_LATE_DIR, MNT_DETACH) == 0)
                r = 0;
        if (r < 0 && r != -EINVAL)
                cc_log_errno(CC_LOG_WARN, -r, "trusted storage: unmount %s",
                             AGENT_TRUSTED_LATE_DIR);
        for (int i = 0; (r = dm_remove_trusted()) == -EBUSY && i < 100; i++)
                poll(NULL, 0, 50);
        if (r < 0)
                cc_log_errno(CC_LOG_WARN, -r, "trusted storage: the mapping %s on %s stays",
                             MAPPING_NAME, disk);
        else
                cc_log_info("trusted storage: %s unmounted, mapping %s on %s gone",
                            AGENT_TRUSTED_LATE_DIR, MAPPING_NAME, disk);
}
