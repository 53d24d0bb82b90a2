#!/usr/bin/env python3
"""
check_onnx.py — checks an ONNX file written by `resnet export` (for tests/onnx_test.sh):
onnx.checker.check_model(full_check=True), the input/output names and batch dimension, the
normalization metadata, and ONNX Runtime's logits against reference logits.

usage: check_onnx.py MODEL.onnx INPUTS.safetensors --ref LABEL=FILE[:KEY] ... [--batch 1|dynamic]
                     [--tol 1e-5] [--predict TSV]

INPUTS holds "input" (N, C, H, W). Each --ref names a safetensors file and its logits tensor
(KEY, default "logits") of shape (N, classes). With --batch 1 the images run one at a time;
with dynamic, the whole batch at once and then the first image alone. The difference is
relative to the reference: max |ort - ref| / max |ref|, which must be <= TOL for every
reference. --predict compares softmax(ORT logits) with `resnet predict --top K` output rows
(PATH RANK CLASS PROBABILITY, the images in INPUTS' order) within TOL.

Runs in the virtual environment that has onnx and onnxruntime (numpy 2); it never imports torch.
"""
import argparse
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("onnx_file")
    ap.add_argument("inputs")
    ap.add_argument("--ref", action="append", default=[])
    ap.add_argument("--batch", default="dynamic")
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--predict")
    a = ap.parse_args()

    model = onnx.load(a.onnx_file)
    onnx.checker.check_model(model, full_check=True)
    g = model.graph
    if [i.name for i in g.input] != ["input"] or [o.name for o in g.output] != ["logits"]:
        fail(f"inputs {[i.name for i in g.input]}, outputs {[o.name for o in g.output]}")
    dim0 = g.input[0].type.tensor_type.shape.dim[0]
    if a.batch == "dynamic" and dim0.dim_param != "N":
        fail(f"batch dimension {dim0}, expected the dynamic 'N'")
    if a.batch != "dynamic" and dim0.dim_value != int(a.batch):
        fail(f"batch dimension {dim0}, expected {a.batch}")
    meta = {p.key: p.value for p in model.metadata_props}
    for key in ("mean", "std", "normalization", "model"):
        if key not in meta:
            fail(f"metadata lacks '{key}'")

    x = safetensors_io.load(a.inputs)[0]["input"]
    sess = ort.InferenceSession(a.onnx_file, providers=["CPUExecutionProvider"])
    if a.batch == "dynamic":
        got = sess.run(None, {"input": x})[0]
        first = sess.run(None, {"input": x[:1]})[0]
        if not np.allclose(first, got[:1], rtol=0, atol=1e-5 * np.abs(got).max()):
            fail("batch of 1 differs from the same image in the batch")
    else:
        got = np.concatenate([sess.run(None, {"input": x[i:i + 1]})[0] for i in range(len(x))])

    report = []
    for spec in a.ref:
        label, path = spec.split("=", 1)
        key = "logits"
        if ":" in path:
            path, key = path.rsplit(":", 1)
        ref = safetensors_io.load(path)[0][key]
        if ref.shape != got.shape:
            fail(f"{label}: shape {ref.shape}, ONNX Runtime {got.shape}")
        rel = float(np.abs(got - ref).max() / np.abs(ref).max())
        report.append(f"{label} {rel:.2g}")
        if not rel <= a.tol:
            fail(f"{label}: max |ort - ref| / max |ref| = {rel:.3g} > {a.tol}")

    if a.predict:
        p = np.exp(got - got.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        images, worst = [], 0.0
        with open(a.predict) as f:
            for line in f:
                path, rank, cls, prob = line.rstrip("\n").split("\t")
                if path not in images:
                    images.append(path)
                d = abs(p[images.index(path), int(cls)] - float(prob))
                worst = max(worst, d)
        if len(images) != len(x) or not worst <= a.tol:
            fail(f"predict: {len(images)} images, max |p_ort - p_predict| = {worst:.3g}")
        report.append(f"predict (probabilities) {worst:.2g}")

    print(f"full_check ok, opset {model.opset_import[0].version}, batch {a.batch}; "
          f"relative difference to {', '.join(report)}")


if __name__ == "__main__":
    main()
