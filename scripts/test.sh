#!/usr/bin/env bash
# Runs the whole test suite (GoogleTest units, Python parity tests, end-to-end tests) via CTest.
#   bash scripts/test.sh                 # everything that runs on CPU
#   bash scripts/test.sh -L parity       # extra arguments go to ctest (labels: unit, parity, e2e, gpu)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-tests
BUILD_DIR=${BUILD_DIR:-build}
# ctest runs tests in parallel, each with libtorch's OpenMP threads: with more threads than
# cores, spinning OpenMP barriers slow everything down by orders of magnitude. Passive waiting
# keeps oversubscribed runs fast.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
args=("$@")
if [ ${#args[@]} -eq 0 ]; then
  # GPU tests run only where a GPU exists.
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then args=(); else args=(-LE gpu); fi
fi
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "${CADA_TEST_JOBS:-2}" "${args[@]}"
