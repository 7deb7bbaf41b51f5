#!/usr/bin/env bash
# Grad-CAM on VGG16 at 224 px, batch 8 (random weights, seed 0; speed does not depend on their values):
# cnnvis with each kind of CPU convolution against pytorch-grad-cam's GradCAM written out in eager
# PyTorch (scripts/peer_cams.py), in the same run, same thread count. Prints one JSON line per side
# (forward and Grad-CAM ms per image, medians after a warm-up) and one with the ratios to the peer.
#   bash scripts/bench_gradcam_peer.sh [--repeats 3] [--threads 2]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CNNVIS_BUILD_DIR:-$root/build}
repeats=3 threads=2
while (($#)); do
  case $1 in
    --repeats) repeats=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    *) echo "usage: bench_gradcam_peer.sh [--repeats N] [--threads N]" >&2; exit 2 ;;
  esac
done
cmake --build "$build" --target cnnvis_bench >/dev/null
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
/usr/bin/python3 "$root/scripts/export_weights.py" --model vgg16 --random --seed 0 --out "$dir" >&2
for kernels in onednn-per-image native onednn; do
  "$build/cnnvis_bench" --models vgg16 --repeats "$repeats" --demo-canvases 0 --no-featvis --threads "$threads" \
    --kernels "$kernels" 2>/dev/null | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)
m = r["models"]["vgg16"]
print(json.dumps({"side": "cnnvis", "cpu_convolutions": r["cpu_convolutions"],
                  "forward_ms_per_image": round(m["forward_ms_per_image_batch8"], 2),
                  "gradcam_ms_per_image": round(m["gradcam_ms_per_image_batch8"], 2),
                  "guided_backprop_ms_per_image": round(m["guided_backprop_ms_per_image_batch8"], 2),
                  "saliency_ms_per_image": round(m["saliency_ms_per_image_batch8"], 2)}))'
done | tee "$dir/cnnvis.jsonl"
/usr/bin/python3 "$root/scripts/peer_cams.py" --weights "$dir" --gradcam-batch 8 --repeats "$repeats" \
  --threads "$threads" | tee "$dir/peer.jsonl"
/usr/bin/python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
peer = json.loads(open(f"{d}/peer.jsonl").readline())
ratios = {r["cpu_convolutions"]: round(r["gradcam_ms_per_image"] / peer["gradcam_ms_per_image"], 3)
          for r in map(json.loads, open(f"{d}/cnnvis.jsonl"))}
print(json.dumps({"gradcam_time_over_peer": ratios}))
PY
