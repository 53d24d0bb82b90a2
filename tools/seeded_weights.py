#!/usr/bin/env python3
"""
seeded_weights.py — initial weights of an akamaster CIFAR ResNet (resnet20/32/44/56/110) drawn
from Python's random.Random(seed), written as safetensors with the standard library only, so a
shell test can make them without numpy or torch (tests/trajectory_test.sh), and a torch script
can load the very same bytes (tools/loss_trajectory.py).

PyTorch's initialization, with the normal draws replaced by uniform ones of the same variance:
  conv weights                U(-a, a), a = sqrt(6 / fan_in)  (kaiming_normal_'s variance 2/fan_in)
  linear weight and bias      U(-b, b), b = 1 / sqrt(fan_in)  (nn.Linear's default; akamaster's
                              kaiming_normal_ there starts the loss near 4-5 instead of ln 10)
  BN weight 1, bias 0, running_mean 0, running_var 1, num_batches_tracked 0
Every tensor is drawn in state_dict order from one generator. random.Random(int).random() is
the one stream Python promises never to change, and sqrt is correctly rounded, so every
platform writes the same bytes.

usage: python3 tools/seeded_weights.py OUT.safetensors [--depth 20] [--classes 10]
                                       [--in-channels 3] [--seed 1]
"""
import argparse
import array
import json
import math
import random
import struct
import sys


def state_dict_shapes(depth, classes, in_channels):
    """[(key, shape)] of akamaster's resnet<depth> in state_dict order."""
    if (depth - 2) % 6 != 0:
        raise ValueError(f"depth {depth} is not 6n+2")
    n = (depth - 2) // 6
    out = []

    def bn(prefix, c):
        out.extend([(prefix + ".weight", (c,)), (prefix + ".bias", (c,)),
                    (prefix + ".running_mean", (c,)), (prefix + ".running_var", (c,)),
                    (prefix + ".num_batches_tracked", ())])

    out.append(("conv1.weight", (16, in_channels, 3, 3)))
    bn("bn1", 16)
    cin = 16
    for s, planes in enumerate((16, 32, 64)):
        for b in range(n):
            p = f"layer{s + 1}.{b}"
            out.append((p + ".conv1.weight", (planes, cin, 3, 3)))
            bn(p + ".bn1", planes)
            out.append((p + ".conv2.weight", (planes, planes, 3, 3)))
            bn(p + ".bn2", planes)
            cin = planes
    out.append(("linear.weight", (classes, 64)))
    out.append(("linear.bias", (classes,)))
    return out


def weights(depth=20, classes=10, in_channels=3, seed=1):
    """{key: (dtype, shape, array)} in state_dict order."""
    r = random.Random(seed)
    out = {}
    for key, shape in state_dict_shapes(depth, classes, in_channels):
        numel = math.prod(shape)
        if key.endswith("num_batches_tracked"):
            out[key] = ("I64", shape, array.array("q", [0]))
            continue
        if key.endswith("running_var") or (key.endswith(".weight") and len(shape) == 1):
            vals = [1.0] * numel
        elif key.endswith("running_mean") or (key.endswith(".bias") and key != "linear.bias"):
            vals = [0.0] * numel
        elif key.startswith("linear."):
            b = 1.0 / math.sqrt(64)
            vals = [(2.0 * r.random() - 1.0) * b for _ in range(numel)]
        else:
            a = math.sqrt(6.0 / (numel // shape[0]))
            vals = [(2.0 * r.random() - 1.0) * a for _ in range(numel)]
        out[key] = ("F32", shape, array.array("f", vals))
    return out


def save(path, tensors, metadata):
    """safetensors: 8-byte header length, JSON header padded to 8 bytes, little-endian data."""
    header = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for key, (dtype, shape, arr) in tensors.items():
        if sys.byteorder != "little":
            arr = array.array(arr.typecode, arr)
            arr.byteswap()
        raw = arr.tobytes()
        header[key] = {"dtype": dtype, "shape": list(shape),
                       "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((-len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def main():
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--in-channels", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    t = weights(a.depth, a.classes, a.in_channels, a.seed)
    save(a.out, t, {"model": f"resnet{a.depth}", "init": f"tools/seeded_weights.py seed {a.seed}"})


if __name__ == "__main__":
    main()
