#!/usr/bin/python3
"""Writes tests/data/st_torch_fixture.safetensors: a few small PyTorch tensors of every dtype
resnet.c reads, serialized byte for byte the way the safetensors library (safetensors.torch
.save_file) does it, for tests/test_safetensors.c.

Debian has no python3-safetensors, so the bytes are written here by hand, following the
library's serializer:
  - tensors are laid out sorted by dtype (largest element first, the library's Dtype order)
    and then by name, with contiguous data offsets;
  - the header is compact JSON (no spaces), "__metadata__" first, then the tensors in
    layout order, non-ASCII text as raw UTF-8;
  - the header is padded with spaces to a multiple of 8 bytes.
The torch version goes into the metadata.

Run with Debian's python3-torch:  /usr/bin/python3 tools/make_st_fixture.py
"""
import json
import os
import struct

import torch

# The safetensors library's Dtype enum order (its sort key, compared in reverse).
DTYPE_RANK = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16",
              "I32", "U32", "F32", "F64", "I64", "U64"]
DTYPE_NAME = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16",
              torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32",
              torch.uint8: "U8"}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.view(torch.int16)  # numpy has no bfloat16; the bits are what matter
    return t.numpy().tobytes()  # little-endian on every machine we run on


def tensors():
    # Values the C test can recompute exactly.
    return {
        "layer1.0.conv1.weight": torch.arange(18, dtype=torch.float32).reshape(2, 1, 3, 3)
                                 * 0.25 - 2.0,
        "fc.bias": torch.tensor([0.5, -1.25, 3.0], dtype=torch.float32),
        "bn1.num_batches_tracked": torch.tensor(123456789012, dtype=torch.int64),  # 0-d
        "f64": torch.tensor([3.141592653589793, -1e-300, 2.0 ** 60], dtype=torch.float64),
        "f16": torch.tensor([1.5, -2.0, 65504.0, 2.0 ** -14], dtype=torch.float16),
        "bf16": torch.tensor([1.0, 3.14159265, -0.5], dtype=torch.float32).to(torch.bfloat16),
        "i32": torch.tensor([[-7, 0], [2147483647, -2147483648]], dtype=torch.int32),
        "u8": torch.tensor([0, 1, 128, 255], dtype=torch.uint8),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
    }


def serialize(named, metadata):
    items = sorted(named.items(),
                   key=lambda kv: (-DTYPE_RANK.index(DTYPE_NAME[kv[1].dtype]), kv[0]))
    header = {"__metadata__": dict(sorted(metadata.items()))}
    data = b""
    for name, t in items:
        b = tensor_bytes(t)
        header[name] = {"dtype": DTYPE_NAME[t.dtype], "shape": list(t.shape),
                        "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "..", "tests", "data", "st_torch_fixture.safetensors")
    blob = serialize(tensors(), {"format": "pt", "torch_version": torch.__version__,
                                 "note": "température µ"})
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "wb") as f:
        f.write(blob)
    print(f"wrote {os.path.normpath(out)}: {len(blob)} bytes, torch {torch.__version__}")


if __name__ == "__main__":
    main()
