#!/usr/bin/env bash
# End-to-end: `cnnvis compare` exit codes (0 same, 1 differ naming them, 2 unusable: missing manifest,
# shape mismatch), its report and diff images, --update; and the documented CI example
# (scripts/regress_example.sh) run for real: bootstrap, pass, a perturbed golden map fails.
# Uses GoogLeNet with the seeded random weights the parity fixture exports.
# Args: <cnnvis binary> <source dir> <build dir>
set -uo pipefail
cnnvis=$1 src=$2 build=$3
weights=$build/parity/googlenet.safetensors
photos=/usr/share/darknet/data
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ -f $weights ]] || { echo "missing $weights (the parity_export fixture makes it)"; exit 1; }
[[ -f $photos/dog.jpg ]] || { echo "missing $photos (Debian package darknet)"; exit 1; }
model=(--model googlenet --weights "$weights")
mkdir -p "$tmp/in"
cp "$photos/dog.jpg" "$photos/eagle.jpg" "$tmp/in/"

"$cnnvis" -q gradcam "${model[@]}" --top-k 2 "$tmp/in" -o "$tmp/golden"; expect_code 0 $? "golden run"
"$cnnvis" -q gradcam "${model[@]}" --top-k 2 "$tmp/in" -o "$tmp/same" -b 1; expect_code 0 $? "same run"
"$cnnvis" compare "$tmp/golden" "$tmp/same" > "$tmp/c0.txt"; expect_code 0 $? "compare identical runs"
grep -q "compare: 2 inputs" "$tmp/c0.txt" || fail "summary: $(cat "$tmp/c0.txt")"
grep -q "differ" "$tmp/c0.txt" && fail "identical runs reported as differing"
[[ $(json "$tmp/same/compare/report.json" "d['summary']['exit_code']") == 0 ]] || fail "report.json exit code"
[[ $(json "$tmp/same/compare/report.json" "all(i['identical'] for i in d['items'] if 'identical' in i)") == True ]] \
  || fail "CPU reruns are not byte-identical"

# A different target: maps differ -> exit 1, each differing output named; a new output -> "added".
"$cnnvis" -q gradcam "${model[@]}" "$tmp/in" -o "$tmp/top"
"$cnnvis" -q gradcam "${model[@]}" --target 7 "$tmp/in" -o "$tmp/t7"
"$cnnvis" compare "$tmp/top" "$tmp/t7" --report "$tmp/rep" > "$tmp/c1.txt"; expect_code 1 $? "compare another target"
grep -q "dog.jpg \[cam\]" "$tmp/c1.txt" || fail "differing map not named: $(cat "$tmp/c1.txt")"
grep -q "top class" "$tmp/c1.txt" && fail "predictions reported as changed when only the target changed"
"$cnnvis" -q gradcam "${model[@]}" --png16 "$tmp/in" -o "$tmp/p16"
"$cnnvis" compare "$tmp/top" "$tmp/p16" > "$tmp/c1b.txt"; expect_code 1 $? "compare with an added output"
grep -q "added .*\[map16\]" "$tmp/c1b.txt" || fail "added output not named: $(cat "$tmp/c1b.txt")"
[[ $(grep -c "differ " "$tmp/c1b.txt") == 0 ]] || fail "--png16 changed other outputs"
"$cnnvis" -q gradcam "${model[@]}" --top-k 2 --colormap viridis --alpha 0.9 "$tmp/in" -o "$tmp/look"
"$cnnvis" compare "$tmp/golden" "$tmp/look" --report "$tmp/rep2" > "$tmp/c2.txt"; expect_code 1 $? "compare other colormap"
grep -q "dog.jpg \[gradcam.c[0-9]*.overlay\]" "$tmp/c2.txt" || fail "differing overlay not named: $(cat "$tmp/c2.txt")"
grep -q "\.npy" "$tmp/c2.txt" && fail "maps reported as differing when only the colormap changed"
[[ $(ls "$tmp/rep2/diffs/"*.diff.png 2> /dev/null | wc -l) -ge 2 ]] || fail "no diff images"
grep -q "diffs/.*diff.png" "$tmp/rep2/report.html" || fail "report.html does not show the diff images"
# A perturbed map: beyond tolerance by default, within a loose one.
/usr/bin/python3 - "$tmp/golden" "$tmp/pert" <<'PY'
import json, os, shutil, sys
import numpy as np
src, dst = sys.argv[1], sys.argv[2]
shutil.copytree(src, dst)
m = json.load(open(os.path.join(dst, "manifest.json")))
f = os.path.join(dst, [v for k, v in m["inputs"][0]["outputs"].items() if k.endswith(".cam")][0])
a = np.load(f)
a[: a.shape[0] // 4] += 0.05 * a.max()
np.save(f, a)
PY
"$cnnvis" compare "$tmp/golden" "$tmp/pert" > "$tmp/c3.txt"; expect_code 1 $? "compare perturbed map"
grep -q "max diff 0.05" "$tmp/c3.txt" || fail "perturbation size not reported: $(cat "$tmp/c3.txt")"
"$cnnvis" compare "$tmp/golden" "$tmp/pert" --tol-max 0.06 --tol-mean 0.05 --min-corr 0.9 > /dev/null
expect_code 0 $? "compare perturbed map with loose tolerances"
# A different layer: the layer-resolution maps change shape -> unusable, exit 2, named as a shape mismatch.
"$cnnvis" -q gradcam "${model[@]}" --top-k 2 --layer inception4e "$tmp/in" -o "$tmp/layer"
"$cnnvis" compare "$tmp/golden" "$tmp/layer" > "$tmp/c4.txt"; expect_code 2 $? "compare other layer"
grep -q "shape mismatch" "$tmp/c4.txt" || fail "shape mismatch not named: $(cat "$tmp/c4.txt")"
# No manifest -> exit 2 with the file named.
mkdir -p "$tmp/empty"
"$cnnvis" compare "$tmp/golden" "$tmp/empty" 2> "$tmp/c5.err"; expect_code 2 $? "compare without a manifest"
grep -q "empty/manifest.json" "$tmp/c5.err" || fail "missing manifest not named: $(cat "$tmp/c5.err")"
"$cnnvis" compare "$tmp/golden" 2> /dev/null; expect_code 2 $? "compare without NEW (usage)"
# --update refreshes the golden directory; afterwards they compare equal.
"$cnnvis" compare "$tmp/golden" "$tmp/look" --update > /dev/null; expect_code 0 $? "compare --update"
"$cnnvis" compare "$tmp/golden" "$tmp/look" > /dev/null; expect_code 0 $? "compare after --update"
[[ -s $tmp/golden/index.html ]] || fail "--update: no index.html"

# The documented CI example, for real (small: two images, GoogLeNet).
export CNNVIS=$cnnvis MODEL="${model[*]}" IMAGES=$tmp/in GOLDEN=$tmp/ci-golden WORK=$tmp/ci-work
bash "$src/scripts/regress_example.sh" --update > "$tmp/ci0.txt" 2>&1; expect_code 0 $? "CI example --update ($(tail -3 "$tmp/ci0.txt"))"
for m in gradcam guided saliency; do [[ -s $tmp/ci-golden/$m/manifest.json ]] || fail "CI example: no golden $m"; done
bash "$src/scripts/regress_example.sh" > "$tmp/ci1.txt" 2>&1; expect_code 0 $? "CI example against its golden ($(cat "$tmp/ci1.txt"))"
/usr/bin/python3 - "$tmp/ci-golden/saliency" <<'PY'
import json, os, sys
import numpy as np
d = sys.argv[1]
m = json.load(open(os.path.join(d, "manifest.json")))
f = os.path.join(d, m["inputs"][1]["outputs"]["saliency"])
a = np.load(f)
a[10:60, 10:60] = 0
np.save(f, a)
PY
bash "$src/scripts/regress_example.sh" > "$tmp/ci2.txt" 2>&1; expect_code 1 $? "CI example with a changed golden map"
grep -q "eagle.jpg \[saliency\]" "$tmp/ci2.txt" || fail "CI example: changed map not named: $(cat "$tmp/ci2.txt")"
rm "$tmp/ci-golden/guided/manifest.json"
bash "$src/scripts/regress_example.sh" > "$tmp/ci3.txt" 2>&1; expect_code 2 $? "CI example with a broken golden run"
echo "regress e2e: $failures failure(s)"
[[ $failures == 0 ]]
