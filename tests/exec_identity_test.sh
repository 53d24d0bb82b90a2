#!/usr/bin/env bash
# exec_identity_test.sh — training is bit-identical to the recorded runs: 30 steps of resnet8
# and plain8 on a small Fashion-MNIST subset (augmentation, shuffle, a validation split and
# momentum all on) for each CPU backend and thread count, compared by the SHA-256 of
# last.safetensors' tensor data against tests/data/exec_identity.sha256. The hashes were recorded before the
# training step moved behind the executor seam (src/exec), so any change in what a step
# computes, in the data order or in the augmentation draws shows up here.
# The kernels' rounding depends on the vector unit (AVX-512, AVX2, portable) and on how the
# compiler was asked to build them (the sanitizer build vectorizes differently), so the hashes
# are kept per level and build; where none are recorded the test says so and skips.
# RECORD=1 writes this level's hashes (only when a change of results is intended and explained).
source "$(dirname "$0")/testlib.sh"
unset RN_ISA

# The level every kernel picks on this CPU (as src/core's probe decides it).
if grep -qw avx512f /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo; then isa=avx512
elif grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then isa=avx2
else isa=portable; fi
[ "${BUILD:-build}" = build-san ] && isa="$isa-sanitize"

FMNIST=/usr/share/datasets/fashion-mnist
HASHES=tests/data/exec_identity.sha256
if [ ! -f "$FMNIST/train-images-idx3-ubyte.gz" ]; then
    skip "exec identity" "Fashion-MNIST not installed ($FMNIST; apt-get install dataset-fashion-mnist)"
    finish
fi

# The first 1,200 training and 200 test images, as IDX files (plain, uncompressed).
/usr/bin/env python3 - "$FMNIST" "$TMP/data" <<'PY'
import gzip, os, struct, sys
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst)
for split, n in (("train", 1200), ("t10k", 200)):
    with gzip.open(f"{src}/{split}-images-idx3-ubyte.gz") as f:
        head = f.read(16)
        rows, cols = struct.unpack(">II", head[8:16])
        pix = f.read(n * rows * cols)
    with open(f"{dst}/{split}-images-idx3-ubyte", "wb") as f:
        f.write(head[:4] + struct.pack(">I", n) + head[8:16] + pix)
    with gzip.open(f"{src}/{split}-labels-idx1-ubyte.gz") as f:
        head = f.read(8)
        lab = f.read(n)
    with open(f"{dst}/{split}-labels-idx1-ubyte", "wb") as f:
        f.write(head[:4] + struct.pack(">I", n) + lab)
PY

# tensor_hash FILE: the SHA-256 of a safetensors file's data section (every tensor's bytes, in
# the file's order), so metadata (class names, versions) can change without changing it.
tensor_hash() {
    /usr/bin/env python3 - "$1" <<'PY'
import hashlib, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    f.seek(8 + n)
    print(hashlib.sha256(f.read()).hexdigest())
PY
}

# run_hash MODEL BACKEND THREADS: trains and prints "MODEL BACKEND THREADS SHA256".
run_hash() {
    local out="$TMP/run-$1-$2-$3"
    "$RESNET" train --model "$1" --backend "$2" --threads "$3" --data "mnist:$TMP/data" \
        --out "$out" --iters 30 --batch 32 --val 200 --lr 0.05 --momentum 0.9 --wd 5e-4 \
        --seed 7 --log-every 10 --quiet >"$TMP/log" 2>&1 || { cat "$TMP/log" >&2; return 1; }
    echo "$1 $2 $3 $(tensor_hash "$out/last.safetensors")"
}

got="$TMP/got"
: >"$got"
for model in resnet8 plain8; do
    for backend in reference cpu cpu-winograd; do
        for threads in 1 2; do
            run_hash "$model" "$backend" "$threads" >>"$got" || fail "train $model $backend $threads"
        done
    done
done
if [ "${RECORD:-0}" = 1 ]; then
    { grep -v "^$isa " "$HASHES" 2>/dev/null; sed "s/^/$isa /" "$got"; } >"$TMP/new"
    mv "$TMP/new" "$HASHES"
    echo "recorded the $isa hashes in $HASHES"
fi
if ! grep -q "^$isa " "$HASHES"; then
    skip "exec identity" "no hashes recorded for this CPU's level ($isa) in $HASHES"
    finish
fi

same_as_recorded() {
    local model=$1 backend=$2 threads=$3 want have
    want=$(awk -v i="$isa" -v m="$model" -v b="$backend" -v t="$threads" \
        '$1==i && $2==m && $3==b && $4==t {print $5}' "$HASHES")
    have=$(awk -v m="$model" -v b="$backend" -v t="$threads" '$1==m && $2==b && $3==t {print $4}' "$got")
    [ -n "$want" ] && [ "$want" = "$have" ] && return 0
    echo "recorded ${want:-none}, got ${have:-none}" >&2
    return 1
}
while read -r model backend threads _; do
    check "$model --backend $backend --threads $threads: last.safetensors as recorded" \
        same_as_recorded "$model" "$backend" "$threads"
done <"$got"
finish
