#!/usr/bin/env bash
# Pod start through containerd 1.6's CRI: RunPodSandbox -> PullImage -> CreateContainer ->
# StartContainer (container running). Times are the RPCs' own wall times (test/cri/cri.py
# --timing: the client's start-up is not counted). Each pod is removed, and its image with it,
# before the next, so every pull really pulls. One warm-up pod per mode is not counted.
#
# Phase A, one containerd (overlayfs, host pull), alternating N pods each:
#   kata     our shim, a QEMU TCG VM per pod, the rootfs copied into the guest (allow_host_rootfs)
#   runc     the same pod with runtime_type io.containerd.runc.v2 (Debian's Go shim and runc)
# Phase B, a node set up by `cc-deploy install` (cc-snapshotter, guest pull), N pods:
#   kata-gp  the same pod, its image pulled inside the VM over the pod network (the CoCo flow)
#
# The kata breakdown, per pod:
#   before VM    RunPodSandbox start -> the shim starts QEMU (containerd, CNI, shim start,
#                configuration): the time of the shim's line with agent_ready_ms=M (stamped by
#                the shim), minus M
#   VM boot      QEMU start -> the guest kernel's clock starts (firmware, kernel load): derived
#                from the guest's /proc/uptime read by ExecSync (host time - uptime)
#   agent ready  guest kernel start -> the agent answers the shim's health check
#   sandbox      agent ready -> RunPodSandbox returns (network into the guest, CreateSandbox)
#   pull         CRI PullImage on the host (kata-gp: manifest and config only) and, for kata-gp,
#                the guest's pull (the shim's guest_pull_ms=, inside StartContainer)
#   create       CreateContainer (containerd's metadata only: the shim is not called yet)
#   task create  the shim's Create inside StartContainer (create_ms=): the rootfs
#                copied into the guest (kata) or pulled there (kata-gp), the agent's
#                CreateContainer; shown without the guest pull
#   start        the rest of StartContainer (the agent's StartContainer, containerd)
# Usage: BUILD=build [POD_N=5] bash bench/pod-start.sh   (root; results: bench/pod-results.md)
set -uo pipefail
cd "$(dirname "$0")/.."
. test/integration/lib.sh
. test/integration/snap-lib.sh
. test/integration/e2e-lib.sh
. bench/logfmt.sh
trap e2e_cleanup EXIT
N=${POD_N:-5}
e2e_require
command -v containerd-shim-runc-v2 >/dev/null && command -v runc >/dev/null ||
        cc_skip "needs containerd-shim-runc-v2 and runc"
[ -x "$SNAP_BIN" ] || cc_fail "$SNAP_BIN not built"
T0=$(date +%s)
e2e_setup
# The registry on the CNI bridge's gateway: the host and the guests use the same reference.
e2e_bridge_precreate
e2e_registry "$E2E_GW"
snap_busybox_image "$CC_TMP/bb-layout"
snap_push "$CC_TMP/bb-layout:latest" busybox:1
# The sandbox image: runc pods run it, so it must keep running (kata pods use the agent's own
# pause). It shares no layer with busybox:1: cc-snapshotter pulls pause images locally, and a
# shared layer would put busybox:1 on those local snapshots in phase B.
p=$CC_TMP/pause-layout pb=$CC_TMP/pause-bundle
umoci init --layout "$p"
umoci new --image "$p:latest"
umoci unpack --image "$p:latest" "$pb" >/dev/null
mkdir -p "$pb/rootfs/bin"
cp /bin/busybox "$pb/rootfs/bin/busybox"
echo "sandbox image" >"$pb/rootfs/pause"
umoci repack --image "$p:latest" "$pb" >/dev/null
rm -rf "$pb"
umoci config --image "$p:latest" --config.entrypoint /bin/busybox --config.cmd sleep \
        --config.cmd 2147483 >/dev/null
snap_push "$p:latest" pause:1
IMAGE=$REG/busybox:1
e2e_cni

# rpc ARGS...: one CRI call with timing; its stdout in $CC_TMP/out; prints "start_ns end_ns ms"
rpc() {
        cri --timing "$@" >"$CC_TMP/out" 2>"$CC_TMP/err" || { cat "$CC_TMP/err" >&2; return 1; }
        awk '/^rpc_start_ns/ {s=$2} /^rpc_end_ns/ {e=$2} /^rpc_ms/ {m=$2} END {print s, e, m}' "$CC_TMP/err"
}
logms() { # FIELD KEY=VALUE: the shim's FIELD on its last line with KEY=VALUE in containerd's log
        logfmt_field "$CC_TMP/containerd.log" "$1" "$2"
}
ROWS=$CC_TMP/rows
: >"$ROWS"
one_pod() { # MODE I
        local m=$1 i=$2 h=$1 name="bench-$1-$2" rp pl cr st pod cid up=0 now=0 tc=0 gp=0 vm=""
        [ "$m" = kata-gp ] && h=kata
        e2e_podjson "$name"
        e2e_netns_mark
        rp=$(rpc runp --runtime "$h" "$CC_TMP/$name.json")
        local rc=$?
        [ $rc -eq 0 ] && pod=$(jget '["pod_sandbox_id"]' <"$CC_TMP/out")
        e2e_netns_record "${pod:-}"
        [ $rc -eq 0 ] || cc_fail "$m RunPodSandbox"
        E2E_PODS+=("$pod")
        pl=$(rpc pull "$IMAGE") || cc_fail "$m PullImage"
        cat >"$CC_TMP/$name.ctr.json" <<JSON
{"metadata": {"name": "c"}, "image": {"image": "$IMAGE"},
 "command": ["/bin/busybox", "sleep", "3600"], "log_path": "c.log", "linux_": {}}
JSON
        cr=$(rpc create "$pod" "$CC_TMP/$name.ctr.json" "$CC_TMP/$name.json") || cc_fail "$m CreateContainer"
        cid=$(jget '["container_id"]' <"$CC_TMP/out")
        st=$(rpc start "$cid") || cc_fail "$m StartContainer"
        [ "$(ctr_state "$cid")" = "CONTAINER_RUNNING 0" ] || cc_fail "$m container not running"
        if [ "$h" = kata ]; then
                # The guest's uptime at a known host time (the ExecSync's end, within ~10 ms).
                up=$(cri exec-sync "$cid" /bin/busybox cut -d' ' -f1 /proc/uptime)
                now=$(date +%s%N)
                # The shim's lines for this pod and container, as stamped by containerd.
                local at ams
                at=$(logfmt_field "$CC_TMP/containerd.log" time "sandbox=$pod" agent_ready_ms=)
                ams=$(logms agent_ready_ms "sandbox=$pod")
                [ -n "$at" ] && [ -n "$ams" ] && vm="$at $ams"
                tc=$(logms create_ms "task=$cid")
                [ "$m" = kata-gp ] && gp=$(logms guest_pull_ms "container=$cid")
                [ -n "$vm" ] && [ -n "$tc" ] && [ -n "$gp" ] || cc_fail "$m: the shim's timing lines are missing"
        fi
        echo "$m $i $rp $pl $cr $st $up $now $tc $gp $vm" >>"$ROWS"
        cri stopp "$pod" >/dev/null || cc_fail "$m StopPodSandbox"
        cri rmp "$pod" >/dev/null || cc_fail "$m RemovePodSandbox"
        cri rmi "$IMAGE" >/dev/null || cc_fail "RemoveImage"
}

# --- phase A: kata and runc on one containerd (host pull) ------------------------------------
e2e_containerd
one_pod kata 0
one_pod runc 0
: >"$ROWS"
for i in $(seq "$N"); do
        one_pod kata "$i"
        one_pod runc "$i"
done
left=$(e2e_leftovers)
[ -z "$left" ] || cc_fail "left after phase A: $left"
cc_stop_pid "$PID_containerd"
mv "$CC_TMP/containerd.log" "$CC_TMP/containerd-a.log"
awk -v d="$CTRD_DIR" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
        while read -r mnt; do umount -l "$mnt"; done
rm -rf "$CTRD_DIR"

# --- phase B: kata with guest pull on an installed node ---------------------------------------
e2e_installed_node
cp "$ROWS" "$CC_TMP/rows-a"
one_pod kata-gp 0
cp "$CC_TMP/rows-a" "$ROWS"
for i in $(seq "$N"); do one_pod kata-gp "$i"; done
left=$(e2e_leftovers)
[ -z "$left" ] || cc_fail "left after phase B: $left"

python3 bench/pod-start-stats.py "$ROWS" "$N"
echo "pod-start: $(($(date +%s) - T0)) s"
