/*
 * Linked only into the static shim (SHIM_LINK=static, the default): stands in for libhv's
 * libvirt backend, whose libvirt.so (and its glib, gnutls, ICU, libxml2, Kerberos ... chain)
 * cannot be linked statically and would by itself cost the daemon several MiB of RSS. A
 * configuration that asks for `backend = "libvirt"` gets a clear error instead; build with
 * SHIM_LINK=dynamic for a shim that drives libvirt.
 *
 * It defines the backend table entry hv.c refers to, so the linker never pulls libvirt.o out of
 * libhv.a. (A cleaner split would be a libhv build option; see the shim's notes.)
 */
#include <errno.h>

#include "cc/error.h"
#include "hypervisor/hv-internal.h"

static int nolibvirt_alloc(struct hv_vm **ret, struct cc_error **err)
{
        return cc_error_set(err, EOPNOTSUPP,
                            "the libvirt backend is not built into this (static) shim; rebuild "
                            "with `make SHIM_LINK=dynamic` or use backend \"qemu\"");
}

const struct hv_ops hv_libvirt_ops = {
        .name = "libvirt",
        .alloc = nolibvirt_alloc,
};
