#!/usr/bin/env bash
# The release notes' pod with its trusted store against the same pod without (issue 15), and
# what a pre-allocated hot-plug slot ([hypervisor.qemu] pcie_root_port) costs the boot, through
# containerd 1.6's CRI on a node set up by the installer (guest pull), QEMU TCG.
#   1. pods alternating: a sidecar (an image of busybox alone, sleeping) with /dev/trusted_store from a loop device
#      over a sparse 512 MiB file, or without the device, then the application (the guest pulls
#      its image: onto the LUKS2 store, or into guest memory). Times are the RPCs' own (cri.py
#      --timing): RunPodSandbox, the sidecar's Create+Start (the hot-plug, and the guest's LUKS2
#      format with the device), the app's Create+Start (its pull). One warm-up pod each.
#   2. RunPodSandbox alone with pcie_root_port = 0, 3 (the default) and 8, alternating.
# Usage: BUILD=build [POD_N=4] [SLOT_N=4] bash bench/pod-devices.sh   (root)
set -uo pipefail
cd "$(dirname "$0")/.."
. test/integration/lib.sh
. test/integration/snap-lib.sh
. test/integration/e2e-lib.sh
N=${POD_N:-4}
SN=${SLOT_N:-4}
e2e_require
T0=$(date +%s)
e2e_setup
LOOPS=()
trap 'rc=$?; for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null; done; (exit $rc); e2e_cleanup' EXIT
e2e_bridge_precreate
e2e_registry "$E2E_GW"
e2e_cni
snap_busybox_image "$CC_TMP/app"
head -c $((8 << 20)) /dev/urandom >"$CC_TMP/big.bin"
e2e_image_add "$CC_TMP/app" "$CC_TMP/big.bin" big.bin
snap_push "$CC_TMP/app:latest" cc/app:1
# The sidecar's own image (busybox alone): pulled before the trusted store exists, it must not
# hand the app its layers.
e2e_sidecar_image cc/sidecar:1
e2e_pause_image pause:1
IMAGE=$REG/cc/app:1
for s in 0 8; do
        E2E_NODE_EXTRA+=$(e2e_runtime_toml "kata-s$s" "$CC_TMP/configuration-s$s.toml")
done
e2e_installed_node
for s in 0 8; do
        sed -e '/^pcie_root_port = /d' -e "s|^\[hypervisor.qemu\]$|[hypervisor.qemu]\npcie_root_port = $s|" \
                "$E2E_CFG" >"$CC_TMP/configuration-s$s.toml"
done
cri pull "$IMAGE" >/dev/null || cc_fail "PullImage"
cri pull "$REG/cc/sidecar:1" >/dev/null || cc_fail "PullImage sidecar"

# rpc NAME CMD...: runs cri.py CMD with --timing; stdout into $CC_TMP/NAME.out; prints rpc_ms.
rpc() {
        local name=$1
        shift
        { $CRI --address "$CTRD_SOCK" --timing "$@" >"$CC_TMP/$name.out"; } 2>&1 | awk '/^rpc_ms/ {print $2}'
}
# container POD PODNAME NAME IMAGE CMD DEVICES: Create + Start; prints the two times.
container() {
        cat >"$CC_TMP/$3.ctr.json" <<JSON
{"metadata": {"name": "$3"}, "image": {"image": "$4"}, "log_path": "$3.log", "linux_": {},
 "command": ["/bin/busybox", "sh", "-c", "$5"], "devices": $6}
JSON
        local c s cid
        c=$(rpc "$3" create "$1" "$CC_TMP/$3.ctr.json" "$CC_TMP/$2.json")
        cid=$(jget '["container_id"]' <"$CC_TMP/$3.out")
        s=$(rpc "$3-start" start "$cid")
        [ -n "$s" ] || cc_fail "StartContainer $3"
        echo "$c $s"
}
runp() { # NAME HANDLER: RunPodSandbox; POD = the id, RUNP_MS = its time
        e2e_podjson "$1"
        e2e_netns_mark
        RUNP_MS=$(rpc "$1" runp --runtime "$2" "$CC_TMP/$1.json")
        POD=$(jget '["pod_sandbox_id"]' <"$CC_TMP/$1.out")
        [ -n "$POD" ] || cc_fail "RunPodSandbox $1"
        E2E_PODS+=("$POD")
        e2e_netns_record "$POD"
}
SLEEP="while true; do busybox sleep 1; done"
one_pod() { # ts|plain I
        local kind=$1 i=$2 name=$1-$2 devs="[]" a s c l
        if [ "$kind" = ts ]; then
                truncate -s 512M "$CC_TMP/$name.img"
                l=$(losetup -f --show "$CC_TMP/$name.img") || cc_fail "losetup"
                LOOPS+=("$l")
                devs="[{\"container_path\": \"/dev/trusted_store\", \"host_path\": \"$l\", \"permissions\": \"rwm\"}]"
        fi
        runp "$name" kata
        a=$RUNP_MS
        s=$(container "$POD" "$name" "side-$name" "$REG/cc/sidecar:1" "$SLEEP" "$devs")
        c=$(container "$POD" "$name" "app-$name" "$IMAGE" "busybox md5sum /big.bin; $SLEEP" "[]")
        cri stopp "$POD" >/dev/null
        cri rmp "$POD" >/dev/null
        [ -z "${l:-}" ] || { losetup -d "$l" || cc_fail "$l busy after the pod"; rm -f "$CC_TMP/$name.img"; }
        [ "$i" = 0 ] || echo "$kind $a $s $c" >>"$CC_TMP/times"
}
one_pod plain 0
one_pod ts 0
for i in $(seq "$N"); do
        one_pod plain "$i"
        one_pod ts "$i"
done
for i in $(seq 0 "$SN"); do
        for h in kata-s0 kata kata-s8; do
                runp "slots-$h-$i" "$h"
                cri stopp "$POD" >/dev/null
                cri rmp "$POD" >/dev/null
                [ "$i" = 0 ] || echo "$h $RUNP_MS" >>"$CC_TMP/slots"
        done
done
python3 bench/pod-devices-stats.py "$CC_TMP/times" "$CC_TMP/slots"
e2e_uninstall_node || cc_fail "cc-deploy uninstall"
left=$(e2e_leftovers)
[ -z "$left" ] || cc_fail "left: $left"
echo "pod-devices bench: done ($(($(date +%s) - T0)) s)"
