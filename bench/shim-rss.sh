#!/usr/bin/env bash
# Shim daemon memory: RSS and PSS (smaps_rollup) of containerd-shim-kata-cc-v2 serving one pod
# (one QEMU TCG VM) with one running container, next to Debian's containerd-shim-runc-v2
# serving one runc container, both under one private containerd 1.6 in the same run. Issue 5
# target: at most 2 MiB RSS for our shim, about a seventh of the runc shim's (13.5 MB here).
# The VM itself (QEMU) is not the shim's memory and is reported on its own line.
set -uo pipefail
BUILD=${BUILD:-build}
. "$(dirname "$0")/../test/integration/lib.sh"
. "$(dirname "$0")/logfmt.sh"
SHIM=$BUILD/containerd-shim-kata-cc-v2
command -v qemu-system-x86_64 >/dev/null || { echo "shim-rss: no qemu-system-x86_64"; exit 0; }
command -v containerd-shim-runc-v2 >/dev/null || { echo "shim-rss: no containerd-shim-runc-v2"; exit 0; }
[ -f build/guest/vmlinuz ] || make -s guest-image >/dev/null
cc_shim_on_path "$SHIM"
NS=shimrss
bench_cleanup() {
        local rc=$?
        ctr --address "$CTRD_SOCK" -n $NS task kill -s SIGKILL k1 >/dev/null 2>&1
        ctr --address "$CTRD_SOCK" -n $NS task kill -s SIGKILL r1 >/dev/null 2>&1
        sleep 2
        ctr --address "$CTRD_SOCK" -n $NS task delete k1 r1 >/dev/null 2>&1
        # Both shims: ours and Debian's runc shim.
        cc_kill_shims "${CTRD_SOCK:-/nonexistent}" "[c]ontainerd-shim-"
        (exit "$rc")
        cc_cleanup
}
trap bench_cleanup EXIT
R=$CC_TMP/rootfs
BUSYBOX=$(command -v busybox)
cc_busybox_rootfs "$R" busybox sh
cc_qemu_toml 384 >"$CC_TMP/cfg.toml"
cc_start_containerd
c() { ctr --address "$CTRD_SOCK" -n $NS "$@"; }
c run -d --runtime io.containerd.kata-cc.v2 --runtime-config-path "$CC_TMP/cfg.toml" --rootfs "$R" \
        k1 /bin/sh -c 'while true; do busybox sleep 1; done'
c run -d --rootfs "$R" r1 /bin/sh -c 'while true; do busybox sleep 1; done'
cc_wait_for 120 bash -c "ctr --address $CTRD_SOCK -n $NS task ls | grep -q 'k1 .*RUNNING'"
# A little traffic on both, as a pod sees: state, exec, stats.
for id in k1 r1; do
        c task exec --exec-id e-$id "$id" /bin/busybox true
        c task metrics "$id" >/dev/null
done
sleep 2
kpid=$(cat "$CTRD_DIR/state/io.containerd.runtime.v2.task/$NS/k1/shim.pid")
rpid=$(pgrep -f -- "[c]ontainerd-shim-runc-v2 -namespace $NS -id r1" | head -n1)
qpid=$(pgrep -f -- "[q]emu-system.*$CC_SHIM_RUN_DIR" | head -n1)
if [ -n "${SHIM_RSS_DETAIL:-}" ]; then
        echo "largest mappings of the kata-cc shim (Rss KiB):"
        awk '/^[0-9a-f]+-[0-9a-f]+ / {name=$6} /^Rss:/ {rss[name]+=$2} END {for (n in rss) if (rss[n] > 100) printf "%8d %s\n", rss[n], n}' \
                "/proc/$kpid/smaps" | sort -rn | head -20
fi
kib() { awk -v k="$2:" '$1 == k {print $2}' "$1"; }
kr=$(kib "/proc/$kpid/status" VmRSS) kp=$(kib "/proc/$kpid/smaps_rollup" Pss)
rr=$(kib "/proc/$rpid/status" VmRSS) rp=$(kib "/proc/$rpid/smaps_rollup" Pss)
qr=$(kib "/proc/$qpid/status" VmRSS)
printf '\n%-58s %9s %9s\n' "shim daemon, one pod with one running container" "RSS KiB" "PSS KiB"
printf '%-58s %9s %9s\n' "containerd-shim-kata-cc-v2 (C, this tree)" "$kr" "$kp"
printf '%-58s %9s %9s\n' "containerd-shim-runc-v2 (Go, Debian 1.6.20)" "$rr" "$rp"
printf '%-58s %9s\n' "ratio runc / kata-cc (RSS)" "$(echo "scale=1; $rr / $kr" | bc)"
printf '%-58s %9s\n' "target for kata-cc" "2048"
printf '%-58s %9s\n' "(the pod's QEMU TCG VM, 384 MiB guest, not the shim)" "$qr"
own=$(logfmt_field "$CC_TMP/containerd.log" create_own_ms task=k1)
all=$(logfmt_field "$CC_TMP/containerd.log" create_ms task=k1)
[ -n "$all" ] && own="create_ms=$all create_own_ms=$own" || own="not logged"
printf '\n%s\n' "sandbox Create (VM boot + agent + rootfs copy included in the first figure): $own"
printf '%s\n' "target for the shim's own part: 10 ms"
