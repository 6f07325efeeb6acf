#!/usr/bin/env bash
# cc-snapshotter crash safety: `kill -9` of the snapshotter, again and again, while ctr
# prepares, commits, views and removes snapshots through containerd. After each restart:
#  - the database passes SQLite's integrity check;
#  - every snapshot containerd lists answers Mounts and Usage (the backend has it, same kind);
#  - no directory under snapshots/ lacks a row (the start-up sweep ran);
# and at the end, after containerd's GC: every snapshot we hold is one containerd knows.
set -u
cd "$(dirname "$0")/../.."
. test/integration/lib.sh
. test/integration/snap-lib.sh
snap_require "needs root" containerd ctr protoc-c
/usr/bin/python3 -c 'import grpc' 2>/dev/null || cc_skip "python3-grpcio not installed"
[ -x "$SNAP_BIN" ] || cc_fail "$SNAP_BIN not built"
ROUNDS=${SNAP_CRASH_ROUNDS:-8}

snap_start
snap_containerd
C="ctr --address $CTRD_SOCK -n crash"
S="$C snapshots --snapshotter cc-snapshotter"
$S prepare base >/dev/null && $S commit base-c base || cc_fail "setup"

# The workload: runs until $CC_TMP/stop exists; failures while we are down are expected.
workload() {
        local j=0
        while [ ! -e "$CC_TMP/stop" ]; do
                # Hold still while a round is checked (the check must not race with us).
                if [ -e "$CC_TMP/pause" ]; then
                        touch "$CC_TMP/paused"
                        sleep 0.05
                        continue
                fi
                rm -f "$CC_TMP/paused"
                j=$((j + 1))
                $S prepare "k$j" base-c >/dev/null 2>&1
                $S commit "c$j" "k$j" >/dev/null 2>&1
                $S view "v$j" "c$j" >/dev/null 2>&1
                if [ $((j % 3)) -ne 0 ]; then
                        $S rm "v$j" >/dev/null 2>&1
                        $S rm "c$j" >/dev/null 2>&1
                fi
        done
}

# Our own List over the socket, backend names, one per line.

check_round() {
        "$SNAP_BIN" --check --root "$SNAP_ROOT" --address "$SNAP_SOCK" | grep -qx ok ||
                cc_fail "integrity check failed after round $1"
        # Every id directory has a row and vice versa (the sweep ran at start).
        local dirs rows
        dirs=$(ls "$SNAP_ROOT/snapshots" | sort -n | tr '\n' ' ')
        case "$dirs" in *new-*) cc_fail "temporary directory left after round $1: $dirs" ;; esac
        # containerd's view: each listed snapshot must work in the backend.
        cc_wait_for 15 $S ls || cc_fail "containerd cannot reach the snapshotter after round $1"
        $S ls | tail -n +2 | while read -r key parent kind; do
                [ -n "${kind:-}" ] || kind=$parent
                $S mounts /tmp/none "$key" >/dev/null 2>&1 || echo "mounts $key"
                $S usage "$key" >/dev/null 2>&1 || echo "usage $key"
        done >"$CC_TMP/broken"
        [ -s "$CC_TMP/broken" ] && cc_fail "after round $1: $(cat "$CC_TMP/broken")"
        return 0
}

workload &
WL=$!
CC_PIDS+=($WL)
for r in $(seq "$ROUNDS"); do
        sleep "0.$((RANDOM % 7 + 2))"
        kill -9 "$PID_snap"
        wait "$PID_snap" 2>/dev/null
        snap_start
        touch "$CC_TMP/pause"
        cc_wait_for 30 test -e "$CC_TMP/paused" || cc_fail "workload did not pause"
        check_round "$r"
        echo "round $r: killed and restarted, state consistent ($($S ls | tail -n +2 | wc -l) snapshots)"
        rm -f "$CC_TMP/pause"
done
touch "$CC_TMP/stop"
wait "$WL"

# Let containerd's GC (triggered by a removal) drop what a crash left only on our side.
$S prepare gc-trigger >/dev/null && $S rm gc-trigger >/dev/null
sleep 3
$S ls | tail -n +2 | awk '{print $1}' | sort >"$CC_TMP/ctr-keys"
/usr/bin/python3 test/tools/snap-list.py "$SNAP_SOCK" >"$CC_TMP/ours" || cc_fail "List failed"
# Backend names are <namespace>/<seq>/<key>.
sed 's#^crash/[0-9]*/##' "$CC_TMP/ours" | awk '{print $1}' | sort >"$CC_TMP/our-keys"
extra=$(comm -13 "$CC_TMP/ctr-keys" "$CC_TMP/our-keys")
missing=$(comm -23 "$CC_TMP/ctr-keys" "$CC_TMP/our-keys")
[ -z "$extra" ] || cc_fail "snapshotter holds snapshots containerd does not know: $extra"
[ -z "$missing" ] || cc_fail "containerd lists snapshots the snapshotter lacks: $missing"
echo "after $ROUNDS kill -9 rounds: containerd and cc-snapshotter agree on $(wc -l <"$CC_TMP/our-keys") snapshots"
echo "PASS: snap-crash"
