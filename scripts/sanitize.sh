#!/usr/bin/env bash
# Builds everything with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/ (g++, -O1) and
# runs the whole test suite there: unit tests, parity tests and the end-to-end CLI scripts (which then
# run the instrumented binary). Any ASan report, UB report or leak fails the test that caused it.
#
#   bash scripts/sanitize.sh            build + ctest in build-asan
#   bash scripts/sanitize.sh -R cli_    extra arguments go to ctest
#   CNNVIS_SANITIZE_SCOPE=io bash scripts/sanitize.sh
#                                       only the torch-free library and its unit tests (what CI runs:
#                                       instrumenting every LibTorch translation unit takes far longer
#                                       than CI's budget on 2 cores)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${CNNVIS_ASAN_BUILD:-build-asan}
start=$(date +%s)
if [[ ! -f $build/build.ninja ]]; then
  # -O1 -g1: a third faster to compile than -O2 -g, and nearly all run time is in LibTorch, which is not
  # instrumented anyway.
  CXX=${CNNVIS_ASAN_CXX:-g++} cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCNNVIS_SANITIZE=ON > "$build.configure.log" 2>&1 \
    || { cat "$build.configure.log"; exit 1; }
  rm -f "$build.configure.log"
fi
scope=${CNNVIS_SANITIZE_SCOPE:-full}
if [[ $scope == io ]]; then
  cmake --build "$build" -j "${CNNVIS_JOBS:-$(nproc)}" --target cnnvis_io_tests
else
  cmake --build "$build" -j "${CNNVIS_JOBS:-$(nproc)}" --target cnnvis cnnvis_io_tests cnnvis_torch_tests \
    cnnvis_parity_tests cnnvis_gradient_parity_tests cnnvis_inception5h_parity_tests
fi
built=$(date +%s)

# detect_leaks: on, with suppressions only for allocations LibTorch and OpenMP make once per process
# and never free (see the file). allocator_may_return_null: a huge allocation returns NULL, as without
# ASan, so the out-of-memory paths (LibTorch's allocator error, std::bad_alloc) are what gets tested.
supp=$root/tests/sanitize
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:detect_stack_use_after_return=0:strict_string_checks=1:check_initialization_order=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$supp/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
export CNNVIS_UNDER_ASAN=1  # tests that measure memory use skip that part
cd "$build"
rc=0
if [[ $scope == io ]]; then
  ./tests/cnnvis_io_tests --gtest_brief=1 "$@" || rc=$?
else
  ctest --output-on-failure -j "${CNNVIS_TEST_JOBS:-2}" --timeout 1800 "$@" || rc=$?
fi
end=$(date +%s)
echo "sanitize ($scope): build $((built - start)) s, tests $((end - built)) s, total $((end - start)) s (exit $rc)"
exit $rc
