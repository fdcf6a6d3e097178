#!/usr/bin/env bash
# Installs what cada needs and builds it. Idempotent: a second run only checks and rebuilds.
#
#   bash scripts/setup.sh            # Debian packages, Python venv (libtorch + parity tools), build
#
# Environment:
#   CADA_VENV     Python virtual environment for libtorch and the parity tools
#                 (default: ~/.cache/cada/venv, outside the clone so it is reused)
#   Torch_DIR     use this libtorch (>= 2.4) instead of the venv's torch for the C++ build
#   BUILD_DIR     build folder (default: build)
#   CADA_JOBS     parallel build jobs (default: number of cores)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${CADA_VENV:-$HOME/.cache/cada/venv}
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${CADA_JOBS:-$(nproc)}
log() { printf '[setup] %s\n' "$*" >&2; }

# ---- Debian packages ----
PKGS=(build-essential cmake pkg-config git ccache python3 python3-venv python3-pip
      nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev
      libsentencepiece-dev libpcre2-dev libutf8proc-dev libopenblas-dev libopenblas0-openmp libgloo-dev
      zlib1g-dev libcpp-httplib-dev libcurl4-openssl-dev libssl-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# ---- Python venv: libtorch (the pinned torch wheel) and the parity tools ----
REQ="$ROOT/tools/requirements.txt"
STAMP="$VENV/.cada-requirements.sha256"
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  log "preparing the Python environment in $VENV (first time: a few minutes)"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
  echo "$want" > "$STAMP"
fi
PY="$VENV/bin/python"

# ---- configure and build (Release, ccache when present) ----
# Paths relative to the clone in ccache's keys, so a fresh clone elsewhere reuses the cache.
export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=1
if [ -n "${Torch_DIR:-}" ]; then
  TORCH_ARGS=(-DTorch_DIR="$Torch_DIR")
else
  TORCH_ARGS=(-DCMAKE_PREFIX_PATH="$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)')")
fi
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  log "configuring $BUILD_DIR"
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "${TORCH_ARGS[@]}" -DCADA_PYTHON="$PY" >/dev/null
fi
log "building (jobs: $JOBS)"
cmake --build "$BUILD_DIR" -j "$JOBS" 2>&1 | grep -vE '^\[ *[0-9]+%\]|^-- ' || true
test -x "$BUILD_DIR/bin/cada" || { log "build failed"; exit 1; }
log "ready: $BUILD_DIR/bin/cada"
