/*
 * nydus-overlayfs: the host-side mount helper for the guest-pull rootfs mount.
 *
 * cc-snapshotter hands containerd one mount of type fuse.nydus-overlayfs for a container whose
 * image is pulled inside the VM (the shim, like Kata >= 3.3, recognises that type and never
 * mounts it on the host). Something on the host may still mount it, e.g. CRI resolving a named
 * USER through a temporary mount; containerd then runs `mount.fuse` which runs this program as
 *     nydus-overlayfs <source> <target> -o <options>
 * We drop the options only the guest understands (io.katacontainers.volume=, extraoption=)
 * and the FUSE generic ones, and perform an ordinary overlay mount of the (empty) placeholder
 * directories, so that host mount succeeds harmlessly.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

static const struct {
        const char *name;
        unsigned long set;
} flags[] = {
        {"ro", MS_RDONLY},
        {"rw", 0},
        {"nosuid", MS_NOSUID},
        {"suid", 0},
        {"nodev", MS_NODEV},
        {"dev", 0},
        {"noexec", MS_NOEXEC},
        {"exec", 0},
        {"noatime", MS_NOATIME},
        {"relatime", MS_RELATIME},
        {"sync", MS_SYNCHRONOUS},
        {"async", 0},
        {"defaults", 0},
        {"auto", 0},
        {"noauto", 0},
};

/* Appends the overlay-relevant options of a comma-separated list to data; folds flags. */
static int filter(const char *opts, char *data, size_t size, unsigned long *mflags)
{
        char *copy = strdup(opts);
        if (!copy)
                return -ENOMEM;
        char *save = NULL;
        for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
                if (strncmp(o, "io.katacontainers.", 18) == 0 ||
                    strncmp(o, "extraoption=", 12) == 0)
                        continue;
                bool flag = false;
                for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
                        if (strcmp(o, flags[i].name) == 0) {
                                *mflags |= flags[i].set;
                                flag = true;
                        }
                }
                if (flag)
                        continue;
                size_t len = strlen(data);
                if (len + strlen(o) + 2 > size) {
                        free(copy);
                        return -E2BIG;
                }
                if (len)
                        strcat(data, ",");
                strcat(data, o);
        }
        free(copy);
        return 0;
}

int main(int argc, char **argv)
{
        const char *source = NULL, *target = NULL;
        static char data[65536];
        unsigned long mflags = 0;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
                        int r = filter(argv[++i], data, sizeof(data), &mflags);
                        if (r < 0) {
                                fprintf(stderr, "nydus-overlayfs: options: %s\n", strerror(-r));
                                return 1;
                        }
                } else if (strncmp(argv[i], "-o", 2) == 0 && argv[i][2]) {
                        if (filter(argv[i] + 2, data, sizeof(data), &mflags) < 0)
                                return 1;
                } else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
                        i++; /* the subtype: ours */
                } else if (!source) {
                        source = argv[i];
                } else if (!target) {
                        target = argv[i];
                }
        }
        if (!source || !target) {
                fprintf(stderr, "usage: nydus-overlayfs <source> <target> -o <options>\n");
                return 2;
        }
        if (mount("overlay", target, "overlay", mflags, data) < 0) {
                fprintf(stderr, "nydus-overlayfs: mount overlay on %s (%s): %s\n", target, data,
                        strerror(errno));
                return 1;
        }
        return 0;
}
