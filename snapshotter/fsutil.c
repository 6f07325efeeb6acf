/* Directory helpers: recursive removal, disk usage, mkdir -p. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cc/cleanup.h"

#include "snapshotter/snap.h"

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
        int r = type == FTW_DP ? rmdir(path) : unlink(path);
        if (r < 0 && errno != ENOENT)
                return errno;
        return 0;
}

int snap_rm_rf(const char *path)
{
        /* FTW_MOUNT: never descend into something mounted below (a leaked rootfs mount must
         * make removal fail, not delete the files of whatever is mounted there). */
        int r = nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
        if (r < 0)
                return errno == ENOENT ? 0 : -errno;
        return r > 0 ? -r : 0;
}

struct hardlink {
        dev_t dev;
        ino_t ino;
        blkcnt_t blocks;
};

/* nftw has no user pointer; the walk is run under a lock-free per-thread state. */
static __thread struct du_state {
        int64_t size;
        int64_t inodes;
        struct hardlink *links;
        size_t n_links, cap_links;
        bool oom;
} * du;

static int du_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
        if (type == FTW_NS)
                return 0;
        if (st->st_nlink > 1 && !S_ISDIR(st->st_mode)) {
                /* Counted once per inode, after the walk. */
                if (du->n_links == du->cap_links) {
                        size_t cap = du->cap_links ? du->cap_links * 2 : 64;
                        struct hardlink *n = realloc(du->links, cap * sizeof(*n));
                        if (!n) {
                                du->oom = true;
                                return 1;
                        }
                        du->links = n;
                        du->cap_links = cap;
                }
                du->links[du->n_links++] = (struct hardlink){st->st_dev, st->st_ino, st->st_blocks};
                return 0;
        }
        du->size += (int64_t)st->st_blocks * 512;
        du->inodes++;
        return 0;
}

static int cmp_link(const void *a, const void *b)
{
        const struct hardlink *x = a, *y = b;
        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        if (x->ino != y->ino)
                return x->ino < y->ino ? -1 : 1;
        return 0;
}

int snap_disk_usage(const char *path, int64_t *ret_size, int64_t *ret_inodes)
{
        /* As containerd's fs.DiskUsage: st_blocks * 512 for every distinct inode, the root
         * directory included. */
        struct du_state state = {0};
        du = &state;
        int r = nftw(path, du_one, 16, FTW_PHYS);
        du = NULL;
        if (r < 0 || state.oom) {
                free(state.links);
                return state.oom ? -ENOMEM : -errno;
        }
        if (state.n_links)
                qsort(state.links, state.n_links, sizeof(*state.links), cmp_link);
        for (size_t i = 0; i < state.n_links; i++) {
                if (i && cmp_link(&state.links[i], &state.links[i - 1]) == 0)
                        continue;
                state.size += (int64_t)state.links[i].blocks * 512;
                state.inodes++;
        }
        free(state.links);
        *ret_size = state.size;
        *ret_inodes = state.inodes;
        return 0;
}

