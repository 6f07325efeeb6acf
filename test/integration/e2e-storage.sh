#!/usr/bin/env bash
# Block devices and the release notes' trusted ephemeral storage through containerd 1.6's CRI
# (issue 15): a node set up by the installer (guest pull through cc-snapshotter), a kata pod, and
# loop devices over sparse files standing in for a PVC of volumeMode Block.
#   a) the release notes' pod: a sidecar with a /dev/trusted_store device and an application
#      container (a marker in a layer): both run; the agent's line in the VM's console says
#      LUKS2, aes-xts-plain64, a 512-bit key, 4096-byte sectors, ext4 on /run/cc-trusted-storage
#      (where the guest keeps the layers pulled from then on and the writable layers); the app
#      sees the dm-crypt mapping on the hot-plugged
#      disk; the sidecar does not get the device; the loop's backing file starts with a LUKS
#      header, grew by the layers, and holds none of the image's (or the app's) marker bytes;
#   b) a plain block volume in the same pod: /dev/xvda from a loop device: the container reads
#      what the host wrote; read-only when its permissions are "r" (a write fails), writable
#      with "rw" (the host reads what it wrote); the disk leaves the VM with its container (no
#      QEMU fd on the loop after RemoveContainer) while the trusted store stays;
#   c) StopPodSandbox/RemovePodSandbox: every loop detaches (losetup -d), no QEMU, no run file;
#      the same after kill -9 of the shim of a pod holding a block volume;
#   d) with CC_E2E_STORAGE_BIG=1 (slow under TCG: a BIG_MIB image into a VM of VM_MIB): the image
#      runs with the trusted store and fails without it, ContainerStatus naming the reason.
set -uo pipefail
. "$(dirname "$0")/e2e-lib.sh"
e2e_start --built "$SNAP_BIN" --tool losetup
e2e_bridge_precreate
e2e_registry "$E2E_GW"
e2e_cni
LOOPS=()
# Loop devices go too when the run is cut short (by the name losetup gave); the status is kept.
trap 'rc=$?; for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null; done; (exit $rc); e2e_cleanup' EXIT
# loop NAME MIB: a loop device over a sparse file $CC_TMP/NAME.img; prints the device.
loop() {
        truncate -s "$2M" "$CC_TMP/$1.img"
        local l
        l=$(losetup -f --show "$CC_TMP/$1.img") || cc_fail "losetup $1"
        LOOPS+=("$l")
        echo "$l"
}

# The application image: busybox, a marker file in a layer of its own. The sidecar's "pause":
# one layer holding busybox only (another image, pulled before the trusted store exists).
MARK="cc-e2e-storage-marker-$$-$RANDOM"
snap_busybox_image "$CC_TMP/app"
echo "$MARK" >"$CC_TMP/marker.txt"
e2e_image_add "$CC_TMP/app" "$CC_TMP/marker.txt" marker.txt
snap_push "$CC_TMP/app:latest" cc/app:1
e2e_sidecar_image cc/sidecar:1
e2e_pause_image pause:1
IMAGE=$REG/cc/app:1
SIDECAR=$REG/cc/sidecar:1
e2e_installed_node
for i in "$IMAGE" "$SIDECAR"; do cri pull "$i" >/dev/null || cc_fail "CRI PullImage $i"; done

SLEEP="trap 'exit 0' TERM; while true; do busybox sleep 1; done"
# ctr POD PODNAME NAME IMAGE SHELL_CMD DEVICES_JSON [MOUNTS_JSON]: CreateContainer; prints the id.
ctr() {
        cat >"$CC_TMP/$3.ctr.json" <<JSON
{"metadata": {"name": "$3"}, "image": {"image": "$4"}, "log_path": "$3.log", "linux_": {},
 "command": ["/bin/busybox", "sh", "-c", "$5"], "devices": $6, "mounts": ${7:-[]}}
JSON
        cri create "$1" "$CC_TMP/$3.ctr.json" "$CC_TMP/$2.json" 2>"$CC_TMP/$3.create.err" |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["container_id"])' 2>/dev/null
}
dev() { echo "[{\"container_path\": \"$1\", \"host_path\": \"$2\", \"permissions\": \"$3\"}]"; }
# run POD PODNAME NAME IMAGE SHELL_CMD DEVICES_JSON: create and start; C = the id.
run() {
        C=$(ctr "$@")
        [ -n "$C" ] || { fail "CreateContainer $3: $(cat "$CC_TMP/$3.create.err")"; return 1; }
        cri start "$C" >/dev/null 2>"$CC_TMP/$3.start.err" || { fail "StartContainer $3: $(cat "$CC_TMP/$3.start.err")"; return 1; }
        ok "$3 runs"
}
# holders LOOP: the QEMU processes with the loop device open.
holders() {
        local p
        for p in $(qemus); do ls -l "/proc/$p/fd" 2>/dev/null | grep -q " $1\$" && echo "$p"; done
}

# --- a) the release notes' pod --------------------------------------------------------------
TS=$(loop trusted 512)
DATA=$(loop data 16)
RO=$(loop ro 16)
printf 'host-wrote-%s\n' "$MARK" | dd of="$DATA" conv=notrunc status=none
printf 'host-wrote-ro-%s\n' "$MARK" | dd of="$RO" conv=notrunc status=none
sync
ALLOC0=$(du -k "$CC_TMP/trusted.img" | cut -f1)
PODNAME=trusted-lvm-block
e2e_runp $PODNAME
POD=$E2E_POD
[ -n "$POD" ] || cc_fail "RunPodSandbox: $(cat "$CC_TMP/$PODNAME.runp.err")"
ok "RunPodSandbox $POD"
RUNDIR=$CC_SHIM_RUN_DIR/$(printf 'k8s.io/%s' "$POD" | sha256sum | cut -c1-24)
run "$POD" $PODNAME sidecar-trusted-store "$SIDECAR" "$SLEEP" "$(dev /dev/trusted_store "$TS" rwm)"
SIDE=$C
# The application also has an emptyDir (the kubelet's host directory, which must stay empty): made
# after the store, it lives on it, not in the guest's RAM.
EMPTYDIR=$CC_TMP/kubelet/pods/pod-uid-$$/volumes/kubernetes.io~empty-dir/scratch
mkdir -p "$EMPTYDIR"
run "$POD" $PODNAME application "$IMAGE" "cat /marker.txt; echo app-rw-$MARK >/rw.txt; echo app-vol-$MARK >/data/v.txt; $SLEEP" "[]" \
        "[{\"container_path\": \"/data\", \"host_path\": \"$EMPTYDIR\"}]"
APP=$C
cc_wait_for 120 grep -q "stdout F $MARK" "$CC_TMP/logs/$PODNAME/application.log" &&
        ok "the application printed its image's marker" || fail "application log: $(cat "$CC_TMP/logs/$PODNAME/application.log" 2>&1)"
con=$RUNDIR/console.log
cc_wait_for 30 grep -a -q "trusted storage from /dev/trusted_store: " "$con"
line=$(grep -a -o "trusted storage from /dev/trusted_store: .*" "$con" | head -1)
case "$line" in
*"LUKS2"*"aes-xts-plain64 volume key 512 bits, sector size 4096"*"ext4 on /run/cc-trusted-storage"*)
        ok "the agent's line: $(echo "$line" | cut -c1-200)" ;;
*) fail "no trusted storage line (LUKS2, aes-xts-plain64, 512 bits, 4096, ext4 on /run/cc-trusted-storage) in $con: '$line'" ;;
esac
out=$(cri exec-sync "$APP" /bin/sh -c 'for d in /sys/block/dm-*; do cat $d/dm/uuid $d/queue/logical_block_size; cat $d/slaves/*/serial; done')
echo "$out" | grep -q "^CRYPT-LUKS2-" && echo "$out" | grep -qx 4096 && echo "$out" | grep -q "^cc-blk-" &&
        ok "in the guest: a LUKS2 mapping, 4096-byte sectors, on the hot-plugged disk ($(echo $out | cut -c1-90))" ||
        fail "guest dm devices: '$(echo $out)'"
out=$(cri exec-sync "$APP" /bin/sh -c 'cat /data/v.txt; busybox grep " /data " /proc/self/mountinfo | busybox cut -d" " -f3; cat /sys/block/dm-*/dev')
set -- $out
[ "$1" = "app-vol-$MARK" ] && [ -n "${2:-}" ] && [ "$2" = "${3:-}" ] &&
        ok "the emptyDir made after the store is on its mapping ($2)" || fail "emptyDir on the store: '$(echo $out)'"
[ -z "$(ls -A "$EMPTYDIR")" ] && ok "nothing of the emptyDir reached the host directory" || fail "the host's emptyDir: $(ls -A "$EMPTYDIR")"
out=$(cri exec-sync "$SIDE" /bin/busybox sh -c 'ls /dev/trusted_store 2>&1; echo rc=$?')
case "$out" in *rc=0*) fail "the sidecar got /dev/trusted_store: $out" ;; *rc=*) ok "the sidecar does not get the trusted store's device" ;; *) fail "sidecar exec: '$out'" ;; esac
sync
[ "$(head -c 6 "$CC_TMP/trusted.img" | od -An -tx1 | tr -d ' \n')" = 4c554b53babe ] &&
        ok "the loop's backing file starts with a LUKS header" || fail "no LUKS magic at the start of trusted.img"
ALLOC1=$(du -k "$CC_TMP/trusted.img" | cut -f1)
[ "$ALLOC1" -gt $((ALLOC0 + 1024)) ] && ok "the backing file grew by $((ALLOC1 - ALLOC0)) KiB (layers and writable layers)" ||
        fail "the backing file did not grow: $ALLOC0 -> $ALLOC1 KiB"
grep -a -q -e "$MARK" "$CC_TMP/trusted.img" && fail "the backing file holds a marker in the clear" ||
        ok "the backing file holds none of the image's or the app's marker bytes"

# --- b) plain block volumes -------------------------------------------------------------------
run "$POD" $PODNAME reader "$IMAGE" "$SLEEP" "$(dev /dev/xvda "$RO" r)"
R=$C
out=$(cri exec-sync "$R" /bin/sh -c 'busybox head -c 64 /dev/xvda | busybox head -n 1')
[ "$out" = "host-wrote-ro-$MARK" ] && ok "read-only volume: the container reads what the host wrote" || fail "reader /dev/xvda: '$out'"
out=$(cri exec-sync "$R" /bin/sh -c 'echo x | busybox dd of=/dev/xvda conv=notrunc 2>&1; echo rc=$?')
case "$out" in *rc=0*) fail "a write to the read-only volume succeeded: $out" ;; *rc=*) ok "a write to it fails ($(echo "$out" | head -1 | cut -c1-60))" ;; *) fail "reader exec: '$out'" ;; esac
run "$POD" $PODNAME writer "$IMAGE" "$SLEEP" "$(dev /dev/xvda "$DATA" rw)"
W=$C
out=$(cri exec-sync "$W" /bin/sh -c "busybox head -c 64 /dev/xvda | busybox head -n 1; echo guest-wrote-$MARK | busybox dd of=/dev/xvda bs=4096 seek=1 conv=notrunc,fsync 2>/dev/null; echo rc=\$?")
[ "$(echo $out)" = "host-wrote-$MARK rc=0" ] && ok "read-write volume: the container reads the host's data and writes" || fail "writer: '$(echo $out)'"
[ -n "$(holders "$RO")" ] && ok "QEMU holds $RO while the reader runs" || fail "no QEMU holds $RO"
cri stop --timeout 10 "$R" >/dev/null && cri rm "$R" >/dev/null || fail "remove the reader"
cc_wait_for 30 bash -c "[ -z \"\$(for p in \$(pgrep -f -- '[q]emu-system.*$CC_SHIM_RUN_DIR'); do ls -l /proc/\$p/fd | grep ' $RO\$'; done)\" ]" &&
        ok "after RemoveContainer no QEMU fd is on $RO" || fail "QEMU still holds $RO: $(holders "$RO")"
[ -n "$(holders "$TS")" ] && ok "the trusted store stays attached" || fail "the trusted store left the VM"
cri stop --timeout 10 "$W" >/dev/null && cri rm "$W" >/dev/null || fail "remove the writer"
[ "$(dd if="$DATA" bs=4096 skip=1 count=1 status=none | head -n 1 | tr -d '\0')" = "guest-wrote-$MARK" ] &&
        ok "the host reads what the container wrote" || fail "the host does not see the guest's write"

# --- c) removal ---------------------------------------------------------------------------
cri stopp "$POD" >/dev/null || fail "StopPodSandbox"
cri rmp "$POD" >/dev/null || fail "RemovePodSandbox"
for l in "$TS" "$DATA" "$RO"; do
        [ -z "$(holders "$l")" ] && losetup -d "$l" && ok "after RemovePodSandbox $l detaches" || fail "$l is held: $(holders "$l")"
done
LOOPS=()
left=$(e2e_leftovers)
[ -z "$left" ] && ok "nothing left (VM, shim, run files, netns, bundles)" || fail "left: $left"

# kill -9 of the shim mid-pod: containerd's delete of the dead shim ends the VM; the loop is free.
KL=$(loop killed 16)
PODNAME=killed-pod
e2e_runp $PODNAME
POD=$E2E_POD
[ -n "$POD" ] || cc_fail "RunPodSandbox: $(cat "$CC_TMP/$PODNAME.runp.err")"
run "$POD" $PODNAME vol "$IMAGE" "$SLEEP" "$(dev /dev/xvda "$KL" rw)"
[ -n "$(holders "$KL")" ] || fail "no QEMU holds $KL"
spid=$(shims)
[ "$(wc -w <<<"$spid")" = 1 ] && kill -9 "$spid" || fail "shims: '$spid'"
cc_wait_for 30 bash -c "[ -z \"\$(pgrep -f -- '[q]emu-system.*$CC_SHIM_RUN_DIR')\" ]" && ok "kill -9 of the shim: the VM is gone" ||
        fail "QEMU left: $(qemus)"
losetup -d "$KL" && ok "and $KL detaches" || fail "$KL busy after the shim's kill -9"
LOOPS=()
cri stop --timeout 10 "$C" >/dev/null
cri rm "$C" >/dev/null
cri stopp "$POD" >/dev/null || fail "StopPodSandbox after kill -9"
cri rmp "$POD" >/dev/null || fail "RemovePodSandbox after kill -9"
left=$(e2e_leftovers)
[ -z "$left" ] && ok "nothing left after the kill -9 either" || fail "left: $left"

# --- d) an image larger than the VM's memory ----------------------------------------------------
if [ "${CC_E2E_STORAGE_BIG:-0}" = 1 ]; then
        VM_MIB=${VM_MIB:-256}
        BIG_MIB=${BIG_MIB:-320}
        head -c $((BIG_MIB << 20)) /dev/urandom >"$CC_TMP/big.bin"
        BIG_MD5=$(md5sum "$CC_TMP/big.bin" | cut -d' ' -f1)
        e2e_image_add "$CC_TMP/app" "$CC_TMP/big.bin" big.bin
        rm -f "$CC_TMP/big.bin"
        snap_push "$CC_TMP/app:latest" cc/big:1
        cri pull "$REG/cc/big:1" >/dev/null || cc_fail "CRI PullImage big"
        e2e_cfg_set default_memory "$VM_MIB"
        # The guest pull of BIG_MIB under TCG takes minutes (about 4.5 MiB/s).
        e2e_cfg_set create_container_timeout 900
        big_pod() { # NAME DEVICES_JSON: a pod, the sidecar when DEVICES_JSON names one, the big app
                PODNAME=$1
                e2e_runp "$1"
                POD=$E2E_POD
                [ -n "$POD" ] || cc_fail "RunPodSandbox $1: $(cat "$CC_TMP/$1.runp.err")"
                [ "$2" = "[]" ] || run "$POD" "$1" sidecar "$SIDECAR" "$SLEEP" "$2"
                C=$(ctr "$POD" "$1" big "$REG/cc/big:1" "busybox md5sum /big.bin; $SLEEP" "[]")
                [ -n "$C" ] || fail "CreateContainer big: $(cat "$CC_TMP/big.create.err")"
        }
        TS=$(loop big-trusted 1024)
        t=$(date +%s)
        big_pod big-ts "$(dev /dev/trusted_store "$TS" rwm)"
        cri --rpc-timeout 900 start "$C" >/dev/null 2>"$CC_TMP/big.start.err" &&
                cc_wait_for 60 grep -q "stdout F $BIG_MD5" "$CC_TMP/logs/big-ts/big.log" &&
                ok "a $BIG_MIB MiB image runs in a $VM_MIB MiB VM with the trusted store ($(($(date +%s) - t)) s)" ||
                fail "big image with the trusted store: $(cat "$CC_TMP/big.start.err") $(cat "$CC_TMP/logs/big-ts/big.log" 2>&1)"
        cri stopp "$POD" >/dev/null && cri rmp "$POD" >/dev/null || fail "remove big-ts"
        big_pod big-plain "[]"
        cri --rpc-timeout 900 start "$C" >/dev/null 2>"$CC_TMP/big.start.err" && fail "the $BIG_MIB MiB image started in $VM_MIB MiB without trusted storage"
        st=$(cri inspect "$C" | python3 -c 'import json,sys; s=json.load(sys.stdin)["status"]; print(s["state"], "|", s.get("reason", ""), "|", s.get("message", ""))')
        case "$st" in
        *"StartError"*"does not fit in the guest's memory"*) ok "without it: ContainerStatus $(echo "$st" | cut -c1-160)" ;;
        *) fail "without trusted storage: ContainerStatus '$st'" ;;
        esac
        cri stopp "$POD" >/dev/null && cri rmp "$POD" >/dev/null || fail "remove big-plain"
        for l in "${LOOPS[@]}"; do losetup -d "$l" || fail "$l busy"; done
        LOOPS=()
else
        echo "SKIP (part d): an image larger than the VM's memory runs only with CC_E2E_STORAGE_BIG=1 (minutes under TCG)"
fi
e2e_uninstall_node || fail "cc-deploy uninstall"
e2e_finish e2e-storage
