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

# The FMA peak is measured once per machine and thread count and cached in
# $XDG_CACHE_HOME/resnet/peak (testlib.sh points it into TMP).
CACHE=$XDG_CACHE_HOME/resnet/peak
# peak_line EXPECT OPTIONS...: bench prints a peak line "measured EXPECT" (an extended regex),
# and the cache file then exists.
peak_line() {
    local expect=$1 out
    shift
    out=$("$RESNET" bench --model resnet8 --batch 4 --size 16x16 --steps 1 --warmup 0 "$@" \
          2>"$TMP/peak.err") || return 1
    printf '%s\n' "$out" | grep -Eq -- "^peak: .*; measured $expect\) -> .*% of peak$" ||
        { printf '%s\n' "$out" | grep peak >&2; echo "expected 'measured $expect'" >&2; return 1; }
    [ -s "$CACHE" ] || { echo "no cache file $CACHE" >&2; return 1; }
    printf '%s\n' "$out" | grep '^peak' | tee "$TMP/peak.out"
}
DATE='[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2} UTC'
rm -rf "$XDG_CACHE_HOME"
check "peak: the first run measures and writes the cache" peak_line now --threads 2
check "peak: the second run reads it (with its date)" peak_line "$DATE" --threads 2
check "  ... one entry, keyed by CPU, vector unit, threads and version" \
    grep -Eq "^cpu=.*;isa=(avx512|avx2|portable);threads=2;version=[0-9.]+	[0-9.]+	$DATE$" "$CACHE"
check "peak: another thread count is another key, measured" peak_line now --threads 1
check "  ... then read" peak_line "$DATE" --threads 1
check "  ... and the first key kept" peak_line "$DATE" --threads 2
sed -i 's/^\(cpu=.*;threads=2;[^\t]*\t\)[0-9.]*/\11.0/' "$CACHE" # a value no machine measures
check "peak: the cached value is what is printed" peak_line "$DATE" --threads 2
check "  ... (1.0 GFLOP/s)" grep -q "^peak: 1.0 GFLOP/s" "$TMP/peak.out"
check "peak: --remeasure-peak measures again" peak_line now --threads 2 --remeasure-peak
check "  ... and rewrites the cache" peak_line "$DATE" --threads 2
check "  ... (no longer 1.0 GFLOP/s)" grep -vq "^peak: 1.0 GFLOP/s" "$TMP/peak.out"
printf 'resnet-peak 1\ncpu=x;isa=avx2;threads=2\tnot a number\n' >"$CACHE"
check "peak: a corrupt cache is measured again" peak_line now --threads 2
check "  ... with a note" grep -q "note: .*peak.* is not a peak cache" "$TMP/peak.err"
check "  ... and replaced" peak_line "$DATE" --threads 2
touch "$TMP/not_a_dir"
XDG_CACHE_HOME=$TMP/not_a_dir check "peak: an unwritable cache is no error" peak_line now
check "  ... and said once" \
    test "$(grep -c "cannot write the peak cache" "$TMP/peak.err")" = 1
finish
