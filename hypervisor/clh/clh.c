/*
 * The Cloud Hypervisor backend: start `cloud-hypervisor --api-socket path=...`, then over its
 * REST API vmm.ping -> vm.create (VmConfig) -> vm.add-net per pod NIC (the tap fd passed with
 * SCM_RIGHTS) -> vm.boot -> vm.info (state Running), as Kata does
 * (reference 2.5). Stop: vm.power-button with a grace period, then vmm.shutdown, then SIGKILL.
 * The agent is reached over CH's hybrid vsock (2.4). Untested against a real Cloud Hypervisor:
 * it needs KVM, which the development machines lack; a fake API server checks every request.
 */
#include "hypervisor/clh/clh.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/error.h"
#include "cc/log.h"

/* A hot-plugged disk: `removing` once vm.remove-device was accepted and the guest has yet to
 * release it. */
struct clh_disk {
        char serial[21];
        bool used;
        bool removing;
};

struct clh_vm {
        struct hv_vm vm;
        struct hv_proc proc;
        struct clh_disk disks[HV_MAX_HOTPLUG_SLOTS];
        char *api_path;
        char *vsock_path;
        char *log_path;
};

static struct clh_vm *to_clh(struct hv_vm *vm)
{
        return cc_container_of(vm, struct clh_vm, vm);
}

static void clh_check(const struct hv_config *cfg, const struct hv_host *host, struct hv_reasons *r)
{
        const char *path = cfg->vmm_path ? cfg->vmm_path : "cloud-hypervisor";
        if (!host->kvm)
                hv__reason_add(r, ENODEV, "Cloud Hypervisor needs hardware KVM (or MSHV)");
        if (!hv__find_program(path))
                hv__reason_add(r, ENOENT, "%s not found%s", path,
                               strchr(path, '/') ? "" : " in PATH");
        const struct hv_tee_profile *p = hv__tee_profile(cfg->tee.kind);
        if (p && !hv__tee_supported(&hv_clh_ops, p))
                hv__reason_add(r, EOPNOTSUPP, "clh backend renders only none and tdx, not %s",
                               hv_tee_to_string(cfg->tee.kind));
}

static int clh_alloc(struct hv_vm **ret, struct cc_error **err)
{
        struct clh_vm *c = calloc(1, sizeof(*c));
        if (!c)
                return cc_error_set(err, ENOMEM, "out of memory");
        c->proc = (struct hv_proc)HV_PROC_INIT;
        *ret = &c->vm;
        return 0;
}

static void remove_run_files(struct clh_vm *c)
{
        hv__unlink(c->api_path);
        hv__unlink(c->vsock_path);
}

static int start_failed(struct clh_vm *c, int r, struct cc_error **err)
{
        bool died = c->proc.pid > 0 && hv__proc_wait(&c->proc, 0) == 0;
        hv__proc_kill(&c->proc);
        remove_run_files(c);
        if (died) {
                _cleanup_free_ char *last = hv__file_last_line(c->log_path);
                cc_error_set(err, ECHILD,
                             "cloud-hypervisor exited (status %d, signal %d) during "
                             "start%s%s",
                             c->proc.exit.code, c->proc.exit.signal, last && *last ? ": " : "",
                             last ? last : "");
                return -ECHILD;
        }
        return r;
}

/* The body of a failed call, for its error. */
static int http_failed(const char *method, const char *ep, int status, const char *resp,
                       struct cc_error **err)
{
        return cc_error_set(err, EIO, "clh %s %s: HTTP %d%s%.200s", method, ep, status,
                            resp && *resp ? ": " : "", resp ? resp : "");
}

/* PUT/GET expecting `want` (204 or 200); anything else fails with the server's words. */
static int call(struct clh_vm *c, const char *method, const char *ep, const char *body, int want,
                int64_t deadline, char **ret_body, struct cc_error **err)
{
        _cleanup_free_ char *resp = NULL;
        int status =
                hv_clh_request(c->api_path, method, ep, body, hv__remaining(deadline), &resp, err);
        if (status < 0)
                return status;
        if (status != want)
                return http_failed(method, ep, status, resp, err);
        if (ret_body)
                *ret_body = TAKE_PTR(resp);
        return 0;
}

/*
 * The pod's NICs, cold-added between vm.create and vm.boot as Kata does: one vm.add-net per tap,
 * its fd passed beside the request (CH answers 204 before boot, 200 with the PCI address after).
 */
static int add_nets(struct clh_vm *c, int64_t deadline, struct cc_error **err)
{
        const struct hv_config *cfg = &c->vm.cfg;
        for (size_t i = 0; i < cfg->n_nets; i++) {
                _cleanup_free_ char *body = NULL, *resp = NULL;
                int r = hv_clh_netconfig(cfg, i, &body, err);
                if (r < 0)
                        return r;
                int status = hv_clh_request_fds(c->api_path, "PUT", "vm.add-net", body,
                                                &cfg->nets[i].tap_fd, 1, hv__remaining(deadline),
                                                &resp, err);
                if (status < 0)
                        return status;
                if (status != 204 && status != 200)
                        return http_failed("PUT", "vm.add-net", status, resp, err);
        }
        return 0;
}

static int clh_start(struct hv_vm *vm, int timeout_ms, struct cc_error **err)
{
        struct clh_vm *c = to_clh(vm);
        const struct hv_config *cfg = &vm->cfg;
        int64_t deadline = hv__deadline(timeout_ms);
        free(c->api_path);
        free(c->vsock_path);
        free(c->log_path);
        c->api_path = hv__path(cfg->run_dir, HV_CLH_API_SOCK);
        c->vsock_path = hv__path(cfg->run_dir, HV_CLH_VSOCK_SOCK);
        c->log_path = hv__path(cfg->run_dir, HV_CLH_LOG);
        if (!c->api_path || !c->vsock_path || !c->log_path)
                return cc_error_set(err, ENOMEM, "out of memory");
        hv__unlink(c->log_path);
        remove_run_files(c);

        struct hv_clh_plan plan = {.cfg = cfg, .console_log = vm->console_log};
        json_object *vmconfig = NULL;
        int r = hv_clh_vmconfig(&plan, &vmconfig, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *body = strdup(json_object_to_json_string_ext(
                vmconfig, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(vmconfig);
        if (!body)
                return cc_error_set(err, ENOMEM, "out of memory");

        struct hv_argv argv = {0};
        hv__argv_add(&argv, cfg->vmm_path ? cfg->vmm_path : "cloud-hypervisor");
        hv__argv_add(&argv, "--api-socket");
        hv__argv_addf(&argv, "path=%s", c->api_path);
        if (argv.failed) {
                hv__argv_done(&argv);
                return cc_error_set(err, ENOMEM, "out of memory");
        }
        r = hv__proc_spawn(&c->proc, argv.v, NULL, 0, c->log_path, err);
        hv__argv_done(&argv);
        if (r < 0)
                return r;

        /* The VMM creates its API socket itself: ping until it answers (or dies). */
        for (;;) {
                _cleanup_error_ struct cc_error *ping_err = NULL;
                int s = hv_clh_request(c->api_path, "GET", "vmm.ping", NULL,
                                       hv__remaining(deadline), NULL, &ping_err);
                if (s == 200)
                        break;
                if (hv__proc_wait(&c->proc, 0) == 0)
                        return start_failed(c, -ECHILD, err);
                if (hv__remaining(deadline) == 0)
                        return start_failed(
                                c, cc_error_set(err, ETIMEDOUT, "clh: API socket not answering"),
                                err);
                if (s >= 100)
                        return start_failed(c, cc_error_set(err, EIO, "clh: vmm.ping: HTTP %d", s),
                                            err);
                hv__proc_wait(&c->proc, 5);
        }
        r = call(c, "PUT", "vm.create", body, 204, deadline, NULL, err);
        if (r == 0)
                r = add_nets(c, deadline, err);
        if (r == 0)
                r = call(c, "PUT", "vm.boot", NULL, 204, deadline, NULL, err);
        _cleanup_free_ char *info = NULL;
        if (r == 0)
                r = call(c, "GET", "vm.info", NULL, 200, deadline, &info, err);
        if (r == 0) {
                json_object *o = json_tokener_parse(info);
                json_object *st = NULL;
                const char *state = o && json_object_object_get_ex(o, "state", &st) &&
                                                    json_object_is_type(st, json_type_string)
                                            ? json_object_get_string(st)
                                            : "";
                if (strcmp(state, "Running") != 0)
                        r = cc_error_set(err, EIO, "clh: VM state is '%s', not Running", state);
                json_object_put(o);
        }
        if (r < 0)
                return start_failed(c, r, err);
        return 0;
}

static int clh_wait(struct hv_vm *vm, int timeout_ms, struct hv_exit *ret, struct cc_error **err)
{
        struct clh_vm *c = to_clh(vm);
        int r = hv__proc_wait(&c->proc, timeout_ms);
        if (r == -ETIMEDOUT)
                return cc_error_set(err, ETIMEDOUT, "VM %s still running", vm->cfg.name);
        if (r < 0)
                return cc_error_set(err, -r, "VM %s: wait: %s", vm->cfg.name, strerror(-r));
        remove_run_files(c);
        memset(c->disks, 0, sizeof(c->disks));
        *ret = c->proc.exit;
        return 0;
}

static int clh_stop(struct hv_vm *vm, int grace_ms, struct cc_error **err)
{
        struct clh_vm *c = to_clh(vm);
        if (hv__proc_running(&c->proc) && grace_ms > 0) {
                /* ACPI power button: the guest shuts down; then the VMM is told to exit. */
                if (hv_clh_request(c->api_path, "PUT", "vm.power-button", NULL, 1000, NULL, NULL) ==
                    204) {
                        int64_t deadline = hv__deadline(grace_ms);
                        while (hv__remaining(deadline) > 0 && hv__proc_running(&c->proc)) {
                                _cleanup_free_ char *info = NULL;
                                if (hv_clh_request(c->api_path, "GET", "vm.info", NULL, 1000, &info,
                                                   NULL) != 200 ||
                                    !strstr(info, "\"Running\""))
                                        break;
                                hv__proc_wait(&c->proc, 50);
                        }
                }
        }
        if (hv__proc_running(&c->proc)) {
                hv_clh_request(c->api_path, "PUT", "vmm.shutdown", NULL, 1000, NULL, NULL);
                hv__proc_wait(&c->proc, 2000);
        }
        hv__proc_kill(&c->proc);
        remove_run_files(c);
        memset(c->disks, 0, sizeof(c->disks));
        return 0;
}

static int clh_exit_fd(struct hv_vm *vm)
{
        struct clh_vm *c = to_clh(vm);
        return c->proc.pidfd >= 0 ? c->proc.pidfd : -ESRCH;
}

static int clh_agent_address(struct hv_vm *vm, char **ret, struct cc_error **err)
{
        struct clh_vm *c = to_clh(vm);
        if (!vm->started || !c->vsock_path)
                return cc_error_set(err, ESRCH, "VM %s not started", vm->cfg.name);
        if (asprintf(ret, "hvsock:%s:%d", c->vsock_path, HV_AGENT_VSOCK_PORT) < 0)
                return cc_error_set(err, ENOMEM, "out of memory");
        return 0;
}

static int clh_pids(struct hv_vm *vm, pid_t *ret, size_t max)
{
        struct clh_vm *c = to_clh(vm);
        if (!hv__proc_running(&c->proc) || max == 0)
                return 0;
        ret[0] = c->proc.pid;
        return 1;
}

static struct clh_disk *find_disk(struct clh_vm *c, const char *serial)
{
        for (size_t i = 0; i < CC_ARRAY_SIZE(c->disks); i++)
                if (c->disks[i].used && strcmp(c->disks[i].serial, serial) == 0)
                        return &c->disks[i];
        return NULL;
}

/*
 * vm.add-disk with a DiskConfig (2.1, 2.2): CH answers 200 with the new PCI device's id and
 * BDF once the device is plugged. CH needs no pre-allocated slots; at most
 * HV_MAX_HOTPLUG_SLOTS disks are tracked.
 */
static int clh_disk_add(struct hv_vm *vm, const struct hv_disk *disk, int timeout_ms,
                        struct cc_error **err)
{
        struct clh_vm *c = to_clh(vm);
        if (!hv__proc_running(&c->proc))
                return cc_error_set(err, ESRCH, "VM %s: cloud-hypervisor is not running",
                                    vm->cfg.name);
        int kind = hv__disk_kind(disk->path, err);
        if (kind < 0)
                return kind;
        if (find_disk(c, disk->serial))
                return cc_error_set(err, EEXIST, "a disk with serial '%s' is attached already",
                                    disk->serial);
        struct clh_disk *d = NULL;
        for (size_t i = 0; i < CC_ARRAY_SIZE(c->disks) && !d; i++)
                if (!c->disks[i].used)
                        d = &c->disks[i];
        if (!d)
                return cc_error_set(err, ENOSPC, "no room for disk '%s': %u hot-plugged already",
                                    disk->serial, (unsigned)CC_ARRAY_SIZE(c->disks));
        _cleanup_free_ char *body = NULL;
        int r = hv_clh_diskconfig(disk, kind == 1, &body, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *resp = NULL;
        int status =
                hv_clh_request(c->api_path, "PUT", "vm.add-disk", body, timeout_ms, &resp, err);
        if (status < 0)
                return cc_error_wrap(err, -status, "disk '%s' (%s)", disk->serial, disk->path);
        if (status != 200 && status != 204)
                return cc_error_wrap(err, -http_failed("PUT", "vm.add-disk", status, resp, err),
                                     "disk '%s' (%s)", disk->serial, disk->path);
        *d = (struct clh_disk){.used = true};
        snprintf(d->serial, sizeof(d->serial), "%s", disk->serial);
        return 0;
}

/* Whether vm.info's device_tree still holds the device `id`; -errno when vm.info fails. */
static int device_present(struct clh_vm *c, const char *id, int64_t deadline, struct cc_error **err)
{
        _cleanup_free_ char *info = NULL;
        int r = call(c, "GET", "vm.info", NULL, 200, deadline, &info, err);
        if (r < 0)
                return r;
        json_object *o = json_tokener_parse(info), *tree = NULL;
        bool present = o && json_object_object_get_ex(o, "device_tree", &tree) &&
                       json_object_object_get_ex(tree, id, NULL);
        json_object_put(o);
        return present;
}

/*
 * vm.remove-device asks the guest to eject the device (ACPI); CH lets go of the disk once the
 * guest has, and the device then leaves vm.info's device_tree: poll for that.
 */
static int clh_disk_remove(struct hv_vm *vm, const char *serial, int timeout_ms,
                           struct cc_error **err)
{
        struct clh_vm *c = to_clh(vm);
        int64_t deadline = hv__deadline(timeout_ms);
        if (!hv__proc_running(&c->proc))
                return cc_error_set(err, ESRCH, "VM %s: cloud-hypervisor is not running",
                                    vm->cfg.name);
        struct clh_disk *d = find_disk(c, serial);
        if (!d)
                return cc_error_set(err, ENOENT, "no disk with serial '%s' was hot-plugged",
                                    serial);
        char id[32], body[64];
        snprintf(id, sizeof(id), HV_CLH_DISK_PREFIX "%s", serial);
        snprintf(body, sizeof(body), "{\"id\":\"%s\"}", id);
        int r;
        if (!d->removing) {
                r = call(c, "PUT", "vm.remove-device", body, 204, deadline, NULL, err);
                if (r < 0)
                        return cc_error_wrap(err, -r, "disk '%s'", serial);
                d->removing = true;
        }
        while ((r = device_present(c, id, deadline, err)) != 0) {
                if (r < 0 && r != -ETIMEDOUT)
                        return cc_error_wrap(err, -r, "disk '%s': waiting for its removal", serial);
                if (r < 0 || hv__remaining(deadline) == 0)
                        return cc_error_set(err, ETIMEDOUT,
                                            "disk '%s': the guest did not release the device "
                                            "within %d ms; it stays attached and a later remove "
                                            "can retry",
                                            serial, timeout_ms);
                hv__proc_wait(&c->proc, 50);
        }
        *d = (struct clh_disk){0};
        return 0;
}

static void clh_free(struct hv_vm *vm)
{
        struct clh_vm *c = to_clh(vm);
        hv__proc_done(&c->proc);
        remove_run_files(c);
        hv__unlink(c->log_path);
        free(c->api_path);
        free(c->vsock_path);
        free(c->log_path);
        free(c);
}

const struct hv_ops hv_clh_ops = {
        .name = "clh",
        .caps = HV_CAP_TEE_TDX,
        .check = clh_check,
        .alloc = clh_alloc,
        .start = clh_start,
        .stop = clh_stop,
        .wait = clh_wait,
        .exit_fd = clh_exit_fd,
        .agent_address = clh_agent_address,
        .pids = clh_pids,
        .disk_add = clh_disk_add,
        .disk_remove = clh_disk_remove,
        .free = clh_free,
};
