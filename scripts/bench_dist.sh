#!/usr/bin/env bash
# Data parallelism, measured: every data-parallel stage of the CADA pipeline run with 1 process
# and with N processes (launched by hand with RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT, the
# variables torchrun, mpirun and srun set) on the same models, data and global batch, then a
# table of seconds and the speed-up. On one machine the processes share its cores (each gets
# cores / N intra-op threads), so the figure shows how well N small processes use the cores
# compared with one process using all of them.
#
#   bash scripts/bench_dist.sh                     # the quickstart's tiny pipeline (runs/quickstart)
#   bash scripts/bench_dist.sh --run runs/pipeline-cases --procs 2
#
# Needs a finished pipeline run (scripts/pipeline.sh): rm/final, sft/final, grpo/final,
# chains/chains.jsonl and base/final (or --base DIR) in --run. Writes into --out
# (default /tmp/cada-bench-dist).
set -euo pipefail
cd "$(dirname "$0")/.."
CADA=${CADA:-${BUILD_DIR:-build}/bin/cada}
RUN=runs/quickstart; BASE=""; OUT=/tmp/cada-bench-dist; N=2
while [ $# -gt 0 ]; do
  case "$1" in
    --run) RUN=$2; shift 2;;
    --base) BASE=$2; shift 2;;
    --out) OUT=$2; shift 2;;
    --procs) N=$2; shift 2;;
    -h|--help) sed -n '2,16p' "$0"; exit 0;;
    *) echo "bench_dist.sh: unknown option '$1' (see --help)" >&2; exit 2;;
  esac
done
BASE=${BASE:-$RUN/base/final}
[ -e "$BASE/config.json" ] || { echo "bench_dist.sh: no base model at $BASE (give --base)" >&2; exit 1; }
for f in rm/final sft/final grpo/final chains/chains.jsonl; do
  [ -e "$RUN/$f" ] || { echo "bench_dist.sh: $RUN/$f is missing; run scripts/pipeline.sh --run $RUN first" >&2; exit 1; }
done
rm -rf "$OUT"; mkdir -p "$OUT"
export OMP_WAIT_POLICY=PASSIVE

# run NPROC NAME cada-args...: wall seconds of the whole command (all ranks), logs in $OUT/NAME.log
run() {
  local n=$1 name=$2; shift 2
  local port=$((29000 + RANDOM % 2000)) t0 t1 pids=() rc=0
  t0=$(date +%s.%N)
  if [ "$n" = 1 ]; then
    "$CADA" "$@" >"$OUT/$name.log" 2>&1 || rc=$?
  else
    for ((r = 0; r < n; r++)); do
      RANK=$r WORLD_SIZE=$n LOCAL_RANK=$r LOCAL_WORLD_SIZE=$n MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
        "$CADA" "$@" >"$OUT/$name.r$r.log" 2>&1 &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || rc=$?; done
  fi
  t1=$(date +%s.%N)
  [ "$rc" = 0 ] || { echo "bench_dist.sh: $name failed; see $OUT/$name*.log" >&2; exit 1; }
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}

declare -A T
stage() {  # stage LABEL cada-args... (output_dir=... is appended per process count)
  local label=$1; shift
  for n in 1 "$N"; do
    T[$label,$n]=$(run "$n" "$label-$n" "$@" "output_dir=$OUT/$label-$n")
    printf '[bench] %-16s %d process(es): %6.1f s\n' "$label" "$n" "${T[$label,$n]}" >&2
  done
}

stage grpo train --config configs/tiny/grpo_cada.json model=$RUN/sft/final rewards.rewards.3.model=$RUN/rm/final \
  train.steps=4 checkpoint.every=0 log.tensorboard=false
stage sft sft --config configs/tiny/sft.json model=$BASE data=$RUN/chains/chains.jsonl steps=16 epochs=0 \
  tensorboard=false checkpoint.every=0
stage train-rm train-rm --config configs/tiny/rm.json model=$BASE steps=20 eval_every=0 tensorboard=false
stage generate-chains generate-chains --config configs/tiny/chains_cases.json model=$BASE \
  rewards.rewards.3.model=$RUN/rm/final data.limit=48
stage eval eval --config configs/tiny/eval_pipeline.json model=$RUN/grpo/final datasets.0.sample=40 \
  datasets.1.sample=30 datasets.2.sample=30

{
  echo "| stage | what | 1 process | $N processes | speed-up |"
  echo "|---|---|---|---|---|"
  for label in grpo sft train-rm generate-chains eval; do
    case $label in
      grpo) what="4 GRPO steps: 8 prompts x 8 completions of <= 96 tokens, RM + rule rewards, KL";;
      sft) what="16 steps of 16 chains (completion-only loss)";;
      train-rm) what="20 steps of 16 preference pairs";;
      generate-chains) what="48 prompts x 4 samples, spec in context, scored";;
      eval) what="100 prompts x 4 samples (Best-of-N), judged";;
    esac
    printf '| %s | %s | %.1f s | %.1f s | %.2fx |\n' "$label" "$what" "${T[$label,1]}" "${T[$label,$N]}" \
      "$(awk -v a="${T[$label,1]}" -v b="${T[$label,$N]}" 'BEGIN { print a / b }')"
  done
} | tee "$OUT/table.md"
echo "[bench] table in $OUT/table.md; cores: $(nproc)" >&2
