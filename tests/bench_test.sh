#!/usr/bin/env bash
# bench_test.sh — `resnet bench` on the CPU: the lines it prints, and with RN_PROFILE=1 the
# table of time per op kind, which also counts the fusions: on the default backend every ReLU
# of a BasicBlock net runs inside the BN or residual add before it, and in inference every BN
# is folded into its convolution; on the reference backend nothing is fused.
# Environment: RESNET (the program, default ./resnet).
source "$(dirname "$0")/testlib.sh"

# bench_lines OPTIONS...: a small training benchmark prints throughput, GFLOP/s and peak.
bench_lines() {
    local out
    out=$("$RESNET" bench --model resnet8 --batch 4 --size 16x16 --steps 2 --warmup 1 "$@") || return 1
    for re in '^images/s: [0-9.]+$' '^step ms: ' '^GFLOP/s: ' '^peak: .*% of peak$'; do
        printf '%s\n' "$out" | grep -Eq -- "$re" || { echo "no line matches /$re/" >&2; return 1; }
    done
    echo "$(printf '%s\n' "$out" | grep images/s)"
}

# profile BACKEND MODE OP FUSED: the table has rows for conv, bn, relu, add and a total, and
# the row of OP counts FUSED of its nodes as fused ("all" or a number).
profile() {
    local out
    out=$(RN_PROFILE=1 "$RESNET" bench --model resnet8 --batch 8 --size 16x16 --steps 2 \
          --warmup 1 --backend "$1" --mode "$2") || return 1
    printf '%s\n' "$out" | awk -v op="$3" -v want="$4" '
        /^time per pass by op/ { table = 1; next }
        table && $1 ~ /^conv3x3/ { conv = 1 }
        table && $1 == "bn" { bn = 1 }
        table && $1 == "add" { add = 1 }
        table && $1 == "relu" { relu = 1 }
        table && $1 == op { nodes = $2; fused = $3 }
        table && $1 == "total" { total = $2 }
        END {
            if (!conv || !bn || !add || !relu || total < 10) {
                print "profile table incomplete" > "/dev/stderr"; exit 1 }
            expect = want == "all" ? nodes : want
            if (fused != expect) {
                printf "%d of %d %s nodes fused, expected %d\n", fused, nodes, op, expect > "/dev/stderr"
                exit 1 }
            printf "%d nodes; %d of %d %s nodes fused\n", total, fused, nodes, op
        }'
}

check "bench train" bench_lines --mode train
check "bench infer" bench_lines --mode infer
check "profile, cpu backend: every ReLU fused" profile cpu train relu all
check "profile, reference backend: no ReLU fused" profile reference train relu 0
check "profile, cpu backend, training: no BN folded" profile cpu train bn 0
check "profile, cpu backend, inference: every BN folded" profile cpu infer bn all
check "profile, reference backend, inference: no BN folded" profile reference infer bn 0
check_error "bench --steps 0" "--steps" "$RESNET" bench --steps 0
finish
