# testlib.sh — shared pieces of the shell tests (sourced, not run: tests/run.sh runs only
# tests/*_test.sh). Each test script sources this file, calls `check` and `check_error` once per
# case, and ends with `finish`, which prints "N passed, N failed" and sets the exit status.
#
#   check NAME CMD...              passes when CMD exits 0. CMD is usually a shell function that
#                                  runs the program and compares what it printed; it explains a
#                                  failure on stderr.
#   check_error NAME REGEX CMD...  passes when CMD fails cleanly: an exit status from 1 to 125
#                                  (not a signal, not a sanitizer abort), nothing on stdout,
#                                  exactly one line on stderr, and that line matches the
#                                  extended regular expression REGEX.
#   skip NAME WHY                  prints a skip line; counts as neither passed nor failed.
#
# Environment: RESNET, the program to test (default ./resnet). The working directory is the
# repository root; TMP is a fresh directory removed at exit.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RESNET=${RESNET:-$PWD/resnet}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
n_passed=0
n_failed=0

if [ ! -x "$RESNET" ]; then
    echo "FAIL: program '$RESNET' not found (run make, or set RESNET)"
    echo "0 passed, 1 failed"
    exit 1
fi

pass() {
    n_passed=$((n_passed + 1))
    echo "ok    $1${2:+: $2}"
}

fail() {
    n_failed=$((n_failed + 1))
    echo "FAIL  $1${2:+: $2}"
}

check() {
    local name=$1
    shift
    if "$@" >"$TMP/check.out" 2>"$TMP/check.err"; then
        pass "$name" "$(tail -n 1 "$TMP/check.out")"
    else
        fail "$name" "exit status $?"
        sed 's/^/      /' "$TMP/check.err" | head -n 20
    fi
}

check_error() {
    local name=$1 regex=$2
    shift 2
    "$@" >"$TMP/check.out" 2>"$TMP/check.err"
    local rc=$? lines why=
    lines=$(wc -l <"$TMP/check.err")
    if [ "$rc" -eq 0 ]; then
        why="exit status 0, expected a failure"
    elif [ "$rc" -gt 125 ]; then
        why="exit status $rc (a crash or a signal)"
    elif grep -q 'Sanitizer\|runtime error' "$TMP/check.err"; then
        why="the sanitizer reported an error"
    elif [ -s "$TMP/check.out" ]; then
        why="printed on stdout: $(head -n 1 "$TMP/check.out")"
    elif [ "$lines" -ne 1 ]; then
        why="$lines lines on stderr, expected exactly 1"
    elif ! grep -Eq -- "$regex" "$TMP/check.err"; then
        why="stderr does not match /$regex/"
    fi
    if [ -z "$why" ]; then
        pass "$name" "$(cat "$TMP/check.err")"
    else
        fail "$name" "$why"
        sed 's/^/      /' "$TMP/check.err" | head -n 20
    fi
}

skip() {
    echo "skip  $1: $2"
}

finish() {
    echo "$n_passed passed, $n_failed failed"
    [ "$n_failed" -eq 0 ]
}
