#!/usr/bin/env bash
# mutate.sh — mutation testing: applies each mutant of dev/mutants.txt (a one-line fault in the
# product code) to a scratch copy of this working tree, builds it and runs the test suite, and
# prints which mutants the tests catch ("killed"), the kill rate and the survivors.
#
#   dev/mutate.sh [--list FILE] [--only N[,N...]] [--keep] [--no-baseline] [--timeout S]
#   dev/mutate.sh --check [--list FILE]   only checks that every mutant applies (seconds; the
#                                         suite runs this, so moved code fails a test at once)
#
# The scratch copy is the working tree as it is (tracked and untracked, not ignored files) plus
# build/, so only the mutated file recompiles. Each mutant runs the same tests as `make test`
# (tests/run.sh: every build/tests/test_* binary, then every tests/*_test.sh), fastest first,
# and stops at the first failing test: a mutant is killed exactly when `make test` would fail,
# and a killed one costs only the tests up to its first failure. A survivor runs everything.
# Before the mutants, the unmutated copy runs the whole suite once (the baseline); it must
# pass, or no kill would mean anything (--no-baseline skips it when you know it passes).
# Each test binary is (re)built just before it runs, and the program and the test programs
# before the first shell test, so a mutant caught early links little. A test running past
# --timeout seconds (default 1800) counts as failing (a mutant that hangs); on a loaded
# machine raise it, or the baseline fails on time alone.
# Exit status: 0 when every mutant is killed, 1 with survivors, 2 on a broken list or baseline.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
LIST=dev/mutants.txt
ONLY=
KEEP=0
CHECK=0
BASELINE=1
TIMEOUT=1800
while [ $# -gt 0 ]; do
    case "$1" in
    --list) LIST=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --check) CHECK=1; shift ;;
    --no-baseline) BASELINE=0; shift ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    -h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "mutate.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[ -f "$LIST" ] || { echo "mutate.sh: no mutant list at $LIST" >&2; exit 2; }
LIST=$(realpath "$LIST")

# Tests roughly from the most mutants caught per second to the least (on the 2-core
# development machine: the unit tests of draws, ISA and ops in under 2 s each, the short
# training tests next, the minute-long program tests last); tests not named here run after
# these, in tests/run.sh's order.
ORDER="test_draws test_isa test_parity_ops test_gemm test_data test_ops_forward
test_cpu_kernels trajectory_test.sh train_order_isa_test.sh test_train test_parity_models
data_cli_test.sh device_cli_test.sh test_safetensors bench_test.sh cli_test.sh
bad_input_test.sh test_ops_grad test_cpu_backend test_models predict_test.sh
report_test.sh train_cli_test.sh exec_identity_test.sh"

# The list, one mutant per record: file, find, repl, why (tab-separated, one record a line).
records=$(awk '
    function flush() { if (file != "") print file "\t" find "\t" repl "\t" why; file = find = repl = why = "" }
    /^#/ { next }
    /^[[:space:]]*$/ { flush(); next }
    /^file:/ { sub(/^file:[ ]*/, ""); file = $0; next }
    /^find:/ { sub(/^find:[ ]*/, ""); find = $0; next }
    /^repl:/ { sub(/^repl:[ ]*/, ""); repl = $0; next }
    /^why:/  { sub(/^why:[ ]*/, ""); why = $0; next }
    { print "mutate.sh: " FILENAME ":" NR ": unexpected line: " $0 > "/dev/stderr"; bad = 1 }
    END { flush(); exit bad }' "$LIST") || exit 2


# apply FILE: replaces the one occurrence of $FIND in FILE by $REPL (exact text); refuses a
# missing or repeated one with a line on stderr. With CHECK_ONLY=1 it changes nothing.
apply() {
    python3 -c '
import os, sys
p, f, r = sys.argv[1], os.environ["FIND"], os.environ["REPL"]
s = open(p).read()
if s.count(f) != 1:
    sys.exit(f"find text occurs {s.count(f)} times")
if os.environ.get("CHECK_ONLY") != "1":
    open(p, "w").write(s.replace(f, r))' "$1"
}

if [ "$CHECK" = 1 ]; then
    n=0
    bad=0
    while IFS=$'\t' read -r file find repl why; do
        n=$((n + 1))
        if [ ! -f "$file" ]; then
            echo "ERROR    #$n $file: $why: no such file"
            bad=$((bad + 1))
        elif ! msg=$(FIND=$find REPL=$repl CHECK_ONLY=1 apply "$file" 2>&1); then
            echo "ERROR    #$n $file: $why: ${msg##*$'\n'}"
            bad=$((bad + 1))
        fi
    done <<<"$records"
    echo "$((n - bad)) of $n mutants apply"
    [ "$bad" -eq 0 ] || exit 2
    exit 0
fi

SCRATCH=$(mktemp -d /tmp/resnet-mutate.XXXXXX)
cleanup() { [ "$KEEP" = 1 ] && echo "scratch copy kept in $SCRATCH" || rm -rf "$SCRATCH"; }
trap cleanup EXIT
echo "copying the working tree to $SCRATCH"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [ -e "$f" ] && printf '%s\0' "$f"
done | tar --null -T - -cf - | tar -xf - -C "$SCRATCH"
[ -d build ] && cp -a build "$SCRATCH/"
[ -e .resnet-build ] && cp -a .resnet-build "$SCRATCH/"
cd "$SCRATCH"

# build [TARGET...]: make, quietly, into build.log (the library when no target is given).
build() { make -j2 "${@:-build/libresnet.a}" >"$SCRATCH/build.log" 2>&1; }

# The tests in ORDER's order, then the rest (names only: test binaries and shell scripts).
all_tests() {
    local t have=" "
    for t in build/tests/test_*; do
        [ -x "$t" ] && case "$t" in *.d | *.o) ;; *) have="$have$(basename "$t") " ;; esac
    done
    for t in tests/*_test.sh; do have="$have$(basename "$t") "; done
    for t in $ORDER; do case "$have" in *" $t "*) echo "$t" ;; esac; done
    for t in $have; do case " $ORDER " in *[[:space:]]"$t"[[:space:]]*) ;; *) echo "$t" ;; esac; done
}

# run_tests: builds and runs the suite, stops at the first failing test and prints its name
# (nothing if all pass; "(build)" when a build step fails, which build.log explains).
run_tests() {
    local t rc
    for t in $(all_tests); do
        case "$t" in
        *.sh)
            build tests || { echo "(build)"; return; }
            RESNET=$SCRATCH/resnet BUILD=build timeout "$TIMEOUT" bash "tests/$t" >"$SCRATCH/test.log" 2>&1 ;;
        *)
            build "build/tests/$t" || { echo "(build)"; return; }
            timeout "$TIMEOUT" "build/tests/$t" >"$SCRATCH/test.log" 2>&1 ;;
        esac
        rc=$?
        if [ "$rc" -ne 0 ]; then
            [ "$rc" -eq 124 ] && echo "$t (timed out)" || echo "$t"
            return
        fi
    done
}

if [ "$BASELINE" = 1 ]; then
    echo "baseline: building and running the whole suite on the unmutated copy"
    build tests || { echo "baseline: the build fails:"; tail -n 20 build.log; exit 2; }
    first=$(run_tests)
    if [ -n "$first" ]; then
        echo "baseline: $first fails without any mutant:"
        tail -n 20 test.log
        exit 2
    fi
fi

total=0
killed=0
errors=0
survivors=()
n=0
start=$(date +%s)
while IFS=$'\t' read -r file find repl why; do
    n=$((n + 1))
    if [ -n "$ONLY" ]; then case ",$ONLY," in *",$n,"*) ;; *) continue ;; esac; fi
    label="#$n $file: $why"
    if [ ! -f "$file" ]; then
        echo "ERROR    $label: no such file"
        errors=$((errors + 1))
        continue
    fi
    cp -p "$file" "$SCRATCH/original"
    if ! FIND=$find REPL=$repl apply "$file" 2>"$SCRATCH/apply.log"; then
        echo "ERROR    $label: $(tail -n 1 "$SCRATCH/apply.log")"
        errors=$((errors + 1))
        continue
    fi
    total=$((total + 1))
    t0=$(date +%s)
    first=
    build || first="(build)"
    [ -z "$first" ] && first=$(run_tests)
    if [ "$first" = "(build)" ]; then
        echo "ERROR    $label: does not compile ($(grep -m1 error: build.log))"
        errors=$((errors + 1))
        total=$((total - 1))
    else
        if [ -n "$first" ]; then
            killed=$((killed + 1))
            printf 'killed   %-40s by %s (%ss)\n' "$label" "$first" $(($(date +%s) - t0))
        else
            survivors+=("$label")
            printf 'SURVIVED %s (%ss, the whole suite passed)\n' "$label" $(($(date +%s) - t0))
        fi
    fi
    cp -p "$SCRATCH/original" "$file"
    touch "$file" # newer than the mutant's object, so the next build recompiles it
done <<<"$records"

echo
echo "$killed of $total mutants killed ($(awk -v k=$killed -v t=$total 'BEGIN { printf "%.0f", t ? 100 * k / t : 0 }')%) in $(($(date +%s) - start)) s"
if [ ${#survivors[@]} -gt 0 ]; then
    echo "survivors:"
    printf '  %s\n' "${survivors[@]}"
fi
[ "$errors" -gt 0 ] && echo "$errors mutants could not be applied or built (fix dev/mutants.txt)"
[ "$errors" -gt 0 ] && exit 2
[ ${#survivors[@]} -eq 0 ]
