#!/usr/bin/python3
"""Writes tests/data/resize_ref.bin: images resized by PIL's Image.resize(BILINEAR), the
reference that tests/test_data.c holds src/data/resize.c to (bit for bit).

Run with a Python that has Pillow and numpy (Debian: /usr/bin/python3).
File layout: one text line "resize_ref PIL <version> cases <n>\n", then per case five
little-endian int32 (src height, src width, dst height, dst width, channels), the source
pixels (channels, h, w) and PIL's result (channels, h, w), both planar uint8.
"""
import os
import struct

import numpy as np
import PIL
from PIL import Image

CASES = [  # (sh, sw, dh, dw, channels)
    (32, 32, 64, 48, 3),   # grow
    (28, 28, 32, 32, 1),   # MNIST to CIFAR size
    (100, 80, 32, 32, 3),  # shrink (the filter widens)
    (37, 53, 11, 7, 1),    # odd ratios
    (32, 32, 32, 16, 3),   # one axis only
    (9, 40, 27, 40, 1),    # the other axis only
    (1, 1, 5, 3, 3),       # a single pixel
    (5, 5, 17, 3, 1),
    (150, 120, 32, 24, 1), # a large shrink
]


def main():
    rng = np.random.default_rng(20240601)
    out = bytearray(f"resize_ref PIL {PIL.__version__} cases {len(CASES)}\n".encode())
    for sh, sw, dh, dw, c in CASES:
        # Half noise, half smooth gradient, so both aliasing and interpolation are exercised.
        noise = rng.integers(0, 256, (sh, sw, c), dtype=np.uint8)
        yy, xx = np.mgrid[0:sh, 0:sw]
        grad = ((yy * 7 + xx * 3) % 256).astype(np.uint8)[..., None].repeat(c, axis=2)
        src = np.where(rng.random((sh, sw, 1)) < 0.5, noise, grad).astype(np.uint8)
        img = Image.fromarray(src[..., 0] if c == 1 else src, "L" if c == 1 else "RGB")
        dst = np.asarray(img.resize((dw, dh), Image.BILINEAR)).reshape(dh, dw, c)
        out += struct.pack("<5i", sh, sw, dh, dw, c)
        out += src.transpose(2, 0, 1).tobytes()
        out += dst.transpose(2, 0, 1).tobytes()
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data",
                        "resize_ref.bin")
    with open(path, "wb") as f:
        f.write(out)
    print(f"wrote {path}: {len(CASES)} cases, {len(out)} bytes (PIL {PIL.__version__})")


if __name__ == "__main__":
    main()
