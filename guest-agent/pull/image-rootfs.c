/*
 * The container directory a pull fills (<containers_dir>/<id>/{upper,work,rootfs}) and its
 * removal. Shared by the agent (RemoveContainer) and the pull code in either process, and free
 * of the pull library so that cc-agent-static links it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/fileio.h"
#include "cc/log.h"

#include "guest-agent/image-pull.h"

char *agent_container_path(const char *containers_dir, const char *id, const char *leaf)
{
        char *p = NULL;
        if (asprintf(&p, "%s/%s%s%s", containers_dir, id, leaf ? "/" : "", leaf ? leaf : "") < 0)
                return NULL;
        return p;
}

void agent_image_remove_rootfs(const char *containers_dir, const char *id)
{
        _cleanup_free_ char *rootfs = agent_container_path(containers_dir, id, "rootfs");
        if (!rootfs)
                return;
        /* Only what a pull made: a container without a pulled rootfs keeps its files. */
        if (umount2(rootfs, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
                cc_log_warn("unmount %s: %m", rootfs);
        /* The writable layer on trusted storage that came with a container (image-pull.h). */
        bool late = false;
        _cleanup_close_ int lbase =
                open(AGENT_TRUSTED_LATE_DIR "/containers", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (lbase >= 0 && faccessat(lbase, id, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
                late = true;
                int r = cc_rm_rf_at(lbase, id);
                if (r < 0)
                        cc_log_warn("remove %s/containers/%s: %s", AGENT_TRUSTED_LATE_DIR, id,
                                    strerror(-r));
        }
        _cleanup_close_ int base = open(containers_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (base < 0)
                return;
        _cleanup_close_ int cdir = openat(base, id, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cdir < 0 || (!late && faccessat(cdir, "upper", F_OK, AT_SYMLINK_NOFOLLOW) < 0))
                return;
        int r = cc_rm_rf_at(base, id);
        if (r < 0)
                cc_log_warn("remove %s/%s: %s", containers_dir, id, strerror(-r));
}
