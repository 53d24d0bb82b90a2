"""
gen_reference.py — writes the PyTorch reference data the parity tests compare against:

  tests/data/ref_ops.safetensors       every op case: inputs, parameters, a random upstream
                                       gradient "dout", the output and every gradient
  tests/data/ref_resnet20.safetensors  resnet20 (akamaster): weights, eval and train forward,
                                       loss, input and parameter gradients, updated BN buffers
  tests/data/resnet20_torch.safetensors  the same resnet20 weights alone, as a weights file
  tests/data/ref_resnet18.safetensors  resnet18 (kuangliu) with weights from a hash formula that
                                       the C tests reproduce (tests/testutil.c tu_fill_hash),
                                       so 11M weights need not be stored ("fill.<key>" keeps
                                       256 sampled values to check the fill); gradients are
                                       stored as L2 norms plus 256 sampled elements per tensor

The resnet files' metadata "state_dict_keys" lists PyTorch's state_dict keys in order.

Run from the repository root with Debian's torch: /usr/bin/python3 tools/gen_reference.py
Every file records the torch version in its __metadata__ "torch_version". Everything is seeded,
single-threaded and float32, so a rerun with the same torch writes the same bytes.

Gradients are those of sum(out * dout) for a random dout, by autograd. Op cases worth a note:
  maxpool_ties  inputs rounded to a few levels, so about a third of the windows hold a tied
                maximum; PyTorch's CPU kernel gives the gradient to the FIRST maximum in
                row-major scan order (asserted below against a direct implementation)
  bn_train      running_var is updated with the UNBIASED batch variance (n/(n-1)) while the
                output uses the biased one (asserted below)
  xent_ls       label smoothing 0.1: loss = (1-eps)*nll + eps*mean_k(-log p_k) (asserted below)
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import torch_models  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")
META = {"torch_version": torch.__version__, "generator": "tools/gen_reference.py"}


def np32(t):
    return t.detach().cpu().numpy().astype(np.float32)


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def leaf(t):
    return t.clone().requires_grad_(True)


# ---------------------------------------------------------------------------------------------
# Op cases
# ---------------------------------------------------------------------------------------------


def backprop(out, dout, named_leaves):
    """Gradients of sum(out * dout) with respect to each named leaf."""
    (out * dout).sum().backward()
    return {name: np32(t.grad) for name, t in named_leaves.items()}


def case_conv(x_shape, w_shape, stride, pad, bias):
    x = leaf(randn(*x_shape))
    w = leaf(randn(*w_shape) / np.sqrt(np.prod(w_shape[1:])))
    b = leaf(randn(w_shape[0])) if bias else None
    out = F.conv2d(x, w, b, stride=stride, padding=pad)
    dout = randn(*out.shape)
    leaves = {"dx": x, "dw": w}
    if bias:
        leaves["db"] = b
    r = {"x": np32(x), "w": np32(w), "out": np32(out), "dout": np32(dout)}
    if bias:
        r["b"] = np32(b)
    r.update(backprop(out, dout, leaves))
    return r


def case_bn(train):
    N, C, H, W = 4, 6, 5, 5
    x = leaf(randn(N, C, H, W) * 2.0 + torch.linspace(-1, 1, C).view(1, C, 1, 1))
    gamma = leaf(0.5 + torch.rand(C))
    beta = leaf(0.2 * randn(C))
    rm = 0.3 * randn(C)
    rv = 0.5 + torch.rand(C)
    r = {"x": np32(x), "gamma": np32(gamma), "beta": np32(beta),
         "running_mean": np32(rm), "running_var": np32(rv)}
    rm_after, rv_after = rm.clone(), rv.clone()
    out = F.batch_norm(x, rm_after, rv_after, gamma, beta, training=train, momentum=0.1, eps=1e-5)
    dout = randn(*out.shape)
    r.update({"out": np32(out), "dout": np32(dout)})
    r.update(backprop(out, dout, {"dx": x, "dgamma": gamma, "dbeta": beta}))
    if train:
        # PyTorch normalizes with the biased batch variance but folds the UNBIASED one
        # (factor n/(n-1)) into running_var.
        xs = r["x"].astype(np.float64)
        n = N * H * W
        mean = xs.mean(axis=(0, 2, 3))
        var_unb = xs.var(axis=(0, 2, 3)) * n / (n - 1)
        want_rv = 0.9 * r["running_var"] + 0.1 * var_unb
        want_rm = 0.9 * r["running_mean"] + 0.1 * mean
        assert np.allclose(np32(rv_after), want_rv, rtol=1e-5), "running_var formula"
        assert np.allclose(np32(rm_after), want_rm, rtol=1e-5, atol=1e-7), "running_mean formula"
        r["running_mean_after"] = np32(rm_after)
        r["running_var_after"] = np32(rv_after)
    return r


def case_relu():
    x = leaf(randn(3, 4, 5, 5))  # no exact zeros (where the derivative is a convention)
    out = F.relu(x)
    dout = randn(*out.shape)
    r = {"x": np32(x), "out": np32(out), "dout": np32(dout)}
    r.update(backprop(out, dout, {"dx": x}))
    return r


def first_max_dx(x, dout, k, s, p):
    """Max-pool gradient with ties going to the first maximum in row-major scan order."""
    N, C, H, W = x.shape
    Ho, Wo = dout.shape[2:]
    dx = np.zeros_like(x, dtype=np.float64)
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    best, arg = -np.inf, None
                    for ih in range(oh * s - p, oh * s - p + k):
                        for iw in range(ow * s - p, ow * s - p + k):
                            if 0 <= ih < H and 0 <= iw < W and x[n, c, ih, iw] > best:
                                best, arg = x[n, c, ih, iw], (ih, iw)
                    dx[n, c, arg[0], arg[1]] += dout[n, c, oh, ow]
    return dx


def case_maxpool(ties):
    x = randn(2, 3, 9, 10)
    if ties:
        x = torch.round(x * 1.5)  # few distinct values: most windows hold a tie for the max
    x = leaf(x)
    out = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
    dout = randn(*out.shape)
    r = {"x": np32(x), "out": np32(out), "dout": np32(dout)}
    r.update(backprop(out, dout, {"dx": x}))
    # Check the rule the C kernel follows (and ops.h documents) against what torch did.
    want = first_max_dx(r["x"], r["dout"], 3, 2, 1)
    assert np.allclose(r["dx"], want, atol=1e-6), "max pool ties are not first-in-scan-order"
    return r


def case_avgpool():
    x = leaf(randn(2, 5, 4, 4))
    out = F.adaptive_avg_pool2d(x, 1).flatten(1)  # (N, C)
    dout = randn(*out.shape)
    r = {"x": np32(x), "out": np32(out), "dout": np32(dout)}
    r.update(backprop(out, dout, {"dx": x}))
    return r


def case_linear():
    x = leaf(randn(3, 7))
    w = leaf(randn(5, 7) / np.sqrt(7))
    b = leaf(randn(5))
    out = F.linear(x, w, b)
    dout = randn(*out.shape)
    r = {"x": np32(x), "w": np32(w), "b": np32(b), "out": np32(out), "dout": np32(dout)}
    r.update(backprop(out, dout, {"dx": x, "dw": w, "db": b}))
    return r


def case_shortcut_a():
    planes = 16
    x = leaf(randn(2, 8, 9, 9))
    out = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4), "constant", 0)
    dout = randn(*out.shape)
    r = {"x": np32(x), "out": np32(out), "dout": np32(dout)}
    r.update(backprop(out, dout, {"dx": x}))
    return r


def case_xent(smoothing):
    N, K = 5, 7
    logits = leaf(randn(N, K) * 2.0)
    labels = torch.randint(0, K, (N,), dtype=torch.int64)
    loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
    loss.backward()
    # PyTorch's label smoothing: (1-eps)*nll + eps*mean_k(-log p_k), i.e. the target
    # distribution is (1-eps)*onehot + eps/K (the true class also gets eps/K).
    logp = F.log_softmax(logits.detach().double(), dim=1)
    nll = -logp[torch.arange(N), labels]
    want = ((1 - smoothing) * nll + smoothing * (-logp).mean(dim=1)).mean()
    assert abs(want.item() - loss.item()) < 1e-5, "label smoothing formula"
    return {"logits": np32(logits), "labels": labels.numpy().astype(np.int64),
            "probs": np32(F.softmax(logits, dim=1)), "loss": np32(loss),
            "dlogits": np32(logits.grad)}


OP_CASES = [
    ("conv3x3_s1", lambda: case_conv((2, 4, 8, 8), (6, 4, 3, 3), 1, 1, False)),
    ("conv3x3_s2", lambda: case_conv((2, 4, 9, 9), (6, 4, 3, 3), 2, 1, False)),
    ("conv1x1_s2", lambda: case_conv((2, 8, 9, 9), (16, 8, 1, 1), 2, 0, False)),
    ("conv7x7_s2_bias", lambda: case_conv((2, 3, 17, 19), (4, 3, 7, 7), 2, 3, True)),
    ("conv3x3_odd", lambda: case_conv((3, 5, 9, 11), (7, 5, 3, 3), 1, 1, False)),
    ("bn_train", lambda: case_bn(True)),
    ("bn_eval", lambda: case_bn(False)),
    ("relu", case_relu),
    ("maxpool", lambda: case_maxpool(False)),
    ("maxpool_ties", lambda: case_maxpool(True)),
    ("avgpool", case_avgpool),
    ("linear", case_linear),
    ("shortcut_a", case_shortcut_a),
    ("xent", lambda: case_xent(0.0)),
    ("xent_ls", lambda: case_xent(0.1)),
]


def gen_ops():
    tensors = {}
    for i, (name, fn) in enumerate(OP_CASES):
        torch.manual_seed(1000 + i)
        for what, arr in fn().items():
            tensors[f"{name}.{what}"] = arr
    path = os.path.join(DATA, "ref_ops.safetensors")
    safetensors_io.save(path, tensors, META)
    return path


# ---------------------------------------------------------------------------------------------
# Whole models
# ---------------------------------------------------------------------------------------------


def param_and_buffer_keys(model):
    params = [k for k, _ in model.named_parameters()]
    buffers = [k for k, _ in model.named_buffers()]
    return params, buffers


def to_numpy(t):
    t = t.detach().cpu()
    if t.dtype == torch.int64:
        return t.numpy().astype(np.int64)
    return t.numpy().astype(np.float32)


def gen_resnet20():
    torch.manual_seed(0)
    model = torch_models.build("resnet20")
    # Non-trivial BN state, so that eval mode and the affine parameters are really tested.
    torch_models.randomize_bn(model, torch.Generator().manual_seed(1))
    state = {k: to_numpy(v) for k, v in model.state_dict().items()}
    params, buffers = param_and_buffer_keys(model)

    torch.manual_seed(2)
    x = torch.randn(4, 3, 32, 32)
    labels = torch.randint(0, 10, (4,), dtype=torch.int64)

    model.eval()
    with torch.no_grad():
        logits_eval = model(x)

    model.train()
    xg = leaf(x)
    logits = model(xg)
    loss = F.cross_entropy(logits, labels)
    loss.backward()

    named_params = dict(model.named_parameters())
    named_buffers = dict(model.named_buffers())
    t = {"w." + k: v for k, v in state.items()}
    t.update({"x": np32(x), "labels": labels.numpy().astype(np.int64),
              "logits_eval": np32(logits_eval), "logits": np32(logits), "loss": np32(loss),
              "dx": np32(xg.grad)})
    for k in params:
        t["grad." + k] = np32(named_params[k].grad)
    for k in buffers:
        t["after." + k] = to_numpy(named_buffers[k])
    meta = dict(META, model="resnet20", state_dict_keys=",".join(state))
    p1 = os.path.join(DATA, "ref_resnet20.safetensors")
    safetensors_io.save(p1, t, meta)
    p2 = os.path.join(DATA, "resnet20_torch.safetensors")
    safetensors_io.save(p2, state, {"model": "resnet20", "torch_version": torch.__version__})
    return p1, p2


M32 = np.uint64(0xFFFFFFFF)


def hash_uniform(t, n):
    """u in [0,1) for elements 0..n-1 of state tensor number t (see tests/testutil.c)."""
    i = np.arange(n, dtype=np.uint64)
    x = (np.uint64(t) * np.uint64(0x9E3779B1) + i * np.uint64(0x85EBCA77) +
         np.uint64(0x165667B1)) & M32
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x2C1B3C6D)) & M32
    x ^= x >> np.uint64(12)
    x = (x * np.uint64(0x297A2D39)) & M32
    x ^= x >> np.uint64(15)
    return x.astype(np.float64) / 4294967296.0


def hash_value(key, t, shape):
    """The value of state tensor `key` (index t in state_dict order) under the hash fill."""
    n = int(np.prod(shape)) if len(shape) else 1
    if key.endswith("num_batches_tracked"):
        return np.zeros(shape, dtype=np.int64)
    u = hash_uniform(t, n)
    if key.endswith("running_mean"):
        v = 0.1 * (2.0 * u - 1.0)
    elif key.endswith("running_var"):
        v = 0.5 + u
    elif key.endswith("bias"):
        v = 0.2 * (2.0 * u - 1.0)
    elif key.endswith("weight") and len(shape) == 1:  # BN weight
        v = 0.5 + u
    elif key.endswith("weight"):  # conv (K,C,R,S) or linear (O,I)
        fan_in = n // shape[0]
        v = (2.0 * u - 1.0) / np.sqrt(float(fan_in))
    else:
        raise ValueError(f"hash fill: no rule for {key}")
    return v.astype(np.float32).reshape(shape)


def sample_indices(numel, m=256):
    m = min(numel, m)
    return np.array([(j * numel) // m for j in range(m)], dtype=np.int64)


def gen_resnet18():
    torch.manual_seed(0)
    model = torch_models.build("resnet18")
    sd = model.state_dict()
    with torch.no_grad():
        for t, (k, v) in enumerate(sd.items()):
            v.copy_(torch.from_numpy(hash_value(k, t, tuple(v.shape))))
    params, buffers = param_and_buffer_keys(model)
    # A sample of the filled weights, which the C fill must reproduce bit for bit.
    fill = {"fill." + k: v.flatten().numpy()[sample_indices(v.numel())].copy()
            for k, v in sd.items() if v.dtype == torch.float32}

    torch.manual_seed(3)
    x = torch.randn(2, 3, 32, 32)
    labels = torch.randint(0, 10, (2,), dtype=torch.int64)

    model.eval()
    with torch.no_grad():
        logits_eval = model(x)
    model.train()
    xg = leaf(x)
    logits = model(xg)
    loss = F.cross_entropy(logits, labels)
    loss.backward()

    out = {"x": np32(x), "labels": labels.numpy().astype(np.int64),
           "logits_eval": np32(logits_eval), "logits": np32(logits), "loss": np32(loss),
           "dx": np32(xg.grad)}
    out.update(fill)
    named_params = dict(model.named_parameters())
    for k in params:
        g = named_params[k].grad.detach().double().flatten().numpy()
        out["gradnorm." + k] = np.array(np.sqrt(np.sum(g * g)), dtype=np.float64)
        out["gradsample." + k] = g[sample_indices(g.size)].astype(np.float32)
    named_buffers = dict(model.named_buffers())
    for k in buffers:
        out["after." + k] = to_numpy(named_buffers[k])
    path = os.path.join(DATA, "ref_resnet18.safetensors")
    meta = dict(META, model="resnet18", weights="hash fill (tests/testutil.c tu_fill_hash)",
                state_dict_keys=",".join(sd))
    safetensors_io.save(path, out, meta)
    return path


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch_models.check_param_counts()
    os.makedirs(DATA, exist_ok=True)
    for path in [gen_ops(), *gen_resnet20(), gen_resnet18()]:
        print(f"{os.path.relpath(path)}: {os.path.getsize(path):,d} bytes")


if __name__ == "__main__":
    main()
