#!/usr/bin/python3
"""
mpi_vs_ddp.py — data-parallel training throughput on this machine, in one run: resnet.c with
1 process and with N processes (mpirun, the build made with `make MPI=1`), the latter with the
gradient all-reduce in buckets overlapping the backward pass (the default) and as one sum of
the whole block after it (RN_BUCKET_KB=0), and PyTorch's DistributedDataParallel (Debian's
python3-torch, gloo backend) with the same N processes, each at T threads, the same model and
global batch, channels_last, synthetic data. Prints images/s for each (median step time after
warm-up; a step is the whole training step, gradient all-reduce included), the scaling
efficiency of each, the ratio resnet.c / DDP, and the load average of the machine after each
round (the figures are only as good as the machine was idle).

Usage, from the repository root after `make MPI=1`:

    /usr/bin/python3 bench/mpi_vs_ddp.py [--model resnet20] [--batch 128] [--procs 2]
                                         [--threads 1] [--steps 10] [--warmup 3] [--repeat 2]
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

# One DDP process: rank, world size, rendezvous file, model, global batch, threads, steps.
DDP_WORKER = r"""
import os, sys, time, statistics, torch, torch.distributed as dist
sys.path.insert(0, sys.argv[1])
import torch_models
rank, world, rdv = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
name, batch, threads, steps, warmup = sys.argv[5], int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9])
torch.set_num_threads(threads)
dist.init_process_group("gloo", init_method="file://" + rdv, rank=rank, world_size=world)
torch.manual_seed(0)
model = torch_models.build(name).to(memory_format=torch.channels_last)
if world > 1:
    model = torch.nn.parallel.DistributedDataParallel(model)
share = batch // world
x = torch.randn(share, 3, 32, 32).to(memory_format=torch.channels_last)
y = torch.randint(0, 10, (share,))
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
loss_fn = torch.nn.CrossEntropyLoss()
model.train()
times = []
for i in range(warmup + steps):
    dist.barrier()
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss_fn(model(x), y).backward()
    opt.step()
    dist.barrier()
    times.append(time.perf_counter() - t0)
if rank == 0:
    print("images/s: %.1f" % (batch / statistics.median(times[warmup:])))
dist.destroy_process_group()
"""

MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none"]


def images_per_s(text, what):
    m = re.search(r"images/s: ([0-9.]+)", text)
    if not m:
        sys.exit(f"{what}: no images/s in its output:\n{text}")
    return float(m.group(1))


def ours(args, procs, bucket_kb=None):
    exe = os.path.join(ROOT, "build-mpi", "resnet")
    if not os.access(exe, os.X_OK):
        sys.exit(f"{exe} not found: run make MPI=1 first")
    cmd = [exe, "bench", "--model", args.model, "--batch", str(args.batch), "--threads",
           str(args.threads), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if procs > 1:
        cmd = MPIRUN + ["-np", str(procs)] + cmd
    env = dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none")
    if bucket_kb is not None:
        env["RN_BUCKET_KB"] = str(bucket_kb)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stdout}{r.stderr}")
    return images_per_s(r.stdout, "resnet bench")


def ddp(args, procs):
    rdv = f"/tmp/ddp-rendezvous-{os.getpid()}-{time.monotonic_ns()}"
    workers = [subprocess.Popen(["/usr/bin/python3", "-c", DDP_WORKER,
                                 os.path.join(ROOT, "tools"), str(r), str(procs), rdv,
                                 args.model, str(args.batch), str(args.threads),
                                 str(args.steps), str(args.warmup)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for r in range(procs)]
    outs = [w.communicate() for w in workers]
    if os.path.exists(rdv):
        os.remove(rdv)
    for w, (out, err) in zip(workers, outs):
        if w.returncode != 0:
            sys.exit(f"DDP worker failed:\n{out}{err}")
    return images_per_s(outs[0][0], "PyTorch DDP")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet20")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    import torch
    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as f:
        cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    print(f"# {cpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}, load average {os.getloadavg()[0]:.2f}")
    print(f"# {args.model}, global batch {args.batch}, {args.threads} thread(s) per process, "
          f"median of {args.steps} steps after {args.warmup}")
    n = args.procs
    print(f"{'round':>5} {'ours 1p':>9} {'ours %dp' % n:>9} {'eff':>5} {'no overlap':>10} "
          f"{'eff':>5} {'DDP 1p':>9} {'DDP %dp' % n:>9} {'eff':>5} {'ours/DDP %dp' % n:>12} "
          f"{'load':>5}")
    for i in range(args.repeat):
        o1, on, ow = ours(args, 1), ours(args, n), ours(args, n, bucket_kb=0)
        d1, dn = ddp(args, 1), ddp(args, n)
        print(f"{i + 1:>5} {o1:>9.1f} {on:>9.1f} {on / (n * o1):>5.0%} {ow:>10.1f} "
              f"{ow / (n * o1):>5.0%} {d1:>9.1f} {dn:>9.1f} {dn / (n * d1):>5.0%} "
              f"{on / dn:>11.2f}x {os.getloadavg()[0]:>5.2f}", flush=True)


if __name__ == "__main__":
    main()
