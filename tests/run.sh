#!/usr/bin/env bash
# Runs every test: the cmocka binaries build/tests/test_* and the shell tests tests/*_test.sh.
# Each reports its own cases; this script adds them up and ends with "N passed, N failed".
# Environment: RESNET (path of the program), BUILD (build folder).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export RESNET=${RESNET:-$PWD/resnet}
passed=0
failed=0
failed_names=()
log=$(mktemp)
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    case "$t" in *.d|*.o) continue ;; esac
    name=$(basename "$t")
    echo "== $name"
    "$t" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    # cmocka prints "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s), listed below:"
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' "$log" | tail -n 1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:/\1/p' "$log" | tail -n 1)
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi  # crashed before its summary
    passed=$((passed + p))
    failed=$((failed + f))
    [ "$f" -ne 0 ] && failed_names+=("$name")
done
for t in tests/*_test.sh; do
    [ -f "$t" ] || continue
    name=$(basename "$t")
    echo "== $name"
    bash "$t" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    # shell tests end with "N passed, N failed"
    p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\1/p' "$log" | tail -n 1)
    f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\2/p' "$log" | tail -n 1)
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p))
    failed=$((failed + f))
    [ "$f" -ne 0 ] && failed_names+=("$name")
done
rm -f "$log"
echo
[ ${#failed_names[@]} -gt 0 ] && echo "failing: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
