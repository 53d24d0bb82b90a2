#!/usr/bin/env python3
"""
torch_recipe.py — the paper's CIFAR recipe (he2015) in PyTorch on one GPU, on the same data
resnet.c trains on, for comparing test error and wall time with `resnet train --recipe he2015
--device cuda`.

The data is a CIFAR-style binary folder (tools/prepare_cifar10.sh writes data/cifar10 from the
shared JPEG archive). Like resnet.c it holds the whole set on the GPU, draws each batch there
(pad 4 with black, random 32x32 crop, random horizontal flip, per-channel normalization with
the training set's statistics), and trains tools/torch_models.py's network: 45k/5k split,
batch 128, SGD lr 0.1 momentum 0.9 weight decay 1e-4, lr/10 at 32k and 48k steps, 64k steps.
The model runs channels_last in TF32, compiled with torch.compile(mode="reduce-overhead")
unless --no-compile. Usage, from the repository root:

    python3 bench/torch_recipe.py [--data data/cifar10] [--model resnet20] [--iters 64000]
                                  [--no-compile] [--device cuda] [--log-every 8000]
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import torch_models  # noqa: E402


def load(folder, names):
    raw = b"".join(open(os.path.join(folder, n), "rb").read() for n in names)
    rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 1 + 3 * 32 * 32)
    return rec[:, 1:].reshape(-1, 3, 32, 32), rec[:, 0].astype(np.int64)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "cifar10"))
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--iters", type=int, default=64000)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--log-every", type=int, default=8000,
                    help="steps between lines of mean training loss and accuracy")
    a = ap.parse_args()
    dev = torch.device(a.device)
    torch.manual_seed(a.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    xtr, ytr = load(a.data, ["data_batch_%d.bin" % i for i in range(1, 6)])
    xte, yte = load(a.data, ["test_batch.bin"])
    perm = torch.randperm(len(xtr), generator=torch.Generator().manual_seed(a.seed)).numpy()
    val, train = perm[:5000], perm[5000:]
    to = lambda x: torch.from_numpy(np.ascontiguousarray(x)).to(dev)
    xt, yt, xv, yv, xs, ys = to(xtr[train]), to(ytr[train]), to(xtr[val]), to(ytr[val]), to(xte), to(yte)
    f = xt.float() / 255
    mean = f.mean(dim=(0, 2, 3)).view(1, 3, 1, 1)
    std = f.std(dim=(0, 2, 3), unbiased=False).view(1, 3, 1, 1)
    del f
    norm = lambda x: ((x.float() / 255 - mean) / std).contiguous(memory_format=torch.channels_last)

    model = torch_models.build(a.model).to(dev, memory_format=torch.channels_last)
    net = model if a.no_compile else torch.compile(model, mode="reduce-overhead")
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [a.iters // 2, a.iters * 3 // 4], 0.1)
    B, n = 128, len(xt)
    ar = torch.arange(32, device=dev)

    def batch(idx):
        x = F.pad(xt[idx], (4, 4, 4, 4))                       # uint8, black border
        dy = torch.randint(0, 9, (B,), device=dev)
        dx = torch.randint(0, 9, (B,), device=dev)
        rows = (dy[:, None] + ar)[:, :, None]
        cols = (dx[:, None] + ar)[:, None, :]
        x = x[torch.arange(B, device=dev)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)
        flip = torch.rand(B, device=dev) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return norm(x), yt[idx]

    def accuracy(x, y):
        model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(x), 1000):
                correct += (model(norm(x[i:i + 1000])).argmax(1) == y[i:i + 1000]).sum().item()
        model.train()
        return correct / len(x)

    loss_fn = torch.nn.CrossEntropyLoss()
    order, pos = torch.randperm(n, device=dev), 0
    loss_sum = torch.zeros((), device=dev)
    correct = torch.zeros((), device=dev)
    t0 = time.time()
    for step in range(a.iters):
        if pos + B > n:
            order, pos = torch.randperm(n, device=dev), 0
        x, y = batch(order[pos:pos + B])
        pos += B
        if not a.no_compile:
            torch.compiler.cudagraph_mark_step_begin()
        logits = net(x)
        loss = loss_fn(logits, y)
        loss_sum += loss.detach()
        correct += (logits.detach().argmax(1) == y).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % a.log_every == 0 or step + 1 == a.iters:
            k = (step + 1) % a.log_every or a.log_every
            print("step %d  loss %.4f  acc %.2f%%  lr %.4g  %.0f s" % (
                step + 1, loss_sum.item() / k, 100 * correct.item() / (k * B),
                sched.get_last_lr()[0], time.time() - t0), flush=True)
            loss_sum.zero_()
            correct.zero_()
    torch.cuda.synchronize() if dev.type == "cuda" else None
    wall = time.time() - t0
    print("PyTorch %s %s: %d steps in %.1f s (%.0f img/s); val acc %.2f%%, test acc %.2f%% "
          "(test error %.2f%%)" % (torch.__version__, a.model, a.iters, wall, a.iters * B / wall,
                                   100 * accuracy(xv, yv), 100 * accuracy(xs, ys),
                                   100 - 100 * accuracy(xs, ys)), flush=True)


if __name__ == "__main__":
    main()
