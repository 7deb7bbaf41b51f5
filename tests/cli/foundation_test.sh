#!/usr/bin/env bash
# End-to-end: the cnnvis binary on real photos (Debian's darknet package) with seeded random VGG16 /
# GoogLeNet weights exported by the parity fixture, including bad inputs mixed with good ones.
# Args: <cnnvis binary> <source dir> <build dir>
set -uo pipefail
cnnvis=$1 src=$2 build=$3
weights=$build/parity/vgg16.safetensors
photos=/usr/share/darknet/data
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ -f $weights ]] || { echo "missing $weights (the parity_export fixture makes it)"; exit 1; }
[[ -f $photos/dog.jpg ]] || { echo "missing $photos (Debian package darknet)"; exit 1; }

# models / layers
"$cnnvis" models > "$tmp/models.txt"; expect_code 0 $? "models"
grep -q "^vgg16" "$tmp/models.txt" || fail "models does not list vgg16"
"$cnnvis" layers --model vgg16 > "$tmp/layers.txt"; expect_code 0 $? "layers"
grep -qE "features\.28 +Conv2d +512x14x14 +196 +16" "$tmp/layers.txt" || fail "layers: conv5_3 row wrong: $(grep 'features.28 ' "$tmp/layers.txt")"
grep -q "conv5_3" "$tmp/layers.txt" || fail "layers: no aliases"
"$cnnvis" layers --model googlenet --json > "$tmp/layers.json"; expect_code 0 $? "layers --json"
[[ $(json "$tmp/layers.json" "[l['output_shape'] for l in d if l['name']=='inception4c'][0]") == "[512, 14, 14]" ]] || fail "googlenet inception4c shape"

# predict
"$cnnvis" predict --model vgg16 --weights "$weights" -k 3 "$photos/dog.jpg" > "$tmp/predict.txt"; expect_code 0 $? "predict"
[[ $(grep -c "%" "$tmp/predict.txt") == 3 ]] || fail "predict: expected 3 classes, got: $(cat "$tmp/predict.txt")"

# gradcam over good and bad inputs: the good ones are written, the bad ones named, exit code 1
mkdir -p "$tmp/in/sub"
cp "$photos/dog.jpg" "$photos/eagle.jpg" "$tmp/in/"
cp "$photos/horses.jpg" "$tmp/in/sub/"
: > "$tmp/in/empty.jpg"
echo "not an image" > "$tmp/in/text.png"
head -c 3000 "$photos/giraffe.jpg" > "$tmp/in/truncated.jpg"
"$cnnvis" gradcam --model vgg16 --weights "$weights" -r "$tmp/in" "$tmp/missing.jpg" -o "$tmp/out" 2> "$tmp/err.txt"
expect_code 1 $? "gradcam with bad inputs"
for name in dog eagle horses; do
  for kind in heatmap.png overlay.png npy layer.npy; do
    [[ -s $tmp/out/$name.gradcam.$kind ]] || fail "gradcam: missing $name.gradcam.$kind"
  done
done
m=$tmp/out/manifest.json
[[ $(json "$m" "len(d['inputs'])") == 7 ]] || fail "manifest: expected 7 inputs"
[[ $(json "$m" "sum(e['status']=='error' for e in d['inputs'])") == 4 ]] || fail "manifest: expected 4 errors"
[[ $(json "$m" "d['summary']['ok']") == 3 ]] || fail "manifest summary"
[[ $(json "$m" "len(d['weights_sha256'])") == 64 ]] || fail "manifest: weights sha256"
[[ $(json "$m" "[e['outputs']['overlay'] for e in d['inputs'] if e['input'].endswith('dog.jpg')][0]") == dog.gradcam.overlay.png ]] \
  || fail "manifest: outputs"
for bad in empty.jpg text.png truncated.jpg missing.jpg; do
  grep -q "$bad" "$tmp/err.txt" || fail "stderr does not name $bad"
  [[ $(grep -c "$bad" "$tmp/err.txt") -ge 1 && $(grep "$bad" "$tmp/err.txt" | head -1 | wc -l) == 1 ]] || fail "error for $bad"
done
/usr/bin/python3 - "$tmp/out/dog.gradcam.npy" <<'PY' || fail "cam npy not a 224x224 map in [0,1]"
import numpy as np, sys
a = np.load(sys.argv[1])
assert a.shape == (224, 224) and a.dtype == np.float32, (a.shape, a.dtype)
assert np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1.0 + 1e-6
PY

# same inputs twice -> byte-identical raw maps; paths from stdin; GoogLeNet default layer
printf '%s\n' "$photos/dog.jpg" | "$cnnvis" -q gradcam --model vgg16 --weights "$weights" - -o "$tmp/again"
expect_code 0 $? "gradcam from stdin"
cmp -s "$tmp/out/dog.gradcam.npy" "$tmp/again/dog.gradcam.npy" || fail "gradcam not deterministic"
"$cnnvis" -q gradcam --model googlenet --weights "$build/parity/googlenet.safetensors" --method gradcam++ \
  "$photos/dog.jpg" -o "$tmp/g"
expect_code 0 $? "googlenet gradcam++"
[[ $(json "$tmp/g/manifest.json" "d['inputs'][0]['layer']") == inception5b ]] || fail "googlenet default layer"

# several methods, targets and a 16-bit map in one run; a contact sheet per image
"$cnnvis" -q gradcam --model vgg16 --weights "$weights" --methods gradcam,layercam,guided-gradcam --png16 \
  "$photos/dog.jpg" -o "$tmp/multi"
expect_code 0 $? "several methods"
for f in dog.gradcam.overlay.png dog.layercam.overlay.png dog.guided-gradcam.png dog.sheet.png dog.gradcam.map16.png; do
  [[ -s $tmp/multi/$f ]] || fail "several methods: missing $f"
done
"$cnnvis" -q gradcam --model vgg16 --weights "$weights" --top-k 3 "$photos/dog.jpg" -o "$tmp/topk"
expect_code 0 $? "top-k"
[[ $(json "$tmp/topk/manifest.json" "len(d['inputs'][0]['maps'])") == 3 ]] || fail "top-k: expected 3 maps"
[[ $(ls "$tmp/topk" | grep -c "overlay.png") == 3 ]] || fail "top-k: expected 3 overlays"

# usage errors: exit 2 and a message naming the problem
"$cnnvis" gradcam --model vgg16 --weights "$weights" --layer conv9_9 "$photos/dog.jpg" -o "$tmp/x" 2> "$tmp/e1"
expect_code 2 $? "unknown layer"; grep -q "conv9_9" "$tmp/e1" || fail "unknown layer not named"
"$cnnvis" gradcam --model vgg16 --weights "$weights" --target 5000 "$photos/dog.jpg" -o "$tmp/x" 2> "$tmp/e2"
expect_code 2 $? "target out of range"; grep -q "0..999" "$tmp/e2" || fail "target range not named"
"$cnnvis" gradcam --model resnet9 "$photos/dog.jpg" 2> "$tmp/e3"
expect_code 2 $? "unknown model"; grep -q "resnet9" "$tmp/e3" || fail "unknown model not named"

# weights problems: exit 1, one line naming the file
"$cnnvis" predict --model vgg16 --models-dir "$tmp/nomodels" --card "$src/models/vgg16.json" "$photos/dog.jpg" 2> "$tmp/e4"
expect_code 1 $? "missing weights"; grep -q "export_weights.py" "$tmp/e4" || fail "missing weights: no export command: $(cat "$tmp/e4")"
head -c 100000 "$weights" > "$tmp/cut.safetensors"
"$cnnvis" predict --model vgg16 --weights "$tmp/cut.safetensors" "$photos/dog.jpg" 2> "$tmp/e5"
expect_code 1 $? "truncated weights"; grep -q "cut.safetensors" "$tmp/e5" || fail "truncated weights not named"
[[ $(wc -l < "$tmp/e5") == 1 ]] || fail "truncated weights: more than one line: $(cat "$tmp/e5")"
"$cnnvis" predict --model googlenet --card "$src/models/googlenet.json" --weights "$weights" "$photos/dog.jpg" 2> "$tmp/e6"
expect_code 1 $? "wrong model's weights"; grep -q "missing" "$tmp/e6" || fail "wrong weights: $(cat "$tmp/e6")"

echo "foundation e2e: $failures failure(s)"
[[ $failures == 0 ]]
