/*
 * The pull helper's shared libraries in the guest image built for cc-agent-static: a squashfs
 * image in the initrd (guest-agent/build-guest-image.sh), mounted read-only on
 * /lib/x86_64-linux-gnu the first time the agent starts the helper. The kernel then copies
 * 7 MB of compressed image at boot instead of unpacking 19 MB of libraries, and the pages are
 * decompressed only when the helper maps them (bench/agent-results.md).
 *
 * Only PID 1 mounts it: an agent run on a host (the tests) must never cover the host's
 * libraries, and without the image (a dynamic agent's guest image keeps its libraries in the
 * initrd) there is nothing to do.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/error.h"
#include "cc/log.h"

#include "guest-agent/agent.h"
#include "guest-agent/image-pull.h"

#define PULL_LIBS_IMAGE   "/usr/lib/cc-agent/pull-libs.squashfs"
#define PULL_LIBS_DIR     "/lib/x86_64-linux-gnu"
#define PULL_MODULES_LIST "/etc/cc-agent/modules.pull"

static pthread_mutex_t libs_lock = PTHREAD_MUTEX_INITIALIZER;
static bool libs_mounted;

/* Attaches IMAGE to a free loop device, read-only, detached again when its mount goes;
 * returns the open loop device and its path. */
static int loop_attach(int image, char *dev, size_t devlen, struct cc_error **err)
{
        _cleanup_close_ int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
        if (ctl < 0)
                return cc_error_set(err, errno, "/dev/loop-control: %m");
        /* Another process may take the free device between the two calls: then ask again. */
        for (int tries = 0; tries < 8; tries++) {
                int n = ioctl(ctl, LOOP_CTL_GET_FREE);
                if (n < 0)
                        return cc_error_set(err, errno, "no free loop device: %m");
                snprintf(dev, devlen, "/dev/loop%d", n);
                _cleanup_close_ int fd = open(dev, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return cc_error_set(err, errno, "%s: %m", dev);
                struct loop_config cfg = {
                        .fd = (unsigned)image,
                        .info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR,
                };
                if (ioctl(fd, LOOP_CONFIGURE, &cfg) == 0)
                        return TAKE_FD(fd);
                if (errno != EBUSY)
                        return cc_error_set(err, errno, "attach %s to %s: %m", PULL_LIBS_IMAGE,
                                            dev);
        }
        return cc_error_set(err, EBUSY, "attach %s: every free loop device was taken",
                            PULL_LIBS_IMAGE);
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int mount_locked(struct cc_error **err)
{
        int64_t t0 = now_ms();
        int n = agent_load_modules(PULL_MODULES_LIST);
        if (n < 0)
                cc_log_errno(CC_LOG_WARN, -n, "reading %s", PULL_MODULES_LIST);
        _cleanup_close_ int image = open(PULL_LIBS_IMAGE, O_RDONLY | O_CLOEXEC);
        if (image < 0)
                return cc_error_set(err, errno, "%s: %m", PULL_LIBS_IMAGE);
        char dev[32];
        _cleanup_close_ int loop = loop_attach(image, dev, sizeof(dev), err);
        if (loop < 0)
                return loop;
        if (mount(dev, PULL_LIBS_DIR, "squashfs", MS_RDONLY | MS_NODEV | MS_NOSUID, NULL) < 0)
                return cc_error_set(err, errno, "mount %s (%s) on %s: %m", PULL_LIBS_IMAGE, dev,
                                    PULL_LIBS_DIR);
        cc_log_info("pull helper libraries: %s mounted on %s (%lld ms)", PULL_LIBS_IMAGE,
                    PULL_LIBS_DIR, (long long)(now_ms() - t0));
        return 0;
}

int agent_pull_libs_mount(struct cc_error **err)
{
        if (getpid() != 1 || access(PULL_LIBS_IMAGE, F_OK) < 0)
                return 0;
        pthread_mutex_lock(&libs_lock);
        int r = libs_mounted ? 0 : mount_locked(err);
        if (r == 0)
                libs_mounted = true;
        pthread_mutex_unlock(&libs_lock);
        return r;
}
