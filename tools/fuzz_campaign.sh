#!/usr/bin/env bash
# fuzz_campaign.sh [SECONDS] — a longer fuzzing campaign: each harness of tests/fuzz (built by
# `make fuzz`) in turn for SECONDS (default 1200), one process at low priority, from the
# committed seeds plus what earlier runs found (build-fuzz/campaign/NAME). Prints one line per
# harness: executions, exec/s, coverage (edges), features, corpus size, crashes; logs and any
# crash inputs stay in build-fuzz/campaign/. The figures in BENCHMARKS.md come from this.
set -u
cd "$(dirname "$0")/.."
secs=${1:-1200}
out=build-fuzz/campaign
mkdir -p "$out"
for f in build-fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    n=$(basename "$f")
    mkdir -p "$out/$n"
    start=$SECONDS
    nice -n 19 "$f" -max_total_time="$secs" -rss_limit_mb=4096 -max_len=65536 -timeout=20 \
        -print_final_stats=1 -artifact_prefix="$out/$n-" "$out/$n" "tests/fuzz/corpus/$n" \
        >"$out/$n.log" 2>&1
    rc=$?
    took=$((SECONDS - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$n.log")
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/$n.log")
    last=$(grep -E "^#[0-9]+" "$out/$n.log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
    crashes=$(find "$out" -name "$n-crash-*" -o -name "$n-leak-*" -o -name "$n-timeout-*" \
              -o -name "$n-oom-*" | wc -l)
    echo "$n: ${took} s, ${execs:-?} executions (${speed:-?}/s), cov ${cov:-?} edges, ft ${ft:-?}," \
         "corpus ${corp:-?}, exit $rc, crashes/leaks/timeouts/ooms: $crashes"
done
