#!/usr/bin/env bash
# Runs every test: sets up first (idempotent, quick when everything is there), then ctest.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh
cd build
# LibTorch's OpenMP threads spin while waiting; with tests running side by side on two cores that
# spinning made runs 4-5x slower. Passive waiting keeps parallel tests from starving each other.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
ctest --output-on-failure -j "${CNNVIS_TEST_JOBS:-2}" --timeout 1200
