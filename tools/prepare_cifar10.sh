#!/usr/bin/env bash
# Unpacks the shared CIFAR-10 (JPEG folders, ../shared/data/cifar10-jpeg.tar.gz) into
# data/cifar10-jpeg and packs it into CIFAR-style binary batches in data/cifar10, which later
# runs load in a fraction of a second: `--data cifar10:data/cifar10`.
# Usage: tools/prepare_cifar10.sh   (from the repository root; needs ./resnet built)
set -euo pipefail
cd "$(dirname "$0")/.."
src=../shared/data/cifar10-jpeg.tar.gz
if [ -f data/cifar10/meta.json ]; then
    echo "data/cifar10 is ready"
    exit 0
fi
if [ ! -f "$src" ]; then
    echo "prepare_cifar10: $src not found (expected the shared CIFAR-10 JPEG archive)" >&2
    exit 1
fi
mkdir -p data/cifar10-jpeg
tar xzf "$src" -C data/cifar10-jpeg
./resnet data pack --data folder:data/cifar10-jpeg --out data/cifar10
