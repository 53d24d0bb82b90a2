#!/usr/bin/env bash
# exit_codes_test.sh — the one exit-status rule of every subcommand (README, `resnet --help`):
# 2 for a usage error (an unknown or malformed option, a bad or missing value, an unknown model
# name given on the command line), 1 for a failure (a file that cannot be read or holds bad
# data, a runtime error), 130 when interrupted. A sample of mistakes in each subcommand.
# Environment: RESNET (the program).
source "$(dirname "$0")/testlib.sh"
W=tests/data/resnet20_torch.safetensors
IMG=tests/data/images/rgb32.png
D=$TMP/data
folder_set "$D" 2
st_strip_metadata "$W" "$TMP/state_dict.safetensors"
echo "not safetensors" >"$TMP/bad.safetensors"

# status N CMD...: CMD exits with N and says why on stderr.
status() {
    local want=$1
    shift
    "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$? lines
    lines=$(wc -l <"$TMP/err")
    [ "$rc" -eq "$want" ] || { echo "exit status $rc, expected $want" >&2; cat "$TMP/err" >&2; return 1; }
    [ "$lines" -ge 1 ] || { echo "no message on stderr" >&2; return 1; }
    echo "$rc: $(head -n 1 "$TMP/err")"
}

usage() { check "usage error, exit 2: $*" status 2 "$RESNET" "$@"; }
failure() { check "failure, exit 1: $*" status 1 "$RESNET" "$@"; }

usage
usage nosuchcommand
usage info resnet21
usage info --size 2 resnet20
usage info --classes x resnet20
usage bench --model resnet21
usage bench --mode fast
usage bench --backend nosuch --steps 1
usage bench --threads -1
usage eval --data "folder:$D"
usage eval --weights "$W" --data "folder:$D" --model resnet21
usage eval --weights "$W" --data "folder:$D" --split dev
usage eval --weights "$W" --data "folder:$D" --seed -1
usage eval --weights "$W" --data "folder:$D" --split val
usage eval --weights "$W" --data "folder:$D" --epoch 1
failure eval --weights "$TMP/missing.safetensors" --data "folder:$D"
failure eval --weights "$TMP/bad.safetensors" --data "folder:$D"
failure eval --weights "$TMP/state_dict.safetensors" --data "folder:$D"
failure eval --weights "$W" --data "folder:$TMP/nodata"
usage predict --weights "$W" --model resnet21 "$IMG"
usage predict --weights "$W" --top 0 "$IMG"
usage predict --weights "$W" --preset cifar "$IMG"
usage predict --weights "$W"
failure predict --weights "$W" "$TMP/missing.png"
failure predict --weights "$W" --labels "$TMP/missing.txt" "$IMG"
usage export --weights "$W" --model resnet21 -o "$TMP/m.onnx"
usage export --weights "$W" --format tflite -o "$TMP/m.onnx"
usage export --weights "$W"
failure export --weights "$TMP/missing.safetensors" -o "$TMP/m.onnx"
usage data
usage data shuffle --data "folder:$D"
usage data pack --data "folder:$D"
usage data pack --data "folder:$D" --out "$TMP/p" --resize 32x
usage data info --data "folder:$D" --unknown x
usage data bench --data "folder:$D" --transform crop
usage data bench --data "folder:$D" --threads 0
failure data info --data "folder:$TMP/nodata"
failure data info --data "cifar10:$TMP/nodata"
usage train --model resnet21 --data "folder:$D" --batch 2 --iters 1 --out "$TMP/r1"
usage train --epochs x
usage train --epoch 1
usage train --augment sideways
usage train --data "folder:$D" stray
usage train --resume "$TMP/r1" --lr 0.5
failure train --model resnet8 --data "folder:$TMP/nodata" --batch 2 --iters 1 --out "$TMP/r2"
usage experiment
usage experiment degradation --depths 7 --data "folder:$D" --out "$TMP/e"
usage experiment degradation --iters 0
usage report
usage report --grad-step x "$TMP"
failure report "$TMP/no_run"

# Interrupted: Ctrl-C (SIGINT) during training ends it with 130 (after a checkpoint).
check "interrupted, exit 130: train" bash -c "
    '$RESNET' train --model resnet8 --data 'folder:$D' --batch 2 --iters 100000 --quiet \
        --out '$TMP/r3' >/dev/null 2>&1 & pid=\$!
    sleep 3; kill -INT \$pid; wait \$pid; rc=\$?
    [ \$rc -eq 130 ] && echo 'exit status 130' || { echo \"exit status \$rc\" >&2; exit 1; }"
check "resnet --help states the rule" bash -c "'$RESNET' --help | grep -q '^  2    usage error' &&
    '$RESNET' --help | grep -q '^  130  interrupted' && echo ok"
finish
