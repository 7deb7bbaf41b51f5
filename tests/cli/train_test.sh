#!/usr/bin/env bash
# End-to-end: `cnnvis train` (a tiny run with the training movie) and `cnnvis canvases` on Debian's
# Fashion-MNIST, plus bad input. Skipped (exit 0 with a note) when the data set is not installed.
# Args: <cnnvis binary> <source dir> <build dir>
set -uo pipefail
cnnvis=$1
data=/usr/share/datasets/fashion-mnist
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ ! -f $data/train-images-idx3-ubyte.gz ]]; then
  echo "SKIP: $data is absent (Debian package dataset-fashion-mnist)"
  exit 0
fi

# train: 1000 items at batch 50 = 20 steps; frames at steps 0, 5, 10, 15 and 20 (the last)
"$cnnvis" train --train-limit 1000 --test-limit 200 --epochs 1 --batch-size 50 --watch "$tmp/watch" --watch-every 5 \
  --out "$tmp/x.safetensors" > "$tmp/train.txt" 2> "$tmp/train.err"
expect_code 0 $? "train"
grep -q "test accuracy" "$tmp/train.txt" || fail "train: no summary line on stdout: $(cat "$tmp/train.txt")"
[[ $(wc -l < "$tmp/train.txt") == 1 ]] || fail "train: stdout should be one summary line"
[[ -s $tmp/x.safetensors ]] || fail "train: no weights"
[[ -s $tmp/x.json ]] || fail "train: no model card"
if [[ -s $tmp/x.json ]]; then
  [[ $(json "$tmp/x.json" "d['weights_file']") == x.safetensors ]] || fail "card: weights_file"
  [[ $(json "$tmp/x.json" "d['weights_sha256']") == $(sha256sum "$tmp/x.safetensors" | cut -d' ' -f1) ]] \
    || fail "card: sha256 does not match the weights"
  [[ $(json "$tmp/x.json" "d['architecture']") == fashion_vgg ]] || fail "card: architecture"
  json "$tmp/x.json" "d['source']" | grep -Eq "cnnvis train, seed 1, 1 epochs, (fp32|bf16), test accuracy" || fail "card: source"
fi
for layer in features.0 features.4 features.8 features.11 features.15; do
  n=$(ls "$tmp/watch/$layer"/frame_*.png 2> /dev/null | wc -l)
  [[ $n == 5 ]] || fail "watch: $layer has $n frames, expected 5"
  [[ -s $tmp/watch/$layer/frame_00000.png ]] || fail "watch: $layer/frame_00000.png missing"
  [[ $(head -c 6 "$tmp/watch/$layer.gif" 2> /dev/null) == GIF89a ]] || fail "watch: $layer.gif is not a GIF89a"
done
[[ -s $tmp/watch/curves.png ]] || fail "watch: curves.png missing"
[[ -s $tmp/watch/curves.json ]] && [[ $(json "$tmp/watch/curves.json" "d['frame_steps']") == "[0, 5, 10, 15, 20]" ]] \
  || fail "watch: curves.json frame steps"

# canvases: the test canvases training evaluates on
"$cnnvis" canvases --count 5 --out "$tmp/canvases" > /dev/null
expect_code 0 $? "canvases"
[[ $(ls "$tmp/canvases"/*.png 2> /dev/null | wc -l) == 5 ]] || fail "canvases: expected 5 PNGs"
[[ -s $tmp/canvases/canvases.json ]] && [[ $(json "$tmp/canvases/canvases.json" "len(d['items'])") == 5 ]] \
  || fail "canvases: canvases.json should list 5 items"
[[ $(json "$tmp/canvases/canvases.json" "d['items'][0]['class']") == "Ankle boot" ]] || fail "canvases: first test item is an ankle boot"
# the trained weights and card work with the other commands (the card next to the weights is found and
# its sha256 checked)
"$cnnvis" predict --model fashion_vgg --weights "$tmp/x.safetensors" -k 2 "$tmp/canvases/canvas_00000.png" \
  > "$tmp/predict.txt" 2> "$tmp/predict.err"
expect_code 0 $? "predict with the trained weights"
grep -qE "Ankle boot|Sneaker|Sandal|T-shirt|Trouser|Pullover|Dress|Coat|Shirt|Bag" "$tmp/predict.txt" \
  || fail "predict: no class names in: $(cat "$tmp/predict.txt" "$tmp/predict.err")"
# same seed, same images; --first/--count select the same items
"$cnnvis" canvases --count 2 --first 3 --out "$tmp/again" > /dev/null
cmp -s "$tmp/canvases/canvas_00003.png" "$tmp/again/canvas_00000.png" || fail "canvases: not reproducible"

# bad input: a missing data directory is named in a one-line error, exit code 1
"$cnnvis" train --data-dir /nonexistent/fm --epochs 1 --out "$tmp/y.safetensors" > "$tmp/bad.txt" 2> "$tmp/bad.err"
expect_code 1 $? "train --data-dir /nonexistent/fm"
[[ $(wc -l < "$tmp/bad.err") == 1 ]] || fail "train: error should be one line: $(cat "$tmp/bad.err")"
grep -q "/nonexistent/fm" "$tmp/bad.err" || fail "train: error does not name the path: $(cat "$tmp/bad.err")"
[[ -e $tmp/y.safetensors ]] && fail "train: wrote weights despite the error"
"$cnnvis" canvases --data-dir /nonexistent/fm --out "$tmp/c2" > /dev/null 2> "$tmp/bad2.err"
expect_code 1 $? "canvases --data-dir /nonexistent/fm"
grep -q "/nonexistent/fm" "$tmp/bad2.err" || fail "canvases: error does not name the path"
"$cnnvis" train --epochs 0 --out "$tmp/z.safetensors" > /dev/null 2>&1
expect_code 2 $? "train --epochs 0"
"$cnnvis" canvases --split validation --out "$tmp/c3" > /dev/null 2>&1
expect_code 2 $? "canvases --split validation"

if ((failures > 0)); then
  echo "$failures failure(s)"
  exit 1
fi
echo "train/canvases end-to-end: ok"
