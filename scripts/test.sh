#!/usr/bin/env bash
# Runs every test: sets up first (idempotent, quick when everything is there), then ctest.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh
cd build
ctest --output-on-failure -j "${CNNVIS_TEST_JOBS:-2}" --timeout 1200
