#!/usr/bin/env bash
# onnx_test.sh — `resnet export --format onnx` end to end.
#
# Bad input (always): weights that do not fit the model, an unknown opset, format or batch, an
# unwritable output; each a one-line error that leaves no file behind.
#
# Parity (needs onnx and onnxruntime, from PyPI, in the virtual environment .venv-onnx that
# .ci/run makes; skipped with a message otherwise): for resnet20 (option A), plain20, resnet18
# and resnet50 (CIFAR stem, option B; Bottleneck) and resnet18-imagenet (7x7 stem, max pool),
# the file is exported with a dynamic batch, a batch of 1 and with --fold-bn, and
# tools/check_onnx.py runs onnx.checker.check_model(full_check=True) and compares ONNX
# Runtime's logits with the library's (eval mode, and the folded inference pass `resnet
# predict` runs) and with PyTorch's, within 1e-5 relative. The weights come from PyTorch
# (tools/onnx_reference.py under /usr/bin/python3, which has Debian's torch; the onnx venv has
# numpy 2 and never imports torch) or, without torch, from build/tests/model_logits --init.
# resnet20 is also exported at opsets 11 and 21, and checked against `resnet predict`'s
# probabilities on the committed images.
#
# Environment: RESNET (the program), BUILD (holds tests/model_logits), ONNX_PYTHON (the Python
# with onnx and onnxruntime, default .venv-onnx/bin/python), TORCH_PYTHON (default
# /usr/bin/python3).
source "$(dirname "$0")/testlib.sh"
BUILD=${BUILD:-build}
ONNX_PYTHON=${ONNX_PYTHON:-.venv-onnx/bin/python}
TORCH_PYTHON=${TORCH_PYTHON:-/usr/bin/python3}
LOGITS="$BUILD/tests/model_logits"
WEIGHTS=tests/data/resnet20_torch.safetensors
IMG=tests/data/images
IMAGES=("$IMG/rgb32.png" "$IMG/rgb32.jpg" "$IMG/rgb40x28.png" "$IMG/gray32.png")

# export_fails ARGS...: runs the export (check_error judges how it fails); left_behind: no
# output or temporary file (named bad*) is left in $TMP.
export_fails() { "$RESNET" export "$@"; }
left_behind() {
    local found
    found=$(find "$TMP" -name 'bad*' 2>/dev/null)
    [ -z "$found" ] || { echo "left behind: $found" >&2; return 1; }
    echo "no file left"
}

# ---- bad input
st_strip_metadata "$WEIGHTS" "$TMP/nometa.safetensors"
st_strip_metadata "$WEIGHTS" "$TMP/transposed.safetensors" linear.weight "[64, 10]"
check_error "weights that lack the model's tensors" \
    "nometa.safetensors: missing tensor .layer1.3.conv1.weight" \
    export_fails --model resnet32 --weights "$TMP/nometa.safetensors" -o "$TMP/bad.onnx"
check "  ... no file left" left_behind
check_error "a tensor of the wrong shape" "transposed.safetensors.*linear.weight" \
    export_fails --model resnet20 --weights "$TMP/transposed.safetensors" -o "$TMP/bad.onnx"
check_error "weights of another model (metadata)" \
    "holds weights of model 'resnet20', not 'resnet18'" \
    export_fails --model resnet18 --weights "$WEIGHTS" -o "$TMP/bad.onnx"
check_error "unknown opset" "opset 99 is not supported \(expected 11 to 21\)" \
    export_fails --weights "$WEIGHTS" --opset 99 -o "$TMP/bad.onnx"
check "  ... no file left" left_behind
check_error "unwritable output" "bad.onnx.*(cannot create|Not a directory)" \
    export_fails --weights "$WEIGHTS" -o "$TMP/notadir/bad.onnx" --batch 1
touch "$TMP/notadir"
check_error "output under a file" "Not a directory" \
    export_fails --weights "$WEIGHTS" -o "$TMP/notadir/bad.onnx"
rm -f "$TMP/notadir"
check "  ... no file left" left_behind
check_error "unknown format" "--format: unknown format 'tflite' \(expected onnx\)" \
    export_fails --weights "$WEIGHTS" --format tflite -o "$TMP/bad.onnx"
check_error "batch 0" "--batch" export_fails --weights "$WEIGHTS" --batch 0 -o "$TMP/bad.onnx"
check_error "no output" "-o OUT.onnx is required" export_fails --weights "$WEIGHTS"
check_error "missing weights file" "nothere.safetensors" \
    export_fails --weights "$TMP/nothere.safetensors" -o "$TMP/bad.onnx"
check "  ... no file left" left_behind

# ---- parity with the library, PyTorch and resnet predict through ONNX Runtime
if ! "$ONNX_PYTHON" -c "import onnx, onnxruntime" 2>/dev/null; then
    skip "ONNX Runtime parity" "$ONNX_PYTHON cannot import onnx and onnxruntime (.ci/run makes \
the venv: python3 -m venv .venv-onnx && .venv-onnx/bin/pip install onnx onnxruntime)"
    finish
    exit $?
fi
if "$TORCH_PYTHON" -c "import torch, torchvision" 2>/dev/null; then
    have_torch=1
else
    have_torch=0
    skip "PyTorch references" "$TORCH_PYTHON cannot import torch and torchvision; weights \
from model_logits --init, compared with the library only"
fi

# parity MODEL: weights, library logits, three exports, three checks.
parity() {
    local model=$1 dir="$TMP/$1" batch=3 refs=()
    mkdir -p "$dir"
    [ "$model" = resnet18-imagenet ] && batch=2
    if [ "$have_torch" = 1 ]; then
        "$TORCH_PYTHON" tools/onnx_reference.py "$model" "$dir" --batch "$batch" || return 1
        refs=(--ref "torch=$dir/${model}_torch.safetensors")
        inputs="$dir/${model}_torch.safetensors"
    else
        "$LOGITS" --init "$model" "$dir/$model.safetensors" || return 1
        "$ONNX_PYTHON" -c "
import sys; sys.path.insert(0, 'tools'); import numpy as np, safetensors_io
s = 224 if '$model'.endswith('-imagenet') else 32
x = np.random.RandomState(1).randn($batch, 3, s, s).astype(np.float32)
safetensors_io.save('$dir/inputs.safetensors', {'input': x})" || return 1
        inputs="$dir/inputs.safetensors"
    fi
    "$LOGITS" "$model" "$dir/$model.safetensors" "$dir/lib.safetensors" "$inputs" || return 1
    refs+=(--ref "library=$dir/lib.safetensors"
        --ref "predict-pass=$dir/lib.safetensors:logits_infer")
    local w="$dir/$model.safetensors"
    "$RESNET" export --model "$model" --weights "$w" -o "$dir/dyn.onnx" || return 1
    "$RESNET" export --model "$model" --weights "$w" -o "$dir/b1.onnx" --batch 1 || return 1
    "$RESNET" export --model "$model" --weights "$w" -o "$dir/fold.onnx" --fold-bn || return 1
    "$ONNX_PYTHON" tools/check_onnx.py "$dir/dyn.onnx" "$inputs" "${refs[@]}" || return 1
    "$ONNX_PYTHON" tools/check_onnx.py "$dir/b1.onnx" "$inputs" "${refs[@]}" --batch 1 || return 1
    "$ONNX_PYTHON" tools/check_onnx.py "$dir/fold.onnx" "$inputs" "${refs[@]}" || return 1
    rm -rf "$dir"
}
for model in resnet20 plain20 resnet18 resnet50 resnet18-imagenet; do
    check "$model: dynamic batch, batch 1, --fold-bn" parity "$model"
done

# The folded file has no BatchNormalization node, the other one has one per BN.
count_bn() {
    "$RESNET" export --weights "$WEIGHTS" -o "$TMP/n.onnx" || return 1
    "$RESNET" export --weights "$WEIGHTS" -o "$TMP/f.onnx" --fold-bn || return 1
    "$ONNX_PYTHON" -c "
import onnx, sys
n = [x.op_type for x in onnx.load('$TMP/n.onnx').graph.node].count('BatchNormalization')
f = [x.op_type for x in onnx.load('$TMP/f.onnx').graph.node].count('BatchNormalization')
print(f'{n} BatchNormalization nodes, {f} with --fold-bn')
sys.exit(not (n == 19 and f == 0))"
}
check "resnet20: --fold-bn leaves no BatchNormalization" count_bn

# resnet20 at other opsets, and against resnet predict on image files.
opset() {
    "$LOGITS" resnet20 "$WEIGHTS" "$TMP/img.safetensors" "${IMAGES[@]}" || return 1
    "$RESNET" export --weights "$WEIGHTS" -o "$TMP/op.onnx" --opset "$1" || return 1
    "$RESNET" predict --weights "$WEIGHTS" --top 10 "${IMAGES[@]}" >"$TMP/predict.tsv" || return 1
    "$ONNX_PYTHON" tools/check_onnx.py "$TMP/op.onnx" "$TMP/img.safetensors" \
        --ref "library=$TMP/img.safetensors" --predict "$TMP/predict.tsv"
}
for op in 11 13 21; do
    check "resnet20 at opset $op, images as resnet predict sees them" opset "$op"
done
finish
