#include "cada/model/transformer.h"

#include "cada/util/memory.h"

#include <c10/core/InferenceMode.h>

#include <cmath>
#include <limits>
#include <map>

#include "cada/kernels/decode_step.h"
#include "cada/model/checkpointing.h"
#include "cada/kernels/fused.h"
#include "cada/kernels/gemm.h"
#include "cada/util/error.h"

namespace cada::model {

namespace F = torch::nn::functional;

// ---------------------------------------------------------------- KV cache

KVCache KVCache::allocate(const ModelConfig& cfg, int64_t batch, int64_t capacity,
                          at::TensorOptions options) {
  KVCache c;
  c.capacity = capacity;
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    c.k.push_back(at::empty({batch, cfg.num_key_value_heads, capacity, cfg.head_dim}, options));
    c.v.push_back(at::empty({batch, cfg.num_key_value_heads, capacity, cfg.head_dim}, options));
  }
  return c;
}

KVCache KVCache::growing(const ModelConfig& cfg) {
  KVCache c;
  c.grows = true;
  c.k.resize(cfg.num_hidden_layers);
  c.v.resize(cfg.num_hidden_layers);
  return c;
}

void KVCache::select_rows(const at::Tensor& rows) {
  for (auto& t : k) t = t.index_select(0, rows);
  for (auto& t : v) t = t.index_select(0, rows);
}

// ---------------------------------------------------------------- rotary embeddings

at::Tensor rope_inv_freq(const ModelConfig& cfg) {
  const int64_t D = cfg.head_dim;
  // Same arithmetic as transformers: base ** (arange(0, D, 2).float() / D) in float32.
  auto exponent = at::arange(0, D, 2, at::kLong).to(at::kFloat) / static_cast<float>(D);
  auto inv_freq = 1.0 / at::pow(at::scalar_tensor(cfg.rope_theta, at::kFloat), exponent);
  const auto& rs = cfg.rope_scaling;
  if (rs.type == "linear") {
    inv_freq = inv_freq / rs.factor;
  } else if (rs.type == "llama3") {
    const double old_len = static_cast<double>(rs.original_max_position_embeddings);
    const double low_wavelen = old_len / rs.low_freq_factor;
    const double high_wavelen = old_len / rs.high_freq_factor;
    auto wavelen = 2 * M_PI / inv_freq;
    auto scaled = at::where(wavelen > low_wavelen, inv_freq / rs.factor, inv_freq);
    auto smooth = (old_len / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
    auto smoothed = (1 - smooth) * scaled / rs.factor + smooth * scaled;
    auto medium = at::logical_not(wavelen < high_wavelen).logical_and(at::logical_not(wavelen > low_wavelen));
    inv_freq = at::where(medium, smoothed, scaled);
  }
  return inv_freq.to(at::kFloat);
}

// ---------------------------------------------------------------- layers

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_, bool plus_one_) : eps(eps_), plus_one(plus_one_) {
  weight = register_parameter("weight", plus_one ? at::zeros({dim}) : at::ones({dim}));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) {
  if (!plus_one) return kernels::rms_norm(x, weight, eps);
  // Gemma: normalised and scaled by (1 + w) in float32, cast back once at the end.
  auto xf = x.to(at::kFloat);
  auto normed = xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return (normed * (1.0 + weight.to(at::kFloat))).to(x.scalar_type());
}

static torch::nn::Linear linear(int64_t in, int64_t out, bool bias) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
}

// Every projection runs through kernels::linear (the faster CPU GEMM where there is one).
static at::Tensor proj(const torch::nn::Linear& l, const at::Tensor& x) {
  return kernels::linear(x, l->weight, l->bias);
}

// The same plus the layer's LoRA adapter when one is attached and switched on.
static at::Tensor proj(const torch::nn::Linear& l, const LoraSlot& lora, const at::Tensor& x) {
  auto y = proj(l, x);
  return lora.active() ? y + lora.delta(x, y.scalar_type()) : y;
}

const kernels::PackedWeight* PackedWeights::get(const std::vector<at::Tensor>& weights,
                                                const std::vector<at::Tensor>& biases, at::Tensor* bias) {
  std::vector<std::pair<const void*, int64_t>> keys;
  int64_t bytes = 0;
  for (const auto& w : weights) {
    if (!w.device().is_cpu() || w.scalar_type() != at::kFloat || w.dim() != 2) return nullptr;
    bytes += static_cast<int64_t>(w.nbytes());
    keys.emplace_back(w.data_ptr(), w._version());
  }
  for (const auto& b : biases) {
    if (b.defined() != biases[0].defined() || (b.defined() && b.scalar_type() != at::kFloat)) return nullptr;
    if (b.defined()) keys.emplace_back(b.data_ptr(), b._version());
  }
  if (bytes > max_bytes_) {  // too large to keep a second copy of
    w_ = kernels::PackedWeight();
    b_ = at::Tensor();
    keys_.clear();
    return nullptr;
  }
  if (keys != keys_) {
    w_ = kernels::PackedWeight::pack(weights);
    if (!w_.defined()) return nullptr;
    std::vector<at::Tensor> bs;
    for (const auto& b : biases)
      if (b.defined()) bs.push_back(b.detach());
    b_ = bs.empty() ? at::Tensor() : bs.size() == 1 ? bs[0] : at::cat(bs, 0);
    keys_ = std::move(keys);
  }
  if (bias) *bias = b_;
  return &w_;
}

const kernels::PackedWeight* PackedWeights::get(std::initializer_list<const torch::nn::Linear*> layers,
                                                at::Tensor* bias) {
  std::vector<at::Tensor> ws, bs;
  for (const auto* l : layers) {
    ws.push_back((*l)->weight);
    bs.push_back((*l)->bias);
  }
  return get(ws, bs, bias);
}

const kernels::PackedWeight* PackedWeights::get(const at::Tensor& weight) { return get({weight}, {at::Tensor()}, nullptr); }

// Inference on CPU float32: packed weights, the projections of one input as one product
// (PackedWeights).
static bool fuse_projections(const at::Tensor& x) {
  return c10::InferenceMode::is_enabled() && x.device().is_cpu() && x.scalar_type() == at::kFloat;
}

AttentionImpl::AttentionImpl(const ModelConfig& cfg)
    : n_heads(cfg.num_attention_heads), n_kv_heads(cfg.num_key_value_heads), head_dim(cfg.head_dim),
      scale(cfg.softmax_scale()), softcap(cfg.attn_logit_softcapping) {
  const int64_t C = cfg.hidden_size;
  default_scale = std::abs(scale * std::sqrt(static_cast<double>(head_dim)) - 1.0) < 1e-12;
  q_proj = register_module("q_proj", linear(C, n_heads * head_dim, cfg.attention_bias));
  k_proj = register_module("k_proj", linear(C, n_kv_heads * head_dim, cfg.attention_bias));
  v_proj = register_module("v_proj", linear(C, n_kv_heads * head_dim, cfg.attention_bias));
  o_proj = register_module("o_proj", linear(n_heads * head_dim, C, cfg.o_proj_bias));
  if (cfg.qk_norm) {
    q_norm = register_module("q_norm", RMSNorm(head_dim, cfg.rms_norm_eps));
    k_norm = register_module("k_norm", RMSNorm(head_dim, cfg.rms_norm_eps));
  }
}

// softmax(cap * tanh(q k^T * scale / cap) + bias) v, the soft-capped scores that SDPA cannot
// compute, as transformers' eager attention: q (B,H,T,D), k/v (B,H,S,D), bias (B,1,T,S) or
// undefined for plain causal. Softmax in float32, cast back to the model dtype. -> (B,H,T,D)
static at::Tensor capped_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                   const at::Tensor& bias, double scale, double cap) {
  const int64_t T = q.size(2), S = k.size(2);
  auto scores = at::matmul(q, k.transpose(2, 3)) * scale;  // (B,H,T,S)
  scores = at::tanh(scores / cap) * cap;
  if (bias.defined()) {
    scores = scores + bias;
  } else if (T > 1) {  // plain causal: query i sees keys up to S - T + i
    auto hidden = at::ones({T, S}, q.options().dtype(at::kBool)).triu(S - T + 1);
    scores = scores.masked_fill(hidden, -std::numeric_limits<float>::infinity());
  }
  return at::matmul(at::softmax(scores, -1, at::kFloat).to(q.scalar_type()), v);
}

at::Tensor AttentionImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                  const at::Tensor& bias, at::Tensor* cache_k, at::Tensor* cache_v,
                                  int64_t past, bool grow) {
  const int64_t B = x.size(0), T = x.size(1);
  at::Tensor xq, xk, xv, b;
  const bool packed = fuse_projections(x) && !lora_active();  // the packed copies hold the base weights only
  if (const kernels::PackedWeight* w = packed ? qkv_.get({&q_proj, &k_proj, &v_proj}, &b) : nullptr) {
    auto parts = kernels::linear(x, *w, b).split_with_sizes({n_heads * head_dim, n_kv_heads * head_dim,
                                                             n_kv_heads * head_dim}, -1);
    xq = parts[0], xk = parts[1], xv = parts[2];
  } else {
    xq = proj(q_proj, q_lora, x), xk = proj(k_proj, k_lora, x), xv = proj(v_proj, v_lora, x);
  }
  auto q = xq.view({B, T, n_heads, head_dim}), k = xk.view({B, T, n_kv_heads, head_dim});
  if (q_norm) q = q_norm(q), k = k_norm(k);  // Qwen3: per head, before the rotation
  q = kernels::rotary(q, cos, sin);                                                              // (B,T,H,D)
  k = kernels::rotary(k, cos, sin).transpose(1, 2);                                              // (B,Hk,T,D)
  auto v = xv.view({B, T, n_kv_heads, head_dim}).transpose(1, 2);                             // (B,Hk,T,D)
  if (cache_k && grow) {
    if (cache_k->defined()) {
      k = at::cat({*cache_k, k}, 2);
      v = at::cat({*cache_v, v}, 2);
    }
    *cache_k = k;
    *cache_v = v;
  } else if (cache_k) {
    CADA_CHECK(past + T <= cache_k->size(2), "KV cache overflow: ", past + T, " positions, capacity ",
               cache_k->size(2));
    cache_k->narrow(2, past, T).copy_(k);
    cache_v->narrow(2, past, T).copy_(v);
    k = cache_k->narrow(2, 0, past + T);
    v = cache_v->narrow(2, 0, past + T);
  }
  const int64_t S = k.size(2);
  auto out_proj = [&](const at::Tensor& a) {
    at::Tensor ob;
    const kernels::PackedWeight* w = packed ? o_.get({&o_proj}, &ob) : nullptr;
    return w ? kernels::linear(a, *w, ob) : proj(o_proj, o_lora, a);
  };
  if (T == 1 && default_scale && softcap == 0)
    return out_proj(kernels::decode_attention(q, k, v, bias));  // decoding: (B,1,H*D)
  q = q.transpose(1, 2);                                                       // (B,H,T,D)
  if (n_kv_heads != n_heads) {  // grouped-query attention: share each kv head across rep query heads
    const int64_t rep = n_heads / n_kv_heads;
    k = k.unsqueeze(2).expand({B, n_kv_heads, rep, S, head_dim}).reshape({B, n_heads, S, head_dim});
    v = v.unsqueeze(2).expand({B, n_kv_heads, rep, S, head_dim}).reshape({B, n_heads, S, head_dim});
  }
  at::Tensor out;  // (B,H,T,D)
  if (softcap > 0) {
    out = capped_attention(q, k, v, bias, scale, softcap);
  } else {
    const bool causal = !bias.defined() && T > 1;
    out = at::scaled_dot_product_attention(q, k, v, bias.defined() ? c10::optional<at::Tensor>(bias) : c10::nullopt,
                                           0.0, causal, default_scale ? c10::optional<double>() : scale);
  }
  out = out.transpose(1, 2).reshape({B, T, n_heads * head_dim});
  return out_proj(out);
}

MLPImpl::MLPImpl(const ModelConfig& cfg) : act(cfg.hidden_act) {
  const int64_t C = cfg.hidden_size, Fd = cfg.intermediate_size;
  gate_proj = register_module("gate_proj", linear(C, Fd, cfg.mlp_bias));
  up_proj = register_module("up_proj", linear(C, Fd, cfg.mlp_bias));
  down_proj = register_module("down_proj", linear(Fd, C, cfg.mlp_bias));
}

// act(gate) * up: SwiGLU through the fused kernel, GeGLU (tanh or exact GELU) as ATen ops.
static at::Tensor gated(const std::string& act, const at::Tensor& gate, const at::Tensor& up) {
  if (act == "silu") return kernels::silu_mul(gate, up);
  return at::gelu(gate, act == "gelu" ? "none" : "tanh") * up;
}

at::Tensor MLPImpl::forward(const at::Tensor& x) {
  if (fuse_projections(x) && !lora_active()) {
    at::Tensor gb, db;
    const kernels::PackedWeight* gu = gate_up_.get({&gate_proj, &up_proj}, &gb);
    const kernels::PackedWeight* down = down_.get({&down_proj}, &db);
    if (gu && down) {
      auto parts = kernels::linear(x, *gu, gb).chunk(2, -1);
      return kernels::linear(gated(act, parts[0], parts[1]), *down, db);
    }
  }
  return proj(down_proj, down_lora, gated(act, proj(gate_proj, gate_lora, x), proj(up_proj, up_lora, x)));
}

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& cfg) {
  self_attn = register_module("self_attn", Attention(cfg));
  mlp = register_module("mlp", MLP(cfg));
  auto norm = [&] { return RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, cfg.norm_plus_one); };
  input_layernorm = register_module("input_layernorm", norm());
  post_attention_layernorm = register_module("post_attention_layernorm", norm());
  if (cfg.sandwich_norms) {
    pre_feedforward_layernorm = register_module("pre_feedforward_layernorm", norm());
    post_feedforward_layernorm = register_module("post_feedforward_layernorm", norm());
  }
}

at::Tensor DecoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                     const at::Tensor& bias, at::Tensor* cache_k, at::Tensor* cache_v,
                                     int64_t past, bool grow) {
  auto a = self_attn(input_layernorm(x), cos, sin, bias, cache_k, cache_v, past, grow);
  if (pre_feedforward_layernorm) {  // Gemma-2: the sublayers' outputs are normed before the residual
    auto h = x + post_attention_layernorm(a);
    return h + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(h)));
  }
  auto h = x + a;
  return h + mlp(post_attention_layernorm(h));
}

std::vector<std::pair<std::string, LoraSlot*>> DecoderLayerImpl::lora_slots() {
  return {{"q_proj", &self_attn->q_lora},   {"k_proj", &self_attn->k_lora}, {"v_proj", &self_attn->v_lora},
          {"o_proj", &self_attn->o_lora},   {"gate_proj", &mlp->gate_lora}, {"up_proj", &mlp->up_lora},
          {"down_proj", &mlp->down_lora}};
}

std::vector<std::pair<std::string, torch::nn::Linear*>> DecoderLayerImpl::projections() {
  return {{"q_proj", &self_attn->q_proj},   {"k_proj", &self_attn->k_proj}, {"v_proj", &self_attn->v_proj},
          {"o_proj", &self_attn->o_proj},   {"gate_proj", &mlp->gate_proj}, {"up_proj", &mlp->up_proj},
          {"down_proj", &mlp->down_proj}};
}

BackboneImpl::BackboneImpl(const ModelConfig& cfg) {
  // The pad token's row gets no gradient from the lookup, as transformers' nn.Embedding(padding_idx).
  auto eo = torch::nn::EmbeddingOptions(cfg.vocab_size, cfg.hidden_size);
  if (cfg.pad_token_id) eo.padding_idx(*cfg.pad_token_id);
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(eo));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) layers->push_back(DecoderLayer(cfg));
  norm = register_module("norm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, cfg.norm_plus_one));
}

// ---------------------------------------------------------------- masks

at::Tensor make_attention_bias(const at::Tensor& key_mask, int64_t B, int64_t T, int64_t past,
                               at::ScalarType dtype, const at::Device& device, int64_t window) {
  const int64_t S = past + T;
  const bool windowed = window > 0 && S > window;
  if (!key_mask.defined() && !windowed && (past == 0 || T == 1)) return {};
  if (T == 1 && !windowed && key_mask.defined() && key_mask.dim() == 2 && key_mask.size(0) == B &&
      key_mask.size(1) == S) {
    // Decoding one token: every real past key is visible, and the token itself always is.
    auto hidden = key_mask.to(device).to(at::kBool).logical_not().view({B, 1, 1, S});
    auto bias = at::zeros({B, 1, 1, S}, at::TensorOptions().dtype(dtype).device(device))
                    .masked_fill_(hidden, -std::numeric_limits<float>::infinity());
    bias.select(3, S - 1).zero_();
    return bias;
  }
  auto qpos = at::arange(past, S, at::TensorOptions().dtype(at::kLong).device(device)).view({T, 1});
  auto kpos = at::arange(0, S, at::TensorOptions().dtype(at::kLong).device(device)).view({1, S});
  auto allowed = kpos <= qpos;                                   // (T,S)
  if (windowed) allowed = allowed.logical_and(qpos - kpos < window);
  auto allowed_b = allowed.unsqueeze(0).expand({B, T, S});
  if (key_mask.defined()) {
    CADA_CHECK(key_mask.dim() == 2 && key_mask.size(0) == B && key_mask.size(1) == S,
               "attention mask must be (", B, ", ", S, "), got ", key_mask.sizes());
    allowed_b = allowed_b.logical_and(key_mask.to(device).to(at::kBool).unsqueeze(1));
  }
  allowed_b = allowed_b.logical_or((kpos == qpos).unsqueeze(0));  // keep every row finite
  auto bias = at::zeros({B, 1, T, S}, at::TensorOptions().dtype(dtype).device(device));
  bias.masked_fill_(allowed_b.logical_not().unsqueeze(1), -std::numeric_limits<float>::infinity());
  return bias;
}

// ---------------------------------------------------------------- the model

TransformerImpl::TransformerImpl(const ModelConfig& cfg) : cfg_(cfg) {
  // The modules are created in float32 on the host (then converted or replaced when loading).
  util::check_fits(static_cast<double>(cfg.num_parameters()) * 4, util::host_available_bytes(),
                   "the model (" + std::to_string(cfg.num_parameters()) + " parameters, float32 while it is built)",
                   "its sizes in config.json (hidden_size, intermediate_size, num_hidden_layers, vocab_size) or "
                   "run it on a machine with more memory");
  model = register_module("model", Backbone(cfg));
  if (cfg.is_sequence_classifier()) {
    score = register_module("score", linear(cfg.hidden_size, cfg.num_labels, false));
  } else if (!cfg.tie_word_embeddings) {
    lm_head = register_module("lm_head", linear(cfg.hidden_size, cfg.vocab_size, false));
  }
  inv_freq_ = register_buffer("inv_freq", rope_inv_freq(cfg));
}

ForwardOutput TransformerImpl::forward(const ForwardInput& in) {
  const auto& ids = in.input_ids;
  CADA_CHECK(ids.dim() == 2, "input_ids must be (B, T), got ", ids.sizes());
  const int64_t B = ids.size(0), T = ids.size(1);
  const int64_t past = in.cache ? in.cache->length : 0;
  auto device = ids.device();

  at::Tensor pos = in.position_ids;
  if (!pos.defined()) pos = at::arange(past, past + T, at::TensorOptions().dtype(at::kLong).device(device)).expand({B, T});
  auto freqs = pos.to(at::kFloat).unsqueeze(-1) * inv_freq_.to(device).view({1, 1, -1});  // (B,T,D/2)
  auto emb = at::cat({freqs, freqs}, -1);                                                    // (B,T,D)

  auto h = model->embed_tokens(ids);  // (B,T,C)
  if (cfg_.scale_embeddings)  // Gemma: sqrt(hidden_size) rounded to the model dtype first, as transformers
    h = h * at::scalar_tensor(std::sqrt(static_cast<double>(cfg_.hidden_size)), h.options());
  auto cos = emb.cos().to(h.scalar_type()), sin = emb.sin().to(h.scalar_type());
  // One additive mask per distinct window (Gemma-2 and Qwen3 alternate full and sliding layers).
  std::map<int64_t, at::Tensor> biases;
  for (int64_t l = 0; l < cfg_.num_hidden_layers; ++l)
    if (!biases.count(cfg_.window(l)))
      biases[cfg_.window(l)] = make_attention_bias(in.key_mask, B, T, past, h.scalar_type(), device, cfg_.window(l));
  const at::Tensor& bias = biases[cfg_.window(0)];
  ForwardOutput out;
  if (T == 1 && in.cache && !in.cache->grows && in.output_hidden_layer < 0 && cfg_.plain_llama_layers()) {
    auto last = fused_decode_step(h, cos, sin, bias, *in.cache, past);
    if (last.defined()) {
      in.cache->length = past + 1;
      out.hidden = model->norm(last);
      return out;
    }
  }
  if (in.output_hidden_layer == 0) out.layer_hidden = h;
  const bool checkpoint_layers = gradient_checkpointing && !in.cache && is_training() && at::GradMode::is_enabled();
  for (int64_t l = 0; l < cfg_.num_hidden_layers; ++l) {
    auto layer = model->layers[l]->as<DecoderLayerImpl>();
    at::Tensor* ck = in.cache ? &in.cache->k[l] : nullptr;
    at::Tensor* cv = in.cache ? &in.cache->v[l] : nullptr;
    if (checkpoint_layers) {
      h = checkpointed_layer(*layer, h, cos, sin, biases[cfg_.window(l)]);
    } else {
      h = layer->forward(h, cos, sin, biases[cfg_.window(l)], ck, cv, past, in.cache && in.cache->grows);
    }
    if (in.output_hidden_layer == l + 1 && l + 1 < cfg_.num_hidden_layers) out.layer_hidden = h;
  }
  if (in.cache) {
    in.cache->length = past + T;
    if (in.cache->grows) in.cache->capacity = past + T;
  }
  out.hidden = model->norm(h);
  // transformers' hidden_states[num_layers] is the final normed output.
  if (in.output_hidden_layer == cfg_.num_hidden_layers) out.layer_hidden = out.hidden;
  return out;
}

at::Tensor TransformerImpl::fused_decode_step(const at::Tensor& h, const at::Tensor& cos, const at::Tensor& sin,
                                              const at::Tensor& bias, KVCache& cache, int64_t past) {
  if (!fuse_projections(h) || !kernels::decode_step_supported(h.size(0)) || (has_lora() && lora_enabled)) return {};
  std::vector<kernels::DecodeLayer> layers(static_cast<size_t>(cfg_.num_hidden_layers));
  for (int64_t l = 0; l < cfg_.num_hidden_layers; ++l) {
    auto layer = model->layers[l]->as<DecoderLayerImpl>();
    auto& d = layers[static_cast<size_t>(l)];
    const auto* qkv = layer->self_attn->packed_qkv(&d.qkv_bias);
    const auto* o = layer->self_attn->packed_o(&d.o_bias);
    const auto* gate_up = layer->mlp->packed_gate_up(&d.gate_up_bias);
    const auto* down = layer->mlp->packed_down(&d.down_bias);
    if (!qkv || !o || !gate_up || !down) return {};
    d.qkv = *qkv;
    d.o = *o;
    d.gate_up = *gate_up;
    d.down = *down;
    d.input_norm = layer->input_layernorm->weight;
    d.post_norm = layer->post_attention_layernorm->weight;
    d.cache_k = cache.k[l];
    d.cache_v = cache.v[l];
  }
  kernels::DecodeStepShape shape;
  shape.heads = cfg_.num_attention_heads;
  shape.kv_heads = cfg_.num_key_value_heads;
  shape.head_dim = cfg_.head_dim;
  shape.rms_norm_eps = cfg_.rms_norm_eps;
  shape.past = past;
  return kernels::decode_step(h, layers, cos, sin, bias, shape);
}

at::Tensor TransformerImpl::lm_head_weight() {
  if (lm_head) return lm_head->weight;
  return model->embed_tokens->weight;
}

at::Tensor TransformerImpl::head(const at::Tensor& hidden) {
  if (score) return proj(score, hidden);
  at::Tensor logits;
  const kernels::PackedWeight* w = fuse_projections(hidden) ? head_.get(lm_head_weight()) : nullptr;
  logits = w ? kernels::linear(hidden, *w) : kernels::linear(hidden, lm_head_weight());
  // Gemma-2's final soft-cap, here so that every log-prob, sampling and scoring path sees it.
  const double cap = cfg_.final_logit_softcapping;
  return cap > 0 ? at::tanh(logits / cap) * cap : logits;
}

std::vector<std::pair<std::string, at::Tensor>> TransformerImpl::hf_named_parameters() {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& item : named_parameters(/*recurse=*/true))
    if (!is_lora_parameter_name(item.key())) out.emplace_back(item.key(), item.value());
  return out;
}

}  // namespace cada::model
