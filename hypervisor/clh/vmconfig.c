/*
 * Cloud Hypervisor VmConfig, rendered with no I/O so that golden tests can pin it. Fields and
 * their meaning: ../shared/reference/hypervisor-agent.md section 2.2 (schema), 2.3 (TDX via
 * platform.tdx + payload.firmware), 2.4 (hybrid vsock), 2.5 (what Kata sets).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/error.h"

#include "hypervisor/clh/clh.h"

static void add_str(json_object *o, const char *key, const char *v)
{
        json_object_object_add(o, key, json_object_new_string(v));
}

int hv_clh_vmconfig(const struct hv_clh_plan *plan, json_object **ret, struct cc_error **err)
{
        const struct hv_config *cfg = plan->cfg;
        const struct hv_tee_profile *p = hv__tee_profile(cfg->tee.kind);
        if (!p || !hv__tee_supported(&hv_clh_ops, p))
                return cc_error_set(err, EOPNOTSUPP,
                                    "clh backend: TEE profile %s is not supported (Cloud "
                                    "Hypervisor runs SEV-SNP only with IGVM firmware; only tdx "
                                    "and none are rendered)",
                                    hv_tee_to_string(cfg->tee.kind));
        /* A CH TEE guest (TDX, the one CH runs) boots its firmware (CH takes TD-Shim as well
         * as TDVF) and has no serial port: its console is virtio (hvc0) (2.3). */
        bool tee = p->clh_platform != NULL;
        if (tee && !cfg->firmware)
                return cc_error_set(err, EINVAL, "clh backend: %s needs TD-Shim or TDVF firmware",
                                    p->name);
        if (cfg->channel == HV_CHANNEL_SERIAL)
                return cc_error_set(err, EOPNOTSUPP,
                                    "clh backend: the agent channel is hybrid vsock; no "
                                    "virtio-serial");
        if (cfg->user_net)
                return cc_error_set(err, EOPNOTSUPP,
                                    "clh backend: no user-mode network (QEMU only)");

        _cleanup_free_ char *vsock_path = hv__path(cfg->run_dir, HV_CLH_VSOCK_SOCK);
        _cleanup_free_ char *cmdline = NULL;
        if (asprintf(&cmdline, "console=%s " HV_GUEST_BASE_PARAMS "%s%s", tee ? "hvc0" : "ttyS0",
                     cc_isempty(cfg->kernel_params) ? "" : " ",
                     cc_isempty(cfg->kernel_params) ? "" : cfg->kernel_params) < 0)
                cmdline = NULL;
        if (!vsock_path || !cmdline)
                return cc_error_set(err, ENOMEM, "out of memory");

        json_object *vm = json_object_new_object();
        json_object *payload = json_object_new_object();
        if (cfg->firmware)
                add_str(payload, "firmware", cfg->firmware);
        add_str(payload, "kernel", cfg->kernel);
        add_str(payload, "cmdline", cmdline);
        if (cfg->initrd)
                add_str(payload, "initramfs", cfg->initrd);
        json_object_object_add(vm, "payload", payload);

        /* No CPU or memory hotplug: max_vcpus = boot_vcpus, no hotplug_size (1.1, 2.5). */
        json_object *cpus = json_object_new_object();
        json_object_object_add(cpus, "boot_vcpus", json_object_new_int((int)cfg->vcpus));
        json_object_object_add(cpus, "max_vcpus", json_object_new_int((int)cfg->vcpus));
        json_object_object_add(vm, "cpus", cpus);
        json_object *memory = json_object_new_object();
        json_object_object_add(memory, "size",
                               json_object_new_int64((int64_t)cfg->memory_mib << 20));
        json_object_object_add(memory, "shared", json_object_new_boolean(false));
        json_object_object_add(vm, "memory", memory);

        if (tee) {
                json_object *platform = json_object_new_object();
                json_object_object_add(platform, p->clh_platform, json_object_new_boolean(true));
                json_object_object_add(vm, "platform", platform);
        }

        for (size_t i = 0; i < cfg->n_disks; i++) {
                json_object *disks = NULL;
                if (!json_object_object_get_ex(vm, "disks", &disks)) {
                        disks = json_object_new_array();
                        json_object_object_add(vm, "disks", disks);
                }
                json_object *d = json_object_new_object();
                add_str(d, "path", cfg->disks[i].path);
                json_object_object_add(d, "readonly",
                                       json_object_new_boolean(cfg->disks[i].readonly));
                if (cfg->disks[i].serial)
                        add_str(d, "serial", cfg->disks[i].serial);
                json_object_array_add(disks, d);
        }

        /* Console log: serial to a file (ttyS0), or the virtio console for a TEE guest. */
        json_object *serial = json_object_new_object();
        json_object *console = json_object_new_object();
        if (tee) {
                add_str(serial, "mode", "Off");
                add_str(console, "mode", "File");
                add_str(console, "file", plan->console_log);
        } else {
                add_str(serial, "mode", "File");
                add_str(serial, "file", plan->console_log);
                add_str(console, "mode", "Off");
        }
        json_object_object_add(vm, "serial", serial);
        json_object_object_add(vm, "console", console);

        /* Hybrid vsock: the host side is a unix socket in the run directory (2.4). */
        json_object *vsock = json_object_new_object();
        json_object_object_add(vsock, "cid", json_object_new_int(HV_CLH_GUEST_CID));
        add_str(vsock, "socket", vsock_path);
        json_object_object_add(vm, "vsock", vsock);
        *ret = vm;
        return 0;
}

int hv_clh_netconfig(const struct hv_config *cfg, size_t i, char **ret, struct cc_error **err)
{
        /* NetConfig (2.2) of tap i: the fd itself travels beside the request (SCM_RIGHTS), so
         * the body names only the device id and the guest MAC; no `tap` name, no ip/mask (the
         * agent configures the guest NIC from the pod's interface). */
        json_object *o = json_object_new_object();
        char id[32];
        snprintf(id, sizeof(id), "net%zu", i);
        add_str(o, "id", id);
        if (cfg->nets[i].mac)
                add_str(o, "mac", cfg->nets[i].mac);
        char *body = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        if (!body)
                return cc_error_set(err, ENOMEM, "out of memory");
        *ret = body;
        return 0;
}

int hv_clh_diskconfig(const struct hv_disk *disk, bool direct, char **ret, struct cc_error **err)
{
        /* DiskConfig (2.2): the id names the device for vm.remove-device; the serial is what
         * the guest reads in /sys/block/vdX/serial. */
        json_object *o = json_object_new_object();
        _cleanup_free_ char *id = NULL;
        if (!o || asprintf(&id, HV_CLH_DISK_PREFIX "%s", disk->serial) < 0) {
                json_object_put(o);
                return cc_error_set(err, ENOMEM, "out of memory");
        }
        add_str(o, "path", disk->path);
        json_object_object_add(o, "readonly", json_object_new_boolean(disk->readonly));
        json_object_object_add(o, "direct", json_object_new_boolean(direct));
        add_str(o, "serial", disk->serial);
        add_str(o, "id", id);
        char *body = strdup(json_object_to_json_string_ext(
                o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        if (!body)
                return cc_error_set(err, ENOMEM, "out of memory");
        *ret = body;
        return 0;
}
