#!/usr/bin/python3
"""
cpu_vs_pytorch.py — resnet.c against PyTorch on this CPU, side by side in one run.

For each case it runs `resnet bench` and the same model in Debian's python3-torch
(channels_last, torch.set_num_threads equal to ours, synthetic data, the same batch), each in
its own process, and prints images/s for both, the ratio, and each process's peak memory
(max RSS). A PyTorch training step is forward, loss, backward and the SGD update.

--precision bf16 runs PyTorch under torch.autocast("cpu", dtype=torch.bfloat16) (oneDNN's
bf16 kernels: AMX or AVX512_BF16 where the CPU has them) and ours with the cpu-bf16 backend
(unless --backend names another). Usage, from the repository root after `make`:

    /usr/bin/python3 bench/cpu_vs_pytorch.py [--threads 2] [--steps 10] [--backend NAME]
                                             [--precision fp32|bf16]
                                             [--cases resnet20:train:128,resnet20:infer:128]

A case is MODEL:MODE:BATCH[:SIZE] (SIZE x SIZE images, 32 by default), for instance
resnet50-imagenet:infer:16:224 (with --clock cpu, ours runs the model's default size).
--clock cpu times one thread on both sides in CPU time per step, for a shared machine.
"""
import argparse
import os
import platform
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_CASES = "resnet20:train:128,resnet56:train:128,resnet18:train:64,resnet20:infer:128"

TORCH_BENCH = r"""
import sys, time, statistics, torch
sys.path.insert(0, sys.argv[1])
import torch_models
name, mode, batch, threads, steps, warmup = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
bf16, size, clock = sys.argv[8] == "bf16", int(sys.argv[9]), sys.argv[10]
now = time.process_time if clock == "cpu" else time.perf_counter
torch.set_num_threads(threads)
torch.manual_seed(0)
model = torch_models.build(name).to(memory_format=torch.channels_last)
x = torch.randn(batch, 3, size, size).to(memory_format=torch.channels_last)
y = torch.randint(0, 10, (batch,))
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
loss_fn = torch.nn.CrossEntropyLoss()
times = []
if mode == "train":
    model.train()
    for i in range(warmup + steps):
        t0 = now()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        times.append(now() - t0)
else:
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for i in range(warmup + steps):
            t0 = now()
            model(x)
            times.append(now() - t0)
med = statistics.median(times[warmup:])
print("images/s: %.1f" % (batch / med))
"""


# Runs a command in a fresh interpreter that reports that one child's peak memory.
MEASURE = ("import resource, subprocess, sys\n"
           "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
           "sys.stdout.write(r.stdout); sys.stderr.write(r.stderr)\n"
           "print('child_maxrss_kb: %d' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
           "sys.exit(r.returncode)\n")


def run_measured(cmd):
    """Runs cmd; returns its stdout and its own peak memory (max RSS) in KB."""
    r = subprocess.run([sys.executable, "-c", MEASURE] + cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("%s failed: %s" % (cmd[0], r.stderr.strip()))
    return r.stdout, int(re.search(r"child_maxrss_kb: (\d+)", r.stdout).group(1))


def run_ours(name, mode, batch, threads, steps, warmup, backend, size):
    cmd = [os.path.join(ROOT, "resnet"), "bench", "--model", name, "--mode", mode, "--batch",
           str(batch), "--threads", str(threads), "--steps", str(steps), "--warmup", str(warmup),
           "--size", "%dx%d" % (size, size)]
    if backend:
        cmd += ["--backend", backend]
    out, rss = run_measured(cmd)
    ips = float(re.search(r"images/s: ([\d.]+)", out).group(1))
    peak = re.search(r"-> ([\d.]+)% of peak", out).group(1)
    backend_used = re.search(r"backend ([^,\s)]+)", out).group(1)
    return ips, float(peak), backend_used, rss


def run_ours_cpu_clock(name, mode, batch, steps, backend):
    """Ours on one thread in CPU time per step, through build/bench_bf16 (which runs the
    model's steps with each CPU backend; `resnet bench` times wall-clock)."""
    prog = os.path.join(ROOT, "build", "bench_bf16")
    if not os.path.exists(prog):
        sys.exit("--clock cpu needs %s (see the build line in bench/bench_bf16.c)" % prog)
    out, rss = run_measured([prog, "steps", "--threads", "1", "--model", name, "--batch",
                             str(batch), "--steps", str(steps), "--mode", mode])
    ips = float(re.search(r" %s +([\d.]+)" % re.escape(backend or "cpu-winograd"), out).group(1))
    return ips, 0.0, (backend or "cpu-winograd") + ", CPU time", rss


def run_torch(name, mode, batch, threads, steps, warmup, precision, size, clock):
    cmd = ["/usr/bin/python3", "-c", TORCH_BENCH, os.path.join(ROOT, "tools"), name, mode,
           str(batch), str(threads), str(steps), str(warmup), precision, str(size), clock]
    out, rss = run_measured(cmd)
    return float(re.search(r"images/s: ([\d.]+)", out).group(1)), rss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--backend", default="")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--cases", default=DEFAULT_CASES)
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: one thread, both sides timed in CPU time per step (a shared, "
                         "loaded machine disturbs that least)")
    a = ap.parse_args()
    if a.clock == "cpu":
        a.threads = 1
    if a.precision == "bf16" and not a.backend:
        a.backend = "cpu-bf16"
    import torch  # noqa: F401  (fail early with a clear message if torch is missing)

    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = re.search(r"model name\s*:\s*(.*)", f.read()).group(1)
    except (OSError, AttributeError):
        pass
    print("%s, %s, %d threads, %s, torch %s, %s" % (cpu, platform.machine(), a.threads,
                                                    time.strftime("%Y-%m-%d"), torch.__version__,
                                                    a.precision))
    print("%-10s %-6s %5s | %12s %12s %7s | %9s %9s" % (
        "model", "mode", "batch", "resnet.c", "PyTorch", "ratio", "RSS ours", "RSS torch"))
    for case in a.cases.split(","):
        name, mode, batch, size = (case.split(":") + ["32"])[:4]
        batch, size = int(batch), int(size)
        if a.clock == "cpu":
            ours, peak, backend, rss_ours = run_ours_cpu_clock(name, mode, batch, a.steps,
                                                               a.backend)
        else:
            ours, peak, backend, rss_ours = run_ours(name, mode, batch, a.threads, a.steps,
                                                     a.warmup, a.backend, size)
        theirs, rss_torch = run_torch(name, mode, batch, a.threads, a.steps, a.warmup,
                                      a.precision, size, a.clock)
        print("%-10s %-6s %5d | %8.1f img/s %8.1f img/s %6.2fx | %6.0f MB %6.0f MB   (%s, %.0f%% of peak)" % (
            name, mode, batch, ours, theirs, ours / theirs, rss_ours / 1024, rss_torch / 1024,
            backend, peak))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
