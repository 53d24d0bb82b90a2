#!/usr/bin/env python3
"""
onnx_reference.py — PyTorch's side of tests/onnx_test.sh: for one model of the zoo, weights
written by PyTorch and PyTorch's eval-mode logits for a few inputs, to compare with what ONNX
Runtime computes from `resnet export`'s file (tools/check_onnx.py).

Writes into OUT_DIR:
  MODEL.safetensors        the model's state_dict (seed 0 initialization, then every BN given
                           random weight, bias, running mean and variance so that BN is not an
                           identity), metadata: the torch version
  MODEL_torch.safetensors  "input" (N, C, H, W) drawn from N(0, 1) with seed 1, and "logits"
                           (N, classes): the model's output in eval mode

Run under /usr/bin/python3 (Debian's python3-torch); this file never imports onnx, which comes
in a separate virtual environment with numpy 2.

usage: python3 tools/onnx_reference.py MODEL OUT_DIR [--batch N]
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import torch_models  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out_dir")
    ap.add_argument("--batch", type=int, default=3)
    a = ap.parse_args()

    torch.manual_seed(0)
    model = torch_models.build(a.model)
    torch_models.randomize_bn(model, torch.Generator().manual_seed(2))
    model.eval()
    size = 224 if a.model.endswith("-imagenet") else 32
    x = torch.randn(a.batch, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(x)
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    safetensors_io.save(os.path.join(a.out_dir, f"{a.model}.safetensors"), state,
                        {"torch_version": torch.__version__})
    safetensors_io.save(os.path.join(a.out_dir, f"{a.model}_torch.safetensors"),
                        {"input": x.numpy(), "logits": logits.numpy()},
                        {"torch_version": torch.__version__})


if __name__ == "__main__":
    main()
