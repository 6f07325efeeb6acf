#!/usr/bin/env bash
# Guest kernel parameters, side by side: for each set given as an argument, a pod through the
# shim and containerd's `ctr run` (QEMU TCG, the project's guest image) and the shim's own
# agent_ready_ms (VMM start to the agent's Health.Check SERVING); the sets alternate
# run by run so that machine load hits them alike; medians printed. The sets are `kernel_params`
# of the runtime configuration, appended to the library's HV_GUEST_BASE_PARAMS.
#   BUILD=build [RUNS=3] bash bench/kernel-params.sh "quiet" "quiet cryptomgr.notests" ...
# (no arguments: "" against "quiet")
set -u
cd "$(dirname "$0")/.."
. test/integration/lib.sh
. bench/logfmt.sh
trap cc_cleanup EXIT
# Without arguments (make bench): the console's cost, a chatty boot against a quiet one.
[ $# -ge 1 ] || set -- "" "quiet"
for t in containerd ctr qemu-system-x86_64 busybox; do command -v $t >/dev/null || cc_skip "needs $t"; done
cc_guest_image
NS=kparams
RUNS=${RUNS:-3}
BUSYBOX=$(command -v busybox)
cc_shim_on_path "$BUILD/containerd-shim-kata-cc-v2"
cc_busybox_rootfs "$CC_TMP/rootfs" busybox sh
cc_start_containerd
cc_ctr_wrapper
n=0
for p in "$@"; do
        n=$((n + 1))
        cc_qemu_toml 384 "kernel_params = \"$p\"" >"$CC_TMP/set$n.toml"
        : >"$CC_TMP/set$n.ms"
done
for i in $(seq "$RUNS"); do
        for s in $(seq "$n"); do
                id=s$s-$i
                ctr_ run --rm --runtime io.containerd.kata-cc.v2 --runtime-config-path "$CC_TMP/set$s.toml" \
                        --rootfs "$CC_TMP/rootfs" "$id" /bin/sh -c true >/dev/null 2>&1 || cc_fail "run $id"
                logfmt_field "$CC_TMP/containerd.log" agent_ready_ms "sandbox=$id" vmm=qemu >>"$CC_TMP/set$s.ms"
        done
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
base=$(median "$CC_TMP/set1.ms")
s=0
for p in "$@"; do
        s=$((s + 1))
        m=$(median "$CC_TMP/set$s.ms")
        awk -v m="$m" -v b="$base" -v r="$(tr '\n' ' ' <"$CC_TMP/set$s.ms")" -v p="$p" \
                'BEGIN { printf "%6s ms  (%.3fx of set 1)  runs: %s kernel_params \"%s\"\n", m, m / b, r, p }'
done
