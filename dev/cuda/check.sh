#!/usr/bin/env bash
# check.sh — the CUDA backend's checks and measurements on a GPU machine, in one go.
#
# Run from the repository root with ./resnet and build-cuda/tests/test_cuda built by
# `make CUDA=1 resnet build-cuda/tests/test_cuda` (here or on a machine with the toolkit). When
# that machine lacks a library the binaries link (cJSON, stb, cmocka), put copies into
# .devcarry/lib; the shared CIFAR-10 archive may sit in .devcarry/ too. Stages (default: all
# but recipe):
#   test     the parity tests (tests/test_cuda.c)
#   traj     200 steps of resnet20 on CIFAR-10 on the GPU (fp32 and tf32), compared with
#            the CPU run in .devcarry/traj_cpu.jsonl when present
#   bench    a per-layer profile, then bench/gpu_vs_pytorch.py (BENCH_ARGS adds options;
#            COMPILE_CASES=resnet20:128:tf32,... also times those against torch.compile)
#   torch-recipe  the same recipe in PyTorch on the same data (bench/torch_recipe.py)
#   recipe   the paper's full recipe (he2015, 64k steps) for resnet20 (PRECISION, default tf32;
#            skipped when RECIPE_NEEDS names a file that is missing)
# Output goes to stdout and, when OUT is set, into $OUT.
set -u
stages=${*:-test traj bench}
out=${OUT:-/tmp/resnet-check}
mkdir -p "$out" runs
start=$(date +%s)
stamp() { echo "=== $* ($(($(date +%s) - start)) s)"; }

# Libraries: the carried ones, the toolkit's, and cuDNN / cuBLAS wherever pip put them.
libdirs=$PWD/.devcarry/lib:/usr/local/cuda/lib64
for lib in libcudnn.so.9 libcublas.so.13; do
    d=$(find /usr /opt -name "$lib" 2>/dev/null | head -1)
    [ -n "$d" ] && libdirs=$libdirs:$(dirname "$d")
done
export LD_LIBRARY_PATH=$libdirs:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
ldd ./resnet | grep -E "not found" && echo "check.sh: a library is missing (see above)"

prepare_data() {
    [ -f data/cifar10/meta.json ] && return
    local src=.devcarry/cifar10-jpeg.tar.gz
    [ -f "$src" ] || src=../shared/data/cifar10-jpeg.tar.gz
    mkdir -p data/cifar10-jpeg && tar xzf "$src" -C data/cifar10-jpeg &&
        ./resnet data pack --data folder:data/cifar10-jpeg --out data/cifar10 >/dev/null
}

for stage in $stages; do
    case $stage in
    test)
        stamp "parity tests"
        timeout 300 ./build-cuda/tests/test_cuda
        ;;
    traj)
        stamp "200-step trajectories"
        prepare_data
        for p in fp32 tf32; do
            rm -rf runs/traj_$p
            timeout 120 ./resnet train --model resnet20 --data cifar10:data/cifar10 --iters 200 \
                --batch 128 --lr 0.1 --wd 1e-4 --momentum 0.9 --val 5000 --log-every 10 --seed 1 \
                --device cuda --precision $p --out runs/traj_$p --quiet
            cp runs/traj_$p/metrics.jsonl "$out/traj_gpu_$p.jsonl"
            [ -f .devcarry/traj_cpu.jsonl ] &&
                python3 tools/compare_metrics.py .devcarry/traj_cpu.jsonl runs/traj_$p/metrics.jsonl | tail -4
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
        stamp "throughput against PyTorch"
        PYTHONUNBUFFERED=1 timeout 400 python3 bench/gpu_vs_pytorch.py ${BENCH_ARGS:-}
        if [ -n "${COMPILE_CASES:-}" ]; then
            stamp "against torch.compile (reduce-overhead)"
            PYTHONUNBUFFERED=1 timeout 400 python3 bench/gpu_vs_pytorch.py --compile --cases "$COMPILE_CASES"
        fi
        ;;
    recipe)
        stamp "full he2015 recipe, resnet20"
        if [ -n "${RECIPE_NEEDS:-}" ] && [ ! -s "$RECIPE_NEEDS" ]; then
            echo "check.sh: $RECIPE_NEEDS is missing (the short run failed); no full recipe"
            continue
        fi
        prepare_data
        rm -rf runs/he2015
        /usr/bin/time -v ./resnet train --model resnet20 --recipe he2015 --data cifar10:data/cifar10 \
            --device cuda --precision ${PRECISION:-tf32} --out runs/he2015 --log-every 500 --eval-every 10 2>&1 |
            grep -v "^\s*\(Page\|Minor\|Major\|Vol\|Invol\|Swaps\|File\|Socket\|Signals\|Average\|Exit\)"
        cp runs/he2015/metrics.jsonl "$out/he2015_metrics.jsonl"
        ;;
    torch-recipe)
        stamp "the same recipe in PyTorch (torch.compile), same data"
        prepare_data
        PYTHONUNBUFFERED=1 timeout 420 python3 bench/torch_recipe.py
        ;;
    *) echo "check.sh: unknown stage $stage" ;;
    esac
done
stamp "done"
