#!/usr/bin/env bash
# Runs a cnnvis batch command over a Slurm cluster: a job array of N shards, then a merge job that waits
# for all of them (afterok). Prints "ARRAY_JOB_ID MERGE_JOB_ID". Run it again with the same arguments after
# a failed or killed task: finished inputs are skipped (resume), only the missing ones are computed.
#
#   scripts/slurm/submit.sh -n 16 -o /scratch/run1 -- gradcam --model vgg16 /data/val
#   scripts/slurm/submit.sh -n 4 -o out --cnnvis build/cnnvis --sbatch "--partition=gpu --gres=gpu:1" -- occlusion ...
#
# Shard outputs go to OUT/shard-<i>, task logs to OUT/logs, the merged run to OUT/all.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
shards="" out="" cnnvis=${CNNVIS_BIN:-cnnvis} extra=""
while (($#)); do
  case $1 in
    -n) shards=$2; shift 2 ;;
    -o) out=$2; shift 2 ;;
    --cnnvis) cnnvis=$2; shift 2 ;;
    --sbatch) extra=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "submit.sh: unknown option $1 (usage: submit.sh -n N -o OUT [--cnnvis BIN] [--sbatch OPTS] -- ARGS)" >&2; exit 2 ;;
  esac
done
[[ $shards =~ ^[1-9][0-9]*$ && -n $out && $# -gt 0 ]] || {
  echo "usage: submit.sh -n N -o OUT [--cnnvis BIN] [--sbatch OPTS] -- CNNVIS_ARGS..." >&2; exit 2; }
mkdir -p "$out/logs"
out=$(cd "$out" && pwd)
[[ $cnnvis == */* ]] && cnnvis=$(cd "$(dirname "$cnnvis")" && pwd)/$(basename "$cnnvis")
# shellcheck disable=SC2086  # $extra holds several sbatch options on purpose
array=$(sbatch --parsable $extra --array="0-$((shards - 1))" --output="$out/logs/shard-%a.log" \
  --export="ALL,CNNVIS_OUT=$out,CNNVIS_BIN=$cnnvis" "$here/cnnvis-array.sbatch" "$@")
array=${array%%;*}
# shellcheck disable=SC2086
merge=$(sbatch --parsable $extra --dependency="afterok:$array" --kill-on-invalid-dep=yes --output="$out/logs/merge.log" \
  --export="ALL,CNNVIS_OUT=$out,CNNVIS_BIN=$cnnvis" "$here/cnnvis-merge.sbatch")
echo "${array} ${merge%%;*}"
