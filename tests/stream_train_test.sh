#!/usr/bin/env bash
# stream_train_test.sh — `resnet train` and `resnet eval` on streamed sets, end to end, on a
# small ImageNet-layout set of JPEGs of 64-96 pixels written here with Pillow (3 classes, 12
# training, 4 val and 4 test images each) and the shards packed from it: training on folder:
# and shards: with evaluation of the held-out and test splits, eval of the weights, the
# -imagenet models (resnet18 on a folder, resnet50 on shards) with --preset imagenet, SIGKILL in
# the middle of an epoch then --resume ending bit-identical to an uninterrupted run (which
# decodes with another thread count), --data-memory forcing the stream on a set that fits,
# the in-memory path kept for small sets by default, and bad input (a corrupt JPEG with and
# without --skip-bad, a shard without .cls) as one line and a non-zero exit.
# Environment: RESNET; skips without Pillow.
source "$(dirname "$0")/testlib.sh"
PY=/usr/bin/python3

if ! "$PY" -c "import PIL, numpy" 2>/dev/null; then
    skip "streamed training" "$PY has no Pillow or numpy (apt-get install python3-pil python3-numpy)"
    finish
    exit
fi

SET="$TMP/set"
"$PY" - "$SET" <<'PY'
import os, sys
import numpy as np
from PIL import Image
r = np.random.default_rng(0)
for split, n in (("train", 12), ("val", 4), ("test", 4)):
    for k in range(3):
        d = f"{sys.argv[1]}/{split}/c{k}"
        os.makedirs(d, exist_ok=True)
        for i in range(n):
            w, h = int(r.integers(64, 97)), int(r.integers(64, 97))
            a = r.normal(60, 30, (h, w, 3))
            a[..., k] += 160  # the class is the dominant channel
            Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(f"{d}/{i:03d}.JPEG",
                                                                       quality=90)
PY
"$RESNET" data pack --data "folder:$SET" --format shards --out "$TMP/shards" >/dev/null 2>&1
SHARDS="shards:$TMP/shards/train-{000000..000000}.tar"
COMMON=(--model resnet8 --batch 4 --threads 1 --lr 0.05)

# tensor_hash FILE: the SHA-256 of a safetensors file's tensor data.
tensor_hash() {
    "$PY" - "$1" <<'PY'
import hashlib, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    f.seek(8 + n)
    print(hashlib.sha256(f.read()).hexdigest())
PY
}

train_folder() {
    "$RESNET" train "${COMMON[@]}" --data "folder:$SET" --size 32 --val 6 --epochs 2 \
        --out "$TMP/folder" 2>"$TMP/folder.err" >"$TMP/folder.out" || { cat "$TMP/folder.err"; return 1; }
    grep -q "(streamed)" "$TMP/folder.err" || { echo "not streamed"; return 1; }
    grep -q "val loss" "$TMP/folder.err" || { echo "no validation"; return 1; }
    grep -q '"size":	32' "$TMP/folder/config.json" || { echo "size not in config.json"; return 1; }
    [ -f "$TMP/folder/best.safetensors" ] || { echo "no best.safetensors"; return 1; }
    cat "$TMP/folder.out"
}
check "train on folder:ROOT streamed (--size 32), validation, test on ROOT/val" train_folder

# eval of the run's weights: the test split is ROOT/val; the run's held-out split as it saw it
eval_folder() {
    "$RESNET" eval --weights "$TMP/folder/last.safetensors" --data "folder:$SET" --json \
        >"$TMP/eval.json" || return 1
    local want got
    want=$(sed -n 's/^test accuracy: \([0-9.]*\)%.*/\1/p' "$TMP/folder.out")
    got=$("$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); print("%.2f" % (100 * j["top1"]), j["images"])' "$TMP/eval.json")
    [ "$got" = "$want 12" ] || { echo "eval: $got, training's test: $want of 12"; return 1; }
    "$RESNET" eval --weights "$TMP/folder/last.safetensors" --data "folder:$SET" --split val |
        grep -q "^val: 6 images" || { echo "val split"; return 1; }
    echo "eval: top-1 $got% on ROOT/val, as the run's last test"
}
check "eval streams ROOT/val with the run's settings, as training evaluated it" eval_folder

train_shards() {
    "$RESNET" train "${COMMON[@]}" --data "$SHARDS" --epochs 1 --out "$TMP/shards_run" \
        --quiet >"$TMP/shards.out" 2>"$TMP/shards.err" || { cat "$TMP/shards.err"; return 1; }
    grep -q "^test accuracy" "$TMP/shards.out" || { echo "no test on the val shards"; return 1; }
    "$RESNET" eval --weights "$TMP/shards_run/last.safetensors" --data "$SHARDS" | head -n 2
}
check "train on shards:PATTERN, test on the val shards, eval" train_shards

# The ImageNet models on both kinds of streamed set, with the ImageNet preset, at a small crop:
# the stem, max pool and bottlenecks run end to end, and the weights hold ImageNet's mean.
imagenet_model() {
    local data=$1 out=$2
    "$RESNET" train --model "$3" --preset imagenet --size 64 --batch 4 --iters 3 --lr 0.001 \
        --threads 1 --data "$data" --out "$out" --quiet >"$out.out" 2>"$out.err" ||
        { cat "$out.err"; return 1; }
    grep -q "^test accuracy" "$out.out" || { echo "no test accuracy"; return 1; }
    grep -q '"preset":	"imagenet"' "$out/config.json" || { echo "preset not recorded"; return 1; }
    "$RESNET" eval --weights "$out/last.safetensors" --data "$data" --json >"$out.json" ||
        return 1
    grep -q '"top1"' "$out.json" || { echo "eval gave no top1"; return 1; }
    cat "$out.out"
}
check "resnet18-imagenet trains on folder: (--preset imagenet --size 64) and evaluates" \
    imagenet_model "folder:$SET" "$TMP/r18" resnet18-imagenet
check "resnet50-imagenet trains on shards: (--preset imagenet --size 64) and evaluates" \
    imagenet_model "$SHARDS" "$TMP/r50" resnet50-imagenet

# SIGKILL after a checkpoint in the middle of an epoch (9 steps each, a checkpoint every 4),
# then --resume: the weights equal those of an uninterrupted run decoding with 3 threads.
RUN=(--data "folder:$SET" --size 32 --val 6 --epochs 6 --ckpt-every 4 --quiet)
killed_resume() {
    "$RESNET" train "${COMMON[@]}" "${RUN[@]}" --data-threads 3 --out "$TMP/whole" || return 1
    "$RESNET" train "${COMMON[@]}" "${RUN[@]}" --data-threads 1 --out "$TMP/killed" \
        >/dev/null 2>&1 &
    local pid=$! i step=""
    for i in $(seq 1 2000); do
        if [ -f "$TMP/killed/checkpoint.safetensors" ]; then
            kill -KILL "$pid" 2>/dev/null
            break
        fi
        sleep 0.005
    done
    wait "$pid" 2>/dev/null
    step=$("$PY" -c 'import sys, json, struct; d = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", d[:8])[0]; print(json.loads(d[8:8 + n])["__metadata__"]["checkpoint_step"])' "$TMP/killed/checkpoint.safetensors")
    [ -n "$step" ] && [ "$step" -lt 54 ] ||
        { echo "not killed before the end (checkpoint step $step)"; return 1; }
    "$RESNET" train --resume "$TMP/killed" --quiet || return 1
    local a b
    a=$(tensor_hash "$TMP/whole/last.safetensors")
    b=$(tensor_hash "$TMP/killed/last.safetensors")
    [ "$a" = "$b" ] || { echo "weights differ: $a vs $b"; return 1; }
    echo "killed after the checkpoint of step $step (epoch $((step / 9 + 1)), step $((step % 9)) of 9), resumed: identical"
}
check "SIGKILL mid-epoch then --resume: bit-identical weights, whatever the decoding threads" killed_resume

# The memory budget: the set fits by default (kept in memory), --data-memory 1K streams it.
in_memory_default() {
    "$RESNET" train "${COMMON[@]}" --data "folder:$SET" --resize 32x32 --iters 2 \
        --out "$TMP/mem" 2>"$TMP/mem.err" >/dev/null || { cat "$TMP/mem.err"; return 1; }
    grep -q "^training resnet8 on folder:$SET: " "$TMP/mem.err" ||
        { echo "not the in-memory path: $(head -n 1 "$TMP/mem.err")"; return 1; }
    echo "in memory"
}
check "a small folder stays in memory by default" in_memory_default
forced_stream() {
    "$RESNET" train "${COMMON[@]}" --data "folder:$SET" --resize 32x32 --data-memory 1K \
        --iters 3 --out "$TMP/forced" 2>"$TMP/forced.err" >/dev/null ||
        { cat "$TMP/forced.err"; return 1; }
    grep -q "(streamed)" "$TMP/forced.err" || { echo "not streamed"; return 1; }
    grep -q '"data_memory":	1024,' "$TMP/forced/config.json" || { echo "config.json"; return 1; }
    "$RESNET" train --resume "$TMP/forced" 2>&1 | grep -q "already complete" || return 1
    echo "streamed under a 1 KiB budget; resume reads the budget back"
}
check "--data-memory 1K streams a set that would fit" forced_stream

# Bad input: one line, non-zero exit.
BAD="$TMP/bad"
cp -r "$SET" "$BAD"
head -c 300 "$SET/train/c1/005.JPEG" >"$BAD/train/c1/005.JPEG"
check_error "a corrupt JPEG stops the run at setup (the normalization sample), named" \
    'train/c1/005\.JPEG.*(corrupt|truncated)' \
    "$RESNET" train "${COMMON[@]}" --data "folder:$BAD" --size 32 --epochs 1 --out "$TMP/b1"
check_error "a corrupt JPEG stops the run at its step (--preset imagenet), named" \
    'train/c1/005\.JPEG.*(corrupt|truncated)' \
    "$RESNET" train "${COMMON[@]}" --data "folder:$BAD" --preset imagenet --size 32 --epochs 1 \
    --quiet --out "$TMP/b2"
skip_bad() {
    "$RESNET" train "${COMMON[@]}" --data "folder:$BAD" --size 32 --epochs 1 --skip-bad \
        --out "$TMP/b3" 2>"$TMP/b3.err" >/dev/null || { cat "$TMP/b3.err"; return 1; }
    grep -q "^warning: .*train/c1/005\.JPEG" "$TMP/b3.err" || { echo "no warning"; return 1; }
    grep -q '"skip_bad":	true' "$TMP/b3/config.json" || return 1
    echo "$(grep -c '^warning' "$TMP/b3.err") warnings naming the image"
}
check "--skip-bad skips the corrupt JPEG with a warning naming it" skip_bad
"$PY" - "$TMP/shards/train-000000.tar" "$TMP/nocls.tar" <<'PY'
import sys, tarfile
with tarfile.open(sys.argv[1]) as src, tarfile.open(sys.argv[2], "w", format=tarfile.USTAR_FORMAT) as dst:
    for i, m in enumerate(src.getmembers()):
        if i == 3 and m.name.endswith(".cls"):
            continue
        dst.addfile(m, src.extractfile(m))
PY
check_error "a shard sample without .cls: one line naming the shard" 'nocls\.tar: .*\.cls' \
    "$RESNET" train "${COMMON[@]}" --data "shards:$TMP/nocls.tar" --epochs 1 --out "$TMP/b4"
check_error "--device cuda refuses a streamed set (or has no GPU)" 'CPU for now|CUDA|GPU' \
    "$RESNET" train "${COMMON[@]}" --data "$SHARDS" --epochs 1 --device cuda --out "$TMP/b5"
check_error "--preset other: one line" "preset" \
    "$RESNET" train "${COMMON[@]}" --data "$SHARDS" --preset cifar --out "$TMP/b6"
check_error "--data-memory nonsense: one line" "data-memory" \
    "$RESNET" train "${COMMON[@]}" --data "$SHARDS" --data-memory 12X --out "$TMP/b7"
finish
