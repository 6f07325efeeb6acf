#!/usr/bin/env bash
# Runs each libFuzzer target for FUZZ_SECONDS over its corpus in test/fuzz/corpus/<x>/
# (new interesting inputs are added there). Stops at the first finding.
set -eu
dir=$1; shift
secs=${FUZZ_SECONDS:-60}
for t in "$@"; do
        mkdir -p "test/fuzz/corpus/$t"
        dict=()
        [ -f "test/fuzz/$t.dict" ] && dict=(-dict="test/fuzz/$t.dict")
        echo "== fuzz $t for ${secs}s"
        "$dir/fuzz-$t" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
                -print_final_stats=1 "${dict[@]}" "test/fuzz/corpus/$t"
done
