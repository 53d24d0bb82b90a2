#!/usr/bin/python3
"""
gen_predict_reference.py — the probabilities `resnet predict` must print, computed with PyTorch,
for tests/predict_test.sh.

  /usr/bin/python3 tools/gen_predict_reference.py
      writes the committed test images tests/data/images/ (a 32x32 RGB PNG, a 32x32 JPEG, a
      40x28 RGB PNG that predict resizes, a 32x32 grayscale PNG) and
      tests/data/predict_expected.tsv: the top-5 classes and probabilities of resnet20 with the
      weights tests/data/resnet20_torch.safetensors, for each image under
        case "default": the file has no mean/std metadata, so CIFAR-10's statistics apply
                        (mean 0.4914,0.4822,0.4465, std 0.2470,0.2435,0.2616)
        case "norm":    mean 0.5,0.5,0.5, std 0.25,0.25,0.25 (--mean/--std, or metadata)

  /usr/bin/python3 tools/gen_predict_reference.py --imagenet DIR
      writes DIR/resnet18_imagenet.safetensors (torchvision resnet18, seed 0, perturbed BN
      statistics; 47 MB, so made at test time rather than committed), DIR/imagenet224.png and
      DIR/expected.tsv (ImageNet normalization); and DIR/photo.jpg (500x375) with
      DIR/expected_preset.tsv, its top-5 through torchvision's evaluation transform
      (Resize(256) + CenterCrop(224) + ToTensor + Normalize), what `--preset imagenet` does.

What predict does, and what is done here to match it:
  - decode: PNG pixels are exactly the arrays written here. The JPEG is decoded with PIL
    (libjpeg); predict decodes with stb_image, and the two differ by up to 2 levels in some
    pixels of this JPEG (enough to move a probability by about 1e-5). So when libstb.so can be
    loaded (Debian's libstb-dev), the script decodes the JPEG with it through ctypes and uses
    those pixels, the exact input predict sees; the largest PIL/stb difference goes into the
    TSV header.
  - gray to RGB: the channel is replicated (stb_image's conversion).
  - resize only when the size differs from the model's input: PIL's
    Image.resize((W, H), Image.BILINEAR) on the uint8 pixels (antialiased when shrinking; what
    the data sets' --resize does, and torchvision's Resize on PIL images), before
    normalization.
  - normalize (pixel/255 - mean) / std per channel, float32; eval mode; softmax.
The torch version is recorded in the TSV header. Probabilities are written with 8 decimals;
each top-5 list is checked to have no near-ties, so the order is well defined.
"""
import argparse
import ctypes
import ctypes.util
import io
import os
import struct
import sys
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import torch_models  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
NORM_MEAN, NORM_STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
TOP = 5
MIN_GAP = 1e-3  # smallest allowed relative gap between neighbouring top-5 probabilities


# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------


def write_png(path, pixels):
    """A minimal 8-bit PNG (gray for (H, W), RGB for (H, W, 3)), no filtering."""
    px = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = px.shape[:2]
    color = 0 if px.ndim == 2 else 2
    raw = b"".join(b"\x00" + px[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data +
                struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


def pattern(h, w, seed, channels=3):
    """A smooth, deterministic picture (gradients, a disc, mild noise) of uint8 pixels."""
    g = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    out = []
    for c in range(channels):
        a, b, ph = g.uniform(0.05, 0.4), g.uniform(0.05, 0.4), g.uniform(0, 6.28)
        v = 128 + 90 * np.sin(a * x + b * y + ph)
        cy, cx, r = g.uniform(0.2, 0.8) * h, g.uniform(0.2, 0.8) * w, g.uniform(0.15, 0.3) * min(h, w)
        v = np.where((y - cy) ** 2 + (x - cx) ** 2 < r * r, 255 - v, v)
        v += g.normal(0, 6, size=v.shape)
        out.append(v)
    px = np.clip(np.rint(np.stack(out, axis=-1)), 0, 255).astype(np.uint8)
    return px[..., 0] if channels == 1 else px


def stb_decode(path):
    """The RGB pixels stb_image decodes (what predict sees), or None without libstb.so."""
    name = ctypes.util.find_library("stb")
    if not name:
        return None
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.stbi_load.restype = ctypes.POINTER(ctypes.c_ubyte)
    lib.stbi_load.argtypes = [ctypes.c_char_p] + [ctypes.POINTER(ctypes.c_int)] * 3 + [ctypes.c_int]
    w, h, c = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    p = lib.stbi_load(path.encode(), ctypes.byref(w), ctypes.byref(h), ctypes.byref(c), 3)
    if not p:
        return None
    px = np.ctypeslib.as_array(p, shape=(h.value, w.value, 3)).copy()
    lib.stbi_image_free(p)
    return px


# ---------------------------------------------------------------------------------------------
# What predict computes
# ---------------------------------------------------------------------------------------------


def model_input(pixels, size, mean, std):
    """uint8 (H, W) or (H, W, 3) pixels -> normalized (1, 3, size[0], size[1]) float32 input."""
    from PIL import Image

    px = np.asarray(pixels)
    if px.ndim == 2:
        px = np.repeat(px[:, :, None], 3, axis=2)  # gray -> RGB: stb replicates the channel
    if tuple(px.shape[:2]) != tuple(size):
        px = np.asarray(Image.fromarray(px, "RGB").resize((size[1], size[0]), Image.BILINEAR))
    x = torch.from_numpy(px.astype(np.float32)).permute(2, 0, 1).unsqueeze(0).contiguous()
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x / 255.0 - m) / s


def top_k(model, x, what):
    with torch.no_grad():
        probs = torch.softmax(model(x), dim=1)[0].double()
    p, idx = torch.sort(probs, descending=True, stable=True)
    p, idx = p[:TOP + 1].tolist(), idx[:TOP + 1].tolist()
    if any(p[i] - p[i + 1] < MIN_GAP * p[i] for i in range(TOP)):
        raise SystemExit(f"{what}: top-{TOP} probabilities {p} have a near-tie; change the image")
    return list(zip(idx[:TOP], p[:TOP]))


def write_tsv(path, header, rows):
    with open(path, "w") as f:
        for line in header:
            f.write(f"# {line}\n")
        f.write("# case\timage\trank\tclass\tprobability\n")
        for case, image, ranked in rows:
            for r, (c, p) in enumerate(ranked):
                f.write(f"{case}\t{image}\t{r + 1}\t{c}\t{p:.8f}\n")


def load_state(model, path):
    tensors, _ = safetensors_io.load(path)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=True)


# ---------------------------------------------------------------------------------------------
# The committed CIFAR references
# ---------------------------------------------------------------------------------------------


def gen_cifar():
    from PIL import Image

    img_dir = os.path.join(ROOT, "tests", "data", "images")
    os.makedirs(img_dir, exist_ok=True)
    rel = lambda name: f"tests/data/images/{name}"  # noqa: E731  (paths as the test passes them)

    images = {}  # name -> pixels predict sees
    px = pattern(32, 32, seed=1)
    write_png(os.path.join(img_dir, "rgb32.png"), px)
    images["rgb32.png"] = px

    px = pattern(32, 32, seed=2)
    jpg = os.path.join(img_dir, "rgb32.jpg")
    Image.fromarray(px, "RGB").save(jpg, quality=90, subsampling=0)
    pil = np.asarray(Image.open(jpg).convert("RGB"))
    stb = stb_decode(jpg)
    if stb is None:
        jpeg_note = "JPEG decoded with PIL (libstb.so not found to compare with stb_image)"
        images["rgb32.jpg"] = pil
    else:
        d = int(np.abs(pil.astype(int) - stb.astype(int)).max())
        jpeg_note = f"JPEG: PIL and stb_image decodes differ by at most {d} levels; stb's pixels used"
        images["rgb32.jpg"] = stb
    print(jpeg_note)

    px = pattern(28, 40, seed=3)  # height 28, width 40: resized to 32x32
    write_png(os.path.join(img_dir, "rgb40x28.png"), px)
    images["rgb40x28.png"] = px

    px = pattern(32, 32, seed=4, channels=1)
    write_png(os.path.join(img_dir, "gray32.png"), px)
    images["gray32.png"] = px

    weights = os.path.join(ROOT, "tests", "data", "resnet20_torch.safetensors")
    model = torch_models.build("resnet20")
    load_state(model, weights)
    model.eval()
    rows = []
    for case, mean, std in (("default", CIFAR_MEAN, CIFAR_STD), ("norm", NORM_MEAN, NORM_STD)):
        for name, px in images.items():
            x = model_input(px, (32, 32), mean, std)
            rows.append((case, rel(name), top_k(model, x, f"{case} {name}")))
    out = os.path.join(ROOT, "tests", "data", "predict_expected.tsv")
    write_tsv(out, [
        f"generated by tools/gen_predict_reference.py with torch {torch.__version__}",
        "model resnet20, weights tests/data/resnet20_torch.safetensors",
        f"default: mean {','.join(map(str, CIFAR_MEAN))} std {','.join(map(str, CIFAR_STD))}",
        f"norm: mean {','.join(map(str, NORM_MEAN))} std {','.join(map(str, NORM_STD))}",
        jpeg_note,
    ], rows)
    print("wrote", out)


# ---------------------------------------------------------------------------------------------
# resnet18-imagenet at test time
# ---------------------------------------------------------------------------------------------


def gen_imagenet(out_dir):
    torch.manual_seed(0)
    model = torch_models.build("resnet18-imagenet")
    torch_models.randomize_bn(model, torch.Generator().manual_seed(1))
    model.eval()
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    safetensors_io.save(os.path.join(out_dir, "resnet18_imagenet.safetensors"), state,
                        {"torch_version": torch.__version__})
    px = pattern(224, 224, seed=5)
    write_png(os.path.join(out_dir, "imagenet224.png"), px)
    x = model_input(px, (224, 224), IMAGENET_MEAN, IMAGENET_STD)
    ranked = top_k(model, x, "resnet18-imagenet")
    write_tsv(os.path.join(out_dir, "expected.tsv"),
              [f"torch {torch.__version__}, torchvision resnet18, ImageNet normalization"],
              [("imagenet", os.path.join(out_dir, "imagenet224.png"), ranked)])
    # --preset imagenet: a 500x375 photo-like JPEG through torchvision's evaluation transform.
    import torchvision.transforms as T
    from PIL import Image
    g = np.random.default_rng(6)
    small = Image.fromarray(g.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    a = np.asarray(small.resize((500, 375), Image.BICUBIC), np.float32) + g.normal(0, 8, (375, 500, 3))
    photo = os.path.join(out_dir, "photo.jpg")
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(photo, quality=90)
    tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                    T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    x = tf(Image.open(photo).convert("RGB")).unsqueeze(0)
    write_tsv(os.path.join(out_dir, "expected_preset.tsv"),
              [f"torch {torch.__version__}, torchvision resnet18, Resize(256) + CenterCrop(224)"],
              [("preset", photo, top_k(model, x, "resnet18-imagenet --preset imagenet"))])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--imagenet", metavar="DIR", help="write the resnet18-imagenet case to DIR")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.imagenet:
        gen_imagenet(a.imagenet)
    else:
        gen_cifar()


if __name__ == "__main__":
    main()
