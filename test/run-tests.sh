#!/usr/bin/env bash
# Runs the unit tests (cmocka programs), replays every fuzz corpus, then the integration tests,
# and closes with one line "N passed, N failed" (plus skipped). Exit status 1 on any failure.
set -u
build=build unit="" fuzz="" integration=""
while [ $# -gt 0 ]; do
        case "$1" in
        --build) build=$2; shift 2 ;;
        --unit) unit=$2; shift 2 ;;
        --fuzz) fuzz=$2; shift 2 ;;
        --integration) integration=$2; shift 2 ;;
        *) echo "run-tests: unknown option $1" >&2; exit 2 ;;
        esac
done
passed=0 failed=0 skipped=0 failures=()
logdir=$build/test-logs
mkdir -p "$logdir"

record() { # name rc
        case "$2" in
        0) passed=$((passed + 1)); echo "PASS  $1" ;;
        77) skipped=$((skipped + 1)); echo "SKIP  $1 ($(tail -n 1 "$logdir/$(basename "$1").log"))" ;;
        *) failed=$((failed + 1)); failures+=("$1"); echo "FAIL  $1 (log: $logdir/$(basename "$1").log)"
           # The failed checks first (a long log's tail alone may not show them), then the tail.
           grep -m 20 -E '^(FAIL|not ok|\[  FAILED  \])' "$logdir/$(basename "$1").log" | sed 's/^/    ! /'
           tail -n 30 "$logdir/$(basename "$1").log" | sed 's/^/      /' ;;
        esac
}

# Bounds, so that a hang fails the run with a log instead of stalling CI. Every test gets
# /dev/null as stdin: what the caller's fd 0 is (a terminal, a closed or write-only fd under a CI
# runner) must not change a result.
for t in $unit; do
        timeout -k 10 600 "$t" </dev/null >"$logdir/$(basename "$t").log" 2>&1
        record "$t" $?
done
for f in $fuzz; do
        corpus=test/fuzz/corpus/$f
        name=replay-$f
        if [ ! -d "$corpus" ]; then
                echo "no corpus for fuzz target $f ($corpus)" >"$logdir/$name.log"
                record "$name" 1
                continue
        fi
        timeout -k 10 600 "$build/test/fuzz/replay-$f" "$corpus" </dev/null >"$logdir/$name.log" 2>&1
        record "$name" $?
done
for t in $integration; do
        name=$(basename "$t")
        BUILD=$build timeout -k 10 1200 bash "$t" </dev/null >"$logdir/$name.log" 2>&1
        record "$t" $?
done

echo
if [ ${#failures[@]} -gt 0 ]; then
        echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
