// The model a trainer updates: which weights train, in what dtype, and how activations are kept.
//
//   lora.r = 0   every weight trains, float32 master weights (the default);
//   lora.r > 0   LoRA adapters (model/lora.h) train in float32; the frozen base is held in
//                base_dtype (auto: bfloat16 on CUDA, float32 on CPU), so an 8B base costs 16 GB
//                instead of 32 GB plus 64 GB of gradients and AdamW moments. Checkpoints and the
//                final model are adapter folders in PEFT's layout (model/peft_io.h) that name the
//                base folder; `cada merge-adapter` folds them into a plain model.
//   gradient_checkpointing   each decoder layer's activations are recomputed in the backward
//                pass (model/checkpointing.h).
// A model folder that is itself an adapter folder continues training its adapters when lora.r > 0
// (the config's rank and targets are then unused), or is merged first for full fine-tuning.
#pragma once

#include <string>
#include <vector>

#include "cada/model/lora.h"
#include "cada/model/transformer.h"
#include "cada/util/config.h"

namespace cada::train {

struct TrainableOptions {
  model::LoraConfig lora;
  bool gradient_checkpointing = false;
  std::string base_dtype = "auto";   // frozen weights (LoRA base, GRPO reference): auto | float32 | bfloat16 | float16
  template <class V> void visit(V& v) {
    v.section("lora", lora, "LoRA adapters (r = 0: full fine-tuning)");
    v("gradient_checkpointing", gradient_checkpointing,
      "recompute each decoder layer in the backward pass instead of keeping its activations");
    v("base_dtype", base_dtype,
      "dtype of frozen weights: the base under LoRA, GRPO's separate reference model (auto: bfloat16 on CUDA, float32 on CPU)",
      {"auto", "float32", "bfloat16", "float16"});
  }
};

// The dtype of weights that do not train: base_dtype, where auto is bfloat16 on CUDA and float32
// elsewhere.
std::string frozen_weights_dtype(const TrainableOptions& o, const c10::Device& device);
// The dtype the trained model's weights are loaded in: float32 without LoRA (master weights),
// else the frozen one.
std::string base_weights_dtype(const TrainableOptions& o, const c10::Device& device);

// Loads `model_dir` on `device` for training per `o` (adapters attached, or continued from an
// adapter folder; checkpointing set) in training mode.
model::Transformer load_trainable(const std::string& model_dir, const std::string& device, const TrainableOptions& o);

// Prepares an already built model (the reward model's classifier) the same way: attaches the
// adapters (with the score head in modules_to_save) and sets checkpointing.
void make_trainable(model::TransformerImpl& model, const TrainableOptions& o, const std::string& base_dir);

// The parameters the optimizer updates (requires_grad), in named_parameters order.
std::vector<at::Tensor> trainable_parameters(model::TransformerImpl& model);
// One line: "LoRA r=64 on 224 layers: 167.8M of 8.2B parameters train (2.0%)" / "all 1.5B parameters train".
std::string describe_trainable(model::TransformerImpl& model);

}  // namespace cada::train
