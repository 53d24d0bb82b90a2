#!/usr/bin/env bash
# bad_input_test.sh — `resnet predict` on broken weights files, broken images and bad option
# values: each must fail with a non-zero exit status (no crash, no sanitizer report), print
# nothing on stdout and exactly one line on stderr naming the file (or option) and what is
# wrong. The broken files are made here from tests/data/resnet20_torch.safetensors and the
# committed images, mostly by rewriting the JSON header with sed. `make SANITIZE=1 test` runs
# this against the AddressSanitizer + UBSan build.
# Environment: RESNET (the program), BUILD (build folder holding tests/save_weights).
source "$(dirname "$0")/testlib.sh"
BUILD=${BUILD:-build}
W=tests/data/resnet20_torch.safetensors
IMG=tests/data/images/rgb32.png
B=$TMP # broken files go here

# u64le N: N as 8 little-endian bytes (the safetensors header length).
u64le() {
    local i
    for i in 0 1 2 3 4 5 6 7; do
        printf "\\$(printf '%03o' $((($1 >> (8 * i)) & 255)))"
    done
}

header_len() { od -An -t u8 -N 8 "$1" | tr -d ' '; }

# st_edit SRC DST SED-SCRIPT: DST is SRC with its JSON header rewritten by sed (the length is
# updated and the header padded to a multiple of 8 bytes; the data section is copied as is).
st_edit() {
    local n header
    n=$(header_len "$1")
    header=$(tail -c +9 "$1" | head -c "$n" | sed -e "$3")
    while [ $((${#header} % 8)) -ne 0 ]; do header+=" "; done
    { u64le ${#header}; printf '%s' "$header"; tail -c +$((9 + n)) "$1"; } >"$2"
}

# st_len SRC DST N: DST is SRC with its header length field replaced by N.
st_len() { { u64le "$3"; tail -c +9 "$1"; } >"$2"; }

predict() { "$RESNET" predict "$@"; }

HLEN=$(header_len "$W")
st_edit "$W" "$B/same.st" ''
if ! cmp -s "$W" "$B/same.st"; then
    fail "header rewriting" "an empty edit changed the file"
    finish
    exit 1
fi

# ---- weights files: the container
head -c 5 "$W" >"$B/short.st"
check_error "file shorter than 8 bytes" "short.st: file is 5 bytes, shorter than the 8-byte" \
    predict --weights "$B/short.st" "$IMG"
: >"$B/empty.st"
check_error "empty weights file" "empty.st: file is 0 bytes" predict --weights "$B/empty.st" "$IMG"
head -c 5000 "$W" >"$B/cut_header.st"
check_error "truncated inside the header" \
    "cut_header.st: header length $HLEN is larger than the 4992 bytes that follow" \
    predict --weights "$B/cut_header.st" "$IMG"
head -c $((8 + HLEN + 100000)) "$W" >"$B/cut_data.st"
check_error "truncated inside the data" \
    "cut_data.st: tensor '[^']*': data_offsets .* go beyond the data section of 100000 bytes \(truncated file\?\)" \
    predict --weights "$B/cut_data.st" "$IMG"
st_len "$W" "$B/len_huge.st" 18446744073709551615
check_error "header length 2^64-1" "len_huge.st: header length 18446744073709551615 is absurd" \
    predict --weights "$B/len_huge.st" "$IMG"
st_len "$W" "$B/len_big.st" $((HLEN + 2000000))
check_error "header length past the end" "len_big.st: header length [0-9]+ is larger than" \
    predict --weights "$B/len_big.st" "$IMG"
st_len "$W" "$B/len_zero.st" 0
check_error "header length 0" "len_zero.st: header is not valid JSON" \
    predict --weights "$B/len_zero.st" "$IMG"
st_len "$W" "$B/len_short.st" 100
check_error "header length cuts the JSON" "len_short.st: header is not valid JSON" \
    predict --weights "$B/len_short.st" "$IMG"
st_len "$W" "$B/len_long.st" $((HLEN + 8))
check_error "header length takes in data bytes" "len_long.st: header is not valid JSON: end of file expected" \
    predict --weights "$B/len_long.st" "$IMG"

# ---- weights files: the JSON header
st_edit "$W" "$B/json.st" 's/^{"__metadata__":{/{"__metadata__":{{/'
check_error "bad JSON" "json.st: header is not valid JSON: string or '}' expected near '\{' \(at header byte 18\)" \
    predict --weights "$B/json.st" "$IMG"
st_edit "$W" "$B/json_end.st" 's/}} *$/}/'
check_error "JSON cut short" "json_end.st: header is not valid JSON" \
    predict --weights "$B/json_end.st" "$IMG"
st_edit "$W" "$B/json_array.st" 's/.*/[1,2,3]/'
check_error "JSON array" "json_array.st: header is a JSON array, expected an object" \
    predict --weights "$B/json_array.st" "$IMG"
st_edit "$W" "$B/utf8.st" 's/"torch_version"/"torch_\xff\xfeversion"/'
check_error "header not UTF-8" "utf8.st: header is not valid UTF-8" \
    predict --weights "$B/utf8.st" "$IMG"
st_edit "$W" "$B/meta_obj.st" 's/"torch_version":"[^"]*"/"torch_version":{}/'
check_error "metadata value not a string" "meta_obj.st: __metadata__ 'torch_version' is a JSON object" \
    predict --weights "$B/meta_obj.st" "$IMG"
st_edit "$W" "$B/off_range.st" 's/"bn1.bias":{"data_offsets":\[0,64\]/"bn1.bias":{"data_offsets":[0,99999999]/'
check_error "offsets out of range" \
    "off_range.st: tensor 'bn1.bias': data_offsets \[0, 99999999\] go beyond the data section" \
    predict --weights "$B/off_range.st" "$IMG"
st_edit "$W" "$B/off_2e53.st" 's/"bn1.bias":{"data_offsets":\[0,64\]/"bn1.bias":{"data_offsets":[0,18446744073709551616]/'
check_error "offset beyond 2^64" "off_2e53.st: header is not valid JSON: too big integer" \
    predict --weights "$B/off_2e53.st" "$IMG"
st_edit "$W" "$B/off_neg.st" 's/"bn1.bias":{"data_offsets":\[0,64\]/"bn1.bias":{"data_offsets":[-64,64]/'
check_error "negative offset" "off_neg.st: tensor 'bn1.bias': data_offsets\[0\] = -64 is negative" \
    predict --weights "$B/off_neg.st" "$IMG"
st_edit "$W" "$B/off_rev.st" 's/"bn1.bias":{"data_offsets":\[0,64\]/"bn1.bias":{"data_offsets":[64,0]/'
check_error "offsets reversed" "off_rev.st: tensor 'bn1.bias': data_offsets \[64, 0\] end before they begin" \
    predict --weights "$B/off_rev.st" "$IMG"
st_edit "$W" "$B/off_size.st" 's/\("bn1.bias":{[^}]*"shape":\)\[16\]/\1[17]/'
check_error "offsets disagree with the shape" \
    "off_size.st: tensor 'bn1.bias': data_offsets \[0, 64\] hold 64 bytes but shape \[17\] of F32 needs 68" \
    predict --weights "$B/off_size.st" "$IMG"
st_edit "$W" "$B/overlap.st" 's/"bn1.running_mean":{"data_offsets":\[72,136\]/"bn1.running_mean":{"data_offsets":[0,64]/'
check_error "overlapping tensors" "overlap.st: tensors '[^']*' .* and '[^']*' .* overlap" \
    predict --weights "$B/overlap.st" "$IMG"
st_edit "$W" "$B/dup.st" 's/"bn1.bias":{"data_offsets":\[0,64\],"dtype":"F32","shape":\[16\]},/&&/'
check_error "tensor named twice" "dup.st: header is not valid JSON: duplicate object key near '\"bn1.bias\"'" \
    predict --weights "$B/dup.st" "$IMG"
st_edit "$W" "$B/dtype_unknown.st" 's/\("bn1.bias":{[^}]*"dtype":\)"F32"/\1"Q32"/'
check_error "unknown dtype" "dtype_unknown.st: tensor 'bn1.bias': unknown dtype \"Q32\"" \
    predict --weights "$B/dtype_unknown.st" "$IMG"

# ---- weights files: tensors that do not fit the model
st_edit "$W" "$B/dtype.st" 's/\("layer1.0.conv1.weight":{[^}]*"dtype":\)"F32"/\1"I32"/'
check_error "wrong dtype (I32 weights)" \
    "dtype.st: tensor 'layer1.0.conv1.weight' has dtype I32 \(expected F32, F16, BF16 or F64\)" \
    predict --weights "$B/dtype.st" "$IMG"
st_edit "$W" "$B/dtype_counter.st" 's/\("bn1.num_batches_tracked":{[^}]*"dtype":\)"I64"/\1"F64"/'
check_error "wrong dtype (F64 counter)" \
    "dtype_counter.st: tensor 'bn1.num_batches_tracked' has dtype F64 \(expected I64\)" \
    predict --weights "$B/dtype_counter.st" "$IMG"
st_edit "$W" "$B/shape.st" 's/\("linear.weight":{[^}]*"shape":\)\[10,64\]/\1[64,10]/'
check_error "wrong shape for the model" \
    "shape.st: tensor 'linear.weight' has shape \[64,10\] \(model resnet20 expects \[10,64\]\)" \
    predict --weights "$B/shape.st" "$IMG"
check_error "wrong shape, --model" "shape.st: tensor 'linear.weight' has shape \[64,10\]" \
    predict --model resnet20 --weights "$B/shape.st" "$IMG"
st_edit "$W" "$B/missing.st" 's/"linear.bias":/"linear.bias_":/'
check_error "missing key" \
    "missing.st: missing tensor 'linear.bias' \(model resnet20 expects it with shape \[10\]\)" \
    predict --weights "$B/missing.st" "$IMG"
st_edit "$W" "$B/extra.st" 's/^{"__metadata__":{[^}]*},/&"extra":{"data_offsets":[0,0],"dtype":"F32","shape":[0]},/'
check_error "unexpected key" "extra.st: unexpected tensor 'extra' \(model resnet20 has no such key\)" \
    predict --weights "$B/extra.st" "$IMG"
cp "$W" "$B/nan.st"
printf '\377\377\377\177' | dd of="$B/nan.st" bs=1 seek=$((8 + HLEN)) conv=notrunc 2>/dev/null
check_error "a NaN weight" "rgb32.png: the model's output is not finite \(NaN or Inf\): check the weights .*nan.st" \
    predict --weights "$B/nan.st" "$IMG"

# ---- weights files: metadata
st_edit "$W" "$B/unknown_model.st" 's/"model":"resnet20"/"model":"resnet21"/'
check_error "unknown model in the metadata" "unknown_model.st: metadata: unknown model 'resnet21'" \
    predict --weights "$B/unknown_model.st" "$IMG"
st_edit "$W" "$B/other_model.st" 's/"model":"resnet20"/"model":"resnet32"/'
check_error "metadata names another model" "other_model.st: holds weights of model 'resnet32', not 'resnet20'" \
    predict --model resnet20 --weights "$B/other_model.st" "$IMG"
check_error "metadata model lacks tensors" "other_model.st: missing tensor 'layer1.3.conv1.weight' \(model resnet32" \
    predict --weights "$B/other_model.st" "$IMG"
st_edit "$W" "$B/no_model.st" 's/"model":"resnet20",//'
check_error "no model anywhere" "no_model.st: no model name in the metadata \(name the model" \
    predict --weights "$B/no_model.st" "$IMG"
st_edit "$W" "$B/meta_norm.st" 's/"model":"resnet20"/"model":"resnet20","mean":"0.5,0.5","std":"1,1,1"/'
check_error "metadata mean of 2 values" "meta_norm.st: metadata mean '0.5,0.5' / std '1,1,1': expected 3 comma-separated decimal numbers" \
    predict --weights "$B/meta_norm.st" "$IMG"
st_edit "$W" "$B/meta_std.st" 's/"model":"resnet20"/"model":"resnet20","mean":"0.5,0.5,0.5","std":"1,0,1"/'
check_error "metadata std of 0" "meta_std.st: metadata std '1,0,1': every value must be positive" \
    predict --weights "$B/meta_std.st" "$IMG"
st_edit "$W" "$B/meta_int.st" 's/"model":"resnet20"/"model":"resnet20","num_classes":"abc"/'
check_error "metadata num_classes 'abc'" "meta_int.st: metadata num_classes is 'abc' \(expected an integer in \[1, 1000000\], decimal digits only\)" \
    predict --weights "$B/meta_int.st" "$IMG"
check_error "metadata num_classes 'abc', --model" "meta_int.st: metadata num_classes is 'abc'" \
    predict --model resnet20 --weights "$B/meta_int.st" "$IMG"
st_edit "$W" "$B/meta_neg.st" 's/"model":"resnet20"/"model":"resnet20","in_channels":"-3"/'
check_error "metadata in_channels -3, --model" "meta_neg.st: metadata in_channels is '-3'" \
    predict --model resnet20 --weights "$B/meta_neg.st" "$IMG"
st_edit "$W" "$B/meta_size.st" 's/"model":"resnet20"/"model":"resnet20","in_height":"1"/'
check_error "metadata in_height 1" "meta_size.st: metadata: resnet20: input size 1x32" \
    predict --weights "$B/meta_size.st" "$IMG"
check_error "metadata in_height 1, --model" "meta_size.st: metadata: resnet20: input size 1x32" \
    predict --model resnet20 --weights "$B/meta_size.st" "$IMG"
st_edit "$W" "$B/meta_classes.st" 's/"model":"resnet20"/"model":"resnet20","num_classes":"100"/'
check_error "metadata num_classes disagrees with the tensors" \
    "meta_classes.st: tensor 'linear.weight' has shape \[10,64\] \(model resnet20 expects \[100,64\]\)" \
    predict --weights "$B/meta_classes.st" "$IMG"
SAVE="$BUILD/tests/save_weights"
if [ -x "$SAVE" ] && "$SAVE" resnet32 - "$B/resnet32.st"; then
    check_error "weights of another model (saved by us)" \
        "resnet32.st: holds weights of model 'resnet32', not 'resnet20'" \
        predict --model resnet20 --weights "$B/resnet32.st" "$IMG"
    check_error "weights of another model, --model imagenet" \
        "resnet32.st: holds weights of model 'resnet32', not 'resnet18-imagenet'" \
        predict --model resnet18-imagenet --weights "$B/resnet32.st" "$IMG"
else
    fail "save_weights" "$SAVE missing or failed (make tests)"
fi
check_error "unknown --model" "unknown model 'resnet21'" predict --model resnet21 --weights "$W" "$IMG"
check_error "empty --model" "unknown model ''" predict --model '' --weights "$W" "$IMG"
check_error "weights file missing" "$B/none.st: cannot open: No such file or directory" \
    predict --weights "$B/none.st" "$IMG"
check_error "weights path is a directory" "$B: is a directory" predict --weights "$B" "$IMG"
check_error "weights path is a directory, --model" "$B: is a directory" \
    predict --model resnet20 --weights "$B" "$IMG"
check_error "an image as weights" "rgb32.png: header length [0-9]+ is absurd" \
    predict --weights "$IMG" "$IMG"

# ---- images
check_error "image missing" "$B/none.png: cannot open: No such file or directory" \
    predict --weights "$W" "$B/none.png"
check_error "image path is a directory" "$B: is a directory, expected a PNG, JPEG, BMP, PGM or PPM image" \
    predict --weights "$W" "$B"
: >"$B/empty.png"
check_error "empty image file" "empty.png: empty file, expected a PNG, JPEG, BMP, PGM or PPM image" \
    predict --weights "$W" "$B/empty.png"
printf 'airplane\nautomobile\n' >"$B/text.png"
check_error "text file as image" "text.png: not a readable image \(expected PNG, JPEG, BMP, PGM or PPM\)" predict --weights "$W" "$B/text.png"
check_error "weights file as image" "resnet20_torch.safetensors: not a readable image" \
    predict --weights "$W" "$W"
printf 'RIFF\044\000\000\000WEBPVP8 ' >"$B/photo.webp" # the first bytes of a WebP file
check_error "WebP image" \
    "photo.webp: a WebP image, which is not read \(expected PNG, JPEG, BMP, PGM or PPM\)" \
    predict --weights "$W" "$B/photo.webp"
printf 'GIF89a\001\000\001\000' >"$B/anim.gif"
check_error "GIF image" "anim.gif: a GIF image, which is not read \(expected PNG, JPEG, BMP, PGM or PPM\)" \
    predict --weights "$W" "$B/anim.gif"
head -c 100 "$IMG" >"$B/cut.png"
check_error "truncated PNG" "cut.png: cannot decode image" predict --weights "$W" "$B/cut.png"
head -c 33 "$IMG" >"$B/header_only.png"
check_error "PNG of only its header" "header_only.png: cannot decode image \(PNG: no IEND chunk; truncated\)" \
    predict --weights "$W" "$B/header_only.png"
head -c 300 tests/data/images/rgb32.jpg >"$B/cut.jpg"
check_error "truncated JPEG" "cut.jpg: cannot decode image" predict --weights "$W" "$B/cut.jpg"
head -c 10 tests/data/images/rgb32.jpg >"$B/stub.jpg"
check_error "10-byte JPEG" "stub.jpg: not a readable image" predict --weights "$W" "$B/stub.jpg"
cp "$IMG" "$B/huge.png" # IHDR width and height (bytes 16..23) set to 30000 x 30000
printf '\000\000\165\060\000\000\165\060' | dd of="$B/huge.png" bs=1 seek=16 conv=notrunc 2>/dev/null
check_error "PNG claiming 30000x30000" "huge.png: " predict --weights "$W" "$B/huge.png"

# ---- hardening: FIFOs, strict metadata, PNG CRCs, long names
# A FIFO as weights, image or labels: refused at once (opening one blocks until a writer comes;
# timeout turns such a hang into a failure).
mkfifo "$B/fifo.st" "$B/fifo.png" "$B/fifo.txt"
predict_t() { timeout 20 "$RESNET" predict "$@"; }
check_error "weights file is a FIFO" "fifo.st: is a FIFO \(named pipe\), expected a file" \
    predict_t --weights "$B/fifo.st" "$IMG"
check_error "image is a FIFO" "fifo.png: is a FIFO \(named pipe\), expected a PNG, JPEG, BMP, PGM or PPM image" \
    predict_t --weights "$W" "$B/fifo.png"
check_error "labels file is a FIFO" "fifo.txt: not a regular file, expected the labels file" \
    predict_t --weights "$W" --labels "$B/fifo.txt" "$IMG"
check_error "weights file is a device" "/dev/zero: is a character device, expected a file" \
    predict_t --weights /dev/zero "$IMG"
# Metadata numbers: finite in float, strictly decimal.
st_edit "$W" "$B/meta_std_big.st" 's/"model":"resnet20"/"model":"resnet20","mean":"0.5,0.5,0.5","std":"1e40,1,1"/'
check_error "metadata std 1e40 (infinite as a float)" "meta_std_big.st: metadata mean .* std '1e40,1,1': .*within the float range" \
    predict --weights "$B/meta_std_big.st" "$IMG"
st_edit "$W" "$B/meta_mean_hex.st" 's/"model":"resnet20"/"model":"resnet20","mean":"0x1,0,0","std":"1,1,1"/'
check_error "metadata mean in hex" "meta_mean_hex.st: metadata mean '0x1,0,0'" \
    predict --weights "$B/meta_mean_hex.st" "$IMG"
st_edit "$W" "$B/meta_mean_space.st" 's/"model":"resnet20"/"model":"resnet20","mean":" 0.5,0.5,0.5","std":"1,1,1"/'
check_error "metadata mean with a space" "meta_mean_space.st: metadata mean ' 0.5,0.5,0.5'" \
    predict --weights "$B/meta_mean_space.st" "$IMG"
st_edit "$W" "$B/meta_int_space.st" 's/"model":"resnet20"/"model":"resnet20","in_channels":" 3"/'
check_error "metadata in_channels ' 3'" "meta_int_space.st: metadata in_channels is ' 3' \(expected an integer" \
    predict --weights "$B/meta_int_space.st" "$IMG"
st_edit "$W" "$B/meta_int_hex.st" 's/"model":"resnet20"/"model":"resnet20","num_classes":"0x10"/'
check_error "metadata num_classes '0x10', --model" "meta_int_hex.st: metadata num_classes is '0x10'" \
    predict --model resnet20 --weights "$B/meta_int_hex.st" "$IMG"
# The header as strict as the reference reader.
st_edit "$W" "$B/dup_dtype.st" 's/"bn1.bias":{"data_offsets":\[0,64\],"dtype":"F32"/&,"dtype":"F16"/'
check_error "a repeated \"dtype\" key" "dup_dtype.st: header is not valid JSON: duplicate object key near '\"dtype\"'" \
    predict --weights "$B/dup_dtype.st" "$IMG"
st_edit "$W" "$B/nul_name.st" 's/"bn1.bias":/"bn1.bias\\u0000x":/'
check_error "\\u0000 in a tensor name" "nul_name.st: header is not valid JSON: NUL byte in object key" \
    predict --weights "$B/nul_name.st" "$IMG"
n=$((HLEN + 8)); { u64le "$n"; printf '\357\273\277'; tail -c +9 "$W" | head -c "$HLEN"; printf '     '; tail -c +$((9 + HLEN)) "$W"; } >"$B/bom.st"
check_error "a byte-order mark before the header" "bom.st: header is not valid JSON: invalid token near" \
    predict --weights "$B/bom.st" "$IMG"
{ u64le "$HLEN"; tail -c +9 "$W" | head -c "$HLEN" | sed 's/ *$//' | tr -d '\n'; } >"$B/nul_pad.st"
while [ $(($(stat -c %s "$B/nul_pad.st") - 8)) -lt "$HLEN" ]; do printf '\000' >>"$B/nul_pad.st"; done
tail -c +$((9 + HLEN)) "$W" >>"$B/nul_pad.st"
check_error "raw NUL bytes in the header" "nul_pad.st: header is not valid JSON" \
    predict --weights "$B/nul_pad.st" "$IMG"
cp "$W" "$B/trailing.st"
printf 'x' >>"$B/trailing.st"
check_error "bytes after the last tensor" "trailing.st: the tensors end at data offset [0-9]+, but the data section has [0-9]+ bytes" \
    predict --weights "$B/trailing.st" "$IMG"
st_edit "$W" "$B/real_shape.st" 's/\("bn1.bias":{[^}]*"shape":\)\[16\]/\1[16.0]/'
check_error "a shape written as a real number" "real_shape.st: tensor 'bn1.bias': shape\[0\] = 16 is a real number, not an integer" \
    predict --weights "$B/real_shape.st" "$IMG"
# PNG chunk CRCs: one flipped bit inside IDAT.
cp "$IMG" "$B/flip.png"
at=$(grep -obUa "IDAT" "$IMG" | head -1 | cut -d: -f1)
byte=$(od -An -t u1 -j $((at + 20)) -N 1 "$IMG" | tr -d ' ')
printf "\\$(printf '%03o' $((byte ^ 16)))" | dd of="$B/flip.png" bs=1 seek=$((at + 20)) conv=notrunc 2>/dev/null
check_error "PNG with a flipped bit in IDAT" "flip.png: cannot decode image \(PNG: chunk IDAT at byte [0-9]+ has CRC 0x[0-9a-f]+, its contents give 0x[0-9a-f]+; corrupt\)" \
    predict --weights "$W" "$B/flip.png"
# A 100,000-character file name is echoed cut to about 60 characters.
long=$(head -c 100000 /dev/zero | tr '\0' 'a')
check_error "a 100000-character weights name" "^resnet: a{30}\.\.\.a{30}: cannot open: File name too long$" \
    predict --weights "$long" "$IMG"

# ---- options
check_error "--top 0" "--top: expected an integer in \[1, 100000\], got '0'" predict --weights "$W" --top 0 "$IMG"
check_error "--top -1" "--top: .*got '-1'" predict --weights "$W" --top -1 "$IMG"
check_error "--top abc" "--top: .*got 'abc'" predict --weights "$W" --top abc "$IMG"
check_error "--top 1e3" "--top: .*got '1e3'" predict --weights "$W" --top 1e3 "$IMG"
check_error "--top empty" "--top: .*got ''" predict --weights "$W" --top '' "$IMG"
check_error "--top too large" "--top: .*got '100001'" predict --weights "$W" --top 100001 "$IMG"
check_error "--mean of 2 values" "--mean/--std: expected 3 values \(one per input channel\)" \
    predict --weights "$W" --mean 0.5,0.5 "$IMG"
check_error "--mean of 5 values" "--mean: expected up to 4 comma-separated numbers, got '1,2,3,4,5'" \
    predict --weights "$W" --mean 1,2,3,4,5 "$IMG"
check_error "--mean a,b,c" "--mean: .*got 'a,b,c'" predict --weights "$W" --mean a,b,c "$IMG"
check_error "--mean empty" "--mean: .*got ''" predict --weights "$W" --mean '' "$IMG"
check_error "--mean empty field" "--mean: .*got '0.5,,0.5'" predict --weights "$W" --mean 0.5,,0.5 "$IMG"
check_error "--mean trailing comma" "--mean: .*got '0.5,0.5,0.5,'" \
    predict --weights "$W" --mean 0.5,0.5,0.5, "$IMG"
check_error "--mean nan" "--mean: .*got 'nan,0,0'" predict --weights "$W" --mean nan,0,0 "$IMG"
check_error "--mean 1e39 (beyond float)" "--mean: .*got '1e39,0,0'" predict --weights "$W" --mean 1e39,0,0 "$IMG"
check_error "--std 0" "--std: every value must be positive" predict --weights "$W" --std 0,1,1 "$IMG"
check_error "--std negative" "--std: every value must be positive" predict --weights "$W" --std 1,-1,1 "$IMG"
check_error "--std of 2 values" "--mean/--std: expected 3 values" predict --weights "$W" --std 1,1 "$IMG"
check_error "--std inf" "--std: .*got 'inf,1,1'" predict --weights "$W" --std inf,1,1 "$IMG"
check_error "--std 1e-45 (output not finite)" "rgb32.png: the model's output is not finite" \
    predict --weights "$W" --std 1e-45,1,1 "$IMG"
check_error "--threads -1" "--threads: .*got '-1'" predict --weights "$W" --threads -1 "$IMG"
check_error "--labels missing" "$B/none.txt: cannot open the labels file: No such file or directory" \
    predict --weights "$W" --labels "$B/none.txt" "$IMG"
check_error "--labels a directory" "$B: cannot read the labels file: Is a directory" \
    predict --weights "$W" --labels "$B" "$IMG"
printf 'airplane\nautomobile\n' >"$B/labels2.txt"
check_error "--labels too few" "labels2.txt: 2 labels, the model has 10 classes" \
    predict --weights "$W" --labels "$B/labels2.txt" "$IMG"
check_error "missing --weights" "predict: --weights FILE is required" predict "$IMG"
check_error "no images" "predict: no image files given" predict --weights "$W"
check_error "nothing at all" "predict: --weights FILE is required" predict
check_error "unknown option" "predict: unknown option '--weightz'" predict --weightz "$W" "$IMG"
check_error "missing option value" "predict: option '--weights' needs a value" predict --weights

finish
