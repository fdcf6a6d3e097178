// Model configuration, read from a Hugging Face config.json.
//
// Covers the Llama family of decoder-only transformers: Llama-2/3 (rope_scaling "linear"
// and "llama3"), Qwen2/Qwen2.5 (bias on q/k/v), Mistral (GQA, sliding window), Qwen3
// (per-head q/k RMSNorm), Gemma (GeGLU, scaled embeddings, x * (1 + w) norms) and Gemma-2
// (Gemma plus post-attention / post-MLP norms, logit soft-capping, alternating sliding-window
// layers). Unknown architectures and unsupported options are refused with one sentence naming
// the file and the key.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace cada::model {

struct RopeScaling {
  std::string type;                          // "", "linear" or "llama3"
  double factor = 1.0;                       // position divisor (linear) / low-frequency divisor (llama3)
  double low_freq_factor = 1.0;              // llama3 only
  double high_freq_factor = 4.0;             // llama3 only
  int64_t original_max_position_embeddings = 8192;  // llama3 only
};

struct ModelConfig {
  std::string model_type = "llama";          // llama | qwen2 | mistral | qwen3 | gemma | gemma2
  std::string architecture = "LlamaForCausalLM";  // first entry of "architectures"
  int64_t vocab_size = 32000;
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 11008;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 32;          // GQA when < num_attention_heads
  int64_t head_dim = 128;                    // hidden_size / heads unless given
  int64_t max_position_embeddings = 4096;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;               // bias on q/k/v/o (llama); Qwen2: q/k/v only
  bool o_proj_bias = false;
  bool mlp_bias = false;
  std::string torch_dtype = "float32";       // dtype the checkpoint was saved in
  std::optional<int64_t> sliding_window;     // Mistral; attention is full up to this length
  std::vector<int64_t> layer_windows;        // Qwen3 / Gemma-2, per layer: keys this many positions
                                             // back and more are hidden on "sliding_attention"
                                             // layers; 0 = full. Empty: every layer uses
                                             // sliding_window (Mistral) or none (window()).
  std::string hidden_act = "silu";           // silu | gelu_pytorch_tanh (Gemma) | gelu (exact)
  bool qk_norm = false;                      // Qwen3: RMSNorm over head_dim on q and k before RoPE
  bool norm_plus_one = false;                // Gemma: norms compute x_normed * (1 + w) in float32
  bool scale_embeddings = false;             // Gemma: embeddings times sqrt(hidden_size) in the model dtype
  bool sandwich_norms = false;               // Gemma-2: post-attention and pre/post-feedforward norms
  double attention_scale = 0;                // softmax scale of q.k: head_dim^-0.5 or Gemma-2's
                                             // query_pre_attn_scalar^-0.5
  double attn_logit_softcapping = 0;         // > 0: scores = cap * tanh(scores / cap) before the mask
  double final_logit_softcapping = 0;        // > 0: logits = cap * tanh(logits / cap)
  std::vector<int64_t> eos_token_ids;        // from config.json (int or list)
  std::optional<int64_t> bos_token_id;
  std::optional<int64_t> pad_token_id;
  int64_t num_labels = 0;                    // > 0 for *ForSequenceClassification
  nlohmann::json raw;                        // the file as read, re-saved with updates

  // Parses and validates; `source` names the file in error messages.
  static ModelConfig from_json(const nlohmann::json& j, const std::string& source = "config.json");
  // A LoRA adapter folder (model/peft_io.h) has its base model's configuration, as a sequence
  // classifier for a SEQ_CLS adapter over a causal LM.
  static ModelConfig load(const std::string& model_dir);
  // This causal LM's configuration as a sequence classifier with num_labels outputs
  // (AutoModelForSequenceClassification on a causal checkpoint); pad_token_id = pad_id when unset.
  ModelConfig as_classifier(int64_t num_labels, int64_t pad_id) const;
  // config.json content for saving: the original keys plus updated dtype and architecture.
  nlohmann::json to_json() const;

  int64_t num_parameters() const;
  // The plain Llama-family layer (SiLU MLP, pre-norms only, no q/k norm, head_dim^-0.5 scale, no
  // soft-capping, one window for all layers): what the fused CPU decode step
  // (kernels::decode_step) and the continuous engine's decoding slots compute. Other configs run
  // the model's own forward (the static engine).
  bool plain_llama_layers() const;
  // Softmax scale of q.k (attention_scale, or head_dim^-0.5 when unset).
  double softmax_scale() const;
  // Window of a layer (0 = full attention).
  int64_t window(int64_t layer) const;
  // The smallest window of any layer, 0 when every layer attends fully.
  int64_t min_window() const;            // parameters the model holds (tied counted once)
  bool is_sequence_classifier() const { return num_labels > 0; }
};

}  // namespace cada::model
