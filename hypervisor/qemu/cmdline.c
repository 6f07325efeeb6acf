/*
 * The QEMU command line, rendered from a plan with no I/O so that golden tests can pin it.
 * Facts: ../shared/reference/hypervisor-agent.md section 1 (what Kata emits and why; QEMU 7.2
 * experiments) and 7.3 (the virtio-serial agent channel).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/error.h"

#include "hypervisor/qemu/qemu.h"

/* QEMU option values separate options with ',': a literal comma is written twice. */
static char *opt_escape(const char *s)
{
        size_t n = 0;
        for (const char *p = s; *p; p++)
                n += *p == ',' ? 2 : 1;
        char *out = malloc(n + 1);
        if (!out)
                return NULL;
        char *o = out;
        for (const char *p = s; *p; p++) {
                *o++ = *p;
                if (*p == ',')
                        *o++ = ',';
        }
        *o = 0;
        return out;
}

#define ESC(var, s)                               \
        _cleanup_free_ char *var = opt_escape(s); \
        if (!var)                                 \
                return cc_error_set(err, ENOMEM, "out of memory");

/*
 * The confidential-guest-support object "tee0", one hook per TEE profile; the QOM type, the
 * default policy and kernel-hashes come from the profile (hypervisor/tee.c).
 *
 * TDX: JSON syntax, because quote-generation-socket is a SocketAddress struct, which the
 * key=value syntax cannot express (reference 1.2). vsock cid/port are strings there.
 */
static int tdx_object(const struct hv_qemu_plan *plan, const struct hv_tee_profile *p,
                      struct hv_argv *a, struct cc_error **err)
{
        const struct hv_tee_config *tee = &plan->cfg->tee;
        json_object *o = json_object_new_object();
        if (!o)
                return cc_error_set(err, ENOMEM, "out of memory");
        json_object_object_add(o, "qom-type", json_object_new_string(p->qemu_object));
        json_object_object_add(o, "id", json_object_new_string("tee0"));
        uint64_t attrs = hv__tee_policy(tee);
        if (attrs)
                json_object_object_add(o, "attributes", json_object_new_uint64(attrs));
        if (!cc_isempty(tee->mrconfigid))
                json_object_object_add(o, "mrconfigid", json_object_new_string(tee->mrconfigid));
        json_object *qgs = json_object_new_object();
        if (!cc_isempty(tee->qgs_socket)) {
                json_object_object_add(qgs, "type", json_object_new_string("unix"));
                json_object_object_add(qgs, "path", json_object_new_string(tee->qgs_socket));
        } else {
                json_object_object_add(qgs, "type", json_object_new_string("vsock"));
                json_object_object_add(qgs, "cid", json_object_new_string("2"));
                json_object_object_add(qgs, "port", json_object_new_string("4050"));
        }
        json_object_object_add(o, "quote-generation-socket", qgs);
        hv__argv_add(a, "-object");
        hv__argv_add(a, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return 0;
}

/* SEV, SEV-ES (the same object with policy bit 2 set) and SNP: key=value options; `extra`
 * are the profile's own options, each starting with ','. */
static void amd_object(const struct hv_qemu_plan *plan, const struct hv_tee_profile *p,
                       const char *extra, struct hv_argv *a)
{
        const struct hv_tee_config *tee = &plan->cfg->tee;
        hv__argv_add(a, "-object");
        hv__argv_addf(a, "%s,id=tee0,cbitpos=%u,reduced-phys-bits=%u,policy=0x%" PRIx64 "%s%s",
                      p->qemu_object, plan->cbitpos, hv__tee_reduced_phys_bits(tee),
                      hv__tee_policy(tee), p->kernel_hashes ? ",kernel-hashes=on" : "", extra);
}

static int sev_object(const struct hv_qemu_plan *plan, const struct hv_tee_profile *p,
                      struct hv_argv *a, struct cc_error **err)
{
        amd_object(plan, p, "", a);
        return 0;
}

/* SNP adds the launch's id-block and id-auth (both or none) and the host data. */
static int snp_object(const struct hv_qemu_plan *plan, const struct hv_tee_profile *p,
                      struct hv_argv *a, struct cc_error **err)
{
        const struct hv_tee_config *tee = &plan->cfg->tee;
        _cleanup_free_ char *extra = NULL;
        if (asprintf(&extra, "%s%s%s%s%s%s", tee->id_block ? ",id-block=" : "",
                     tee->id_block ? tee->id_block : "", tee->id_auth ? ",id-auth=" : "",
                     tee->id_auth ? tee->id_auth : "", tee->host_data ? ",host-data=" : "",
                     tee->host_data ? tee->host_data : "") < 0)
                return cc_error_set(err, ENOMEM, "out of memory");
        amd_object(plan, p, extra, a);
        return 0;
}

typedef int tee_object_fn(const struct hv_qemu_plan *plan, const struct hv_tee_profile *p,
                          struct hv_argv *a, struct cc_error **err);
static tee_object_fn *const tee_objects[_HV_TEE_MAX] = {
        [HV_TEE_TDX] = tdx_object,
        [HV_TEE_SEV] = sev_object,
        [HV_TEE_SEV_ES] = sev_object,
        [HV_TEE_SEV_SNP] = snp_object,
};

/* Firmware: read-only pflash where the profile says so (SEV, SEV-ES, 1.4), else -bios (none,
 * SNP, TDX: TDVF cannot run from pflash, 1.2). */
static int firmware_args(const struct hv_config *cfg, const struct hv_tee_profile *p,
                         struct hv_argv *a, struct cc_error **err)
{
        if (!cfg->firmware)
                return 0;
        if (p->qemu_pflash) {
                ESC(fw, cfg->firmware);
                hv__argv_add(a, "-drive");
                hv__argv_addf(a, "if=pflash,format=raw,unit=0,readonly=on,file=%s", fw);
        } else {
                hv__argv_add(a, "-bios");
                hv__argv_add(a, cfg->firmware);
        }
        return 0;
}

/* The agent's channel and, when the handler enables it, the debug console's port. */
static void channel_args(const struct hv_qemu_plan *plan, const char *agent, const char *dbgcon,
                         struct hv_argv *a)
{
        if (plan->channel == HV_CHANNEL_VSOCK) {
                /* vhost-vsock with the fd that reserves the CID (1.7). */
                hv__argv_add(a, "-device");
                if (plan->vhost_fd >= 0)
                        hv__argv_addf(a,
                                      "vhost-vsock-pci,id=vsock0,guest-cid=%" PRIu32 ",vhostfd=%d",
                                      plan->cid, plan->vhost_fd);
                else
                        hv__argv_addf(a, "vhost-vsock-pci,id=vsock0,guest-cid=%" PRIu32, plan->cid);
        } else {
                /* A named virtio-serial port on a unix socket chardev (7.3). */
                hv__argv_add(a, "-device");
                hv__argv_add(a, "virtio-serial-pci,id=serial0");
                hv__argv_add(a, "-chardev");
                hv__argv_addf(a, "socket,id=agent0,path=%s,server=on,wait=off", agent);
                hv__argv_add(a, "-device");
                hv__argv_add(a, "virtserialport,bus=serial0.0,chardev=agent0,id=channel0,"
                                "name=" HV_AGENT_SERIAL_NAME);
        }
        if (plan->cfg->debug_console && plan->channel != HV_CHANNEL_VSOCK) {
                /* The agent's debug console, only when the handler's configuration enables it:
                 * with vsock the agent serves it on vsock port 1026 (Kata's); without, on its
                 * own virtio-serial port and socket. */
                hv__argv_add(a, "-chardev");
                hv__argv_addf(a, "socket,id=dbgcon0,path=%s,server=on,wait=off", dbgcon);
                hv__argv_add(a, "-device");
                hv__argv_add(a, "virtserialport,bus=serial0.0,chardev=dbgcon0,id=channel1,"
                                "name=" HV_DEBUG_CONSOLE_NAME);
        }
}

/* Disks, then the pod's tap NICs (fds passed from tap_fd_base on). */
static int device_args(const struct hv_qemu_plan *plan, struct hv_argv *a, struct cc_error **err)
{
        const struct hv_config *cfg = plan->cfg;
        for (size_t i = 0; i < cfg->n_disks; i++) {
                ESC(path, cfg->disks[i].path);
                hv__argv_add(a, "-drive");
                hv__argv_addf(a, "file=%s,if=none,id=disk%zu,format=raw%s", path, i,
                              cfg->disks[i].readonly ? ",readonly=on" : "");
                hv__argv_add(a, "-device");
                /* The serial is checked (hv_disk_serial_ok): no escaping needed. */
                hv__argv_addf(a, "virtio-blk-pci,drive=disk%zu,id=blk%zu%s%s", i, i,
                              cfg->disks[i].serial ? ",serial=" : "",
                              cfg->disks[i].serial ? cfg->disks[i].serial : "");
        }
        for (size_t i = 0; i < cfg->n_nets; i++) {
                hv__argv_add(a, "-netdev");
                hv__argv_addf(a, "tap,id=net%zu,fd=%d", i, plan->tap_fd_base + (int)i);
                hv__argv_add(a, "-device");
                if (cfg->nets[i].mac)
                        hv__argv_addf(a, "virtio-net-pci,netdev=net%zu,id=nic%zu,mac=%s", i, i,
                                      cfg->nets[i].mac);
                else
                        hv__argv_addf(a, "virtio-net-pci,netdev=net%zu,id=nic%zu", i, i);
        }
        return 0;
}

int hv_qemu_argv(const struct hv_qemu_plan *plan, struct hv_argv *a, struct cc_error **err)
{
        const struct hv_config *cfg = plan->cfg;
        const struct hv_tee_profile *tee = hv__tee_profile(cfg->tee.kind);
        bool kvm = plan->accel == HV_ACCEL_KVM;
        bool confidential = cfg->tee.kind != HV_TEE_NONE;
        if (!tee)
                return cc_error_set(err, EINVAL, "unknown TEE profile");
        if (confidential && !kvm)
                return cc_error_set(err, EINVAL, "%s needs KVM", tee->name);
        ESC(kernel, cfg->kernel);
        ESC(console, plan->console_log);
        _cleanup_free_ char *pidfile = hv__path(cfg->run_dir, HV_QEMU_PIDFILE);
        _cleanup_free_ char *agent_raw = hv__path(cfg->run_dir, HV_QEMU_AGENT_SOCK);
        _cleanup_free_ char *dbg_raw = hv__path(cfg->run_dir, HV_DEBUG_CONSOLE_SOCK);
        if (!pidfile || !agent_raw || !dbg_raw)
                return cc_error_set(err, ENOMEM, "out of memory");
        ESC(agent, agent_raw);
        ESC(dbgcon, dbg_raw);

        hv__argv_add(a, cfg->vmm_path ? cfg->vmm_path : "qemu-system-x86_64");
        hv__argv_add(a, "-name");
        hv__argv_addf(a, "%s,debug-threads=on", cfg->name);
        /* Confidential guests need a split irqchip (reference 1.1); the memory backend is
         * explicit, as Kata does (1.6). */
        hv__argv_add(a, "-machine");
        hv__argv_addf(a, "q35,accel=%s%s,memory-backend=mem0%s", kvm ? "kvm" : "tcg",
                      confidential ? ",kernel_irqchip=split" : "",
                      confidential ? ",confidential-guest-support=tee0" : "");
        /* TCG emulates "max"; under KVM the host model with the PMU off (Kata's default). */
        hv__argv_add(a, "-cpu");
        hv__argv_add(a, kvm ? "host,pmu=off" : "max");
        /* No hotplug for TEEs: maxcpus equals cpus and no memory slots (1.1). */
        hv__argv_add(a, "-smp");
        hv__argv_addf(a, "%u", cfg->vcpus);
        hv__argv_add(a, "-m");
        hv__argv_addf(a, "%uM", cfg->memory_mib);
        hv__argv_add(a, "-object");
        hv__argv_addf(a, "memory-backend-ram,id=mem0,size=%uM", cfg->memory_mib);
        hv__argv_add(a, "-no-user-config");
        hv__argv_add(a, "-nodefaults");
        hv__argv_add(a, "-nographic");
        hv__argv_add(a, "-no-reboot");
        /* QMP on a socket the library created and listens on already: no wait for QEMU to
         * create it, no race (1.1). */
        hv__argv_add(a, "-chardev");
        hv__argv_addf(a, "socket,id=qmp,fd=%d,server=on,wait=off", plan->qmp_fd);
        hv__argv_add(a, "-mon");
        hv__argv_add(a, "chardev=qmp,mode=control");
        hv__argv_add(a, "-pidfile");
        hv__argv_add(a, pidfile);
        /* The serial console (ttyS0, built into every kernel) goes to the console log. */
        hv__argv_add(a, "-chardev");
        hv__argv_addf(a, "file,id=console0,path=%s", console);
        hv__argv_add(a, "-serial");
        hv__argv_add(a, "chardev:console0");
        tee_object_fn *tee_object = tee_objects[cfg->tee.kind];
        int r = tee_object ? tee_object(plan, tee, a, err) : 0;
        if (r < 0 || (r = firmware_args(cfg, tee, a, err)) < 0)
                return r;
        hv__argv_add(a, "-kernel");
        hv__argv_add(a, cfg->kernel);
        if (cfg->initrd) {
                hv__argv_add(a, "-initrd");
                hv__argv_add(a, cfg->initrd);
        }
        hv__argv_add(a, "-append");
        hv__argv_addf(a, "%s%s%s", HV_QEMU_BASE_PARAMS, cc_isempty(cfg->kernel_params) ? "" : " ",
                      cc_isempty(cfg->kernel_params) ? "" : cfg->kernel_params);
        channel_args(plan, agent, dbgcon, a);
        if ((r = device_args(plan, a, err)) < 0)
                return r;
        if (cfg->user_net) {
                /* Development only: QEMU's user-mode network (slirp), the guest's 10.0.2.2 being
                 * the host's loopback. Checked here as well as in hv_vm_new() because this
                 * renderer is also called directly: never for a confidential guest. */
                if (confidential)
                        return cc_error_set(err, EINVAL,
                                            "the user-mode network is refused for TEE profile %s",
                                            tee->name);
                hv__argv_add(a, "-netdev");
                hv__argv_add(a, "user,id=usernet0");
                hv__argv_add(a, "-device");
                if (cfg->user_net_mac)
                        hv__argv_addf(a, "virtio-net-pci,netdev=usernet0,id=usernic0,mac=%s",
                                      cfg->user_net_mac);
                else
                        hv__argv_add(a, "virtio-net-pci,netdev=usernet0,id=usernic0");
        }
        if (cfg->hotplug_slots > HV_MAX_HOTPLUG_SLOTS)
                return cc_error_set(err, EINVAL, "hotplug_slots %u: at most %u", cfg->hotplug_slots,
                                    HV_MAX_HOTPLUG_SLOTS);
        /* Empty PCIe root ports for hv_vm_disk_add(), last so that they do not move the other
         * devices' addresses: a device can only be hot-plugged into a port (q35's pcie.0 takes
         * none), and TEE guests too take hot-plugged virtio-blk only there. Each port needs a
         * chassis number of its own (slot 0 in each). */
        for (unsigned i = 0; i < cfg->hotplug_slots; i++) {
                hv__argv_add(a, "-device");
                hv__argv_addf(a, "pcie-root-port,id=" HV_QEMU_ROOT_PORT "%u,bus=pcie.0,chassis=%u",
                              i, i + 1);
        }
        if (a->failed)
                return cc_error_set(err, ENOMEM, "out of memory building the QEMU command line");
        return 0;
}
