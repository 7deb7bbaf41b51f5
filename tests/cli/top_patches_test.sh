#!/usr/bin/env bash
# End-to-end: `cnnvis top-patches` on Fashion-MNIST canvases with the demo model: one sheet per unit,
# the JSON index, streaming top-k equal to a full sort of `cnnvis`'s own codes, and crop boxes equal to
# the receptive fields `cnnvis layers --json` reports.
# Args: <cnnvis binary> <source dir> <build dir>
set -uo pipefail
cnnvis=$1 src=$2
data=/usr/share/datasets/fashion-mnist
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ -f $data/t10k-images-idx3-ubyte.gz ]] || { echo "missing $data (Debian package dataset-fashion-mnist)"; exit 1; }

demo_weights --train-limit 2000 --test-limit 200 --epochs 1
model=(--model fashion_vgg --weights "$weights")
"$cnnvis" -q canvases -n 40 -o "$tmp/in" > /dev/null || fail "canvases"
echo "not an image" > "$tmp/in/broken.png"

# A spatial layer: receptive-field patches. Batch size 3 so the stream crosses many batches.
"$cnnvis" -q top-patches "${model[@]}" --layer conv2 --channels 0,3,5 -k 4 -b 3 "$tmp/in" -o "$tmp/tp" \
  > /dev/null 2> "$tmp/tp.err"
expect_code 1 $? "top-patches with one broken input"
grep -q "broken.png" "$tmp/tp.err" || fail "broken.png not named"
for c in 0000 0003 0005; do [[ -s $tmp/tp/top_patches/unit_$c.png ]] || fail "missing sheet unit_$c.png"; done
"$cnnvis" -q layers "${model[@]}" --json > "$tmp/layers.json" || fail "layers --json"
# Every input's peak per unit (k larger than the number of inputs), then a full sort in Python.
"$cnnvis" -q top-patches "${model[@]}" --layer conv2 --channels 0,3,5 -k 1000 -b 16 "$tmp/in" -o "$tmp/all" \
  > /dev/null 2>&1
/usr/bin/python3 - "$tmp/tp/top_patches.json" "$tmp/all/top_patches.json" "$tmp/layers.json" <<'PY' || fail "top-patches index"
import json, sys
top, everything, layers = (json.load(open(p)) for p in sys.argv[1:4])
layer = [l for l in layers if l["name"] == top["layer"] or top["layer"] in l["aliases"].split(",")][0]
rf = layer["receptive_field"]
side = top["input_size"][0]
assert top["patches"] and len(top["units"]) == 3
for unit, full in zip(top["units"], everything["units"]):
    assert unit["channel"] == full["channel"]
    assert len(full["examples"]) == 40, len(full["examples"])  # every readable input, once
    # streaming top-4 over batches of 3 == the first 4 of a stable full sort by value
    ranked = sorted(full["examples"], key=lambda e: -e["value"])
    assert [e["input"] for e in unit["examples"]] == [e["input"] for e in ranked[:4]], unit["channel"]
    for a, b in zip(unit["examples"], ranked[:4]):  # batch sizes differ (3 vs 16): allow rounding
        assert abs(a["value"] - b["value"]) <= 1e-4 * max(1.0, abs(b["value"])), (a, b)
    for e in unit["examples"]:
        cx, cy = rf["start"] + e["x"] * rf["stride"], rf["start"] + e["y"] * rf["stride"]
        import math
        want = [math.floor(max(0, cx - rf["size"] / 2)), math.floor(max(0, cy - rf["size"] / 2)),
                math.ceil(min(side, cx + rf["size"] / 2)), math.ceil(min(side, cy + rf["size"] / 2))]
        assert e["box"] == want, (e["box"], want)
print("ok")
PY
[[ $(json "$tmp/tp/manifest.json" "sum(e['status']=='error' for e in d['inputs'])") == 1 ]] || fail "manifest: one error"

# A flat layer gives whole inputs; a bad channel is a usage error naming the range.
"$cnnvis" -q top-patches "${model[@]}" --layer logits --channels 2 -k 3 "$tmp/in"/canvas_0000*.png -o "$tmp/flat" > /dev/null
expect_code 0 $? "top-patches on logits"
[[ $(json "$tmp/flat/top_patches.json" "d['patches']") == False ]] || fail "logits: expected whole inputs"
"$cnnvis" -q top-patches "${model[@]}" --layer conv2 --channels 100000 "$tmp/in" -o "$tmp/bad" 2> "$tmp/bad.err"
expect_code 2 $? "channel out of range"
grep -q "out of range" "$tmp/bad.err" || fail "channel error message: $(cat "$tmp/bad.err")"
exit $((failures > 0))
