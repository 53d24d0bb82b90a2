#!/usr/bin/env bash
# trajectory_test.sh — resnet20 trained by `resnet train` follows PyTorch loss by loss: 10 SGD
# steps (momentum, weight decay, a multistep schedule, BN in train mode, two epochs of the data
# set's order with the last partial batch dropped) from the same initial weights on the same
# data must give PyTorch's losses to within 1e-3 relative.
# Fixture: tests/data/trajectory (tools/loss_trajectory.py --fixture): 88 training images of
# 3x16x16 (a packed data set), args.txt (the `resnet train` and tools/seeded_weights.py
# arguments) and losses.txt (torch's loss of each step). The initial weights are made here by
# tools/seeded_weights.py (standard library only), as the generator made them.
# Ends with "N passed, N failed". Environment: RESNET, the program's path.
set -u
cd "$(dirname "$0")/.."
RESNET=${RESNET:-$PWD/resnet}
FIX=$PWD/tests/data/trajectory
# Measured max relative difference over the 10 steps (2-core AMD EPYC Zen 5, 2026-12-06): 2.4e-6
# with the defaults (cpu backend, AVX-512, 2 threads); 2.0e-7 to 2.7e-6 for the cpu and
# reference backends on 1 to 7 threads and with RN_ISA=avx2; float32 PyTorch itself is 9.6e-8
# from float64. TOL is about 10x the largest of these. (RN_ISA=portable on 2 or more threads
# measured 2.5e-4 and fails it; cpu-winograd, which the test does not use, 2.4e-4. A BN epsilon
# of 1e-4 instead of 1e-5 gives 1.0e-3.)
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
"$RESNET" train "${train[@]}" --init "$tmp/init.safetensors" --out "$tmp/run" >"$tmp/out" 2>&1 ||
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
