#!/usr/bin/env bash
# device_cli_test.sh — the --device and --precision options of train, eval, predict, bench and
# experiment:
# bad values give one line and a non-zero exit; without a usable GPU (a build without CUDA, or
# no GPU or driver) --device cuda says so in one line and leaves no run directory behind;
# --device cpu trains, is recorded in config.json, and --resume may change the device while
# other settings stay refused. The GPU itself is tested by tests/test_cuda.c.
# Environment: RESNET (the program).
source "$(dirname "$0")/testlib.sh"
W=tests/data/resnet20_torch.safetensors
IMG=tests/data/images/rgb32.png

# A tiny folder data set: 2 classes, 4 training and 2 test images each.
D=$TMP/data
for split in train test; do
    for cls in a b; do
        mkdir -p "$D/$split/$cls"
        for i in 1 2 3 4; do
            [ "$split" = test ] && [ "$i" -gt 2 ] && continue
            cp "$IMG" "$D/$split/$cls/$i.png"
        done
    done
done
TRAIN=(train --model resnet8 --data "folder:$D" --batch 4 --iters 2 --quiet)

for cmd in "train ${TRAIN[*]:1}" "eval --weights $W --data folder:$D" "predict --weights $W $IMG" \
    "bench --steps 1"; do
    name=${cmd%% *}
    # shellcheck disable=SC2086
    check_error "$name --device gpu" "--device: expected cpu, cuda or cuda:N, got 'gpu'" \
        "$RESNET" $cmd --device gpu
    # shellcheck disable=SC2086
    check_error "$name --device cuda:x" "--device: expected cpu, cuda or cuda:N, got 'cuda:x'" \
        "$RESNET" $cmd --device cuda:x
    # shellcheck disable=SC2086
    check_error "$name --precision fp16" "--precision: expected fp32, tf32 or bf16, got 'fp16'" \
        "$RESNET" $cmd --precision fp16
done

if "$RESNET" bench --device cuda --steps 1 >/dev/null 2>&1; then
    skip "--device cuda without a GPU" "this machine has a usable GPU"
else
    NO_GPU="built without CUDA|has no CUDA GPU|cuda:0: this machine has 0 CUDA GPUs"
    check_error "train --device cuda" "$NO_GPU" "$RESNET" "${TRAIN[@]}" --device cuda --out "$TMP/gpu"
    no_dir() { [ ! -e "$TMP/gpu" ]; }
    check "no run directory left behind" no_dir
    check_error "eval --device cuda" "$NO_GPU" "$RESNET" eval --weights "$W" --data "folder:$D" \
        --device cuda
    check_error "predict --device cuda" "$NO_GPU" "$RESNET" predict --weights "$W" --device cuda "$IMG"
    check_error "bench --device cuda:1" "$NO_GPU|cuda:1" "$RESNET" bench --device cuda:1 --steps 1
fi

cpu_run() {
    "$RESNET" "${TRAIN[@]}" --device cpu --out "$TMP/cpu" &&
        grep -Eq '"device":[[:space:]]*"cpu"' "$TMP/cpu/config.json" &&
        grep -Eq '"precision":[[:space:]]*""' "$TMP/cpu/config.json"
}
check "train --device cpu, recorded in config.json" cpu_run
resume_cpu() { "$RESNET" train --resume "$TMP/cpu" --device cpu --quiet; }
check "--resume with --device" resume_cpu
check_error "--resume with --lr" "--lr cannot be given with it" \
    "$RESNET" train --resume "$TMP/cpu" --lr 0.5

# A run recorded as a GPU run resumes on the CPU when told so (checkpoints are the same files).
sed -i 's/"device":[[:space:]]*"cpu"/"device": "cuda"/' "$TMP/cpu/config.json"
if [ -z "${NO_GPU:-}" ]; then
    skip "a GPU run's config on a machine without a GPU" "this machine has a usable GPU"
else
    check_error "--resume of a GPU run without a GPU" "$NO_GPU" \
        "$RESNET" train --resume "$TMP/cpu" --quiet
    check "--resume of a (finished) GPU run with --device cpu: accepted" resume_cpu
fi

EXP=(experiment degradation --data "folder:$D" --depths 8 --iters 1 --batch 4 --val 2 --quiet)
check_error "experiment --device gpu" "--device: expected cpu, cuda or cuda:N, got 'gpu'" \
    "$RESNET" "${EXP[@]}" --device gpu --out "$TMP/exp"
experiment_cpu() {
    "$RESNET" "${EXP[@]}" --device cpu --out "$TMP/exp" &&
        grep -Eq '"device":[[:space:]]*"cpu"' "$TMP/exp/resnet8/config.json"
}
check "experiment --device cpu passes the device to its runs" experiment_cpu
finish
