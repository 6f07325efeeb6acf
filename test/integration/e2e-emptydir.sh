#!/usr/bin/env bash
# emptyDir volumes in the guest (issue 15, "How it is shown", second bullet), through containerd
# 1.6's CRI and a kata pod: the kubelet's emptyDir host paths (made here as the kubelet makes
# them: .../pods/<uid>/volumes/kubernetes.io~empty-dir/<name>, a plain directory for the default
# medium and a tmpfs for medium Memory) in two containers' mounts become the pod's guest volumes
# (a guest directory and a guest tmpfs). One container writes, the other reads what it wrote;
# the volume outlives the writer's removal (it goes with its last user); nothing of it reaches
# the host directories; a plain host bind mount is dropped and named in the shim's one warning.
set -uo pipefail
. "$(dirname "$0")/e2e-lib.sh"
e2e_start
grep -q '^allow_host_rootfs = true' "$E2E_CFG" || cc_fail "allow_host_rootfs not set in $E2E_CFG"

KUBELET=$CC_TMP/kubelet/pods/pod-uid-$$/volumes/kubernetes.io~empty-dir
mkdir -p "$KUBELET/shared" "$KUBELET/mem" "$CC_TMP/hostdir"
mount -t tmpfs -o size=8m tmpfs "$KUBELET/mem" || cc_fail "cannot mount the Memory emptyDir's tmpfs"
# The host tmpfs goes too when the run is cut short; the test's exit status is kept.
trap 'rc=$?; umount -l "$KUBELET/mem" 2>/dev/null; (exit $rc); e2e_cleanup' EXIT
MARK=emptydir-marker-$$-$RANDOM

e2e_busybox_registry
e2e_cni
e2e_containerd
PODNAME=ed-pod
t=$(date +%s.%N)
e2e_runp ed-pod
POD=$E2E_POD
[ -n "$POD" ] || cc_fail "RunPodSandbox: $(cat "$CC_TMP/ed-pod.runp.err")"
PLAIN_RUNP_S=$(echo "$(date +%s.%N) - $t" | bc | cut -c1-5)
ok "RunPodSandbox $POD ($PLAIN_RUNP_S s)"
cri pull "$IMAGE" >/dev/null || cc_fail "PullImage $IMAGE"

# ctr NAME CMD: a container with the three mounts (CRI's Mount: host_path -> container_path).
ctr() {
        cat >"$CC_TMP/$1.ctr.json" <<JSON
{"metadata": {"name": "$1"}, "image": {"image": "$IMAGE"},
 "command": ["/bin/sh", "-c", "$2"], "log_path": "$1.log", "linux_": {},
 "mounts": [{"container_path": "/data", "host_path": "$KUBELET/shared"},
            {"container_path": "/mem", "host_path": "$KUBELET/mem"},
            {"container_path": "/hostdir", "host_path": "$CC_TMP/hostdir"}]}
JSON
        cri create "$POD" "$CC_TMP/$1.ctr.json" "$CC_TMP/$PODNAME.json" 2>"$CC_TMP/$1.create.err" |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["container_id"])' 2>/dev/null
}

W=$(ctr writer "echo $MARK >/data/f; echo $MARK-mem >/mem/f; mkdir /data/d; echo written; trap 'exit 0' TERM; while true; do busybox sleep 1; done")
[ -n "$W" ] && ok "CreateContainer writer" || cc_fail "CreateContainer writer: $(cat "$CC_TMP/writer.create.err")"
cri start "$W" >/dev/null || cc_fail "StartContainer writer"
cc_wait_for 60 grep -q "stdout F written" "$CC_TMP/logs/ed-pod/writer.log" && ok "the writer wrote" ||
        fail "writer log: $(cat "$CC_TMP/logs/ed-pod/writer.log" 2>&1)"

R=$(ctr reader "trap 'exit 0' TERM; while true; do busybox sleep 1; done")
[ -n "$R" ] && ok "CreateContainer reader" || cc_fail "CreateContainer reader: $(cat "$CC_TMP/reader.create.err")"
cri start "$R" >/dev/null || cc_fail "StartContainer reader"
out=$(cri exec-sync "$R" cat /data/f)
[ "$out" = "$MARK" ] && ok "the reader sees the writer's file in the default-medium emptyDir" || fail "reader /data/f: '$out'"
out=$(cri exec-sync "$R" cat /mem/f)
[ "$out" = "$MARK-mem" ] && ok "the reader sees the writer's file in the Memory emptyDir" || fail "reader /mem/f: '$out'"
out=$(cri exec-sync "$R" /bin/sh -c 'busybox stat -f -c %T /mem; busybox stat -c %a /data')
[ "$(echo $out)" = "tmpfs 777" ] && ok "in the guest: /mem is a tmpfs, /data mode 777 ($(echo $out))" ||
        fail "guest fs types/modes: '$(echo $out)'"
out=$(cri exec-sync "$R" /bin/sh -c 'ls -A /hostdir 2>&1; echo rc=$?')
# The host bind mount is dropped: /hostdir is not the host's (it does not exist in the image).
case "$out" in *"rc=0"*) fail "/hostdir exists in the guest: $out" ;; *) ok "the plain host bind mount is not in the guest" ;; esac
cri exec-sync "$R" /bin/sh -c "echo back-$MARK >/data/from-reader" >/dev/null
out=$(cri exec-sync "$W" cat /data/from-reader)
[ "$out" = "back-$MARK" ] && ok "and the writer sees the reader's" || fail "writer /data/from-reader: '$out'"

# Nothing reached the host.
[ -z "$(ls -A "$KUBELET/shared")" ] && [ -z "$(ls -A "$KUBELET/mem")" ] && [ -z "$(ls -A "$CC_TMP/hostdir")" ] &&
        ok "the host directories are empty" ||
        fail "host dirs: $(ls -A "$KUBELET/shared" "$KUBELET/mem" "$CC_TMP/hostdir")"
grep -rqs "$MARK" "$CC_TMP/kubelet" "$CC_TMP/hostdir" && fail "the marker is on the host" || ok "no marker byte on the host"

# One warning per container, naming the dropped host mount and no emptyDir.
warn=$(grep -a "host mount.*not visible in the guest" "$CC_TMP/containerd.log" | grep -a "$W" | head -1)
case "$warn" in
*"$CC_TMP/hostdir -> /hostdir"*)
        case "$warn" in *empty-dir*) fail "the warning names an emptyDir: $warn" ;; *) ok "the shim's warning names the dropped host mount" ;; esac ;;
*) fail "no warning naming $CC_TMP/hostdir: '$warn'" ;;
esac
[ "$(grep -a "not visible in the guest" "$CC_TMP/containerd.log" | grep -c "$W")" = 1 ] &&
        ok "one warning for the writer" || fail "warnings for the writer: $(grep -a "not visible in the guest" "$CC_TMP/containerd.log" | grep -c "$W")"

# The volume goes with its last user, not its first.
cri stop --timeout 10 "$W" >/dev/null && cri rm "$W" >/dev/null || fail "stop/rm writer"
out=$(cri exec-sync "$R" cat /data/f /mem/f)
[ "$(echo $out)" = "$MARK $MARK-mem" ] && ok "the volumes outlive the writer's removal" || fail "after rm writer: '$out'"
# A third container gets the same volume (refcounted, not remade).
T=$(ctr third "cat /data/f; ls /data; trap 'exit 0' TERM; while true; do busybox sleep 1; done")
cri start "$T" >/dev/null || fail "StartContainer third"
cc_wait_for 30 grep -q "stdout F $MARK" "$CC_TMP/logs/ed-pod/third.log" && ok "a later container sees the volume's content" ||
        fail "third log: $(cat "$CC_TMP/logs/ed-pod/third.log" 2>&1)"
for c in "$R" "$T"; do cri stop --timeout 10 "$c" >/dev/null; cri rm "$c" >/dev/null || fail "rm $c"; done

cri stopp "$POD" >/dev/null || fail "StopPodSandbox"
cri rmp "$POD" >/dev/null || fail "RemovePodSandbox"
umount "$KUBELET/mem" || fail "umount the host tmpfs"
left=$(e2e_leftovers)
[ -z "$left" ] && ok "nothing left (VM, shim, mounts, netns, bundles)" || fail "left: $left"

# --- the same pod with trusted storage ([runtime] trusted_storage_mib) -------------------------
# The shim attaches a sparse scratch disk; the guest encrypts it and keeps the containers'
# rootfs (copied here: allow_host_rootfs) and the default-medium emptyDir on it, the Memory one
# stays a guest tmpfs. The host's file holds no plaintext; it goes with the pod, also when the
# shim is killed with SIGKILL.
e2e_cfg_set trusted_storage_mib 512
mount -t tmpfs -o size=8m tmpfs "$KUBELET/mem" || cc_fail "cannot mount the Memory emptyDir's tmpfs"
PODNAME=ts-pod
t=$(date +%s.%N)
e2e_runp ts-pod
POD=$E2E_POD
[ -n "$POD" ] || cc_fail "RunPodSandbox with trusted storage: $(cat "$CC_TMP/ts-pod.runp.err")"
ok "RunPodSandbox with trusted storage ($(echo "$(date +%s.%N) - $t" | bc | cut -c1-5) s; without: $PLAIN_RUNP_S s)"
img=$(find "$CC_SHIM_RUN_DIR" -name trusted-storage.img)
[ -n "$img" ] && [ "$(stat -c %s "$img")" = $((512 << 20)) ] && [ "$(du -k "$img" | cut -f1)" -lt $((64 << 10)) ] &&
        ok "the pod's scratch disk: a sparse 512 MiB file ($(du -k "$img" | cut -f1) KiB allocated)" ||
        fail "scratch disk: '$img' $(ls -ls "$img" 2>&1)"
# The agent's line in the VM's console log (the kernel's dm table, read back).
con=$(dirname "$img")/console.log
grep -a "trusted storage: LUKS2" "$con" | grep -q "aes-xts-plain64 volume key 512 bits, sector size 4096" &&
        ok "the agent encrypted it: $(grep -a -o "kernel's table: [^\"]*" "$con" | head -1 | cut -c1-150)" ||
        fail "no trusted storage line from the agent in $con"
W=$(ctr writer "echo $MARK >/data/f; echo written; trap 'exit 0' TERM; while true; do busybox sleep 1; done")
cri start "$W" >/dev/null || fail "StartContainer writer (trusted storage)"
cc_wait_for 60 grep -q "stdout F written" "$CC_TMP/logs/ts-pod/writer.log" || fail "writer log: $(cat "$CC_TMP/logs/ts-pod/writer.log" 2>&1)"
out=$(cri exec-sync "$W" /bin/sh -c 'busybox stat -f -c %T / /data /mem; cat /data/f')
[ "$(echo $out)" = "ext2/ext3 ext2/ext3 tmpfs $MARK" ] &&
        ok "in the guest: the rootfs and /data on the encrypted ext4, /mem a tmpfs ($(echo $out | cut -d' ' -f1-3))" ||
        fail "trusted storage filesystems: '$(echo $out)'"
sync
grep -a -q "$MARK" "$img" && fail "the scratch file holds the emptyDir's marker" || ok "the host's scratch file holds no marker byte"
[ -z "$(ls -A "$KUBELET/shared")" ] && ok "the host's emptyDir stays empty" || fail "host emptyDir: $(ls -A "$KUBELET/shared")"
# kill -9 of the shim: containerd's delete of the dead shim removes the VM and the disk.
spid=$(shims)
[ "$(wc -w <<<"$spid")" = 1 ] && kill -9 "$spid" || fail "shims: '$spid'"
cc_wait_for 30 bash -c "[ ! -e '$img' ]" && ok "kill -9 of the shim: the scratch disk is removed" ||
        fail "$img left after the shim's kill -9"
cc_wait_for 30 bash -c "[ -z \"\$(pgrep -f -- '[q]emu-system.*$CC_SHIM_RUN_DIR')\" ]" && ok "and the VM is gone" ||
        fail "QEMU left: $(qemus)"
cri stop --timeout 10 "$W" >/dev/null
cri rm "$W" >/dev/null || fail "rm writer"
cri stopp "$POD" >/dev/null || fail "StopPodSandbox"
cri rmp "$POD" >/dev/null || fail "RemovePodSandbox"
umount "$KUBELET/mem" || fail "umount the host tmpfs"
left=$(e2e_leftovers)
[ -z "$left" ] && ok "nothing left (VM, shim, scratch disk, mounts, netns, bundles)" || fail "left: $left"

e2e_finish e2e-emptydir
