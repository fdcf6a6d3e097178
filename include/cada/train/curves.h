// Training curves of a run: <run_dir>/curves.png and curves.svg drawn from metrics.jsonl
// (util/chart.h), one panel per quantity a researcher watches, against the step:
//   GRPO   reward, KL, loss, completion length (+ entropy, clip ratio when logged)
//   SFT /  loss with the held-out loss beside it, learning rate, gradient norm
//   pretrain
//   RM     loss, accuracy with the held-out accuracy, gradient norm
// Trainers redraw it at each checkpoint and at the end, so a resumed run's chart covers every step.
#pragma once

#include <string>
#include <vector>

#include "cada/util/chart.h"

namespace cada::train {

// The panels for the metrics rows of a metrics.jsonl (JSON objects with "step"); panels whose
// quantity was never logged are left out.
std::vector<chart::Panel> curve_panels(const std::string& metrics_jsonl_text);

// Draws <run_dir>/curves.{png,svg} from <run_dir>/metrics.jsonl. A run without metrics writes
// nothing. Never throws: a chart that cannot be drawn is a warning, not a failed run.
void write_training_curves(const std::string& run_dir);

}  // namespace cada::train
