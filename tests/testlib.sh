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
# repository root; TMP is a fresh directory removed at exit, and XDG_CACHE_HOME points into it
# (so that `resnet bench` keeps its peak cache there, not in the home directory).
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RESNET=${RESNET:-$PWD/resnet}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export XDG_CACHE_HOME=$TMP/cache
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

# folder_set DIR N: a folder: data set in DIR of two classes, a and b, each N copies of a 32x32
# RGB test image in train and in test.
folder_set() {
    local split cls i
    for split in train test; do
        for cls in a b; do
            mkdir -p "$1/$split/$cls"
            for ((i = 1; i <= $2; i++)); do cp tests/data/images/rgb32.png "$1/$split/$cls/$i.png"; done
        done
    done
}

# st_strip_metadata IN OUT [NAME SHAPE]: the safetensors file IN without its metadata (so
# nothing names the model, as a state_dict PyTorch saved), with the shape of tensor NAME
# replaced by SHAPE (same byte count) if given, written to OUT. Standard library only.
st_strip_metadata() {
    python3 - "$@" <<'PY'
import json, struct, sys
data = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", data[:8])
h = json.loads(data[8:8 + n])
h.pop("__metadata__", None)
if len(sys.argv) > 3:
    h[sys.argv[3]]["shape"] = json.loads(sys.argv[4])
hb = json.dumps(h).encode()
hb += b" " * (-len(hb) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(hb)) + hb + data[8 + n:])
PY
}

finish() {
    echo "$n_passed passed, $n_failed failed"
    [ "$n_failed" -eq 0 ]
}
