/*
 * TEE profiles as data, the host probe, and the capability checks every backend shares.
 * Facts and their sources: ../shared/reference/hypervisor-agent.md sections 1.2-1.4, 1.10,
 * 2.3 and 3.1.
 */
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cc/cleanup.h"
#include "cc/error.h"

#include "hypervisor/hv-internal.h"

static const struct hv_tee_profile profiles[_HV_TEE_MAX] = {
        [HV_TEE_NONE] =
                {
                        .kind = HV_TEE_NONE,
                        .name = "none",
                },
        /* tdx-guest since QEMU 10.1; TDVF loaded with -bios, never pflash (no read-only
         * memslots in a TD); libvirt <launchSecurity type='tdx'> since 11.6.0; CH:
         * platform.tdx + payload.firmware (TD-Shim or TDVF). Reference 1.2, 1.10, 2.3, 3.1. */
        [HV_TEE_TDX] =
                {
                        .kind = HV_TEE_TDX,
                        .name = "tdx",
                        .backend_cap = HV_CAP_TEE_TDX,
                        .kvm_module = "kvm_intel",
                        .kvm_param = "tdx",
                        .firmware_what = "TDVF or TD-Shim",
                        .qemu_object = "tdx-guest",
                        .qemu_since = 100100,
                        .libvirt_type = "tdx",
                        .libvirt_since = 11006000,
                        .clh_platform = "tdx",
                },
        /* sev-guest since QEMU 2.12, kernel-hashes since 6.2; firmware as read-only pflash
         * (Kata; libvirt: stateless, no NVRAM, so the measured firmware is exactly the file,
         * 3.2); QEMU's default policy 0x1 (no debug); libvirt type='sev' since 4.4.0
         * (kernelHashes 8.0.0). Reference 1.3, 1.4, 1.10, 3.1. */
        [HV_TEE_SEV] =
                {
                        .kind = HV_TEE_SEV,
                        .name = "sev",
                        .backend_cap = HV_CAP_TEE_SEV,
                        .kvm_module = "kvm_amd",
                        .kvm_param = "sev",
                        .firmware_what = "OVMF built for SEV",
                        .default_policy = 0x1,
                        .kernel_hashes = true,
                        .qemu_object = "sev-guest",
                        .qemu_since = 60200,
                        .qemu_pflash = true,
                        .libvirt_type = "sev",
                        .libvirt_since = 8000000,
                        .libvirt_pflash = true,
                },
        /* SEV-ES is sev-guest with policy bit 2 (ES required): 0x5. Reference 1.3. */
        [HV_TEE_SEV_ES] =
                {
                        .kind = HV_TEE_SEV_ES,
                        .name = "sev-es",
                        .backend_cap = HV_CAP_TEE_SEV,
                        .kvm_module = "kvm_amd",
                        .kvm_param = "sev_es",
                        .firmware_what = "OVMF built for SEV",
                        .default_policy = 0x5,
                        .kernel_hashes = true,
                        .qemu_object = "sev-guest",
                        .qemu_since = 60200,
                        .qemu_pflash = true,
                        .libvirt_type = "sev",
                        .libvirt_since = 8000000,
                        .libvirt_pflash = true,
                },
        /* sev-snp-guest since QEMU 9.1, firmware with -bios (Kata), policy 0x30000 (Kata's
         * default); libvirt type='sev-snp' since 10.5.0, firmware as stateless pflash. Our clh
         * backend does not render SNP (CH needs IGVM firmware for it, reference 2.3).
         * Reference 1.3, 1.10, 3.1. */
        [HV_TEE_SEV_SNP] =
                {
                        .kind = HV_TEE_SEV_SNP,
                        .name = "sev-snp",
                        .backend_cap = HV_CAP_TEE_SNP,
                        .kvm_module = "kvm_amd",
                        .kvm_param = "sev_snp",
                        .firmware_what = "OVMF built for SEV",
                        .default_policy = 0x30000,
                        .kernel_hashes = true,
                        .qemu_object = "sev-snp-guest",
                        .qemu_since = 90100,
                        .libvirt_type = "sev-snp",
                        .libvirt_since = 10005000,
                        .libvirt_pflash = true,
                },
};

const struct hv_tee_profile *hv__tee_profile(enum hv_tee tee)
{
        if ((unsigned)tee >= _HV_TEE_MAX)
                return NULL;
        return &profiles[tee];
}

bool hv__tee_supported(const struct hv_ops *ops, const struct hv_tee_profile *p)
{
        return (ops->caps & p->backend_cap) == p->backend_cap;
}

uint64_t hv__tee_policy(const struct hv_tee_config *tee)
{
        const struct hv_tee_profile *p = hv__tee_profile(tee->kind);
        return tee->policy ? tee->policy : (p ? p->default_policy : 0);
}

unsigned hv__tee_cbitpos(const struct hv_tee_config *tee, const struct hv_host *host)
{
        if (tee->cbitpos)
                return tee->cbitpos;
        return host && host->cbitpos ? host->cbitpos : 51;
}

unsigned hv__tee_reduced_phys_bits(const struct hv_tee_config *tee)
{
        return tee->reduced_phys_bits ? tee->reduced_phys_bits : 1;
}

static bool file_says_yes(const char *root, const char *path)
{
        char full[512];
        snprintf(full, sizeof(full), "%s%s", root, path);
        _cleanup_close_ int fd = open(full, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        char c = 0;
        if (read(fd, &c, 1) != 1)
                return false;
        return c == 'Y' || c == 'y' || c == '1';
}

static bool exists(const char *root, const char *path)
{
        char full[512];
        snprintf(full, sizeof(full), "%s%s", root, path);
        return access(full, F_OK) == 0;
}

/*
 * KVM counts only with a hardware module: this kind of machine can expose /dev/kvm through
 * kvm_pvm (a software "pagetable virtual machine"), where QEMU 7.2 aborts setting MSRs for a
 * stock guest kernel (local experiment), so /dev/kvm alone must not select KVM.
 */
void hv__host_probe(const char *root, struct hv_host *ret)
{
        if (!root)
                root = "";
        *ret = (struct hv_host){0};
        ret->kvm_dev = exists(root, "/dev/kvm");
        ret->kvm = ret->kvm_dev &&
                   (exists(root, "/sys/module/kvm_intel") || exists(root, "/sys/module/kvm_amd"));
        ret->vhost_vsock = exists(root, "/dev/vhost-vsock");
        ret->tdx = file_says_yes(root, "/sys/module/kvm_intel/parameters/tdx");
        ret->sev = file_says_yes(root, "/sys/module/kvm_amd/parameters/sev");
        ret->sev_es = file_says_yes(root, "/sys/module/kvm_amd/parameters/sev_es");
        ret->sev_snp = file_says_yes(root, "/sys/module/kvm_amd/parameters/sev_snp");
        if (!*root) {
                /* AMD memory encryption leaf: EBX[5:0] is the C-bit position. */
                unsigned a, b, c, d;
                if ((unsigned)__get_cpuid_max(0x80000000, NULL) >= 0x8000001fu &&
                    __get_cpuid(0x8000001f, &a, &b, &c, &d) && (a & 0x2))
                        ret->cbitpos = b & 0x3f;
        }
}

static bool host_has(const struct hv_host *host, enum hv_tee tee)
{
        switch (tee) {
        case HV_TEE_TDX:
                return host->tdx;
        case HV_TEE_SEV:
                return host->sev;
        case HV_TEE_SEV_ES:
                return host->sev && host->sev_es;
        case HV_TEE_SEV_SNP:
                return host->sev_snp;
        default:
                return true;
        }
}

static void check_file(struct hv_reasons *r, const char *what, const char *path)
{
        if (path && access(path, R_OK) < 0)
                hv__reason_add(r, errno, "%s %s: %m", what, path);
}

void hv__check_common(const struct hv_config *cfg, const struct hv_host *host, struct hv_reasons *r)
{
        const struct hv_tee_profile *p = hv__tee_profile(cfg->tee.kind);
        if (!p) {
                hv__reason_add(r, EINVAL, "unknown TEE profile %d", (int)cfg->tee.kind);
                return;
        }
        if (cfg->tee.kind != HV_TEE_NONE) {
                if (!host->kvm)
                        hv__reason_add(r, ENODEV, "%s needs hardware KVM: %s", p->name,
                                       host->kvm_dev ? "/dev/kvm exists but neither kvm_intel "
                                                       "nor kvm_amd is loaded"
                                                     : "no /dev/kvm");
                if (!host_has(host, cfg->tee.kind))
                        hv__reason_add(r, ENODEV,
                                       "%s is not enabled in KVM: /sys/module/%s/parameters/%s "
                                       "is not Y%s",
                                       p->name, p->kvm_module, p->kvm_param,
                                       cfg->tee.kind == HV_TEE_SEV_ES && !host->sev
                                               ? " (nor is .../sev)"
                                               : "");
                if (!cfg->firmware)
                        hv__reason_add(r, EINVAL, "%s needs a firmware file (%s)", p->name,
                                       p->firmware_what);
                if (cfg->accel == HV_ACCEL_TCG)
                        hv__reason_add(r, EINVAL, "%s cannot run under TCG", p->name);
        } else if (cfg->accel == HV_ACCEL_KVM && !host->kvm) {
                hv__reason_add(r, ENODEV, "accel=kvm needs hardware KVM: %s",
                               host->kvm_dev ? "/dev/kvm exists but neither kvm_intel nor "
                                               "kvm_amd is loaded"
                                             : "no /dev/kvm");
        }
        if (cfg->tee.kind == HV_TEE_SEV_SNP &&
            !cc_isempty(cfg->tee.id_block) != !cc_isempty(cfg->tee.id_auth))
                hv__reason_add(r, EINVAL, "sev-snp: id-block and id-auth go together");
        if (cfg->channel == HV_CHANNEL_VSOCK && !host->vhost_vsock &&
            strcmp(cfg->backend, "clh") != 0 && strcmp(cfg->backend, "mock") != 0)
                hv__reason_add(r, ENODEV, "agent channel vsock needs /dev/vhost-vsock");
        if (!cfg->kernel)
                hv__reason_add(r, EINVAL, "no kernel configured");
        check_file(r, "kernel", cfg->kernel);
        check_file(r, "initrd", cfg->initrd);
        check_file(r, "firmware", cfg->firmware);
        for (size_t i = 0; i < cfg->n_disks; i++)
                check_file(r, "disk", cfg->disks[i].path);
}

int hv__accel_resolve(const struct hv_config *cfg, const struct hv_host *host,
                      struct cc_error **err)
{
        switch (cfg->accel) {
        case HV_ACCEL_KVM:
                if (!host->kvm)
                        return cc_error_set(err, ENODEV,
                                            "accel=kvm but this host has no "
                                            "hardware KVM");
                return HV_ACCEL_KVM;
        case HV_ACCEL_TCG:
                if (cfg->tee.kind != HV_TEE_NONE)
                        return cc_error_set(err, EINVAL, "TEE profile %s cannot run under TCG",
                                            hv_tee_to_string(cfg->tee.kind));
                return HV_ACCEL_TCG;
        case HV_ACCEL_AUTO:
                if (host->kvm)
                        return HV_ACCEL_KVM;
                /* Never fall back to emulation silently for a confidential guest. */
                if (cfg->tee.kind != HV_TEE_NONE)
                        return cc_error_set(err, ENODEV,
                                            "TEE profile %s needs hardware KVM; refusing TCG",
                                            hv_tee_to_string(cfg->tee.kind));
                return HV_ACCEL_TCG;
        default:
                return cc_error_set(err, EINVAL, "unknown accelerator %d", (int)cfg->accel);
        }
}
