#!/usr/bin/python3
"""data_vs_pytorch.py — images/s of the streamed JPEG pipeline (`resnet data bench`) against
PyTorch's DataLoader with torchvision's transforms, on the same files in the same run.

    /usr/bin/python3 bench/data_vs_pytorch.py ROOT [--size 224] [--transform train|eval]
        [--threads 2] [--workers 2] [--batch 64] [--split train] [--rounds 2]
        [--resnet ./resnet] [--dct | --no-dct]

ROOT is an ImageNet-layout folder (ROOT/SPLIT/CLASS/*.JPEG; tools/make_photo_set.py writes
one). PyTorch reads it with ImageFolder (PIL loader) and
  train: RandomResizedCrop(S) + RandomHorizontalFlip() + ToTensor() + Normalize(ImageNet)
  eval:  Resize(S*256/224) + CenterCrop(S) + ToTensor() + Normalize(ImageNet)
through DataLoader(batch, shuffle for train, num_workers=W). Both read one whole epoch; each
runs --rounds times, alternating, and the best round of each counts (the first round also warms
the page cache). Prints both images/s and the ratio.
"""
import argparse
import os
import re
import subprocess
import sys
import time

import torch
import torchvision
import torchvision.transforms as T


def ours(a):
    cmd = [a.resnet, "data", "bench", "--data", f"folder:{a.root}", "--split", a.split,
           "--size", str(a.size), "--transform", a.transform, "--threads", str(a.threads),
           "--batch", str(a.batch)]
    if not a.dct:
        cmd.append("--no-dct")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return float(re.search(r"^images/s: ([0-9.]+)", out, re.M).group(1))


def pytorch(a):
    norm = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    if a.transform == "train":
        tf = T.Compose([T.RandomResizedCrop(a.size), T.RandomHorizontalFlip(), T.ToTensor(), norm])
    else:
        tf = T.Compose([T.Resize(a.size * 256 // 224), T.CenterCrop(a.size), T.ToTensor(), norm])
    ds = torchvision.datasets.ImageFolder(os.path.join(a.root, a.split), tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=a.transform == "train",
                                         num_workers=a.workers)
    n = 0
    t0 = time.perf_counter()
    for x, _ in loader:
        n += x.shape[0]
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--transform", choices=["train", "eval"], default="train")
    ap.add_argument("--threads", type=int, default=2, help="our decoding threads")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--split", default="train")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--resnet", default=os.path.join(os.path.dirname(__file__), "..", "resnet"))
    ap.add_argument("--dct", dest="dct", action="store_true", default=True,
                    help="train: DCT-domain downscaling (the default)")
    ap.add_argument("--no-dct", dest="dct", action="store_false")
    a = ap.parse_args()
    torch.set_num_threads(1)
    best_ours = best_torch = 0.0
    for r in range(a.rounds):
        o, p = ours(a), pytorch(a)
        print(f"round {r + 1}: resnet.c {o:.1f} images/s, PyTorch {p:.1f} images/s", flush=True)
        best_ours, best_torch = max(best_ours, o), max(best_torch, p)
    print(f"files: {a.root}/{a.split}, {a.transform} transform at {a.size}, batch {a.batch}, "
          f"DCT scaling {'on' if a.dct and a.transform == 'train' else 'off'}")
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")
    print(f"resnet.c data bench ({a.threads} threads): {best_ours:.1f} images/s")
    print(f"PyTorch DataLoader ({a.workers} workers): {best_torch:.1f} images/s")
    print(f"ratio: {best_ours / best_torch:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
