// The memory a training run needs on its device: estimated from the model's config.json and the
// run's config before any weight is loaded (printed when a trainer starts, and alone by
// `--memory-plan`), then the measured peak after the first step (kernels/device_memory.h),
// printed and written to metrics.jsonl as memory/*.
//
// Terms, with P parameters and T trainable ones (all of them for full fine-tuning, the adapters
// and modules_to_save under LoRA):
//   weights            P in float32 for full fine-tuning (the master weights); under LoRA the
//                      frozen base in base_dtype plus T in float32
//   autocast copies    bf16 copies of float32 weights that bf16 autocast keeps for a forward and
//                      its backward (only the head and one layer when checkpointed)
//   gradients          T x 4 bytes;  optimizer: T x 8 bytes (AdamW's two moments)
//   reference          GRPO's separate reference model (full fine-tuning, beta > 0), frozen dtype
//   rollout copy       GRPO's bf16 / fp16 copy of a float32 policy for generation
//   KV cache           2 x layers x kv_heads x head_dim x rows x tokens, kept by the rollout engine
//   activations        what the backward keeps per token of a micro-batch (activation_bytes_per_token)
//   logits             one chunk of the LM head (model/logprobs.h): logits, log-softmax, gradient
// Left out: the CUDA context and library workspaces (about 0.5-1 GB), allocator fragmentation,
// and short-lived temporaries; the measured peak includes them.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "cada/kernels/device_memory.h"
#include "cada/model/config.h"
#include "cada/train/trainable.h"

namespace cada::train {

struct MemoryPlanInput {
  model::ModelConfig model;          // the trained model's shape (a classifier for reward models)
  TrainableOptions trainable;
  std::string device = "cpu";
  bool autocast = false;             // bf16 autocast: activations in bf16
  int64_t micro_batch_rows = 1;      // sequences per forward / backward
  int64_t row_tokens = 1;            // tokens per sequence (the longest the config allows)
  bool lm_head = true;               // log-probs over the vocabulary (false for reward models)
  int64_t logits_chunk_elems = int64_t(1) << 25;  // model/logprobs.h's chunk
  // GRPO
  std::string reference_dtype;       // a separate reference model's dtype ("" = none)
  std::string rollout_dtype;         // a separate rollout copy's dtype ("" = none)
  int64_t kv_rows = 0, kv_tokens = 0;
  std::string kv_dtype = "float32";
};

struct MemoryItem {
  std::string name;                  // "weights", "gradients", ...
  double bytes = 0;
  std::string detail;                // "8.03B in bfloat16 + 167.8M in float32"
};

struct MemoryPlan {
  std::vector<MemoryItem> items;
  int64_t parameters = 0, trainable = 0;
  double total() const;
  double bytes(const std::string& name) const;  // 0 when absent
  std::string table() const;         // one line per item in GiB, then the total
  nlohmann::json to_json() const;    // {"parameters", "trainable", "total_bytes", "items": {name: bytes}}
};

MemoryPlan plan_memory(const MemoryPlanInput& in);

// The parameters LoRA adds to a model of this shape (every adapted projection: r x (in + out)),
// plus the modules it trains in full; 0 when lora.r is 0.
int64_t lora_trainable_parameters(const model::ModelConfig& m, const model::LoraConfig& lora);

// Bytes the backward keeps per token of one decoder layer, and of the whole stack (checkpointed:
// each layer's input, plus one layer recomputed at a time).
double layer_activation_bytes_per_token(const model::ModelConfig& m, int act_bytes);
double activation_bytes_per_token(const model::ModelConfig& m, const model::LoraConfig& lora, int act_bytes,
                                  bool checkpointing);

int dtype_bytes(const std::string& dtype);
// The device a plan is for ("cpu", "cuda", "cuda:N"), parsed without asking whether it is
// present: a plan for a GPU run may be printed on a machine without one.
c10::Device plan_device(const std::string& name);   // float32 4, bfloat16 / float16 2

// The peak after the first step beside the plan: one console line and the memory/* metrics
// (memory/peak_allocated_gib, memory/peak_reserved_gib, memory/plan_gib, memory/device_gib).
std::string describe_peak(const kernels::MemoryPeak& peak, const MemoryPlan& plan);
void add_peak_metrics(std::map<std::string, double>& m, const kernels::MemoryPeak& peak, const MemoryPlan& plan);

}  // namespace cada::train
