#!/usr/bin/env bash
# End-to-end: index.html next to the manifest, rendered in headless Chromium (Debian's chromium; as
# root it needs --no-sandbox). Checks: every file the page references exists; the page's script ran
# (the filter shows its count); the screenshot is not blank and shows the heatmaps; the zoom viewer
# opens a picture (index.html#view=0); nothing is fetched from the network (no http/https URL).
# Args: <cnnvis binary> <source dir> <build dir>
set -uo pipefail
cnnvis=$1 src=$2 build=$3
weights=$build/parity/googlenet.safetensors
photos=/usr/share/darknet/data
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ -f $weights ]] || { echo "missing $weights (the parity_export fixture makes it)"; exit 1; }
browser=$(command -v chromium || command -v chromium-browser || true)
[[ -n $browser ]] || { echo "missing chromium (Debian package chromium; scripts/setup.sh installs it)"; exit 1; }
/usr/bin/python3 -c "import PIL" 2> /dev/null || { echo "missing python3-pil"; exit 1; }
mkdir -p "$tmp/in"
cp "$photos/dog.jpg" "$photos/horses.jpg" "$tmp/in/"
cp "$photos/eagle.jpg" "$tmp/in/odd name #1 é.jpg"
echo "broken" > "$tmp/in/broken.jpg"
"$cnnvis" -q gradcam --model googlenet --weights "$weights" --methods gradcam,layercam --top-k 2 "$tmp/in" -o "$tmp/out"
expect_code 1 $? "gradcam with one broken input"
page=$tmp/out/index.html
[[ -s $page ]] || { fail "no index.html"; echo "html e2e: $failures failure(s)"; exit 1; }
grep -Eq "(src|href)=\"https?:" "$page" && fail "index.html loads something from the network"

/usr/bin/python3 - "$tmp/out" <<'PY' || fail "index.html content"
import html, json, os, re, sys, urllib.parse
root = sys.argv[1]
page = open(os.path.join(root, "index.html"), encoding="utf-8").read()
refs = [urllib.parse.unquote(html.unescape(r)) for r in re.findall(r'(?:src|href)="([^"#][^"]*)"', page)]
missing = [r for r in refs if not os.path.isfile(os.path.join(root, r))]
assert not missing, ("referenced but missing", missing)
m = json.load(open(os.path.join(root, "manifest.json")))
ok = [e for e in m["inputs"] if e["status"] == "ok"]
assert len(ok) == 3, len(ok)
for e in ok:
    # the input picture, every overlay (2 methods x 2 targets) and every raw map are on the page
    for name, f in e["outputs"].items():
        assert f in refs, ("output not on the page", name, f)
    assert e["outputs"]["input"].endswith(".input.jpg")
    for p in e["predictions"][:2]:
        assert html.escape(p["label"]) in page, p["label"]
assert "broken.jpg" in page and "error" in page
assert page.count('class="group"') == 3 * 4, page.count('class="group"')
PY

# Rendered by Chromium: the script runs (filter count), the screenshot shows pictures.
chrome=("$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --virtual-time-budget=8000)
timeout 120 "${chrome[@]}" --dump-dom "file://$page" > "$tmp/dom.html" 2> "$tmp/chrome.err"
grep -q '<span id="shown">4 shown</span>' "$tmp/dom.html" || fail "page script did not run: $(grep -o '<span id="shown">[^<]*' "$tmp/dom.html")"
timeout 120 "${chrome[@]}" --window-size=1280,1600 --screenshot="$tmp/page.png" "file://$page" > /dev/null 2>> "$tmp/chrome.err"
timeout 120 "${chrome[@]}" --window-size=1000,800 --screenshot="$tmp/viewer.png" "file://$page#view=1" > /dev/null 2>> "$tmp/chrome.err"
/usr/bin/python3 - "$tmp/page.png" "$tmp/viewer.png" <<'PY' || fail "screenshots: $(tail -3 "$tmp/chrome.err")"
import sys
from PIL import Image
import numpy as np
page = np.asarray(Image.open(sys.argv[1]).convert("RGB")).astype(int)
assert page.shape[0] >= 1000 and page.shape[1] == 1280, page.shape
assert page.std() > 20, "blank page"
colours = len(np.unique(page.reshape(-1, 3) // 8, axis=0))
assert colours > 500, ("too few colours for photos and heatmaps", colours)
# heatmap overlays: strongly saturated pixels (jet) somewhere on the page
sat = page.max(axis=2) - page.min(axis=2)
assert (sat > 150).mean() > 0.01, (sat > 150).mean()
viewer = np.asarray(Image.open(sys.argv[2]).convert("RGB")).astype(int)
dark = (viewer.max(axis=2) < 45).mean()
assert dark > 0.15, ("the viewer's dark backdrop does not cover the page", dark)
centre = viewer[200:600, 300:700]
assert centre.std() > 20, "no picture in the viewer"
print("page colours", colours, "saturated fraction", round(float((sat > 150).mean()), 3))
PY
echo "html e2e: $failures failure(s)"
[[ $failures == 0 ]]
