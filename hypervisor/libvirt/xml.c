/*
 * Domain XML for a transient libvirt domain, rendered with no I/O so that golden tests can pin
 * it. Facts: ../shared/reference/hypervisor-agent.md section 3 (launchSecurity per TEE and the
 * libvirt version that added it, firmware, vsock and channel elements).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cleanup.h"
#include "cc/error.h"

#include "hypervisor/libvirt/libvirt.h"
#include "hypervisor/qemu/qemu.h"

/* Writes s with the five XML special characters escaped. */
static void xml_text(FILE *f, const char *s)
{
        for (; *s; s++) {
                switch (*s) {
                case '&':
                        fputs("&amp;", f);
                        break;
                case '<':
                        fputs("&lt;", f);
                        break;
                case '>':
                        fputs("&gt;", f);
                        break;
                case '\'':
                        fputs("&apos;", f);
                        break;
                case '"':
                        fputs("&quot;", f);
                        break;
                default:
                        fputc(*s, f);
                }
        }
}

static void element(FILE *f, const char *indent, const char *name, const char *text)
{
        fprintf(f, "%s<%s>", indent, name);
        xml_text(f, text);
        fprintf(f, "</%s>\n", name);
}

static void version_string(unsigned long v, char *buf, size_t size)
{
        snprintf(buf, size, "%lu.%lu.%lu", v / 1000000, v / 1000 % 1000, v % 1000);
}

/*
 * <launchSecurity>, one hook per TEE profile; the type, the default policy and kernelHashes
 * come from the profile (hypervisor/tee.c). SEV and SEV-ES (the same type) write the policy
 * with 4 hex digits, SNP with 8, as libvirt's documentation does (3.1).
 */
static void amd_launch(FILE *f, const struct hv_libvirt_plan *plan, const struct hv_tee_profile *p,
                       int policy_digits)
{
        const struct hv_tee_config *tee = &plan->cfg->tee;
        fprintf(f, "  <launchSecurity type='%s'%s>\n", p->libvirt_type,
                p->kernel_hashes ? " kernelHashes='yes'" : "");
        fprintf(f, "    <cbitpos>%u</cbitpos>\n", plan->cbitpos);
        fprintf(f, "    <reducedPhysBits>%u</reducedPhysBits>\n", hv__tee_reduced_phys_bits(tee));
        fprintf(f, "    <policy>0x%0*" PRIx64 "</policy>\n", policy_digits, hv__tee_policy(tee));
}

static void sev_launch(FILE *f, const struct hv_libvirt_plan *plan, const struct hv_tee_profile *p)
{
        amd_launch(f, plan, p, 4);
        fputs("  </launchSecurity>\n", f);
}

/* SNP adds the launch's id-block and id-auth and the host data. */
static void snp_launch(FILE *f, const struct hv_libvirt_plan *plan, const struct hv_tee_profile *p)
{
        const struct hv_tee_config *tee = &plan->cfg->tee;
        amd_launch(f, plan, p, 8);
        if (tee->id_block)
                element(f, "    ", "idBlock", tee->id_block);
        if (tee->id_auth)
                element(f, "    ", "idAuth", tee->id_auth);
        if (tee->host_data)
                element(f, "    ", "hostData", tee->host_data);
        fputs("  </launchSecurity>\n", f);
}

static void tdx_launch(FILE *f, const struct hv_libvirt_plan *plan, const struct hv_tee_profile *p)
{
        const struct hv_tee_config *tee = &plan->cfg->tee;
        fprintf(f, "  <launchSecurity type='%s'>\n", p->libvirt_type);
        fprintf(f, "    <policy>0x%" PRIx64 "</policy>\n", hv__tee_policy(tee));
        if (tee->mrconfigid)
                element(f, "    ", "mrConfigId", tee->mrconfigid);
        if (tee->qgs_socket) {
                fputs("    <quoteGenerationService path='", f);
                xml_text(f, tee->qgs_socket);
                fputs("'/>\n", f);
        } else {
                fputs("    <quoteGenerationService/>\n", f);
        }
        fputs("  </launchSecurity>\n", f);
}

typedef void launch_security_fn(FILE *f, const struct hv_libvirt_plan *plan,
                                const struct hv_tee_profile *p);
static launch_security_fn *const launch_security[_HV_TEE_MAX] = {
        [HV_TEE_TDX] = tdx_launch,
        [HV_TEE_SEV] = sev_launch,
        [HV_TEE_SEV_ES] = sev_launch,
        [HV_TEE_SEV_SNP] = snp_launch,
};

/*
 * Empty PCIe root ports for hv_vm_disk_add(): q35's root bus takes no hot-plug, and libvirt
 * keeps no port spare: it puts each cold-plugged device without an address into a free root
 * port first (and adds ports only when none is left). So it gets one port more for each of
 * those: the USB controller it adds, the agent's virtio-serial or vsock device, the disks and
 * the NICs. Once a PCI controller is named, the root (index 0) must be too.
 */
static void hotplug_ports(FILE *f, const struct hv_config *cfg)
{
        unsigned ports = cfg->hotplug_slots
                                 ? cfg->hotplug_slots + 2 + (unsigned)(cfg->n_disks + cfg->n_nets)
                                 : 0;
        if (ports)
                fputs("    <controller type='pci' index='0' model='pcie-root'/>\n", f);
        for (unsigned i = 0; i < ports; i++)
                fputs("    <controller type='pci' model='pcie-root-port'/>\n", f);
}

int hv_libvirt_domain_xml(const struct hv_libvirt_plan *plan, char **ret, struct cc_error **err)
{
        const struct hv_config *cfg = plan->cfg;
        const struct hv_tee_profile *tee = hv__tee_profile(cfg->tee.kind);
        bool kvm = plan->accel == HV_ACCEL_KVM;
        if (!tee)
                return cc_error_set(err, EINVAL, "unknown TEE profile");
        if (tee->kind != HV_TEE_NONE && !kvm)
                return cc_error_set(err, EINVAL, "%s needs KVM", tee->name);
        if (tee->libvirt_since && plan->libvirt_version < tee->libvirt_since) {
                char have[32], need[32];
                version_string(plan->libvirt_version, have, sizeof(have));
                version_string(tee->libvirt_since, need, sizeof(need));
                return cc_error_set(err, EOPNOTSUPP,
                                    "libvirt %s does not support <launchSecurity type='%s'> "
                                    "(%s needs libvirt >= %s)",
                                    have, tee->libvirt_type, tee->name, need);
        }
        if (cfg->n_nets && plan->libvirt_version < 5007000) {
                char have[32];
                version_string(plan->libvirt_version, have, sizeof(have));
                return cc_error_set(err, EOPNOTSUPP,
                                    "libvirt %s cannot use an existing tap (<target "
                                    "managed='no'> needs libvirt >= 5.7.0)",
                                    have);
        }
        for (size_t i = 0; i < cfg->n_nets; i++)
                if (!cfg->nets[i].tap_name)
                        return cc_error_set(err, EOPNOTSUPP,
                                            "libvirt backend: NIC %zu: tap fds cannot be handed "
                                            "to libvirtd; it needs the name of an existing tap "
                                            "in its namespace (the shim's host-tap mode)",
                                            i);
        if (cfg->user_net)
                return cc_error_set(err, EOPNOTSUPP,
                                    "libvirt backend: no user-mode network (QEMU only)");

        char *out = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&out, &size);
        if (!f)
                return cc_error_set(err, ENOMEM, "out of memory");
        fprintf(f, "<domain type='%s'>\n", kvm ? "kvm" : "qemu");
        element(f, "  ", "name", cfg->name);
        fprintf(f, "  <memory unit='MiB'>%u</memory>\n", cfg->memory_mib);
        fprintf(f, "  <vcpu placement='static'>%u</vcpu>\n", cfg->vcpus);
        fputs("  <os>\n    <type arch='x86_64' machine='q35'>hvm</type>\n", f);
        if (cfg->firmware) {
                /* Stateless read-only pflash where the profile says so (the AMD ones: no NVRAM,
                 * so the measured firmware is exactly the file, 3.2); else a ROM loader, the
                 * -bios equivalent (TDVF cannot run from pflash, 1.2). */
                if (tee->libvirt_pflash)
                        fputs("    <loader readonly='yes' type='pflash' stateless='yes'>", f);
                else
                        fputs("    <loader type='rom'>", f);
                xml_text(f, cfg->firmware);
                fputs("</loader>\n", f);
        }
        element(f, "    ", "kernel", cfg->kernel);
        if (cfg->initrd)
                element(f, "    ", "initrd", cfg->initrd);
        fputs("    <cmdline>", f);
        xml_text(f, HV_QEMU_BASE_PARAMS);
        if (!cc_isempty(cfg->kernel_params)) {
                fputc(' ', f);
                xml_text(f, cfg->kernel_params);
        }
        fputs("</cmdline>\n  </os>\n", f);
        fputs("  <features>\n    <acpi/>\n  </features>\n", f);
        fprintf(f, "  <cpu mode='%s'/>\n", kvm ? "host-passthrough" : "maximum");
        fputs("  <clock offset='utc'/>\n", f);
        /* Any guest stop ends the transient domain, as -no-reboot does for QEMU. */
        fputs("  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>destroy</on_reboot>\n"
              "  <on_crash>destroy</on_crash>\n",
              f);
        if (tee->kind != HV_TEE_NONE)
                /* SEV guidance: guest memory locked (3.2). */
                fputs("  <memoryBacking>\n    <locked/>\n  </memoryBacking>\n", f);
        fputs("  <devices>\n", f);
        if (cfg->vmm_path)
                element(f, "    ", "emulator", cfg->vmm_path);
        for (size_t i = 0; i < cfg->n_disks; i++) {
                fputs("    <disk type='file' device='disk'>\n"
                      "      <driver name='qemu' type='raw'/>\n      <source file='",
                      f);
                xml_text(f, cfg->disks[i].path);
                fprintf(f, "'/>\n      <target dev='vd%c' bus='virtio'/>\n", (char)('a' + i));
                if (cfg->disks[i].readonly)
                        fputs("      <readonly/>\n", f);
                if (cfg->disks[i].serial)
                        element(f, "      ", "serial", cfg->disks[i].serial);
                fputs("    </disk>\n", f);
        }
        for (size_t i = 0; i < cfg->n_nets; i++) {
                /* An existing tap libvirtd opens by name and leaves alone (managed='no', libvirt
                 * >= 5.7): the shim made it, up, with its MTU and mirrored with the pod. */
                fputs("    <interface type='ethernet'>\n", f);
                if (cfg->nets[i].mac) {
                        fputs("      <mac address='", f);
                        xml_text(f, cfg->nets[i].mac);
                        fputs("'/>\n", f);
                }
                fputs("      <target dev='", f);
                xml_text(f, cfg->nets[i].tap_name);
                fputs("' managed='no'/>\n      <model type='virtio'/>\n    </interface>\n", f);
        }
        fputs("    <serial type='file'>\n      <source path='", f);
        xml_text(f, plan->console_log);
        fputs("'/>\n      <target port='0'/>\n    </serial>\n", f);
        if (plan->channel == HV_CHANNEL_VSOCK) {
                /* 3.3: a fixed CID when configured, else libvirt picks a free one. */
                if (cfg->vsock_cid)
                        fprintf(f,
                                "    <vsock model='virtio'>\n      <cid auto='no' "
                                "address='%u'/>\n    </vsock>\n",
                                cfg->vsock_cid);
                else
                        fputs("    <vsock model='virtio'>\n      <cid auto='yes'/>\n"
                              "    </vsock>\n",
                              f);
        } else {
                /* 3.3: a named virtio-serial channel on a unix socket libvirt binds. */
                _cleanup_free_ char *sock = hv__path(cfg->run_dir, HV_QEMU_AGENT_SOCK);
                fputs("    <channel type='unix'>\n      <source mode='bind' path='", f);
                xml_text(f, sock ? sock : "");
                fputs("'/>\n      <target type='virtio' name='" HV_AGENT_SERIAL_NAME "'/>\n"
                      "    </channel>\n",
                      f);
        }
        hotplug_ports(f, cfg);
        fputs("    <memballoon model='none'/>\n  </devices>\n", f);
        if (launch_security[tee->kind])
                launch_security[tee->kind](f, plan, tee);
        fputs("</domain>\n", f);
        if (fclose(f) != 0 || !out) {
                free(out);
                return cc_error_set(err, ENOMEM, "out of memory");
        }
        *ret = out;
        return 0;
}

int hv_libvirt_disk_xml(const struct hv_disk *disk, bool block, const char *target, char **ret,
                        struct cc_error **err)
{
        char *out = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&out, &size);
        if (!f)
                return cc_error_set(err, ENOMEM, "out of memory");
        /* A block device as <source dev>, a file as <source file> (3.3); raw, no format
         * probing. The serial is what the guest matches (/sys/block/vdX/serial). */
        fprintf(f,
                "<disk type='%s' device='disk'>\n  <driver name='qemu' type='raw'/>\n"
                "  <source %s='",
                block ? "block" : "file", block ? "dev" : "file");
        xml_text(f, disk->path);
        fputs("'/>\n  <target dev='", f);
        xml_text(f, target);
        fputs("' bus='virtio'/>\n", f);
        element(f, "  ", "serial", disk->serial);
        if (disk->readonly)
                fputs("  <readonly/>\n", f);
        fputs("</disk>\n", f);
        if (fclose(f) != 0 || !out) {
                free(out);
                return cc_error_set(err, ENOMEM, "out of memory");
        }
        *ret = out;
        return 0;
}
