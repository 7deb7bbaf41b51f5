#!/usr/bin/env bash
# A real single-node Slurm cluster, started and stopped by this test: munged, slurmctld and slurmd from
# Debian's slurm-wlm and munge with a generated slurm.conf (2 CPUs, private ports and state under a
# temporary folder). scripts/slurm/submit.sh runs a 4-task gradcam array over demo canvases; one task is
# killed midway, the merge job must not run, the resubmitted array recomputes only what is missing, and
# the merged manifest and every map equal an unsharded run's byte for byte.
# Exit 77 (skipped, with the reason) when the packages are not installed or the test is not root.
# Args: <cnnvis binary> <source dir> <build dir>
set -uo pipefail
cnnvis=$(readlink -f "$1") src=$2
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
skip() { echo "SKIP: $*"; exit 77; }
for tool in munged mungekey slurmctld slurmd sbatch squeue scancel sinfo; do
  command -v "$tool" > /dev/null || skip "$tool not found (install slurm-wlm and munge: bash scripts/setup.sh)"
done
[[ $(id -u) == 0 ]] || skip "starting slurmd needs root (it runs jobs as their users)"

cluster=$tmp/cluster
mkdir -p "$cluster/state" "$cluster/spool" "$cluster/log"
host=$(hostname -s)
port=$((20000 + RANDOM % 20000))
mungekey -c -k "$cluster/munge.key" -f > /dev/null 2>&1 || dd if=/dev/urandom of="$cluster/munge.key" bs=1024 count=1 2> /dev/null
chmod 600 "$cluster/munge.key"
munged -f --key-file="$cluster/munge.key" --socket="$cluster/munge.sock" --pid-file="$cluster/munged.pid" \
  --log-file="$cluster/munged.log" --seed-file="$cluster/munged.seed" || skip "munged did not start: $(tail -2 "$cluster/munged.log")"
cat > "$cluster/slurm.conf" << CONF
ClusterName=cnnvistest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$cluster/munge.sock
StateSaveLocation=$cluster/state
SlurmdSpoolDir=$cluster/spool
SlurmctldPidFile=$cluster/slurmctld.pid
SlurmdPidFile=$cluster/slurmd.pid
SlurmctldLogFile=$cluster/log/slurmctld.log
SlurmdLogFile=$cluster/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=2 State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$cluster/slurm.conf
stop_cluster() {
  for pid_file in slurmd.pid slurmctld.pid munged.pid; do
    [[ -f $cluster/$pid_file ]] && kill "$(cat "$cluster/$pid_file")" 2> /dev/null
  done
  sleep 1
  [[ -n ${KEEP_TMP:-} ]] || rm -rf "$tmp"
}
trap stop_cluster EXIT
slurmctld -f "$cluster/slurm.conf" && slurmd -f "$cluster/slurm.conf" || { fail "slurm daemons did not start"; exit 1; }
for _ in $(seq 60); do
  sinfo -h -o %t 2> /dev/null | grep -q idle && break
  sleep 1
done
sinfo -h -o %t | grep -q idle || { fail "the node never became idle: $(tail -3 "$cluster/log/slurmctld.log")"; exit 1; }

# --- the run: demo canvases, the demo model (or a small one trained here)
"$cnnvis" -q canvases --split test --count 160 -o "$tmp/canvases" > /dev/null || { fail "canvases"; exit 1; }
demo_weights --train-limit 300 --test-limit 50 --epochs 1 || exit 1
args=(gradcam --model fashion_vgg --weights "$weights" --methods gradcam,gradcam++,layercam --batch-size 1 "$tmp/canvases")
"$cnnvis" -q "${args[@]}" -o "$tmp/single" > /dev/null 2>&1 || fail "unsharded run"

submit() { bash "$src/scripts/slurm/submit.sh" -n 4 -o "$tmp/run" --cnnvis "$cnnvis" -- "${args[@]}"; }
wait_for() {  # JOBID...: until none is queued or running (at most 5 minutes)
  for _ in $(seq 600); do
    [[ -z $(squeue -h -j "$(IFS=,; echo "$*")" 2> /dev/null) ]] && return 0
    sleep 0.5
  done
  fail "jobs $* still queued after 5 minutes"
}
read -r array merge < <(submit)
[[ -n $array && -n $merge ]] || { fail "submit.sh printed no job ids"; exit 1; }
# Kill task 2 once it has written its third map: inputs are processed one at a time (--batch-size 1),
# so by then at least two inputs are complete and the resubmission has something to resume. (Killing at
# the first map raced with the first input's remaining files: nothing was complete, nothing resumed.)
killed=0
for _ in $(seq 3000); do
  maps_now=$(find "$tmp/run/shard-2" -name '*.gradcam.npy' 2> /dev/null | wc -l)
  if ((maps_now >= 3)); then
    scancel --signal=KILL "${array}_2" && killed=1
    break
  fi
  sleep 0.02
done
((killed)) || fail "task 2 never wrote three maps"
wait_for "$array"
sleep 1
# The merge job depends on every task succeeding: it must not have run (and is removed by Slurm).
[[ -e $tmp/run/all/manifest.json ]] && fail "merge ran although task 2 was killed"
done_before=$(find "$tmp/run/shard-2" -name '*.gradcam.npy' | wc -l)
scancel "$merge" 2> /dev/null

read -r array merge < <(submit)
wait_for "$array" "$merge"
[[ -f $tmp/run/all/manifest.json ]] || { fail "no merged manifest: $(tail -3 "$tmp/run/logs/merge.log")"; exit 1; }
# Task 2 resumes from what it had finished (an input counts once all its files are written); the others
# recompute nothing.
shard2=$(json "$tmp/run/shard-2/manifest.json" "len(d['inputs'])")
resumed=$(sed -nE 's/.*resuming: ([0-9]+) of [0-9]+ inputs already done.*/\1/p' "$tmp/run/logs/shard-2.log")
[[ -n $resumed ]] && ((resumed > 0 && resumed <= done_before && resumed < shard2)) \
  || fail "task 2 was not killed midway and resumed (${resumed:-no} of $shard2 done, $done_before maps seen): $(head -3 "$tmp/run/logs/shard-2.log")"
echo "task 2 killed after $done_before maps; resumed with $resumed of $shard2 inputs done"
grep -Eq "resuming: ([0-9]+) of \1 inputs already done" "$tmp/run/logs/shard-0.log" || fail "task 0 recomputed its inputs"
# Same inputs, same maps, byte for byte; and the manifests compare equal.
"$cnnvis" compare "$tmp/single" "$tmp/run/all" --tol-max 0 --tol-mean 0 > "$tmp/compare.txt" 2>&1 \
  || fail "merged run differs from the unsharded run: $(tail -3 "$tmp/compare.txt")"
[[ $(json "$tmp/run/all/manifest.json" "d['summary']['ok']") == 160 ]] || fail "merged manifest does not list 160 ok inputs"
maps=0
while IFS= read -r -d '' map; do
  name=$(basename "$map")
  other=$(find "$tmp/run" -path "$tmp/run/all" -prune -o -name "$name" -print | head -1)
  cmp -s "$map" "$other" || fail "$name differs from the sharded run's"
  maps=$((maps + 1))
done < <(find "$tmp/single" -name '*.npy' -print0)
((maps == 160 * 6)) || fail "expected 960 maps in the unsharded run, found $maps"
((failures == 0)) && echo "slurm: 4-task array, a killed task, resubmission, merge: all checks passed"
exit $((failures > 0))
