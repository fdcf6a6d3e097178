#include "cada/rollout/generator.h"

#include <algorithm>
#include <chrono>

#include "cada/kernels/device_graph.h"
#include "cada/kernels/ops.h"
#include "cada/rollout/continuous.h"
#include "completion.h"
#include "cada/util/clock.h"
#include "cada/util/error.h"
#include "cada/util/memory.h"

namespace cada::rollout {

namespace {

using util::Clock;
using util::seconds_since;

// Per-row decoding state.
struct Row {
  size_t request;
  int64_t sample;
  int64_t stream_key;  // kernels::stream_key(seed, sample): the row's random numbers
  std::vector<int32_t> stop_ids;
  bool done = false;
  Completion c;
};

}  // namespace

Engine parse_engine(const std::string& name) {
  if (name == "auto") return Engine::kAuto;
  if (name == "static") return Engine::kStatic;
  if (name == "continuous") return Engine::kContinuous;
  CADA_CHECK(false, "unknown generation engine '", name, "' (expected auto, static or continuous)");
  return Engine::kAuto;
}

Generator::Generator(model::TransformerImpl& model, const text::Tokenizer* tok, GeneratorOptions opts)
    : model_(model), tok_(tok), opts_(opts) {
  CADA_CHECK(opts_.max_batch_rows > 0, "max_batch_rows must be positive");
  CADA_CHECK(!model.config().is_sequence_classifier(), "generation needs a causal LM, got a sequence classifier");
}

Generator::~Generator() = default;

std::string Generator::engine_name() const {
  if (opts_.engine == Engine::kStatic) return "static";
  if (opts_.engine == Engine::kContinuous) return "continuous";
  // The continuous engine's decoding slots compute the plain Llama-family layer only.
  return model_.lm_head_weight().is_cuda() && model_.config().plain_llama_layers() ? "continuous" : "static";
}

void Generator::validate(const std::vector<Request>& requests) const {
  const int64_t V = model_.config().vocab_size;
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    CADA_CHECK(!r.prompt_ids.empty(), "request ", i + 1, ": the prompt has no tokens");
    CADA_CHECK(r.n >= 1, "request ", i + 1, ": n must be at least 1, got ", r.n);
    CADA_CHECK(r.params.max_new_tokens >= 1, "request ", i + 1, ": max_new_tokens must be at least 1");
    CADA_CHECK(r.params.temperature >= 0, "request ", i + 1, ": temperature must be >= 0");
    CADA_CHECK(r.params.top_p > 0 && r.params.top_p <= 1, "request ", i + 1, ": top_p must be in (0, 1]");
    CADA_CHECK(r.params.min_p >= 0 && r.params.min_p <= 1, "request ", i + 1, ": min_p must be in [0, 1]");
    CADA_CHECK(r.params.top_k >= 0, "request ", i + 1, ": top_k must be >= 0");
    CADA_CHECK(r.params.top_logprobs >= 0, "request ", i + 1, ": top_logprobs must be >= 0");
    CADA_CHECK(r.params.repetition_penalty > 0, "request ", i + 1, ": repetition_penalty must be positive");
    CADA_CHECK(!r.params.stop.size() || tok_, "request ", i + 1, ": stop strings need a tokenizer");
    for (int32_t id : r.prompt_ids)
      CADA_CHECK(id >= 0 && id < V, "request ", i + 1, ": token id ", id, " is outside the vocabulary (size ", V, ")");
  }
  check_memory(requests);
}

void Generator::check_memory(const std::vector<Request>& requests) const {
  // The KV cache is the call's one large allocation: rows decoded together x (longest prompt +
  // most new tokens) positions, checked against free memory before anything is allocated.
  int64_t rows = 0, prompt = 0, new_tokens = 0;
  for (const auto& r : requests) {
    rows += r.n;
    prompt = std::max<int64_t>(prompt, static_cast<int64_t>(r.prompt_ids.size()));
    new_tokens = std::max<int64_t>(new_tokens, r.params.max_new_tokens);
  }
  rows = std::min(rows, opts_.max_batch_rows);
  const auto& cfg = model_.config();
  const at::Tensor& w = model_.lm_head_weight();
  const double positions = static_cast<double>(prompt) + static_cast<double>(new_tokens) + 1;
  const double bytes = 2.0 * cfg.num_hidden_layers * rows * cfg.num_key_value_heads * positions * cfg.head_dim *
                       static_cast<double>(c10::elementSize(w.scalar_type()));
  const int64_t available = w.is_cuda() ? kernels::device_free_bytes(w.device()) : util::host_available_bytes();
  util::check_fits(bytes, available,
                   str_cat("the KV cache of ", rows, " sequences x ", static_cast<int64_t>(positions),
                           " positions (longest prompt ", prompt, " + max_new_tokens ", new_tokens, ")"),
                   opts_.limit_hint);
}

std::vector<std::vector<Completion>> Generator::generate(const std::vector<Request>& requests,
                                                         const std::function<void(int64_t)>& on_tokens) {
  GenerateHooks hooks;
  hooks.on_tokens = on_tokens;
  return generate(requests, hooks);
}

std::vector<std::vector<Completion>> Generator::generate(const std::vector<Request>& requests,
                                                         const GenerateHooks& hooks) {
  validate(requests);
  // Top log-probs are computed by the static batches (the decoding slots' device-side sampling
  // returns only the chosen token's log-prob).
  bool wants_top = false;
  for (const auto& r : requests) wants_top |= r.params.top_logprobs > 0;
  if (engine_name() == "continuous" && !wants_top) {
    if (!continuous_)
      continuous_ = std::make_unique<ContinuousBatcher>(model_, tok_, opts_.max_batch_rows, opts_.cuda_graphs,
                                                        opts_.reserve_positions);
    return continuous_->generate(requests, hooks, stats_);
  }
  std::vector<std::vector<Completion>> out(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) out[i].resize(requests[i].n);
  // Rows (request, sample) in order, cut into batches of max_batch_rows.
  std::vector<std::pair<size_t, int64_t>> rows;
  for (size_t i = 0; i < requests.size(); ++i)
    for (int64_t j = 0; j < requests[i].n; ++j) rows.emplace_back(i, j);
  for (size_t s = 0; s < rows.size(); s += opts_.max_batch_rows) {
    const size_t e = std::min(rows.size(), s + static_cast<size_t>(opts_.max_batch_rows));
    run_batch(requests, {rows.begin() + s, rows.begin() + e}, out, hooks);
  }
  return out;
}

void Generator::run_batch(const std::vector<Request>& requests, const std::vector<std::pair<size_t, int64_t>>& rows_in,
                          std::vector<std::vector<Completion>>& out, const GenerateHooks& hooks) {
  c10::InferenceMode guard;
  const auto& cfg = model_.config();
  const int64_t V = cfg.vocab_size;
  auto device = model_.lm_head_weight().device();
  auto dtype = model_.lm_head_weight().scalar_type();
  auto lopt = at::TensorOptions().dtype(at::kLong);

  // ---- prefill the distinct prompts once, left-padded
  std::vector<size_t> prompts;            // request index per prefill row
  std::vector<int64_t> row_prompt;        // prefill row per decoding row
  for (const auto& [req, j] : rows_in) {
    if (prompts.empty() || prompts.back() != req) prompts.push_back(req);
    row_prompt.push_back(static_cast<int64_t>(prompts.size()) - 1);
  }
  const int64_t P = static_cast<int64_t>(prompts.size());
  int64_t L = 0, max_new = 0;
  for (size_t r : prompts) {
    L = std::max<int64_t>(L, static_cast<int64_t>(requests[r].prompt_ids.size()));
    max_new = std::max(max_new, requests[r].params.max_new_tokens);
  }
  auto ids = at::zeros({P, L}, lopt);
  auto mask = at::zeros({P, L}, at::kBool);
  {
    auto ia = ids.accessor<int64_t, 2>();
    auto ma = mask.accessor<bool, 2>();
    for (int64_t p = 0; p < P; ++p) {
      const auto& pr = requests[prompts[p]].prompt_ids;
      const int64_t off = L - static_cast<int64_t>(pr.size());
      for (size_t t = 0; t < pr.size(); ++t) {
        ia[p][off + t] = pr[t];
        ma[p][off + t] = true;
      }
    }
  }
  auto pos = (mask.to(at::kLong).cumsum(1) - 1).clamp_min(0);
  auto t0 = Clock::now();
  auto cache = model::KVCache::allocate(cfg, P, L + max_new, at::TensorOptions().dtype(dtype).device(device));
  model::ForwardInput in;
  in.input_ids = ids.to(device);
  in.position_ids = pos.to(device);
  in.key_mask = mask.all().item<bool>() ? at::Tensor() : mask.to(device);
  in.cache = &cache;
  auto last_hidden = model_.forward(in).hidden.select(1, L - 1);   // (P,C)
  auto logits = model_.head(last_hidden).to(at::kFloat);            // (P,V)
  stats_.prefill_s += seconds_since(t0);
  for (size_t r : prompts) stats_.prompt_tokens += static_cast<int64_t>(requests[r].prompt_ids.size());

  // ---- expand to one row per sample (the group shares the prefill)
  auto t1 = Clock::now();
  const int64_t B = static_cast<int64_t>(rows_in.size());
  auto rp = at::tensor(row_prompt, lopt).to(device);
  if (B != P || !at::equal(rp.cpu(), at::arange(P, lopt))) {
    cache.select_rows(rp);
    logits = logits.index_select(0, rp);
  }
  auto key_mask = mask.to(device).index_select(0, rp);                 // (B,L)
  auto next_pos = pos.select(1, L - 1).to(device).index_select(0, rp) + 1;  // (B)

  std::vector<Row> rows;
  std::vector<float> temp, topp, minp, pen;
  std::vector<int64_t> topk;
  bool any_penalty = false;
  int64_t top_k_lp = 0;  // the most top log-probs any row asked for
  for (const auto& [req, j] : rows_in) {
    top_k_lp = std::max(top_k_lp, std::min<int64_t>(requests[req].params.top_logprobs, V));
    const auto& prm = requests[req].params;
    Row row{req, j, kernels::stream_key(requests[req].seed, j), detail::stop_ids(prm, tok_, cfg.eos_token_ids), false, {}};
    rows.push_back(std::move(row));
    temp.push_back(prm.temperature);
    topk.push_back(prm.top_k);
    topp.push_back(prm.top_p);
    minp.push_back(prm.min_p);
    pen.push_back(prm.repetition_penalty);
    any_penalty |= prm.repetition_penalty != 1.0f;
  }
  auto temp_t = at::tensor(temp).to(device), topk_t = at::tensor(topk, lopt).to(device);
  auto topp_t = at::tensor(topp).to(device), minp_t = at::tensor(minp).to(device), pen_t = at::tensor(pen).to(device);
  auto inv_t = at::where(temp_t > 0, 1.0 / temp_t, at::ones_like(temp_t)).unsqueeze(1);  // greedy: T = 1
  at::Tensor seen;
  if (any_penalty) {
    seen = at::zeros({B, V}, at::kBool);
    for (int64_t b = 0; b < B; ++b)
      for (int32_t id : requests[rows[b].request].prompt_ids) seen[b][id] = true;
    seen = seen.to(device);
  }

  std::vector<int64_t> active(B);  // decoding row -> index into rows
  for (int64_t b = 0; b < B; ++b) active[b] = b;
  for (int64_t step = 0; step < max_new; ++step) {
    const int64_t A = static_cast<int64_t>(active.size());
    auto lp_logits = logits * inv_t;  // (A,V) tempered, before the penalty: the policy's distribution
    if (any_penalty) kernels::apply_repetition_penalty_(logits, seen, pen_t);
    std::vector<float> u(A);
    for (int64_t a = 0; a < A; ++a) u[a] = kernels::counter_uniform(rows[active[a]].stream_key, step);
    auto tokens = kernels::sample_tokens(logits, temp_t, topk_t, topp_t, minp_t, at::tensor(u).to(device));
    auto lps = kernels::logsoftmax_gather(lp_logits, tokens, 1.0).cpu();
    at::Tensor top_v, top_i;  // (A,k) the most likely tokens of the same distribution
    if (top_k_lp > 0) {
      auto top = at::log_softmax(lp_logits, -1).topk(top_k_lp, -1);
      top_v = std::get<0>(top).cpu().contiguous();
      top_i = std::get<1>(top).cpu().contiguous();
    }
    auto tok_cpu = tokens.cpu();
    const int64_t* tk = tok_cpu.data_ptr<int64_t>();
    const float* lp = lps.data_ptr<float>();
    int64_t produced = 0, finished_total = 0;
    for (int64_t a = 0; a < A; ++a) {
      Row& row = rows[active[a]];
      if (row.done) {
        ++finished_total;
        continue;
      }
      const auto& prm = requests[row.request].params;
      if (prm.top_logprobs > 0) {
        const int64_t k = std::min(prm.top_logprobs, top_k_lp);
        const int64_t* ti = top_i.data_ptr<int64_t>() + a * top_k_lp;
        const float* tv = top_v.data_ptr<float>() + a * top_k_lp;
        std::vector<std::pair<int32_t, float>> top(k);
        for (int64_t i = 0; i < k; ++i) top[i] = {static_cast<int32_t>(ti[i]), tv[i]};
        row.c.top_logprobs.push_back(std::move(top));
      }
      row.done = detail::append_token(row.c, static_cast<int32_t>(tk[a]), lp[a], row.stop_ids, prm, tok_);
      if (hooks.on_token) hooks.on_token(row.request, row.sample, row.c);
      ++produced;
      if (row.done) ++finished_total;
    }
    stats_.generated_tokens += produced;
    if (hooks.on_tokens && produced) hooks.on_tokens(produced);
    if (finished_total == A) break;

    // Drop finished rows once enough of them accumulated.
    auto next_ids = tokens.unsqueeze(1);
    if (finished_total > 0 && finished_total >= opts_.compact_fraction * A) {
      std::vector<int64_t> keep_a, keep_rows;
      for (int64_t a = 0; a < A; ++a)
        if (!rows[active[a]].done) {
          keep_a.push_back(a);
          keep_rows.push_back(active[a]);
        }
      auto k = at::tensor(keep_a, lopt).to(device);
      cache.select_rows(k);
      key_mask = key_mask.index_select(0, k);
      next_pos = next_pos.index_select(0, k);
      next_ids = next_ids.index_select(0, k);
      temp_t = temp_t.index_select(0, k);
      topk_t = topk_t.index_select(0, k);
      topp_t = topp_t.index_select(0, k);
      minp_t = minp_t.index_select(0, k);
      pen_t = pen_t.index_select(0, k);
      inv_t = inv_t.index_select(0, k);
      if (any_penalty) seen = seen.index_select(0, k);
      active = keep_rows;
    }
    if (any_penalty) {
      auto cur = next_ids.squeeze(1);
      seen.index_put_({at::arange(cur.size(0), lopt.device(device)), cur}, true);
    }
    key_mask = at::cat({key_mask, at::ones({key_mask.size(0), 1}, key_mask.options())}, 1);
    model::ForwardInput stepin;
    stepin.input_ids = next_ids;
    stepin.position_ids = next_pos.unsqueeze(1);
    stepin.key_mask = key_mask.all().item<bool>() ? at::Tensor() : key_mask;
    stepin.cache = &cache;
    logits = model_.head(model_.forward(stepin).hidden.select(1, 0)).to(at::kFloat);
    next_pos = next_pos + 1;
  }
  stats_.decode_s += seconds_since(t1);

  for (auto& row : rows) {
    detail::finish_completion(row.c, requests[row.request].params, tok_);
    out[row.request][row.sample] = std::move(row.c);
  }
}

}  // namespace cada::rollout
