#!/usr/bin/env bash
# The cost of the generic TorchScript path: Grad-CAM over forward for a TorchScript ResNet-50 at batch 8,
# and VGG16 exported as TorchScript against the native VGG16 in the same run (random weights: speed does
# not depend on their values). Prints JSON.
#   bash scripts/bench_torchscript.sh [--repeats N]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CNNVIS_BUILD_DIR:-$root/build}
cmake --build "$build" --target cnnvis_bench >/dev/null
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for model in resnet50 vgg16; do
  /usr/bin/python3 "$root/scripts/export_torchscript.py" --model "$model" --random --seed 0 --out "$dir/$model.pt" >&2
done
"$build/cnnvis_bench" --torchscript "$dir/resnet50.pt,$dir/vgg16.pt=vgg16" "$@"
