#!/usr/bin/env bash
# End-to-end: `cnnvis rise` on Debian's darknet photos with a bad input mixed in, on the demo model
# (models/fashion_vgg.safetensors, or one trained here in seconds): outputs and manifest, the same
# bytes whatever --batch-size, another seed another map, resume, usage errors.
# Args: <cnnvis binary> <source dir> <build dir>
set -uo pipefail
cnnvis=$1 src=$2
photos=/usr/share/darknet/data
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ -f $photos/dog.jpg ]] || { echo "missing $photos (Debian package darknet)"; exit 1; }
weights=$src/models/fashion_vgg.safetensors
if [[ ! -f $weights ]]; then
  weights=$tmp/m/fashion_vgg.safetensors
  "$cnnvis" -q train --train-limit 300 --test-limit 50 --epochs 1 --out "$weights" > /dev/null || fail "training"
fi

mkdir -p "$tmp/in"
cp "$photos/dog.jpg" "$photos/eagle.jpg" "$tmp/in/"
echo "not an image" > "$tmp/in/broken.jpg"
model=(--model fashion_vgg --weights "$weights")
rise=(--masks 64 --cells 5 --keep 0.5 --seed 3)

"$cnnvis" rise "${model[@]}" "${rise[@]}" -b 16 "$tmp/in" -o "$tmp/a" 2> "$tmp/a.err"
expect_code 1 $? "rise with a bad input"
grep "broken.jpg" "$tmp/a.err" | grep -qi error || fail "rise: stderr does not name broken.jpg: $(cat "$tmp/a.err")"
grep -q "64/64 masks of dog" "$tmp/a.err" || fail "rise: no progress of the masks: $(cat "$tmp/a.err")"
for name in dog eagle; do
  for kind in png overlay.png npy; do
    [[ -s $tmp/a/$name.rise.$kind ]] || fail "rise: missing $name.rise.$kind"
  done
done
m=$tmp/a/manifest.json
[[ $(json "$m" "d['command']") == rise ]] || fail "rise manifest: command"
[[ $(json "$m" "d['options']['method'], d['options']['masks'], d['options']['cells']") == "rise 64 5" ]] \
  || fail "rise manifest: options $(json "$m" "d['options']")"
[[ $(json "$m" "sum(e['status']=='error' for e in d['inputs'])") == 1 ]] || fail "rise manifest: expected 1 error"
[[ $(json "$m" "[e['method'] for e in d['inputs'] if e['input'].endswith('dog.jpg')][0]") == rise ]] || fail "rise manifest: method"
/usr/bin/python3 - "$tmp/a/dog.rise.npy" <<'PY' || fail "rise map"
import numpy as np, sys
a = np.load(sys.argv[1])
assert a.shape == (64, 64) and a.dtype == np.float32, (a.shape, a.dtype)
assert np.isfinite(a).all() and a.min() >= 0 and a.max() <= 2.0, (a.min(), a.max())  # <= 1 / keep
assert a.max() > a.min(), "flat map"
PY

# The same seed gives the same bytes whatever the batch size; another seed another map.
"$cnnvis" -q rise "${model[@]}" "${rise[@]}" -b 5 "$tmp/in/dog.jpg" -o "$tmp/b"
expect_code 0 $? "rise -b 5"
cmp -s "$tmp/a/dog.rise.npy" "$tmp/b/dog.rise.npy" || fail "rise: -b 5 and -b 16 maps differ"
"$cnnvis" -q rise "${model[@]}" --masks 64 --cells 5 --seed 4 "$tmp/in/dog.jpg" -o "$tmp/c"
expect_code 0 $? "rise --seed 4"
cmp -s "$tmp/a/dog.rise.npy" "$tmp/c/dog.rise.npy" && fail "rise: another seed gives the same map"

# Resume: done inputs are skipped (the batch size does not change the outputs); other settings recompute.
"$cnnvis" rise "${model[@]}" "${rise[@]}" -b 8 "$tmp/in" -o "$tmp/a" 2> "$tmp/r.err"
expect_code 1 $? "rise resumed"
grep -q "resuming: 2 of 3 inputs already done" "$tmp/r.err" || fail "rise resume: $(cat "$tmp/r.err")"
"$cnnvis" rise "${model[@]}" --masks 32 "$tmp/in/dog.jpg" -o "$tmp/a" 2> "$tmp/r2.err"
grep -q "other settings; computing every input" "$tmp/r2.err" || fail "rise: changed --masks still resumed: $(cat "$tmp/r2.err")"

# Bad options: exit code 2 with a one-line message.
for bad in "--keep 0" "--keep 1.5" "--masks 0" "--cells 0" "--target nonsense"; do
  # shellcheck disable=SC2086
  "$cnnvis" -q rise "${model[@]}" $bad "$tmp/in/dog.jpg" -o "$tmp/bad" 2> "$tmp/bad.err"
  expect_code 2 $? "rise $bad"
  [[ $(wc -l < "$tmp/bad.err") == 1 ]] || fail "rise $bad: not one line: $(cat "$tmp/bad.err")"
done
grep -q "keep" <("$cnnvis" rise "${model[@]}" --keep 2 "$tmp/in/dog.jpg" -o "$tmp/bad" 2>&1) || fail "rise: --keep not named"

echo "rise e2e: $failures failure(s)"
[[ $failures == 0 ]]
