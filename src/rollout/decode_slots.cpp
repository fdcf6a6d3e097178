#include "cada/rollout/decode_slots.h"

#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "cada/kernels/fused.h"
#include "cada/kernels/gemm.h"
#include "cada/util/error.h"

namespace cada::rollout {

namespace {

at::Tensor long_tensor(const std::vector<int64_t>& v, const at::Device& device) {
  return at::tensor(v, at::TensorOptions().dtype(at::kLong)).to(device);
}

// Graph key of a step: (L, B, sampling kind, penalty).
int64_t graph_key(int64_t B, int64_t L, StepKind kind) {
  return ((L * 65536 + B) * 4 + static_cast<int64_t>(kind.sampling)) * 2 + (kind.penalty ? 1 : 0);
}

}  // namespace

DecodeSlots::DecodeSlots(model::TransformerImpl& model, int64_t slots, int64_t capacity, bool cuda_graphs)
    : model_(model), slots_(slots), capacity_(capacity), device_(model.lm_head_weight().device()),
      dtype_(model.lm_head_weight().scalar_type()) {
  const auto& cfg = model.config();
  CADA_CHECK(slots >= 1 && capacity >= 2, "decoding slots need at least 1 slot of 2 positions, got ", slots, " x ",
             capacity);
  CADA_CHECK(!cfg.is_sequence_classifier(), "generation needs a causal LM, got a sequence classifier");
  CADA_CHECK(cfg.plain_llama_layers(), "the continuous engine decodes Llama, Qwen2 and Mistral layers only; ",
             cfg.model_type, " models generate with the static engine (--engine static, or auto)");
  use_graphs_ = cuda_graphs && kernels::GraphSet::supported(device_);
  // The cache is the engine's one large allocation: check it against the device's free memory
  // first, so that too many slots is one sentence naming what to lower, not an allocator error.
  const int64_t cache_bytes = 2 * cfg.num_hidden_layers * slots * cfg.num_key_value_heads * capacity * cfg.head_dim *
                              static_cast<int64_t>(c10::elementSize(dtype_));
  const int64_t free_bytes = kernels::device_free_bytes(device_);
  CADA_CHECK(free_bytes < 0 || cache_bytes <= free_bytes, "the KV cache of ", slots, " decoding slots x ", capacity,
             " positions needs ", cache_bytes >> 20, " MiB but ", device_, " has ", free_bytes >> 20,
             " MiB free; lower the sequences decoded together (batch_rows, --batch-size) or the prompt and "
             "completion lengths");
  auto opt = at::TensorOptions().device(device_);
  inv_freq_ = model::rope_inv_freq(cfg).to(device_);
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    // Zeros, not garbage: a slot's unused positions are multiplied by a zero attention weight,
    // and NaN * 0 would still be NaN.
    cache_k_.push_back(at::zeros({slots, cfg.num_key_value_heads, capacity, cfg.head_dim}, opt.dtype(dtype_)));
    cache_v_.push_back(at::zeros({slots, cfg.num_key_value_heads, capacity, cfg.head_dim}, opt.dtype(dtype_)));
  }
  ids_ = at::zeros({slots}, opt.dtype(at::kLong));
  pos_ = at::zeros({slots}, opt.dtype(at::kLong));
  counters_ = at::zeros({slots}, opt.dtype(at::kLong));
  keys_ = at::zeros({slots}, opt.dtype(at::kLong));
  top_k_ = at::zeros({slots}, opt.dtype(at::kLong));
  temperature_ = at::zeros({slots}, opt.dtype(at::kFloat));
  inv_temperature_ = at::ones({slots}, opt.dtype(at::kFloat));
  top_p_ = at::ones({slots}, opt.dtype(at::kFloat));
  min_p_ = at::zeros({slots}, opt.dtype(at::kFloat));
  penalty_ = at::ones({slots}, opt.dtype(at::kFloat));
  out_tokens_ = at::zeros({slots}, opt.dtype(at::kLong));
  out_logprobs_ = at::zeros({slots}, opt.dtype(at::kFloat));
}

std::vector<at::Tensor*> DecodeSlots::slot_state() {
  std::vector<at::Tensor*> s{&ids_,    &pos_,   &counters_, &keys_,    &top_k_, &temperature_,
                             &inv_temperature_, &top_p_, &min_p_, &penalty_};
  if (seen_.defined()) s.push_back(&seen_);
  for (auto& t : cache_k_) s.push_back(&t);
  for (auto& t : cache_v_) s.push_back(&t);
  return s;
}

DecodeSlots::Rows DecodeSlots::rows(int64_t B) const {
  auto n = [B](const at::Tensor& t) { return t.defined() ? t.narrow(0, 0, B) : at::Tensor(); };
  return {n(temperature_), n(inv_temperature_), n(top_k_), n(top_p_), n(min_p_),
          n(penalty_),     n(keys_),            n(counters_), n(seen_)};
}

DecodeSlots::Rows DecodeSlots::rows(const at::Tensor& index) const {
  auto s = [&](const at::Tensor& t) { return t.defined() ? t.index_select(0, index) : at::Tensor(); };
  return {s(temperature_), s(inv_temperature_), s(top_k_), s(top_p_), s(min_p_),
          s(penalty_),     s(keys_),            s(counters_), s(seen_)};
}

std::pair<at::Tensor, at::Tensor> DecodeSlots::sample(at::Tensor logits, const Rows& r, StepKind kind) const {
  // Log-probs are those of the sampling policy: softmax(logits / T) before the penalty (T = 1 for
  // greedy rows), as the static batches and TRL report them.
  at::Tensor lp_logits = kind.sampling == kernels::SamplingKind::kGreedy ? logits : logits * r.inv_temperature.unsqueeze(1);
  if (kind.penalty) {
    if (kind.sampling == kernels::SamplingKind::kGreedy) lp_logits = logits.clone();
    kernels::apply_repetition_penalty_(logits, r.seen, r.penalty);
  }
  at::Tensor u = kind.sampling == kernels::SamplingKind::kGreedy ? at::zeros_like(r.temperature)
                                                                  : kernels::counter_uniform(r.keys, r.counters);
  auto tokens = kernels::sample_tokens(logits, r.temperature, r.top_k, r.top_p, r.min_p, u, kind.sampling);
  auto lps = kernels::logsoftmax_gather(lp_logits, tokens, 1.0);
  return {tokens, lps};
}

at::Tensor DecodeSlots::forward(int64_t B, int64_t L) {
  CADA_CHECK(B >= 1 && B <= slots_ && L >= 1 && L <= capacity_, "decoding step of ", B, " slots over ", L,
             " positions does not fit ", slots_, " slots of ", capacity_);
  const auto& cfg = model_.config();
  const int64_t H = cfg.num_attention_heads, Hk = cfg.num_key_value_heads, D = cfg.head_dim;
  const int64_t rep = H / Hk;
  auto ids = ids_.narrow(0, 0, B), pos = pos_.narrow(0, 0, B);  // (B)
  auto h = model_.model->embed_tokens(ids.unsqueeze(1));            // (B,1,C)
  // Rotary tables as the model's forward computes them (float32 angles, then the model's dtype).
  auto freqs = pos.to(at::kFloat).unsqueeze(1) * inv_freq_.unsqueeze(0);  // (B,D/2)
  auto emb = at::cat({freqs, freqs}, -1).unsqueeze(1);                    // (B,1,D)
  auto cos = emb.cos().to(dtype_), sin = emb.sin().to(dtype_);
  // Key j of a slot is visible when j <= its position (and within Mistral's sliding window).
  auto kpos = at::arange(L, pos.options()).unsqueeze(0);  // (1,L)
  auto visible = kpos <= pos.unsqueeze(1);                 // (B,L)
  const int64_t window = cfg.sliding_window.value_or(0);
  if (window > 0) visible = visible.logical_and(pos.unsqueeze(1) - kpos < window);
  // A free slot's stale position may lie past L (or its window before it): keep one key visible
  // so its row stays finite and writes no NaN into its cache rows. Busy slots already see it.
  visible = visible.logical_or(kpos == pos.clamp_max(L - 1).unsqueeze(1));
  auto bias = at::zeros({B, 1, 1, L}, h.options())
                  .masked_fill_(visible.logical_not().view({B, 1, 1, L}), -std::numeric_limits<float>::infinity());
  auto where = pos.view({B, 1, 1, 1}).expand({B, Hk, 1, D});  // cache index of the new key
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    auto layer = model_.model->layers[l]->as<model::DecoderLayerImpl>();
    auto& attn = *layer->self_attn;
    auto x = layer->input_layernorm(h);
    auto q = kernels::rotary(kernels::linear(x, attn.q_proj->weight, attn.q_proj->bias).view({B, 1, H, D}), cos, sin);
    auto k = kernels::rotary(kernels::linear(x, attn.k_proj->weight, attn.k_proj->bias).view({B, 1, Hk, D}), cos, sin);
    auto v = kernels::linear(x, attn.v_proj->weight, attn.v_proj->bias).view({B, 1, Hk, D});
    auto ck = cache_k_[l].narrow(0, 0, B), cv = cache_v_[l].narrow(0, 0, B);  // (B,Hk,capacity,D)
    ck.scatter_(2, where, k.transpose(1, 2));
    cv.scatter_(2, where, v.transpose(1, 2));
    // Grouped-query attention without expanding the cache: the rep query heads of a kv head form
    // the rows of one product with its keys, so every cached key is read once per step.
    auto qg = q.reshape({B, Hk, rep, D});                                                   // (B,Hk,rep,D)
    auto scores = at::matmul(qg, ck.narrow(2, 0, L).transpose(2, 3)).mul_(scale).add_(bias);  // (B,Hk,rep,L)
    auto probs = at::softmax(scores, -1, at::kFloat).to(dtype_);
    auto out = at::matmul(probs, cv.narrow(2, 0, L)).reshape({B, 1, H * D});                  // (B,1,H*D)
    h = h + kernels::linear(out, attn.o_proj->weight, attn.o_proj->bias);
    h = h + layer->mlp->forward(layer->post_attention_layernorm(h));
  }
  h = model_.model->norm(h).squeeze(1);  // (B,C)
  return model_.head(h).to(at::kFloat);  // (B,V)
}

void DecodeSlots::run_step(int64_t B, int64_t L, StepKind kind) {
  auto logits = forward(B, L);
  auto [tokens, lps] = sample(logits, rows(B), kind);
  out_tokens_.narrow(0, 0, B).copy_(tokens);
  out_logprobs_.narrow(0, 0, B).copy_(lps);
  ids_.narrow(0, 0, B).copy_(tokens);
  // A slot whose sequence ended but is not yet known to the host keeps stepping: its position
  // stays inside the cache.
  pos_.narrow(0, 0, B).add_(1).clamp_max_(capacity_ - 1);
  counters_.narrow(0, 0, B).add_(1);
  if (kind.penalty) seen_.narrow(0, 0, B).scatter_(1, tokens.unsqueeze(1), true);
}

void DecodeSlots::step(int64_t B, int64_t L, StepKind kind) {
  c10::InferenceMode guard;
  CADA_CHECK(!kind.penalty || seen_.defined(), "a step with a repetition penalty needs prefilled penalty state");
  if (!use_graphs_) return run_step(B, L, kind);
  const int64_t key = graph_key(B, L, kind);
  if (graphs_.contains(key)) {
    graphs_.replay(key);
    ++replays_;
  } else {
    graphs_.run_and_capture(key, device_, [&] { run_step(B, L, kind); });
  }
}

DecodeSlots::FirstTokens DecodeSlots::prefill(const std::vector<const std::vector<int32_t>*>& prompts,
                                              const std::vector<std::vector<int64_t>>& targets,
                                              const std::vector<SlotSampling>& sampling, StepKind kind,
                                              int64_t prefill_tokens) {
  c10::InferenceMode guard;
  CADA_CHECK(prompts.size() == targets.size(), "prefill: ", prompts.size(), " prompts for ", targets.size(),
             " target lists");
  FirstTokens out;
  if (kind.penalty && !seen_.defined())
    seen_ = at::zeros({slots_, model_.config().vocab_size}, at::TensorOptions().dtype(at::kBool).device(device_));
  // Chunks of prompts whose padded size stays within the token budget (at least one prompt each).
  size_t begin = 0, flat = 0;
  while (begin < prompts.size()) {
    size_t end = begin;
    int64_t longest = 0;
    while (end < prompts.size()) {
      const int64_t len = std::max<int64_t>(longest, static_cast<int64_t>(prompts[end]->size()));
      if (end > begin && len * static_cast<int64_t>(end - begin + 1) > prefill_tokens) break;
      longest = len;
      ++end;
    }
    size_t n_targets = 0;
    for (size_t p = begin; p < end; ++p) n_targets += targets[p].size();
    prefill_chunk({prompts.begin() + begin, prompts.begin() + end}, {targets.begin() + begin, targets.begin() + end},
                  {sampling.begin() + flat, sampling.begin() + flat + n_targets}, kind, out);
    flat += n_targets;
    begin = end;
  }
  CADA_CHECK(flat == sampling.size(), "prefill: ", sampling.size(), " sampling settings for ", flat, " slots");
  return out;
}

void DecodeSlots::prefill_chunk(const std::vector<const std::vector<int32_t>*>& prompts,
                                const std::vector<std::vector<int64_t>>& targets,
                                const std::vector<SlotSampling>& sampling, StepKind kind, FirstTokens& out) {
  const auto& cfg = model_.config();
  const int64_t P = static_cast<int64_t>(prompts.size());
  int64_t Lp = 0;
  for (const auto* p : prompts) Lp = std::max<int64_t>(Lp, static_cast<int64_t>(p->size()));
  CADA_CHECK(Lp < capacity_, "a prompt of ", Lp, " tokens does not fit decoding slots of ", capacity_, " positions");
  // Right-padded: every prompt starts at position 0 of its row, as in its slot; causal attention
  // keeps the padding after a prompt out of its real tokens.
  auto ids = at::zeros({P, Lp}, at::kLong);
  std::vector<int64_t> last(P), slot_list, prompt_of, lens;
  for (int64_t p = 0; p < P; ++p) {
    const auto& pr = *prompts[p];
    CADA_CHECK(!pr.empty(), "prefill: prompt ", p + 1, " has no tokens");
    std::copy(pr.begin(), pr.end(), ids[p].data_ptr<int64_t>());
    last[p] = static_cast<int64_t>(pr.size()) - 1;
    for (int64_t s : targets[p]) {
      CADA_CHECK(s >= 0 && s < slots_, "prefill: slot ", s, " is outside 0..", slots_ - 1);
      slot_list.push_back(s);
      prompt_of.push_back(p);
      lens.push_back(static_cast<int64_t>(pr.size()));
    }
  }
  auto cache = model::KVCache::allocate(cfg, P, Lp, at::TensorOptions().dtype(dtype_).device(device_));
  model::ForwardInput in;
  in.input_ids = ids.to(device_);
  in.cache = &cache;
  auto hidden = model_.forward(in).hidden;                                                   // (P,Lp,C)
  auto h_last = hidden.index({at::arange(P, hidden.options().dtype(at::kLong)), long_tensor(last, device_)});  // (P,C)
  auto logits = model_.head(h_last).to(at::kFloat);                                          // (P,V)

  auto sl = long_tensor(slot_list, device_), pr = long_tensor(prompt_of, device_);
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    cache_k_[l].narrow(2, 0, Lp).index_copy_(0, sl, cache.k[l].index_select(0, pr));
    cache_v_[l].narrow(2, 0, Lp).index_copy_(0, sl, cache.v[l].index_select(0, pr));
  }
  // Per-slot sampling state.
  const size_t R = slot_list.size();
  std::vector<float> temp(R), inv_t(R), topp(R), minp(R), pen(R);
  std::vector<int64_t> topk(R), keys(R);
  for (size_t i = 0; i < R; ++i) {
    const auto& s = sampling[i];
    temp[i] = s.temperature;
    inv_t[i] = s.temperature > 0 ? 1.0f / s.temperature : 1.0f;
    topk[i] = s.top_k;
    topp[i] = s.top_p;
    minp[i] = s.min_p;
    pen[i] = s.repetition_penalty;
    keys[i] = s.stream_key;
  }
  auto put_f = [&](at::Tensor& dst, const std::vector<float>& v) { dst.index_copy_(0, sl, at::tensor(v).to(device_)); };
  put_f(temperature_, temp);
  put_f(inv_temperature_, inv_t);
  put_f(top_p_, topp);
  put_f(min_p_, minp);
  put_f(penalty_, pen);
  top_k_.index_copy_(0, sl, long_tensor(topk, device_));
  keys_.index_copy_(0, sl, long_tensor(keys, device_));
  pos_.index_copy_(0, sl, long_tensor(lens, device_));
  counters_.index_fill_(0, sl, 0);
  if (kind.penalty) {
    auto seen = at::zeros({static_cast<int64_t>(R), cfg.vocab_size}, at::kBool);
    auto sa = seen.accessor<bool, 2>();
    for (size_t i = 0; i < R; ++i)
      for (int32_t id : *prompts[prompt_of[i]]) sa[static_cast<int64_t>(i)][id] = true;
    seen_.index_copy_(0, sl, seen.to(device_));
  }
  // The first token of every slot, sampled as a step samples (counter 0).
  auto [tokens, lps] = sample(logits.index_select(0, pr), rows(sl), kind);
  ids_.index_copy_(0, sl, tokens);
  counters_.index_fill_(0, sl, 1);
  if (kind.penalty) seen_.index_put_({sl, tokens}, true);
  auto tk = tokens.cpu(), lp = lps.cpu();
  out.tokens.insert(out.tokens.end(), tk.data_ptr<int64_t>(), tk.data_ptr<int64_t>() + R);
  out.logprobs.insert(out.logprobs.end(), lp.data_ptr<float>(), lp.data_ptr<float>() + R);
}

void DecodeSlots::move(const std::vector<int64_t>& from, const std::vector<int64_t>& to) {
  c10::InferenceMode guard;
  CADA_CHECK(from.size() == to.size(), "move: ", from.size(), " sources for ", to.size(), " destinations");
  if (from.empty()) return;
  auto f = long_tensor(from, device_), t = long_tensor(to, device_);
  for (at::Tensor* s : slot_state()) s->index_copy_(0, t, s->index_select(0, f));
}

}  // namespace cada::rollout
