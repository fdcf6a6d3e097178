#!/usr/bin/env bash
# The CADA paper's ablation: explicit code-like rules vs simple codes plus cases (precedents).
# Both settings run the same pipeline (scripts/pipeline.sh) from the same base model and reward
# model, with the same seeds, prompts and budgets; only the specification in the chains'
# context differs. Both are evaluated on the same held-out prompts and compared side by side:
# refusal of harmful prompts, over-refusal on benign and borderline prompts (benign requests
# that look harmful), placeholder leaks (attack success) and the reasoning format.
#
#   bash scripts/ablate_codes.sh                         # tiny default (13 min on 2 AVX2 cores, float32)
#   bash scripts/ablate_codes.sh --run runs/ablate-2 --fast
#   bash scripts/ablate_codes.sh --configs configs/gpu/cada --model /models/Qwen2.5-1.5B-Instruct --rm /models/rm
#
# Options: --configs D, --run D (default runs/ablate), --model D, --rm D, --fast (as pipeline.sh).
# Output: RUN/explicit/, RUN/cases/ (each a full pipeline run) and RUN/report/compare.{md,json,png}.
set -euo pipefail
cd "$(dirname "$0")/.."
CADA=${CADA:-${BUILD_DIR:-build}/bin/cada}
RUN=runs/ablate; PASS=(); MODEL=""; RM=""; CONFIGS=configs/tiny
while [ $# -gt 0 ]; do
  case "$1" in
    --run) RUN=$2; shift 2;;
    --configs) CONFIGS=$2; PASS+=(--configs "$2"); shift 2;;
    --model) MODEL=$2; shift 2;;
    --rm) RM=$2; shift 2;;
    --fast) PASS+=(--fast); shift;;
    -h|--help) sed -n '2,15p' "$0"; exit 0;;
    *) echo "ablate_codes.sh: unknown option '$1' (see --help)" >&2; exit 2;;
  esac
done

# The case-augmented run first; it builds the base model and reward model (unless given) that
# the explicit run then shares.
ARGS=(); [ -n "$MODEL" ] && ARGS+=(--model "$MODEL"); [ -n "$RM" ] && ARGS+=(--rm "$RM")
bash scripts/pipeline.sh --setting cases --run "$RUN/cases" "${PASS[@]}" "${ARGS[@]}"
MODEL=${MODEL:-$RUN/cases/base/final}
RM=${RM:-$RUN/cases/rm/final}
bash scripts/pipeline.sh --setting explicit --run "$RUN/explicit" --model "$MODEL" --rm "$RM" "${PASS[@]}"

# Metric names and title: <configs>/report.env (as scripts/pipeline.sh), else the tiny world's.
REPORT_METRICS="refusal_rate asr:placeholder_leak mean:format"
ABLATION_TITLE="explicit codes vs case-augmented codes (tiny world)"
[ -f "$CONFIGS/report.env" ] && . "$CONFIGS/report.env"
read -r -a METRICS <<< "$REPORT_METRICS"

printf '\n== explicit codes vs case-augmented codes (same base, seeds and budget)\n'
"$CADA" compare base="$RUN/cases/eval-base" \
  explicit-sft="$RUN/explicit/eval-sft" cases-sft="$RUN/cases/eval-sft" \
  explicit-grpo="$RUN/explicit/eval-grpo" cases-grpo="$RUN/cases/eval-grpo" \
  --out "$RUN/report" --metrics "${METRICS[@]}" --title "$ABLATION_TITLE"
for s in explicit cases; do
  printf '%-9s %s\n' "$s" "$(grep -o '"\(chains\|samples\)": *[0-9]*' "$RUN/$s/chains/summary.json" | tr '\n' ' ')"
done
echo "report: $RUN/report/compare.md and $RUN/report/compare.png"
