#!/usr/bin/env bash
# Installs and builds cada, then runs the whole CADA pipeline on the built-in tiny default:
# pre-train the unsafe tiny base model, train a reward model, generate reasoning chains with the
# case-augmented specification in context, fine-tune on them without the specification, GRPO,
# evaluate base / SFT / GRPO on held-out prompts, and report (table + PNG).
# Outputs go to runs/quickstart/ (override with RUN_DIR); a stopped run continues where it was.
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$SECONDS
bash scripts/setup.sh
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
RUN=${RUN_DIR:-runs/quickstart}
T1=$SECONDS
bash scripts/pipeline.sh --setting cases --run "$RUN" "$@"
T2=$SECONDS
mins() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
echo "done in $(mins $((T2 - T0))) (setup $(mins $((T1 - T0))), pipeline $(mins $((T2 - T1))))"
echo "report: $RUN/report/compare.md, chart: $RUN/report/compare.png (and .svg)"
echo "training curves: $RUN/{base,rm,sft,grpo}/curves.png; TensorBoard: tensorboard --logdir $RUN"
