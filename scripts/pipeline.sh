#!/usr/bin/env bash
# The CADA pipeline, end to end, for one safety-specification setting:
#
#   base model -> reward model -> generate-chains (spec in context) -> sft (spec removed:
#   context distillation) -> GRPO -> eval of base / sft / grpo -> compare (table + PNG)
#
#   bash scripts/pipeline.sh                               # tiny default: pre-trains its own base model
#   bash scripts/pipeline.sh --setting explicit --run runs/p-explicit
#   bash scripts/pipeline.sh --model runs/p/base/final --rm runs/p/rm/final   # reuse a base model and RM
#   bash scripts/pipeline.sh --configs configs/gpu/cada --model /models/Qwen2.5-1.5B-Instruct --rm /models/rm
#
# Options:
#   --setting S    cases (default) or explicit: which specification the chains are generated with
#   --configs D    config folder (default configs/tiny) holding chains_<setting>.json, sft.json,
#                  grpo_cada.json, eval_pipeline.json, and (tiny only) pretrain.json and rm.json
#   --run D        output folder (default runs/pipeline-<setting>)
#   --model D      the base policy (a Hugging Face folder); default: pre-train the tiny one
#   --rm D         the reward model folder; default: train one with `cada train-rm`
#   --fast         fewer steps and prompts (for tests; the numbers are not the documented ones)
#   --smoke        the smallest run through every stage (the reproducibility test; numbers are noise)
# Every stage writes into its own folder under --run and is skipped when its output exists, so
# an interrupted pipeline continues where it stopped (generate-chains resumes inside a stage).
# On the tiny default the base and SFT models' evals run in the background beside the stages
# after them (logs: <run>/eval-<model>.log); with --model the evals run after GRPO.
set -euo pipefail
cd "$(dirname "$0")/.."
CADA=${CADA:-${BUILD_DIR:-build}/bin/cada}
SETTING=cases; CONFIGS=configs/tiny; RUN=""; MODEL=""; RM=""; FAST=0
while [ $# -gt 0 ]; do
  case "$1" in
    --setting) SETTING=$2; shift 2;;
    --configs) CONFIGS=$2; shift 2;;
    --run) RUN=$2; shift 2;;
    --model) MODEL=$2; shift 2;;
    --rm) RM=$2; shift 2;;
    --fast) FAST=1; shift;;
    --smoke) FAST=2; shift;;
    -h|--help) sed -n '2,24p' "$0"; exit 0;;
    *) echo "pipeline.sh: unknown option '$1' (see --help)" >&2; exit 2;;
  esac
done
case "$SETTING" in cases|explicit) ;; *) echo "pipeline.sh: --setting must be cases or explicit, not '$SETTING'" >&2; exit 2;; esac
RUN=${RUN:-runs/pipeline-$SETTING}
mkdir -p "$RUN"
stage() { printf '\n== %s\n' "$*"; }
done_file() { [ -e "$1" ]; }

# The evals (stage 6). On the tiny default (a base model pre-trained here, on CPU) the base and
# SFT models are evaluated in the background beside the stages that follow them, which leave
# part of the cores idle; with --model (a real model, maybe on a GPU) they run one at a time
# after GRPO. A background eval that fails stops the pipeline, with its log, before the next
# stage starts (or at stage 6).
EVAL_BESIDE=0; declare -A EVAL_PID=()
eval_dir() { case $1 in base) echo "$MODEL";; sft) echo "$RUN/sft/final";; grpo) echo "$RUN/grpo/final";; esac; }
run_eval() {
  "$CADA" --log-level warn eval --config "$CONFIGS/eval_pipeline.json" model="$(eval_dir "$1")" \
    output_dir="$RUN/eval-$1" "${F_EVAL[@]}" > "$RUN/eval-$1.log" 2>&1
}
eval_beside() {
  if [ "$EVAL_BESIDE" = 1 ] && ! done_file "$RUN/eval-$1/report.json"; then
    stage "6. eval: $1 (in the background, beside the next stages; log: $RUN/eval-$1.log)"
    run_eval "$1" & EVAL_PID[$1]=$!
  fi
}
# Waits for the background eval of $1 when $2 is "wait", else only when it has already exited;
# a failed one stops the pipeline (so a broken eval config stops it before the next stage).
settle_eval() {
  local pid=${EVAL_PID[$1]:-}
  [ -n "$pid" ] || return 0
  [ "${2:-}" = wait ] || ! kill -0 "$pid" 2>/dev/null || return 0
  wait "$pid" || eval_failed "$1"
  unset "EVAL_PID[$1]"
}
eval_failed() {
  echo "pipeline.sh: the eval of $1 failed; the end of $RUN/eval-$1.log:" >&2
  tail -n 20 "$RUN/eval-$1.log" >&2
  exit 1
}
settle_evals() { settle_eval base; settle_eval sft; }
trap 'for p in "${EVAL_PID[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

# Overrides that shrink the run for tests (--fast).
F_PRE=(); F_RM=(); F_CH=(); F_SFT=(); F_GRPO=(); F_EVAL=()
if [ "$FAST" = 1 ]; then
  F_PRE=(steps=150 eval_every=0); F_RM=(steps=20)
  F_CH=(data.limit=64 filter.total_cap=0 filter.per_category_cap=0)
  F_SFT=(epochs=2); F_GRPO=(train.steps=4 checkpoint.every=2)
  F_EVAL=(datasets.0.sample=24 datasets.1.sample=16 datasets.2.sample=16 bon.n=2 metrics.bootstrap=200)
elif [ "$FAST" = 2 ]; then
  F_PRE=(steps=6 eval_every=0 checkpoint.every=3); F_RM=(steps=4 eval_every=0 eval_split_value=none)
  F_CH=(data.limit=12 filter.total_cap=0 filter.per_category_cap=0 filter.require_format=false filter.harmless_min=0 filter.helpful_min=0)
  F_SFT=(epochs=1); F_GRPO=(train.steps=2 train.prompts_per_step=4 rollout.num_generations=4 checkpoint.every=1)
  F_EVAL=(datasets.0.sample=8 datasets.1.sample=6 datasets.2.sample=6 bon.n=2 metrics.bootstrap=100)
fi

if [ -z "$MODEL" ]; then
  EVAL_BESIDE=1
  if ! done_file "$RUN/base/final/config.json"; then
    stage "1. a ~2M-parameter model with its own tokenizer, pre-trained on the tiny world (it complies with everything)"
    "$CADA" init-model --preset mini --train-tokenizer data/tiny-world/corpus.jsonl --vocab-size 2048 \
      --seed 1 --out "$RUN/init"
    RESUME=(); [ -d "$RUN/base" ] && RESUME=(--resume)
    "$CADA" pretrain --config "$CONFIGS/pretrain.json" model="$RUN/init" output_dir="$RUN/base" "${F_PRE[@]}" "${RESUME[@]}"
  fi
  MODEL="$RUN/base/final"
fi
eval_beside base

if [ -z "$RM" ]; then
  if ! done_file "$RUN/rm/final/config.json"; then
    settle_evals
    stage "2. a reward model on the preference pairs (cada train-rm)"
    RESUME=(); [ -d "$RUN/rm" ] && RESUME=(--resume)
    "$CADA" train-rm --config "$CONFIGS/rm.json" model="$MODEL" output_dir="$RUN/rm" "${F_RM[@]}" "${RESUME[@]}"
  fi
  RM="$RUN/rm/final"
fi

if ! done_file "$RUN/chains/summary.json"; then
  settle_evals
  stage "3. reasoning chains with the $SETTING specification in context (cada generate-chains)"
  RESUME=(); [ -e "$RUN/chains/progress.jsonl" ] && RESUME=(--resume)
  "$CADA" generate-chains --config "$CONFIGS/chains_$SETTING.json" model="$MODEL" output_dir="$RUN/chains" \
    rewards.rewards.3.model="$RM" "${F_CH[@]}" "${RESUME[@]}"
fi

if ! done_file "$RUN/sft/final/config.json"; then
  settle_evals
  stage "4. supervised fine-tuning on the chains, specification removed (cada sft)"
  RESUME=(); [ -d "$RUN/sft" ] && RESUME=(--resume)
  "$CADA" sft --config "$CONFIGS/sft.json" model="$MODEL" data="$RUN/chains/chains.jsonl" output_dir="$RUN/sft" \
    "${F_SFT[@]}" "${RESUME[@]}"
fi
eval_beside sft

if ! done_file "$RUN/grpo/final/config.json"; then
  settle_evals
  stage "5. GRPO on the model's own reasoning (cada train)"
  RESUME=(); [ -d "$RUN/grpo" ] && RESUME=(--resume)
  "$CADA" train --config "$CONFIGS/grpo_cada.json" model="$RUN/sft/final" output_dir="$RUN/grpo" \
    rewards.rewards.3.model="$RM" "${F_GRPO[@]}" "${RESUME[@]}"
fi

for m in base sft grpo; do
  if [ -n "${EVAL_PID[$m]:-}" ]; then
    settle_eval "$m" wait
  elif ! done_file "$RUN/eval-$m/report.json"; then
    stage "6. eval: $m"
    run_eval "$m" || eval_failed "$m"
  fi
done

stage "7. report: base vs sft vs grpo ($SETTING specification)"
# Metric names and titles: $CONFIGS/report.env (REPORT_METRICS, REPORT_TITLE, ABLATION_TITLE;
# the eval config's judges name the metrics), else the tiny world's.
REPORT_METRICS="refusal_rate asr:placeholder_leak mean:format"; REPORT_TITLE="CADA on the tiny world"
[ -f "$CONFIGS/report.env" ] && . "$CONFIGS/report.env"
read -r -a METRICS <<< "$REPORT_METRICS"
"$CADA" compare base="$RUN/eval-base" sft="$RUN/eval-sft" grpo="$RUN/eval-grpo" --out "$RUN/report" \
  --metrics "${METRICS[@]}" --title "$REPORT_TITLE ($SETTING codes): base vs sft vs grpo"
echo "report: $RUN/report/compare.md and $RUN/report/compare.png"
