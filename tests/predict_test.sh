#!/usr/bin/env bash
# predict_test.sh — `resnet predict` end to end against PyTorch.
#
# resnet20: the committed images tests/data/images/ (32x32 RGB PNG, 32x32 JPEG, 40x28 PNG that is
# resized, grayscale PNG) with the weights tests/data/resnet20_torch.safetensors; the expected
# top-5 classes and probabilities, tests/data/predict_expected.tsv, come from PyTorch through
# tools/gen_predict_reference.py, which documents how it follows predict's decoding, resizing
# and normalization. Same classes in the same order, each probability within TOL. Also --top,
# --labels, --mean/--std, --threads, and weights files saved by the library itself
# (rn_model_save through build/tests/save_weights), whose metadata names the model and
# normalization.
#
# resnet18-imagenet: when /usr/bin/python3 has torch and torchvision, the same script writes a
# torchvision resnet18 (fixed seed, perturbed BN statistics), a 224x224 PNG and PyTorch's
# probabilities into a temporary folder, and a 500x375 JPEG with PyTorch's top-5 through
# torchvision's evaluation transform for --preset imagenet; otherwise these cases are skipped.
#
# Environment: RESNET (the program), BUILD (build folder holding tests/save_weights),
# TORCH_PYTHON (the Python that has torch, default /usr/bin/python3).
source "$(dirname "$0")/testlib.sh"
BUILD=${BUILD:-build}
TOL=1e-5
EXPECTED=tests/data/predict_expected.tsv
WEIGHTS=tests/data/resnet20_torch.safetensors
IMG=tests/data/images
IMAGES=("$IMG/rgb32.png" "$IMG/rgb32.jpg" "$IMG/rgb40x28.png" "$IMG/gray32.png")
CIFAR_MEAN=0.4914,0.4822,0.4465
CIFAR_STD=0.2470,0.2435,0.2616
NORM_MEAN=0.5,0.5,0.5 # the "norm" case of the expected file
NORM_STD=0.25,0.25,0.25
max_diff_all=0

# compare FILE CASE TOP LABELS: compares predict's output (FILE: PATH RANK CLASS PROB per line)
# with the rows of CASE in $EXPECTED for the images FILE names, ranks 1..min(TOP, 5). LABELS is
# a label file ("-" for class indices). Prints the largest probability difference.
compare() {
    awk -F '\t' -v want_case="$2" -v top="$3" -v labels="$4" -v expected="$EXPECTED" -v tol="$TOL" '
        BEGIN {
            if (labels != "-") while ((getline line < labels) > 0) label[nl++] = line
            while ((getline line < expected) > 0) {
                if (line ~ /^#/) continue
                split(line, f, "\t")
                if (f[1] == want_case) { cls[f[2], f[3]] = f[4]; prob[f[2], f[3]] = f[5] }
            }
        }
        {
            n++
            img = $1; r = $2
            if (!((img, r) in cls)) { printf "unexpected line: %s\n", $0 > "/dev/stderr"; bad = 1; next }
            if (r > top) { printf "rank %d beyond --top %d: %s\n", r, top, $0 > "/dev/stderr"; bad = 1 }
            want = labels == "-" ? cls[img, r] : label[cls[img, r]]
            if ($3 != want) {
                printf "%s rank %d: class %s, PyTorch says %s\n", img, r, $3, want > "/dev/stderr"
                bad = 1
            }
            d = $4 - prob[img, r]; if (d < 0) d = -d
            if (d > maxd) maxd = d
            if (d > tol) {
                printf "%s rank %d: probability %s, PyTorch %s (diff %.3g)\n", img, r, $4,
                       prob[img, r], d > "/dev/stderr"
                bad = 1
            }
            seen[img] = 1
        }
        END {
            # every expected rank up to top of every image named must be there
            for (k in cls) {
                split(k, part, SUBSEP)
                if ((part[1] in seen) && part[2] <= top) want_rows++
            }
            if (n == 0) { print "no output" > "/dev/stderr"; exit 1 }
            if (n != want_rows) { printf "%d lines, expected %d\n", n, want_rows > "/dev/stderr"; bad = 1 }
            printf "%d rows, max |p - p_torch| = %.3g\n", n, maxd
            exit bad
        }' "$1"
}

# predict_matches CASE TOP LABELS PREDICT-ARGS...: runs predict and compares its output.
predict_matches() {
    local case=$1 top=$2 labels=$3
    shift 3
    "$RESNET" predict "$@" >"$TMP/out.tsv" || return 1
    local line
    line=$(compare "$TMP/out.tsv" "$case" "$top" "$labels") || return 1
    echo "$line"
    local d=${line##*= }
    max_diff_all=$(awk -v a="$max_diff_all" -v b="$d" 'BEGIN { print (b > a ? b : a) }')
}

# ---- parity with PyTorch, one image per run and all together
for img in "${IMAGES[@]}"; do
    grep -q "^default	$img	" "$EXPECTED" || { fail "expected rows for $img" "missing"; continue; }
    check "predict $(basename "$img")" predict_matches default 5 - \
        --model resnet20 --weights "$WEIGHTS" --top 5 "$img"
done
check "predict all four images" predict_matches default 5 - \
    --model resnet20 --weights "$WEIGHTS" --top 5 "${IMAGES[@]}"
check "model name from the file's metadata" predict_matches default 5 - \
    --weights "$WEIGHTS" "${IMAGES[@]}"
check "--top 3" predict_matches default 3 - --weights "$WEIGHTS" --top 3 "${IMAGES[@]}"
check "--threads 1" predict_matches default 5 - --weights "$WEIGHTS" --threads 1 "${IMAGES[@]}"

# --top 10 (all classes): the first five match, every class appears once, the sum is 1.
top_all() {
    "$RESNET" predict --weights "$WEIGHTS" --top 1000 "$IMG/rgb32.png" >"$TMP/all.tsv" || return 1
    head -n 5 "$TMP/all.tsv" >"$TMP/top5.tsv"
    compare "$TMP/top5.tsv" default 5 - >/dev/null || return 1
    awk -F '\t' '{ s += $4; c[$3]++; if ($2 != NR) bad = 1
                   if (NR > 1 && $4 > prev) bad = 1; prev = $4 }
        END { n = 0; for (k in c) if (k + 0 >= 0 && k + 0 < 10 && c[k] == 1) n++
              if (NR != 10 || n != 10 || bad || s < 1 - 1e-5 || s > 1 + 1e-5) {
                  printf "%d rows, %d distinct classes, sum %.7f\n", NR, n, s > "/dev/stderr"; exit 1 }
              printf "10 classes in decreasing order, probabilities sum to %.6f\n", s }' "$TMP/all.tsv"
}
check "--top beyond the class count" top_all

# ---- labels
printf '%s\n' airplane automobile bird cat deer dog frog horse ship truck >"$TMP/labels.txt"
check "--labels" predict_matches default 5 "$TMP/labels.txt" \
    --weights "$WEIGHTS" --labels "$TMP/labels.txt" "${IMAGES[@]}"
printf 'class %s\r\n' 0 1 2 3 4 5 6 7 8 9 10 11 >"$TMP/labels_crlf.txt" # CRLF, extra lines
printf 'class %s\n' 0 1 2 3 4 5 6 7 8 9 >"$TMP/labels_want.txt"
check "--labels with CRLF and spare lines" predict_matches default 5 "$TMP/labels_want.txt" \
    --weights "$WEIGHTS" --labels "$TMP/labels_crlf.txt" "$IMG/rgb32.png"

# ---- normalization
check "--mean/--std" predict_matches norm 5 - \
    --weights "$WEIGHTS" --mean "$NORM_MEAN" --std "$NORM_STD" "${IMAGES[@]}"
check "--mean/--std giving the defaults" predict_matches default 5 - \
    --weights "$WEIGHTS" --mean "$CIFAR_MEAN" --std "$CIFAR_STD" "${IMAGES[@]}"

# ---- weights saved by the library (metadata: model, geometry, mean, std)
SAVE="$BUILD/tests/save_weights"
if [ -x "$SAVE" ]; then
    if "$SAVE" resnet20 "$WEIGHTS" "$TMP/ours_default.safetensors" &&
        "$SAVE" resnet20 "$WEIGHTS" "$TMP/ours_norm.safetensors" "$NORM_MEAN" "$NORM_STD"; then
        check "our file, metadata path" predict_matches default 5 - \
            --weights "$TMP/ours_default.safetensors" "${IMAGES[@]}"
        check "our file with --model" predict_matches default 5 - \
            --model resnet20 --weights "$TMP/ours_default.safetensors" "${IMAGES[@]}"
        check "our file's mean/std metadata" predict_matches norm 5 - \
            --weights "$TMP/ours_norm.safetensors" "${IMAGES[@]}"
        check "--mean/--std override the metadata" predict_matches default 5 - \
            --weights "$TMP/ours_norm.safetensors" --mean "$CIFAR_MEAN" --std "$CIFAR_STD" \
            "${IMAGES[@]}"
    else
        fail "save_weights" "could not write weights files"
    fi
    # class names: the weights' metadata, --labels over it, classes.txt beside the weights
    printf '%s\n' airplane automobile bird cat deer dog frog horse ship truck >"$TMP/cifar.txt"
    printf 'T-shirt/top\nTrouser\nPullover\nDress\nCoat\nSandal\nShirt\nSneaker\nBag\nAnkle boot\n' \
        >"$TMP/fashion.txt"
    mkdir -p "$TMP/run"
    if "$SAVE" resnet20 "$WEIGHTS" "$TMP/named.safetensors" --names "$TMP/fashion.txt" &&
        cp "$TMP/ours_default.safetensors" "$TMP/run/best.safetensors" &&
        cp "$TMP/cifar.txt" "$TMP/run/classes.txt"; then
        check "class names from the weights' metadata" predict_matches default 5 "$TMP/fashion.txt" \
            --weights "$TMP/named.safetensors" "${IMAGES[@]}"
        check "--labels over the metadata's names" predict_matches default 5 "$TMP/cifar.txt" \
            --weights "$TMP/named.safetensors" --labels "$TMP/cifar.txt" "${IMAGES[@]}"
        check "class names from classes.txt beside the weights" predict_matches default 5 \
            "$TMP/cifar.txt" --weights "$TMP/run/best.safetensors" "${IMAGES[@]}"
        cp "$TMP/named.safetensors" "$TMP/run/best.safetensors"
        check "the metadata's names over classes.txt" predict_matches default 5 "$TMP/fashion.txt" \
            --weights "$TMP/run/best.safetensors" "${IMAGES[@]}"
        printf 'a\nb\n' >"$TMP/run/classes.txt"
        cp "$TMP/ours_default.safetensors" "$TMP/run/best.safetensors"
        check "a classes.txt of another class count is not used" predict_matches default 5 - \
            --weights "$TMP/run/best.safetensors" "${IMAGES[@]}"
    else
        fail "save_weights --names" "could not write the weights or the run folder"
    fi
else
    fail "save_weights" "$SAVE not built (make tests)"
fi

# ---- every format of the one list: the same pixels as BMP, PPM and PGM predict as the PNG does
formats() {
    /usr/bin/python3 - "$IMG" "$TMP" <<'PY' || return 1
import sys
from PIL import Image
src, out = sys.argv[1], sys.argv[2]
Image.open(f"{src}/rgb32.png").save(f"{out}/rgb32.bmp")
Image.open(f"{src}/rgb32.png").save(f"{out}/rgb32.ppm")
Image.open(f"{src}/gray32.png").save(f"{out}/gray32.pgm")
PY
    "$RESNET" predict --weights "$WEIGHTS" "$IMG/rgb32.png" "$IMG/gray32.png" |
        cut -f 2- >"$TMP/png.tsv" || return 1
    "$RESNET" predict --weights "$WEIGHTS" "$TMP/rgb32.bmp" "$TMP/gray32.pgm" |
        cut -f 2- >"$TMP/other.tsv" || return 1
    "$RESNET" predict --weights "$WEIGHTS" "$TMP/rgb32.ppm" | cut -f 2- >"$TMP/ppm.tsv" || return 1
    diff "$TMP/png.tsv" "$TMP/other.tsv" >&2 && diff <(head -n 5 "$TMP/png.tsv") "$TMP/ppm.tsv" >&2 &&
        echo "BMP, PPM and PGM give the PNG's $(wc -l <"$TMP/png.tsv") lines"
}
if /usr/bin/python3 -c "import PIL" 2>/dev/null; then
    check "BMP, PPM, PGM images" formats
else
    skip "BMP, PPM, PGM images" "/usr/bin/python3 cannot import PIL to write them"
fi

# ---- a bad image among good ones: the others are still classified, the status is 1
mixed() {
    "$RESNET" predict --weights "$WEIGHTS" "$IMG/rgb32.png" "$TMP/none.png" "$IMG/gray32.png" \
        >"$TMP/out.tsv" 2>"$TMP/err.txt"
    local rc=$?
    [ "$rc" -eq 1 ] || { echo "exit status $rc, expected 1" >&2; return 1; }
    [ "$(wc -l <"$TMP/err.txt")" -eq 1 ] && grep -q "none.png: cannot open" "$TMP/err.txt" ||
        { echo "stderr: $(cat "$TMP/err.txt")" >&2; return 1; }
    compare "$TMP/out.tsv" default 5 -
}
check "bad image among good ones" mixed

# ---- resnet18-imagenet through torchvision (optional)
TORCH_PYTHON=${TORCH_PYTHON:-/usr/bin/python3}
if "$TORCH_PYTHON" -c "import torch, torchvision" 2>/dev/null; then
    if "$TORCH_PYTHON" tools/gen_predict_reference.py --imagenet "$TMP" >"$TMP/gen.log" 2>&1; then
        imagenet() {
            "$RESNET" predict --model resnet18-imagenet --weights "$TMP/resnet18_imagenet.safetensors" \
                "$TMP/imagenet224.png" >"$TMP/out.tsv" || return 1
            EXPECTED="$TMP/expected.tsv" compare "$TMP/out.tsv" imagenet 5 -
        }
        check "resnet18-imagenet (torchvision)" imagenet
        preset() {
            "$RESNET" predict --model resnet18-imagenet --preset imagenet \
                --weights "$TMP/resnet18_imagenet.safetensors" "$TMP/photo.jpg" >"$TMP/out.tsv" ||
                return 1
            EXPECTED="$TMP/expected_preset.tsv" compare "$TMP/out.tsv" preset 5 -
        }
        check "--preset imagenet on a 500x375 JPEG = torchvision's Resize+CenterCrop" preset
        d=$(tail -n 1 "$TMP/check.out")
        d=${d##*= }
        max_diff_all=$(awk -v a="$max_diff_all" -v b="$d" 'BEGIN { print (b > a ? b : a) }')
    else
        fail "resnet18-imagenet reference" "$(tail -n 1 "$TMP/gen.log")"
    fi
else
    skip "resnet18-imagenet (torchvision)" "$TORCH_PYTHON cannot import torch and torchvision"
fi

echo "max |p - p_torch| over every comparison: $max_diff_all (tolerance $TOL)"
finish
