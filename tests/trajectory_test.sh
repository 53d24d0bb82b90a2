#!/usr/bin/env bash
# trajectory_test.sh — resnet20 trained by `resnet train` follows PyTorch loss by loss: 10 SGD
# steps (momentum, weight decay, a multistep schedule, BN in train mode, two epochs of the data
# set's order with the last partial batch dropped) from the same initial weights on the same
# data must give PyTorch's losses to within 3e-5 relative (TOL below), on one thread.
# Fixture: tests/data/trajectory (tools/loss_trajectory.py --fixture): 88 training images of
# 3x16x16 (a packed data set), args.txt (the `resnet train` and tools/seeded_weights.py
# arguments) and losses.txt (torch's loss of each step). The initial weights are made here by
# tools/seeded_weights.py (standard library only), as the generator made them.
# Ends with "N passed, N failed". Environment: RESNET, the program's path.
set -u
cd "$(dirname "$0")/.."
RESNET=${RESNET:-$PWD/resnet}
FIX=$PWD/tests/data/trajectory
# The run is on one thread (args.txt). Measured max relative difference over the 10 steps
# (2-core AMD EPYC Zen 5, 2026-12-06), one thread: 2.0e-7 (cpu backend, AVX-512 or AVX2),
# 2.3e-6 (RN_ISA=portable), 2.7e-6 (reference backend), 1.1e-7 to 1.7e-7 (sanitizer
# build); float32 PyTorch is 9.6e-8 from float64. TOL is about 10x the largest. On 2 threads
# the same run measured 2.4e-6 (cpu, AVX-512) but 8.5e-5 in the sanitizer build and 2.5e-4
# with RN_ISA=portable: from step 4 this fixture amplifies a 2e-6 difference about 40x, so a
# tolerance that held on every thread count could not be tight. A BN epsilon of 1e-4 instead
# of 1e-5 gives 9.7e-4 (the old tolerance was 1e-3). The run names the direct convolutions
# (--backend cpu) these figures are for: the default, cpu-winograd, measured 8.5e-5 (its
# transforms round differently from a direct sum; its accuracy is judged in BENCHMARKS.md).
TOL=3e-5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "FAILED: $1"
    echo "0 passed, 1 failed"
    exit 1
}

[ -x "$RESNET" ] || fail "$RESNET is not an executable program"
read -r -a init < <(sed -n 's/^init //p' "$FIX/args.txt")
read -r -a train < <(sed -n 's/^train //p' "$FIX/args.txt" | sed "s|packed:DATA|packed:$FIX|")
[ ${#train[@]} -gt 0 ] && [ ${#init[@]} -gt 0 ] || fail "$FIX/args.txt lacks its train or init line"
python3 tools/seeded_weights.py "$tmp/init.safetensors" "${init[@]}" ||
    fail "tools/seeded_weights.py ${init[*]}"
"$RESNET" train "${train[@]}" --backend cpu --init "$tmp/init.safetensors" --out "$tmp/run" \
    >"$tmp/out" 2>&1 ||
    fail "resnet train: $(cat "$tmp/out")"

# step and loss of each training line of metrics.jsonl, beside torch's loss of that step
sed -n 's/^{"step": \([0-9]*\),.*"train_loss": \([^,]*\),.*/\1 \2/p' "$tmp/run/metrics.jsonl" \
    >"$tmp/ours"
grep -v '^#' "$FIX/losses.txt" >"$tmp/torch"
paste -d ' ' "$tmp/ours" "$tmp/torch" | awk -v tol="$TOL" -v n="$(wc -l <"$tmp/torch")" '
    { d = $2 - $3; if (d < 0) d = -d; r = d / ($3 < 0 ? -$3 : $3)
      printf "step %2d  torch %.7f  resnet.c %.7f  rel diff %.2e\n", $1, $3, $2, r
      if ($1 != NR) bad = "step " NR " is missing from metrics.jsonl"
      if (r > max) max = r }
    END {
      if (NR != n) bad = "metrics.jsonl has " NR " training lines, torch " n " losses"
      if (max > tol && !bad) bad = sprintf("max relative difference %.3e > %g", max, tol)
      if (bad) { print "FAILED: loss trajectory versus PyTorch: " bad; print "0 passed, 1 failed"; exit 1 }
      printf "ok: %d steps of resnet20 follow PyTorch, max relative difference %.3e (tolerance %g)\n", NR, max, tol
      print "1 passed, 0 failed" }'
