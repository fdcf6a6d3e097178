#!/usr/bin/env bash
# Installs what cada needs and builds it. Idempotent: a second run only checks and rebuilds.
#
#   bash scripts/setup.sh               # Debian packages, Python venv (libtorch + parity tools), the cada binary
#   bash scripts/setup.sh --with-tests  # the same, and the test binaries (scripts/test.sh does this)
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
# What to build: the cada binary (what the quickstart runs), or every target with the tests.
TARGETS=(--target cada); WHAT="build cada"
for a in "$@"; do
  case "$a" in
    --with-tests) TARGETS=(); WHAT="build cada and the tests" ;;
    *) echo "[setup] unknown option '$a' (expected: --with-tests)" >&2; exit 2 ;;
  esac
done
log() { printf '[setup] %s\n' "$*" >&2; }
# step NAME LOG CMD...: runs CMD with its output in LOG and prints one line with the time it took;
# on failure the line names LOG and the log's last lines follow.
step() {
  local name=$1 logf=$2; shift 2
  local t0=$SECONDS
  if "$@" >"$logf" 2>&1; then
    log "$(printf '%-34s %4ds' "$name" $((SECONDS - t0)))"
  else
    log "$name failed after $((SECONDS - t0))s; full log: $logf"
    tail -n 30 "$logf" >&2
    exit 1
  fi
}
case "$BUILD_DIR" in /*) LOGS="$BUILD_DIR/logs" ;; *) LOGS="$ROOT/$BUILD_DIR/logs" ;; esac
mkdir -p "$LOGS"
T_START=$SECONDS

# ---- Debian packages ----
PKGS=(build-essential cmake ninja-build pkg-config git ccache python3 python3-venv python3-pip
      nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev
      libsentencepiece-dev libpcre2-dev libutf8proc-dev libopenblas-dev libopenblas0-openmp libgloo-dev
      libcairo2-dev fonts-dejavu-core libcpp-httplib-dev libcurl4-openssl-dev libssl-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  step "Debian packages (${#missing[@]} missing)" "$LOGS/apt.log" \
    bash -c "$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ${missing[*]}"
else
  log "$(printf '%-34s %4ds' "Debian packages (all present)" 0)"
fi

# ---- Python venv: libtorch (the pinned torch wheel) and the parity tools ----
REQ="$ROOT/tools/requirements.txt"
STAMP="$VENV/.cada-requirements.sha256"
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  [ -x "$VENV/bin/python" ] || step "Python venv $VENV" "$LOGS/venv.log" python3 -m venv "$VENV"
  step "Python packages (first time: minutes)" "$LOGS/pip.log" \
    "$VENV/bin/pip" install --disable-pip-version-check -r "$REQ"
  echo "$want" > "$STAMP"
else
  log "$(printf '%-34s %4ds' "Python packages (up to date)" 0)"
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
# Ninja schedules the whole build graph at once (Make works target by target).
GEN=(); command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  step "configure $BUILD_DIR" "$LOGS/configure.log" \
    cmake -S . -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release "${TORCH_ARGS[@]}" -DCADA_PYTHON="$PY"
fi
step "$WHAT (jobs: $JOBS)" "$LOGS/build.log" cmake --build "$BUILD_DIR" -j "$JOBS" "${TARGETS[@]}"
# A warning that is new (not understood and silenced at its source) should be seen, not buried.
nwarn=$(cat "$LOGS"/configure.log "$LOGS"/build.log 2>/dev/null | grep -cE 'warning:|CMake Warning' || true)
[ "$nwarn" -eq 0 ] || log "$nwarn warnings: see $LOGS/configure.log and $LOGS/build.log"
test -x "$BUILD_DIR/bin/cada" || { log "build failed: $BUILD_DIR/bin/cada is missing"; exit 1; }
log "ready in $((SECONDS - T_START))s: $BUILD_DIR/bin/cada"
