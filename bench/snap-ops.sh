#!/usr/bin/env bash
# Local-mode snapshot operations through `ctr` (as the issue asks) on containerd's built-in
# overlayfs and on cc-snapshotter (proxy plugin: one extra gRPC hop), in one containerd, in
# alternating rounds. Reported: median wall time per `ctr snapshots prepare|commit|rm` and
# the ratio cc-snapshotter / overlayfs (target: at most 1.5x). N operations of each kind per
# round, ROUNDS rounds.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N=${N:-30}
ROUNDS=${ROUNDS:-3}
. test/integration/lib.sh
. test/integration/snap-lib.sh
snap_require "" containerd
snap_start
snap_containerd
C="ctr --address $CTRD_SOCK -n bench"

ms() { date +%s%N; }
round() { # snapshotter round -> appends "op ms_per_op" lines
        local s=$1 r=$2 t0 t1
        $C snapshots --snapshotter "$s" prepare "base-$r" >/dev/null
        $C snapshots --snapshotter "$s" commit "base-c-$r" "base-$r"
        for op in prepare commit rm; do
                t0=$(ms)
                for i in $(seq "$N"); do
                        case $op in
                        prepare) $C snapshots --snapshotter "$s" prepare "a-$r-$i" "base-c-$r" >/dev/null ;;
                        commit) $C snapshots --snapshotter "$s" commit "c-$r-$i" "a-$r-$i" ;;
                        rm) $C snapshots --snapshotter "$s" rm "c-$r-$i" ;;
                        esac || cc_fail "$s $op $i"
                done
                t1=$(ms)
                echo "$op $(((t1 - t0) / N / 1000))" >>"$CC_TMP/$s"
        done
}
: >"$CC_TMP/overlayfs"
: >"$CC_TMP/cc-snapshotter"
for r in $(seq "$ROUNDS"); do
        round overlayfs "$r"
        round cc-snapshotter "$r"
done
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
printf '%-16s %12s %16s %8s\n' "op (us/op)" overlayfs cc-snapshotter ratio
for op in prepare commit rm; do
        o=$(awk -v op=$op '$1 == op {print $2}' "$CC_TMP/overlayfs" | median)
        g=$(awk -v op=$op '$1 == op {print $2}' "$CC_TMP/cc-snapshotter" | median)
        printf '%-16s %12s %16s %7.2fx\n' "$op" "$o" "$g" "$(awk -v o="$o" -v g="$g" 'BEGIN {print g / o}')"
done
echo "(median of $ROUNDS rounds of $N ops; each op is one ctr process; ratio = ours / overlayfs)"
