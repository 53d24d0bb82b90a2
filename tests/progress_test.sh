#!/usr/bin/env bash
# progress_test.sh — progress lines on stderr: `resnet eval` counts the images evaluated (in
# memory or streamed) when stderr is a terminal (run here under a pseudo-terminal), and prints
# nothing there with --quiet or when stderr is not a terminal; `resnet data pack` reports
# decoding and writing.
# Environment: RESNET (the program).
source "$(dirname "$0")/testlib.sh"
W=tests/data/resnet20_torch.safetensors
D=$TMP/data
folder_set "$D" 5
EVAL=(eval --weights "$W" --data "folder:$D" --batch 4 --threads 1)

# on_tty CMD...: runs CMD with stdin, stdout and stderr on a pseudo-terminal; prints what it wrote.
on_tty() {
    python3 -c 'import os, pty, sys; sys.exit(os.waitstatus_to_exitcode(pty.spawn(sys.argv[1:])))' "$@"
}

# tty_progress [OPTION...]: on a terminal, eval rewrites one line per batch ending at 10 of 10
# (the set in memory, or with --size streamed batch by batch).
tty_progress() {
    local out
    out=$(on_tty "$RESNET" "${EVAL[@]}" "$@" | tr '\r' '\n') || return 1
    for re in '^evaluating images: 4 of 10 \(40%\)$' '^evaluating images: 8 of 10 \(80%\)$' \
        '^evaluating images: 10 of 10 \(100%\)' '^top-1 accuracy: '; do
        printf '%s\n' "$out" | grep -Eq -- "$re" || { echo "no line matches /$re/" >&2; return 1; }
    done
    echo "4, 8, 10 of 10 images"
}

# quiet_tty: with --quiet, no progress even on a terminal.
quiet_tty() {
    local out
    out=$(on_tty "$RESNET" "${EVAL[@]}" --quiet) || return 1
    printf '%s\n' "$out" | grep -q 'top-1 accuracy' || { echo "no result" >&2; return 1; }
    ! printf '%s\n' "$out" | grep -q 'evaluating images' || { echo "progress shown" >&2; return 1; }
    echo "no progress line"
}

# not_tty: stderr to a file: nothing there.
not_tty() {
    "$RESNET" "${EVAL[@]}" >"$TMP/out" 2>"$TMP/err" || return 1
    [ ! -s "$TMP/err" ] || { echo "stderr: $(head -n 2 "$TMP/err")" >&2; return 1; }
    echo "stderr empty"
}

# pack_progress: data pack says how far decoding is and what it writes (a file, not a tty:
# one line per tenth).
pack_progress() {
    "$RESNET" data pack --data "folder:$D" --out "$TMP/packed" >/dev/null 2>"$TMP/err" || return 1
    grep -q '^decoding images: 20 of 20 (100%)$' "$TMP/err" &&
        grep -q "^read 10 train and 10 test images of 3x32x32 in .* s; writing $TMP/packed$" \
            "$TMP/err" || { cat "$TMP/err" >&2; return 1; }
    tail -n 1 "$TMP/err"
}

check "eval on a terminal: a progress line" tty_progress
check "eval of a streamed set on a terminal: a progress line" tty_progress --size 32
check "eval --quiet on a terminal: none" quiet_tty
check "eval, stderr not a terminal: none" not_tty
check "eval --help says so" bash -c "'$RESNET' eval --help | grep -q 'counts the images evaluated' && echo ok"
check "data pack: decoding and writing" pack_progress
finish
