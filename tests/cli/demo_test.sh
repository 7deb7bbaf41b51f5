#!/usr/bin/env bash
# End-to-end: `cnnvis demo` on a demo model trained here in seconds (the real one is trained by
# scripts/setup.sh), checking the browsable result. Needs Debian's dataset-fashion-mnist.
# Args: <cnnvis binary> <source dir> <build dir>
set -uo pipefail
cnnvis=$1
data=/usr/share/datasets/fashion-mnist
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ -f $data/t10k-images-idx3-ubyte.gz ]] || { echo "missing $data (Debian package dataset-fashion-mnist)"; exit 1; }

"$cnnvis" -q train --train-limit 2000 --test-limit 200 --epochs 1 --out "$tmp/m/fashion_vgg.safetensors" > /dev/null
[[ $? == 0 ]] || fail "training the small model"
"$cnnvis" -q demo --weights "$tmp/m/fashion_vgg.safetensors" --map-canvases 120 --fv-steps 24 -o "$tmp/demo" > "$tmp/demo.txt"
[[ $? == 0 ]] || fail "demo exit code"
grep -q "10 test canvases" "$tmp/demo.txt" || fail "demo summary: $(cat "$tmp/demo.txt")"
for f in index.html summary.png manifest.json inputs/canvases.json filters.png features.png tsne_map.png atlas.png; do
  [[ -s $tmp/demo/$f ]] || fail "demo: missing $f"
done
[[ $(ls "$tmp/demo"/canvas_*.sheet.png 2> /dev/null | wc -l) == 10 ]] || fail "demo: expected 10 contact sheets"
m=$tmp/demo/manifest.json
[[ $(json "$m" "len(d['inputs'])") == 10 ]] || fail "demo manifest: 10 inputs"
[[ $(json "$m" "sorted(set(e['label'] for e in d['inputs']))") == "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]" ]] \
  || fail "demo: one canvas per class"
json "$m" "d['pointing_game_hit_rate']['gradcam']" > /dev/null || fail "demo: pointing game rates"
[[ $(json "$m" "sorted(d['pointing_game_hit_rate'])") == "['gradcam', 'gradcam++', 'guided-backprop', 'layercam', 'occlusion', 'smoothgrad']" ]] \
  || fail "demo: every explanation method: $(json "$m" "sorted(d['pointing_game_hit_rate'])")"
[[ $(json "$m" "sorted(d['learned'])") == "['atlas', 'features', 'filters', 'tsne_map']" ]] || fail "demo: learned views"
[[ $(json "$m" "d['atlas']['samples']") == 240 ]] || fail "demo: atlas of 120 canvases x 2 samples"
[[ $(ls "$tmp/demo"/canvas_00000.occlusion.* 2> /dev/null | wc -l) == 2 ]] || fail "demo: occlusion overlay and map"
for f in atlas.png features.png filters.png tsne_map.png; do
  grep -q "src=\"$f\"" "$tmp/demo/index.html" || fail "index.html does not show $f"
done
# Every file the page references exists.
/usr/bin/python3 - "$tmp/demo" <<'PY' || fail "index.html references missing files"
import os, re, sys
root = sys.argv[1]
html = open(os.path.join(root, "index.html")).read()
refs = re.findall(r'(?:src|href)="([^"]+)"', html)
assert len(refs) >= 12, refs
missing = [r for r in refs if not os.path.exists(os.path.join(root, r))]
assert not missing, missing
PY

# Without the data set: one line naming the directory, exit code 1.
"$cnnvis" demo --weights "$tmp/m/fashion_vgg.safetensors" --data-dir "$tmp/nodata" -o "$tmp/d2" 2> "$tmp/err.txt"
[[ $? == 1 ]] || fail "demo without data: exit code"
grep -q "$tmp/nodata" "$tmp/err.txt" || fail "demo without data: message: $(cat "$tmp/err.txt")"
echo "demo e2e: $failures failure(s)"
[[ $failures == 0 ]]
