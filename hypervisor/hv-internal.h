#pragma once
/*
 * What the backends share: the backend vtable, the common part of every VM, host facts, the
 * TEE profile table, a "reasons" accumulator for capability checks, and process and socket
 * helpers. Not part of the public interface (hypervisor/hv.h).
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cc/macro.h"

#include "hypervisor/hv.h"

struct cc_error;
struct hv_ops;

/*
 * Kernel parameters every backend puts after the console and before the configured ones.
 * reboot=k panic=1: a guest that panics or reboots ends its VMM (the shim sees the exit).
 * The rest skips probing of hardware a VM does not have (i8042 keyboard controller, the TSC
 * watchdog and timer check, SMP alternatives patching) and the crypto API's boot self-tests
 * (cryptomgr.notests): Kata's QEMU set without net.ifnames=0 (no udev renames here anyway) and
 * pci=lastbus=0 (it would hide devices behind PCIe root ports). Measured through the
 * shim under QEMU TCG (bench/kernel-params.sh), agent ready 3.33 s instead of 3.99 s (0.83x,
 * median of 5), the self-tests alone being 0.13x of it; see bench/README.md.
 */
#define HV_GUEST_BASE_PARAMS                                                                    \
        "reboot=k panic=1 tsc=reliable no_timer_check rcupdate.rcu_expedited=1 i8042.direct=1 " \
        "i8042.dumbkbd=1 i8042.nopnp=1 i8042.noaux=1 noreplace-smp cryptomgr.notests"

/*
 * Backend capability bits (struct hv_ops.caps): the TEE families a backend renders. A profile
 * names the bit it needs (hv_tee_profile.backend_cap); hv__tee_supported() reads both.
 */
enum {
        HV_CAP_TEE_SEV = 1 << 0, /* sev and sev-es */
        HV_CAP_TEE_SNP = 1 << 1, /* sev-snp */
        HV_CAP_TEE_TDX = 1 << 2, /* tdx */
};

/*
 * Collects every reason why a host cannot run a configuration, so that one error names all
 * of them ("kvm: ...; firmware ...: not found"). `errnum` is the first reason's errno.
 */
struct hv_reasons {
        char *text;
        int errnum;
};
void hv__reason_add(struct hv_reasons *r, int errnum, const char *fmt, ...) _printf_(3, 4);
/* Turns collected reasons into *err (prefixed with `what`) and returns -errno; 0 if none. */
int hv__reasons_to_error(struct hv_reasons *r, const char *what, struct cc_error **err);

/* Facts about this host that decide what it can run. Probed from files under `root`. */
struct hv_host {
        bool kvm;         /* /dev/kvm with a hardware KVM module (kvm_intel or kvm_amd) */
        bool kvm_dev;     /* /dev/kvm exists at all (e.g. kvm_pvm, which QEMU cannot use) */
        bool vhost_vsock; /* /dev/vhost-vsock exists */
        bool tdx;         /* /sys/module/kvm_intel/parameters/tdx is Y */
        bool sev;         /* /sys/module/kvm_amd/parameters/sev is Y or 1 */
        bool sev_es;      /* .../sev_es */
        bool sev_snp;     /* .../sev_snp */
        unsigned cbitpos; /* CPUID 0x8000001f EBX[5:0], 0 when unknown */
};
/* Probes the real host; `root` prefixes /dev and /sys paths (NULL or "" for the real ones). */
void hv__host_probe(const char *root, struct hv_host *ret);

/* The version string in a bzImage's boot header (hypervisor/kernel-info.c): from a buffer
 * holding the file's start, or from the file at `path`. At most out_len - 1 bytes are copied. */
int hv__kernel_version_parse(const uint8_t *buf, size_t len, char *out, size_t out_len,
                             struct cc_error **err);
int hv__kernel_version(const char *path, char *out, size_t out_len, struct cc_error **err);

/*
 * One TEE profile: the data every backend renders and the checks read. The backends render
 * the parts that differ in shape (QEMU's object options, libvirt's <launchSecurity> children,
 * CH's platform) with one hook per TEE each (hypervisor/<backend>/), taking names, versions and
 * flags from here.
 */
struct hv_tee_profile {
        enum hv_tee kind;
        const char *name;
        unsigned backend_cap;      /* HV_CAP_TEE_* a backend needs to render it; 0 for none */
        const char *kvm_module;    /* "kvm_intel" / "kvm_amd" */
        const char *kvm_param;     /* parameter of that module that enables the TEE */
        const char *firmware_what; /* what the firmware file must be, for the check's message */
        uint64_t default_policy;   /* SEV policy / SNP policy / TDX attributes */
        bool kernel_hashes;        /* measured direct boot: kernel-hashes, kernelHashes */
        const char *qemu_object;   /* QOM type of the confidential-guest-support object */
        unsigned qemu_since;       /* first QEMU with that object, major*10000+minor*100+micro */
        bool qemu_pflash;         /* QEMU: firmware as read-only pflash (SEV, SEV-ES), else -bios */
        const char *libvirt_type; /* <launchSecurity type=...> */
        unsigned long libvirt_since; /* first libvirt that accepts it, major*1000000+minor*1000 */
        bool libvirt_pflash;         /* libvirt: firmware as stateless read-only pflash, else ROM */
        const char *clh_platform;    /* CH: the platform flag that turns it on ("tdx") */
};
const struct hv_tee_profile *hv__tee_profile(enum hv_tee tee);
/* Whether backend `ops` renders TEE profile `p` (its caps hold the profile's bit). */
bool hv__tee_supported(const struct hv_ops *ops, const struct hv_tee_profile *p);
/* Effective AMD parameters: configured value, else the probed/default one. */
uint64_t hv__tee_policy(const struct hv_tee_config *tee);
unsigned hv__tee_cbitpos(const struct hv_tee_config *tee, const struct hv_host *host);
unsigned hv__tee_reduced_phys_bits(const struct hv_tee_config *tee);
/* Host and file checks every backend shares: KVM for TEEs, TEE enabled, files exist. */
void hv__check_common(const struct hv_config *cfg, const struct hv_host *host,
                      struct hv_reasons *r);

/* The effective accelerator for cfg on host: HV_ACCEL_KVM or HV_ACCEL_TCG, or -errno. */
int hv__accel_resolve(const struct hv_config *cfg, const struct hv_host *host,
                      struct cc_error **err);

/* A disk serial the guest can match: 1-20 bytes (virtio-blk's limit) of [A-Za-z0-9._-]. */
bool hv__serial_valid(const char *s);

/* What a disk to hot-plug is: 1 a block device, 0 a regular file, else -errno naming the path
 * (-ENOENT when it does not exist, -EINVAL for anything else). */
int hv__disk_kind(const char *path, struct cc_error **err);

/* hv_config.hotplug_slots at most: one PCIe root port each on q35's pcie.0, which has 32 slots
 * for every device of the VM. */
#define HV_MAX_HOTPLUG_SLOTS 16

/* Version helpers: "7.2.22" -> 70222; 0 when unparsable. */
unsigned hv__version_parse(const char *s);

/* The part of every VM the generic code owns; backends embed it first. */
struct hv_vm {
        const struct hv_ops *ops;
        struct hv_config cfg; /* deep copy, strings owned (see hv__config_copy) */
        char *console_log;    /* resolved path */
        bool console_owned;   /* inside run_dir: removed by hv_vm_free */
        bool started;
};

struct hv_ops {
        const char *name;
        unsigned caps;
        /* Backend-specific host checks (VMM binary and version, TEE support); may be NULL. */
        void (*check)(const struct hv_config *cfg, const struct hv_host *host,
                      struct hv_reasons *r);
        /* Allocates the backend's VM (zeroed, hv_vm embedded first). */
        int (*alloc)(struct hv_vm **ret, struct cc_error **err);
        int (*start)(struct hv_vm *vm, int timeout_ms, struct cc_error **err);
        int (*stop)(struct hv_vm *vm, int grace_ms, struct cc_error **err);
        int (*wait)(struct hv_vm *vm, int timeout_ms, struct hv_exit *ret, struct cc_error **err);
        int (*exit_fd)(struct hv_vm *vm);
        int (*agent_address)(struct hv_vm *vm, char **ret, struct cc_error **err);
        int (*pids)(struct hv_vm *vm, pid_t *ret, size_t max);
        /* Hot-plug (hv_vm_disk_add/remove); NULL: -EOPNOTSUPP. The serial is validated. */
        int (*disk_add)(struct hv_vm *vm, const struct hv_disk *disk, int timeout_ms,
                        struct cc_error **err);
        int (*disk_remove)(struct hv_vm *vm, const char *serial, int timeout_ms,
                           struct cc_error **err);
        /* Releases backend state (the VMM is already gone); frees the backend struct. */
        void (*free)(struct hv_vm *vm);
};

extern const struct hv_ops hv_qemu_ops;
extern const struct hv_ops hv_clh_ops;
extern const struct hv_ops hv_libvirt_ops;
extern const struct hv_ops hv_mock_ops;

const struct hv_ops *hv__backend_lookup(const char *name);

/* Deep-copies a configuration (strings duplicated, tap fds duplicated O_CLOEXEC). */
int hv__config_copy(struct hv_config *dst, const struct hv_config *src);
void hv__config_done(struct hv_config *cfg);

/* A growable NULL-terminated argv. Errors are sticky: check `failed` once at the end. */
struct hv_argv {
        char **v;
        size_t n;
        size_t cap;
        bool failed;
};
void hv__argv_add(struct hv_argv *a, const char *s);
void hv__argv_addf(struct hv_argv *a, const char *fmt, ...) _printf_(2, 3);
void hv__argv_done(struct hv_argv *a);

/* A child process the library started and reaps by pid. */
struct hv_proc {
        pid_t pid; /* 0 when none */
        int pidfd; /* -1 when none */
        bool reaped;
        struct hv_exit exit;
};
#define HV_PROC_INIT                  \
        {                             \
                .pid = 0, .pidfd = -1 \
        }
/*
 * Starts argv[0] (searched in PATH) with stdin from /dev/null and stdout/stderr appended to
 * `log_path` (NULL: /dev/null). `fds[i]` becomes fd 3+i in the child; every other fd is closed
 * by O_CLOEXEC. The child gets its own process group so terminal signals do not reach it.
 */
int hv__proc_spawn(struct hv_proc *p, char *const argv[], const int *fds, size_t n_fds,
                   const char *log_path, struct cc_error **err);
/* Waits up to timeout_ms (< 0 forever) for the child to exit and reaps it: 0, or -ETIMEDOUT. */
int hv__proc_wait(struct hv_proc *p, int timeout_ms);
/* SIGKILL and reap (no-op when already reaped). */
void hv__proc_kill(struct hv_proc *p);
void hv__proc_done(struct hv_proc *p);
bool hv__proc_running(const struct hv_proc *p);

/* Unix sockets (O_CLOEXEC). listen unlinks a stale socket at path first. */
int hv__unix_listen(const char *path, struct cc_error **err);
int hv__unix_connect(const char *path, struct cc_error **err);

/* Monotonic milliseconds, and the time left until a deadline (< 0 stays "forever"). */
int64_t hv__now_ms(void);
int64_t hv__deadline(int timeout_ms);
int hv__remaining(int64_t deadline);

/* The last non-empty line of a (log) file, for error messages; "" when none. Caller frees. */
char *hv__file_last_line(const char *path);

/* Runs `argv` and returns the first line of its stdout (caller frees), or NULL. */
char *hv__run_first_line(char *const argv[]);

/* True when `name` (with a '/': that file; else searched in $PATH) is an executable. */
bool hv__find_program(const char *name);
/* The path of that executable (caller frees), or NULL. */
char *hv__resolve_program(const char *name);

/* path joins and unlink that ignores ENOENT */
char *hv__path(const char *dir, const char *name);
void hv__unlink(const char *path);
