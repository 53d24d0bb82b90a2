#!/usr/bin/env bash
# data_cli_test.sh — `resnet data info` and `resnet data pack` on a small generated image-folder
# tree (PNGs written by Python's standard library), the packed round trip, and bad input (a
# non-zero exit with one line on stderr). Ends with "N passed, N failed".
# Environment: RESNET, the program's path.
set -u
RESNET=${RESNET:-$(dirname "$0")/../resnet}
passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

source "$(dirname "$0")/expect.sh" # ok, bad, run, expect_error

if [ ! -x "$RESNET" ]; then
    echo "FAILED: $RESNET is not an executable program"
    echo "0 passed, 1 failed"
    exit 1
fi

# A tree of 8x6 PNGs: train/{ant,bee} (gray and color), test/{bee}, plus a 5x5 image elsewhere.
python3 - "$tmp" <<'EOF' || { echo "FAILED: cannot generate PNGs"; echo "0 passed, 1 failed"; exit 1; }
import os, struct, sys, zlib

def png(path, w, h, channels, seed):
    rows = b"".join(b"\0" + bytes((seed * 31 + y * 17 + x * 5 + c * 70) % 256
                                   for x in range(w) for c in range(channels))
                    for y in range(h))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    color = {1: 0, 3: 2}[channels]
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))

root = sys.argv[1]
for split, cls, n in [("train", "ant", 3), ("train", "bee", 2), ("test", "bee", 2)]:
    d = os.path.join(root, "tree", split, cls)
    os.makedirs(d)
    for i in range(n):
        png(os.path.join(d, f"{i}.png"), 8, 6, 3 if (i + len(cls)) % 2 else 1, i + len(cls))
os.makedirs(os.path.join(root, "mixed", "train", "a"))
os.makedirs(os.path.join(root, "mixed", "test", "a"))
png(os.path.join(root, "mixed", "train", "a", "0.png"), 8, 6, 1, 1)
png(os.path.join(root, "mixed", "train", "a", "1.png"), 5, 5, 1, 2)
png(os.path.join(root, "mixed", "test", "a", "0.png"), 8, 6, 1, 3)
EOF

# info on the folder
if run "$RESNET" data info --data "folder:$tmp/tree" &&
    grep -q "^train    5 images (2..3 per class)" "$tmp/out" &&
    grep -q "^test     2 images (0..2 per class)" "$tmp/out" &&
    grep -q "^shape    3x6x8 " "$tmp/out" &&
    grep -q "^classes  2: ant, bee$" "$tmp/out" &&
    grep -q "^mean     [0-9.]* [0-9.]* [0-9.]* " "$tmp/out"; then
    ok "data info on a folder"
else
    bad "data info on a folder:"
    cat "$tmp/out" "$tmp/err"
fi
cp "$tmp/out" "$tmp/info_folder"

# pack, then info on the packed set gives the same counts, shape, classes and statistics
if run "$RESNET" data pack --data "folder:$tmp/tree" --out "$tmp/packed" &&
    grep -q "5 train images" "$tmp/out" && grep -q "2 test images" "$tmp/out" &&
    grep -q "^shape    3x6x8 " "$tmp/out" && grep -q "^classes  2: ant, bee$" "$tmp/out" &&
    [ -f "$tmp/packed/data_batch_5.bin" ] && [ -f "$tmp/packed/test_batch.bin" ] &&
    [ "$(stat -c %s "$tmp/packed/data_batch_1.bin")" -eq 145 ] &&
    grep -q '"height": 6' "$tmp/packed/meta.json" &&
    [ "$(cat "$tmp/packed/batches.meta.txt")" = "$(printf 'ant\nbee')" ]; then
    ok "data pack writes batches, names and meta.json"
else
    bad "data pack:"
    cat "$tmp/out" "$tmp/err"
    ls -l "$tmp/packed" 2>&1
fi
# pack shows its progress on stderr: images decoded, then what was read and where it goes
if grep -q "^decoding images: 7 of 7 (100%)$" "$tmp/err" &&
    grep -q "^read 5 train and 2 test images of 3x6x8 in [0-9.]* s; writing $tmp/packed$" "$tmp/err"; then
    ok "data pack shows its progress"
else
    bad "data pack progress:"
    cat "$tmp/err"
fi
if run "$RESNET" data info --data "packed:$tmp/packed" &&
    diff <(grep -v '^data ' "$tmp/info_folder") <(grep -v '^data ' "$tmp/out") >/dev/null; then
    ok "data info on the packed set matches the folder's"
else
    bad "data info on the packed set differs:"
    diff "$tmp/info_folder" "$tmp/out"
    cat "$tmp/err"
fi

# resize
if run "$RESNET" data pack --data "folder:$tmp/mixed" --out "$tmp/resized" --resize 4x5 &&
    grep -q "^shape    1x4x5 " "$tmp/out" && grep -q '"width": 5' "$tmp/resized/meta.json"; then
    ok "data pack --resize 4x5 of mixed sizes"
else
    bad "data pack --resize:"
    cat "$tmp/out" "$tmp/err"
fi

# --resize S is S x S, as for train
if run "$RESNET" data info --data "folder:$tmp/mixed" --resize 3 && grep -q "^shape    1x3x3 " "$tmp/out"; then
    ok "data info --resize 3 is 3x3"
else
    bad "data info --resize 3:"
    cat "$tmp/out" "$tmp/err"
fi

# one image is "1 image"
if run "$RESNET" data info --data "folder:$tmp/mixed" --resize 4x5 &&
    grep -q "^test     1 image (1..1 per class)$" "$tmp/out" &&
    grep -q "^train    2 images (2..2 per class)$" "$tmp/out"; then
    ok "data info: 1 image, 2 images"
else
    bad "data info plurals:"
    cat "$tmp/out" "$tmp/err"
fi

# bad input: non-zero exit, one line on stderr
expect_error "missing folder" "$tmp/none/train" "$RESNET" data info --data "folder:$tmp/none"
expect_error "unknown spec" "cifar10:DIR" "$RESNET" data info --data "imagenet:$tmp/tree"
expect_error "mixed sizes" "1.png" "$RESNET" data info --data "folder:$tmp/mixed"
expect_error "bad --resize" "--resize" "$RESNET" data info --data "folder:$tmp/tree" --resize 0x5
expect_error "bad --resize form" "a size like 32 or 32x32" "$RESNET" data info \
    --data "folder:$tmp/tree" --resize 32x
# the options are read as every subcommand reads them: written in full, values checked
expect_error "abbreviated option" "write it in full" "$RESNET" data info --dat "folder:$tmp/tree"
expect_error "bench: bad --size" "--size" "$RESNET" data bench --data "folder:$tmp/tree" --size 0
expect_error "bench: stray argument" "unexpected argument 'extra'" "$RESNET" data bench \
    --data "folder:$tmp/tree" extra
expect_error "info takes no --out" "--out" "$RESNET" data info --data "folder:$tmp/tree" --out x
expect_error "pack without --out" "--out" "$RESNET" data pack --data "folder:$tmp/tree"
expect_error "unknown action" "pack, info or bench" "$RESNET" data frobnicate
expect_error "unknown option" "--bogus" "$RESNET" data info --bogus 1
expect_error "packed without meta.json" "meta.json" "$RESNET" data info --data "packed:$tmp/tree"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
