#!/usr/bin/env python3
"""
gpu_vs_pytorch.py — resnet.c against PyTorch on one CUDA GPU, side by side in one run.

For each case MODEL:BATCH:PRECISION (precision fp32, tf32 or bf16) it runs
`resnet bench --device cuda --mode train` and the same model from tools/torch_models.py in
PyTorch (channels_last, cudnn.benchmark, synthetic data already on the GPU, a full training
step: zero_grad, forward, cross-entropy, backward, SGD with momentum and weight decay), each in
its own process, and prints images/s for both and their ratio. PyTorch runs eager, and with
--compile also torch.compile(mode="reduce-overhead"); the ratio is against the faster of the
two. Usage, from the repository root after building with CUDA:

    python3 bench/gpu_vs_pytorch.py [--steps 200] [--warmup 20] [--compile] [--skip-torch]
                                    [--resnet PATH]
                                    [--cases resnet20:128:tf32,resnet20:128:bf16,...]

The default run takes about a minute or two; --compile adds roughly a minute per case.
"""
import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_CASES = "resnet20:128:tf32,resnet20:128:bf16,resnet20:512:bf16,resnet18:512:bf16"
PRECISIONS = ("fp32", "tf32", "bf16")

TORCH_BENCH = r"""
import sys, time, torch
sys.path.insert(0, sys.argv[1])
import torch_models
name, batch, precision, mode = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
steps, warmup = int(sys.argv[6]), int(sys.argv[7])
size, classes = (224, 1000) if name.endswith("-imagenet") else (32, 10)
torch.backends.cuda.matmul.allow_tf32 = precision != "fp32"
torch.backends.cudnn.allow_tf32 = precision != "fp32"
torch.backends.cudnn.benchmark = True
torch.manual_seed(0)
model = torch_models.build(name).to("cuda", memory_format=torch.channels_last).train()
x = torch.randn(batch, 3, size, size, device="cuda").contiguous(memory_format=torch.channels_last)
y = torch.randint(0, classes, (batch,), device="cuda")
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
loss_fn = torch.nn.CrossEntropyLoss()
net = torch.compile(model, mode="reduce-overhead") if mode == "compiled" else model

def step():
    if mode == "compiled":
        torch.compiler.cudagraph_mark_step_begin()
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
        loss = loss_fn(net(x), y)
    loss.backward()
    opt.step()

for _ in range(warmup):
    step()
torch.cuda.synchronize()
t0 = time.perf_counter()
for _ in range(steps):
    step()
torch.cuda.synchronize()
print("images/s: %.1f" % (batch * steps / (time.perf_counter() - t0)), flush=True)
"""


def run_images_per_s(label, cmd, timeout):
    """Runs cmd and returns the number on its `images/s:` line, or None (and says why)."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print("  %s: timed out after %d s" % (label, timeout), flush=True)
        return None
    except OSError as e:
        print("  %s: %s" % (label, e), flush=True)
        return None
    m = re.search(r"images/s:\s*([0-9.]+(?:[eE][+-]?[0-9]+)?)", r.stdout)
    if r.returncode != 0 or not m:
        tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-15:])
        print("  %s failed (exit %d):\n    %s" % (label, r.returncode,
                                                  tail.replace("\n", "\n    ")), flush=True)
        return None
    return float(m.group(1))


def run_ours(a, name, batch, precision):
    cmd = [a.resnet, "bench", "--device", "cuda", "--model", name, "--batch", str(batch),
           "--mode", "train", "--precision", precision, "--steps", str(a.steps),
           "--warmup", str(a.warmup)]
    return run_images_per_s("resnet.c", cmd, a.timeout)


def run_torch(a, name, batch, precision, mode):
    cmd = [sys.executable, "-c", TORCH_BENCH, os.path.join(ROOT, "tools"), name, str(batch),
           precision, mode, str(a.steps), str(a.warmup)]
    return run_images_per_s("PyTorch " + mode, cmd, a.timeout)


def gpu_name():
    try:
        r = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version",
                            "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
        return r.stdout.strip().splitlines()[0] if r.returncode == 0 and r.stdout.strip() else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown GPU (no nvidia-smi)"


def fmt(v):
    return "%10.1f" % v if v is not None else "%10s" % "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--cases", default=DEFAULT_CASES, help="MODEL:BATCH:PRECISION,...")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--compile", action="store_true",
                    help="also time torch.compile(mode='reduce-overhead')")
    ap.add_argument("--resnet", default=os.path.join(ROOT, "resnet"))
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument("--timeout", type=int, default=240, help="seconds per process")
    a = ap.parse_args()
    cases = []
    for case in a.cases.split(","):
        parts = case.strip().split(":")
        if len(parts) != 3 or not parts[1].isdigit() or parts[2] not in PRECISIONS:
            ap.error("bad case '%s': expected MODEL:BATCH:PRECISION, precision one of %s"
                     % (case, "|".join(PRECISIONS)))
        cases.append((parts[0], int(parts[1]), parts[2]))
    try:
        import torch
        torch_version = torch.__version__
    except ImportError:
        torch_version = "not installed"

    start = time.perf_counter()
    print("%s, torch %s, %s, %d steps after %d warm-up, images/s" % (
        gpu_name(), torch_version, time.strftime("%Y-%m-%d %H:%M"), a.steps, a.warmup), flush=True)
    print("%-10s %5s %-5s | %10s %10s %10s | %7s | %6s" % (
        "model", "batch", "prec", "resnet.c", "PT eager", "PT compile", "ratio", "wall"),
        flush=True)
    for name, batch, precision in cases:
        t0 = time.perf_counter()
        ours = run_ours(a, name, batch, precision)
        eager = compiled = None
        if not a.skip_torch:
            eager = run_torch(a, name, batch, precision, "eager")
            if a.compile:
                compiled = run_torch(a, name, batch, precision, "compiled")
        best = max([v for v in (eager, compiled) if v is not None], default=None)
        ratio = "%6.2fx" % (ours / best) if ours is not None and best else "%7s" % "-"
        print("%-10s %5d %-5s | %s %s %s | %s | %5.0fs" % (
            name, batch, precision, fmt(ours), fmt(eager), fmt(compiled), ratio,
            time.perf_counter() - t0), flush=True)
    print("total wall time: %.0f s" % (time.perf_counter() - start), flush=True)


if __name__ == "__main__":
    main()
