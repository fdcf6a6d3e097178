// LoRA adapter folders in PEFT's layout (model/lora.h):
//   adapter_config.json          peft_type LORA, r, lora_alpha, lora_dropout, use_rslora,
//                                target_modules, layers_to_transform, modules_to_save, task_type,
//                                base_model_name_or_path
//   adapter_model.safetensors    "base_model.model.<cada name>" for every adapter weight
//                                ("...q_proj.lora_A.weight") and every modules_to_save weight
//                                ("base_model.model.score.weight")
// so that peft.PeftModel.from_pretrained(base, folder) loads what cada saves, and cada loads what
// PEFT saves. Variants cada does not compute (DoRA, LoRA biases, per-module alpha patterns,
// fan_in_fan_out) are refused with one sentence naming the file and key; per-module ranks
// (rank_pattern) are read from the tensors' shapes.
#pragma once

#include <string>

#include "cada/model/loader.h"
#include "cada/model/lora.h"
#include "cada/model/transformer.h"

namespace cada::model {

constexpr const char* kAdapterConfigName = "adapter_config.json";
constexpr const char* kAdapterWeightsName = "adapter_model.safetensors";

// True when `dir` holds adapter_config.json (an adapter folder, not a full model).
bool is_adapter_folder(const std::string& dir);

// Writes the model's adapters (and modules_to_save) to dir, atomically per file; base_model is
// recorded as base_model_name_or_path (where `load_model(dir)` finds the base).
void save_adapter(TransformerImpl& model, const std::string& dir, const std::string& base_model);

// Attaches the adapters of folder `dir` to `model` (which has none) and loads their weights, in
// float32 on the model's device (PEFT's autocast_adapter_dtype). Returns the number of adapted
// layers.
int64_t load_adapter(TransformerImpl& model, const std::string& dir);

// Loads into an existing model's adapters (same configuration) the weights of folder dir: the
// adapter part of a training checkpoint.
void load_adapter_weights(TransformerImpl& model, const std::string& dir);

// The base model folder an adapter folder names: base_model_name_or_path as given, else relative
// to the adapter folder; `override_base` (non-empty) wins. Throws naming the key when it is
// missing or no such folder exists.
std::string adapter_base_model(const std::string& dir, const std::string& override_base = "");

// The configuration of the model an adapter folder loads as: its base's, turned into a sequence
// classifier for a SEQ_CLS adapter (with a score head) over a causal LM.
ModelConfig adapter_model_config(const std::string& dir);

// The base model with the adapter attached (what load_model does for an adapter folder).
Transformer load_model_with_adapter(const std::string& dir, const LoadOptions& opts);

}  // namespace cada::model
