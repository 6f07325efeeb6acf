#!/usr/bin/env bash
# Boots real QEMU VMs through libhv under TCG (build/test/unit/test-hv-qemu-boot: boot and
# reach the agent channel, stop, guest power-off, kill -9 of QEMU, missing kernel, QEMU exiting
# during start, start timeout; and the project guest image answering Health.Check when it is
# built), then checks that no QEMU the tests started is left and that
# every run directory is empty.
set -euo pipefail
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
. test/integration/hv-guest.sh

command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 not installed"; exit 77; }
tmp=$(mktemp -d /tmp/hv-qemu.XXXXXX)
before=$(mktemp)
pgrep -x qemu-system-x86 | sort >"$before" || true
cleanup() {
        # Kill only QEMU processes that were not running before this test and whose command
        # line points into our temporary directory.
        for pid in $(pgrep -x qemu-system-x86 | sort | comm -13 "$before" -); do
                if grep -q "$tmp" "/proc/$pid/cmdline" 2>/dev/null; then
                        kill -9 "$pid" 2>/dev/null || true
                fi
        done
        rm -rf "$tmp" "$before"
}
trap cleanup EXIT

hv_guest_kernel "$tmp" || { echo "cannot fetch the guest kernel"; exit 1; }
rc=0
hv_test_initrd "$tmp/initrd.img" || rc=$?
[ $rc -eq 0 ] || { echo "cannot build the test initramfs"; exit $rc; }
mkdir -p "$tmp/vms"

echo "== boots through libhv"
# The project's guest image (make guest-image), when built: cc-agent answers over ttrpc.
guest=
if [ -f build/guest/vmlinuz ] && [ -f build/guest/initrd.img ]; then
        guest=$PWD/build/guest
        echo "guest image: $guest"
fi
HV_BOOT_GUEST_DIR=$guest HV_BOOT_KERNEL=$HV_KERNEL HV_BOOT_INITRD=$tmp/initrd.img HV_BOOT_DIR=$tmp/vms \
        "$BUILD/test/unit/test-hv-qemu-boot"
left=$(find "$tmp/vms" -mindepth 1 | wc -l)
[ "$left" -eq 0 ] || { echo "left behind in run dirs:"; find "$tmp/vms"; exit 1; }
for pid in $(pgrep -x qemu-system-x86 | sort | comm -13 "$before" -); do
        if grep -q "$tmp" "/proc/$pid/cmdline" 2>/dev/null; then
                echo "QEMU pid $pid left running"
                exit 1
        fi
done
echo "ok: no process, socket or file left"

echo "PASS: hv-qemu"
