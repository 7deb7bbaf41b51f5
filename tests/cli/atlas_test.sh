#!/usr/bin/env bash
# End-to-end: `cnnvis atlas` on the demo model's Fashion-MNIST canvases: the one-shot run (files, cells,
# labels, icons, index.html), the same atlas from two shards collected separately and rendered with
# --from (identical cells and icons), a class atlas, a precomputed layout, and bad input.
# Args: <cnnvis binary> <source dir> <build dir>
set -uo pipefail
cnnvis=$1 src=$2
data=/usr/share/datasets/fashion-mnist
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ -f $data/t10k-images-idx3-ubyte.gz ]] || { echo "missing $data (Debian package dataset-fashion-mnist)"; exit 1; }

demo_weights --train-limit 3000 --test-limit 200 --epochs 1
min_label_agreement=0.3
(( quick_model )) && min_label_agreement=0.2  # the quick model is right about a third of the time
model=(--model fashion_vgg --weights "$weights")
small=(--layer relu4 --samples-per-image 2 --grid 6 --min-count 2 --perplexity 20 --iterations 400
       --icon-size 32 --icon-steps 24 --icon-batch 64 --seed 3)

"$cnnvis" -q canvases -n 160 -o "$tmp/in" > /dev/null || fail "canvases"
echo "not an image" > "$tmp/in/broken.png"

# --- one run: collect, lay out, bin, draw
"$cnnvis" -q --threads 2 atlas "${model[@]}" "${small[@]}" "$tmp/in" -o "$tmp/a" > /dev/null 2> "$tmp/a.err"
expect_code 1 $? "atlas with one broken input"
grep -q "broken.png" "$tmp/a.err" || fail "stderr does not name broken.png"
for f in atlas_collection.json atlas_activations.npy atlas_attr_classes.npy atlas_attr_values.npy atlas_samples.csv \
         atlas_layout.csv atlas_layout.npy atlas_layout.png atlas_6.png atlas_6_labelled.png atlas_6.json atlas.json \
         manifest.json index.html; do
  [[ -s $tmp/a/$f ]] || fail "missing $f"
done
channels=$("$cnnvis" layers "${model[@]}" --json | /usr/bin/python3 -c "
import json, sys
print([l for l in json.load(sys.stdin) if 'relu4' in l['aliases'].split(',')][0]['output_shape'][0])")
[[ $(json "$tmp/a/atlas_collection.json" "str(d['rows']) + ' ' + str(d['channels']) + ' ' + str(d['attribution_classes'])") == "320 $channels 10" ]] \
  || fail "collection: 160 canvases x 2 samples of relu4's $channels channels, 10 classes of attribution"
[[ $(json "$tmp/a/manifest.json" "sum(e['status']=='error' for e in d['inputs'])") == 1 ]] || fail "manifest: one error"
/usr/bin/python3 - "$tmp/a" "$tmp/in/canvases.json" "$min_label_agreement" <<'PY' || fail "atlas cells"
import json, os, sys
import numpy as np
out = sys.argv[1]
atlas = json.load(open(os.path.join(out, "atlas_6.json")))
cells = atlas["cells"]
assert len(cells) >= 4, f"only {len(cells)} cells"
assert sum(c["count"] for c in cells) <= 320
seen = set()
for c in cells:
    assert 0 <= c["column"] < 6 and 0 <= c["row"] < 6 and c["count"] >= 2
    assert (c["column"], c["row"]) not in seen
    seen.add((c["column"], c["row"]))
    assert c["top_classes"] and c["top_classes"][0]["label"], c
    icon = os.path.join(out, c["icon"])
    assert os.path.getsize(icon) > 0, icon
    assert all(os.path.exists(e["path"]) for e in c["examples"])
# Cell labels mean something: samples taken on the garment (the centre of the position's receptive field
# inside the item's box) lie in cells labelled with the garment's true class far more often than chance
# (0.1). Samples on the cluttered background carry no class, so they are left out.
truth = {it["file"]: it for it in json.load(open(sys.argv[2]))["items"]}
import csv
rows = list(csv.DictReader(open(os.path.join(out, "atlas_layout.csv"))))
samples = {(r["key"], r["sample"]): r for r in csv.DictReader(open(os.path.join(out, "atlas_samples.csv")))}
u = np.array([float(r["u"]) for r in rows]); v = np.array([float(r["v"]) for r in rows])
assert u.min() >= 0 and u.max() <= 1 and v.min() >= 0 and v.max() <= 1
col = np.minimum((u * 6).astype(int), 5); row = np.minimum((v * 6).astype(int), 5)
label_of_cell = {(c["column"], c["row"]): c["top_classes"][0]["index"] for c in cells}
hits = total = 0
for r, cc, rr in zip(rows, col, row):
    item = truth[os.path.basename(r["path"])]
    s = samples[(r["key"], r["sample"])]
    px, py = 8 * int(s["x"]) + 4, 8 * int(s["y"]) + 4  # relu4: stride 8
    bx, by, bw, bh = item["box"]
    if (cc, rr) in label_of_cell and bx <= px < bx + bw and by <= py < by + bh:
        total += 1
        hits += label_of_cell[(cc, rr)] == item["label"]
print(f"on-garment samples in cells labelled with their true class: {hits}/{total}")
assert total >= 20 and hits / total > float(sys.argv[3]), (hits, total)
summary = json.load(open(os.path.join(out, "atlas.json")))
assert summary["tsne"]["metric"] == "cosine" and summary["samples"] == 320
PY
grep -q 'atlas_6.png' "$tmp/a/index.html" || fail "index.html does not show the atlas"

# --- the same atlas from two shards collected separately, rendered from the parts
for i in 0 1; do
  "$cnnvis" -q --threads 2 atlas "${model[@]}" "${small[@]}" "$tmp/in" --shard $i/2 --collect-only -o "$tmp/s$i" \
    > /dev/null 2>&1
  code=$?
  [[ -s $tmp/s$i/atlas_collection.json ]] || fail "shard $i: no collection"
  [[ ! -e $tmp/s$i/atlas_6.png ]] || fail "shard $i: --collect-only drew an atlas"
  [[ $code == 0 || $code == 1 ]] || fail "shard $i: exit code $code"
done
"$cnnvis" -q --threads 2 atlas "${model[@]}" "${small[@]}" --from "$tmp/s1" --from "$tmp/s0" -o "$tmp/m" > /dev/null \
  || fail "render from shards"
cmp -s "$tmp/a/atlas_6.json" "$tmp/m/atlas_6.json" || fail "sharded atlas cells differ from the one-shot run"
cmp -s "$tmp/a/atlas_layout.npy" "$tmp/m/atlas_layout.npy" || fail "sharded layout differs"
cmp -s "$tmp/a/atlas_6.png" "$tmp/m/atlas_6.png" || fail "sharded atlas picture differs"

# --- class atlas (by name) and a precomputed layout, no icons
"$cnnvis" -q atlas "${model[@]}" --from "$tmp/a" --class Trouser --class-top 20 --min-count 1 --perplexity 5 \
  --iterations 300 --no-icons -o "$tmp/c" > /dev/null || fail "class atlas"
[[ $(json "$tmp/c/atlas_8.json" "d['class']['label']") == "Trouser" ]] || fail "class atlas: default 8x8 grid, class named"
[[ ! -e $tmp/c/atlas_8.png ]] || fail "--no-icons drew icons"
/usr/bin/python3 -c "
import numpy as np, sys
np.save(sys.argv[1], np.stack([np.arange(320) % 4, np.arange(320) // 80], 1).astype(np.float32))" "$tmp/layout.npy"
"$cnnvis" -q atlas --from "$tmp/a" --layout "$tmp/layout.npy" --grid 4 --min-count 1 --no-icons -o "$tmp/l" > /dev/null \
  || fail "given layout"
[[ $(json "$tmp/l/atlas_4.json" "len(d['cells'])") == 16 ]] || fail "given 4x4 layout: 16 cells"
[[ $(json "$tmp/l/atlas_4.json" "sorted(set(c['count'] for c in d['cells']))") == "[20]" ]] || fail "given layout: 20 per cell"

# --- bad input: one line, exit code, no crash
"$cnnvis" atlas --from "$tmp/nowhere" -o "$tmp/x" > /dev/null 2> "$tmp/e1"
expect_code 1 $? "missing collection"
[[ $(grep -c '^error:' "$tmp/e1") == 1 ]] && grep -q "nowhere/atlas_collection.json: missing" "$tmp/e1" \
  || fail "missing collection message: $(cat "$tmp/e1")"
"$cnnvis" atlas "${model[@]}" --layer relu3_2 --collect-only --samples-per-image 1 "$tmp/in/canvas_00000.png" -o "$tmp/r4" \
  > /dev/null 2>&1 || fail "collect relu3_2"
"$cnnvis" atlas --from "$tmp/a" --from "$tmp/r4" --no-icons -o "$tmp/x" > /dev/null 2> "$tmp/e2"
expect_code 2 $? "merging collections of different layers"
grep -q "cannot be merged: layer" "$tmp/e2" || fail "merge mismatch message: $(cat "$tmp/e2")"
"$cnnvis" atlas "${model[@]}" "$tmp/in" --from "$tmp/a" -o "$tmp/x" > /dev/null 2> "$tmp/e3"
expect_code 2 $? "inputs and --from together"
"$cnnvis" atlas "${model[@]}" "$tmp/in" --shard 0/2 -o "$tmp/x" > /dev/null 2> "$tmp/e4"
expect_code 2 $? "--shard without --collect-only"
"$cnnvis" atlas --from "$tmp/a" --class Spaceship --no-icons -o "$tmp/x" > /dev/null 2> "$tmp/e5"
expect_code 2 $? "unknown class"
grep -q "unknown class 'Spaceship'" "$tmp/e5" || fail "unknown class message: $(cat "$tmp/e5")"
"$cnnvis" atlas "${model[@]}" "$tmp/in" --attribution most -o "$tmp/x" > /dev/null 2> "$tmp/e6"
expect_code 2 $? "unknown attribution"
"$cnnvis" atlas "${model[@]}" "$tmp/in/broken.png" -o "$tmp/x" > /dev/null 2> "$tmp/e8"
expect_code 1 $? "only broken inputs"
grep -q "broken.png" "$tmp/e8" && grep -q "needs at least 4" "$tmp/e8" || fail "only broken inputs message: $(cat "$tmp/e8")"
printf '\x93NUMPY garbage' > "$tmp/bad.npy"
"$cnnvis" atlas --from "$tmp/a" --layout "$tmp/bad.npy" --no-icons -o "$tmp/x" > /dev/null 2> "$tmp/e7"
expect_code 1 $? "corrupt layout"
grep -q "bad.npy" "$tmp/e7" || fail "corrupt layout message: $(cat "$tmp/e7")"

[[ $failures == 0 ]] && echo "atlas e2e: all checks passed"
exit $((failures > 0))
