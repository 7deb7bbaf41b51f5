#!/usr/bin/env bash
# End-to-end: `cnnvis occlusion` (incremental against --exact-naive on the parity fixture's seeded random
# VGG16, a bad input mixed in) and `cnnvis evaluate` on demo canvases with their boxes (and with --road,
# --randomisation), using a demo model trained here in seconds. Needs Debian's darknet (photos) and
# dataset-fashion-mnist packages.
# Args: <cnnvis binary> <source dir> <build dir>
set -uo pipefail
cnnvis=$1 src=$2 build=$3
weights=$build/parity/vgg16.safetensors
photos=/usr/share/darknet/data
data=/usr/share/datasets/fashion-mnist
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ -f $weights ]] || { echo "missing $weights (the parity_export fixture makes it)"; exit 1; }
[[ -f $photos/dog.jpg ]] || { echo "missing $photos (Debian package darknet)"; exit 1; }
[[ -f $data/t10k-images-idx3-ubyte.gz ]] || { echo "missing $data (Debian package dataset-fashion-mnist)"; exit 1; }

mkdir -p "$tmp/in"
cp "$photos/dog.jpg" "$tmp/in/"
echo "not an image" > "$tmp/in/broken.jpg"
model=(--model vgg16 --weights "$weights")
# 224 px, patch 64, stride 56: 4 x 4 windows, the last ones moved back to the border.
occ=(--patch 64 --stride 56 --fill gray -b 8)

"$cnnvis" occlusion "${model[@]}" "${occ[@]}" "$tmp/in/dog.jpg" "$tmp/in/broken.jpg" -o "$tmp/fast" 2> "$tmp/fast.err"
expect_code 1 $? "occlusion with a bad input"
grep "broken.jpg" "$tmp/fast.err" | grep -qi error || fail "occlusion: stderr does not name broken.jpg: $(cat "$tmp/fast.err")"
grep -q "computed on regions only" "$tmp/fast.err" || fail "occlusion: no log of the incremental plan"
for kind in png overlay.png npy occluded_score.npy windows.npy; do
  [[ -s $tmp/fast/dog.occlusion.$kind ]] || fail "occlusion: missing dog.occlusion.$kind"
done
m=$tmp/fast/manifest.json
[[ $(json "$m" "d['command']") == occlusion ]] || fail "occlusion manifest: command"
[[ $(json "$m" "sum(e['status']=='error' for e in d['inputs'])") == 1 ]] || fail "occlusion manifest: expected 1 error"
[[ $(json "$m" "[e['windows'] for e in d['inputs'] if e['input'].endswith('dog.jpg')][0]") == 16 ]] || fail "occlusion manifest: 16 windows"
[[ $(json "$m" "[e['engine'] for e in d['inputs'] if e['input'].endswith('dog.jpg')][0]") == incremental ]] || fail "occlusion manifest: engine"

"$cnnvis" -q occlusion "${model[@]}" "${occ[@]}" --exact-naive "$tmp/in/dog.jpg" -o "$tmp/naive"
expect_code 0 $? "occlusion --exact-naive"
[[ $(json "$tmp/naive/manifest.json" "d['inputs'][0]['engine']") == exact_naive ]] || fail "exact-naive manifest: engine"
/usr/bin/python3 - "$tmp/fast" "$tmp/naive" <<'PY' || fail "incremental and exact-naive maps differ"
import numpy as np, sys
a = np.load(sys.argv[1] + "/dog.occlusion.npy"); b = np.load(sys.argv[2] + "/dog.occlusion.npy")
w = np.load(sys.argv[1] + "/dog.occlusion.windows.npy")
assert a.shape == (224, 224) and a.dtype == np.float32 and w.shape == (4, 4), (a.shape, w.shape)
scale = max(1.0, float(np.abs(b).max()))
assert np.abs(b).max() > 0, "flat map"
assert np.abs(a - b).max() <= 1e-4 * scale, np.abs(a - b).max()
PY

# Bad options: exit code 2 with a message.
"$cnnvis" occlusion "${model[@]}" --fill noise "$tmp/in/dog.jpg" -o "$tmp/bad" 2> "$tmp/bad.err"
expect_code 2 $? "occlusion --fill noise"
grep -q "noise" "$tmp/bad.err" || fail "occlusion: bad fill message: $(cat "$tmp/bad.err")"

# evaluate: a demo model trained in seconds, canvases with boxes.
"$cnnvis" -q train --train-limit 2000 --test-limit 200 --epochs 1 --out "$tmp/m/fashion_vgg.safetensors" > /dev/null
expect_code 0 $? "training the small model"
"$cnnvis" canvases -n 4 -o "$tmp/canvases" > /dev/null
expect_code 0 $? "canvases"
"$cnnvis" -q evaluate --model fashion_vgg --weights "$tmp/m/fashion_vgg.safetensors" --methods gradcam,saliency,occlusion \
  --steps 16 --boxes "$tmp/canvases/canvases.json" "$tmp/canvases" -o "$tmp/eval"
expect_code 0 $? "evaluate"
[[ -s $tmp/eval/evaluation.json && -s $tmp/eval/curves.png ]] || fail "evaluate: missing evaluation.json or curves.png"
[[ $(ls "$tmp/eval"/*.curves.png 2> /dev/null | wc -l) == 4 ]] || fail "evaluate: expected 4 curve charts"
/usr/bin/python3 - "$tmp/eval/evaluation.json" "$tmp/eval/manifest.json" <<'PY' || fail "evaluate: table"
import json, sys
t = json.load(open(sys.argv[1]))["methods"]
assert set(t) == {"gradcam", "saliency", "occlusion"}, t.keys()
for name, row in t.items():
    assert row["images"] == 4 and row["boxed_images"] == 4, row
    assert 0 <= row["deletion_auc"] <= 1 and 0 <= row["insertion_auc"] <= 1, row
    assert 0 <= row["pointing_game"] <= 1 and 0 <= row["average_drop_percent"] <= 100, row
m = json.load(open(sys.argv[2]))
e = m["inputs"][0]["scores"]["gradcam"]
assert len(e["deletion"]) == 17 and isinstance(e["pointing_game"], bool), e
PY
"$cnnvis" evaluate --model fashion_vgg --weights "$tmp/m/fashion_vgg.safetensors" --methods nonsense "$tmp/canvases" -o "$tmp/e2" 2> "$tmp/e2.err"
expect_code 2 $? "evaluate --methods nonsense"
echo "not json" > "$tmp/bad.json"
"$cnnvis" evaluate --model fashion_vgg --weights "$tmp/m/fashion_vgg.safetensors" --boxes "$tmp/bad.json" "$tmp/canvases" -o "$tmp/e3" 2> "$tmp/e3.err"
expect_code 1 $? "evaluate with a broken boxes file"
grep -q "bad.json" "$tmp/e3.err" || fail "evaluate: broken boxes message: $(cat "$tmp/e3.err")"
# ROAD and the cascading randomisation test, seeded: two runs with the same seed give the same table.
for run in r1 r2; do
  "$cnnvis" -q evaluate --model fashion_vgg --weights "$tmp/m/fashion_vgg.safetensors" --methods gradcam,saliency --steps 4 \
    --no-curves --road --road-percentages 20,50,80 --randomisation --randomisation-steps 3 --seed 3 "$tmp/canvases" \
    -o "$tmp/$run"
  expect_code 0 $? "evaluate --road --randomisation ($run)"
done
[[ -s $tmp/r1/road.png && -s $tmp/r1/randomisation.png ]] || fail "evaluate: missing road.png or randomisation.png"
/usr/bin/python3 - "$tmp/r1/evaluation.json" "$tmp/r2/evaluation.json" "$tmp/r1/manifest.json" <<'PY' || fail "evaluate: ROAD / randomisation table"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["methods"] == b["methods"], "same seed, different tables"
assert a["road"]["percentages"] == [20, 50, 80], a["road"]
for name, row in a["methods"].items():
    assert len(row["road_morf_curve"]) == 3 and len(row["road_lerf_curve"]) == 3, row
    assert 0 <= row["road_morf"] <= 1 and 0 <= row["road_lerf"] <= 1, row
    r = row["randomisation"]
    assert len(r["steps"]) == 3 and r["steps"][0] == "classifier.1", r
    assert all(-1 <= v <= 1 for v in r["spearman"]), r
e = json.load(open(sys.argv[3]))["inputs"][0]["scores"]["saliency"]
road = e["road"]
combined = sum((l - m) / 2 for l, m in zip(road["lerf"], road["morf"])) / 3
assert abs(road["combined"] - combined) < 1e-5, road
assert len(e["randomisation"]["spearman"]) == 3 and len(e["randomisation"]["ssim"]) == 3, e
PY
"$cnnvis" evaluate --model fashion_vgg --weights "$tmp/m/fashion_vgg.safetensors" --road --road-percentages 0,50 "$tmp/canvases" -o "$tmp/e4" 2> "$tmp/e4.err"
expect_code 2 $? "evaluate --road-percentages 0"
grep -q "1\.\.99" "$tmp/e4.err" || fail "evaluate: bad percentage message: $(cat "$tmp/e4.err")"
"$cnnvis" evaluate --model fashion_vgg --weights "$tmp/m/fashion_vgg.safetensors" --road-percentages 50 "$tmp/canvases" -o "$tmp/e5" 2> /dev/null
expect_code 2 $? "evaluate --road-percentages without --road"
"$cnnvis" evaluate --model fashion_vgg --weights "$tmp/m/fashion_vgg.safetensors" --randomisation --randomisation-steps -1 "$tmp/canvases" -o "$tmp/e6" 2> /dev/null
expect_code 2 $? "evaluate --randomisation-steps -1"
echo "occlusion e2e: $failures failure(s)"
[[ $failures == 0 ]]
