#!/usr/bin/env bash
# The libvirt backend for real: starts virtlogd and libvirtd (unless they already run; then it
# uses them and leaves them running), boots the test guest through libhv with
# qemu:///system under TCG, reaches the agent channel, stops it, power-off from the guest,
# kill -9 of the domain's QEMU, missing kernel and a QEMU that fails to start; then checks that
# the run directories are empty and no domain is left. Stops only the daemons it started.
set -euo pipefail
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
. test/integration/hv-guest.sh

[ -x /usr/sbin/libvirtd ] && [ -x /usr/sbin/virtlogd ] ||
        { echo "libvirt-daemon-system not installed (libvirtd, virtlogd)"; exit 77; }
id libvirt-qemu >/dev/null 2>&1 || { echo "no libvirt-qemu user (libvirt-daemon-system)"; exit 77; }
command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 not installed"; exit 77; }

tmp=$(mktemp -d /tmp/hv-libvirt.XXXXXX)
chmod 755 "$tmp"
cleanup() {
        if command -v virsh >/dev/null && [ -S /run/libvirt/libvirt-sock ]; then
                virsh -c qemu:///system destroy hv-boot-test >/dev/null 2>&1 || true
        fi
        hv_libvirtd_stop
        rm -rf "$tmp"
}
trap cleanup EXIT
hv_libvirtd_start "$tmp"
[ -S /run/libvirt/libvirt-sock ] || { echo "libvirtd did not come up"; exit 1; }

hv_guest_kernel "$tmp" || { echo "cannot fetch the guest kernel"; exit 1; }
# libvirt runs QEMU as libvirt-qemu: kernel and initrd must be readable by it.
cp "$HV_KERNEL" "$tmp/vmlinuz"
hv_test_initrd "$tmp/initrd.img"
chmod 644 "$tmp/vmlinuz" "$tmp/initrd.img"
mkdir -m 755 "$tmp/vms"

rc=0
HV_BOOT_BACKEND=libvirt HV_BOOT_URI=qemu:///system HV_BOOT_KERNEL=$tmp/vmlinuz \
        HV_BOOT_INITRD=$tmp/initrd.img HV_BOOT_DIR=$tmp/vms "$BUILD/test/unit/test-hv-qemu-boot" || rc=$?
if [ "$rc" -ne 0 ]; then
        echo "libvirtd log (the daemon we started, if any):"
        tail -20 "$tmp/libvirtd.log" 2>/dev/null || true
        exit "$rc"
fi
left=$(find "$tmp/vms" -mindepth 1 | wc -l)
[ "$left" -eq 0 ] || { echo "left behind in run dirs:"; find "$tmp/vms"; exit 1; }
if command -v virsh >/dev/null && virsh -c qemu:///system list --name | grep -q hv-boot-test; then
        echo "domain hv-boot-test left running"
        exit 1
fi
echo "PASS: hv-libvirt"
