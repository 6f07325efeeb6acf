#!/usr/bin/env bash
# Trusted ephemeral storage (issue 15): the project's guest image boots under QEMU TCG as
# agent-vm-pull.sh boots it, with a scratch disk (a sparse file, virtio-blk, serial
# cc-trusted-store, as the shim attaches it with [runtime] trusted_storage_mib) and
# agent.trusted_storage=cc-trusted-store on the kernel command line.
#   1. The agent's boot log (the test hook: the LUKS2 header read back with libcryptsetup, and
#      the cipher, key size and sector size from the kernel's dm table of the active mapping)
#      shows LUKS2, aes-xts-plain64, a 512-bit key, 4096-byte sectors, ext4
#      on /run/kata-containers (the image store, the containers area, the pod's volumes).
#   2. An image larger than the VM's memory (VM_MIB of RAM, a BIG_MIB random layer and a marker
#      file) is pulled in the guest and runs: its container sees the guest's dm-crypt device in
#      sysfs (dm uuid CRYPT-LUKS2-..., 4096-byte logical blocks, on the scratch disk) and the
#      big file whole (md5 equal to the host's).
#   3. On the host, the scratch file holds the data (allocated blocks grew by more than the
#      layer) but not the image's marker bytes, nor the big file's first 64 bytes: ciphertext.
#   4. The same pull in a VM without trusted storage fails with an error that says the image
#      does not fit in the guest's memory and names the configuration key.
#   5. With ",integrity": dm-integrity hmac(sha256) under dm-crypt (the kernel's table shows
#      authenc(hmac(sha256),xts(aes)), a 768-bit key: 512 for XTS, 256 for the HMAC).
#   6. Disks given at CreateContainer (CreateContainerRequest.devices, found by serial, the
#      spec's host numbers 8:16/8:32 rewritten), in a VM of a --debug-shell image with nothing on
#      its command line: the sidecar's /dev/trusted_store disk becomes LUKS2 (not given to it),
#      the next pull lands on it; a data disk appears in the container at /dev/xvdb with the
#      guest's numbers and its bytes; `cc-agent-storage status` through the debug console shows
#      what `cryptsetup status` shows and the overlay on it; refusals (unknown serial within
#      the wait, a second trusted store, no spec entry); DestroySandbox closes the mapping.
set -u
. "$(dirname "$0")/img-lib.sh"
CTL=$(realpath "$BUILD/cc-agent-ctl")
QEMU=$(command -v qemu-system-x86_64 || true)
[ -n "$QEMU" ] || { echo "needs qemu-system-x86_64"; exit 77; }
command -v busybox >/dev/null || { echo "needs busybox-static"; exit 77; }
MAC=52:54:00:12:34:56
C=/run/kata-containers/shared/containers
VM_MIB=${VM_MIB:-256}
BIG_MIB=${BIG_MIB:-320}

img_setup
fails=0
finish() {
        local rc=$?
        img_cleanup # stops QEMU (in PIDS once started) and the registry, removes $T
        [ ! -e "$T" ] || { echo "FAIL: $T left behind"; rc=1; }
        exit "$rc"
}
trap finish EXIT
ok() { echo "ok: $*"; }
soft_fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

make -s guest-image >"$T/image.log" 2>&1 || { cat "$T/image.log"; fail "make guest-image failed"; }
grep -q " /usr/libexec/cc-agent/cc-agent-storage$" build/guest/manifest.txt ||
        fail "the guest image has no trusted storage helper"

# The image: busybox, a marker, BIG_MIB of random data (larger than the VM's memory).
img_demo_image "trusted storage demo"
MARK="cc-trusted-storage-marker-$$-$RANDOM"
umoci unpack --image "$T/demo-layout:1" "$T/bundle" >/dev/null
head -c $((BIG_MIB << 20)) /dev/urandom >"$T/bundle/rootfs/big.bin"
echo "$MARK" >"$T/bundle/rootfs/marker.txt"
BIG_MD5=$(md5sum "$T/bundle/rootfs/big.bin" | cut -d' ' -f1)
BIG_HEAD=$(head -c 64 "$T/bundle/rootfs/big.bin" | od -An -tx1 | tr -d ' \n')
umoci repack --image "$T/demo-layout:1" "$T/bundle" >/dev/null
rm -rf "$T/bundle"
img_push "oci:$T/demo-layout:1" big:1
GUEST_REG=10.0.2.2:$PORT
ok "registry holds big:1 (a $BIG_MIB MiB random layer; the VM has $VM_MIB MiB)"

# boot NAME [QEMU ARGS...]: a VM with the agent on $T/NAME.sock, console $T/NAME.log.
boot() {
        local name=$1 params=$2
        shift 2
        "$QEMU" -machine q35,accel=tcg -cpu max -m "$VM_MIB" -smp 1 -nodefaults -nographic -no-reboot \
                -kernel build/guest/vmlinuz -initrd "${GUEST_INITRD:-build/guest/initrd.img}" \
                -append "console=ttyS0 panic=-1 quiet agent.server_addr=serial://agent.channel.0 agent.log=debug agent.image_insecure=$GUEST_REG $params" \
                -serial "file:$T/$name.log" \
                -device virtio-serial-pci \
                -chardev "socket,id=agent,path=$T/$name.sock,server=on,wait=off" \
                -device virtserialport,chardev=agent,name=agent.channel.0 \
                -netdev user,id=net0 -device "virtio-net-pci,netdev=net0,mac=$MAC" "$@" &
        QPID=$!
        PIDS+=("$QPID")
        for _ in $(seq 100); do [ -S "$T/$name.sock" ] && break; sleep 0.1; done
        SOCK=$T/$name.sock
        if [ "$(ctl check --wait 180)" != SERVING ]; then
                tail -n 30 "$T/$name.log"
                fail "the agent in VM $name did not answer"
        fi
        ctl create-sandbox --id "$name" --hostname "$name" || soft_fail "CreateSandbox"
        ctl update-interface -- "$MAC" eth0 0 10.0.2.15/24 >/dev/null || soft_fail "UpdateInterface"
        ctl update-routes -- default,10.0.2.2,eth0 >/dev/null || soft_fail "UpdateRoutes"
}
# log_line LOG PATTERN: the first match of PATTERN in the VM's console log, waiting up to 120 s
# (a line may follow the request that caused it by a moment).
log_line() {
        local i
        for i in $(seq 1200); do
                grep -a -o "$2" "$1" 2>/dev/null | head -1 | grep . && return 0
                sleep 0.1
        done
        return 1
}
ctl() { ASAN_OPTIONS=detect_leaks=0 "$CTL" --addr "unix://$SOCK" "$@"; }
# poweroff: DestroySandbox and wait for QEMU to end.
poweroff() {
        ctl destroy-sandbox || soft_fail "DestroySandbox"
        for _ in $(seq 300); do kill -0 "$QPID" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$QPID" 2>/dev/null && { soft_fail "the VM did not power off"; kill -9 "$QPID"; }
        wait "$QPID" 2>/dev/null
}

# --- 1. with trusted storage ---------------------------------------------------------------
DISK=$T/scratch.img
truncate -s $(((BIG_MIB * 3 + 256) << 20)) "$DISK"
t0=$(date +%s.%N)
boot trusted agent.trusted_storage=cc-trusted-store \
        -drive "file=$DISK,if=none,id=scratch,format=raw" \
        -device virtio-blk-pci,drive=scratch,serial=cc-trusted-store
ok "VM with trusted storage up in $(echo "$(date +%s.%N) - $t0" | bc) s"
line=$(log_line "$T/trusted.log" "trusted storage: .*")
case "$line" in
*"LUKS2 "*", kernel's table: aes-xts-plain64 volume key 512 bits, sector size 4096, integrity none, /dev/mapper/cc-trusted-store ("*") on /dev/vd"*", ext4 on /run/kata-containers"*)
        ok "the agent's log: $line" ;;
*) soft_fail "trusted storage log line: '$line' $(grep -a -i "crypt\|trusted\|mke2fs" "$T/trusted.log" | tail -n 8)" ;;
esac
alloc0=$(du -k "$DISK" | cut -f1)

t0=$(date +%s.%N)
ref=$(ctl pull-image --id c1 -- "$GUEST_REG/big:1" 2>&1)
pull_s=$(echo "$(date +%s.%N) - $t0" | bc)
[ "$ref" = "$GUEST_REG/big:1" ] && ok "PullImage of the $BIG_MIB MiB image onto trusted storage in a $VM_MIB MiB VM ($pull_s s)" ||
        soft_fail "PullImage with trusted storage: $ref"
ctl create --id c1 --rootfs "$C/c1/rootfs" -- sh -c 'cat /marker.txt; busybox md5sum /big.bin; cat /sys/block/dm-0/dm/uuid /sys/block/dm-0/dm/name /sys/block/dm-0/queue/logical_block_size; ls /sys/block/dm-0/slaves' ||
        soft_fail "CreateContainer"
ctl start --id c1 || soft_fail "StartContainer"
out=$(ctl read-stdout --id c1 2>&1)
st=$(ctl wait --id c1 2>&1)
echo "$out" | sed 's/^/    container: /'
[ "$st" = 0 ] && echo "$out" | grep -qx "$MARK" && echo "$out" | grep -q "^$BIG_MD5 " &&
        ok "the container ran from the pulled image: marker and the big file's md5 ($BIG_MD5)" ||
        soft_fail "container: status '$st'"
echo "$out" | grep -q "^CRYPT-LUKS2-.*-cc-trusted-store$" && echo "$out" | grep -qx "cc-trusted-store" &&
        echo "$out" | grep -qx 4096 && echo "$out" | grep -qx "vd[a-z]" &&
        ok "in the guest: dm-0 is the LUKS2 mapping cc-trusted-store, 4096-byte sectors, on the scratch disk" ||
        soft_fail "guest sysfs: $out"
ctl remove --id c1 || soft_fail "RemoveContainer"
sync
alloc1=$(du -k "$DISK" | cut -f1)
[ $(((alloc1 - alloc0) >> 10)) -ge "$BIG_MIB" ] &&
        ok "the layers went to the scratch disk: $(((alloc1 - alloc0) >> 10)) MiB more allocated in the host's file" ||
        soft_fail "scratch file grew by $(((alloc1 - alloc0) >> 10)) MiB only"
poweroff
grep -a -q "$MARK" "$DISK" && soft_fail "the host's scratch file holds the image's marker" ||
        ok "the host's scratch file holds no marker byte"
head_found=$(python3 test/tools/file-contains-hex.py "$DISK" "$BIG_HEAD")
[ "$head_found" = False ] && ok "nor the big file's first 64 bytes (plaintext never reached the host)" ||
        soft_fail "the big file's bytes are in the scratch file"
[ "$(head -c 6 "$DISK" | od -An -tx1 | tr -d ' \n')" = 4c554b53babe ] && ok "the scratch file starts with a LUKS header" ||
        soft_fail "no LUKS magic at the start of the scratch file"

# --- 2. without it: a clear error ------------------------------------------------------------
boot plain ""
t0=$(date +%s.%N)
out=$(ctl pull-image --id c1 -- "$GUEST_REG/big:1" 2>&1) &&
        soft_fail "a $BIG_MIB MiB image was pulled into a $VM_MIB MiB VM's memory ($(echo "$(date +%s.%N) - $t0" | bc) s; onto trusted storage: $pull_s s)"
echo "$out" | grep -q "does not fit in the guest's memory.*trusted_storage_mib" &&
        ok "without trusted storage the pull fails clearly: $out" || soft_fail "pull without trusted storage: $out"
ctl check >/dev/null && ok "the agent still serves after the failed pull" || soft_fail "the agent died"
poweroff

# --- 3. with dm-integrity (trusted_storage_integrity): a small disk, wiped once at boot -------
truncate -s 128M "$T/scratch-i.img"
boot integrity agent.trusted_storage=cc-trusted-store,integrity \
        -drive "file=$T/scratch-i.img,if=none,id=scratch,format=raw" \
        -device virtio-blk-pci,drive=scratch,serial=cc-trusted-store
line=$(log_line "$T/integrity.log" "trusted storage: .*")
case "$line" in
*"kernel's table: capi:authenc(hmac(sha256),xts(aes))-plain64 volume key 768 bits, sector size 4096, integrity hmac(sha256)"*"ext4 on /run/kata-containers"*)
        ok "with integrity: $(echo "$line" | grep -o "capi:[^ ]* volume key [0-9]* bits") (LUKS2 and the wipe: $(echo "$line" | grep -o "LUKS2 [0-9]* ms"))" ;;
*) soft_fail "integrity log line: '$line'" ;;
esac
ctl check >/dev/null && ok "the agent serves on integrity-protected storage" || soft_fail "agent after integrity setup"
poweroff

# --- 4. disks at CreateContainer: /dev/trusted_store and a data disk -------------------------
DBG=$T/guest-dbg
bash guest-agent/build-guest-image.sh --agent build/cc-agent-static --pull-helper build/cc-agent-pull \
        --storage-helper build/cc-agent-storage --kernel-dir build/guest/kernel-project --out "$DBG" \
        --debug-shell >"$T/image-dbg.log" 2>&1 || { cat "$T/image-dbg.log"; fail "build-guest-image --debug-shell"; }
small=$T/small-layout
umoci init --layout "$small" && umoci new --image "$small:1" && umoci unpack --image "$small:1" "$T/sb" >/dev/null
mkdir -p "$T/sb/rootfs/bin" "$T/sb/rootfs/dev" "$T/sb/rootfs/proc"
cp "$(command -v busybox)" "$T/sb/rootfs/bin/busybox"
ln -s busybox "$T/sb/rootfs/bin/sh"
echo "$MARK-small" >"$T/sb/rootfs/marker.txt"
umoci repack --image "$small:1" "$T/sb" >/dev/null && rm -rf "${T:?}/sb"
img_push "oci:$small:1" small:1
truncate -s 256M "$T/late.img"
{ printf 'CC-DATA-DISK-%s' "$$"; head -c $((4 << 20)) /dev/zero; } >"$T/data.img"
GUEST_INITRD=$DBG/initrd.img
boot late "agent.debug_console" \
        -drive "file=$T/late.img,if=none,id=late,format=raw" -device virtio-blk-pci,drive=late,serial=ts-late \
        -drive "file=$T/data.img,if=none,id=data,format=raw" -device virtio-blk-pci,drive=data,serial=data-1 \
        -chardev "socket,id=con,path=$T/late-con.sock,server=on,wait=off" \
        -device virtserialport,chardev=con,name=agent.debug_console
GUEST_INITRD=
out=$(ctl create --id side --rootfs "$C/side/rootfs" --guest-pull "$GUEST_REG/small:1" --device ts-late:/dev/trusted_store --device nope-9:/dev/trusted_store -- /bin/sh -c true 2>&1) &&
        soft_fail "two trusted stores accepted" || { echo "$out" | grep -q "a second /dev/trusted_store" &&
        ok "refused: $out" || soft_fail "two trusted stores: $out"; }
t0=$(date +%s)
out=$(ctl create --id side --rootfs "$C/side/rootfs" --guest-pull "$GUEST_REG/small:1" --device ghost-1:/dev/xvdz -- /bin/sh -c true 2>&1) &&
        soft_fail "an absent disk accepted" || { echo "$out" | grep -q "no disk with serial 'ghost-1'" &&
        ok "refused after $(($(date +%s) - t0)) s: $out" || soft_fail "absent disk: $out"; }
ctl create --id side --rootfs "$C/side/rootfs" --guest-pull "$GUEST_REG/small:1" --device ts-late:/dev/trusted_store -- \
        /bin/sh -c 'busybox ls /dev/trusted_store 2>&1; busybox cat /marker.txt' || soft_fail "CreateContainer of the sidecar"
ctl start --id side || soft_fail "StartContainer side"
out=$(ctl read-stdout --id side 2>&1)
echo "$out" | grep -q "No such file" && ok "the sidecar does not get /dev/trusted_store" || soft_fail "sidecar: $out"
line=$(log_line "$T/late.log" "trusted storage from /dev/trusted_store: .*")
case "$line" in
*"LUKS2 "*"aes-xts-plain64 volume key 512 bits, sector size 4096"*"ext4 on /run/cc-trusted-storage"*) ok "the agent's log: $line" ;;
*) soft_fail "late trusted storage line: '$line'" ;;
esac
ctl pull-image --id app -- "$GUEST_REG/small:1" >/dev/null || soft_fail "PullImage app"
ctl create --id app --rootfs "$C/app/rootfs" --device data-1:/dev/xvdb -- /bin/sh -c \
        'busybox cat /marker.txt; busybox stat -c "%F %t:%T" /dev/xvdb; busybox head -c 22 /dev/xvdb; echo' ||
        soft_fail "CreateContainer app with a data disk"
ctl start --id app || soft_fail "StartContainer app"
out=$(ctl read-stdout --id app 2>&1 | tr -d "\\000")
echo "$out" | sed 's/^/    app: /'
num=$(echo "$out" | sed -n 's/^block special file //p')
[ -n "$num" ] && [ "$num" != 8:20 ] && echo "$out" | grep -q "^CC-DATA-DISK-$$" &&
        ok "the data disk at /dev/xvdb: the guest's node $num (hex; not the host's 8:32) with the disk's bytes" ||
        soft_fail "data disk in the container: $out"
echo "$out" | grep -qx "$MARK-small" && ok "the app ran from its pull" || soft_fail "app: $out"
# A restarted sidecar (a new container naming the same volume; the shim sends the same serial):
# accepted, the store kept as it is (the app's layers stay on it).
ctl create --id side2 --rootfs "$C/side2/rootfs" --guest-pull "$GUEST_REG/small:1" --device ts-late:/dev/trusted_store -- \
        /bin/sh -c true && ctl start --id side2 && ctl wait --id side2 >/dev/null &&
        log_line "$T/late.log" "/dev/trusted_store on vd.*: the pod's trusted storage already.*" | grep -q . &&
        ok "a restarted sidecar with the same /dev/trusted_store: accepted, the store kept" ||
        soft_fail "restarted sidecar with the same trusted store"
# The evidence through the debug console (as the end-to-end test reads it).
con=$(python3 - "$T/late-con.sock" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(1)
s.sendall(b"/usr/libexec/cc-agent/cc-agent-storage status cc-trusted-store; exit\n")
buf, end = b"", time.time() + 90
while time.time() < end and b"session ended" not in buf:
    try:
        d = s.recv(65536)
    except socket.timeout:
        continue
    if not d:
        break
    buf += d
print(buf.decode(errors="replace"))
PY
)
echo "$con" | tr -d '\r' | sed -n '/is active/,/session ended/p' | sed 's/^/    console: /'
echo "$con" | grep -q "type: *LUKS2" && echo "$con" | grep -q "cipher: *aes-xts-plain64" &&
        echo "$con" | grep -q "keysize: *512 bits" && echo "$con" | grep -q "sector size: *4096" &&
        echo "$con" | grep -q "device: */dev/vd" && echo "$con" | grep -q "mounted: /run/cc-trusted-storage" &&
        echo "$con" | grep -q "overlay with layers on it: $C/app/rootfs" &&
        ok "cc-agent-storage status: LUKS2, aes-xts-plain64, 512 bits, 4096-byte sectors, the app's overlay on it" ||
        soft_fail "status through the debug console: $con"
ctl wait --id side >/dev/null; ctl wait --id app >/dev/null
poweroff
grep -a -q "mapping cc-trusted-store on vd[a-z]* gone" "$T/late.log" &&
        ok "DestroySandbox: $(grep -a -o "trusted storage: /run/cc-trusted-storage unmounted.*gone" "$T/late.log")" ||
        soft_fail "no mapping-gone line: $(grep -a "trusted storage" "$T/late.log" | tail -3)"
grep -a -q "$MARK-small" "$T/late.img" && soft_fail "the late disk holds the marker" || ok "the late disk holds no marker byte"

if [ "$fails" -ne 0 ]; then
        tail -n 30 "$T/trusted.log"
        fail "$fails check(s) failed"
fi
echo "PASS: agent-vm-trusted (image layers on LUKS2 trusted storage; pull $pull_s s for $BIG_MIB MiB)"
