// LoRA adapters (Hu et al. 2021) on the linear layers of a Transformer, in PEFT's conventions:
//
//   y = W x + b + scaling * B(A(dropout(x))),   A (r, in), B (out, r),
//   scaling = alpha / r, or alpha / sqrt(r) with rsLoRA.
//
// A starts as nn.Linear's default (Kaiming-uniform, a = sqrt(5)) and B at zero, so a fresh
// adapter changes nothing. The adapter weights are registered on the adapted linear module as
// children "lora_A" and "lora_B", so their names are PEFT's without the adapter name:
// "model.layers.0.self_attn.q_proj.lora_A.weight". On disk (model/peft_io.h) they carry PEFT's
// "base_model.model." prefix, so peft.PeftModel.from_pretrained loads cada's adapters and cada
// loads PEFT's.
//
// Attaching adapters freezes every other parameter (requires_grad false) except the modules
// listed in modules_to_save (the score head of a reward model). The adapter computes in its own
// dtype (float32 master weights next to a bf16 or fp16 base) and casts its output back, as PEFT.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "cada/util/config.h"

namespace cada::model {

class TransformerImpl;

// The linear layers an adapter may target, by their module name.
const std::vector<std::string>& lora_target_names();  // q_proj k_proj v_proj o_proj gate_proj up_proj down_proj

struct LoraConfig {
  int64_t r = 0;                 // rank; 0 = no adapters (full fine-tuning)
  double alpha = 16;             // lora_alpha
  double dropout = 0;            // lora_dropout, on the adapter's input during training
  bool rslora = false;           // scaling alpha / sqrt(r) instead of alpha / r
  // Module names (q_proj, ..., down_proj) or ["all-linear"] (every projection of every layer;
  // never the LM head, as PEFT).
  std::vector<std::string> target_modules{"all-linear"};
  std::vector<int64_t> layers;   // PEFT's layers_to_transform: adapt only these layers (empty = all)
  std::vector<std::string> modules_to_save;  // extra fully trained modules: "score" (reward models)
  uint64_t seed = 0;             // initialisation of A
  std::string base_model;        // set once attached: the base model's folder (not a config key)

  bool enabled() const { return r > 0; }
  double scaling() const;
  // The target names with "all-linear" expanded; throws naming `where` for an unknown name.
  std::vector<std::string> targets(const std::string& where = "lora.target_modules") const;

  template <class V> void visit(V& v) {
    v("r", r, "LoRA rank (0 = no adapters: every weight is trained)", config::Range::at_least(0));
    v("alpha", alpha, "lora_alpha: the adapter's output is scaled by alpha / r (alpha / sqrt(r) with rslora)",
      config::Range::above(0));
    v("dropout", dropout, "dropout on the adapter's input while training", config::Range::half_open(0, 1));
    v("rslora", rslora, "rank-stabilised scaling alpha / sqrt(r)");
    v("target_modules", target_modules,
      "adapted linear layers: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, or all-linear");
    v("layers", layers, "adapt only these decoder layers (empty = all), PEFT's layers_to_transform");
    v("modules_to_save", modules_to_save, "modules trained in full beside the adapters (score: a reward model's head)");
    v("seed", seed, "seed of the adapters' initial weights");
  }
};

// One adapted linear layer: the adapter's modules (registered under the base linear module) and
// how they apply. Held by the attention and MLP modules next to their projections.
struct LoraSlot {
  torch::nn::Linear A{nullptr}, B{nullptr};
  double scaling = 0, dropout = 0;
  const bool* enabled = nullptr;   // the model's switch (TransformerImpl::lora_enabled)
  bool active() const { return A && *enabled; }
  // scaling * B(A(dropout(x))), in the adapter's dtype, cast to out_dtype. x (..., in) -> (..., out)
  at::Tensor delta(const at::Tensor& x, at::ScalarType out_dtype) const;
};

// Adds adapters per cfg to `model` (which must have none yet) and freezes the rest. A is drawn
// from a generator seeded with cfg.seed, B is zero. Returns the number of adapted layers; throws
// when cfg matches none.
int64_t attach_lora(TransformerImpl& model, const LoraConfig& cfg);

// One adapter of rank r on projection `proj` of decoder layer `layer`, A drawn from `gen` (or
// zero when gen is null), B zero, in float32 on the base weight's device. Used by attach_lora and
// by the adapter loader (model/peft_io.h), which then sets model.lora itself.
void attach_lora_slot(TransformerImpl& model, int64_t layer, const std::string& proj, int64_t r, double scaling,
                      double dropout, at::Generator* gen);
// Freezes every parameter except the top-level modules named in modules_to_save (score, lm_head).
void freeze_for_lora(TransformerImpl& model, const std::vector<std::string>& modules_to_save);

// The adapter and modules_to_save parameters, in cada's names (order of named_parameters).
std::vector<std::pair<std::string, at::Tensor>> lora_named_parameters(TransformerImpl& model);
// True for the name of an adapter weight ("...lora_A.weight" / "...lora_B.weight").
bool is_lora_parameter_name(const std::string& name);

// Adapters switched off for a scope: the base model alone (GRPO's reference, with no second copy
// of the weights). Restores the previous state on exit.
class AdaptersOff {
 public:
  explicit AdaptersOff(TransformerImpl& model);
  ~AdaptersOff();
  AdaptersOff(const AdaptersOff&) = delete;
  AdaptersOff& operator=(const AdaptersOff&) = delete;

 private:
  TransformerImpl& model_;
  bool was_;
};

// Folds every adapter into its base weight (W += scaling * B A, in float32, cast back to W's
// dtype) and removes the adapters: the result is a plain model that save_model writes as an HF
// folder. modules_to_save need no merging (they are already the model's modules).
void merge_lora(TransformerImpl& model);

}  // namespace cada::model
