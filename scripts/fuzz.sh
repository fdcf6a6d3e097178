#!/usr/bin/env bash
# Sanitizer and fuzz checks of the layers that parse input (util, io, text).
#
#   bash scripts/fuzz.sh                        # what CI runs (ctest test fuzz.sanitizers)
#   CADA_FUZZ_SCALE=50 bash scripts/fuzz.sh     # 50 times the fuzzing time per target, for a long local run
#   CADA_FUZZ_TARGETS="csv jsonl" bash scripts/fuzz.sh   # only these targets (unit tests still run)
#
# Steps, one line each with its time (full output in $BUILD/logs/<step>.log, printed on failure):
#   1. clang with libFuzzer and the sanitizer runtimes: installed with apt-get only when missing;
#   2. configure tests/fuzz/CMakeLists.txt into build-fuzz/ (clang, ccache) and build: the
#      util/io/text layers with ASan + UBSan, their GoogleTest binaries and the fuzz targets;
#   3. the unit tests of tests/util, tests/io and tests/text under the sanitizers;
#   4. each fuzz target (tests/fuzz/fuzz_<name>.cpp): first the crash reproducers of
#      tests/fuzz/crashes/<name>/ (regression inputs), then a fixed time of inputs mutated from
#      the seeds in tests/fuzz/corpus/<name>/; two targets at a time on two or more cores.
# A summary line per target (inputs executed, time, crashes) follows; the exit status is 1 when
# anything failed, 77 when clang / libFuzzer is missing and cannot be installed (CTest: skipped).
# A new crash leaves its input in build-fuzz/artifacts/<name>/; fix the bug, then copy the file to
# tests/fuzz/crashes/<name>/ so every later run replays it. Reproduce one input with
#   build-fuzz/fuzz_<name> FILE
#
# Environment:
#   FUZZ_BUILD_DIR    build folder (default: build-fuzz; ignored by git)
#   CADA_JOBS         parallel build jobs and concurrent fuzz targets (default: number of cores)
#   CADA_FUZZ_SECONDS fuzzing time per target after its seeds and reproducers (default: 10)
#   CADA_FUZZ_SCALE   multiplies CADA_FUZZ_SECONDS (default: 1)
#   CADA_FUZZ_TARGETS space-separated target names without the fuzz_ prefix (default: all)
#   CADA_FUZZ_SEED    libFuzzer's random seed (default: a new one each run, printed in the logs)
#   CXX_FUZZ          the clang++ to use (default: clang++)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
JOBS=${CADA_JOBS:-$(nproc)}
SCALE=${CADA_FUZZ_SCALE:-1}
LOGS=$BUILD/logs
T_START=$SECONDS

# Fuzzing time per target in one run: CI's is a regression check (every seed and crash
# reproducer under the sanitizers, then 10 s of fresh mutations of them; 7 targets two at a time
# take about 40 s on 2 idle cores). A fixed time rather than a fixed number of inputs keeps the
# check's cost bounded as parsers change; the inputs executed are in the summary (on an idle
# core in 10 s: csv about 170k, safetensors 64k, config 50k, jsonl, tokenizer_json and
# sentencepiece 13k, chat_template 5k). CADA_FUZZ_SCALE=50 is a long search.
for v in CADA_FUZZ_SECONDS CADA_FUZZ_SCALE; do
  case "${!v:-1}" in
    ''|*[!0-9]*|0*) echo "fuzz.sh: $v='${!v}' must be a positive whole number" >&2; exit 2;;
  esac
done
FUZZ_SECONDS=$(( ${CADA_FUZZ_SECONDS:-10} * SCALE ))

say() { printf '[fuzz] %s\n' "$*"; }
fail_with_log() {  # step name, log file
  say "FAILED: $1 (full log: $ROOT/$2)"
  tail -n 40 "$2" | sed 's/^/    /'
  exit 1
}
# Runs "$@" with its output in $LOGS/<name>.log and prints one line with the time taken.
step() {
  local name=$1; shift
  local log=$LOGS/$name.log t0=$SECONDS
  if "$@" >"$log" 2>&1; then
    say "$(printf '%-28s %4d s' "$name" $((SECONDS - t0)))"
  else
    fail_with_log "$name" "$log"
  fi
}

# ---- 1. clang with libFuzzer, ASan and UBSan ----
CXX_BIN=${CXX_FUZZ:-clang++}
probe_fuzzer() {  # links a trivial fuzz target with every runtime this build needs
  local dir
  dir=$(mktemp -d)
  printf '#include <cstddef>\n#include <cstdint>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n' \
    >"$dir/probe.cpp"
  "$CXX_BIN" -fsanitize=fuzzer,address,undefined "$dir/probe.cpp" -o "$dir/probe" >/dev/null 2>&1 &&
    "$dir/probe" -runs=1 >/dev/null 2>&1
  local rc=$?
  rm -rf "$dir"
  return $rc
}
clang_major() {
  { "$CXX_BIN" --version 2>/dev/null || true; } | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n 1
}
apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null || return 1
    sudo="sudo -n"
  fi
  command -v apt-get >/dev/null 2>&1 || return 1
  $sudo apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null 2>&1
}
mkdir -p "$LOGS"
# One run at a time per build folder (a manual run and the CTest one would share it).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$BUILD/.lock"
  flock 9
fi
t0=$SECONDS
if ! probe_fuzzer; then
  say "clang with libFuzzer not found; installing it with apt-get"
  if ! command -v "$CXX_BIN" >/dev/null 2>&1; then
    apt_install clang || { say "SKIPPED: cannot install clang (needs root or sudo and apt-get)"; exit 77; }
  fi
  if ! probe_fuzzer; then
    # The runtimes (libclang_rt.fuzzer / asan / ubsan): libclang-rt-N-dev on Debian 12, part of
    # libclang-common-N-dev on older releases.
    major=$(clang_major)
    if [ -n "$major" ]; then
      apt_install "libclang-rt-$major-dev" || apt_install "libclang-common-$major-dev" || true
    fi
  fi
  probe_fuzzer || { say "SKIPPED: $CXX_BIN cannot build libFuzzer targets with ASan + UBSan"; exit 77; }
fi
say "$(printf '%-28s %4d s' "toolchain ($("$CXX_BIN" --version | head -n 1 | sed 's/ (.*//'))" $((SECONDS - t0)))"
major=$(clang_major)
for s in "/usr/lib/llvm-$major/bin/llvm-symbolizer" "$(command -v llvm-symbolizer || true)"; do
  if [ -n "$s" ] && [ -x "$s" ]; then export ASAN_SYMBOLIZER_PATH=$s; break; fi
done

# ---- 2. configure and build ----
# Paths relative to the clone in ccache's keys (as scripts/setup.sh does), so a fresh clone
# elsewhere reuses the cache.
export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=1
GEN=()
command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
configure() {
  cmake -S tests/fuzz -B "$BUILD" "${GEN[@]}" -DCMAKE_CXX_COMPILER="$CXX_BIN"
}
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  step configure configure
fi
step build cmake --build "$BUILD" -j "$JOBS"

# ---- sanitizer settings for steps 3 and 4 ----
# UBSan: print the stack of a report (the build already makes every UBSan report fatal with
#   -fno-sanitize-recover=all; halt_on_error=1 says the same for runtimes that read only this).
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# ASan: the defaults, which include LeakSanitizer (detect_leaks=1): these layers do not link
#   libtorch, so a leak report is cada's own. alloc_dealloc_mismatch / vptr exemptions are not
#   needed for the same reason. Where the machine forbids what LeakSanitizer needs (ptrace, e.g.
#   some containers), it is switched off below with a note rather than failing every test.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
# ... except cairo's and fontconfig's process-lifetime font caches (the charts' text, util/chart.h).
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(pwd)/tests/fuzz/lsan.supp:print_suppressions=0}
# The tests and the targets whose parsers take a path write their files under TMPDIR: a fresh
# folder, on tmpfs when there is one, removed at exit.
SCRATCH_BASE=$(cd "$BUILD" && pwd)
[ -d /dev/shm ] && [ -w /dev/shm ] && SCRATCH_BASE=/dev/shm
SCRATCH=$(mktemp -d "$SCRATCH_BASE/cada-fuzz.XXXXXX")
# Stops fuzz targets still running when the script ends early (a failure, a CTest timeout).
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$SCRATCH"' EXIT
export TMPDIR=$SCRATCH
rm -rf "$BUILD/fuzz-work" "$BUILD/artifacts"
lsan_probe=$("$BUILD/cada_util_tests" --gtest_filter=NoSuchTest 2>&1 || true)
if grep -q "LeakSanitizer has encountered a fatal error" <<<"$lsan_probe"; then
  say "note: LeakSanitizer cannot run on this machine (ptrace denied); leak checks are off"
  export ASAN_OPTIONS=detect_leaks=0
fi

# ---- 3. unit tests under ASan + UBSan ----
for layer in util io text; do
  step "unit tests ($layer)" "$BUILD/cada_${layer}_tests" --gtest_brief=1
done

# ---- 4. fuzz targets ----
targets=()
for bin in "$BUILD"/fuzz_*; do
  [ -x "$bin" ] || continue
  name=${bin##*/fuzz_}
  if [ -n "${CADA_FUZZ_TARGETS:-}" ] && [[ " $CADA_FUZZ_TARGETS " != *" $name "* ]]; then continue; fi
  targets+=("$name")
done
[ ${#targets[@]} -gt 0 ] || { say "FAILED: no fuzz targets in $BUILD"; exit 1; }

# One target: replay tests/fuzz/crashes/<name>/*, then fuzz from the seeds. Writes
# $BUILD/fuzz-work/<name>.result: "status executed seconds crashes replayed".
fuzz_one() {
  local name=$1
  local bin=$BUILD/fuzz_$name log=$LOGS/fuzz_$name.log work=$BUILD/fuzz-work/$name
  local art=$BUILD/artifacts/$name/ result=$BUILD/fuzz-work/$name.result
  local t0=$SECONDS status=ok
  mkdir -p "$work/new" "$art"
  : >"$log"
  local crashes=()
  if [ -d "tests/fuzz/crashes/$name" ]; then
    mapfile -t crashes < <(find "tests/fuzz/crashes/$name" -type f | sort)
  fi
  if [ ${#crashes[@]} -gt 0 ]; then
    echo "== replaying ${#crashes[@]} crash reproducer(s)" >>"$log"
    "$bin" -timeout=10 -rss_limit_mb=2048 "${crashes[@]}" >>"$log" 2>&1 || status=replay-failed
  fi
  local seed=()
  [ -n "${CADA_FUZZ_SEED:-}" ] && seed=(-seed="$CADA_FUZZ_SEED")
  if [ "$status" = ok ]; then
    echo "== fuzzing: $FUZZ_SECONDS s" >>"$log"
    # New inputs go to $work/new (first folder), so the checked-in seeds stay untouched.
    # -timeout: one input running 10 s is a hang; -rss_limit_mb: beyond 2 GB is a memory bug.
    "$bin" "$work/new" "tests/fuzz/corpus/$name" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$art" -print_final_stats=1 -print_funcs=0 "${seed[@]}" >>"$log" 2>&1 || status=crashed
  fi
  local executed
  executed=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  local found
  found=$(find "$art" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  echo "$status ${executed:-0} $((SECONDS - t0)) $found ${#crashes[@]}" >"$result"
}

mkdir -p "$BUILD/fuzz-work"
t0=$SECONDS
running=0
for name in "${targets[@]}"; do
  fuzz_one "$name" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

failed=0
for name in "${targets[@]}"; do
  read -r status executed secs found replayed <"$BUILD/fuzz-work/$name.result" || status=missing
  line=$(printf '%-28s %4d s  %8d inputs  crashes %d' "fuzz_$name" "${secs:-0}" "${executed:-0}" "${found:-0}")
  [ "${replayed:-0}" -gt 0 ] && line+="  (+${replayed} reproducers replayed)"
  if [ "$status" = ok ] && [ "${found:-0}" -eq 0 ]; then
    say "$line"
  else
    failed=1
    where="new inputs: $ROOT/$BUILD/artifacts/$name/"
    [ "$status" = replay-failed ] && where="a reproducer in tests/fuzz/crashes/$name/ fails again"
    say "$line  FAILED ($status; log: $ROOT/$LOGS/fuzz_$name.log; $where)"
    grep -E "ERROR:|FUZZ_CHECK|runtime error|SUMMARY" "$LOGS/fuzz_$name.log" | head -n 5 | sed 's/^/    /' || true
  fi
done
say "$(printf '%-28s %4d s' "fuzzing (${#targets[@]} targets)" $((SECONDS - t0)))"
say "$(printf '%-28s %4d s' "total" $((SECONDS - T_START)))"
exit $failed
