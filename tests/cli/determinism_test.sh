#!/usr/bin/env bash
# End-to-end determinism on CPU: the same inputs, model and seed give byte-identical .npy outputs run
# after run and across batch sizes (2 and 1), for the Grad-CAM family, guided backprop / deconvnet / vanilla
# gradients and saliency (vanilla, SmoothGrad, integrated gradients). VGG16 and GoogLeNet with the
# parity fixture's seeded random weights.
# Args: <cnnvis binary> <source dir> <build dir>
set -uo pipefail
cnnvis=$1 src=$2 build=$3
photos=/usr/share/darknet/data
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for m in vgg16 googlenet; do
  [[ -f $build/parity/$m.safetensors ]] || { echo "missing $build/parity/$m.safetensors (parity_export fixture)"; exit 1; }
done
mkdir -p "$tmp/in"
cp "$photos/dog.jpg" "$photos/eagle.jpg" "$tmp/in/"

# same_npy A B WHAT: every .npy of A exists in B with identical bytes (and there is at least one)
same_npy() {
  local n=0 f
  for f in "$1"/*.npy; do
    [[ -f $f ]] || continue
    n=$((n + 1))
    cmp -s "$f" "$2/$(basename "$f")" || { fail "$3: $(basename "$f") differs"; return; }
  done
  ((n > 0)) || fail "$3: no .npy outputs"
}

# check NAME MODEL ARGS...: run with batch size 2 twice and with batch size 1; all .npy byte-identical
check() {
  local name=$1 model=$2
  shift 2
  local m=(--model "$model" --weights "$build/parity/$model.safetensors")
  "$cnnvis" -q "$@" "${m[@]}" "$tmp/in" -o "$tmp/$name.a" -b 2 --no-html; expect_code 0 $? "$name run 1"
  "$cnnvis" -q "$@" "${m[@]}" "$tmp/in" -o "$tmp/$name.b" -b 2 --no-html; expect_code 0 $? "$name run 2"
  "$cnnvis" -q "$@" "${m[@]}" "$tmp/in" -o "$tmp/$name.c" -b 1 --no-html; expect_code 0 $? "$name batch size 1"
  same_npy "$tmp/$name.a" "$tmp/$name.b" "$name: run after run"
  same_npy "$tmp/$name.a" "$tmp/$name.c" "$name: batch size 2 vs 1"
}

check gradcam-vgg vgg16 gradcam --methods gradcam,gradcam++,xgradcam,layercam,hirescam --top-k 2
check gradcam-goo googlenet gradcam --methods gradcam,gradcam++,layercam,cam,eigencam,eigengradcam,guided-gradcam
check guided-goo googlenet backprop --mode guided
check deconv-goo googlenet backprop --mode deconv --target 5
check vanilla-goo googlenet backprop --mode vanilla
check saliency-goo googlenet saliency
check smoothgrad-goo googlenet saliency --smooth 6 --seed 3 --chunk 4
check integrated-goo googlenet saliency --integrated 8 --chunk 3
# The seed matters: another seed gives another SmoothGrad map.
"$cnnvis" -q saliency --model googlenet --weights "$build/parity/googlenet.safetensors" --smooth 6 --seed 4 --chunk 4 \
  "$tmp/in" -o "$tmp/seed4" --no-html
cmp -s "$tmp/smoothgrad-goo.a/dog.saliency.npy" "$tmp/seed4/dog.saliency.npy" && fail "SmoothGrad ignores --seed"
echo "determinism e2e: $failures failure(s)"
[[ $failures == 0 ]]
