/*
 * PID 1 duties in the guest: the API file systems, cgroup v2 with its controllers enabled, the
 * loopback interface, the kernel modules the image ships, and a clean power-off.
 */
#include <fcntl.h>
#include <linux/reboot.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/log.h"
#include "cc/macro.h"

#include "guest-agent/agent.h"

/* Ordered list of module files (relative to /lib/modules/<release>/), written by the image
 * builder in dependency order. */
#define MODULES_LIST "/etc/cc-agent/modules"

static void mnt(const char *src, const char *dst, const char *type, unsigned long flags,
                const char *data)
{
        (void)mkdir(dst, 0755);
        if (mount(src, dst, type, flags, data) < 0 && errno != EBUSY)
                cc_log_errno(CC_LOG_WARN, errno, "mount %s on %s", type, dst);
}

static void console_stdio(void)
{
        int fd = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return;
        for (int i = 0; i < 3; i++)
                if (fcntl(i, F_GETFD) < 0)
                        dup2(fd, i);
        if (fd > 2)
                close(fd);
}

int agent_load_modules(const char *list)
{
        struct utsname u;
        if (uname(&u) < 0)
                return -errno;
        _cleanup_fclose_ FILE *f = fopen(list, "re");
        if (!f)
                return errno == ENOENT ? 0 : -errno;
        char line[512];
        int loaded = 0;
        while (fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = '\0';
                if (!line[0] || line[0] == '#')
                        continue;
                char path[800];
                snprintf(path, sizeof(path), "/lib/modules/%s/%s", u.release, line);
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                        cc_log_errno(CC_LOG_WARN, errno, "module %s", path);
                        continue;
                }
                if (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)
                        cc_log_errno(CC_LOG_WARN, errno, "load module %s", line);
                else
                        loaded++;
        }
        return loaded;
}

static void loopback_up(void)
{
        _cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr = {0};
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
        if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
                return;
        ifr.ifr_flags |= IFF_UP;
        (void)ioctl(s, SIOCSIFFLAGS, &ifr);
}

static void enable_controllers(void)
{
        static const char *const ctrls[] = {"+cpu", "+memory", "+pids", "+cpuset", "+io"};
        for (size_t i = 0; i < CC_ARRAY_SIZE(ctrls); i++) {
                _cleanup_close_ int fd =
                        open("/sys/fs/cgroup/cgroup.subtree_control", O_WRONLY | O_CLOEXEC);
                if (fd >= 0)
                        (void)!write(fd, ctrls[i], strlen(ctrls[i]));
        }
}

/*
 * The initramfs root ("rootfs") is the one mount without a parent, and pivot_root(2) refuses
 * to move it (EINVAL), which containers need to leave the guest's tree entirely. Bind-mount it
 * onto itself and move that over "/": the root is then a mount with a parent and pivot_root
 * works, without copying the image (switch_root's approach).
 */
static void leave_rootfs(void)
{
        if (mkdir("/.root", 0700) < 0 && errno != EEXIST)
                return;
        if (mount("/", "/.root", NULL, MS_BIND | MS_REC, NULL) < 0 || chdir("/.root") < 0 ||
            mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0)
                cc_log_errno(CC_LOG_WARN, errno, "init: cannot leave the initramfs root");
}

int agent_init_setup(void)
{
        leave_rootfs();
        mnt("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
        console_stdio();
        mnt("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
        mnt("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
        mnt("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=620,ptmxmode=666");
        mnt("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
        mnt("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
        mnt("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
        mnt("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, "nsdelegate");
        enable_controllers();
        int n = agent_load_modules(MODULES_LIST);
        if (n < 0)
                cc_log_errno(CC_LOG_WARN, -n, "reading %s", MODULES_LIST);
        loopback_up();
        cc_log_info("init: file systems mounted, %d kernel modules loaded", n < 0 ? 0 : n);
        return 0;
}

void agent_init_poweroff(void)
{
        cc_log_info("powering off");
        sync();
        reboot(RB_POWER_OFF);
        /* reboot() returns only on failure; init must never exit (the kernel would panic). */
        for (;;)
                pause();
}
