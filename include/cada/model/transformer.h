// Decoder-only transformer of the Llama family (Llama-2/3, Qwen2, Mistral, Qwen3, Gemma,
// Gemma-2), in libtorch.
//
// Parameter names equal the Hugging Face names ("model.layers.0.self_attn.q_proj.weight",
// "lm_head.weight", "score.weight"), so loading and saving is a name-for-name copy.
// Shapes: B batch, T new tokens, S = past + T keys, C hidden, H heads, Hk kv heads,
// D head_dim, V vocab.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "cada/kernels/packed.h"
#include "cada/model/config.h"
#include "cada/model/lora.h"

namespace cada::model {

// Key/value cache: per layer (B, Hk, capacity, D).
//  - allocate(): preallocated, written in place, for incremental decoding (no autograd).
//  - growing(): starts empty and grows by concatenation, so that keys and values stay in the
//    autograd graph: a shared prompt prefix computed once can be attended to, with gradients,
//    by many continuations (select_rows picks each continuation's prefix row).
struct KVCache {
  std::vector<at::Tensor> k, v;
  int64_t length = 0;     // positions already written
  int64_t capacity = 0;   // positions allocated (growing caches: == length)
  bool grows = false;

  // Allocates for `batch` sequences of up to `capacity` positions.
  static KVCache allocate(const ModelConfig& cfg, int64_t batch, int64_t capacity,
                          at::TensorOptions options);
  static KVCache growing(const ModelConfig& cfg);
  int64_t batch() const { return k.empty() ? 0 : k[0].size(0); }
  // Keeps the given batch rows, in that order (rows may repeat): e.g. dropping finished
  // sequences, or giving every continuation its prompt's keys and values. Differentiable.
  void select_rows(const at::Tensor& rows);
};

// Rotary tables for the configured scaling: inv_freq (D/2,) in float32.
at::Tensor rope_inv_freq(const ModelConfig& cfg);

class RMSNormImpl : public torch::nn::Module {
 public:
  // plus_one: Gemma's norm, x_normed * (1 + w) in float32 (w starts at 0), cast back at the end.
  RMSNormImpl(int64_t dim, double eps, bool plus_one = false);
  at::Tensor forward(const at::Tensor& x);  // (..., C) -> (..., C), statistics in float32
  at::Tensor weight;
  double eps;
  bool plus_one;
};
TORCH_MODULE(RMSNorm);

// Linear layers of one input packed as one weight for inference (kernels::PackedWeight): q/k/v
// and gate/up each become one product, the others (o, down, the LM head) one packed weight each,
// so a decoding step makes 4 product calls per layer on weights laid out for the CPU's kernel.
// The copy is rebuilt whenever a weight changes (an optimizer step bumps its version counter; a
// move to another device or dtype replaces its storage). Used on CPU float32 in inference mode.
// The copy costs memory, so only layers of up to max_bytes together are packed: the small models
// where the saving matters (16 MiB holds the gate/up of a hidden size of 1024 with 2048 MLP
// units); a large float32 model on CPU runs the plain products and keeps no second copy.
class PackedWeights {
 public:
  static constexpr int64_t kDefaultMaxBytes = int64_t{16} << 20;
  explicit PackedWeights(int64_t max_bytes = kDefaultMaxBytes) : max_bytes_(max_bytes) {}

  // The layers' weights packed as one (their outputs concatenated in order) and their biases
  // concatenated into *bias (undefined when no layer has one); null when they cannot be (some with
  // a bias and some without, not all CPU float32) or hold more than max_bytes together.
  const kernels::PackedWeight* get(std::initializer_list<const torch::nn::Linear*> layers, at::Tensor* bias);
  // The same for one bare weight (the LM head, tied or not).
  const kernels::PackedWeight* get(const at::Tensor& weight);

 private:
  const kernels::PackedWeight* get(const std::vector<at::Tensor>& weights, const std::vector<at::Tensor>& biases,
                                   at::Tensor* bias);
  int64_t max_bytes_;
  kernels::PackedWeight w_;
  at::Tensor b_;
  std::vector<std::pair<const void*, int64_t>> keys_;
};

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const ModelConfig& cfg);
  // x (B,T,C); cos/sin (B,T,D); bias (B,1,T,S) additive mask or undefined for plain causal.
  // Scores scaled by cfg.softmax_scale(); soft-capped layers (Gemma-2) take an explicit path
  // (SDPA cannot cap), the others SDPA, or the fused decode attention for one token.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                     const at::Tensor& bias, at::Tensor* cache_k, at::Tensor* cache_v, int64_t past,
                     bool grow = false);
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RMSNorm q_norm{nullptr}, k_norm{nullptr};  // Qwen3 only: over head_dim, before RoPE
  int64_t n_heads, n_kv_heads, head_dim;
  double scale, softcap;                     // softcap 0: none
  bool default_scale = true;                 // scale == head_dim^-0.5
  // Packed for inference (PackedWeights::get): q/k/v as one weight, and o.
  const kernels::PackedWeight* packed_qkv(at::Tensor* bias) { return qkv_.get({&q_proj, &k_proj, &v_proj}, bias); }
  const kernels::PackedWeight* packed_o(at::Tensor* bias) { return o_.get({&o_proj}, bias); }
  // LoRA adapters of the projections (model/lora.h); empty slots when none is attached.
  LoraSlot q_lora, k_lora, v_lora, o_lora;
  bool lora_active() const { return q_lora.active() || k_lora.active() || v_lora.active() || o_lora.active(); }

 private:
  PackedWeights qkv_, o_;
};
TORCH_MODULE(Attention);

class MLPImpl : public torch::nn::Module {
 public:
  explicit MLPImpl(const ModelConfig& cfg);
  at::Tensor forward(const at::Tensor& x);  // down(act(gate(x)) * up(x)), act = cfg.hidden_act
  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
  std::string act;
  // Packed for inference (PackedWeights::get): gate/up as one weight, and down.
  const kernels::PackedWeight* packed_gate_up(at::Tensor* bias) { return gate_up_.get({&gate_proj, &up_proj}, bias); }
  const kernels::PackedWeight* packed_down(at::Tensor* bias) { return down_.get({&down_proj}, bias); }
  LoraSlot gate_lora, up_lora, down_lora;  // LoRA adapters (model/lora.h)
  bool lora_active() const { return gate_lora.active() || up_lora.active() || down_lora.active(); }

 private:
  PackedWeights gate_up_, down_;
};
TORCH_MODULE(MLP);

class DecoderLayerImpl : public torch::nn::Module {
 public:
  explicit DecoderLayerImpl(const ModelConfig& cfg);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                     const at::Tensor& bias, at::Tensor* cache_k, at::Tensor* cache_v, int64_t past,
                     bool grow = false);
  // Llama: h = x + attn(input(x)); out = h + mlp(post_attention(h)).
  // Gemma-2 (sandwich norms): h = x + post_attention(attn(input(x)));
  //                           out = h + post_feedforward(mlp(pre_feedforward(h))).
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  RMSNorm pre_feedforward_layernorm{nullptr}, post_feedforward_layernorm{nullptr};  // Gemma-2 only
  Attention self_attn{nullptr};
  MLP mlp{nullptr};
  // The adapted projections of this layer by module name (q_proj, ..., down_proj).
  std::vector<std::pair<std::string, LoraSlot*>> lora_slots();
  std::vector<std::pair<std::string, torch::nn::Linear*>> projections();
};
TORCH_MODULE(DecoderLayer);

// The backbone ("model." prefix in HF names).
class BackboneImpl : public torch::nn::Module {
 public:
  explicit BackboneImpl(const ModelConfig& cfg);
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers;
  RMSNorm norm{nullptr};
};
TORCH_MODULE(Backbone);

// Inputs of one forward call.
struct ForwardInput {
  at::Tensor input_ids;     // (B,T) int64
  at::Tensor position_ids;  // (B,T) int64; undefined = past + arange(T)
  at::Tensor key_mask;      // (B,S) bool, true for real (non-padding) keys; undefined = all real
  KVCache* cache = nullptr; // appended to when given
  int64_t output_hidden_layer = -1;  // >= 0: also return hidden_states[L] (0 = embeddings)
};

struct ForwardOutput {
  at::Tensor hidden;        // (B,T,C) after the final norm
  at::Tensor layer_hidden;  // (B,T,C) hidden_states[L] when requested
};

// A causal LM (lm_head) or a sequence classifier (score head) on the same backbone.
class TransformerImpl : public torch::nn::Module {
 public:
  explicit TransformerImpl(const ModelConfig& cfg);

  ForwardOutput forward(const ForwardInput& in);
  // Output head: (..., C) -> (..., V) logits, or (..., num_labels) scores for classifiers.
  // Causal LMs with final_logit_softcapping (Gemma-2) return the capped logits: every caller
  // (log-probs, sampling, scoring) goes through here.
  at::Tensor head(const at::Tensor& hidden);
  // The weight of the LM head (the embedding matrix when tied), (V, C).
  at::Tensor lm_head_weight();

  const ModelConfig& config() const { return cfg_; }
  // Parameters in HF naming, tied lm_head omitted (as transformers saves it).
  std::vector<std::pair<std::string, at::Tensor>> hf_named_parameters();

  Backbone model{nullptr};
  torch::nn::Linear lm_head{nullptr};  // causal LMs, untied only
  torch::nn::Linear score{nullptr};    // sequence classifiers only

  // LoRA (model/lora.h): the attached adapters' configuration (r == 0: none) and the switch that
  // AdaptersOff flips. hf_named_parameters() leaves adapter weights out (model/peft_io.h saves them).
  LoraConfig lora;
  bool lora_enabled = true;
  bool has_lora() const { return lora.enabled(); }
  // Activation checkpointing (model/checkpointing.h): when on, training forwards without a KV
  // cache keep only each decoder layer's input and recompute the layer in the backward pass.
  bool gradient_checkpointing = false;

 private:
  // A decoding step through all layers as one fused call (kernels::decode_step) where it applies;
  // undefined otherwise.
  at::Tensor fused_decode_step(const at::Tensor& h, const at::Tensor& cos, const at::Tensor& sin,
                               const at::Tensor& bias, KVCache& cache, int64_t past);

  ModelConfig cfg_;
  at::Tensor inv_freq_;  // (D/2,) float32
  PackedWeights head_;   // the LM head for inference
};
TORCH_MODULE(Transformer);

// Builds the additive attention bias (B,1,T,S) for new tokens at positions past..past+T-1:
// key j is visible to query i when j <= past + i and key_mask[j]; the diagonal always is, so
// that padding rows stay finite; window > 0 also hides keys window or more positions back
// (Mistral's sliding window). Returns undefined when plain causal attention suffices.
at::Tensor make_attention_bias(const at::Tensor& key_mask, int64_t B, int64_t T, int64_t past,
                               at::ScalarType dtype, const at::Device& device, int64_t window = 0);

}  // namespace cada::model
