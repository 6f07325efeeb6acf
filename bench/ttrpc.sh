#!/usr/bin/env bash
# ttrpc round trip: our C ttrpc server versus the Go ttrpc server of Debian's
# containerd-shim-runc-v2 (containerd 1.6.20), one trivial call (Task.Connect), the same C client
# for both, in one run. Rounds alternate Go/C; the median round of each is reported.
#   BENCH_CALLS (default 20000) calls per measurement, BENCH_ROUNDS (default 3) rounds.
set -euo pipefail
. "$(dirname "$0")/../test/integration/lib.sh"
trap cc_cleanup EXIT
CALLS=${BENCH_CALLS:-20000}
ROUNDS=${BENCH_ROUNDS:-3}
BENCH=$BUILD/bench/ttrpc-bench
PEER=$BUILD/test/tools/ttrpc-task-peer
[ -x "$BENCH" ] && [ -x "$PEER" ] || cc_fail "build first (make)"

cc_start_containerd
NS=ccbench id=bench$$ bundle=$CC_TMP/bundle
mkdir -p "$bundle/rootfs"
echo '{"ociVersion": "1.0.2", "process": {"args": ["/bin/true"], "cwd": "/"}, "root": {"path": "rootfs"}}' >"$bundle/config.json"
mkfifo "$bundle/log"
cc_bg shimlog cat "$bundle/log"
# GOMAXPROCS=2 as containerd sets it for every shim.
addr=$(cd "$bundle" && GOMAXPROCS=2 TTRPC_ADDRESS=$CTRD_SOCK.ttrpc containerd-shim-runc-v2 \
        -namespace "$NS" -address "$CTRD_SOCK" -publish-binary "$(command -v containerd)" \
        -id "$id" start </dev/null)
shim_pid=$(pgrep -f -- "containerd-shim-runc-v2 -namespace $NS -id $id " | head -n1)
CC_PIDS+=("$shim_pid")
go_sock=${addr#unix://}
c_sock=$CC_TMP/c.sock
cc_bg cserver "$PEER" server "$c_sock"
cc_wait_for 10 test -S "$c_sock" || cc_fail "C server did not start"

declare -a GO C
for r in $(seq "$ROUNDS"); do
        GO+=("$("$BENCH" "$go_sock" "$CALLS")")
        C+=("$("$BENCH" "$c_sock" "$CALLS")")
done
median() { printf '%s\n' "$@" | sort -t= -k3 -g | sed -n "$((($# + 1) / 2))p"; }
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# Median per metric across rounds.
med_metric() { local m=$1; shift; for l in "$@"; do field "$l" "$m"; done | sort -g | sed -n "$((($# + 1) / 2))p"; }
printf '%-28s %12s %12s %8s\n' metric "Go (runc)" "C (ours)" ratio
for m in p50_us p99_us rps_1 rps_32 rps_32t; do
        g=$(med_metric $m "${GO[@]}"); c=$(med_metric $m "${C[@]}")
        case $m in
        p*) ratio=$(awk -v g="$g" -v c="$c" 'BEGIN{printf "%.2fx", g / c}') ;;  # lower is better
        *) ratio=$(awk -v g="$g" -v c="$c" 'BEGIN{printf "%.2fx", c / g}') ;;
        esac
        printf '%-28s %12s %12s %8s\n' "$m" "$g" "$c" "$ratio"
done
echo "(ratio: how many times better ours is; latency Go/C, throughput C/Go; $ROUNDS rounds of $CALLS calls, median)"
# Orderly exit of the Go shim (its Shutdown removes its socket).
"$PEER" client "$go_sock" >/dev/null 2>&1 || true
