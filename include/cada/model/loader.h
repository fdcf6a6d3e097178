// Loading and saving models in the Hugging Face folder layout (config.json +
// model.safetensors or sharded model-*.safetensors with model.safetensors.index.json).
#pragma once

#include <string>

#include "cada/model/transformer.h"

namespace cada::model {

struct LoadOptions {
  std::string device = "cpu";   // cpu, cuda, cuda:N
  std::string dtype = "auto";   // auto (checkpoint dtype on GPU, float32 on CPU), float32, bfloat16, float16
  std::string base_model = "";  // adapter folders: the base model (default: their base_model_name_or_path)
};

// "float32" | "fp32" | "bfloat16" | "bf16" | "float16" | "fp16" -> scalar type; error lists the valid names.
at::ScalarType parse_dtype(const std::string& name);
std::string dtype_to_hf(at::ScalarType t);  // "float32", "bfloat16", "float16"
// "cpu" | "cuda" | "cuda:N"; plain "cuda" is cuda:LOCAL_RANK (mod the device count) so that the
// processes of a multi-process launch each take their own GPU (cuda:0 in a single process).
at::Device parse_device(const std::string& name);

// Reads config.json and the weights, memory-mapped, converting to the requested dtype and
// device tensor by tensor. Missing tensors, shapes that contradict the config and malformed
// files are refused with one sentence naming the file and the problem. A LoRA adapter folder
// (adapter_config.json, model/peft_io.h) loads as its base model with the adapters attached.
Transformer load_model(const std::string& dir, const LoadOptions& opts = {});

// A causal LM folder loaded as a sequence classifier with a fresh, zero score head of
// num_labels outputs (transformers' AutoModelForSequenceClassification on a causal checkpoint);
// pad_token_id is set to `pad_id` when the config has none.
Transformer load_as_classifier(const std::string& dir, int64_t num_labels, int64_t pad_id, const LoadOptions& opts = {});

// Writes config.json and model.safetensors (or shards above max_shard_bytes) so that
// transformers and vLLM load the result; dtype is the on-disk dtype. Atomic per file.
void save_model(Transformer& model, const std::string& dir, at::ScalarType dtype,
                size_t max_shard_bytes = size_t(5) << 30);

// Fresh weights as transformers initialises them: normal(0, std) for linear and embedding
// weights, zero biases, unit norms (Gemma: zero weights, as its norms scale by 1 + w).
// Deterministic for a seed.
void init_weights(Transformer& model, uint64_t seed, double std = 0.02);

// Copies tokenizer.json / tokenizer.model / tokenizer_config.json / special_tokens_map.json /
// generation_config.json from src to dst when present.
void copy_tokenizer_files(const std::string& src_dir, const std::string& dst_dir);

// Sets libtorch's intra-op threads: `requested` when > 0, else $CADA_NUM_THREADS, else the
// cores this process may run on divided by the processes of a multi-process launch on this
// node (LOCAL_WORLD_SIZE and the like, cada/util/launch.h). Returns the count used.
int configure_threads(int requested = 0);

}  // namespace cada::model
