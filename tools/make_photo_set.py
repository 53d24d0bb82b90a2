#!/usr/bin/env python3
"""make_photo_set.py — writes an ImageNet-layout set of photo-sized JPEGs for the streaming
pipeline's tests and benchmarks, and optionally the same images as WebDataset tar shards.

    python3 tools/make_photo_set.py OUT [--classes 4] [--train 25] [--val 5]
        [--cifar ../shared/data/cifar10-jpeg.tar.gz] [--shards N] [--seed 0]

OUT/train/CLASS/NNNN.JPEG and OUT/val/CLASS/NNNN.JPEG, mostly 500x375 (also 375x500 and
500x333, as ImageNet's photos), quality 90. Each image is a CIFAR-10 JPEG upscaled (when --cifar
names the archive) or a random low-resolution field upscaled, plus grain so it compresses like a
photo (about 60-100 KB). With --shards N, OUT/shards/{train,val}-{000000..}.tar hold the same
images in the same order (class, then file name), N samples per shard, as KEY.jpg + KEY.cls.
Needs Pillow and numpy.
"""
import argparse
import io
import os
import random
import tarfile

import numpy as np
from PIL import Image

SIZES = [(500, 375)] * 6 + [(375, 500)] * 2 + [(500, 333)] * 2


def cifar_images(path):
    """(class name, JPEG bytes) of every CIFAR-10 training image in the archive."""
    out = []
    with tarfile.open(path) as t:
        for m in t:
            parts = m.name.split("/")
            if m.isfile() and len(parts) == 3 and parts[0] == "train":
                out.append((parts[1], t.extractfile(m).read()))
    return out


def photo(rng, nrng, seed_image, size):
    if seed_image is None:
        small = Image.fromarray(nrng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    else:
        small = Image.open(io.BytesIO(seed_image)).convert("RGB")
    big = np.asarray(small.resize(size, Image.BICUBIC), dtype=np.float32)
    big += nrng.normal(0, 10, big.shape)
    img = Image.fromarray(np.clip(big, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--train", type=int, default=25, help="images per class in train")
    ap.add_argument("--val", type=int, default=5, help="images per class in val")
    ap.add_argument("--cifar", help="cifar10-jpeg.tar.gz to upscale")
    ap.add_argument("--shards", type=int, default=0, help="samples per shard (0: no shards)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    nrng = np.random.default_rng(a.seed)
    seeds = cifar_images(a.cifar) if a.cifar else []
    classes = [f"c{k:03d}" for k in range(a.classes)]
    for split, count in (("train", a.train), ("val", a.val)):
        samples = []
        for k, cls in enumerate(classes):
            d = os.path.join(a.out, split, cls)
            os.makedirs(d, exist_ok=True)
            for i in range(count):
                seed_image = seeds[rng.randrange(len(seeds))][1] if seeds else None
                data = photo(rng, nrng, seed_image, rng.choice(SIZES))
                name = f"{cls}_{i:05d}"
                with open(os.path.join(d, name + ".JPEG"), "wb") as f:
                    f.write(data)
                samples.append((name, data, k))
        if a.shards:
            os.makedirs(os.path.join(a.out, "shards"), exist_ok=True)
            for s in range(0, len(samples), a.shards):
                path = os.path.join(a.out, "shards", f"{split}-{s // a.shards:06d}.tar")
                with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as t:
                    for name, data, k in samples[s:s + a.shards]:
                        for ext, payload in (("jpg", data), ("cls", str(k).encode())):
                            info = tarfile.TarInfo(f"{name}.{ext}")
                            info.size = len(payload)
                            t.addfile(info, io.BytesIO(payload))
    print(f"wrote {a.out}: {len(classes)} classes, {a.train} train and {a.val} val images each")


if __name__ == "__main__":
    main()
