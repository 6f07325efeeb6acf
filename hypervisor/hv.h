#pragma once
/*
 * libhv: start, watch and stop the pod's VM, whichever VMM the node uses (QEMU, Cloud Hypervisor,
 * libvirt, or the "mock" test double) and whichever TEE the hardware has (none, tdx, sev, sev-es,
 * sev-snp).
 *
 * The caller fills one backend-neutral struct hv_config and drives the VM through the hv_vm_*
 * functions below:
 *
 *      hv_vm_new(&cfg, &vm, &err)        validate, look up the backend; starts nothing
 *      hv_vm_start(vm, timeout, &err)    host check, start the VMM, boot the guest; on return the
 *                                        agent channel exists (connectable); on failure nothing
 *                                        is left running and the run directory is clean
 *      hv_vm_agent_address(vm, &addr)    "unix:<path>", "vsock:<cid>:1024" or "hvsock:<path>:1024"
 *      hv_vm_exit_fd(vm)                 readable when the VMM exits (for the caller's epoll)
 *      hv_vm_wait(vm, timeout, &ex)      the VMM's exit (status or signal), then clean up
 *      hv_vm_stop(vm, grace, &err)       power off, force after `grace_ms`, reap, clean up
 *      hv_vm_free(vm)                    kills what is still running, removes every file made
 *
 * Every fallible function returns 0 (or a count) on success and -errno on failure, filling
 * `*err` (when err is not NULL) with a message saying exactly what failed. The library logs at
 * debug level only, never exits, and opens every fd O_CLOEXEC. One hv_vm is used by one thread
 * at a time.
 *
 * Process ownership: the VMM is a child of the calling process (QEMU, Cloud Hypervisor) or of
 * libvirtd. The library reaps its own children by pid; a caller that reaps with waitpid(-1)
 * must not do so while a VM is running.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cc_error;
struct hv_vm;

/* TEE profiles. Each is data (hypervisor/tee.c), not a backend. */
enum hv_tee {
        HV_TEE_NONE,
        HV_TEE_TDX,
        HV_TEE_SEV,
        HV_TEE_SEV_ES,
        HV_TEE_SEV_SNP,
        _HV_TEE_MAX,
};

/*
 * Accelerator. AUTO = KVM when the host has hardware KVM (/dev/kvm plus kvm_intel or kvm_amd),
 * otherwise TCG, but TCG is never chosen silently for a TEE profile: a TEE without KVM fails.
 */
enum hv_accel {
        HV_ACCEL_AUTO,
        HV_ACCEL_KVM,
        HV_ACCEL_TCG,
        _HV_ACCEL_MAX,
};

/*
 * Agent channel. AUTO = vsock when /dev/vhost-vsock opens (QEMU, libvirt) or hybrid vsock (Cloud
 * Hypervisor), otherwise a virtio-serial port named "agent.channel.0" on a unix socket.
 */
enum hv_channel {
        HV_CHANNEL_AUTO,
        HV_CHANNEL_VSOCK,
        HV_CHANNEL_SERIAL,
        _HV_CHANNEL_MAX,
};

#define HV_AGENT_VSOCK_PORT   1024
#define HV_AGENT_SERIAL_NAME  "agent.channel.0"
/* The agent's debug console (hv_config.debug_console) of a VM whose agent channel is
 * virtio-serial: a port of this name on a unix socket <run_dir>/HV_DEBUG_CONSOLE_SOCK. With
 * vsock (or CH's hybrid vsock) the agent serves it on vsock port HV_DEBUG_CONSOLE_PORT. */
#define HV_DEBUG_CONSOLE_NAME "agent.debug_console"
#define HV_DEBUG_CONSOLE_SOCK "console.sock"
#define HV_DEBUG_CONSOLE_PORT 1026

/* TEE parameters; zero/NULL fields take the profile's default. */
struct hv_tee_config {
        enum hv_tee kind;
        /* SEV/SEV-ES guest policy (default 0x1 / 0x5), SNP policy (default 0x30000), TDX TD
         * attributes (default 0: none set). */
        uint64_t policy;
        /* AMD: C-bit position (0 = read CPUID 0x8000001f) and reduced physical bits (0 = 1). */
        unsigned cbitpos;
        unsigned reduced_phys_bits;
        /* SEV-SNP: host-data (base64 of 32 bytes), id-block and id-auth (base64, both or none). */
        const char *host_data;
        const char *id_block;
        const char *id_auth;
        /* TDX: mrconfigid (base64 of 48 bytes, e.g. the initdata digest), quote generation
         * service unix socket (NULL: vsock CID 2 port 4050). */
        const char *mrconfigid;
        const char *qgs_socket;
};

struct hv_disk {
        const char *path; /* raw image or block device */
        bool readonly;
        /* The guest finds the disk by it (/sys/block/vdX/serial), not by its order: at most
         * 20 bytes (virtio-blk's limit) of [A-Za-z0-9._-]. NULL: none. */
        const char *serial;
};

struct hv_net {
        int tap_fd;      /* an open tap fd; the library passes a duplicate to the VMM */
        const char *mac; /* "52:54:00:..." or NULL */
        /* libvirt only, which takes no fds (and then tap_fd is -1): an existing tap in the
         * namespace of libvirtd, opened by name (<interface type='ethernet'>, managed='no';
         * the shim's SHIM_NET_HOST_TAP makes it). The other backends refuse it. */
        const char *tap_name;
};

struct hv_config {
        const char *backend; /* "qemu", "clh", "libvirt", "mock" */
        const char *name;    /* VM name (the sandbox id): letters, digits, '-', '_', '.' */
        /* Per-VM directory, created by the caller, private to this VM. The library creates its
         * sockets, pidfile and logs in it and removes each of them again; it never removes the
         * directory itself. Keep it short: unix socket paths are limited to 107 bytes. */
        const char *run_dir;
        const char *vmm_path;    /* VMM binary; NULL = "qemu-system-x86_64" / "cloud-hypervisor" */
        const char *libvirt_uri; /* libvirt only; NULL = "qemu:///system" */
        unsigned vcpus;          /* 0 = 1 */
        unsigned memory_mib;     /* 0 = 2048 */
        const char *kernel;      /* required */
        const char *initrd;      /* optional */
        const char *kernel_params; /* appended after the library's own (console=...) */
        const char *firmware;      /* NULL = the VMM's default (SeaBIOS for QEMU); TEEs need one */
        enum hv_accel accel;
        struct hv_tee_config tee;
        enum hv_channel channel;
        uint32_t vsock_cid;      /* 0 = pick a free one (>= 3) */
        const char *console_log; /* NULL = <run_dir>/console.log (removed by hv_vm_free) */
        bool debug_console;      /* QEMU: the debug console port (HV_DEBUG_CONSOLE_NAME) */
        const struct hv_disk *disks;
        size_t n_disks;
        const struct hv_net *nets;
        size_t n_nets;
        /*
         * Development only (network_model = user): one virtio-net NIC on QEMU's user-mode
         * network (slirp), whose guest reaches the host's loopback as 10.0.2.2. QEMU backend
         * only; refused for every TEE profile (a confidential guest's traffic must go through
         * the pod's own interfaces, not a NAT inside the VMM). user_net_mac: "52:54:00:..." or
         * NULL (QEMU picks one).
         */
        bool user_net;
        const char *user_net_mac;
        /* Free slots for hv_vm_disk_add(): QEMU and libvirt pre-allocate this many PCIe root
         * ports (TEE guests cannot take a device on a bus enumerated at boot otherwise); 0 =
         * none, so hot-plug fails with -ENOSPC. At most 16. Cloud Hypervisor ignores it (it
         * plugs without pre-allocated ports; at most 16 hot-plugged disks are tracked). */
        unsigned hotplug_slots;
};

/* How the VMM ended: `code` >= 0 is its exit status, else `signal` is the signal that killed it. */
struct hv_exit {
        int code;
        int signal;
};

/* Names: "none", "tdx", "sev", "sev-es", "sev-snp"; "auto", "kvm", "tcg"; "auto", "vsock",
 * "serial". The parsers return -EINVAL for unknown names. */
const char *hv_tee_to_string(enum hv_tee tee);
int hv_tee_from_string(const char *s, enum hv_tee *ret);
const char *hv_accel_to_string(enum hv_accel accel);
int hv_accel_from_string(const char *s, enum hv_accel *ret);
int hv_channel_from_string(const char *s, enum hv_channel *ret);

/* The backend names compiled in, NULL-terminated. */
const char *const *hv_backend_names(void);

/*
 * Checks, without starting anything, that this host can run `cfg`: the backend exists, the
 * VMM binary runs and is new enough for the TEE profile, KVM and the TEE are enabled, the
 * kernel, initrd and firmware files exist. On failure the message lists everything missing,
 * separated by "; ". hv_vm_start() runs the same check first.
 */
int hv_check(const struct hv_config *cfg, struct cc_error **err);

/* Validates cfg and copies it (the caller's strings may go away); starts nothing. */
int hv_vm_new(const struct hv_config *cfg, struct hv_vm **ret, struct cc_error **err);

/*
 * Starts the VM and waits (at most timeout_ms; < 0 = no limit) until the VMM runs the guest
 * and the agent channel exists. Does not wait for the guest's agent: the caller dials
 * hv_vm_agent_address() and retries until the agent answers. Fails with -EEXIST when already
 * started; on any failure stops and cleans up what it started.
 */
int hv_vm_start(struct hv_vm *vm, int timeout_ms, struct cc_error **err);

/*
 * Stops the VM: asks the guest to power off (ACPI power button) and waits up to grace_ms,
 * then stops the VMM by force; reaps it and removes its sockets and pidfile. Returns 0 also
 * when the VM had already exited. The exit stays available to hv_vm_wait(). A guest with no
 * power-button handler (an agent as init without acpid) ignores the request and the whole
 * grace passes: after the agent's DestroySandbox, pass 0.
 */
int hv_vm_stop(struct hv_vm *vm, int grace_ms, struct cc_error **err);

/*
 * Waits at most timeout_ms (0 = poll, < 0 = no limit) for the VMM to exit, for whatever
 * reason (guest power-off, crash, kill -9, hv_vm_stop); -ETIMEDOUT while it still runs,
 * -ESRCH when never started. Reaps it and removes its sockets and pidfile.
 */
int hv_vm_wait(struct hv_vm *vm, int timeout_ms, struct hv_exit *ret, struct cc_error **err);

/* An fd (owned by vm) that polls readable once the VMM has exited; -ESRCH when not running. */
int hv_vm_exit_fd(struct hv_vm *vm);

/* The agent's address (caller frees): "unix:<path>", "vsock:<cid>:1024", "hvsock:<path>:1024". */
int hv_vm_agent_address(struct hv_vm *vm, char **ret, struct cc_error **err);

/*
 * Connects to an agent address as returned by hv_vm_agent_address(): "unix:<path>" (a
 * virtio-serial chardev socket), "vsock:<cid>:<port>" (AF_VSOCK) or "hvsock:<path>:<port>"
 * (Cloud Hypervisor's hybrid vsock: a unix socket, then "CONNECT <port>\n" answered by
 * "OK <n>\n"). Returns a connected fd (O_CLOEXEC, blocking) or -errno. One attempt: while the
 * guest boots the caller retries.
 */
int hv_agent_dial(const char *address, int timeout_ms, struct cc_error **err);

/*
 * Hot-plugs a virtio-blk disk into the running VM: QEMU through QMP (blockdev-add, then
 * device_add into a free pre-allocated root port), Cloud Hypervisor through vm.add-disk,
 * libvirt by attaching a <disk>. `disk->serial` is required: the guest finds the disk by it and
 * hv_vm_disk_remove() names it by it. Waits at most timeout_ms for the VMM to answer.
 * -EEXIST: a disk with that serial is attached; -ENOSPC: no free slot; -EOPNOTSUPP: the backend
 * cannot; -ESRCH: the VM is not running. On failure nothing stays attached.
 */
int hv_vm_disk_add(struct hv_vm *vm, const struct hv_disk *disk, int timeout_ms,
                   struct cc_error **err);

/*
 * Unplugs the disk hot-plugged with `serial` and waits at most timeout_ms until the VMM let
 * go of it (QEMU's DEVICE_DELETED, then blockdev-del): on return the host device or file is no
 * longer open in the VMM. -ENOENT when no such disk was hot-plugged. Disks still attached when
 * the VM stops are released with it.
 */
int hv_vm_disk_remove(struct hv_vm *vm, const char *serial, int timeout_ms, struct cc_error **err);

/* Stores up to `max` pids of the VM's host processes (the VMM first); returns how many. */
int hv_vm_pids(struct hv_vm *vm, pid_t *ret, size_t max);

/* The backend's name ("qemu", ...) and the console log path of this VM. */
const char *hv_vm_backend(const struct hv_vm *vm);
const char *hv_vm_console_log(const struct hv_vm *vm);

/* Kills the VMM if it still runs, reaps it, removes every file the library made; NULL-safe. */
struct hv_vm *hv_vm_free(struct hv_vm *vm);

static inline void hv_vm_freep(struct hv_vm **vm)
{
        hv_vm_free(*vm);
}
#define _cleanup_hv_vm_ __attribute__((cleanup(hv_vm_freep)))
