#!/usr/bin/env bash
# stream_test.sh — the streamed data sets end to end, on photo-sized JPEGs generated here
# (tools/make_photo_set.py, with Pillow and numpy): the eval transform against torchvision's
# Resize + CenterCrop + ToTensor + Normalize on PIL images (gray, CMYK, PNG and odd sizes
# included), the train transform against torchvision's resized_crop + hflip on the same boxes,
# the RandomResizedCrop box distribution against torchvision's get_params, tar shards against
# the folder they were packed from, thread-count independence, bad input through `resnet data
# bench` (one line on stderr, naming the file), and memory that does not grow with the set.
# The torchvision comparisons skip when /usr/bin/python3 lacks torch; everything skips without
# Pillow. Environment: RESNET, BUILD (holding tests/stream_dump), TORCH_PYTHON.
source "$(dirname "$0")/testlib.sh"
BUILD=${BUILD:-build}
DUMP="$PWD/$BUILD/tests/stream_dump"
PY=${TORCH_PYTHON:-/usr/bin/python3}

if ! "$PY" -c "import PIL, numpy" 2>/dev/null; then
    skip "streamed sets" "$PY has no Pillow or numpy to write the JPEGs (apt-get install python3-pil python3-numpy)"
    finish
    exit
fi
if [ ! -x "$DUMP" ]; then
    fail "stream_dump" "$DUMP not built (make tests)"
    finish
    exit
fi
HAVE_TORCH=0
"$PY" -c "import torch, torchvision" 2>/dev/null && HAVE_TORCH=1

SET="$TMP/set"
"$PY" tools/make_photo_set.py "$SET" --classes 3 --train 6 --val 3 --shards 7 >/dev/null
# Odd cases for the eval comparison: gray, CMYK, PNG, and sizes whose center crop rounds.
"$PY" - "$SET/val" <<'PY'
import sys
import numpy as np
from PIL import Image
r = np.random.default_rng(1)
def field(w, h, mode):
    small = Image.fromarray(r.integers(0, 256, (5, 7, 3), dtype=np.uint8))
    a = np.asarray(small.resize((w, h), Image.BICUBIC), np.float32) + r.normal(0, 8, (h, w, 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).convert(mode)
d = sys.argv[1]
field(333, 500, "L").save(f"{d}/c000/gray.JPEG", quality=85)
field(401, 300, "CMYK").save(f"{d}/c001/cmyk.JPEG", quality=90)
field(483, 256, "RGB").save(f"{d}/c002/png.png")
field(640, 427, "RGB").save(f"{d}/c002/wide.jpg", quality=95)
PY

# compare TAG KIND: KIND eval or train; the dump TAG.{x,txt} against torchvision.
compare_torchvision() {
    "$PY" - "$1" "$2" <<'PY'
import sys
import numpy as np
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image
tag, kind = sys.argv[1], sys.argv[2]
mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
post = T.Compose([T.ToTensor(), T.Normalize(mean, std)])
lines = open(tag + ".txt").read().splitlines()
x = np.fromfile(tag + ".x", np.float32).reshape(len(lines), 3, 224, 224)
worst, where = 0.0, ""
for i, line in enumerate(lines):
    name, label, top, left, h, w, flip = line.split()
    img = Image.open(name).convert("RGB")
    if kind == "eval":
        img = F.center_crop(F.resize(img, 256), 224)
    else:
        img = F.resized_crop(img, int(top), int(left), int(h), int(w), [224, 224])
        if int(flip):
            img = F.hflip(img)
    ref = post(img).numpy()
    d = float((np.abs(ref - x[i]) * np.array(std, np.float32).reshape(3, 1, 1)).max() * 255)
    if d >= worst:
        worst, where = d, name
print(f"{len(lines)} images, max difference {worst:.3f}/255 ({where})")
sys.exit(0 if worst <= 2.0 else 1)
PY
}

eval_matches_torchvision() {
    "$DUMP" batches "folder:$SET" "$TMP/ev" split=val transform=eval shuffle=0 batch=4 threads=2 &&
        compare_torchvision "$TMP/ev" eval
}

train_matches_torchvision() {
    "$DUMP" batches "folder:$SET" "$TMP/tr" transform=train dct=0 seed=9 batch=5 threads=2 &&
        compare_torchvision "$TMP/tr" train
}

# The box distribution: means of the box and the share of fallback boxes, ours against
# torchvision's get_params, 20000 draws each, within 5 standard errors.
boxes_match_torchvision() {
    local sizes="500x375 1000x150 96x96" wh
    for wh in $sizes; do
        "$DUMP" boxes "${wh%x*}" "${wh#*x}" 20000 5 >"$TMP/boxes_$wh" || return 1
    done
    "$PY" - "$TMP/boxes_" $sizes <<'PY'
import sys
import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image
ok = True
for wh in sys.argv[2:]:
    W, H = map(int, wh.split("x"))
    ours = np.loadtxt(sys.argv[1] + wh, dtype=np.int64)[:, :4]  # top left h w
    img = Image.new("RGB", (W, H))
    torch.manual_seed(0)
    ref = np.array([T.RandomResizedCrop.get_params(img, (0.08, 1.0), (3 / 4, 4 / 3))
                    for _ in range(len(ours))], np.int64)
    r = W / H
    fw, fh = (W, round(W / 0.75)) if r < 0.75 else (round(H * 4 / 3), H) if r > 4 / 3 else (W, H)
    line = []
    for k, name in enumerate(["top", "left", "h", "w"]):
        a, b = ours[:, k].astype(float), ref[:, k].astype(float)
        z = abs(a.mean() - b.mean()) / (np.sqrt(a.var() / len(a) + b.var() / len(b)) + 1e-9)
        ok &= bool(z < 5)
        line.append(f"{name} {a.mean():.1f}/{b.mean():.1f}")
    pa, pb = [float(((b[:, 2] == fh) & (b[:, 3] == fw)).mean()) for b in (ours, ref)]
    se = np.sqrt(pa * (1 - pa) / len(ours) + pb * (1 - pb) / len(ref))
    ok &= bool(abs(pa - pb) <= 5 * se + 1e-9)
    print(f"{wh} (ours/torchvision): {', '.join(line)}, fallback share {pa:.3f}/{pb:.3f}")
sys.exit(0 if ok else 1)
PY
}

if [ "$HAVE_TORCH" = 1 ]; then
    check "eval transform = torchvision's Resize(256)+CenterCrop(224) (<= 2/255)" eval_matches_torchvision
    check "train transform = torchvision's resized_crop+hflip on the same boxes (<= 2/255)" train_matches_torchvision
    check "RandomResizedCrop boxes distributed as torchvision's get_params" boxes_match_torchvision
else
    skip "torchvision comparisons" "$PY cannot import torch and torchvision"
fi

SHARDS="shards:$SET/shards/train-{000000..000002}.tar"
shards_equal_folder() {
    "$DUMP" batches "folder:$SET" "$TMP/f" seed=3 batch=5 threads=2 &&
        "$DUMP" batches "$SHARDS" "$TMP/s" seed=3 batch=5 threads=3 &&
        cmp "$TMP/f.x" "$TMP/s.x" && cmp "$TMP/f.labels" "$TMP/s.labels" &&
        [ "$(wc -l <"$TMP/f.txt")" -eq 18 ]
}
check "shards give the folder's batches (same order, crops and labels)" shards_equal_folder

packed_equal_folder() {
    "$RESNET" data pack --data "folder:$SET" --format shards --shard-size 5 --out "$TMP/packed" &&
        grep -q "^wrote .*/val-{000000..000002}.tar: 13 images in 3 shards$" "$TMP/check.out" &&
        "$DUMP" batches "shards:$TMP/packed/train-{000000..000003}.tar" "$TMP/p" seed=3 batch=5 &&
        cmp "$TMP/f.x" "$TMP/p.x" && cmp "$TMP/f.labels" "$TMP/p.labels"
}
check "data pack --format shards writes shards that give the folder's batches" packed_equal_folder

threads_do_not_matter() {
    "$DUMP" batches "$SHARDS" "$TMP/t1" seed=4 batch=4 threads=1 prefetch=1 batches=1:0,1:1,1:2,1:3 &&
        "$DUMP" batches "$SHARDS" "$TMP/t4" seed=4 batch=4 threads=4 prefetch=3 batches=0:3,1:0,1:1,1:2,1:3 &&
        tail -c "$(stat -c %s "$TMP/t1.x")" "$TMP/t4.x" | cmp - "$TMP/t1.x"
}
check "1 thread and 4 threads, in order or after a jump: the same batches" threads_do_not_matter

bench_runs() {
    "$RESNET" data bench --data "$SHARDS" --size 96 --batch 4 --threads 2 &&
        grep -q "^images/s: [0-9.]*$" "$TMP/check.out"
}
check "data bench on shards prints images/s" bench_runs

# ---- bad input -----------------------------------------------------------------------------
BAD="$TMP/bad"
mkdir -p "$BAD"
cp -r "$SET/train" "$BAD/"
head -c 3000 "$SET/train/c001/c001_00002.JPEG" >"$BAD/train/c001/c001_00002.JPEG"
check_error "a truncated JPEG in a folder is refused, by name" \
    'c001/c001_00002\.JPEG: truncated or corrupt JPEG' \
    "$RESNET" data bench --data "folder:$BAD" --size 64 --batch 3
skipped_with_warning() {
    "$RESNET" data bench --data "folder:$BAD" --size 64 --batch 3 --skip-bad &&
        [ "$(grep -c 'warning: skipped .*c001_00002.JPEG: truncated' "$TMP/check.err")" -eq 1 ] &&
        grep -q "^images   18 " "$TMP/check.out"
}
check "--skip-bad skips it with one warning naming it" skipped_with_warning

# Shards built by hand: make_tar OUT NAME=CONTENT ...; CONTENT @FILE copies a file; TAR_FORMAT
# USTAR (default), PAX or GNU.
make_tar() {
    local out=$1
    shift
    "$PY" - "$out" "$@" <<'PY'
import io, os, sys, tarfile
out, members = sys.argv[1], sys.argv[2:]
mode = "w:gz" if out.endswith(".gz") else "w"
form = getattr(tarfile, os.environ.get("TAR_FORMAT", "USTAR") + "_FORMAT")
with tarfile.open(out, mode, format=form) as t:
    for m in members:
        name, content = m.split("=", 1)
        data = open(content[1:], "rb").read() if content.startswith("@") else content.encode()
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
PY
}
JPG="$SET/train/c000/c000_00000.JPEG"
long_names() {
    local long=dir/$(printf 'x%.0s' {1..150})
    TAR_FORMAT=PAX make_tar "$BAD/pax.tar" "$long.jpg=@$JPG" "$long.cls=1" "b.jpg=@$JPG" "b.cls=0" &&
        TAR_FORMAT=GNU make_tar "$BAD/gnu.tar" "$long.jpg=@$JPG" "$long.cls=1" &&
        "$RESNET" data bench --data "shards:$BAD/pax.tar" --batch 2 --size 32 &&
        "$RESNET" data bench --data "shards:$BAD/gnu.tar" --batch 1 --size 32
}
check "members behind pax and GNU long-name headers are found" long_names
make_tar "$BAD/nocls.tar" "a.jpg=@$JPG" "a.cls=1" "b.jpg=@$JPG" "c.jpg=@$JPG" "c.cls=0"
check_error "a shard sample without .cls" 'nocls\.tar: b\.jpg has no b\.cls member' \
    "$RESNET" data bench --data "shards:$BAD/nocls.tar" --batch 1
make_tar "$BAD/range.tar" "a.jpg=@$JPG" "a.cls=1" "b.jpg=@$JPG" "b.cls=7"
check_error "a label out of range" 'range\.tar: b\.cls: label 7 out of range \(expected 0\.\.2' \
    "$RESNET" data bench --data "shards:$BAD/range.tar" --batch 1 --classes 3
make_tar "$BAD/word.tar" "a.jpg=@$JPG" "a.cls=cat"
check_error "a label that is not a number" "word\.tar: a\.cls: 'cat' is not a class label" \
    "$RESNET" data bench --data "shards:$BAD/word.tar" --batch 1
: >"$BAD/zero.tar"
check_error "an empty (0-byte) shard" 'zero\.tar: empty shard' \
    "$RESNET" data bench --data "shards:$BAD/zero.tar" --batch 1
make_tar "$BAD/none.tar"
check_error "a shard without members" 'none\.tar: empty shard \(no samples' \
    "$RESNET" data bench --data "shards:$BAD/none.tar" --batch 1
make_tar "$BAD/cut.tar" "a.jpg=@$JPG" "a.cls=1" "b.jpg=@$JPG" "b.cls=2"
head -c 50000 "$BAD/cut.tar" >"$BAD/cut2.tar"
check_error "a truncated shard" 'cut2\.tar: .*[Tt]runcated' \
    "$RESNET" data bench --data "shards:$BAD/cut2.tar" --batch 1
make_tar "$BAD/gz.tar.gz" "a.jpg=@$JPG" "a.cls=1"
check_error "a compressed shard" 'gz\.tar\.gz: compressed \(gzip\) shard' \
    "$RESNET" data bench --data "shards:$BAD/gz.tar.gz" --batch 1
head -c 2000 "$JPG" >"$BAD/half.jpg"
make_tar "$BAD/corrupt.tar" "a.jpg=@$JPG" "a.cls=1" "b.jpg=@$BAD/half.jpg" "b.cls=2"
check_error "a truncated JPEG in a shard is refused, by shard and member" \
    'corrupt\.tar:b\.jpg: truncated or corrupt JPEG' \
    "$RESNET" data bench --data "shards:$BAD/corrupt.tar" --batch 2 --size 32
shard_skip() {
    "$RESNET" data bench --data "shards:$BAD/corrupt.tar" --batch 2 --size 32 --skip-bad &&
        grep -q 'warning: skipped .*corrupt\.tar:b\.jpg' "$TMP/check.err"
}
check "--skip-bad skips a bad JPEG in a shard with a warning" shard_skip
check_error "a pattern that names no file" 'nope-000000\.tar: no such shard' \
    "$RESNET" data bench --data "shards:$BAD/nope-{000000..000003}.tar" --batch 1
check_error "a bad brace range" "bad range '\{3\.\.1\}'" \
    "$RESNET" data bench --data "shards:$BAD/x-{3..1}.tar" --batch 1
check_error "a folder without the split" 'bad/val: no such folder' \
    "$RESNET" data bench --data "folder:$BAD" --split val --batch 1

# ---- memory ------------------------------------------------------------------------------
# 200 and 2000 images (copies of 20): the peak memory of one streamed epoch is the same.
peak() {
    "$RESNET" data bench --data "folder:$1" --size 96 --batch 16 --threads 2 |
        sed -n 's/^peak memory: \([0-9.]*\) MiB$/\1/p'
}
memory_bounded() {
    local n k i
    for n in 200 2000; do
        for k in 0 1; do
            mkdir -p "$TMP/mem$n/train/k$k"
            for ((i = 0; i < n / 2; i++)); do
                cp "$SET/train/c00$k/c00${k}_0000$((i % 6)).JPEG" "$TMP/mem$n/train/k$k/$i.JPEG"
            done
        done
    done
    local small big
    small=$(peak "$TMP/mem200") && big=$(peak "$TMP/mem2000") || return 1
    echo "peak memory: $small MiB with 200 images, $big MiB with 2000"
    awk -v a="$small" -v b="$big" 'BEGIN { exit !(b <= a * 1.1) }'
}
case "$RESNET" in
*build-san*) skip "memory bounded" "the sanitizer's quarantine holds freed memory" ;;
*) check "peak memory does not grow with the set (200 vs 2000 images, within 10%)" memory_bounded ;;
esac

finish
