#!/usr/bin/env bash
# Score-CAM and Ablation-CAM on VGG16 at features.29 (random weights, seed 0; speed does not depend on
# their values): cnnvis against pytorch-grad-cam's algorithms in eager PyTorch
# (scripts/peer_cams.py), one after the other in the same run, 2 threads each. Prints JSON
# lines: seconds per image for each side (cnnvis's include loading the model and writing its outputs),
# their ratio, and the Pearson r between the two maps.
#   bash scripts/bench_perturbation_cams.sh [--images N] [--size PX] [--methods scorecam,ablationcam]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CNNVIS_BUILD_DIR:-$root/build}
images=1 size=224 methods=scorecam,ablationcam
while (($#)); do
  case $1 in
    --images) images=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --methods) methods=$2; shift 2 ;;
    *) echo "usage: bench_perturbation_cams.sh [--images N] [--size PX] [--methods scorecam,ablationcam]" >&2; exit 2 ;;
  esac
done
cmake --build "$build" --target cnnvis >/dev/null
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
/usr/bin/python3 "$root/scripts/export_weights.py" --model vgg16 --random --seed 0 --out "$dir" >&2
# Smooth random pictures at the model's input size (no resizing on either side).
/usr/bin/python3 - "$dir/img" "$images" "$size" <<'PY'
import os, sys
import numpy as np
from PIL import Image
out, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(out)
rng = np.random.default_rng(0)
for i in range(count):
    small = rng.random((8, 8, 3)) * 255
    Image.fromarray(small.astype(np.uint8)).resize((size, size), Image.BICUBIC).save(f"{out}/img{i}.png")
PY
python_images=$(ls "$dir"/img/*.png | paste -sd,)
card=$dir/vgg16.json
if ((size != 224)); then
  /usr/bin/python3 - "$card" "$size" <<'PY'
import json, sys
card = json.load(open(sys.argv[1]))
card["input_size"] = [int(sys.argv[2]), int(sys.argv[2])]
json.dump(card, open(sys.argv[1], "w"))
PY
fi
IFS=, read -r -a method_list <<< "$methods"
for method in "${method_list[@]}"; do
  start=$(date +%s.%N)
  "$build/cnnvis" -q --threads 2 gradcam --model vgg16 --weights "$dir/vgg16.safetensors" --card "$card" \
    --methods "$method" "$dir/img" -o "$dir/cnnvis-$method" > /dev/null
  end=$(date +%s.%N)
  echo "{\"side\": \"cnnvis\", \"method\": \"$method\", \"seconds_per_image\": $(/usr/bin/python3 -c "print(round(($end - $start) / $images, 3))")}"
done | tee "$dir/cnnvis.jsonl"
/usr/bin/python3 "$root/scripts/peer_cams.py" --weights "$dir" --images "$python_images" \
  --out "$dir/peer" --methods "$methods" --threads 2 | tee "$dir/peer.jsonl"
/usr/bin/python3 - "$dir" <<'PY'
import json, sys
import numpy as np
d = sys.argv[1]
ours = {r["method"]: r["seconds_per_image"] for r in map(json.loads, open(f"{d}/cnnvis.jsonl"))}
peer = {}
for r in map(json.loads, open(f"{d}/peer.jsonl")):
    peer.setdefault(r["method"], []).append(r)
for method, rows in peer.items():
    rs = []
    for r in rows:
        a = np.load(f"{d}/cnnvis-{method}/{r['image']}.{method}.layer.npy").ravel()
        b = np.load(f"{d}/peer/{r['image']}.{method}.peer.npy").ravel()
        rs.append(float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan"))
    peer_s = sum(r["seconds"] for r in rows) / len(rows)
    print(json.dumps({"method": method, "cnnvis_s_per_image": ours[method], "peer_s_per_image": round(peer_s, 3),
                      "ratio": round(ours[method] / peer_s, 4), "pearson_r_min": round(min(rs), 5)}))
PY
