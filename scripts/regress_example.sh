#!/usr/bin/env bash
# Heatmap regression as a CI job runs it: compute Grad-CAM, guided backprop and saliency for a folder of
# images, then compare each run with its golden copy using `cnnvis compare`. See docs/ci-example.yml.
#
#   scripts/regress_example.sh            compare with the golden runs; exit 0 same, 1 differ, 2 unusable
#   scripts/regress_example.sh --update   (re)make the golden runs from this build
#
# Settings (environment):
#   CNNVIS   the binary                      (default: build/cnnvis)
#   MODEL    model arguments                 (default: --model vgg16; add --weights FILE for other weights)
#   IMAGES   folder of test images           (default: /usr/share/darknet/data, Debian package darknet)
#   GOLDEN   folder of the golden runs       (default: tests/golden/heatmaps; commit it)
#   WORK     folder for this run's results   (default: regress-out; keep it as the CI artifact)
#   TOLERANCES  extra arguments for compare  (default: none, i.e. cnnvis compare's defaults)
# Each method's results and compare report (WORK/<method>/compare/report.json + diff images) and the
# pages WORK/<method>/index.html are what a person opens when the job fails.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cnnvis=${CNNVIS:-$root/build/cnnvis}
read -r -a model <<< "${MODEL:---model vgg16}"
images=${IMAGES:-/usr/share/darknet/data}
golden=${GOLDEN:-$root/tests/golden/heatmaps}
work=${WORK:-regress-out}
read -r -a tolerances <<< "${TOLERANCES:-}"
update=0
[[ ${1:-} == --update ]] && update=1

# One line per method: name, then the cnnvis arguments. CPU runs are deterministic (byte-identical
# maps run after run and across batch sizes), so the same build reproduces the golden maps exactly;
# the tolerances absorb the last-bit differences another CPU or LibTorch build may give.
methods=(
  "gradcam gradcam --methods gradcam,gradcam++,layercam"
  "guided backprop --mode guided"
  "saliency saliency --smooth 8 --seed 1"
)

status=0
for line in "${methods[@]}"; do
  read -r -a args <<< "$line"
  name=${args[0]}
  rm -rf "${work:?}/$name"
  # --no-resume: a CI job must recompute, never trust results left in its work folder.
  "$cnnvis" -q "${args[@]:1}" "${model[@]}" "$images" -o "$work/$name" --no-resume --device cpu
  code=$?
  if [[ $code != 0 ]]; then
    echo "regress: $name: cnnvis exited with $code" >&2
    status=2
    continue
  fi
  if [[ $update == 1 ]]; then
    "$cnnvis" compare "$golden/$name" "$work/$name" --update || status=2
    continue
  fi
  "$cnnvis" compare "$golden/$name" "$work/$name" "${tolerances[@]}"
  code=$?
  echo "regress: $name: compare exit code $code"
  ((code > status)) && status=$code
done
exit $status
