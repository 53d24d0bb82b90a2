#!/usr/bin/python3
"""bench.py — our convolution kernels vs PyTorch's, same shapes, same run, same thread count.

Run with Debian's python (the one with torch):  /usr/bin/python3 bench.py [--threads 2] [--clock wall|cpu]
    [--shapes r20] [--versions 7,5,6] [--reps 7]

For every shape of conv_lab.c and every direction (forward, backward-data, backward-weights)
it times torch (channels_last, torch.set_num_threads(T)) and ./conv_lab, best of --reps, and
prints GFLOP/s side by side; the ratio column compares the first version with torch (versions
in conv_lab.c: 5 direct, 6 Winograd where it applies, 7 the library's automatic choice; all on
NCHW tensors). The machine may be shared: before each measurement the script
waits (up to --wait seconds) until both CPUs look idle, and marks a row '~' if they never did.
"""
import argparse
import os
import re
import subprocess
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))

# name, N, C, H, K, R, stride, pad — the same list as conv_lab.c
SHAPES = [
    ("r20.conv1", 128, 3, 32, 16, 3, 1, 1),
    ("r20.s1.16x32", 128, 16, 32, 16, 3, 1, 1),
    ("r20.s2.16-32", 128, 16, 32, 32, 3, 2, 1),
    ("r20.s1.32x16", 128, 32, 16, 32, 3, 1, 1),
    ("r20.s2.32-64", 128, 32, 16, 64, 3, 2, 1),
    ("r20.s1.64x8", 128, 64, 8, 64, 3, 1, 1),
    ("r18.conv1", 64, 3, 32, 64, 3, 1, 1),
    ("r18.s1.64x32", 64, 64, 32, 64, 3, 1, 1),
    ("r18.s2.64-128", 64, 64, 32, 128, 3, 2, 1),
    ("r18.sc.64-128", 64, 64, 32, 128, 1, 2, 0),
    ("r18.s1.128x16", 64, 128, 16, 128, 3, 1, 1),
    ("r18.s2.128-256", 64, 128, 16, 256, 3, 2, 1),
    ("r18.sc.128-256", 64, 128, 16, 256, 1, 2, 0),
    ("r18.s1.256x8", 64, 256, 8, 256, 3, 1, 1),
    ("r18.s2.256-512", 64, 256, 8, 512, 3, 2, 1),
    ("r18.sc.256-512", 64, 256, 8, 512, 1, 2, 0),
    ("r18.s1.512x4", 64, 512, 4, 512, 3, 1, 1),
]
DIRS = ["fwd", "bwd_data", "bwd_weights"]


def cpu_busy(interval=0.25):
    """Fraction of all CPUs busy over `interval` seconds (from /proc/stat)."""
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t0, i0 = read()
    time.sleep(interval)
    t1, i1 = read()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_quiet(limit):
    """Waits until the CPUs are (nearly) idle; returns False if they never were."""
    end = time.time() + limit
    while time.time() < end:
        if cpu_busy() < 0.08:
            return True
    return False


CLOCK = time.perf_counter


def torch_times(shape, reps):
    name, N, C, H, K, R, st, pad = shape
    x = torch.randn(N, C, H, H).to(memory_format=torch.channels_last)
    w = torch.randn(K, C, R, R).to(memory_format=torch.channels_last)
    y = torch.nn.functional.conv2d(x, w, None, st, pad)
    dy = torch.randn_like(y)
    cb = torch.ops.aten.convolution_backward
    fns = [
        lambda: torch.nn.functional.conv2d(x, w, None, st, pad),
        lambda: cb(dy, x, w, None, [st, st], [pad, pad], [1, 1], False, [0, 0], 1, [True, False, False]),
        lambda: cb(dy, x, w, None, [st, st], [pad, pad], [1, 1], False, [0, 0], 1, [False, True, False]),
    ]
    out = []
    for f in fns:
        f()
        best = 1e30
        for _ in range(reps):
            t = CLOCK()
            f()
            best = min(best, CLOCK() - t)
        out.append(best)
    return out


def ours_times(shape, threads, version, reps):
    cmd = [os.path.join(HERE, "conv_lab"), "-v", str(version), "-t", str(threads), "-s", shape[0],
           "-r", str(reps), "-m", "cpu" if CLOCK is time.process_time else "wall"]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    out, errs = [], []
    for d in DIRS:
        m = re.search(r"^\S+\s+%s\s.*?([\d.]+) ms.*max rel err ([\d.e+-]+)" % d, res, re.M)
        out.append(float(m.group(1)) * 1e-3)
        errs.append(float(m.group(2)))
    return out, max(errs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shapes", default="", help="substring filter, e.g. r20")
    ap.add_argument("--versions", default="7,5,6")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--wait", type=float, default=60)
    ap.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                    help="cpu: process CPU time (robust on a shared machine, meaningful for 1 thread)")
    a = ap.parse_args()
    global CLOCK
    if a.clock == "cpu":
        CLOCK = time.process_time
    torch.set_num_threads(a.threads)
    versions = [int(v) for v in a.versions.split(",")]
    print("# torch %s, %d threads, best of %d, %s clock; GFLOP/s = 2*N*K*C*R*S*Ho*Wo / time"
          % (torch.__version__, a.threads, a.reps, a.clock))
    head = "%-16s %-12s %8s" % ("shape", "direction", "torch")
    for v in versions:
        head += " %14s" % ("v%d" % v)
    head += "   ours/torch"
    print(head)
    for shape in SHAPES:
        if a.shapes and a.shapes not in shape[0]:
            continue
        name, N, C, H, K, R, st, pad = shape
        Ho = (H + 2 * pad - R) // st + 1
        flop = 2.0 * N * K * C * R * R * Ho * Ho
        quiet = wait_quiet(a.wait)
        tt = torch_times(shape, a.reps)
        ours = []
        for v in versions:
            quiet = wait_quiet(a.wait) and quiet
            t, err = ours_times(shape, a.threads, v, a.reps)
            ours.append(t)
        for i, d in enumerate(DIRS):
            line = "%-16s %-12s %8.1f" % (name, d, flop / tt[i] * 1e-9)
            for t in ours:
                line += " %14.1f" % (flop / t[i] * 1e-9)
            line += "   %5.2fx" % (tt[i] / ours[0][i])
            if not quiet:
                line += "  ~"
            print(line)
            sys.stdout.flush()


if __name__ == "__main__":
    main()
