#!/usr/bin/env bash
# train_order_isa_test.sh — two things `resnet train` must do that its own results hide:
#   - each epoch has its own data order (--shuffle epoch) and --shuffle none keeps one. With
#     --lr 0 the weights never change, and BN in training mode normalizes by the batch, so a
#     step's loss depends only on which images its batch holds: under --shuffle none epoch 2
#     repeats epoch 1's losses exactly; with shuffling the losses of each epoch, as a set,
#     differ from every other epoch's (their batches hold other images);
#   - RN_ISA reaches the kernels: RN_ISA=portable changes the trained weights (the portable
#     kernels round differently from the vector ones), RN_ISA set to the machine's own level or
#     to an unknown name leaves them as they are. (The program prints no line naming the level
#     it runs at, so the weights are what is compared.)
# Data: 16 training images of 1x8x8 in 4 classes (a packed set written here). Ends with
# "N passed, N failed". Environment: RESNET, the program's path.
source "$(dirname "$0")/testlib.sh"

python3 - "$TMP/data" <<'EOF' || { fail "write the data set"; finish; exit; }
import json, os, random, sys
d = sys.argv[1]
os.makedirs(d)
r = random.Random(3)
def records(n):
    return b"".join(bytes([i % 4] + [r.randrange(256) for _ in range(64)]) for i in range(n))
train = records(16)
for b in range(5):  # five batch files, as `resnet data pack` writes them
    lo, hi = 16 * b // 5, 16 * (b + 1) // 5
    with open(os.path.join(d, f"data_batch_{b + 1}.bin"), "wb") as f:
        f.write(train[lo * 65:hi * 65])
with open(os.path.join(d, "test_batch.bin"), "wb") as f:
    f.write(records(4))
with open(os.path.join(d, "meta.json"), "w") as f:
    json.dump({"format": "resnet.c packed data set", "version": 1, "channels": 1, "height": 8,
               "width": 8, "num_classes": 4, "train_count": 16, "test_count": 4,
               "train_batches": [16 * (b + 1) // 5 - 16 * b // 5 for b in range(5)]}, f)
EOF

# losses_of OUT SHUFFLE: trains 3 epochs of 4 steps at lr 0 into OUT and prints the 12 step
# losses, one line per epoch.
losses_of() {
    "$RESNET" train --model resnet8 --data "packed:$TMP/data" --out "$1" --batch 4 --iters 12 \
        --lr 0 --momentum 0 --wd 0 --augment none --shuffle "$2" --seed 11 --threads 1 \
        --log-every 1 --quiet >"$TMP/log" 2>&1 || { cat "$TMP/log" >&2; return 1; }
    sed -n 's/^{"step": [0-9]*,.*"train_loss": \([^,]*\),.*/\1/p' "$1/metrics.jsonl" | paste -d ' ' - - - -
}

same_order_every_epoch() {
    local l
    l=$(losses_of "$TMP/none" none) || return 1
    echo "$l" >&2
    [ "$(echo "$l" | wc -l)" -eq 3 ] || { echo "expected 3 epochs of 4 losses" >&2; return 1; }
    [ "$(echo "$l" | sort -u | wc -l)" -eq 1 ] || { echo "the epochs' losses differ" >&2; return 1; }
    echo "3 epochs, the same 4 losses in the same order"
}

new_order_every_epoch() {
    local l
    l=$(losses_of "$TMP/epoch" epoch) || return 1
    echo "$l" >&2
    # each epoch's losses as a sorted set; no two epochs may have the same set (to 1e-6)
    echo "$l" | python3 -c '
import sys
epochs = [sorted(float(v) for v in line.split()) for line in sys.stdin]
if len(epochs) != 3 or any(len(e) != 4 for e in epochs):
    sys.exit("expected 3 epochs of 4 losses")
for a in range(3):
    for b in range(a):
        if all(abs(x - y) <= 1e-6 * abs(y) for x, y in zip(epochs[a], epochs[b])):
            sys.exit(f"epochs {b + 1} and {a + 1} hold the same batches")
print("3 epochs, each with batches of its own")'
}

check "--shuffle none: every epoch the same batches" same_order_every_epoch
check "--shuffle epoch: each epoch other batches" new_order_every_epoch

# ---- RN_ISA ------------------------------------------------------------------------------

# The best level of this CPU, as src/cpu/isa.c decides it.
if grep -qw avx512f /proc/cpuinfo; then top=avx512
elif grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then top=avx2
else top=portable; fi

# weights_with VALUE: the SHA-256 of the weights of a 6-step run under RN_ISA=VALUE ("" for
# RN_ISA unset).
weights_with() {
    local out="$TMP/isa-${1:-unset}"
    (if [ -n "$1" ]; then export RN_ISA=$1; else unset RN_ISA; fi
     "$RESNET" train --model resnet8 --data "packed:$TMP/data" --out "$out" --batch 4 --iters 6 \
         --lr 0.05 --seed 11 --threads 1 --quiet) >"$TMP/log" 2>&1 || { cat "$TMP/log" >&2; return 1; }
    sha256sum "$out/last.safetensors" | cut -d ' ' -f 1
}

isa_changes_weights() {
    local unset portable own unknown
    unset=$(weights_with "") && portable=$(weights_with portable) &&
        own=$(weights_with "$top") && unknown=$(weights_with sse9) || return 1
    echo "unset $unset, portable $portable, $top $own, sse9 $unknown" >&2
    [ "$portable" != "$unset" ] || { echo "RN_ISA=portable did not change the run" >&2; return 1; }
    [ "$own" = "$unset" ] || { echo "RN_ISA=$top (this CPU's level) changed the run" >&2; return 1; }
    [ "$unknown" = "$unset" ] || { echo "RN_ISA=sse9 (unknown) changed the run" >&2; return 1; }
    echo "RN_ISA=portable changes the weights; RN_ISA=$top and RN_ISA=sse9 do not"
}

if [ "$top" = portable ]; then
    skip "RN_ISA=portable changes the run" "this CPU has neither AVX2+FMA nor AVX-512"
else
    check "RN_ISA=portable changes the run, RN_ISA=$top does not" isa_changes_weights
fi
finish
