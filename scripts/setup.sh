#!/usr/bin/env bash
# Sets up cnnvis on a fresh Debian 12 machine and builds the tool into build/ (binary: build/cnnvis).
# Idempotent: packages already installed are not fetched again, the build is incremental (ccache), and
# the demo model is trained only when its weights are absent.
#
#   bash scripts/setup.sh            install, build, train the demo model if needed
#   SKIP_TRAIN=1 bash scripts/setup.sh   ... without training
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

packages=(
  cmake ninja-build g++ pkg-config ccache
  libtorch-dev libopenblas0           # without OpenBLAS LibTorch falls back to the reference BLAS (~20x slower)
  libopencv-dev libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libgtest-dev zlib1g-dev
  libfftw3-dev                         # FFTs of the t-SNE repulsion
  python3-torch python3-torchvision python3-numpy   # exporter and parity tests (run with /usr/bin/python3)
  python3-sklearn                      # t-SNE benchmark against scikit-learn (scripts/bench_tsne.sh)
  dataset-fashion-mnist                # the demo model's training data
  darknet                              # its sample photos are used by the end-to-end tests
  chromium                             # index.html is tested by rendering it in headless Chromium
  clang libclang-rt-14-dev python3-pil # fuzzing (libFuzzer) and the bad-input images (scripts/fuzz.sh, tests/cli)
)
# Only the sharded-run test needs these (tests/cli/slurm_test.sh starts a one-node Slurm cluster); their
# install scripts start daemons, which some containers refuse, so a failure here warns and the test
# then says why it is skipped.
optional_packages=(slurm-wlm munge)
not_installed() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}
mapfile -t missing < <(not_installed "${packages[@]}")
mapfile -t missing_optional < <(not_installed "${optional_packages[@]}")
sudo_cmd=()
[[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
if ((${#missing[@]} + ${#missing_optional[@]})); then
  "${sudo_cmd[@]}" apt-get update -qq
fi
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ((${#missing_optional[@]})); then
  echo "setup: installing ${missing_optional[*]} (for the Slurm test only)"
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing_optional[@]}" >/dev/null \
    || echo "setup: warning: could not install ${missing_optional[*]}; the Slurm test will be skipped" >&2
fi

# LibTorch must see OpenBLAS as the system BLAS, not the reference implementation.
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
case "$blas" in
  *openblas*) ;;
  *) echo "setup: warning: libblas.so.3 resolves to '$blas', not OpenBLAS; Linear layers will be slow" >&2 ;;
esac

jobs=${CNNVIS_JOBS:-$(nproc)}
mkdir -p build && cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release > build/configure.log 2>&1 \
  || { cat build/configure.log; exit 1; }
# Only what this command runs: the tool (the tests are built by scripts/test.sh).
cmake --build build -j "$jobs" --target cnnvis
rm -f build/configure.log

if [[ -z ${SKIP_TRAIN:-} && ! -f models/fashion_vgg.safetensors ]]; then
  echo "setup: training the demo model (fashion_vgg) on Fashion-MNIST canvases: about 4 minutes on 2 cores" \
    "with AVX512-BF16, about 13 minutes without"
  ./build/cnnvis train --dataset fashion-mnist --out models/fashion_vgg.safetensors
fi
echo "setup: ready: $root/build/cnnvis"
