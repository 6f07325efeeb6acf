/*
 * The backend registry and the public wrappers: they validate arguments, run the host check
 * before a start, turn a missing optional operation into -EOPNOTSUPP, and own the parts every
 * VM shares (the copied configuration, the console log path).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/error.h"
#include "cc/log.h"

#include "hypervisor/hv-internal.h"

#ifdef HV_NO_LIBVIRT
/*
 * libhv-nolibvirt.a (hypervisor/module.mk), the static shim's libhv: libvirt.so and its chain
 * (glib, gnutls, ICU, libxml2, Kerberos ...) cannot be linked statically and would by
 * themselves cost a per-pod daemon several MiB of RSS. That build has no libvirt backend
 * objects; a configuration that asks for it gets this error instead.
 */
static int nolibvirt_alloc(struct hv_vm **ret, struct cc_error **err)
{
        return cc_error_set(err, EOPNOTSUPP,
                            "the libvirt backend is not built into this (static) shim; rebuild "
                            "with `make SHIM_LINK=dynamic` or use backend \"qemu\"");
}

static const struct hv_ops libvirt_absent_ops = {
        .name = "libvirt",
        .alloc = nolibvirt_alloc,
};
#define LIBVIRT_OPS libvirt_absent_ops
#else
#define LIBVIRT_OPS hv_libvirt_ops
#endif

static const struct hv_ops *const backends[] = {
        &hv_qemu_ops,
        &hv_clh_ops,
        &LIBVIRT_OPS,
        &hv_mock_ops,
};

static const char *const backend_names[] = {"qemu", "clh", "libvirt", "mock", NULL};

const char *const *hv_backend_names(void)
{
        return backend_names;
}

const struct hv_ops *hv__backend_lookup(const char *name)
{
        for (size_t i = 0; name && i < CC_ARRAY_SIZE(backends); i++)
                if (strcmp(backends[i]->name, name) == 0)
                        return backends[i];
        return NULL;
}

static const char *const accel_names[_HV_ACCEL_MAX] = {"auto", "kvm", "tcg"};
bool hv__serial_valid(const char *s)
{
        size_t n = strlen(s);
        return n > 0 && n <= 20 &&
               strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static const char *const channel_names[_HV_CHANNEL_MAX] = {"auto", "vsock", "serial"};

static int lookup(const char *const *names, size_t n, const char *s)
{
        for (size_t i = 0; s && i < n; i++)
                if (strcmp(names[i], s) == 0)
                        return (int)i;
        return -EINVAL;
}

const char *hv_tee_to_string(enum hv_tee tee)
{
        const struct hv_tee_profile *p = hv__tee_profile(tee);
        return p ? p->name : "invalid";
}

int hv_tee_from_string(const char *s, enum hv_tee *ret)
{
        for (int i = 0; s && i < _HV_TEE_MAX; i++)
                if (strcmp(hv__tee_profile((enum hv_tee)i)->name, s) == 0) {
                        *ret = (enum hv_tee)i;
                        return 0;
                }
        return -EINVAL;
}

const char *hv_accel_to_string(enum hv_accel accel)
{
        return (unsigned)accel < _HV_ACCEL_MAX ? accel_names[accel] : "invalid";
}

int hv_accel_from_string(const char *s, enum hv_accel *ret)
{
        int r = lookup(accel_names, _HV_ACCEL_MAX, s);
        if (r < 0)
                return r;
        *ret = (enum hv_accel)r;
        return 0;
}

int hv_channel_from_string(const char *s, enum hv_channel *ret)
{
        int r = lookup(channel_names, _HV_CHANNEL_MAX, s);
        if (r < 0)
                return r;
        *ret = (enum hv_channel)r;
        return 0;
}

unsigned hv__version_parse(const char *s)
{
        unsigned a = 0, b = 0, c = 0;
        if (!s || sscanf(s, "%u.%u.%u", &a, &b, &c) < 2)
                return 0;
        return a * 10000 + b * 100 + c;
}

void hv__reason_add(struct hv_reasons *r, int errnum, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *msg = NULL;
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (!r->errnum)
                r->errnum = errnum < 0 ? -errnum : (errnum ? errnum : EINVAL);
        if (!msg)
                return;
        char *joined = NULL;
        if (asprintf(&joined, "%s%s%s", r->text ? r->text : "", r->text ? "; " : "", msg) < 0)
                return;
        free(r->text);
        r->text = joined;
}

int hv__reasons_to_error(struct hv_reasons *r, const char *what, struct cc_error **err)
{
        if (!r->errnum)
                return 0;
        int e = cc_error_set(err, r->errnum, "%s: %s", what, r->text ? r->text : "not supported");
        free(r->text);
        *r = (struct hv_reasons){0};
        return e;
}

static int dup_str(char **dst, const char *src)
{
        *dst = NULL;
        if (!src)
                return 0;
        *dst = strdup(src);
        return *dst ? 0 : -ENOMEM;
}

/* The string members of struct hv_config, for copying and freeing. */
static const size_t config_strings[] = {
        offsetof(struct hv_config, backend),        offsetof(struct hv_config, name),
        offsetof(struct hv_config, run_dir),        offsetof(struct hv_config, vmm_path),
        offsetof(struct hv_config, libvirt_uri),    offsetof(struct hv_config, kernel),
        offsetof(struct hv_config, initrd),         offsetof(struct hv_config, kernel_params),
        offsetof(struct hv_config, firmware),       offsetof(struct hv_config, console_log),
        offsetof(struct hv_config, tee.host_data),  offsetof(struct hv_config, tee.id_block),
        offsetof(struct hv_config, tee.id_auth),    offsetof(struct hv_config, tee.mrconfigid),
        offsetof(struct hv_config, tee.qgs_socket), offsetof(struct hv_config, user_net_mac),
};

static char **config_string(struct hv_config *cfg, size_t i)
{
        return (char **)((char *)cfg + config_strings[i]);
}

void hv__config_done(struct hv_config *cfg)
{
        for (size_t i = 0; i < CC_ARRAY_SIZE(config_strings); i++)
                free(*config_string(cfg, i));
        for (size_t i = 0; i < cfg->n_disks; i++) {
                free((char *)cfg->disks[i].path);
                free((char *)cfg->disks[i].serial);
        }
        free((void *)cfg->disks);
        for (size_t i = 0; i < cfg->n_nets; i++) {
                cc_close(cfg->nets[i].tap_fd);
                free((char *)cfg->nets[i].mac);
                free((char *)cfg->nets[i].tap_name);
        }
        free((void *)cfg->nets);
        *cfg = (struct hv_config){0};
}

int hv__config_copy(struct hv_config *dst, const struct hv_config *src)
{
        *dst = *src;
        /* Clear owned members first so that a failure half-way frees only copies. */
        for (size_t i = 0; i < CC_ARRAY_SIZE(config_strings); i++)
                *config_string(dst, i) = NULL;
        dst->disks = NULL;
        dst->nets = NULL;
        dst->n_disks = dst->n_nets = 0;
        int r = 0;
        for (size_t i = 0; r == 0 && i < CC_ARRAY_SIZE(config_strings); i++)
                r = dup_str(config_string(dst, i), *config_string((struct hv_config *)src, i));
        if (r == 0 && src->n_disks) {
                struct hv_disk *d = calloc(src->n_disks, sizeof(*d));
                if (!d)
                        r = -ENOMEM;
                dst->disks = d;
                for (size_t i = 0; r == 0 && i < src->n_disks; i++) {
                        d[i] = src->disks[i];
                        d[i].serial = NULL;
                        r = dup_str((char **)&d[i].path, src->disks[i].path);
                        if (r == 0)
                                r = dup_str((char **)&d[i].serial, src->disks[i].serial);
                        dst->n_disks = i + 1;
                }
        }
        if (r == 0 && src->n_nets) {
                struct hv_net *n = calloc(src->n_nets, sizeof(*n));
                if (!n)
                        r = -ENOMEM;
                dst->nets = n;
                for (size_t i = 0; r == 0 && i < src->n_nets; i++) {
                        /* A tap by name (libvirt) has no fd to duplicate. */
                        n[i].tap_fd = src->nets[i].tap_fd < 0
                                              ? -1
                                              : fcntl(src->nets[i].tap_fd, F_DUPFD_CLOEXEC, 3);
                        dst->n_nets = i + 1;
                        if (n[i].tap_fd < 0 && src->nets[i].tap_fd >= 0) {
                                r = -errno;
                                break;
                        }
                        r = dup_str((char **)&n[i].mac, src->nets[i].mac);
                        if (r == 0)
                                r = dup_str((char **)&n[i].tap_name, src->nets[i].tap_name);
                }
        }
        if (r < 0)
                hv__config_done(dst);
        return r;
}

static bool valid_name(const char *s)
{
        if (cc_isempty(s) || strlen(s) > 64)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
                        return false;
        return true;
}

static int make_absolute(const char **path)
{
        if (!*path || (*path)[0] == '/')
                return 0;
        char cwd[4096];
        if (!getcwd(cwd, sizeof(cwd)))
                return -errno;
        char *abs = NULL;
        if (asprintf(&abs, "%s/%s", cwd, *path) < 0)
                return -ENOMEM;
        free((char *)*path);
        *path = abs;
        return 0;
}

static int absolutize(struct hv_config *cfg)
{
        int r = make_absolute(&cfg->kernel);
        if (r == 0)
                r = make_absolute(&cfg->initrd);
        if (r == 0)
                r = make_absolute(&cfg->firmware);
        if (r == 0)
                r = make_absolute(&cfg->console_log);
        for (size_t i = 0; r == 0 && i < cfg->n_disks; i++)
                r = make_absolute((const char **)&((struct hv_disk *)cfg->disks)[i].path);
        return r;
}

/* Base64 text only: these values end up inside QEMU option strings, where a ',' would
 * smuggle in options of its own (they may come from pod annotations such as initdata). */
static bool valid_base64(const char *s)
{
        if (!s)
                return true;
        if (!*s || strlen(s) > 4096)
                return false;
        for (; *s; s++)
                if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                      (*s >= '0' && *s <= '9') || *s == '+' || *s == '/' || *s == '='))
                        return false;
        return true;
}

static bool valid_mac(const char *s)
{
        if (!s)
                return true;
        if (strlen(s) != 17)
                return false;
        for (int i = 0; i < 17; i++) {
                bool hex = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
                           (s[i] >= 'A' && s[i] <= 'F');
                if (i % 3 == 2 ? s[i] != ':' : !hex)
                        return false;
        }
        return true;
}

static int validate(const struct hv_config *cfg, const struct hv_ops **ret_ops,
                    struct cc_error **err)
{
        if (!cfg)
                return cc_error_set(err, EINVAL, "no VM configuration");
        const struct hv_ops *ops = hv__backend_lookup(cfg->backend);
        if (!ops)
                return cc_error_set(err, EINVAL,
                                    "unknown hypervisor backend '%s' (known: qemu, "
                                    "clh, libvirt, mock)",
                                    cfg->backend ? cfg->backend : "(null)");
        if (!valid_name(cfg->name))
                return cc_error_set(err, EINVAL, "invalid VM name '%s' (1-64 of [A-Za-z0-9._-])",
                                    cfg->name ? cfg->name : "(null)");
        if (cc_isempty(cfg->run_dir) || cfg->run_dir[0] != '/')
                return cc_error_set(err, EINVAL, "run_dir must be an absolute path");
        if ((unsigned)cfg->tee.kind >= _HV_TEE_MAX || (unsigned)cfg->accel >= _HV_ACCEL_MAX ||
            (unsigned)cfg->channel >= _HV_CHANNEL_MAX)
                return cc_error_set(err, EINVAL, "invalid TEE, accelerator or channel value");
        if (cc_isempty(cfg->kernel))
                return cc_error_set(err, EINVAL, "no kernel configured");
        if (cfg->vcpus > 256 || cfg->memory_mib > (1u << 22))
                return cc_error_set(err, EINVAL, "vcpus (%u) or memory (%u MiB) out of range",
                                    cfg->vcpus, cfg->memory_mib);
        if (cfg->vsock_cid != 0 && cfg->vsock_cid < 3)
                return cc_error_set(err, EINVAL, "vsock CID %u is reserved (use >= 3)",
                                    cfg->vsock_cid);
        const struct hv_tee_config *t = &cfg->tee;
        if (!valid_base64(t->host_data) || !valid_base64(t->id_block) ||
            !valid_base64(t->id_auth) || !valid_base64(t->mrconfigid))
                return cc_error_set(err, EINVAL,
                                    "TEE host-data, id-block, id-auth and mrconfigid must be "
                                    "base64");
        for (size_t i = 0; i < cfg->n_nets; i++) {
                const struct hv_net *n = &cfg->nets[i];
                if (!valid_mac(n->mac))
                        return cc_error_set(err, EINVAL, "invalid MAC address '%s'", n->mac);
                /* A tap fd, or (libvirt, which takes no fds) a tap's name: exactly one. */
                if ((n->tap_fd >= 0) == (n->tap_name != NULL))
                        return cc_error_set(err, EINVAL, "NIC %zu: give a tap fd or a tap name", i);
                if (n->tap_name && (strlen(n->tap_name) == 0 || strlen(n->tap_name) >= 16 ||
                                    strpbrk(n->tap_name, "/: \t\n'\"<>&") ||
                                    !strcmp(n->tap_name, ".") || !strcmp(n->tap_name, "..")))
                        return cc_error_set(err, EINVAL, "NIC %zu: invalid tap name '%s'", i,
                                            n->tap_name);
                if (n->tap_name && !cc_streq(cfg->backend, "libvirt"))
                        return cc_error_set(err, EINVAL,
                                            "NIC %zu: a tap by name (%s) is for the libvirt "
                                            "backend; backend %s takes tap fds",
                                            i, n->tap_name, cfg->backend);
        }
        for (size_t i = 0; i < cfg->n_disks; i++) {
                const char *s = cfg->disks[i].serial;
                if (s && !hv__serial_valid(s))
                        return cc_error_set(err, EINVAL,
                                            "disk %zu: invalid serial '%.32s' (1-20 of "
                                            "[A-Za-z0-9._-])",
                                            i, s);
        }
        if (cfg->hotplug_slots > HV_MAX_HOTPLUG_SLOTS)
                return cc_error_set(err, EINVAL, "hotplug_slots %u out of range (at most %u)",
                                    cfg->hotplug_slots, HV_MAX_HOTPLUG_SLOTS);
        if (!cfg->user_net && cfg->user_net_mac)
                return cc_error_set(err, EINVAL, "user_net_mac set without user_net");
        if (cfg->user_net && cfg->tee.kind != HV_TEE_NONE)
                return cc_error_set(err, EINVAL,
                                    "the user-mode network (network_model = user) is for "
                                    "development only and is refused for TEE profile %s",
                                    hv_tee_to_string(cfg->tee.kind));
        if (!valid_mac(cfg->user_net_mac))
                return cc_error_set(err, EINVAL, "invalid MAC address '%s'", cfg->user_net_mac);
        *ret_ops = ops;
        return 0;
}

int hv_check(const struct hv_config *cfg, struct cc_error **err)
{
        const struct hv_ops *ops;
        int r = validate(cfg, &ops, err);
        if (r < 0)
                return r;
        struct hv_host host;
        hv__host_probe(NULL, &host);
        struct hv_reasons reasons = {0};
        /* The mock runs anything: its purpose is tests on any host. */
        if (ops != &hv_mock_ops)
                hv__check_common(cfg, &host, &reasons);
        if (ops->check)
                ops->check(cfg, &host, &reasons);
        return hv__reasons_to_error(&reasons, "host cannot run this VM", err);
}

int hv_vm_new(const struct hv_config *cfg, struct hv_vm **ret, struct cc_error **err)
{
        const struct hv_ops *ops;
        int r = validate(cfg, &ops, err);
        if (r < 0)
                return r;
        struct hv_vm *vm = NULL;
        r = ops->alloc(&vm, err);
        if (r < 0)
                return r;
        vm->ops = ops;
        r = hv__config_copy(&vm->cfg, cfg);
        /* File paths go to other processes (libvirtd) with another working directory. */
        if (r == 0)
                r = absolutize(&vm->cfg);
        if (r == 0 && !vm->cfg.vcpus)
                vm->cfg.vcpus = 1;
        if (r == 0 && !vm->cfg.memory_mib)
                vm->cfg.memory_mib = 2048;
        if (r == 0) {
                vm->console_owned = !cfg->console_log;
                vm->console_log = vm->cfg.console_log ? strdup(vm->cfg.console_log)
                                                      : hv__path(cfg->run_dir, "console.log");
                if (!vm->console_log)
                        r = -ENOMEM;
        }
        if (r < 0) {
                hv_vm_free(vm);
                return cc_error_set(err, r, "copy VM configuration: %s", strerror(-r));
        }
        *ret = vm;
        return 0;
}

int hv_vm_start(struct hv_vm *vm, int timeout_ms, struct cc_error **err)
{
        if (!vm)
                return cc_error_set(err, EINVAL, "no VM");
        if (vm->started)
                return cc_error_set(err, EEXIST, "VM %s already started", vm->cfg.name);
        int r = hv_check(&vm->cfg, err);
        if (r < 0)
                return r;
        vm->started = true;
        r = vm->ops->start(vm, timeout_ms, err);
        if (r < 0) {
                vm->started = false;
                return cc_error_wrap(err, -r, "start VM %s (%s)", vm->cfg.name, vm->ops->name);
        }
        return 0;
}

int hv_vm_stop(struct hv_vm *vm, int grace_ms, struct cc_error **err)
{
        if (!vm)
                return cc_error_set(err, EINVAL, "no VM");
        if (!vm->started)
                return 0;
        int r = vm->ops->stop(vm, grace_ms, err);
        if (r < 0)
                return cc_error_wrap(err, -r, "stop VM %s", vm->cfg.name);
        return 0;
}

int hv_vm_wait(struct hv_vm *vm, int timeout_ms, struct hv_exit *ret, struct cc_error **err)
{
        if (!vm)
                return cc_error_set(err, EINVAL, "no VM");
        if (!vm->started)
                return cc_error_set(err, ESRCH, "VM %s was not started", vm->cfg.name);
        struct hv_exit ex = {.code = -1};
        int r = vm->ops->wait(vm, timeout_ms, &ex, err);
        if (r < 0)
                return r;
        if (ret)
                *ret = ex;
        return 0;
}

int hv_vm_exit_fd(struct hv_vm *vm)
{
        if (!vm || !vm->started)
                return -ESRCH;
        if (!vm->ops->exit_fd)
                return -EOPNOTSUPP;
        return vm->ops->exit_fd(vm);
}

int hv_vm_agent_address(struct hv_vm *vm, char **ret, struct cc_error **err)
{
        if (!vm || !ret)
                return cc_error_set(err, EINVAL, "no VM");
        if (!vm->ops->agent_address)
                return cc_error_set(err, EOPNOTSUPP, "%s has no agent address", vm->ops->name);
        return vm->ops->agent_address(vm, ret, err);
}

int hv_vm_disk_add(struct hv_vm *vm, const struct hv_disk *disk, int timeout_ms,
                   struct cc_error **err)
{
        if (!vm || !disk || !disk->path)
                return cc_error_set(err, EINVAL, "no VM or no disk path");
        if (!disk->serial || !hv__serial_valid(disk->serial))
                return cc_error_set(
                        err, EINVAL,
                        "a hot-plugged disk needs a serial of 1-20 bytes of [A-Za-z0-9._-], "
                        "got '%s'",
                        disk->serial ? disk->serial : "");
        if (!vm->started)
                return cc_error_set(err, ESRCH, "VM %s is not running", vm->cfg.name);
        if (!vm->ops->disk_add)
                return cc_error_set(err, EOPNOTSUPP, "the %s backend cannot hot-plug disks",
                                    vm->ops->name);
        return vm->ops->disk_add(vm, disk, timeout_ms, err);
}

int hv_vm_disk_remove(struct hv_vm *vm, const char *serial, int timeout_ms, struct cc_error **err)
{
        if (!vm || !serial || !hv__serial_valid(serial))
                return cc_error_set(err, EINVAL, "no VM or no valid disk serial");
        if (!vm->started)
                return cc_error_set(err, ESRCH, "VM %s is not running", vm->cfg.name);
        if (!vm->ops->disk_remove)
                return cc_error_set(err, EOPNOTSUPP, "the %s backend cannot hot-unplug disks",
                                    vm->ops->name);
        return vm->ops->disk_remove(vm, serial, timeout_ms, err);
}

int hv_vm_pids(struct hv_vm *vm, pid_t *ret, size_t max)
{
        if (!vm || !vm->started)
                return 0;
        if (!vm->ops->pids)
                return -EOPNOTSUPP;
        return vm->ops->pids(vm, ret, max);
}

const char *hv_vm_backend(const struct hv_vm *vm)
{
        return vm ? vm->ops->name : NULL;
}

const char *hv_vm_console_log(const struct hv_vm *vm)
{
        return vm ? vm->console_log : NULL;
}

struct hv_vm *hv_vm_free(struct hv_vm *vm)
{
        if (!vm)
                return NULL;
        if (vm->started && vm->ops->stop)
                vm->ops->stop(vm, 0, NULL);
        if (vm->console_owned)
                hv__unlink(vm->console_log);
        free(vm->console_log);
        hv__config_done(&vm->cfg);
        vm->ops->free(vm);
        return NULL;
}
