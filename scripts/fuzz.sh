#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang + ASan + UBSan into build-fuzz/ and runs each for
# a set time, starting from generated seed corpora. Prints executions, corpus size and crashes per target;
# exits non-zero when any target crashed (the input is saved under build-fuzz/crashes/).
#
#   bash scripts/fuzz.sh [seconds per target, default 60] [target ...]
#   e.g. bash scripts/fuzz.sh 20              (what scripts/test.sh runs)
#        bash scripts/fuzz.sh 600 safetensors
# Reproduce a crash: build-fuzz/tests/fuzz/fuzz_<target> build-fuzz/crashes/<target>/crash-...
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(safetensors model_card manifest idx npy image atlas_samples torchscript_archive)
build=${CNNVIS_FUZZ_BUILD:-build-fuzz}

command -v clang++ >/dev/null || { echo "fuzz: clang++ not found (apt install clang libclang-rt-14-dev)" >&2; exit 1; }
if [[ ! -f $build/build.ninja ]]; then
  CXX=clang++ CC=clang cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCNNVIS_FUZZ=ON \
    -DCNNVIS_BUILD_TESTS=OFF > "$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
  rm -f "$build.configure.log"
fi
cmake --build "$build" -j "${CNNVIS_JOBS:-$(nproc)}" --target "${targets[@]/#/fuzz_}"

rm -rf "$build/seeds"
/usr/bin/python3 tests/fuzz/make_seeds.py --out "$build/seeds" --cards models

# OpenCV, zlib and libstdc++ are not instrumented; their allocations at exit are not ours to report.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
printf '%-20s %10s %10s %8s %8s\n' target executions exec/s corpus crashes
for target in "${targets[@]}"; do
  corpus="$build/corpus/$target"
  crashes="$build/crashes/$target"
  mkdir -p "$corpus" "$crashes"
  log="$build/fuzz_$target.log"
  rc=0
  # -rss_limit_mb: the readers cap their own allocations well below this; hitting it is a finding.
  "$build/tests/fuzz/fuzz_$target" "$corpus" "$build/seeds/$target" -max_total_time="$seconds" \
    -timeout=10 -rss_limit_mb=3072 -max_len=65536 -print_final_stats=1 -artifact_prefix="$crashes/" \
    > "$log" 2>&1 || rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  files=$(find "$corpus" -type f | wc -l)
  # A slow-unit-* file is libFuzzer noting an input that took >= 10 s once, not a finding: a real hang
  # is a timeout-* (-timeout=10 aborts the run). On a shared machine a stall makes such notes, so the
  # input is timed again and reported, and only crashes, leaks, timeouts and OOMs fail the run.
  found=$(find "$crashes" -type f ! -name 'slow-unit-*' | wc -l)
  for slow in "$crashes"/slow-unit-*; do
    [[ -f $slow ]] || continue
    start=$(date +%s.%N)
    "$build/tests/fuzz/fuzz_$target" "$slow" > /dev/null 2>&1 || true
    echo "fuzz: warning: $target noted $slow as slow; it runs in $(awk -v s="$start" -v e="$(date +%s.%N)" \
      'BEGIN { printf "%.2f", e - s }') s now" >&2
    rm -f "$slow"
  done
  printf '%-20s %10s %10s %8s %8s\n' "$target" "$execs" "$rate" "$files" "$found"
  if ((rc != 0 || found > 0)); then
    status=1
    echo "fuzz: $target failed (exit $rc); log: $log" >&2
    # What aborted (an assertion or a sanitizer report comes just before libFuzzer's line), the stack,
    # and the input itself, so that a CI log alone is enough to reproduce the crash.
    grep -a -m1 -B3 -A14 -E 'ERROR: |runtime error|terminate called' "$log" >&2 || tail -20 "$log" >&2
    for crash in "$crashes"/*; do
      [[ -f $crash && $crash != */slow-unit-* ]] || continue
      echo "fuzz: $crash ($(stat -c %s "$crash") bytes; first 1024 as hex):" >&2
      od -A x -t x1z -N 1024 -v "$crash" >&2
    done
  fi
done
exit $status
