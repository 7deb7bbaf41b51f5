#!/usr/bin/env bash
# Prints JSON benchmark figures for the current device (see tools/bench.cpp): forward-only ms/image at
# batch 1 and 8 per model, and Grad-CAM ms/image at batch 8 with its ratio to forward-only.
#   bash scripts/bench.sh [--models vgg16,googlenet] [--device cpu|cuda] [--repeats N]
#   bash scripts/bench.sh --occlusion --threads 1   (incremental vs brute-force occlusion on VGG16)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CNNVIS_BUILD_DIR:-$root/build}
cmake --build "$build" --target cnnvis_bench >/dev/null
"$build/cnnvis_bench" "$@"
