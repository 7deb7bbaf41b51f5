#!/usr/bin/env bash
# End-to-end: `cnnvis backprop` and `cnnvis saliency` on real photos (Debian's darknet package) with the
# seeded random VGG16 weights the parity fixture exports, with a bad input mixed in.
# Args: <cnnvis binary> <source dir> <build dir>
set -uo pipefail
cnnvis=$1 src=$2 build=$3
weights=$build/parity/vgg16.safetensors
photos=/usr/share/darknet/data
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# png_size FILE -> "WIDTHxHEIGHT" from the IHDR chunk
png_size() { /usr/bin/python3 -c "import struct,sys; b=open(sys.argv[1],'rb').read(24); print('%dx%d' % struct.unpack('>II', b[16:24]))" "$1"; }

[[ -f $weights ]] || { echo "missing $weights (the parity_export fixture makes it)"; exit 1; }
[[ -f $photos/dog.jpg ]] || { echo "missing $photos (Debian package darknet)"; exit 1; }

mkdir -p "$tmp/in"
cp "$photos/dog.jpg" "$photos/eagle.jpg" "$tmp/in/"
echo "not an image" > "$tmp/in/broken.jpg"
model=(--model vgg16 --weights "$weights")

# backprop (guided by default): the good inputs are written, the bad one named, exit code 1
"$cnnvis" backprop "${model[@]}" "$tmp/in/dog.jpg" "$tmp/in/broken.jpg" "$tmp/in/eagle.jpg" -o "$tmp/bp" 2> "$tmp/bp.err"
expect_code 1 $? "backprop with a bad input"
for name in dog eagle; do
  for kind in png magnitude.png npy; do
    [[ -s $tmp/bp/$name.guided.$kind ]] || fail "backprop: missing $name.guided.$kind"
  done
  [[ -s $tmp/bp/$name.guided.png ]] && { [[ $(png_size "$tmp/bp/$name.guided.png") == 224x224 ]] || fail "backprop: $name.guided.png not 224x224"; }
done
[[ $(grep -c "broken.jpg" "$tmp/bp.err") -ge 1 ]] || fail "backprop: stderr does not name broken.jpg: $(cat "$tmp/bp.err")"
[[ $(grep "broken.jpg" "$tmp/bp.err" | head -1 | grep -ci "error") == 1 ]] || fail "backprop: no error line for broken.jpg"
m=$tmp/bp/manifest.json
[[ $(json "$m" "d['command']") == backprop ]] || fail "backprop manifest: command"
[[ $(json "$m" "len(d['inputs'])") == 3 ]] || fail "backprop manifest: expected 3 inputs"
[[ $(json "$m" "sum(e['status']=='error' for e in d['inputs'])") == 1 ]] || fail "backprop manifest: expected 1 error"
[[ $(json "$m" "[e['status'] for e in d['inputs'] if e['input'].endswith('broken.jpg')][0]") == error ]] || fail "backprop manifest: broken.jpg not the error"
[[ $(json "$m" "[e['outputs']['gradient'] for e in d['inputs'] if e['input'].endswith('dog.jpg')][0]") == dog.guided.png ]] \
  || fail "backprop manifest: outputs"
[[ $(json "$m" "[len(e['predictions']) for e in d['inputs'] if e['input'].endswith('dog.jpg')][0]") == 5 ]] || fail "backprop manifest: predictions"
[[ $(json "$m" "[e['target']['index']==e['predictions'][0]['index'] and e['mode']=='guided' for e in d['inputs'] if e['input'].endswith('eagle.jpg')][0]") == True ]] \
  || fail "backprop manifest: target is not the top class"
/usr/bin/python3 - "$tmp/bp/dog.guided.npy" <<'PY' || fail "backprop npy not a finite, non-zero 224x224x3 gradient"
import numpy as np, sys
a = np.load(sys.argv[1])
assert a.shape == (224, 224, 3) and a.dtype == np.float32, (a.shape, a.dtype)
assert np.isfinite(a).all() and np.abs(a).max() > 0
PY

# vanilla and deconv modes, explicit target
"$cnnvis" -q backprop "${model[@]}" --mode vanilla "$tmp/in/dog.jpg" -o "$tmp/bpv"; expect_code 0 $? "backprop vanilla"
[[ -s $tmp/bpv/dog.vanilla.npy && -s $tmp/bpv/dog.vanilla.magnitude.png ]] || fail "backprop vanilla outputs"
"$cnnvis" -q backprop "${model[@]}" --mode deconv --target 7 "$tmp/in/dog.jpg" -o "$tmp/bpd"; expect_code 0 $? "backprop deconv"
[[ $(json "$tmp/bpd/manifest.json" "d['inputs'][0]['target']['index']") == 7 ]] || fail "backprop deconv: target 7"
[[ -s $tmp/bpd/dog.deconv.png ]] || fail "backprop deconv outputs"
# LRP presets on VGG16: the relevance of the top class sums to about its logit under pure epsilon
# (biases take a share, so only the sign and order of magnitude are checked here; the unit tests check
# conservation exactly on a bias-free network)
for mode in lrp-epsilon lrp-epsilon-plus-flat; do
  "$cnnvis" -q backprop "${model[@]}" --mode "$mode" "$tmp/in/dog.jpg" -o "$tmp/lrp-$mode"; expect_code 0 $? "backprop $mode"
  [[ $(json "$tmp/lrp-$mode/manifest.json" "d['inputs'][0]['mode']") == "$mode" ]] || fail "$mode manifest mode"
  [[ -s $tmp/lrp-$mode/dog.$mode.npy && -s $tmp/lrp-$mode/dog.$mode.magnitude.png ]] || fail "$mode outputs"
done
/usr/bin/python3 -c "import numpy as np, sys; r = np.load(sys.argv[1]); sys.exit(0 if np.isfinite(r).all() and np.abs(r).sum() > 0 else 1)" \
  "$tmp/lrp-lrp-epsilon-plus-flat/dog.lrp-epsilon-plus-flat.npy" || fail "LRP relevance not finite or all zero"
"$cnnvis" backprop "${model[@]}" --mode lrp --lrp-epsilon 0 "$tmp/in/dog.jpg" -o "$tmp/x" 2> /dev/null
expect_code 2 $? "--lrp-epsilon 0"

# saliency: vanilla map = max over channels of |vanilla gradient|
"$cnnvis" saliency "${model[@]}" "$tmp/in/dog.jpg" "$tmp/in/broken.jpg" "$tmp/in/eagle.jpg" -o "$tmp/sal" 2> "$tmp/sal.err"
expect_code 1 $? "saliency with a bad input"
for name in dog eagle; do
  for kind in png overlay.png npy; do
    [[ -s $tmp/sal/$name.saliency.$kind ]] || fail "saliency: missing $name.saliency.$kind"
  done
done
grep "broken.jpg" "$tmp/sal.err" | grep -qi error || fail "saliency: stderr does not name broken.jpg: $(cat "$tmp/sal.err")"
m=$tmp/sal/manifest.json
[[ $(json "$m" "len(d['inputs'])") == 3 ]] || fail "saliency manifest: expected 3 inputs"
[[ $(json "$m" "sum(e['status']=='error' for e in d['inputs'])") == 1 ]] || fail "saliency manifest: expected 1 error"
[[ $(json "$m" "[e['method'] for e in d['inputs'] if e['input'].endswith('dog.jpg')][0]") == vanilla ]] || fail "saliency manifest: method"
[[ $(json "$m" "[e['outputs']['overlay'] for e in d['inputs'] if e['input'].endswith('dog.jpg')][0]") == dog.saliency.overlay.png ]] \
  || fail "saliency manifest: outputs"
# dog.jpg is 768x576: the overlay is on the source image, the map at the model input size
[[ $(png_size "$tmp/sal/dog.saliency.overlay.png") == 768x576 ]] || fail "saliency overlay size $(png_size "$tmp/sal/dog.saliency.overlay.png")"
[[ $(png_size "$tmp/sal/dog.saliency.png") == 224x224 ]] || fail "saliency map size"
/usr/bin/python3 - "$tmp/sal/dog.saliency.npy" "$tmp/bpv/dog.vanilla.npy" <<'PY' || fail "saliency map is not max |vanilla gradient|"
import numpy as np, sys
s, g = np.load(sys.argv[1]), np.load(sys.argv[2])
assert s.shape == (224, 224) and s.dtype == np.float32, s.shape
assert np.abs(s - np.abs(g).max(axis=2)).max() <= 1e-6 * np.abs(g).max()
PY

# SmoothGrad is seeded: the same seed gives byte-identical maps, another seed a different one
"$cnnvis" -q saliency "${model[@]}" --smooth 3 --noise 0.1 --seed 4 "$tmp/in/dog.jpg" -o "$tmp/s1"; expect_code 0 $? "smoothgrad"
"$cnnvis" -q saliency "${model[@]}" --smooth 3 --noise 0.1 --seed 4 --chunk 2 "$tmp/in/dog.jpg" -o "$tmp/s2"; expect_code 0 $? "smoothgrad again"
"$cnnvis" -q saliency "${model[@]}" --smooth 3 --noise 0.1 --seed 5 "$tmp/in/dog.jpg" -o "$tmp/s3"; expect_code 0 $? "smoothgrad seed 5"
/usr/bin/python3 - "$tmp/s1/dog.saliency.npy" "$tmp/s2/dog.saliency.npy" "$tmp/s3/dog.saliency.npy" <<'PY' || fail "smoothgrad seeding"
import numpy as np, sys
a, b, c = (np.load(p) for p in sys.argv[1:])
assert np.abs(a - b).max() <= 1e-6 * np.abs(a).max(), "same seed, other chunking differs"
assert np.abs(a - c).max() > 1e-3 * np.abs(a).max(), "another seed gives the same map"
PY
[[ $(json "$tmp/s1/manifest.json" "d['inputs'][0]['method']") == smoothgrad ]] || fail "smoothgrad manifest method"

# integrated gradients
"$cnnvis" -q saliency "${model[@]}" --integrated 3 "$tmp/in/eagle.jpg" -o "$tmp/ig"; expect_code 0 $? "integrated gradients"
[[ -s $tmp/ig/eagle.saliency.npy ]] || fail "integrated gradients output"
[[ $(json "$tmp/ig/manifest.json" "d['inputs'][0]['method']") == integrated_gradients ]] || fail "ig manifest method"

# named methods: SmoothGrad-squared and VarGrad (non-negative maps), input x gradient
for method in smoothgrad-sq vargrad input-x-gradient; do
  count=(--smooth 2)
  [[ $method == input-x-gradient ]] && count=()
  "$cnnvis" -q saliency "${model[@]}" --method "$method" "${count[@]}" --seed 4 "$tmp/in/dog.jpg" -o "$tmp/m-$method"
  expect_code 0 $? "saliency --method $method"
  [[ $(json "$tmp/m-$method/manifest.json" "d['inputs'][0]['method']") == "${method//-/_}" ]] || fail "$method manifest method"
done
/usr/bin/python3 - "$tmp/m-smoothgrad-sq/dog.saliency.npy" "$tmp/m-vargrad/dog.saliency.npy" <<'PY' || fail "smoothgrad-sq / vargrad maps"
import numpy as np, sys
sq, var = (np.load(p) for p in sys.argv[1:])
assert sq.shape == var.shape == (224, 224) and sq.min() >= 0 and var.min() >= 0 and sq.max() > 0, (sq.max(), var.min())
assert (var <= sq * (1 + 1e-5) + 1e-30).all(), "variance above the mean square"
PY
"$cnnvis" saliency "${model[@]}" --method vanilla --smooth 2 "$photos/dog.jpg" -o "$tmp/x" 2> "$tmp/e4"
expect_code 2 $? "--method vanilla --smooth 2"; grep -q "smooth" "$tmp/e4" || fail "--smooth with vanilla: message"
"$cnnvis" saliency "${model[@]}" --method gradcam "$photos/dog.jpg" -o "$tmp/x" 2> "$tmp/e5"
expect_code 2 $? "unknown saliency method"; grep -q "input-x-gradient" "$tmp/e5" || fail "unknown method: names not listed"

# usage errors: exit 2 and a message naming the problem
"$cnnvis" backprop "${model[@]}" --mode smooth "$photos/dog.jpg" -o "$tmp/x" 2> "$tmp/e1"
expect_code 2 $? "unknown mode"; grep -q "smooth" "$tmp/e1" || fail "unknown mode not named"
"$cnnvis" saliency "${model[@]}" --smooth 2 --integrated 2 "$photos/dog.jpg" -o "$tmp/x" 2> "$tmp/e2"
expect_code 2 $? "smooth and integrated"; grep -q "integrated" "$tmp/e2" || fail "smooth+integrated message"
"$cnnvis" saliency "${model[@]}" --target 5000 "$photos/dog.jpg" -o "$tmp/x" 2> "$tmp/e3"
expect_code 2 $? "target out of range"; grep -q "0..999" "$tmp/e3" || fail "target range not named"

echo "backprop/saliency e2e: $failures failure(s)"
[[ $failures == 0 ]]
