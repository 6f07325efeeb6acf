#!/usr/bin/env bash
# Pod start with trusted storage against without (issue 15), through containerd 1.6's CRI:
# RunPodSandbox + CreateContainer + StartContainer (the container running), alternating a pod
# of handler `kata` (the shipped QEMU configuration, TCG) and of `kata-ts` (the same with
# [runtime] trusted_storage_mib = 1024: the guest formats the scratch disk as LUKS2 + ext4 at
# boot, and the container's rootfs is copied onto it). Times are the RPCs' own (cri.py
# --timing). One warm-up pod per handler is not counted.
# Usage: BUILD=build [POD_N=5] [INITRD=path] bash bench/trusted-storage.sh   (root)
# INITRD: another guest image for both handlers (e.g. one built from an older agent, to compare).
# The guest's split is printed from the kata-ts pods' console logs (the agent's line: the disk
# found, the helper's LUKS2 / mke2fs / mount times, and its whole run).
set -uo pipefail
cd "$(dirname "$0")/.."
. test/integration/lib.sh
. test/integration/snap-lib.sh
. test/integration/e2e-lib.sh
trap e2e_cleanup EXIT
N=${POD_N:-5}
e2e_require
T0=$(date +%s)
e2e_setup "${INITRD:-}"
TS_CFG=$CC_TMP/configuration-qemu-ts.toml
sed 's/^trusted_storage_mib = .*/trusted_storage_mib = 1024/' "$E2E_CFG" >"$TS_CFG"
grep -q '^trusted_storage_mib = 1024$' "$TS_CFG" || cc_fail "could not set trusted_storage_mib"
E2E_EXTRA_RUNTIMES="
    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.kata-ts]
      runtime_type = \"io.containerd.kata-cc.v2\"
      [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.kata-ts.options]
        ConfigPath = \"$TS_CFG\""
e2e_busybox_registry
e2e_cni
e2e_containerd
cri pull "$IMAGE" >/dev/null || cc_fail "PullImage"

# rpc_ms CMD...: the RPC's own wall time.
rpc_ms() { $CRI --address "$CTRD_SOCK" --timing "$@" 2>&1 >/dev/null | awk '/^rpc_ms/ {print $2}'; }
one_pod() {
        local h=$1 i=$2 name pod cid a b c
        name=ts-$h-$i
        e2e_podjson "$name"
        e2e_netns_mark
        a=$( { $CRI --address "$CTRD_SOCK" --timing runp --runtime "$h" "$CC_TMP/$name.json" >"$CC_TMP/$name.out"; } 2>&1 | awk '/^rpc_ms/ {print $2}')
        pod=$(jget '["pod_sandbox_id"]' <"$CC_TMP/$name.out")
        [ -n "$pod" ] || cc_fail "RunPodSandbox $h"
        E2E_PODS+=("$pod")
        e2e_netns_record "$pod"
        cat >"$CC_TMP/$name.ctr.json" <<JSON
{"metadata": {"name": "c"}, "image": {"image": "$IMAGE"},
 "command": ["/bin/sh", "-c", "while true; do busybox sleep 1; done"], "log_path": "c.log", "linux_": {}}
JSON
        b=$( { $CRI --address "$CTRD_SOCK" --timing create "$pod" "$CC_TMP/$name.ctr.json" "$CC_TMP/$name.json" >"$CC_TMP/$name.cout"; } 2>&1 | awk '/^rpc_ms/ {print $2}')
        cid=$(jget '["container_id"]' <"$CC_TMP/$name.cout")
        c=$(rpc_ms start "$cid")
        [ -n "$c" ] || cc_fail "StartContainer $h"
        [ "$h" = kata-ts ] && find "$CC_SHIM_RUN_DIR" -path "*${pod:0:24}*" -name console.log -exec grep -a -h -o "(LUKS2 [^\"]*" {} + |
                sed 's/^/    guest: /' | cut -c1-200
        cri stopp "$pod" >/dev/null
        cri rmp "$pod" >/dev/null
        [ "$i" = 0 ] || echo "$h $a $b $c" >>"$CC_TMP/times"
}
one_pod kata 0
one_pod kata-ts 0
for i in $(seq "$N"); do
        one_pod kata "$i"
        one_pod kata-ts "$i"
done
python3 bench/trusted-storage-stats.py "$CC_TMP/times"
left=$(e2e_leftovers)
[ -z "$left" ] || cc_fail "left: $left"
echo "trusted-storage bench: done ($(($(date +%s) - T0)) s)"
