#!/usr/bin/env bash
# Cost of the batch-invariant CPU convolutions (the CLI default) against oneDNN (--fast): the same
# command run alternately in both modes, per-image compute time read from the manifests.
#
#   scripts/bench_deterministic.sh [WEIGHTS] [MODEL] [REPEATS]
#   (defaults: build/parity/vgg16.safetensors vgg16 2; images: Debian's darknet photos)
# Prints the median per-image time of each mode and their ratio. Use a quiet machine: it runs with
# --threads 1 so other processes disturb both modes alike.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cnnvis=${CNNVIS:-$root/build/cnnvis}
weights=${1:-$root/build/parity/vgg16.safetensors}
model=${2:-vgg16}
repeats=${3:-2}
images=${IMAGES:-/usr/share/darknet/data}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for ((r = 0; r < repeats; r++)); do
  for mode in deterministic fast; do
    flag=()
    [[ $mode == fast ]] && flag=(--fast)
    "$cnnvis" -q --threads 1 "${flag[@]}" gradcam --model "$model" --weights "$weights" "$images" -b 4 \
      -o "$tmp/$mode.$r" --no-html --no-resume
  done
done
/usr/bin/python3 - "$tmp" "$repeats" <<'PY'
import json, statistics, sys
root, repeats = sys.argv[1], int(sys.argv[2])
med = {}
for mode in ("deterministic", "fast"):
    t = [e["timings_ms"]["compute_and_write"] for r in range(repeats)
         for e in json.load(open(f"{root}/{mode}.{r}/manifest.json"))["inputs"] if e["status"] == "ok"]
    med[mode] = statistics.median(t)
    print(f"{mode:14s} median {med[mode]:8.1f} ms/image over {len(t)} images")
print(f"deterministic / fast = {med['deterministic'] / med['fast']:.2f}")
PY
