// The local judge backend: greedy generation through the rollout engine, and next-token
// log-probabilities of token groups from one forward pass per batch.
#include <algorithm>
#include <map>
#include <numeric>

#include "cada/model/transformer.h"
#include "cada/reward/judge.h"
#include "cada/rollout/generator.h"
#include "cada/text/chat_template.h"
#include "cada/text/tokenizer.h"
#include "internal.h"

namespace cada::reward {

namespace {

class ModelJudgeBackend : public JudgeBackend {
 public:
  ModelJudgeBackend(model::Transformer net, std::shared_ptr<const text::Tokenizer> tok,
                    std::shared_ptr<const text::ChatTemplate> tmpl, std::string system, int64_t batch_size,
                    int64_t max_new_tokens)
      : net_(std::move(net)), tok_(std::move(tok)), tmpl_(std::move(tmpl)), system_(std::move(system)),
        batch_size_(batch_size), max_new_tokens_(max_new_tokens) {
    CADA_CHECK(tmpl_ || system_.empty(), "judge: a system prompt needs a chat template (raw = false)");
  }

  // The judge's input: [system turn,] user turn through the chat template, or raw text with BOS.
  std::vector<int32_t> ids(const std::string& prompt) const {
    if (!tmpl_) return tok_->encode(prompt, /*add_special_tokens=*/true);
    std::vector<text::Message> turns;
    if (!system_.empty()) turns.push_back({"system", system_});
    turns.push_back({"user", prompt});
    return tok_->encode(tmpl_->render(turns, /*add_generation_prompt=*/true), false);
  }

  std::vector<std::string> generate(const std::vector<std::string>& prompts) override {
    std::vector<rollout::Request> reqs;
    for (const auto& p : prompts) {
      rollout::Request r;
      r.prompt_ids = ids(p);
      r.params.temperature = 0.0f;
      r.params.max_new_tokens = max_new_tokens_;
      reqs.push_back(std::move(r));
    }
    rollout::Generator gen(*net_, tok_.get(), {batch_size_});
    auto res = gen.generate(reqs);
    std::vector<std::string> out;
    for (auto& r : res) out.push_back(r.empty() ? "" : r[0].text);
    return out;
  }

  std::vector<std::vector<double>> choice_logprobs(const std::vector<std::string>& prompts,
                                                   const std::vector<std::vector<std::string>>& groups) override {
    torch::NoGradGuard no_grad;
    const int64_t N = static_cast<int64_t>(prompts.size());
    const int64_t G = static_cast<int64_t>(groups.size());
    std::vector<std::vector<int32_t>> seqs;
    for (const auto& p : prompts) seqs.push_back(ids(p));
    std::vector<std::vector<double>> out(N, std::vector<double>(G, -std::numeric_limits<double>::infinity()));
    std::vector<int64_t> order(N);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return seqs[a].size() > seqs[b].size(); });
    const auto device = net_->model->embed_tokens->weight.device();
    std::vector<at::Tensor> group_ids;  // empty groups stay undefined: -inf
    for (const auto& g : groups) group_ids.push_back(g.empty() ? at::Tensor() : token_ids(g).to(device));
    for (int64_t start = 0; start < N; start += batch_size_) {
      const int64_t B = std::min(batch_size_, N - start);
      const int64_t L = static_cast<int64_t>(seqs[order[start]].size());
      CADA_CHECK(L > 0, "judge: an empty prompt");
      auto input = at::zeros({B, L}, at::kLong);
      auto acc = input.accessor<int64_t, 2>();
      std::vector<int64_t> last(B);
      for (int64_t b = 0; b < B; ++b) {
        const auto& s = seqs[order[start + b]];
        for (size_t t = 0; t < s.size(); ++t) acc[b][t] = s[t];
        last[b] = static_cast<int64_t>(s.size()) - 1;
      }
      model::ForwardInput in;  // right padding: causal attention never sees it
      in.input_ids = input.to(device);
      auto hidden = net_->forward(in).hidden;
      auto pooled = hidden.index({at::arange(B, at::TensorOptions().dtype(at::kLong).device(device)),
                                  at::tensor(last, at::kLong).to(device)});
      auto lp = at::log_softmax(net_->head(pooled).to(at::kFloat), -1);  // (B,V)
      for (int64_t g = 0; g < G; ++g) {
        if (!group_ids[g].defined()) continue;
        auto lg = at::logsumexp(lp.index_select(1, group_ids[g]), -1).to(at::kCPU, at::kDouble);  // (B)
        for (int64_t b = 0; b < B; ++b) out[order[start + b]][g] = lg[b].item<double>();
      }
    }
    return out;
  }

 private:
  // The ids of a group's token strings (each exactly one token; repeated ids count once).
  at::Tensor token_ids(const std::vector<std::string>& group) {
    std::vector<int64_t> ids;
    for (const auto& s : group) {
      auto it = ids_.find(s);
      if (it == ids_.end()) {
        auto enc = tok_->encode(s, /*add_special_tokens=*/false);
        CADA_CHECK(enc.size() == 1, "judge: token string \"", s, "\" is ", enc.size(),
                   " tokens for the judge's tokenizer; each must be exactly one token");
        it = ids_.emplace(s, enc[0]).first;
      }
      if (std::find(ids.begin(), ids.end(), it->second) == ids.end()) ids.push_back(it->second);
    }
    return at::tensor(ids, at::kLong);
  }

  model::Transformer net_;
  std::shared_ptr<const text::Tokenizer> tok_;
  std::shared_ptr<const text::ChatTemplate> tmpl_;
  std::string system_;
  int64_t batch_size_, max_new_tokens_;
  std::map<std::string, int32_t> ids_;
};

}  // namespace

namespace detail {

std::shared_ptr<JudgeBackend> make_model_judge_backend(model::Transformer net,
                                                       std::shared_ptr<const text::Tokenizer> tok,
                                                       std::shared_ptr<const text::ChatTemplate> chat,
                                                       std::string system, int64_t batch_size,
                                                       int64_t max_new_tokens) {
  return std::make_shared<ModelJudgeBackend>(std::move(net), std::move(tok), std::move(chat), std::move(system),
                                             batch_size, max_new_tokens);
}

}  // namespace detail

}  // namespace cada::reward
