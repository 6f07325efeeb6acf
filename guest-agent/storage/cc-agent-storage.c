/*
 * cc-agent-storage: the pod's trusted ephemeral storage, made by the agent at boot
 * (guest-agent/storage/trusted-storage.c) in a helper process, as the pull is: libcryptsetup has no
 * static archive in Debian 12 (nor do its libdevmapper, libargon2 and libblkid dependencies
 * all), so the static agent cannot link it; the helper is dynamically linked and its libraries
 * come from the guest image's library squashfs. It runs once per boot.
 *
 *   cc-agent-storage DEVICE NAME MOUNTPOINT [integrity]
 *
 * formats DEVICE as LUKS2 (aes-xts-plain64, a 512-bit key, 4096-byte sectors; with
 * "integrity", dm-integrity with hmac(sha256) under it, whose 256-bit key follows the
 * encryption key) with a key read from the kernel's random generator here and never written
 * anywhere (no keyslot: the volume is activated with the key itself, and the key is gone when
 * this process ends, so the data is unreadable after the VM stops), activates it as
 * /dev/mapper/NAME, makes ext4 on it with e2fsprogs' mke2fs (MKE2FS below: writing ext4 through
 * libext2fs would mean re-implementing mke2fs's layout code, libext2fs has no mkfs call) and
 * mounts it on MOUNTPOINT. The host sees only ciphertext (and the LUKS2 header).
 *
 * The result is one line on stdout: "0 <what was made>" (read back from the active mapping),
 * or "<errno> <message>". Diagnostics go to stderr (the guest console).
 *
 *   cc-agent-storage status NAME
 *
 * shows the active mapping as `cryptsetup status` does (type, cipher, key size, device, sector
 * size, offset, size, mode), the kernel's own dm table for it, and the mounts on it and the
 * overlays whose layers are there: the evidence a test reads through the debug console.
 */
#include <errno.h>
#include <fcntl.h>
#include <libcryptsetup.h>
#include <linux/dm-ioctl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MKE2FS     "/usr/libexec/cc-agent/mke2fs"
#define KEY_BYTES  64 /* aes-xts-plain64 with AES-256: two 256-bit keys */
#define HMAC_BYTES 32 /* hmac(sha256) for dm-integrity */

extern char **environ;

static int result(int e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int result(int e, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        printf("%d ", e);
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
        fflush(stdout);
        return e ? 1 : 0;
}

static void log_cb(int level, const char *msg, void *usrptr)
{
        (void)usrptr;
        /* Errors only: the small keyslot area's warning is expected (no keyslot is used). */
        if (level == CRYPT_LOG_ERROR)
                fprintf(stderr, "cc-agent-storage: libcryptsetup: %s", msg);
}

static int fill_random(unsigned char *buf, size_t n)
{
        for (size_t off = 0; off < n;) {
                ssize_t k = getrandom(buf + off, n - off, 0);
                if (k < 0 && errno != EINTR)
                        return -errno;
                if (k > 0)
                        off += (size_t)k;
        }
        return 0;
}

/*
 * The mapping as the kernel runs it: its crypt target line (DM_TABLE_STATUS), reduced to the
 * cipher, the key size (counted, never copied: with the kernel keyring the line names the key
 * as ":<bytes>:logon:<description>", without it the key is there in hex) and the sector size.
 */
static int dm_crypt_table(const char *name, char *cipher, size_t clen, unsigned *key_bits,
                          unsigned *sector)
{
        union {
                struct dm_ioctl io;
                char buf[16384];
        } u;
        memset(&u, 0, sizeof(u));
        u.io.version[0] = DM_VERSION_MAJOR;
        u.io.version[1] = 0;
        u.io.version[2] = 0;
        u.io.data_size = sizeof(u);
        u.io.data_start = sizeof(struct dm_ioctl);
        u.io.flags = DM_STATUS_TABLE_FLAG;
        snprintf(u.io.name, sizeof(u.io.name), "%s", name);
        int fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = ioctl(fd, DM_TABLE_STATUS, &u.io) < 0 ? -errno : 0;
        close(fd);
        if (r < 0)
                return r;
        if (u.io.target_count != 1 || (u.io.flags & DM_BUFFER_FULL_FLAG))
                return -EIO;
        struct dm_target_spec *t = (void *)(u.buf + u.io.data_start);
        char *params = (char *)(t + 1);
        u.buf[sizeof(u.buf) - 1] = '\0';
        if (strcmp(t->target_type, "crypt") != 0)
                return -EIO;
        /* <cipher> <key> <iv_offset> <device> <offset> [<#opt> <opt>...] */
        char *save = NULL, *c = strtok_r(params, " ", &save), *k = strtok_r(NULL, " ", &save);
        if (!c || !k)
                return -EIO;
        snprintf(cipher, clen, "%s", c);
        *key_bits = k[0] == ':' ? (unsigned)strtoul(k + 1, NULL, 10) * 8 : (unsigned)strlen(k) * 4;
        explicit_bzero(k, strlen(k));
        *sector = 512;
        for (char *o; (o = strtok_r(NULL, " ", &save));)
                if (strncmp(o, "sector_size:", 12) == 0)
                        *sector = (unsigned)strtoul(o + 12, NULL, 10);
        explicit_bzero(u.buf, sizeof(u.buf));
        return 0;
}

static long long now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int run_mke2fs(const char *dev)
{
        char *argv[] = {(char *)MKE2FS,
                        "-q",
                        "-F",
                        "-t",
                        "ext4",
                        "-m",
                        "0",
                        "-E",
                        "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
                        (char *)dev,
                        NULL};
        pid_t pid;
        int r = posix_spawn(&pid, MKE2FS, NULL, NULL, argv, environ);
        if (r)
                return -r;
        int st;
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

/* The mounts of the mapping (by device number) and the overlays with a layer below them. */
static void show_mounts(dev_t dev)
{
        FILE *f = fopen("/proc/self/mountinfo", "re");
        char line[4096], mps[8][256];
        unsigned n_mps = 0;
        if (!f)
                return;
        /* Two passes: first where the mapping is mounted, then who uses those places. */
        for (int pass = 0; pass < 2; pass++) {
                rewind(f);
                while (fgets(line, sizeof(line), f)) {
                        unsigned ma, mi;
                        char mp[256], *sep = strstr(line, " - ");
                        if (!sep || sscanf(line, "%*u %*u %u:%u %*s %255s", &ma, &mi, mp) != 3)
                                continue;
                        bool on_dev = makedev(ma, mi) == dev;
                        if (pass == 0 && on_dev && n_mps < 8) {
                                snprintf(mps[n_mps++], sizeof(mps[0]), "%s", mp);
                                line[strcspn(line, "\n")] = '\0';
                                printf("  mounted: %s (%s)\n", mp, sep + 3);
                        }
                        if (pass == 0 || on_dev || strncmp(sep + 3, "overlay ", 8) != 0)
                                continue;
                        for (unsigned k = 0; k < n_mps; k++) {
                                char key[300];
                                snprintf(key, sizeof(key), "%s/", mps[k]);
                                if (strstr(sep, key)) {
                                        printf("  overlay with layers on it: %s\n", mp);
                                        break;
                                }
                        }
                }
        }
        fclose(f);
}

/* `cryptsetup status NAME`, from libcryptsetup and the kernel's table. */
static int status(const char *name)
{
        struct crypt_device *cd = NULL;
        int r = crypt_init_by_name(&cd, name);
        if (r < 0) {
                printf("%s/%s is inactive (%s).\n", crypt_get_dir(), name, strerror(-r));
                return 1;
        }
        struct crypt_active_device cad = {0};
        char mapped[256];
        snprintf(mapped, sizeof(mapped), "%s/%s", crypt_get_dir(), name);
        (void)crypt_get_active_device(cd, name, &cad);
        printf("%s is active.\n", mapped);
        printf("  type:    %s\n", crypt_get_type(cd) ? crypt_get_type(cd) : "n/a");
        printf("  cipher:  %s-%s\n", crypt_get_cipher(cd), crypt_get_cipher_mode(cd));
        /* Without a keyslot libcryptsetup cannot tell the key size: the kernel's table can. */
        char cipher[128];
        unsigned key_bits = 0, sector = 0;
        int t = dm_crypt_table(name, cipher, sizeof(cipher), &key_bits, &sector);
        int kb = crypt_get_volume_key_size(cd) > 0 ? crypt_get_volume_key_size(cd) * 8
                                                   : (int)key_bits;
        printf("  keysize: %d bits\n", kb);
        struct crypt_params_integrity ip = {0};
        bool integ = crypt_get_integrity_info(cd, &ip) == 0 && ip.integrity;
        printf("  integrity: %s\n", integ ? ip.integrity : "none");
        printf("  device:  %s\n", crypt_get_device_name(cd));
        printf("  sector size:  %d\n", crypt_get_sector_size(cd));
        printf("  offset:  %llu sectors\n", (unsigned long long)cad.offset);
        printf("  size:    %llu sectors\n", (unsigned long long)cad.size);
        printf("  mode:    %s\n", cad.flags & CRYPT_ACTIVATE_READONLY ? "readonly" : "read/write");
        printf("  label:   %s\n", crypt_get_label(cd) ? crypt_get_label(cd) : "");
        crypt_free(cd);
        if (t == 0)
                printf("  kernel's table: crypt %s, %u-bit key, sector_size %u\n", cipher, key_bits,
                       sector);
        struct stat st;
        if (stat(mapped, &st) == 0)
                show_mounts(st.st_rdev);
        fflush(stdout);
        return 0;
}

int main(int argc, char **argv)
{
        if (argc == 3 && strcmp(argv[1], "status") == 0)
                return status(argv[2]);
        if (argc < 4 || argc > 5 || (argc == 5 && strcmp(argv[4], "integrity") != 0))
                return result(EINVAL,
                              "usage: cc-agent-storage DEVICE NAME MOUNTPOINT [integrity] | "
                              "status NAME");
        const char *dev = argv[1], *name = argv[2], *mp = argv[3];
        bool integrity = argc == 5;
        size_t keylen = KEY_BYTES + (integrity ? HMAC_BYTES : 0);
        unsigned char key[KEY_BYTES + HMAC_BYTES];
        int r = fill_random(key, keylen);
        if (r < 0)
                return result(-r, "getrandom: %s", strerror(-r));
        crypt_set_log_callback(NULL, log_cb, NULL);
        long long t0 = now_ms();
        struct crypt_device *cd = NULL;
        if ((r = crypt_init(&cd, dev)) < 0) {
                explicit_bzero(key, sizeof(key));
                return result(-r, "crypt_init %s: %s", dev, strerror(-r));
        }
        /* No keyslot is ever added: the PBKDF is named only so that nothing is benchmarked. */
        struct crypt_pbkdf_type pbkdf = {.type = CRYPT_KDF_PBKDF2,
                                         .hash = "sha256",
                                         .iterations = 1000,
                                         .flags = CRYPT_PBKDF_NO_BENCHMARK};
        struct crypt_params_luks2 params = {
                .pbkdf = &pbkdf,
                .integrity = integrity ? "hmac(sha256)" : NULL,
                .sector_size = 4096,
                .label = "cc-trusted-store",
        };
        /* The smallest LUKS2 header (2 x 16 KiB of metadata, one 4 KiB page for keyslots,
         * which stays unused): the default 16 MiB keyslot area is zeroed at every boot. */
        r = crypt_set_metadata_size(cd, 16384, 4096);
        if (r == 0)
                r = crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64", NULL, (const char *)key,
                                 keylen, &params);
        if (r == 0)
                r = crypt_activate_by_volume_key(cd, name, (const char *)key, keylen,
                                                 integrity ? CRYPT_ACTIVATE_NO_JOURNAL : 0);
        explicit_bzero(key, sizeof(key));
        if (r < 0) {
                crypt_free(cd);
                return result(-r, "LUKS2 on %s: %s", dev, strerror(-r));
        }
        char mapped[256];
        snprintf(mapped, sizeof(mapped), "%s/%s", crypt_get_dir(), name);
        /* dm-integrity's tags are not initialised: every sector must be written once before
         * it can be read (mke2fs reads some). */
        if (integrity &&
            (r = crypt_wipe(cd, mapped, CRYPT_WIPE_ZERO, 0, 0, 1 << 20, 0, NULL, NULL)) < 0) {
                crypt_free(cd);
                return result(-r, "wipe %s: %s", mapped, strerror(-r));
        }
        crypt_free(cd);
        cd = NULL;
        /* What the kernel runs, read back from the active mapping (the test hook's evidence). */
        if ((r = crypt_init_by_name(&cd, name)) < 0)
                return result(-r, "crypt_init_by_name %s: %s", name, strerror(-r));
        struct stat st;
        char what[512], cipher[128];
        unsigned key_bits = 0, sector = 0;
        if ((r = dm_crypt_table(name, cipher, sizeof(cipher), &key_bits, &sector)) < 0) {
                crypt_free(cd);
                return result(-r, "reading the dm table of %s: %s", name, strerror(-r));
        }
        snprintf(what, sizeof(what),
                 "%s %s, kernel's table: %s volume key %u bits, sector size %u, integrity %s, %s "
                 "(%u:%u) on %s",
                 crypt_get_type(cd) ? crypt_get_type(cd) : "?",
                 crypt_get_uuid(cd) ? crypt_get_uuid(cd) : "?", cipher, key_bits, sector,
                 integrity ? "hmac(sha256)" : "none", mapped,
                 stat(mapped, &st) == 0 ? major(st.st_rdev) : 0,
                 stat(mapped, &st) == 0 ? minor(st.st_rdev) : 0, dev);
        crypt_free(cd);
        long long t1 = now_ms();
        if ((r = run_mke2fs(mapped)) < 0)
                return result(-r, "mke2fs -t ext4 %s: %s", mapped, strerror(-r));
        long long t2 = now_ms();
        if (mkdir(mp, 0755) < 0 && errno != EEXIST)
                return result(errno, "mkdir %s: %s", mp, strerror(errno));
        if (mount(mapped, mp, "ext4", MS_NODEV, NULL) < 0)
                return result(errno, "mount %s on %s: %s", mapped, mp, strerror(errno));
        return result(0, "%s, ext4 on %s (LUKS2 %lld ms, mke2fs %lld ms, mount %lld ms)", what, mp,
                      t1 - t0, t2 - t1, now_ms() - t2);
}
