# Shared by the end-to-end scripts (tests/cli/*_test.sh): a temporary directory removed on exit, a
# failure counter, and small checks. Source it after `set -uo pipefail`.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
expect_code() {  # expected actual what
  [[ $1 == "$2" ]] || fail "$3: exit code $2, expected $1"
}
# json FILE EXPR: prints the Python expression EXPR evaluated with d = the parsed file.
json() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
# demo_weights TRAIN_ARGS...: sets weights to the demo model scripts/setup.sh trains
# ($src/models/fashion_vgg.safetensors) or, when it is absent, to a quick one trained here with
# `$cnnvis train TRAIN_ARGS...` (then quick_model=1). Needs $cnnvis and $src; returns 1 when training fails.
demo_weights() {
  weights=$src/models/fashion_vgg.safetensors
  quick_model=0
  [[ -f $weights ]] && return 0
  weights=$tmp/m/fashion_vgg.safetensors
  quick_model=1
  "$cnnvis" -q train "$@" --out "$weights" > /dev/null || { fail "training"; return 1; }
}
