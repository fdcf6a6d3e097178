#!/usr/bin/env bash
# Installs and builds cada, then runs the whole CADA pipeline on the built-in tiny default:
# pre-train the unsafe tiny base model, train a reward model, generate reasoning chains with the
# case-augmented specification in context, fine-tune on them without the specification, GRPO,
# evaluate base / SFT / GRPO on held-out prompts, and report (table + PNG).
# Outputs go to runs/quickstart/ (override with RUN_DIR); a stopped run continues where it was.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
RUN=${RUN_DIR:-runs/quickstart}
bash scripts/pipeline.sh --setting cases --run "$RUN" "$@"
echo "done: outputs in $RUN/ (TensorBoard: tensorboard --logdir $RUN)"
