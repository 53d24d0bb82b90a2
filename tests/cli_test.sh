#!/usr/bin/env bash
# cli_test.sh — `resnet info` end to end: parameter counts and multiply-adds of the zoo's models
# (the numbers PyTorch gives: sum of p.numel() over parameters, and conv + linear multiply-adds
# counted with forward hooks on the models of tools/torch_models.py), the geometry options, and
# clean one-line failures for unknown models, options and bad option values.
# Environment: RESNET (the program, default ./resnet).
source "$(dirname "$0")/testlib.sh"

# commas N: N with thousands separators (1234567 -> 1,234,567).
commas() { printf '%s' "$1" | sed ':a; s/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/; ta'; }

# info_counts PARAMS MACS MODEL [OPTIONS...]: the last two lines are exactly "params: PARAMS"
# and "macs: MACS multiply-adds per image (M.MM U)", the numbers with thousands separators.
info_counts() {
    local params=$1 macs=$2
    shift 2
    local out
    out=$("$RESNET" info "$@") || return 1
    local got want
    got=$(printf '%s\n' "$out" | tail -n 2 | tr '\n' ' ')
    want="params: $(commas "$params") macs: $(commas "$macs") multiply-adds per image "
    if [ "${got%(*}" != "$want" ] || ! [[ "$got" =~ \([0-9.]+\ [kMG]?\)\ $ ]]; then
        echo "got '$got', expected '$want(N U)'" >&2
        return 1
    fi
    echo "$got"
}

# info_has MODEL OPTIONS... -- REGEX...: every REGEX matches some line of the output.
info_has() {
    local args=()
    while [ "$1" != "--" ]; do
        args+=("$1")
        shift
    done
    shift
    local out
    out=$("$RESNET" info "${args[@]}") || return 1
    for re in "$@"; do
        if ! printf '%s\n' "$out" | grep -Eq -- "$re"; then
            echo "no line matches /$re/" >&2
            return 1
        fi
    done
    echo "matched ${#@} lines"
}

# The layer table: a header, one row per op, then the totals; the params column adds up.
info_table_sums() {
    local out
    out=$("$RESNET" info "$1") || return 1
    printf '%s\n' "$out" | awk '
        /^params: / { gsub(/,/, "", $2); total = $2 + 0 }
        /^macs: / { gsub(/,/, "", $2); total_macs = $2 + 0 }
        NF == 5 && $3 ~ /^[0-9]+x[0-9]+x[0-9]+$/ {
            gsub(/,/, "", $4); gsub(/,/, "", $5); p += $4; m += $5; rows++ }
        END {
            if (rows < 10 || p != total || m != total_macs) {
                printf "rows %d, params column sums to %.0f (total %.0f), macs to %.0f (total %.0f)\n",
                       rows, p, total, m, total_macs > "/dev/stderr"
                exit 1
            }
            printf "%d rows; columns sum to params %.0f, macs %.0f\n", rows, p, m
        }'
}

# ---- counts of the zoo's models at their default geometry
check "info resnet20" info_counts 269722 40551040 resnet20
check "info resnet56" info_counts 853018 125485696 resnet56
check "info resnet110" info_counts 1727962 252887680 resnet110
check "info resnet18" info_counts 11173962 555422720 resnet18
check "info resnet18-imagenet" info_counts 11689512 1814073344 resnet18-imagenet
check "info resnet50-imagenet" info_counts 25557032 4089184256 resnet50-imagenet
check "info resnet20 table sums" info_table_sums resnet20
check "info resnet50-imagenet table sums" info_table_sums resnet50-imagenet
check "info resnet20 header and rows" info_has resnet20 -- \
    '^resnet20: input 3x32x32, 10 classes$' '^conv1 +conv3x3/1 +16x32x32 +432 +442,368$' \
    '^linear +linear +10x1x1 +650 +640$'
check "info resnet18-imagenet rows" info_has resnet18-imagenet -- \
    '^resnet18-imagenet: input 3x224x224, 1000 classes$' \
    '^conv1 +conv7x7/2 +64x112x112 +9,408 +118,013,952$' '^fc +linear +1000x1x1 +513,000 +512,000$'

# ---- geometry options change the table and the totals
check "info --size 64" info_counts 269722 162202240 resnet20 --size 64
check "info --size 48x40" info_counts 269722 76032640 resnet20 --size 48x40
check "info --size 48x40 table" info_has resnet20 --size 48x40 -- \
    '^resnet20: input 3x48x40, 10 classes$' '^conv1 +conv3x3/1 +16x48x40 '
check "info --in-channels 1" info_counts 269434 40256128 resnet20 --in-channels 1
check "info --in-channels 1 table" info_has resnet20 --in-channels 1 -- \
    '^resnet20: input 1x32x32, 10 classes$' '^conv1 +conv3x3/1 +16x32x32 +144 +147,456$'
check "info --classes 100" info_counts 275572 40556800 resnet20 --classes 100
check "info --classes 100 table" info_has resnet20 --classes 100 -- \
    '^linear +linear +100x1x1 +6,500 +6,400$'
check "info all three options" info_counts 11175370 708121600 resnet18-imagenet \
    --size 160x128 --in-channels 1 --classes 10
check "info: units and separators" info_has resnet18-imagenet -- '^params: 11,689,512$' \
    '^macs: 1,814,073,344 multiply-adds per image \(1\.81 G\)$'
check "info: one class" info_has resnet20 --classes 1 -- '^resnet20: input 3x32x32, 1 class$'
check "info --help" info_has --help -- '^usage: resnet info MODEL' 'resnet18-imagenet'

# ---- failures: one line on stderr, non-zero exit
check_error "unknown model" "unknown model 'resnet21'" "$RESNET" info resnet21
check_error "no model" "usage|expected" "$RESNET" info
check_error "two models" "usage|expected" "$RESNET" info resnet20 resnet56
check_error "unknown option" "--bogus" "$RESNET" info resnet20 --bogus
check_error "--size 0" "--size: .*'0'" "$RESNET" info resnet20 --size 0
check_error "--size x" "--size: .*'x'" "$RESNET" info resnet20 --size x
check_error "--size 32x" "--size: .*'32x'" "$RESNET" info resnet20 --size 32x
check_error "--size 32x32x" "--size: .*'32x32x'" "$RESNET" info resnet20 --size 32x32x
check_error "--size -32" "--size: .*'-32'" "$RESNET" info resnet20 --size -32
check_error "--size too large" "--size: .*'5000'" "$RESNET" info resnet20 --size 5000
check_error "--size too small for the model" "resnet18-imagenet: input size 16x16" \
    "$RESNET" info resnet18-imagenet --size 16
check_error "--in-channels 0" "--in-channels: .*'0'" "$RESNET" info resnet20 --in-channels 0
check_error "--in-channels 5" "--in-channels: .*'5'" "$RESNET" info resnet20 --in-channels 5
check_error "--in-channels abc" "--in-channels: .*'abc'" "$RESNET" info resnet20 --in-channels abc
check_error "--classes 0" "--classes: .*'0'" "$RESNET" info resnet20 --classes 0
check_error "--classes 1.5" "--classes: .*'1.5'" "$RESNET" info resnet20 --classes 1.5
check_error "--classes overflow" "--classes: .*'99999999999999999999'" \
    "$RESNET" info resnet20 --classes 99999999999999999999
check_error "--classes empty" "--classes: .*''" "$RESNET" info resnet20 --classes ''
check_error "missing option value" "classes" "$RESNET" info resnet20 --classes
check_error "unknown command" "unknown command 'inf'" "$RESNET" inf resnet20

# The README's first two commands work as root (no sudo there) and as a user (sudo): each sets
# S to sudo only for a user, updates the package lists, and is valid shell.
readme_commands_portable() {
    local line n=0
    while IFS= read -r line; do
        n=$((n + 1))
        case "$line" in
        'S=$([ "$(id -u)" = 0 ] || echo sudo); $S apt-get update && $S apt-get install -y '*) ;;
        *) echo "README command $n does not start with the root-or-user prefix: $line" >&2; return 1 ;;
        esac
        bash -n -c "$line" || return 1
    done < <(sed -n '/^```sh$/,/^```$/p' README.md | sed '1d;$d' | head -n 2)
    [ "$n" -eq 2 ]
}
check "README set-up lines: as root and as a user" readme_commands_portable

finish
