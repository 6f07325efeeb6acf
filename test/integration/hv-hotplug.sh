#!/usr/bin/env bash
# Disk hot-plug into a running VM through libhv, QEMU under TCG (build/test/unit/
# test-hv-hotplug-boot): a sparse file and a loop device hot-plugged with serials, seen by the
# guest in /sys/block/vd*/serial, removed (gone in the guest, no longer open in QEMU), refusals
# (bad serial, missing path, duplicate serial, no free slot), kill -9 of QEMU with disks
# attached; the same through libvirtd when it is installed. Then: the loop device detaches, no QEMU of ours is left, the run dir is empty.
# The guest is the guest image's kernel (hv-guest.sh) with a busybox /init that answers "blk"
# with the serials it sees.
set -euo pipefail
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
. test/integration/hv-guest.sh

command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 not installed"; exit 77; }
command -v losetup >/dev/null || { echo "SKIP: losetup (util-linux) missing"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: a loop device needs root"; exit 77; }
tmp=$(mktemp -d /tmp/hv-hotplug.XXXXXX)
before=$(mktemp)
loop=
pgrep -x qemu-system-x86 | sort >"$before" || true
cleanup() {
        for pid in $(pgrep -x qemu-system-x86 | sort | comm -13 "$before" -); do
                if grep -q "$tmp" "/proc/$pid/cmdline" 2>/dev/null; then
                        kill -9 "$pid" 2>/dev/null || true
                fi
        done
        if command -v virsh >/dev/null && [ -S /run/libvirt/libvirt-sock ]; then
                virsh -c qemu:///system destroy hv-hotplug-test >/dev/null 2>&1 || true
        fi
        hv_libvirtd_stop
        [ -z "$loop" ] || losetup -d "$loop" 2>/dev/null || true
        rm -rf "${tmp:?}" "$before"
}
trap cleanup EXIT

hv_guest_kernel "$tmp" || { echo "cannot fetch the guest kernel"; exit 1; }
rc=0
hv_test_initrd "$tmp/base.img" || rc=$?
[ $rc -eq 0 ] || { echo "cannot build the test initramfs"; exit $rc; }
# The same initramfs with an /init that also answers "blk": rebuild it from the base one.
root=$tmp/initrd-root
mkdir -p "$root"
(cd "$root" && gzip -dc "$tmp/base.img" | cpio -id 2>/dev/null)
sed -i 's|^        \*) echo "pong:$line" >"$port" ;;|        blk) out="blk:"; for b in /sys/block/vd*; do [ -e "$b" ] \&\& out="$out ${b##*/}=$(cat $b/serial)"; done; echo "$out" >"$port" ;;\n&|' "$root/init"
grep -q '^        blk)' "$root/init" || { echo "could not extend the test /init"; exit 1; }
(cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$tmp/initrd.img"

truncate -s 64M "$tmp/scratch.img"
truncate -s 32M "$tmp/loop-backing.img"
loop=$(losetup --find --show "$tmp/loop-backing.img")
echo "loop device: $loop"
mkdir -p "$tmp/vm"

HV_HOTPLUG_KERNEL=$HV_KERNEL HV_HOTPLUG_INITRD=$tmp/initrd.img HV_HOTPLUG_DIR=$tmp/vm \
        HV_HOTPLUG_FILE=$tmp/scratch.img HV_HOTPLUG_LOOP=$loop \
        "$BUILD/test/unit/test-hv-hotplug-boot"

left=$(find "$tmp/vm" -mindepth 1 -not -type d | wc -l)
[ "$left" -eq 0 ] || { echo "left behind in the run dir:"; find "$tmp/vm"; exit 1; }
for pid in $(pgrep -x qemu-system-x86 | sort | comm -13 "$before" -); do
        if grep -q "$tmp" "/proc/$pid/cmdline" 2>/dev/null; then
                echo "QEMU pid $pid left running"
                exit 1
        fi
done
# The same through libvirtd (qemu:///system), when libvirt is installed: <disk> attach/detach.
if [ -x /usr/sbin/libvirtd ] && [ -x /usr/sbin/virtlogd ] && id libvirt-qemu >/dev/null 2>&1; then
        echo "== libvirt"
        chmod 755 "$tmp"
        chmod 644 "$tmp/initrd.img" "$tmp/scratch.img"
        cp "$HV_KERNEL" "$tmp/vmlinuz"
        chmod 644 "$tmp/vmlinuz"
        mkdir -m 755 "$tmp/lvm"
        hv_libvirtd_start "$tmp"
        lrc=0
        HV_HOTPLUG_BACKEND=libvirt HV_HOTPLUG_URI=qemu:///system HV_HOTPLUG_KERNEL=$tmp/vmlinuz \
                HV_HOTPLUG_INITRD=$tmp/initrd.img HV_HOTPLUG_DIR=$tmp/lvm \
                HV_HOTPLUG_FILE=$tmp/scratch.img HV_HOTPLUG_LOOP=$loop \
                "$BUILD/test/unit/test-hv-hotplug-boot" || lrc=$?
        virsh -c qemu:///system destroy hv-hotplug-test >/dev/null 2>&1 || true
        [ "$lrc" -eq 0 ] || [ ! -f "$tmp/libvirtd.log" ] || tail -n 30 "$tmp/libvirtd.log"
        hv_libvirtd_stop
        [ "$lrc" -eq 0 ] || { echo "FAIL: libvirt hot-plug"; exit 1; }
else
        echo "libvirt pass skipped: libvirt-daemon-system not installed"
fi

# Nothing holds the loop device any more: it detaches at once.
losetup -d "$loop"
dev=$loop
loop=
if losetup "$dev" >/dev/null 2>&1 && losetup "$dev" | grep -q "$tmp"; then
        echo "loop device $dev still attached"
        exit 1
fi
echo "ok: loop device detached, no process, socket or file left"
echo "PASS: hv-hotplug"
