/*
 * The pull helper's confinement. It parses what a registry sends (manifests, configs, gzip/zstd
 * streams, tar, JWE), and in the confidential-containers threat model the registry traffic
 * passes through an untrusted host. So before it reads its request the helper keeps only the
 * capabilities an unpack with owners and the rootfs mount need, and a seccomp filter refuses
 * what no pull does: loading kernel modules, kexec, reboot, BPF, ptrace and friends, keyrings,
 * clock and swap changes, namespaces. A bug in the parsers then cannot reach those from the
 * helper, which runs as root in the VM like the agent that starts it.
 */
#include <errno.h>
#include <seccomp.h>
#include <stdint.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include "cc/error.h"
#include "cc/macro.h"

#include "guest-agent/pull/confine.h"

/* Unpacking as the image says (chown, setuid/setgid bits kept, device and whiteout nodes,
 * file capabilities and trusted.* xattrs), reading any file of the store, and mounting the
 * container's rootfs overlay. */
static const cap_value_t keep[] = {
        CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER,
        CAP_FSETID, CAP_MKNOD,       CAP_SETFCAP,         CAP_SYS_ADMIN,
};

static const char *const denied[] = {
        "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
        "reboot", "bpf", "perf_event_open", "process_vm_readv", "process_vm_writev",
#ifndef __SANITIZE_ADDRESS__
        /* LeakSanitizer stops the world with ptrace at exit. */
        "ptrace",
#endif
        "add_key", "request_key", "keyctl", "swapon", "swapoff", "settimeofday",
        "clock_settime", "clock_adjtime", "adjtimex", "setns", "unshare", "pivot_root",
        "open_by_handle_at", "iopl", "ioperm", "acct", "quotactl", "syslog", "userfaultfd",
        "fanotify_init", "lookup_dcookie", "vhangup", "personality",
};

uint64_t pull_confine_caps(void)
{
        uint64_t m = 0;
        for (size_t i = 0; i < CC_ARRAY_SIZE(keep); i++)
                m |= 1ULL << keep[i];
        return m;
}

static int drop_caps(struct cc_error **err)
{
        uint64_t m = pull_confine_caps();
        int last = (int)cap_max_bits() - 1;
        if (last < 0 || last > 63)
                last = CAP_LAST_CAP;
        for (int c = 0; c <= last; c++)
                if (!(m & (1ULL << c)) && cap_drop_bound(c) < 0 && errno != EINVAL)
                        return cc_error_set(err, errno, "drop capability %d from the bounding set",
                                            c);
        cap_t caps = cap_init();
        if (!caps)
                return -ENOMEM;
        int r = cap_set_flag(caps, CAP_EFFECTIVE, CC_ARRAY_SIZE(keep), keep, CAP_SET);
        if (r == 0)
                r = cap_set_flag(caps, CAP_PERMITTED, CC_ARRAY_SIZE(keep), keep, CAP_SET);
        if (r == 0)
                r = cap_set_proc(caps);
        int saved = errno;
        cap_free(caps);
        if (r < 0)
                return cc_error_set(err, saved, "set capabilities: %m");
        (void)cap_reset_ambient();
        return 0;
}

static void seccomp_done(scmp_filter_ctx *ctx)
{
        if (*ctx)
                seccomp_release(*ctx);
}

static int load_filter(struct cc_error **err)
{
        _cleanup_(seccomp_done) scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
                return cc_error_set(err, ENOMEM, "seccomp_init");
        for (size_t i = 0; i < CC_ARRAY_SIZE(denied); i++) {
                int nr = seccomp_syscall_resolve_name(denied[i]);
                if (nr == __NR_SCMP_ERROR)
                        continue; /* not on this architecture */
                int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
                if (r < 0)
                        return cc_error_set(err, -r, "seccomp rule for %s", denied[i]);
        }
        int r = seccomp_load(ctx);
        return r < 0 ? cc_error_set(err, -r, "load the seccomp filter") : 0;
}

int pull_confine(struct cc_error **err)
{
        /* Also what lets an unprivileged-at-that-point process load the filter. */
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return cc_error_set(err, errno, "PR_SET_NO_NEW_PRIVS: %m");
        int r = drop_caps(err);
        return r < 0 ? r : load_filter(err);
}
