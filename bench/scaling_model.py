#!/usr/bin/python3
"""
scaling_model.py — a model on paper of data-parallel scaling: for each model, the bytes each
process sends (and receives) per step to average the gradients with a ring all-reduce, the
compute time of a step, and the network bandwidth per process at which N processes keep 90%
scaling efficiency, with and without the all-reduce overlapping the backward pass.

    ring all-reduce of S bytes over N processes:  t_comm = 2 (N-1)/N * S / bw + 2 (N-1) * lat
    no overlap:   efficiency = t_c / (t_c + t_comm)           >= 0.9  <=>  t_comm <= t_c / 9
    overlap with the backward pass (2/3 of the step), only what sticks out counts:
                  efficiency = t_c / (t_c + max(0, t_comm - 2/3 t_c))  >= 0.9
                               <=>  t_comm <= t_c (2/3 + 1/9)

Weak scaling: each process keeps its batch (the global batch grows with N). The compute time is
the per-process batch over a per-process training throughput: measured figures where we have
them (BENCHMARKS.md), scaled by multiply-adds per image otherwise (marked ~). Usage:

    /usr/bin/python3 bench/scaling_model.py [--latency-us 2]
"""
import argparse

# name: (parameters, multiply-adds per image) from `resnet info MODEL`
MODELS = {
    "resnet20": (269722, 40551040),
    "resnet56": (853018, 125485696),
    "resnet18": (11173962, 555422720),
    "resnet50-imagenet": (25557032, 4089184256),
}

# Per-process training throughput, images/s, and batch per process. "cpu1": one core of this
# machine (resnet20 at 2 threads on the idle machine, 764.6 images/s in BENCHMARKS.md, halved);
# "h100": one H100 (resnet20 tf32 batch 128 and resnet18 bf16 batch 512, BENCHMARKS.md).
# Others scale by MACs.
PROCESS = {
    "cpu1": {"ref": ("resnet20", 382.3), "batch": {"resnet20": 128, "resnet56": 128,
                                                   "resnet18": 64, "resnet50-imagenet": 32}},
    "h100": {"ref": ("resnet20", 50324.0), "measured": {"resnet18": 65495.0},
             "batch": {"resnet20": 128, "resnet56": 128, "resnet18": 512,
                       "resnet50-imagenet": 256}},
}


def throughput(kind, model):
    """Images/s of one process: measured, or scaled by MACs from the measured model nearest in
    MACs (marked "~"; optimistic for big models, whose kernels are no faster per MAC)."""
    p = PROCESS[kind]
    measured = dict(p.get("measured", {}))
    measured[p["ref"][0]] = p["ref"][1]
    if model in measured:
        return measured[model], ""
    ref = min(measured, key=lambda r: abs(MODELS[r][1] - MODELS[model][1]))
    return measured[ref] * MODELS[ref][1] / MODELS[model][1], "~"


def bandwidth(S, n, t_c, lat, budget):
    """Bytes/s per process for t_comm <= budget * t_c (None: the latency alone exceeds it)."""
    spare = budget * t_c - 2 * (n - 1) * lat
    if spare <= 0:
        return None
    return 2 * (n - 1) / n * S / spare


def fmt_bw(b):
    if b is None:
        return "latency-bound"
    for unit, f in (("TB/s", 1e12), ("GB/s", 1e9), ("MB/s", 1e6)):
        if b >= f:
            return f"{b / f:.3g} {unit}"
    return f"{b / 1e3:.3g} kB/s"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency-us", type=float, default=2.0,
                    help="per-message latency of one ring hop (InfiniBand ~2, TCP ~30)")
    a = ap.parse_args()
    lat = a.latency_us * 1e-6
    print(f"ring all-reduce, {a.latency_us:g} us per hop; bandwidth per process for 90% "
          f"efficiency, without / with overlap of the backward pass")
    print("| model | params | MB all-reduced per step (sent per process, N large) | process | "
          "batch | compute ms/step | N = 8 | N = 64 | N = 256 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for m, (params, macs) in MODELS.items():
        S = 4.0 * params
        for kind in PROCESS:
            b = PROCESS[kind]["batch"][m]
            rate, approx = throughput(kind, m)
            t_c = b / rate
            cells = []
            for n in (8, 64, 256):
                cells.append(f"{fmt_bw(bandwidth(S, n, t_c, lat, 1 / 9))} / "
                             f"{fmt_bw(bandwidth(S, n, t_c, lat, 2 / 3 + 1 / 9))}")
            print(f"| {m} | {params / 1e6:.2f}M | {S / 1e6:.2f} ({2 * S / 1e6:.2f}) | {kind} | "
                  f"{b} | {approx}{1e3 * t_c:.3g} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
