#!/usr/bin/env bash
# The bad-input matrix: every command against missing, empty, truncated, non-image and oversized inputs,
# odd but valid images, broken weight files, broken data sets, unknown names and unwritable or full
# output directories. Each bad case must end with a non-zero exit code below 128 (no crash signal) and
# exactly one "error:" line naming the input and the problem; batch runs must still finish the good
# inputs and record the failures in manifest.json.
# Args: <cnnvis binary> <source dir> <build dir>
set -uo pipefail
cnnvis=$1 src=$2
data=/usr/share/datasets/fashion-mnist
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ -f $data/t10k-images-idx3-ubyte.gz ]] || { echo "missing $data (Debian package dataset-fashion-mnist)"; exit 1; }
make_inputs=(/usr/bin/python3 "$src/tests/cli/make_bad_inputs.py")
cases=0

# bad NAME EXPECTED_CODE PATTERN COMMAND...: one failing run. EXPECTED_CODE is 1, 2 or "any" (non-zero);
# PATTERN is an extended regex the single error line must match (the input's name and the problem).
bad() {
  local name=$1 want=$2 pattern=$3
  shift 3
  cases=$((cases + 1))
  "$@" > "$tmp/stdout.txt" 2> "$tmp/stderr.txt"
  local code=$?
  if ((code >= 128)); then
    fail "$name: killed by signal $((code - 128)): $(tail -3 "$tmp/stderr.txt")"
    return
  fi
  if [[ $want == any ]]; then ((code != 0)) || fail "$name: exit code 0"; else expect_code "$want" "$code" "$name"; fi
  local errors
  errors=$(grep -c '^error: ' "$tmp/stderr.txt")
  [[ $errors == 1 ]] || { fail "$name: $errors error lines, expected 1: $(head -c 600 "$tmp/stderr.txt")"; return; }
  grep '^error: ' "$tmp/stderr.txt" | grep -Eq -- "$pattern" \
    || fail "$name: error line does not match /$pattern/: $(grep '^error: ' "$tmp/stderr.txt")"
}

# --- a small demo model, trained here (exercises `train`; its card is written next to the weights)
"$cnnvis" -q train --train-limit 300 --test-limit 50 --epochs 1 --out "$tmp/m/fashion_vgg.safetensors" > /dev/null \
  || { fail "training the small model"; exit 1; }
weights=$tmp/m/fashion_vgg.safetensors
card=$tmp/m/fashion_vgg.json
model=(--model fashion_vgg --weights "$weights")

"${make_inputs[@]}" images "$tmp/img" || { fail "making the images"; exit 1; }
"${make_inputs[@]}" weights "$weights" "$tmp/w" || { fail "making the weight files"; exit 1; }
"${make_inputs[@]}" idx "$tmp/idx" || { fail "making the data sets"; exit 1; }
good=("$tmp"/img/good/*)
: > "$tmp/regular_file"             # an output path below a regular file can never be created, even by root
blocked=$tmp/regular_file/out

# --- images: each bad one alone, with every image command
declare -A image_problem=(
  [missing.png]="missing\.png: no such file"
  [empty.png]="empty\.png: empty file"
  [text.png]="text\.png: not an image"
  [truncated.png]="truncated\.png: cannot decode png"
  [truncated.jpg]="truncated\.jpg: cannot decode jpeg"
  [garbage_after_header.png]="garbage_after_header\.png: cannot decode png"
  [bomb.png]="bomb\.png: image is 16000x12000 = 192000000 pixels, over the limit"
  [zero_size.png]="zero_size\.png: cannot decode png"
)
image_commands=(predict gradcam backprop saliency)
for command in "${image_commands[@]}"; do
  for name in "${!image_problem[@]}"; do
    bad "$command $name" 1 "${image_problem[$name]}" "$cnnvis" "$command" "${model[@]}" "$tmp/img/bad/$name" -o "$tmp/out_$command"
  done
done
bad "predict /dev/zero" 1 "/dev/zero: not a regular file" "$cnnvis" predict "${model[@]}" /dev/zero
# The pixel limit is configurable: a small image is refused under a smaller limit.
bad "gradcam --max-pixels" 1 "good_rgb\.png: image is 96x80 = 7680 pixels, over the limit of 1000" \
  "$cnnvis" gradcam "${model[@]}" --max-pixels 1000 "$tmp/img/good/good_rgb.png" -o "$tmp/out_limit"

# --- batch mode: the odd-but-valid images all work, the bad ones are named, the manifest records them
for command in "${image_commands[@]}"; do
  out=$tmp/batch_$command
  cases=$((cases + 1))
  "$cnnvis" "$command" "${model[@]}" -b 3 "${good[@]}" "$tmp"/img/bad/* "$tmp/img/bad/missing.png" -o "$out" \
    > "$tmp/stdout.txt" 2> "$tmp/stderr.txt"
  code=$?
  expect_code 1 "$code" "$command batch with bad inputs"
  for name in "${!image_problem[@]}"; do
    [[ $(grep '^error: ' "$tmp/stderr.txt" | grep -c "/$name: ") == 1 ]] || fail "$command batch: not one error line for $name"
  done
  [[ $(grep -c '^error: ' "$tmp/stderr.txt") == "${#image_problem[@]}" ]] \
    || fail "$command batch: expected ${#image_problem[@]} error lines: $(grep '^error: ' "$tmp/stderr.txt")"
  m=$out/manifest.json
  [[ -f $m ]] || { fail "$command batch: no manifest"; continue; }
  [[ $(json "$m" "d['summary']['ok']") == "${#good[@]}" ]] || fail "$command batch: expected ${#good[@]} ok in the manifest"
  [[ $(json "$m" "d['summary']['error']") == "${#image_problem[@]}" ]] || fail "$command batch: manifest error count"
  [[ $(json "$m" "all(e['error'] and e['input'].split('/')[-1] in e['error'] for e in d['inputs'] if e['status']=='error')") == True ]] \
    || fail "$command batch: manifest errors do not name their inputs"
  if [[ $command != predict ]]; then
    [[ $(json "$m" "all(len(e['outputs'])>0 for e in d['inputs'] if e['status']=='ok')") == True ]] \
      || fail "$command batch: good inputs without outputs"
    missing_files=$(json "$m" "[f for e in d['inputs'] for f in e['outputs'].values() if not __import__('os').path.isfile('$out/'+f)]")
    [[ $missing_files == "[]" ]] || fail "$command batch: outputs listed but not written: $missing_files"
  fi
done

# --- weight files
declare -A weights_problem=(
  [renamed]="renamed\.safetensors: .*(missing|unexpected)"
  [missing]="missing\.safetensors: .*missing"
  [wrong_shape]="wrong_shape\.safetensors: .*(shape|mismatch)"
  [wrong_dtype_f64]="wrong_dtype_f64\.safetensors: .*dtype F64"
  [wrong_dtype_i64]="wrong_dtype_i64\.safetensors: .*file dtype I64 vs model float"
  [nan]="nan\.safetensors: NaN or infinite values"
  [inf]="inf\.safetensors: NaN or infinite values"
  [truncated]="truncated\.safetensors: .*(truncated|outside)"
  [empty]="empty\.safetensors: file is empty"
  [header_too_long]="header_too_long\.safetensors: header length"
  [not_json]="not_json\.safetensors: header is not valid JSON"
  [offsets_past_end]="offsets_past_end\.safetensors: .*outside the data section"
  [nonexistent]="nonexistent\.safetensors: weights file not found"
)
for name in "${!weights_problem[@]}"; do
  bad "predict weights $name" 1 "${weights_problem[$name]}" \
    "$cnnvis" predict --model fashion_vgg --card "$card" --weights "$tmp/w/$name.safetensors" "${good[0]}"
done
for name in nan wrong_shape truncated; do
  bad "gradcam weights $name" 1 "${weights_problem[$name]}" \
    "$cnnvis" gradcam --model fashion_vgg --card "$card" --weights "$tmp/w/$name.safetensors" "${good[0]}" -o "$tmp/out_w"
  bad "layers --with-weights $name" 1 "${weights_problem[$name]}" \
    "$cnnvis" layers --model fashion_vgg --card "$card" --weights "$tmp/w/$name.safetensors" --with-weights
  bad "demo weights $name" 1 "${weights_problem[$name]}" \
    "$cnnvis" demo --card "$card" --weights "$tmp/w/$name.safetensors" -o "$tmp/out_demo_w" --per-class 1
done

# --- model cards
echo '{"name": "fashion_vgg", "architecture": "fashion_vgg", "input_size": [64]}' > "$tmp/broken_card.json"
printf '{"name": "fashion_vgg",' > "$tmp/truncated_card.json"
bad "card wrong field" 1 "broken_card\.json: field 'input_size'" \
  "$cnnvis" predict --model fashion_vgg --weights "$weights" --card "$tmp/broken_card.json" "${good[0]}"
bad "card not JSON" 1 "truncated_card\.json: not valid JSON" \
  "$cnnvis" predict --model fashion_vgg --weights "$weights" --card "$tmp/truncated_card.json" "${good[0]}"
bad "card missing" any "no_card\.json" \
  "$cnnvis" predict --model fashion_vgg --weights "$weights" --card "$tmp/no_card.json" "${good[0]}"

# --- unknown models, layers, targets, methods, modes
bad "predict unknown model" 2 "nosuchnet" "$cnnvis" predict --model nosuchnet "${good[0]}"
bad "layers unknown model" 2 "nosuchnet" "$cnnvis" layers --model nosuchnet
bad "gradcam unknown layer" 2 "no_such_layer" "$cnnvis" gradcam "${model[@]}" --layer no_such_layer "${good[0]}" -o "$tmp/o"
bad "gradcam unknown method" 2 "nomethod" "$cnnvis" gradcam "${model[@]}" --method nomethod "${good[0]}" -o "$tmp/o"
bad "gradcam target index" 2 "12345" "$cnnvis" gradcam "${model[@]}" --target 12345 "${good[0]}" -o "$tmp/o"
bad "gradcam target name" 2 "Spaceship" "$cnnvis" gradcam "${model[@]}" --target Spaceship "${good[0]}" -o "$tmp/o"
bad "backprop target" 2 "Spaceship" "$cnnvis" backprop "${model[@]}" --target Spaceship "${good[0]}" -o "$tmp/o"
bad "backprop unknown mode" 2 "nomode" "$cnnvis" backprop "${model[@]}" --mode nomode "${good[0]}" -o "$tmp/o"
bad "saliency target" 2 "(-3|target)" "$cnnvis" saliency "${model[@]}" --target=-3 "${good[0]}" -o "$tmp/o"
bad "gradcam bad --fit" 2 "fit" "$cnnvis" gradcam "${model[@]}" --fit sideways "${good[0]}" -o "$tmp/o"
bad "predict batch size 0" 2 "batch-size" "$cnnvis" predict "${model[@]}" -b 0 "${good[0]}"
bad "predict no inputs" 2 "inputs" "$cnnvis" predict "${model[@]}"
bad "unknown option" 2 "--frobnicate" "$cnnvis" gradcam "${model[@]}" --frobnicate "${good[0]}"
bad "unknown command" 2 "frobnicate" "$cnnvis" frobnicate
mkdir -p "$tmp/empty_dir"
bad "predict no images found" 2 "no input images" "$cnnvis" predict "${model[@]}" "$tmp/empty_dir"

# --- data sets (canvases, train, demo read Fashion-MNIST IDX files)
declare -A idx_problem=(
  [empty_images]="images-idx3-ubyte\.gz: empty file"
  [truncated_gzip]="images-idx3-ubyte\.gz: truncated gzip"
  [bad_magic]="images-idx3-ubyte\.gz: bad IDX magic"
  [count_mismatch]="(count|labels)"
  [wrong_size]="images-idx3-ubyte\.gz: expected images of shape Nx28x28"
  [label_out_of_range]="labels-idx1-ubyte\.gz: .*label"
)
for name in "${!idx_problem[@]}"; do
  bad "canvases $name" 1 "${idx_problem[$name]}" "$cnnvis" canvases --data-dir "$tmp/idx/$name" -n 2 -o "$tmp/out_canvases"
done
for name in truncated_gzip wrong_size; do
  bad "train $name" 1 "${idx_problem[$name]}" "$cnnvis" train --data-dir "$tmp/idx/$name" --train-limit 10 --test-limit 10 \
    --out "$tmp/out_train/w.safetensors"
  bad "demo $name" 1 "${idx_problem[$name]}" "$cnnvis" demo "${model[@]}" --data-dir "$tmp/idx/$name" -o "$tmp/out_demo"
done
bad "canvases missing data" 1 "no_data: Fashion-MNIST directory not found" \
  "$cnnvis" canvases --data-dir "$tmp/no_data" -n 2 -o "$tmp/out_canvases"

# --- output directories that cannot be created (root ignores permissions, not file types)
for command in gradcam backprop saliency predict; do
  bad "$command unwritable out" 1 "regular_file/out: cannot create output directory" \
    "$cnnvis" "$command" "${model[@]}" "${good[0]}" -o "$blocked"
done
bad "canvases unwritable out" 1 "regular_file/out" "$cnnvis" canvases -n 2 -o "$blocked"
bad "demo unwritable out" 1 "regular_file/out" "$cnnvis" demo "${model[@]}" --per-class 1 -o "$blocked"
bad "train unwritable out" 1 "regular_file/out" "$cnnvis" train --train-limit 20 --test-limit 10 --epochs 1 \
  --out "$blocked/w.safetensors"

# --- a full output directory. A file-size limit (ulimit -f, with SIGXFSZ ignored so that writes fail
# with EFBIG instead of killing the process) works for any user; a tiny tmpfs gives a real ENOSPC where
# mounting is allowed.
for command in gradcam backprop; do
  bad "$command file-size limit" 1 "out_fsize/.*cannot write \(File too large\)" \
    bash -c 'trap "" XFSZ; ulimit -f 8; exec "$@"' _ "$cnnvis" "$command" "${model[@]}" "${good[@]}" -o "$tmp/out_fsize"
done
mkdir -p "$tmp/small_fs"
if mount -t tmpfs -o size=48k tmpfs "$tmp/small_fs" 2> /dev/null; then
  bad "gradcam disk full" 1 "small_fs/.*cannot write \(No space left on device\)" \
    "$cnnvis" gradcam "${model[@]}" "${good[@]}" -o "$tmp/small_fs/out"
  umount "$tmp/small_fs"
else
  echo "note: mounting a tmpfs is not permitted here; the disk-full case is covered by the file-size limit only"
fi

# --- out of memory on the device: the batch is retried in halves and the run says so (injected failure)
CNNVIS_TEST_OOM_ABOVE=2 "$cnnvis" gradcam "${model[@]}" -b 8 "${good[@]}" -o "$tmp/out_oom" 2> "$tmp/oom.txt"
expect_code 0 $? "gradcam with injected out-of-memory"
grep -q "out of memory on a batch of 8 image(s); retrying in batches of 4" "$tmp/oom.txt" || fail "oom: no retry message: $(cat "$tmp/oom.txt")"
grep -q "retrying in batches of 2" "$tmp/oom.txt" || fail "oom: no second halving"
[[ $(json "$tmp/out_oom/manifest.json" "d['summary']['ok']") == "${#good[@]}" ]] || fail "oom: not every image done"
[[ $(json "$tmp/out_oom/manifest.json" "sorted(len(e['outputs']) for e in d['inputs'])==sorted(len(e['outputs']) for e in __import__('json').load(open('$tmp/batch_gradcam/manifest.json'))['inputs'] if e['status']=='ok')") == True ]] \
  || fail "oom: outputs differ from the run without retries"
cases=$((cases + 1))

# --- a long folder streams: at most two batches of decoded images are held, so peak memory does not
# grow with the number of inputs. (Not under ASan, whose quarantine keeps freed memory on purpose.)
if [[ -z ${CNNVIS_UNDER_ASAN:-} ]]; then
  /usr/bin/python3 -c "from PIL import Image; import numpy as np; x=np.linspace(0,255,3000,dtype=np.float32); \
Image.fromarray(np.dstack([np.add.outer(x,x)/2]*3).astype(np.uint8)).save('$tmp/big.jpg', quality=80)"
  mkdir -p "$tmp/long"
  for i in $(seq 1 40); do cp "$tmp/big.jpg" "$tmp/long/big_$i.jpg"; done
  peak_mb() {  # peak resident set of the command, in MiB
    /usr/bin/python3 -c "import resource,subprocess,sys; subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL,check=True); \
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss//1024)" "$@"
  }
  short_run=$(peak_mb "$cnnvis" -q predict "${model[@]}" -b 2 "$tmp"/long/big_{1..4}.jpg -o "$tmp/out_short")
  long_run=$(peak_mb "$cnnvis" -q predict "${model[@]}" -b 2 "$tmp/long" -o "$tmp/out_long")
  echo "streaming: peak RSS $short_run MiB for 4 images of 3000x3000, $long_run MiB for 40 (batch size 2)"
  # One decoded image is 27 MB; holding all 40 would add ~1 GB.
  [[ -n $short_run && -n $long_run ]] && ((long_run - short_run < 150)) \
    || fail "streaming: peak memory grew from $short_run to $long_run MiB with the number of inputs"
  cases=$((cases + 1))
else
  echo "note: the streaming-memory check is skipped under ASan (its quarantine holds freed memory)"
fi

echo "bad-input matrix: $cases cases, $failures failures"
exit $((failures > 0))
