#pragma once
/* libvirt backend internals: the pure domain XML renderer. */

#include <stdbool.h>
#include <stdint.h>

#include "hypervisor/hv-internal.h"

struct hv_libvirt_plan {
        const struct hv_config *cfg; /* defaults applied */
        const char *console_log;
        enum hv_accel accel;     /* KVM -> <domain type='kvm'>, TCG -> type='qemu' */
        enum hv_channel channel; /* VSOCK or SERIAL */
        unsigned cbitpos;
        unsigned long libvirt_version; /* major*1000000+minor*1000+micro, as libvirt reports */
};

#define HV_LIBVIRT_DEFAULT_URI "qemu:///system"

/*
 * Renders the transient domain's XML (caller frees *ret). Refuses, naming the version, a TEE
 * whose <launchSecurity> type this libvirt does not know (sev-snp < 10.5.0, tdx < 11.6.0).
 */
int hv_libvirt_domain_xml(const struct hv_libvirt_plan *plan, char **ret, struct cc_error **err);

/* The <disk> of a hot-plugged disk for virDomainAttachDeviceFlags (caller frees *ret):
 * `block` a block device (<source dev>), else a file; `target` its vdX name. */
int hv_libvirt_disk_xml(const struct hv_disk *disk, bool block, const char *target, char **ret,
                        struct cc_error **err);
