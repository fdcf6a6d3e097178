// Optimizer and learning-rate schedule shared by the trainers (SFT, reward model, GRPO).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>
#include "cada/util/config.h"

namespace cada::train {

struct OptimOptions {
  double lr = 1e-6;                  // peak learning rate
  double weight_decay = 0.0;         // AdamW decoupled weight decay
  double beta1 = 0.9, beta2 = 0.999; // Adam moments
  double eps = 1e-8;
  double max_grad_norm = 1.0;        // clip the global gradient norm; 0 = off
  std::string schedule = "constant"; // constant | linear | cosine (after warm-up)
  int64_t warmup_steps = 0;          // linear warm-up from 0
  double min_lr_ratio = 0.0;         // floor of linear / cosine decay, as a fraction of lr

  template <class V> void visit(V& v) {
    v("lr", lr, "peak learning rate", config::Range::above(0));
    v("weight_decay", weight_decay, "AdamW decoupled weight decay", config::Range::at_least(0));
    v("beta1", beta1, "Adam first-moment decay", config::Range::half_open(0, 1));
    v("beta2", beta2, "Adam second-moment decay", config::Range::half_open(0, 1));
    v("eps", eps, "Adam epsilon", config::Range::above(0));
    v("max_grad_norm", max_grad_norm, "clip the global gradient norm (0 = off)", config::Range::at_least(0));
    v("schedule", schedule, "constant | linear | cosine after warm-up", {"constant", "linear", "cosine"});
    v("warmup_steps", warmup_steps, "linear warm-up steps from 0", config::Range::at_least(0));
    v("min_lr_ratio", min_lr_ratio, "floor of the decay as a fraction of lr", config::Range::closed(0, 1));
  }
};

// Learning rate at optimizer step `step` (0-based) of `total` steps.
double lr_at(const OptimOptions& o, int64_t step, int64_t total);

std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<at::Tensor>& params, const OptimOptions& o);
void set_lr(torch::optim::Optimizer& opt, double lr);

// AdamW state as files any tool can read: <dir>/optimizer.safetensors holds each parameter's
// moments as "<parameter name>.exp_avg" / ".exp_avg_sq" (/ ".max_exp_avg_sq" with amsgrad), and
// <dir>/optimizer.json the format, the param groups' hyper-parameters with their parameters'
// names, and each parameter's step count. Both are written atomically (io/files.h): a full disk
// is one error naming the file. `names` are the optimizer's parameters by name (the model's
// named_parameters()); loading checks that the saved parameters and shapes match them.
void save_optimizer_state(const std::string& dir, torch::optim::Optimizer& opt,
                          const std::vector<std::pair<std::string, at::Tensor>>& names);
void load_optimizer_state(const std::string& dir, torch::optim::Optimizer& opt,
                          const std::vector<std::pair<std::string, at::Tensor>>& names);

// Clips the gradients' global L2 norm to max_norm (when > 0); returns the norm before clipping.
double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm);

}  // namespace cada::train
