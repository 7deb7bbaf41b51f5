#!/usr/bin/env bash
# Runs every test: sets up first (idempotent, quick when everything is there), then ctest, then the
# reliability checks: the torch-free unit tests again under ASan + UBSan (scripts/sanitize.sh; the whole
# suite with CNNVIS_SANITIZE=full, which takes much longer to build) and a short run of every fuzz target
# (scripts/fuzz.sh). CNNVIS_SANITIZE=0 or CNNVIS_FUZZ_SECONDS=0 leave those out.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh
cmake --build build -j "${CNNVIS_JOBS:-$(nproc)}"  # the tests, benchmarks and tools setup.sh leaves out
# LibTorch's OpenMP threads spin while waiting; with tests running side by side on two cores that
# spinning made runs 4-5x slower. Passive waiting keeps parallel tests from starving each other.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
(cd build && ctest --output-on-failure -j "${CNNVIS_TEST_JOBS:-2}" --timeout 1200)
case ${CNNVIS_SANITIZE:-io} in
  0) ;;
  full) bash scripts/sanitize.sh ;;
  *) CNNVIS_SANITIZE_SCOPE=io bash scripts/sanitize.sh ;;
esac
if [[ ${CNNVIS_FUZZ_SECONDS:-20} != 0 ]]; then
  bash scripts/fuzz.sh "${CNNVIS_FUZZ_SECONDS:-20}"
fi
