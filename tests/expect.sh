# expect.sh — the pass/fail helpers of the shell tests that keep their own counters (sourced,
# not run; tests/run.sh runs only tests/*_test.sh). The sourcing script sets tmp (a scratch
# directory) and passed=0 failed=0, and ends with: echo "$passed passed, $failed failed".
# (testlib.sh is the newer, stricter kit: check / check_error / finish.)

ok() { passed=$((passed + 1)); echo "ok: $1"; }
bad() { failed=$((failed + 1)); echo "FAILED: $1"; }

# run COMMAND...: runs it, stdout in $tmp/out, stderr in $tmp/err.
run() { "$@" >"$tmp/out" 2>"$tmp/err"; }

# expect_error NAME SUBSTRING COMMAND...: non-zero exit, exactly one stderr line holding SUBSTRING.
expect_error() {
    local name=$1 sub=$2
    shift 2
    if run "$@"; then
        bad "$name: exit 0, expected an error"
        return
    fi
    local lines
    lines=$(wc -l <"$tmp/err")
    if [ "$lines" -ne 1 ]; then
        bad "$name: $lines lines on stderr, expected 1:"
        cat "$tmp/err"
    elif ! grep -qF -- "$sub" "$tmp/err"; then
        bad "$name: stderr lacks '$sub': $(cat "$tmp/err")"
    else
        ok "$name ($(cat "$tmp/err"))"
    fi
}
