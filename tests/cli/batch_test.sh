#!/usr/bin/env bash
# End-to-end: batch runs that scale. Resume (skip complete inputs, recompute when settings, inputs or
# outputs change), --shard I/N (complete, disjoint, independent of input order), merge-manifests (the
# merged shards compare equal to one full run), hostile input names (outputs stay inside --out) and
# progress on stderr (log lines; a bar with rate and ETA on a terminal).
# Uses GoogLeNet with the seeded random weights the parity fixture exports (cheap on CPU).
# Args: <cnnvis binary> <source dir> <build dir>
set -uo pipefail
cnnvis=$1 src=$2 build=$3
weights=$build/parity/googlenet.safetensors
photos=/usr/share/darknet/data
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ -f $weights ]] || { echo "missing $weights (the parity_export fixture makes it)"; exit 1; }
[[ -f $photos/dog.jpg ]] || { echo "missing $photos (Debian package darknet)"; exit 1; }
model=(--model googlenet --weights "$weights" --threads 2)
mkdir -p "$tmp/in"
for p in dog eagle giraffe horses kite; do cp "$photos/$p.jpg" "$tmp/in/"; done
echo "not an image" > "$tmp/in/broken.jpg"
mtime() { stat -c %Y.%y "$1"; }
keys() { json "$1" "' '.join(sorted(e['key'] for e in d['inputs']))"; }

# --- resume -------------------------------------------------------------------------------------------
"$cnnvis" gradcam "${model[@]}" "$tmp/in" -o "$tmp/r" -b 2 2> "$tmp/r1.err"
expect_code 1 $? "first run (broken.jpg fails)"
grep -q "6/6 images" "$tmp/r1.err" || fail "progress log line with the count: $(cat "$tmp/r1.err")"
grep -q "ETA" "$tmp/r1.err" || fail "progress log line with an ETA"
[[ $(json "$tmp/r/manifest.json" "len(d['inputs'])") == 6 ]] || fail "first run: 6 entries"
[[ $(json "$tmp/r/manifest.json" "len(d['fingerprint']['sha256'])") == 64 ]] || fail "manifest: settings fingerprint"
before=$(mtime "$tmp/r/dog.gradcam.npy")
sleep 1.1
"$cnnvis" gradcam "${model[@]}" "$tmp/in" -o "$tmp/r" -b 3 2> "$tmp/r2.err"
expect_code 1 $? "second run"
grep -q "resuming: 5 of 6 inputs already done" "$tmp/r2.err" || fail "resume: $(cat "$tmp/r2.err")"
[[ $(mtime "$tmp/r/dog.gradcam.npy") == "$before" ]] || fail "resume rewrote dog.gradcam.npy"
[[ $(json "$tmp/r/manifest.json" "[e['input'].split('/')[-1] for e in d['inputs']]") == \
   "['broken.jpg', 'dog.jpg', 'eagle.jpg', 'giraffe.jpg', 'horses.jpg', 'kite.jpg']" ]] || fail "resume: entries not in input order"
[[ $(json "$tmp/r/manifest.json" "d['summary'] == {'inputs': 6, 'ok': 5, 'error': 1}") == True ]] || fail "resume: summary"
# a deleted output and a changed input are recomputed, nothing else
rm "$tmp/r/eagle.gradcam.overlay.png"
touch -d '2001-01-01' "$tmp/in/kite.jpg"
"$cnnvis" gradcam "${model[@]}" "$tmp/in" -o "$tmp/r" 2> "$tmp/r3.err"
grep -q "resuming: 3 of 6 inputs already done" "$tmp/r3.err" || fail "resume after deleting an output: $(cat "$tmp/r3.err")"
[[ -s $tmp/r/eagle.gradcam.overlay.png ]] || fail "deleted output not rewritten"
[[ $(mtime "$tmp/r/dog.gradcam.npy") == "$before" ]] || fail "third run rewrote dog"
# other settings: everything is recomputed
"$cnnvis" gradcam "${model[@]}" "$tmp/in" -o "$tmp/r" --colormap viridis 2> "$tmp/r4.err"
grep -q "other settings; computing every input" "$tmp/r4.err" || fail "changed option still resumed: $(cat "$tmp/r4.err")"
[[ $(mtime "$tmp/r/dog.gradcam.npy") != "$before" ]] || fail "changed option: dog not recomputed"
"$cnnvis" gradcam "${model[@]}" "$tmp/in" -o "$tmp/r" --colormap viridis --no-resume 2> "$tmp/r5.err"
grep -q "6/6 images" "$tmp/r5.err" || fail "--no-resume: no progress: $(cat "$tmp/r5.err")"
grep -q "resuming" "$tmp/r5.err" && fail "--no-resume resumed"

# --- shards and merge ---------------------------------------------------------------------------------
rm "$tmp/in/broken.jpg"
names=(dog eagle giraffe horses kite)
sorted_args=() reversed_args=()
for n in "${names[@]}"; do sorted_args+=("in/$n.jpg"); reversed_args=("in/$n.jpg" "${reversed_args[@]}"); done
cd "$tmp"
"$cnnvis" -q gradcam "${model[@]}" "${sorted_args[@]}" -o "$tmp/full"; expect_code 0 $? "full run"
"$cnnvis" -q gradcam "${model[@]}" "${sorted_args[@]}" -o "$tmp/s0" --shard 0/2; expect_code 0 $? "shard 0/2"
# shard 1 gets the inputs in reverse order: the split must not change
"$cnnvis" -q gradcam "${model[@]}" "${reversed_args[@]}" -o "$tmp/s1" --shard 1/2; expect_code 0 $? "shard 1/2"
"$cnnvis" -q gradcam "${model[@]}" "${reversed_args[@]}" -o "$tmp/s0r" --shard 0/2 --no-html; expect_code 0 $? "shard 0/2 reversed"
[[ $(keys "$tmp/s0/manifest.json") == "$(keys "$tmp/s0r/manifest.json")" ]] || fail "shard 0/2 depends on input order"
k0=$(json "$tmp/s0/manifest.json" "' '.join(sorted(e['input'].split('/')[-1] for e in d['inputs']))")
k1=$(json "$tmp/s1/manifest.json" "' '.join(sorted(e['input'].split('/')[-1] for e in d['inputs']))")
all=$(echo "$k0 $k1" | tr ' ' '\n' | grep -v '^$' | sort | tr '\n' ' ')
[[ $all == "dog.jpg eagle.jpg giraffe.jpg horses.jpg kite.jpg " ]] || fail "shards do not partition the inputs: [$k0] [$k1]"
[[ -n $k0 && -n $k1 ]] || fail "a shard is empty (hash split of 5 inputs): [$k0] [$k1]"
[[ $(json "$tmp/s0/manifest.json" "d['shard'] == {'index': 0, 'count': 2, 'inputs_in_all_shards': 5}") == True ]] || fail "shard recorded"
"$cnnvis" -q gradcam "${model[@]}" "$tmp/in" -o "$tmp/bad" --shard 2/2 2> "$tmp/shard.err"
expect_code 2 $? "--shard 2/2"
grep -q "I must be below N" "$tmp/shard.err" || fail "--shard message: $(cat "$tmp/shard.err")"
# merged shards are the full run: same inputs, same outputs (compare pairs them through the manifests)
"$cnnvis" merge-manifests "$tmp/s0" "$tmp/s1" -o "$tmp/merged" > "$tmp/merge.txt"; expect_code 0 $? "merge-manifests"
grep -q "merged 2 parts: 5 inputs" "$tmp/merge.txt" || fail "merge summary: $(cat "$tmp/merge.txt")"
[[ -s $tmp/merged/index.html ]] || fail "merged index.html"
"$cnnvis" compare "$tmp/full" "$tmp/merged" --tol-max 0 --tol-mean 0 --min-corr 1 --tol-image-max 0 > "$tmp/cmp.txt"
expect_code 0 $? "merged shards compare equal to the full run ($(cat "$tmp/cmp.txt"))"
"$cnnvis" merge-manifests "$tmp/s0" -o "$tmp/half" > /dev/null 2> "$tmp/half.err"
expect_code 1 $? "merging an incomplete set of shards"
grep -q "no part covers shard(s) 1" "$tmp/half.err" || fail "missing shard not named: $(cat "$tmp/half.err")"
"$cnnvis" merge-manifests "$tmp/s0" "$tmp/nothing" -o "$tmp/m2" 2> "$tmp/m2.err"
[[ $? != 0 ]] || fail "merge with a missing part succeeded"
grep -q "nothing/manifest.json" "$tmp/m2.err" || fail "missing part not named"
"$cnnvis" merge-manifests "$tmp/s0" "$tmp/s1" -o "$tmp/copied" --copy > /dev/null; expect_code 0 $? "merge --copy"
[[ $(json "$tmp/copied/manifest.json" "all('/' not in f for e in d['inputs'] for f in e['outputs'].values())") == True ]] \
  || fail "merge --copy: outputs not inside"

# --- hostile names ------------------------------------------------------------------------------------
h=$tmp/hostile
mkdir -p "$h/a" "$h/b" "$h/deep/er" "$h/out"
cp "$photos/dog.jpg" "$h/a/x.jpg"
cp "$photos/eagle.jpg" "$h/b/x.jpg"           # same stem, different folders
cp "$photos/kite.jpg" "$h/b/X.JPG"            # same stem up to case
cp "$photos/horses.jpg" "$h/日本 語 (1).jpg"  # unicode, spaces, brackets
cp "$photos/giraffe.jpg" "$h/..jpg"           # a name that is almost ".."
cp "$photos/dog.jpg" "$h/manifest.jpg"        # must not clobber manifest.json
touch "$h/marker"
sleep 1.1
(cd "$h/deep/er" && "$cnnvis" -q gradcam "${model[@]}" ../../a/x.jpg "$h/b/x.jpg" "$h/b/X.JPG" "../../日本 語 (1).jpg" \
  "$h/..jpg" "$h/manifest.jpg" "../../a/../b/x.jpg" -o "$h/out")
expect_code 0 $? "hostile names"
[[ $(json "$h/out/manifest.json" "len(d['inputs'])") == 6 ]] || fail "hostile: duplicate path ../../a/../b/x.jpg not merged"
escaped=$(find "$h" -newer "$h/marker" ! -path "$h/out/*" ! -path "$h/out" | head -3)
[[ -z $escaped ]] || fail "files written outside --out: $escaped"
[[ $(find "$h/out" -mindepth 2 | wc -l) == 0 ]] || fail "outputs in subdirectories of --out"
/usr/bin/python3 - "$h/out" <<'PY' || fail "hostile names: outputs not distinct, inside, or listed"
import json, os, sys
root = sys.argv[1]
m = json.load(open(os.path.join(root, "manifest.json")))
stems = [e["stem"] for e in m["inputs"]]
assert len(set(s.lower() for s in stems)) == len(stems), stems
files = [f for e in m["inputs"] for f in e["outputs"].values()]
assert len(files) == len(set(files)), "two inputs share an output file"
for f in files:
    assert "/" not in f and not f.startswith(".."), f
    assert os.path.getsize(os.path.join(root, f)) > 0, f
assert m["command"] == "gradcam" and len(m["inputs"]) == 6
PY

# --- progress on a terminal -----------------------------------------------------------------------------
if script -qec "true" /dev/null > /dev/null 2>&1; then
  script -qec "'$cnnvis' gradcam ${model[*]} '$tmp/in' -o '$tmp/tty' --no-html" /dev/null > "$tmp/tty.txt" 2>&1
  grep -q $'\r\[#' "$tmp/tty.txt" || fail "no progress bar on a terminal: $(head -c 400 "$tmp/tty.txt")"
  grep -q "5/5 images.*/s.*ETA" "$tmp/tty.txt" || fail "terminal bar without count/rate/ETA"
  "$cnnvis" -q gradcam "${model[@]}" "$tmp/in" -o "$tmp/quiet" 2> "$tmp/quiet.err"
  [[ ! -s $tmp/quiet.err ]] || fail "--quiet printed: $(cat "$tmp/quiet.err")"
else
  fail "util-linux 'script' cannot run here; the terminal progress bar is untested"
fi
echo "batch e2e: $failures failure(s)"
[[ $failures == 0 ]]
