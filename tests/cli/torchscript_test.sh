#!/usr/bin/env bash
# TorchScript models end to end: every command on a traced ResNet-18 and a scripted MobileNetV3 exported by
# scripts/export_torchscript.py, resume, and the files cnnvis must refuse with one clear error line.
# Args: <cnnvis binary> <source dir> <build dir>
set -uo pipefail
cnnvis=$1 src=$2
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
/usr/bin/python3 "$src/tests/cli/make_torchscript_models.py" "$tmp/m" "$src" > /dev/null || { fail "making the models"; exit 1; }
images=$tmp/images
mkdir -p "$images"
cp /usr/share/darknet/data/{dog,eagle,giraffe,horses}.jpg "$images/"
r18=$tmp/m/r18.pt mb3=$tmp/m/mb3.pt

run() {  # LABEL COMMAND...: must exit 0
  local label=$1
  shift
  "$@" > "$tmp/log.txt" 2>&1 || fail "$label ($*): exit $?: $(tail -3 "$tmp/log.txt")"
}

# --- layers: module paths, types, shapes; the default layer is the last spatial one
"$cnnvis" layers --model "$r18" > "$tmp/layers.txt" 2>&1 || fail "layers r18"
grep -Eq '^ +layer4\.1\.conv2 +Conv2d +512x2x2' "$tmp/layers.txt" || fail "layers: no layer4.1.conv2 512x2x2: $(grep layer4.1.conv2 "$tmp/layers.txt")"
grep -Eq '^fc +Linear +10 ' "$tmp/layers.txt" || fail "layers: no fc with 10 outputs"
"$cnnvis" layers --model "$mb3" > "$tmp/layers3.txt" 2>&1 || fail "layers mb3"
grep -Eq 'features\.12 ' "$tmp/layers3.txt" || fail "layers mb3: no features.12"

# --- every command
for model in "$r18" "$mb3"; do
  name=$(basename "$model" .pt)
  layer=layer3
  [[ $name == mb3 ]] && layer=features.6
  run gradcam "$cnnvis" gradcam --model "$model" --methods gradcam,gradcam++,xgradcam,layercam,hirescam,eigencam,eigengradcam,guided-gradcam "$images" -o "$tmp/$name/cam"
  [[ $(json "$tmp/$name/cam/manifest.json" "len(d['inputs'])") == 4 ]] || fail "$name gradcam: 4 results expected"
  run backprop "$cnnvis" backprop --model "$model" --mode guided "$images" -o "$tmp/$name/bp"
  run deconv "$cnnvis" backprop --model "$model" --mode deconv "$images" -o "$tmp/$name/deconv"
  run saliency "$cnnvis" saliency --model "$model" --smooth 4 "$images" -o "$tmp/$name/sal"
  run saliency-ig "$cnnvis" saliency --model "$model" --integrated 8 "$images" -o "$tmp/$name/ig"
  run occlusion "$cnnvis" occlusion --model "$model" --patch 16 --stride 16 "$images" -o "$tmp/$name/occ"
  run activations "$cnnvis" activations --model "$model" "$images" -o "$tmp/$name/act"
  run evaluate "$cnnvis" evaluate --model "$model" --methods gradcam,saliency --steps 8 "$images" -o "$tmp/$name/eval"
  run top-patches "$cnnvis" top-patches --model "$model" --channels 0,1 -k 2 "$images" -o "$tmp/$name/tp"
  run activation-max "$cnnvis" activation-max --model "$model" --layer "$layer" --channel 3 --steps 8 -o "$tmp/$name/fv"
  run deepdream "$cnnvis" deepdream --model "$model" --layer "$layer" --steps 4 --octaves 2 "$images/dog.jpg" -o "$tmp/$name/dd"
  run filters "$cnnvis" filters --model "$model" --layer first -o "$tmp/$name/filt"
done
# LRP through the rewritten graph (batch norms merged, residual sums split by share).
run lrp "$cnnvis" backprop --model "$r18" --mode lrp "$images" -o "$tmp/r18/lrp"
run lrp-box "$cnnvis" backprop --model "$r18" --mode lrp-epsilon-plus-box "$images/dog.jpg" -o "$tmp/r18/lrp-box"
run tsne "$cnnvis" tsne --model "$r18" --layer avgpool --perplexity 1 "$images" -o "$tmp/r18/tsne"
run predict "$cnnvis" predict --model "$r18" "$images" -o "$tmp/r18/pred"
# The randomisation test re-draws modules top first, a batch norm with the convolution before it.
run randomisation "$cnnvis" evaluate --model "$r18" --methods saliency --steps 8 --no-curves --randomisation \
  --randomisation-steps 2 "$images" -o "$tmp/r18/rand"
steps=$(json "$tmp/r18/rand/evaluation.json" "'|'.join(d['methods']['saliency']['randomisation']['steps'])")
[[ $steps == "fc|layer4.1.conv2+layer4.1.bn2" ]] || fail "randomisation steps on r18: $steps"
run rise "$cnnvis" rise --model "$r18" --masks 16 --cells 4 "$images" -o "$tmp/r18/rise"
run atlas "$cnnvis" atlas --model "$r18" --layer avgpool --grid 2 --min-count 1 --perplexity 1 --iterations 100 --no-icons \
  "$images" -o "$tmp/r18/atlas"
all_ok="len(d['inputs']) == 4 and all(i['status'] == 'ok' for i in d['inputs'])"
for cmd in pred rise atlas lrp; do
  [[ $(json "$tmp/r18/$cmd/manifest.json" "$all_ok") == True ]] || fail "$cmd: not 4 inputs with status ok"
done
[[ $(json "$tmp/r18/pred/manifest.json" "len(d['inputs'][0]['predictions']) > 0") == True ]] || fail "predict: no predictions"
for f in dog.rise.npy dog.rise.png; do [[ -s $tmp/r18/rise/$f ]] || fail "rise: no $f"; done
for f in atlas_2.json atlas_layout.npy atlas_layout.png; do [[ -s $tmp/r18/atlas/$f ]] || fail "atlas: no $f"; done
# The default layer of a traced ResNet is layer4; the gradient path gives the same map run to run.
[[ $(json "$tmp/r18/cam/manifest.json" "d['inputs'][0]['maps'][0]['layer']") == layer4 ]] || fail "default layer is not layer4"
"$cnnvis" gradcam --model "$r18" --methods gradcam,gradcam++,xgradcam,layercam,hirescam,eigencam,eigengradcam,guided-gradcam "$images" \
  -o "$tmp/r18/cam" > "$tmp/resume.txt" 2>&1 || fail "resume run"
grep -q "4 of 4 inputs already done" "$tmp/resume.txt" || fail "resume: nothing skipped: $(tail -2 "$tmp/resume.txt")"
"$cnnvis" gradcam --no-resume --model "$r18" --methods gradcam "$images" -o "$tmp/r18/cam2" > /dev/null 2>&1
cmp -s "$tmp/r18/cam/dog.gradcam.npy" "$tmp/r18/cam2/dog.gradcam.npy" || fail "gradcam maps differ between runs"

# --- files and cards cnnvis must refuse: one error line naming the file and the problem
bad() {  # NAME CODE PATTERN COMMAND...
  local name=$1 want=$2 pattern=$3
  shift 3
  "$@" > "$tmp/out.txt" 2> "$tmp/err.txt"
  local code=$?
  ((code < 128)) || { fail "$name: killed by signal $((code - 128))"; return; }
  expect_code "$want" "$code" "$name"
  [[ $(grep -c '^error: ' "$tmp/err.txt") == 1 ]] || { fail "$name: not one error line: $(head -c 400 "$tmp/err.txt")"; return; }
  grep '^error: ' "$tmp/err.txt" | grep -Eq -- "$pattern" || fail "$name: /$pattern/ not in: $(grep '^error: ' "$tmp/err.txt")"
}
head -c 4096 /dev/urandom > "$tmp/m/noise.pt"
head -c 20000 "$r18" > "$tmp/m/truncated.pt"
cp "$r18" "$tmp/m/nocard.pt"
: > "$tmp/m/empty.pt"
img=$images/dog.jpg
bad "random bytes" 1 "noise\.pt: not a TorchScript model" "$cnnvis" gradcam --model "$tmp/m/noise.pt" "$img" -o "$tmp/b1"
bad "truncated" 1 "truncated\.pt: not a TorchScript model" "$cnnvis" gradcam --model "$tmp/m/truncated.pt" "$img" -o "$tmp/b2"
bad "empty" 1 "empty\.pt: not a TorchScript model" "$cnnvis" gradcam --model "$tmp/m/empty.pt" "$img" -o "$tmp/b2"
bad "state dict" 1 "state_dict\.pth: not a TorchScript model" "$cnnvis" gradcam --model "$tmp/m/state_dict.pth" "$img" -o "$tmp/b3"
bad "tuple output" 1 "tuple\.pt: the model returns Tuple" "$cnnvis" gradcam --model "$tmp/m/tuple.pt" "$img" -o "$tmp/b4"
bad "two inputs" 1 "two_inputs\.pt: forward must take exactly one tensor" "$cnnvis" layers --model "$tmp/m/two_inputs.pt"
bad "1-D output" 1 "flat\.pt: the model's output is [0-9]+ for a batch of 1, not \[N, classes\]" "$cnnvis" layers --model "$tmp/m/flat.pt"
# Valid zips with one record altered (make_torchscript_models.py), and outputs that are no tensor.
bad "random data.pkl" 1 "pkl_random\.pt: not a TorchScript model \(Expected PROTO opcode" "$cnnvis" layers --model "$tmp/m/pkl_random.pt"
bad "truncated data.pkl" 1 "pkl_truncated\.pt: not a TorchScript model \(record data\.pkl: truncated" "$cnnvis" layers --model "$tmp/m/pkl_truncated.pt"
bad "huge memo index" 1 "pkl_memo\.pt: not a TorchScript model \(record data\.pkl: memo index 4294967294" "$cnnvis" layers --model "$tmp/m/pkl_memo.pt"
bad "random constants.pkl" 1 "constants_random\.pt: not a TorchScript model \(Expected PROTO opcode" "$cnnvis" layers --model "$tmp/m/constants_random.pt"
bad "tensor record cut short" 1 "record_short\.pt: not a TorchScript model \(record data/0 holds 216 bytes; the FloatStorage at byte [0-9]+ of data\.pkl needs 108 x 4 = 432 bytes\)$" \
  "$cnnvis" layers --model "$tmp/m/record_short.pt"
bad "tensor record missing" 1 "record_missing\.pt: not a TorchScript model \(record data/1 is missing; a FloatStorage of 4 elements is described there at byte [0-9]+ of data\.pkl\)$" \
  "$cnnvis" layers --model "$tmp/m/record_missing.pt"
bad "tensor view past its storage" 1 "view_offset\.pt: not a TorchScript model \(record data\.pkl: a tensor at byte [0-9]+ of sizes \[4x3x3x3\] at offset 1 views elements up to 109 of storage '0', which has 108\)$" \
  "$cnnvis" layers --model "$tmp/m/view_offset.pt"
bad "version 99" 1 "version99\.pt: not a TorchScript model \(.*version 99" "$cnnvis" layers --model "$tmp/m/version99.pt"
bad "no version record" 1 "no_version\.pt: not a TorchScript model \(.*hasRecord\(\"version\"\)" "$cnnvis" layers --model "$tmp/m/no_version.pt"
bad "no code records" 1 "no_code\.pt: not a TorchScript model \(Unknown type name" "$cnnvis" layers --model "$tmp/m/no_code.pt"
bad "dict output" 1 "dict\.pt: the model returns GenericDict, not a tensor" "$cnnvis" layers --model "$tmp/m/dict.pt"
bad "traced-away identity" 2 "identity\.pt: module 'ident' has no output to use: not called by the forward graph" \
  "$cnnvis" gradcam --model "$tmp/m/identity.pt" --layer ident "$img" -o "$tmp/b13"
bad "missing file" 1 "absent\.pt: TorchScript file not found" "$cnnvis" gradcam --model "$tmp/m/absent.pt" "$img" -o "$tmp/b5"
bad "unknown layer" 2 "no layer 'layer4\.3'; nearest: layer4\.0, layer4\.1" "$cnnvis" gradcam --model "$r18" --layer layer4.3 "$img" -o "$tmp/b6"
bad "weights flag" 2 "--weights does not apply" "$cnnvis" gradcam --model "$r18" --weights x.safetensors "$img" -o "$tmp/b7"
bad "lrp on hardswish" 2 "mb3\.pt: LRP has no rule for aten::hardswish.* \(in module 'features\.0\.2'\)" \
  "$cnnvis" backprop --model "$mb3" --mode lrp "$img" -o "$tmp/b14"
bad "cam on torchscript" 2 "use gradcam" "$cnnvis" gradcam --model "$r18" --methods cam "$img" -o "$tmp/b8"
echo '{"name": "nocard", "architecture": "torchscript", "labels": ["a", "b"]}' > "$tmp/m/nocard.json"
bad "label count" 1 "nocard\.json: the card names 2 classes, the model .* has 10" "$cnnvis" gradcam --model "$tmp/m/nocard.pt" "$img" -o "$tmp/b9"
echo '{"name": "nocard", "architecture": "torchscript",' > "$tmp/m/nocard.json"
bad "malformed card" 1 "nocard\.json: not valid JSON" "$cnnvis" gradcam --model "$tmp/m/nocard.pt" "$img" -o "$tmp/b10"
echo '{"name": "nocard", "architecture": "vgg16"}' > "$tmp/m/other.json"
bad "card of another model" 1 "other\.json: card is for architecture 'vgg16'" "$cnnvis" gradcam --model "$tmp/m/nocard.pt" --card "$tmp/m/other.json" "$img" -o "$tmp/b11"
rm "$tmp/m/nocard.json"
# Without a card: ImageNet preprocessing at 224 x 224 (the model is fully convolutional up to its pool).
"$cnnvis" gradcam --model "$tmp/m/nocard.pt" "$img" -o "$tmp/b12" > /dev/null 2>&1 || fail "no card: gradcam failed"
[[ $(json "$tmp/b12/manifest.json" "d['inputs'][0]['maps'][0]['layer']") == layer4 ]] || fail "no card: layer"

((failures == 0)) && echo "torchscript: all checks passed"
exit $((failures > 0))
