#pragma once
/* libvirt backend internals: the pure domain XML renderer. */

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
