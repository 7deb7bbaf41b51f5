#!/usr/bin/env bash
# t-SNE benchmark: cnnvis against scikit-learn on 10,000 Fashion-MNIST test items (PCA 50), both in one
# run, then cnnvis alone on all 70,000 items. Needs build/cnnvis, python3-sklearn and
# dataset-fashion-mnist (scripts/setup.sh installs both).
#
#   bash scripts/bench_tsne.sh            both parts, 2 threads
#   THREADS=1 N=5000 SKIP_70K=1 bash scripts/bench_tsne.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
threads=${THREADS:-2}
export OMP_WAIT_POLICY=PASSIVE
/usr/bin/python3 scripts/bench_tsne.py --n "${N:-10000}" --threads "$threads"
if [[ -z "${SKIP_70K:-}" ]]; then
  # cnnvis gives the same layout for every seed (its PCA initialisation is exact), so one seed.
  /usr/bin/python3 scripts/bench_tsne.py --n 70000 --threads "$threads" --skip-sklearn --seeds 0 --work build/bench_tsne_70k
fi
