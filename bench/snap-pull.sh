#!/usr/bin/env bash
# CRI PullImage of a six-layer image (each layer 20 MiB of random data plus 1,000 small
# files, about 120 MiB compressed) from a local registry, side by side in one run:
#   guest    containerd 1.6 CRI -> cc-snapshotter (guest pull: layers never leave the registry)
#   overlay  containerd 1.6 CRI -> containerd's overlayfs (download + unpack on the host)
# Two private containerds, one per snapshotter. Reported per mode (median of RUNS pulls, each
# after removing the image and letting GC empty the stores): wall time, bytes the host keeps
# (containerd root + snapshotter root, du), and bytes written to storage by the containerd and
# cc-snapshotter processes during the pull (/proc/PID/io write_bytes).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RUNS=${RUNS:-3}
. test/integration/lib.sh
. test/integration/snap-lib.sh
snap_require "" containerd ctr docker-registry skopeo protoc-c

snap_registry
echo "building the benchmark image (6 x (20 MiB random + 1,000 small files))..."
/usr/bin/python3 bench/snap-pull-image.py "$CC_TMP/oci" || cc_fail "image"
snap_push "$CC_TMP/oci:v1" bench/six:v1
IMG=$REG/bench/six:v1

snap_start
snap_containerd_cri cc-snapshotter ctrd-guest
GUEST_SOCK=$CTRD_SOCK GUEST_ROOT=$CTRD_ROOT GUEST_PID=$PID_ctrd_guest
snap_containerd_cri overlayfs ctrd-overlay
OVL_SOCK=$CTRD_SOCK OVL_ROOT=$CTRD_ROOT OVL_PID=$PID_ctrd_overlay

wbytes() { # pids...: sum of write_bytes
        local s=0
        for p in "$@"; do s=$((s + $(awk '/^write_bytes/ {print $2}' /proc/$p/io))); done
        echo $s
}
kept() { du -sb "$@" 2>/dev/null | awk '{s+=$1} END {print s+0}'; }

# One pull: prints "rpc_ms kept_bytes written_bytes written_by_containerd".
pull_once() { # sock root containerd_pid [snapshotter_pid]
        local sock=$1 root=$2; shift 2
        local k0 w0 c0 ms k1 w1 c1
        sync
        k0=$(kept "$root" "$SNAP_ROOT")
        w0=$(wbytes "$@")
        c0=$(wbytes "$1")
        ms=$($CRI --address "$sock" --timing pull "$IMG" 2>&1 >/dev/null | awk '/^rpc_ms/ {print $2}')
        [ -n "$ms" ] || cc_fail "pull via $sock"
        sync
        w1=$(wbytes "$@")
        c1=$(wbytes "$1")
        k1=$(kept "$root" "$SNAP_ROOT")
        echo "$ms $((k1 - k0)) $((w1 - w0)) $((c1 - c0))"
        $CRI --address "$sock" rmi "$IMG" >/dev/null || cc_fail "rmi via $sock"
        # GC is asynchronous: wait for the stores to shrink back.
        for _ in $(seq 100); do [ "$(kept "$root" "$SNAP_ROOT")" -le $((k0 + 65536)) ] && break; sleep 0.1; done
}

median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
: >"$CC_TMP/guest" && : >"$CC_TMP/overlay"
for i in $(seq "$RUNS"); do
        pull_once "$GUEST_SOCK" "$GUEST_ROOT" "$GUEST_PID" "$PID_snap" >>"$CC_TMP/guest"
        pull_once "$OVL_SOCK" "$OVL_ROOT" "$OVL_PID" >>"$CC_TMP/overlay"
done
printf '%-28s %14s %14s %9s\n' metric overlayfs cc-snapshotter ratio
for col in 1 2 3 4; do
        name=$(echo "pull_ms host_bytes_kept host_bytes_written written_by_containerd" | cut -d' ' -f$col)
        o=$(cut -d' ' -f$col "$CC_TMP/overlay" | median)
        g=$(cut -d' ' -f$col "$CC_TMP/guest" | median)
        r=$(awk -v o="$o" -v g="$g" 'BEGIN { if (g <= 0) print "inf"; else printf "%.1fx", o / g }')
        printf '%-28s %14s %14s %9s\n' "$name" "$o" "$g" "$r"
done
echo "(median of $RUNS pulls each; ratio = overlayfs / cc-snapshotter)"
