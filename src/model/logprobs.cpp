#include "cada/model/logprobs.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "cada/util/error.h"

namespace cada::model {

at::Tensor token_logprobs(TransformerImpl& model, const at::Tensor& hidden, const at::Tensor& targets,
                          int64_t max_chunk_elems) {
  const int64_t C = hidden.size(-1);
  auto h = hidden.reshape({-1, C});          // (N,C)
  auto t = targets.reshape({-1}).to(at::kLong);  // (N)
  CADA_CHECK(h.size(0) == t.size(0), "token_logprobs: ", h.size(0), " hidden rows but ", t.size(0), " targets");
  const int64_t N = h.size(0);
  const int64_t V = model.lm_head_weight().size(0);
  const int64_t rows = std::max<int64_t>(1, max_chunk_elems / std::max<int64_t>(V, 1));
  std::vector<at::Tensor> parts;
  for (int64_t s = 0; s < N; s += rows) {
    const int64_t n = std::min(rows, N - s);
    auto logits = model.head(h.narrow(0, s, n)).to(at::kFloat);  // (n,V)
    auto lse = at::logsumexp(logits, -1);                          // (n)
    auto picked = logits.gather(1, t.narrow(0, s, n).unsqueeze(1)).squeeze(1);
    parts.push_back(picked - lse);
  }
  auto out = parts.empty() ? at::empty({0}, hidden.options().dtype(at::kFloat)) : at::cat(parts);
  return out.view(targets.sizes());
}

TokenStats token_stats(TransformerImpl& model, const at::Tensor& hidden, const at::Tensor& targets, double temperature,
                       bool want_entropy, bool entropy_grad, int64_t max_chunk_elems) {
  CADA_CHECK(temperature > 0, "temperature must be positive, got ", temperature);
  const int64_t N = hidden.size(0);
  const int64_t V = model.lm_head_weight().size(0);
  const int64_t rows = std::max<int64_t>(1, max_chunk_elems / std::max<int64_t>(V, 1));
  std::vector<at::Tensor> lps, ents;
  auto t = targets.to(at::kLong);
  for (int64_t s = 0; s < N; s += rows) {
    const int64_t n = std::min(rows, N - s);
    auto logits = model.head(hidden.narrow(0, s, n)).to(at::kFloat);  // (n,V)
    if (temperature != 1.0) logits = logits / temperature;
    auto lse = at::logsumexp(logits, -1);
    lps.push_back(logits.gather(1, t.narrow(0, s, n).unsqueeze(1)).squeeze(1) - lse);
    if (want_entropy) {
      auto compute = [&] {
        auto logp = logits - lse.unsqueeze(1);
        return -(logp.exp() * logp).sum(-1);
      };
      if (entropy_grad) {
        ents.push_back(compute());
      } else {
        torch::NoGradGuard ng;
        ents.push_back(compute());
      }
    }
  }
  TokenStats out;
  auto empty = at::empty({0}, hidden.options().dtype(at::kFloat));
  out.logprobs = lps.empty() ? empty : at::cat(lps);
  if (want_entropy) out.entropy = ents.empty() ? empty : at::cat(ents);
  return out;
}

CompletionBatch make_completion_batch(const std::vector<const std::vector<int32_t>*>& prompts,
                                      const std::vector<const std::vector<int32_t>*>& completions,
                                      bool share_prefix, const ModelConfig& cfg, const at::Device& device) {
  CADA_CHECK(prompts.size() == completions.size(), "completion batch: ", prompts.size(), " prompts but ",
             completions.size(), " completions");
  CompletionBatch b;
  b.B = static_cast<int64_t>(prompts.size());
  // Distinct prompts, in order of first appearance.
  std::map<std::vector<int32_t>, int64_t> index;
  std::vector<int64_t> row_prompt(b.B);
  std::vector<const std::vector<int32_t>*> uniq;
  int64_t P = 0, L = 0;
  for (int64_t i = 0; i < b.B; ++i) {
    CADA_CHECK(!prompts[i]->empty(), "completion batch: row ", i, " has an empty prompt");
    auto [it, fresh] = index.emplace(*prompts[i], static_cast<int64_t>(uniq.size()));
    if (fresh) uniq.push_back(prompts[i]);
    row_prompt[i] = it->second;
    b.T = std::max<int64_t>(b.T, completions[i]->size());
    P = std::max<int64_t>(P, prompts[i]->size());
    L = std::max<int64_t>(L, prompts[i]->size() + completions[i]->size());
  }
  b.T = std::max<int64_t>(b.T, 1);
  const int64_t U = static_cast<int64_t>(uniq.size());
  const int64_t window = cfg.min_window();
  b.shared = share_prefix && U < b.B && !(window > 0 && P + b.T > window);

  auto mask = at::zeros({b.B, b.T}, at::kFloat);
  auto ma = mask.accessor<float, 2>();
  std::vector<int64_t> rows, targets, scatter;
  if (!b.shared) {
    auto ids = at::zeros({b.B, L}, at::kLong);
    auto ia = ids.accessor<int64_t, 2>();
    for (int64_t i = 0; i < b.B; ++i) {
      int64_t t = 0;
      for (int32_t x : *prompts[i]) ia[i][t++] = x;
      const int64_t Pi = static_cast<int64_t>(prompts[i]->size());
      for (size_t c = 0; c < completions[i]->size(); ++c) {
        ia[i][t++] = (*completions[i])[c];
        rows.push_back(i * L + Pi - 1 + static_cast<int64_t>(c));
      }
    }
    b.ids = ids.to(device);
  } else {
    // Flattened hidden states: the U x P prompt positions, then the B x T completion positions.
    auto pids = at::zeros({U, P}, at::kLong);
    auto pa = pids.accessor<int64_t, 2>();
    for (int64_t u = 0; u < U; ++u)
      for (size_t t = 0; t < uniq[u]->size(); ++t) pa[u][t] = (*uniq[u])[t];
    auto ids = at::zeros({b.B, b.T}, at::kLong);
    auto pos = at::zeros({b.B, b.T}, at::kLong);
    auto km = at::ones({b.B, P + b.T}, at::kBool);
    auto ia = ids.accessor<int64_t, 2>();
    auto po = pos.accessor<int64_t, 2>();
    auto ka = km.accessor<bool, 2>();
    for (int64_t i = 0; i < b.B; ++i) {
      const int64_t u = row_prompt[i];
      const int64_t Pi = static_cast<int64_t>(prompts[i]->size());
      for (int64_t j = Pi; j < P; ++j) ka[i][j] = false;
      for (int64_t t = 0; t < b.T; ++t) po[i][t] = Pi + t;
      for (size_t c = 0; c < completions[i]->size(); ++c) {
        ia[i][c] = (*completions[i])[c];
        rows.push_back(c == 0 ? u * P + Pi - 1 : U * P + i * b.T + static_cast<int64_t>(c) - 1);
      }
    }
    b.ids = ids.to(device);
    b.prompt_ids = pids.to(device);
    b.row_prompt = at::tensor(row_prompt, at::kLong).to(device);
    b.positions = pos.to(device);
    b.key_mask = km.to(device);
  }
  for (int64_t i = 0; i < b.B; ++i)
    for (size_t c = 0; c < completions[i]->size(); ++c) {
      targets.push_back((*completions[i])[c]);
      scatter.push_back(i * b.T + static_cast<int64_t>(c));
      ma[i][c] = 1.0f;
    }
  b.mask = mask.to(device);
  b.rows = at::tensor(rows, at::kLong).to(device);
  b.targets = at::tensor(targets, at::kLong).to(device);
  b.scatter = at::tensor(scatter, at::kLong).to(device);
  return b;
}

at::Tensor completion_hidden(TransformerImpl& model, const CompletionBatch& b) {
  if (!b.shared) {
    ForwardInput in;
    in.input_ids = b.ids;
    auto h = model.forward(in).hidden;
    return h.reshape({-1, h.size(-1)}).index_select(0, b.rows);
  }
  auto cache = KVCache::growing(model.config());
  ForwardInput pin;
  pin.input_ids = b.prompt_ids;
  pin.cache = &cache;
  auto hp = model.forward(pin).hidden;  // (U,P,C)
  cache.select_rows(b.row_prompt);      // every row gets its prompt's keys and values
  ForwardInput cin;
  cin.input_ids = b.ids;
  cin.position_ids = b.positions;
  cin.key_mask = b.key_mask;
  cin.cache = &cache;
  auto hc = model.forward(cin).hidden;  // (B,T,C)
  const int64_t C = hp.size(-1);
  return at::cat({hp.reshape({-1, C}), hc.reshape({-1, C})}).index_select(0, b.rows);
}

std::vector<CompletionLogprobs> completion_logprobs(TransformerImpl& model,
                                                    const std::vector<std::vector<int32_t>>& prompts,
                                                    const std::vector<std::vector<int32_t>>& completions,
                                                    int64_t batch_size) {
  CADA_CHECK(prompts.size() == completions.size(), "completion_logprobs: ", prompts.size(), " prompts but ",
             completions.size(), " completions");
  CADA_CHECK(batch_size > 0, "batch size must be positive, got ", batch_size);
  torch::NoGradGuard no_grad;
  const size_t n = prompts.size();
  const int64_t V = model.config().vocab_size;
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  auto len = [&](size_t i) { return prompts[i].size() + completions[i].size(); };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return len(a) > len(b); });
  auto device = model.lm_head_weight().device();

  std::vector<CompletionLogprobs> out(n);
  for (size_t start = 0; start < n; start += batch_size) {
    const size_t end = std::min(n, start + static_cast<size_t>(batch_size));
    const int64_t B = static_cast<int64_t>(end - start);
    int64_t L = 0;
    for (size_t r = start; r < end; ++r) {
      size_t i = order[r];
      CADA_CHECK(!prompts[i].empty(), "record ", i + 1,
                 ": the prompt has no tokens, so the first completion token has no context");
      L = std::max<int64_t>(L, static_cast<int64_t>(len(i)));
    }
    // Right padding: causal attention keeps real tokens from ever seeing the padding,
    // so positions are plain arange and no mask is needed.
    auto ids = at::zeros({B, L}, at::kLong);
    auto acc = ids.accessor<int64_t, 2>();
    std::vector<int64_t> rows, targets;  // flattened (b, position) whose next token is scored
    for (int64_t b = 0; b < B; ++b) {
      size_t i = order[start + b];
      int64_t t = 0;
      for (int32_t id : prompts[i]) acc[b][t++] = id;
      for (int32_t id : completions[i]) acc[b][t++] = id;
      for (int64_t k = 0; k < L; ++k)
        CADA_CHECK(acc[b][k] >= 0 && acc[b][k] < V, "record ", i + 1, ": token id ", acc[b][k],
                   " is outside the vocabulary (size ", V, ")");
      const int64_t P = static_cast<int64_t>(prompts[i].size());
      for (size_t c = 0; c < completions[i].size(); ++c) {
        rows.push_back(b * L + P - 1 + static_cast<int64_t>(c));
        targets.push_back(completions[i][c]);
      }
    }
    ForwardInput in;
    in.input_ids = ids.to(device);
    auto hidden = model.forward(in).hidden.reshape({B * L, -1});
    auto row_t = at::tensor(rows, at::kLong).to(device);
    auto lp = token_logprobs(model, hidden.index_select(0, row_t), at::tensor(targets, at::kLong).to(device))
                  .to(at::kCPU).contiguous();
    const float* p = lp.data_ptr<float>();
    for (int64_t b = 0; b < B; ++b) {
      size_t i = order[start + b];
      out[i].logprobs.assign(p, p + completions[i].size());
      p += completions[i].size();
    }
  }
  return out;
}

}  // namespace cada::model
