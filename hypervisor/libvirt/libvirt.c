/*
 * The libvirt backend: a transient domain from our XML (virDomainCreateXML), watched by state
 * polling (and the QEMU pidfd where libvirtd's pidfile is readable), stopped with
 * virDomainShutdown then virDomainDestroy. The connection URI is configurable:
 * qemu:///system in production, test:///default in unit tests (reference 3.4, 3.5).
 */
#include "hypervisor/libvirt/libvirt.h"

#include <errno.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/error.h"
#include "cc/log.h"

#include "hypervisor/qemu/qemu.h"

/* A hot-plugged disk: its <disk> XML (to detach it by), and whether a detach is pending. */
struct lv_disk {
        char serial[21];
        char *xml; /* NULL: free slot */
        bool removing;
};

struct lv_vm {
        struct hv_vm vm;
        struct lv_disk disks[HV_MAX_HOTPLUG_SLOTS];
        virConnectPtr conn;
        virDomainPtr dom;
        enum hv_channel channel;
        uint32_t cid;
        char *agent_path;
        pid_t pid; /* QEMU's pid when libvirtd's pidfile is readable, else 0 */
        int pidfd; /* -1 when unknown */
        bool running;
        bool stopping; /* we destroyed it */
        struct hv_exit exit;
};

static struct lv_vm *to_lv(struct hv_vm *vm)
{
        return cc_container_of(vm, struct lv_vm, vm);
}

/* libvirt prints every error to stderr unless a handler is set; we report through cc_error. */
static void quiet(void *data, virErrorPtr e)
{
        cc_log_debug("hv: libvirt: %s", e && e->message ? e->message : "?");
}

static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;
static void set_quiet(void)
{
        virSetErrorFunc(NULL, quiet);
}

static const char *lv_error(void)
{
        const char *m = virGetLastErrorMessage();
        return m ? m : "unknown libvirt error";
}

static const char *uri_of(const struct hv_config *cfg)
{
        return cfg->libvirt_uri ? cfg->libvirt_uri : HV_LIBVIRT_DEFAULT_URI;
}

static bool is_test_driver(const char *uri)
{
        return strncmp(uri, "test:", 5) == 0;
}

static void lv_check(const struct hv_config *cfg, const struct hv_host *host, struct hv_reasons *r)
{
        pthread_once(&quiet_once, set_quiet);
        const char *uri = uri_of(cfg);
        virConnectPtr conn = virConnectOpen(uri);
        if (!conn) {
                hv__reason_add(r, ECONNREFUSED, "cannot connect to libvirt at %s: %s", uri,
                               lv_error());
                return;
        }
        unsigned long lib = 0, hv = 0;
        virConnectGetLibVersion(conn, &lib);
        const struct hv_tee_profile *p = hv__tee_profile(cfg->tee.kind);
        if (p && p->libvirt_since && lib < p->libvirt_since)
                hv__reason_add(r, EOPNOTSUPP,
                               "libvirt %lu.%lu.%lu does not support <launchSecurity "
                               "type='%s'> (%s needs libvirt >= %lu.%lu.%lu)",
                               lib / 1000000, lib / 1000 % 1000, lib % 1000, p->libvirt_type,
                               p->name, p->libvirt_since / 1000000, p->libvirt_since / 1000 % 1000,
                               p->libvirt_since % 1000);
        /* The QEMU libvirt drives must know the TEE object too. */
        if (p && p->qemu_object && !is_test_driver(uri) && virConnectGetVersion(conn, &hv) == 0 &&
            hv) {
                unsigned qv = (unsigned)(hv / 1000000 * 10000 + hv / 1000 % 1000 * 100 + hv % 1000);
                if (qv < p->qemu_since)
                        hv__reason_add(r, EOPNOTSUPP,
                                       "QEMU %lu.%lu.%lu (via libvirt) has no usable %s object: "
                                       "%s needs QEMU >= %u.%u.%u",
                                       hv / 1000000, hv / 1000 % 1000, hv % 1000, p->qemu_object,
                                       p->name, p->qemu_since / 10000, p->qemu_since / 100 % 100,
                                       p->qemu_since % 100);
        }
        virConnectClose(conn);
}

static int lv_alloc(struct hv_vm **ret, struct cc_error **err)
{
        struct lv_vm *l = calloc(1, sizeof(*l));
        if (!l)
                return cc_error_set(err, ENOMEM, "out of memory");
        l->pidfd = -1;
        *ret = &l->vm;
        return 0;
}

/* libvirt picked the CID (<cid auto='yes'>): read it back from the live XML. */
static int read_cid(struct lv_vm *l, struct cc_error **err)
{
        _cleanup_free_ char *xml = virDomainGetXMLDesc(l->dom, 0);
        if (!xml)
                return cc_error_set(err, EIO, "libvirt: domain XML: %s", lv_error());
        const char *cid = strstr(xml, "<cid ");
        const char *addr = cid ? strstr(cid, "address='") : NULL;
        if (!addr)
                return cc_error_set(err, EIO, "libvirt: no vsock CID in the domain XML");
        l->cid = (uint32_t)strtoul(addr + strlen("address='"), NULL, 10);
        return l->cid >= 3 ? 0 : cc_error_set(err, EIO, "libvirt: bad vsock CID");
}

/* QEMU's pid from libvirtd's pidfile (local qemu:///system only), as a pidfd for exit_fd. */
static void find_qemu_pid(struct lv_vm *l)
{
        char path[300];
        snprintf(path, sizeof(path), "/run/libvirt/qemu/%s.pid", l->vm.cfg.name);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        int pid = 0;
        if (!f || fscanf(f, "%d", &pid) != 1 || pid <= 0)
                return;
        l->pid = pid;
        l->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
}

static void release_domain(struct lv_vm *l)
{
        /* The domain's end released its disks. */
        for (size_t i = 0; i < CC_ARRAY_SIZE(l->disks); i++) {
                free(l->disks[i].xml);
                l->disks[i] = (struct lv_disk){0};
        }
        if (l->dom)
                virDomainFree(l->dom);
        l->dom = NULL;
        l->pidfd = cc_close(l->pidfd);
        l->pid = 0;
        hv__unlink(l->agent_path);
}

static int lv_start(struct hv_vm *vm, int timeout_ms, struct cc_error **err)
{
        struct lv_vm *l = to_lv(vm);
        const struct hv_config *cfg = &vm->cfg;
        pthread_once(&quiet_once, set_quiet);
        struct hv_host host;
        hv__host_probe(NULL, &host);
        int accel = hv__accel_resolve(cfg, &host, err);
        if (accel < 0)
                return accel;
        l->channel = cfg->channel;
        if (l->channel == HV_CHANNEL_AUTO)
                l->channel = host.vhost_vsock ? HV_CHANNEL_VSOCK : HV_CHANNEL_SERIAL;
        free(l->agent_path);
        l->agent_path = hv__path(cfg->run_dir, HV_QEMU_AGENT_SOCK);
        if (!l->agent_path)
                return cc_error_set(err, ENOMEM, "out of memory");
        const char *uri = uri_of(cfg);
        if (!l->conn) {
                l->conn = virConnectOpen(uri);
                if (!l->conn)
                        return cc_error_set(err, ECONNREFUSED, "libvirt: connect %s: %s", uri,
                                            lv_error());
        }
        unsigned long version = 0;
        if (virConnectGetLibVersion(l->conn, &version) < 0)
                return cc_error_set(err, EIO, "libvirt: version: %s", lv_error());
        struct hv_libvirt_plan plan = {
                .cfg = cfg,
                .console_log = vm->console_log,
                .accel = (enum hv_accel)accel,
                .channel = l->channel,
                .cbitpos = hv__tee_cbitpos(&cfg->tee, &host),
                .libvirt_version = version,
        };
        _cleanup_free_ char *xml = NULL;
        int r = hv_libvirt_domain_xml(&plan, &xml, err);
        if (r < 0)
                return r;
        /* AUTODESTROY ties the VM to our connection (it dies with its owner); the test driver
         * refuses the flag (reference 3.5). */
        unsigned flags = is_test_driver(uri) ? 0 : VIR_DOMAIN_START_AUTODESTROY;
        l->dom = virDomainCreateXML(l->conn, xml, flags);
        if (!l->dom)
                return cc_error_set(err, EIO, "libvirt: create domain: %s", lv_error());
        l->running = true;
        l->stopping = false;
        l->exit = (struct hv_exit){.code = -1};
        if (l->channel == HV_CHANNEL_VSOCK) {
                if (cfg->vsock_cid) {
                        l->cid = cfg->vsock_cid;
                } else if ((r = read_cid(l, err)) < 0) {
                        virDomainDestroy(l->dom);
                        l->running = false;
                        release_domain(l);
                        return r;
                }
        }
        find_qemu_pid(l);
        return 0;
}

/* True once the domain is gone or shut off; fills l->exit from what libvirt says. */
static bool domain_ended(struct lv_vm *l)
{
        if (!l->running)
                return true;
        int state = 0, reason = 0;
        if (virDomainGetState(l->dom, &state, &reason, 0) == 0 && state != VIR_DOMAIN_SHUTOFF &&
            state != VIR_DOMAIN_CRASHED)
                return false;
        l->running = false;
        if (state == VIR_DOMAIN_SHUTOFF && reason == VIR_DOMAIN_SHUTOFF_SHUTDOWN)
                l->exit = (struct hv_exit){.code = 0};
        else if (l->stopping ||
                 (state == VIR_DOMAIN_SHUTOFF && reason == VIR_DOMAIN_SHUTOFF_DESTROYED))
                l->exit = (struct hv_exit){.code = -1, .signal = SIGKILL};
        else
                /* A transient domain vanishes when QEMU ends: the status is unknown. */
                l->exit = (struct hv_exit){.code = -1, .signal = 0};
        return true;
}

static int wait_ended(struct lv_vm *l, int timeout_ms)
{
        int64_t deadline = hv__deadline(timeout_ms);
        for (;;) {
                if (domain_ended(l))
                        return 0;
                int left = hv__remaining(deadline);
                if (left == 0)
                        return -ETIMEDOUT;
                int step = left < 0 || left > 50 ? 50 : left;
                struct pollfd pfd = {.fd = l->pidfd, .events = POLLIN};
                poll(&pfd, l->pidfd >= 0 ? 1 : 0, step);
        }
}

static int lv_wait(struct hv_vm *vm, int timeout_ms, struct hv_exit *ret, struct cc_error **err)
{
        struct lv_vm *l = to_lv(vm);
        if (wait_ended(l, timeout_ms) < 0)
                return cc_error_set(err, ETIMEDOUT, "VM %s still running", vm->cfg.name);
        release_domain(l);
        *ret = l->exit;
        return 0;
}

static int lv_stop(struct hv_vm *vm, int grace_ms, struct cc_error **err)
{
        struct lv_vm *l = to_lv(vm);
        if (l->dom && !domain_ended(l)) {
                if (grace_ms > 0 && virDomainShutdown(l->dom) == 0 &&
                    wait_ended(l, grace_ms) == 0 && l->exit.code < 0 && !l->exit.signal)
                        /* Gone after our power-off request: a transient domain leaves no
                         * shutoff reason to read, but this was the clean shutdown asked for. */
                        l->exit = (struct hv_exit){.code = 0};
                if (l->running) {
                        l->stopping = true;
                        if (virDomainDestroy(l->dom) < 0 && !domain_ended(l))
                                return cc_error_set(err, EIO, "libvirt: destroy: %s", lv_error());
                        wait_ended(l, 5000);
                        l->running = false;
                }
        }
        release_domain(l);
        return 0;
}

static int lv_exit_fd(struct hv_vm *vm)
{
        struct lv_vm *l = to_lv(vm);
        return l->pidfd >= 0 ? l->pidfd : -EOPNOTSUPP;
}

static int lv_agent_address(struct hv_vm *vm, char **ret, struct cc_error **err)
{
        struct lv_vm *l = to_lv(vm);
        int r;
        if (!vm->started)
                return cc_error_set(err, ESRCH, "VM %s not started", vm->cfg.name);
        if (l->channel == HV_CHANNEL_VSOCK)
                r = asprintf(ret, "vsock:%u:%d", l->cid, HV_AGENT_VSOCK_PORT);
        else
                r = asprintf(ret, "unix:%s", l->agent_path);
        return r < 0 ? cc_error_set(err, ENOMEM, "out of memory") : 0;
}

static int lv_pids(struct hv_vm *vm, pid_t *ret, size_t max)
{
        struct lv_vm *l = to_lv(vm);
        if (!l->running || !l->pid || max == 0)
                return 0;
        ret[0] = l->pid;
        return 1;
}

static struct lv_disk *find_disk(struct lv_vm *l, const char *serial)
{
        for (size_t i = 0; i < CC_ARRAY_SIZE(l->disks); i++)
                if (l->disks[i].xml && strcmp(l->disks[i].serial, serial) == 0)
                        return &l->disks[i];
        return NULL;
}

/* Whether the live domain still has a disk with `serial`; -EIO when libvirt cannot say. */
static int disk_present(struct lv_vm *l, const char *serial, struct cc_error **err)
{
        _cleanup_free_ char *xml = virDomainGetXMLDesc(l->dom, 0);
        if (!xml)
                return cc_error_set(err, EIO, "libvirt: domain XML: %s", lv_error());
        char needle[64];
        snprintf(needle, sizeof(needle), "<serial>%s</serial>", serial);
        return strstr(xml, needle) != NULL;
}

/*
 * Attaches a <disk> to the live domain: libvirt puts it into a free PCIe root port (the
 * domain XML pre-allocates hotplug_slots of them) with blockdev-add/device_add underneath.
 */
static int lv_disk_add(struct hv_vm *vm, const struct hv_disk *disk, int timeout_ms,
                       struct cc_error **err)
{
        struct lv_vm *l = to_lv(vm);
        if (!l->dom || domain_ended(l))
                return cc_error_set(err, ESRCH, "VM %s is not running", vm->cfg.name);
        int kind = hv__disk_kind(disk->path, err);
        if (kind < 0)
                return kind;
        if (find_disk(l, disk->serial))
                return cc_error_set(err, EEXIST, "a disk with serial '%s' is attached already",
                                    disk->serial);
        size_t slot = 0;
        while (slot < vm->cfg.hotplug_slots && l->disks[slot].xml)
                slot++;
        if (slot == vm->cfg.hotplug_slots)
                return cc_error_set(err, ENOSPC,
                                    "no free hot-plug slot for disk '%s' (hotplug_slots = %u)",
                                    disk->serial, vm->cfg.hotplug_slots);
        /* vdX after the cold-plugged disks: a name for libvirt; the guest goes by serial. */
        size_t index = vm->cfg.n_disks + slot;
        if (index >= 26)
                return cc_error_set(err, ENOSPC, "no vdX name left for disk '%s'", disk->serial);
        char target[8];
        snprintf(target, sizeof(target), "vd%c", (char)('a' + index));
        _cleanup_free_ char *xml = NULL;
        int r = hv_libvirt_disk_xml(disk, kind == 1, target, &xml, err);
        if (r < 0)
                return r;
        if (virDomainAttachDeviceFlags(l->dom, xml, VIR_DOMAIN_AFFECT_LIVE) < 0)
                return cc_error_set(err, EIO, "libvirt: attach disk '%s' (%s): %s", disk->serial,
                                    disk->path, lv_error());
        l->disks[slot] = (struct lv_disk){.xml = TAKE_PTR(xml)};
        snprintf(l->disks[slot].serial, sizeof(l->disks[slot].serial), "%s", disk->serial);
        return 0;
}

/*
 * Detaches the <disk> (libvirt sends device_del and waits a few seconds for DEVICE_DELETED
 * itself), then polls the live XML until the disk is gone: only then has QEMU let go of it.
 */
static int lv_disk_remove(struct hv_vm *vm, const char *serial, int timeout_ms,
                          struct cc_error **err)
{
        struct lv_vm *l = to_lv(vm);
        int64_t deadline = hv__deadline(timeout_ms);
        if (!l->dom || domain_ended(l))
                return cc_error_set(err, ESRCH, "VM %s is not running", vm->cfg.name);
        struct lv_disk *d = find_disk(l, serial);
        if (!d)
                return cc_error_set(err, ENOENT, "no disk with serial '%s' was hot-plugged",
                                    serial);
        if (!d->removing) {
                if (virDomainDetachDeviceFlags(l->dom, d->xml, VIR_DOMAIN_AFFECT_LIVE) < 0)
                        return cc_error_set(err, EIO, "libvirt: detach disk '%s': %s", serial,
                                            lv_error());
                d->removing = true;
        }
        int r;
        while ((r = disk_present(l, serial, err)) == 1) {
                if (hv__remaining(deadline) == 0)
                        return cc_error_set(err, ETIMEDOUT,
                                            "disk '%s': the guest did not release the device "
                                            "within %d ms; it stays attached and a later remove "
                                            "can retry",
                                            serial, timeout_ms);
                struct pollfd pfd = {.fd = -1};
                poll(&pfd, 0, 50);
        }
        if (r < 0)
                return r;
        free(d->xml);
        *d = (struct lv_disk){0};
        return 0;
}

static void lv_free(struct hv_vm *vm)
{
        struct lv_vm *l = to_lv(vm);
        if (l->dom && l->running)
                virDomainDestroy(l->dom);
        release_domain(l);
        if (l->conn)
                virConnectClose(l->conn);
        free(l->agent_path);
        free(l);
}

const struct hv_ops hv_libvirt_ops = {
        .name = "libvirt",
        .caps = HV_CAP_TEE_SEV | HV_CAP_TEE_SNP | HV_CAP_TEE_TDX,
        .check = lv_check,
        .alloc = lv_alloc,
        .start = lv_start,
        .stop = lv_stop,
        .wait = lv_wait,
        .exit_fd = lv_exit_fd,
        .agent_address = lv_agent_address,
        .pids = lv_pids,
        .disk_add = lv_disk_add,
        .disk_remove = lv_disk_remove,
        .free = lv_free,
};
