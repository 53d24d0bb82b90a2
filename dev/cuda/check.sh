#!/usr/bin/env bash
# check.sh — the CUDA backend's checks and measurements on a GPU machine, in one go (about 10
# minutes on an H100; every stage has its own timeout).
#
# Run from the repository root with ./resnet and build-cuda/tests/test_cuda built by
# `make CUDA=1 CUDA_ARCH=-arch=sm_90 resnet build-cuda/tests/test_cuda` (here or on a machine
# with the toolkit). When that machine lacks a library the binaries link (cJSON, stb, cmocka),
# put copies into .devcarry/lib; the shared CIFAR-10 archive may sit in .devcarry/ too.
# Stages (default: env test test1 traj bench sanitize):
#   env      GPU, driver (R580 or newer for a CUDA 13 build, see the README) and libraries;
#            stops the run when a library is missing or the driver is too old
#   test     tests/test_cuda.c with RN_REQUIRE_GPU=1, then a summary of its "measured" lines:
#            per suite, precision and quantity the largest value, where, its tolerance, and
#            the largest value/tolerance ratio (the numbers to set the tolerances from)
#   test1    the same with RN_GPU_STREAMS=1 (weight gradients on the main stream)
#   sanitize the NaN evaluation and the capture fallback under compute-sanitizer's memcheck
#            (last: slow; skipped when the toolkit's compute-sanitizer is absent)
#   traj     200 steps of resnet20 on CIFAR-10 on the CPU (--device cpu, 16 cores) and on the
#            GPU in fp32, tf32 and bf16 from the same start, each GPU run compared with the
#            CPU run (tools/compare_metrics.py)
#   bench    a per-layer profile, weight gradients on one stream or two, then
#            bench/gpu_vs_pytorch.py against eager PyTorch (its default cases; BENCH_ARGS
#            adds options) and compiled PyTorch (COMPILE_CASES, default
#            resnet20:128:tf32,resnet18:512:bf16, the cases of the targets; ~45 s each)
#   torch-recipe  the he2015 recipe in PyTorch on the same data (bench/torch_recipe.py)
#   recipe   the paper's full recipe (he2015, 64k steps) for resnet20 (PRECISION, default tf32;
#            skipped when RECIPE_NEEDS names a file that is missing)
# Everything goes to stdout and into one log, $OUT/check.log (OUT defaults to
# /tmp/resnet-check), with the metrics files beside it.
set -u
stages=${*:-env test test1 traj bench sanitize}
out=${OUT:-/tmp/resnet-check}
mkdir -p "$out" runs
exec > >(tee -a "$out/check.log") 2>&1
start=$(date +%s)
stamp() { echo "=== $* ($(($(date +%s) - start)) s)"; }
echo "check.sh $stages, $(date -u), $(git rev-parse --short HEAD 2>/dev/null)"

# Libraries: the carried ones, the toolkit's, and cuDNN / cuBLAS wherever pip put them.
libdirs=$PWD/.devcarry/lib:/usr/local/cuda/lib64
for lib in libcudnn.so.9 libcublas.so.13; do
    d=$(find /usr /opt -name "$lib" 2>/dev/null | head -1)
    [ -n "$d" ] && libdirs=$libdirs:$(dirname "$d")
done
export LD_LIBRARY_PATH=$libdirs:${LD_LIBRARY_PATH:-}

# The CIFAR-10 archive: carried, beside the repository, or in shared/.
prepare_data() {
    [ -f data/cifar10/meta.json ] && return
    local src
    for src in .devcarry/cifar10-jpeg.tar.gz ../shared/data/cifar10-jpeg.tar.gz \
        shared/data/cifar10-jpeg.tar.gz ""; do
        [ -f "$src" ] && break
    done
    [ -n "$src" ] || { echo "check.sh: no cifar10-jpeg.tar.gz (.devcarry/ or ../shared/data/)"; return 1; }
    mkdir -p data/cifar10-jpeg && tar xzf "$src" -C data/cifar10-jpeg &&
        ./resnet data pack --data folder:data/cifar10-jpeg --out data/cifar10 >/dev/null
}

# The "measured SUITE CASE PRECISION QUANTITY VALUE tol TOL" lines of a test log, summarized
# per suite, precision and quantity kind (the part of QUANTITY before ':').
summarize() {
    printf "%-6s %-5s %-12s %6s %10s %9s %9s %5s  %s\n" suite prec quantity count max "its tol" \
        max/tol over "where (max)"
    grep '^measured ' "$1" | awk '
        { kind = $5; sub(/:.*/, "", kind); k = $2 " " $4 " " kind
          r = ($8 > 0) ? $6 / $8 : ($6 > 0 ? 1e300 : 0)
          if (!(k in n) || $6 + 0 > mx[k] + 0) { mx[k] = $6; at[k] = $3 " " $5; tol[k] = $8 }
          if (!(k in n) || r > rmax[k]) rmax[k] = r
          n[k]++; if ($NF == "OVER") over[k]++ }
        END { for (k in n) { split(k, f, " ")
                  printf "%-6s %-5s %-12s %6d %10.3e %9.1e %9.3f %5d  %s\n", f[1], f[2], f[3],
                         n[k], mx[k], tol[k], rmax[k], over[k] + 0, at[k] } }' | sort
}

run_tests() { # $1: log name; the environment says the rest
    timeout 600 ./build-cuda/tests/test_cuda >"$out/$1.log" 2>&1
    local rc=$?
    cat "$out/$1.log"
    echo "--- test_cuda exit status $rc; summary of the measured values:"
    summarize "$out/$1.log"
}

for stage in $stages; do
    case $stage in
    env)
        stamp "GPU, driver and libraries"
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
        drv=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)
        need=${DRIVER_NEEDED:-580} # R580: the first driver for CUDA 13 (the toolkit of the build)
        if [ -z "$drv" ] || [ "${drv%%.*}" -lt "$need" ]; then
            echo "check.sh: driver '${drv}' is older than R$need, which the CUDA 13 runtime needs; stopping"
            exit 1
        fi
        for b in ./resnet ./build-cuda/tests/test_cuda; do
            if ldd "$b" | grep "not found"; then
                echo "check.sh: $b lacks the libraries above (put them into .devcarry/lib); stopping"
                exit 1
            fi
        done
        ldd ./resnet | grep -E "cudnn|cublas"
        command -v python3 >/dev/null && python3 -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'cuDNN', torch.backends.cudnn.version())"
        ;;
    test)
        stamp "test_cuda (RN_REQUIRE_GPU=1)"
        RN_REQUIRE_GPU=1 run_tests test_cuda
        ;;
    test1)
        stamp "test_cuda with RN_GPU_STREAMS=1"
        RN_REQUIRE_GPU=1 RN_GPU_STREAMS=1 run_tests test_cuda_one_stream
        ;;
    sanitize)
        stamp "memcheck: NaN evaluation, capture fallback"
        cs=$(command -v compute-sanitizer ||
            find /usr/local /opt -name compute-sanitizer -type f 2>/dev/null | head -1)
        if [ -z "$cs" ]; then
            echo "check.sh: no compute-sanitizer on this machine; skipped"
        else
            for t in test_eval_nan test_train_fallback; do
                RN_REQUIRE_GPU=1 RN_TEST_FILTER=$t timeout 150 "$cs" --tool memcheck \
                    --error-exitcode 9 ./build-cuda/tests/test_cuda 2>&1 | tail -15
                echo "--- $t under memcheck: exit status ${PIPESTATUS[0]}"
            done
        fi
        ;;
    traj)
        stamp "200-step trajectories, CPU and GPU from the same start"
        prepare_data || continue
        for dev in cpu:fp32 cuda:fp32 cuda:tf32 cuda:bf16; do
            d=${dev%%:*} p=${dev#*:} run=runs/traj_${dev/:/_}
            rm -rf "$run"
            timeout 240 ./resnet train --model resnet20 --data cifar10:data/cifar10 --iters 200 \
                --batch 128 --lr 0.1 --wd 1e-4 --momentum 0.9 --val 5000 --log-every 10 --seed 1 \
                --device $d --precision $p --out "$run" --quiet
            [ -f "$run/metrics.jsonl" ] && cp "$run/metrics.jsonl" "$out/traj_${dev/:/_}.jsonl"
            if [ "$d" = cuda ] && [ -f runs/traj_cpu_fp32/metrics.jsonl ]; then
                echo "--- GPU $p against the CPU:"
                python3 tools/compare_metrics.py runs/traj_cpu_fp32/metrics.jsonl "$run/metrics.jsonl" | tail -4
            fi
        done
        ;;
    bench)
        stamp "where a resnet20 step's time goes"
        for p in tf32 bf16; do
            RN_GPU_STREAMS=1 RN_PROFILE=1 timeout 60 ./resnet bench --device cuda --model resnet20 --batch 128 \
                --precision $p --steps 100
        done
        stamp "weight gradients on a second stream (default) or not"
        for s in 1 2; do
            RN_GPU_STREAMS=$s timeout 60 ./resnet bench --device cuda --model resnet20 --batch 128 \
                --precision tf32 --steps 300 | grep images/s
        done
        stamp "throughput against PyTorch (eager)"
        PYTHONUNBUFFERED=1 timeout 300 python3 bench/gpu_vs_pytorch.py ${BENCH_ARGS:-}
        cases=${COMPILE_CASES-resnet20:128:tf32,resnet18:512:bf16}
        if [ -n "$cases" ]; then
            stamp "against torch.compile (reduce-overhead): $cases"
            PYTHONUNBUFFERED=1 timeout 360 python3 bench/gpu_vs_pytorch.py --compile --cases "$cases"
        fi
        ;;
    recipe)
        stamp "full he2015 recipe, resnet20"
        if [ -n "${RECIPE_NEEDS:-}" ] && [ ! -s "$RECIPE_NEEDS" ]; then
            echo "check.sh: $RECIPE_NEEDS is missing (the short run failed); no full recipe"
            continue
        fi
        prepare_data || continue
        rm -rf runs/he2015
        /usr/bin/time -v ./resnet train --model resnet20 --recipe he2015 --data cifar10:data/cifar10 \
            --device cuda --precision ${PRECISION:-tf32} --out runs/he2015 --log-every 500 --eval-every 10 2>&1 |
            grep -v "^\s*\(Page\|Minor\|Major\|Vol\|Invol\|Swaps\|File\|Socket\|Signals\|Average\|Exit\)"
        cp runs/he2015/metrics.jsonl "$out/he2015_metrics.jsonl"
        ;;
    torch-recipe)
        stamp "the same recipe in PyTorch (torch.compile), same data"
        prepare_data || continue
        PYTHONUNBUFFERED=1 timeout 420 python3 bench/torch_recipe.py
        ;;
    *) echo "check.sh: unknown stage $stage" ;;
    esac
done
stamp "done"
