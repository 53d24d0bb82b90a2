"""
safetensors_io.py — a small writer and reader of the safetensors format, for the scripts in
tools/ (Debian has no python3-safetensors).

Layout: an 8-byte little-endian header length, a JSON header (padded with spaces to a multiple
of 8 bytes), then the raw little-endian bytes of every tensor. The header maps each name to
{"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the end of the header)
and may hold "__metadata__": {str: str}. Tensors are written in sorted key order.
"""
import json
import struct

import numpy as np

_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "U8": np.dtype("u1"),
}
_NAMES = {(v.kind, v.itemsize): k for k, v in _DTYPES.items()}


def save(path, tensors, metadata=None):
    """Writes {name: numpy array} (F64/F32/F16/I64/I32/U8) and optional string metadata."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        a = np.asarray(tensors[name])
        key = (a.dtype.kind, a.dtype.itemsize)
        if key not in _NAMES:
            raise ValueError(f"{name}: unsupported dtype {a.dtype}")
        raw = np.ascontiguousarray(a, dtype=_DTYPES[_NAMES[key]]).tobytes()
        header[name] = {
            "dtype": _NAMES[key],
            "shape": [int(s) for s in a.shape],
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode("utf-8")
    text += b" " * ((-len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def load(path):
    """Returns ({name: numpy array}, metadata dict)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        dt = _DTYPES[info["dtype"]]
        out[name] = np.frombuffer(data[base + b:base + e], dtype=dt).reshape(info["shape"]).copy()
    return out, meta
