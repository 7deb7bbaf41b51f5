#!/usr/bin/env bash
# End-to-end: feature visualisation commands (activation-max with a layer sheet and an octave zoom,
# deepdream, filters, activations) with the seeded random VGG16 weights the parity fixture exports, on
# small images so that it stays quick. Args: <cnnvis binary> <source dir> <build dir>
set -uo pipefail
cnnvis=$1 src=$2 build=$3
weights=$build/parity/vgg16.safetensors
photos=/usr/share/darknet/data
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
png_size() { /usr/bin/python3 -c "import struct,sys; b=open(sys.argv[1],'rb').read(24); print('%dx%d' % struct.unpack('>II', b[16:24]))" "$1"; }
[[ -f $weights ]] || { echo "missing $weights (the parity_export fixture makes it)"; exit 1; }
[[ -f $photos/dog.jpg ]] || { echo "missing $photos (Debian package darknet)"; exit 1; }
model=(--model vgg16 --weights "$weights")
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

# activation-max: two layers x 2 random channels -> 4 images, a sheet, objective raised
"$cnnvis" -q --threads 1 activation-max "${model[@]}" --layer relu3_1,conv2_2 --random 2 --steps 24 --size 48 --seed 3 \
  -o "$tmp/am"
expect_code 0 $? "activation-max"
m=$tmp/am/manifest.json
[[ $(json "$m" "len(d['inputs'])") == 4 ]] || fail "activation-max: expected 4 units"
[[ -s $tmp/am/sheet.png ]] || fail "activation-max: no sheet"
[[ $(json "$m" "all(e['objective_final'] > e['objective_start'] for e in d['inputs'])") == True ]] \
  || fail "activation-max: objective did not rise: $(json "$m" "[(e['objective_start'], e['objective_final']) for e in d['inputs']]")"
# rows by depth: conv2_2 (shallower) units come first although given second
[[ $(json "$m" "[e['objective']['layer'] for e in d['inputs']]") == "['conv2_2', 'conv2_2', 'relu3_1', 'relu3_1']" ]] \
  || fail "activation-max: units not ordered by depth: $(json "$m" "[e['objective']['layer'] for e in d['inputs']]")"
first=$(json "$m" "d['inputs'][0]['outputs']['image']")
[[ $(png_size "$tmp/am/$first") == 48x48 ]] || fail "activation-max: image size $(png_size "$tmp/am/$first")"

# same seed -> byte-identical PNGs; another seed -> different
"$cnnvis" -q --threads 1 activation-max "${model[@]}" --layer relu3_1 --channel 5 --steps 12 --size 40 --seed 9 -o "$tmp/s1"
"$cnnvis" -q --threads 1 activation-max "${model[@]}" --layer relu3_1 --channel 5 --steps 12 --size 40 --seed 9 -o "$tmp/s2"
"$cnnvis" -q --threads 1 activation-max "${model[@]}" --layer relu3_1 --channel 5 --steps 12 --size 40 --seed 10 -o "$tmp/s3"
cmp -s "$tmp/s1/relu3_1_c5.png" "$tmp/s2/relu3_1_c5.png" || fail "same seed, different image"
cmp -s "$tmp/s1/relu3_1_c5.png" "$tmp/s3/relu3_1_c5.png" && fail "other seed, same image"

# class logit, neuron, pixel parameterisation
"$cnnvis" -q --threads 1 activation-max "${model[@]}" --class 7 --steps 8 --size 64 --param pixel -o "$tmp/cls"
expect_code 0 $? "activation-max class"
cls_png=$(json "$tmp/cls/manifest.json" "d['inputs'][0]['outputs']['image']")
[[ $cls_png == class7_* && -s $tmp/cls/$cls_png ]] || fail "class image: $(ls "$tmp/cls")"
[[ $(json "$tmp/cls/manifest.json" "d['inputs'][0]['objective']['class']") == 7 ]] || fail "class objective"
"$cnnvis" -q --threads 1 activation-max "${model[@]}" --layer conv3_1 --neuron 4,5,5 --steps 8 --size 48 -o "$tmp/neu"
expect_code 0 $? "activation-max neuron"
[[ $(json "$tmp/neu/manifest.json" "d['inputs'][0]['objective']['position']") == "[5, 5]" ]] || fail "neuron position"

# octave zoom: 24 -> 31 -> 40, then 3 zoom frames; PNG frames and a GIF with 6 frames
"$cnnvis" -q --threads 1 activation-max "${model[@]}" --layer relu3_1 --channel 1,2 --zoom --size 40 --zoom-start 24 \
  --octave-steps 3 --zoom-frames 3 --zoom-steps 2 --cycle 2 -o "$tmp/zoom"
expect_code 0 $? "zoom"
[[ $(ls "$tmp/zoom/frames"/*.png 2> /dev/null | wc -l) == 6 ]] || fail "zoom: expected 6 frames"
[[ $(png_size "$tmp/zoom/frames/0000.png") == 24x24 && $(png_size "$tmp/zoom/frames/0005.png") == 40x40 ]] || fail "zoom frame sizes"
/usr/bin/python3 - "$tmp/zoom/zoom.gif" <<'PY' || fail "zoom.gif is not a 6-frame 40x40 GIF"
import struct, sys
b = open(sys.argv[1], 'rb').read()
assert b[:6] == b'GIF89a' and struct.unpack('<HH', b[6:10]) == (40, 40)
assert b.count(b'\x21\xf9\x04') >= 6 and b[-1] == 0x3B
PY
[[ $(json "$tmp/zoom/manifest.json" "[e['objective']['channel'] for e in d['inputs']][-1]") == 2 ]] || fail "zoom: cycling"

# usage errors: exit 2 naming the problem
"$cnnvis" activation-max "${model[@]}" --layer relu3_1 --channel 999 --steps 1 -o "$tmp/x" 2> "$tmp/e1"
expect_code 2 $? "channel out of range"; grep -q "999" "$tmp/e1" || fail "channel range message: $(cat "$tmp/e1")"
"$cnnvis" activation-max "${model[@]}" --layer nope --channel 1 -o "$tmp/x" 2> "$tmp/e2"
expect_code 2 $? "unknown layer"; grep -q "nope" "$tmp/e2" || fail "unknown layer message"
"$cnnvis" activation-max "${model[@]}" --layer relu3_1 -o "$tmp/x" 2> "$tmp/e3"
expect_code 2 $? "no unit"; grep -q "choose what to maximise" "$tmp/e3" || fail "no unit message"

# deepdream: a good and a broken image; the good one dreams, the broken one is named
mkdir -p "$tmp/in"; cp "$photos/dog.jpg" "$tmp/in/"; echo "nope" > "$tmp/in/broken.jpg"
"$cnnvis" -q --threads 1 deepdream "${model[@]}" --layer relu3_1 --octaves 2 --steps 3 --max-side 96 "$tmp/in/dog.jpg" \
  "$tmp/in/broken.jpg" -o "$tmp/dd" 2> "$tmp/dd.err"
expect_code 1 $? "deepdream with a broken input"
[[ $(png_size "$tmp/dd/dog.deepdream.png") == 96x72 ]] || fail "deepdream size $(png_size "$tmp/dd/dog.deepdream.png")"
[[ $(json "$tmp/dd/manifest.json" "[e['objective_final'] > e['objective_start'] for e in d['inputs'] if e['status']=='ok'][0]") == True ]] \
  || fail "deepdream objective did not rise"
grep -q "broken.jpg" "$tmp/dd.err" || fail "deepdream: broken input not named"

# filters: first layer RGB tiles + weights .npy equal to the checkpoint's features.0.weight
"$cnnvis" -q filters "${model[@]}" -o "$tmp/f1"; expect_code 0 $? "filters first"
[[ -s $tmp/f1/features_0.filters.png ]] || fail "filters: sheet"
/usr/bin/python3 - "$tmp/f1/features_0.filters.npy" <<'PY' || fail "filters npy shape"
import numpy as np, sys
a = np.load(sys.argv[1]); assert a.shape == (64, 3, 3, 3), a.shape
PY
"$cnnvis" -q filters "${model[@]}" --layer conv2_1 --max-filters 8 --max-inputs 16 -o "$tmp/f2"; expect_code 0 $? "filters deeper"
[[ $(json "$tmp/f2/manifest.json" "d['inputs'][0]['shown']") == 8 ]] || fail "filters deeper: shown"
"$cnnvis" filters "${model[@]}" --layer relu1_1 -o "$tmp/x" 2> "$tmp/e4"
expect_code 2 $? "filters on a ReLU"; grep -q "not a convolution" "$tmp/e4" || fail "filters message"

# activations: grid per layer and strongest channels in the manifest (ordered by mean)
"$cnnvis" -q activations "${model[@]}" --layer conv1_1,relu5_3 --top 5 "$tmp/in/dog.jpg" -o "$tmp/act"
expect_code 0 $? "activations"
[[ -s $tmp/act/dog.features_0.activations.png && -s $tmp/act/dog.features_29.activations.png ]] || fail "activations grids: $(ls "$tmp/act")"
m=$tmp/act/manifest.json
[[ $(json "$m" "d['inputs'][0]['layers']['features.0']['signed']") == True ]] || fail "conv1_1 maps should be signed"
[[ $(json "$m" "d['inputs'][0]['layers']['features.29']['signed']") == False ]] || fail "relu5_3 maps should be non-negative"
[[ $(json "$m" "(lambda s: len(s) == 5 and all(a['mean'] >= b['mean'] for a, b in zip(s, s[1:])))(d['inputs'][0]['layers']['features.29']['strongest'])") == True ]] \
  || fail "strongest channels not 5 in decreasing order"

echo "feature visualisation e2e: $failures failure(s)"
[[ $failures == 0 ]]
