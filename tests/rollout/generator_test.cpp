// Rollout engine: batching does not change results, seeds reproduce, groups share prefill,
// stop conditions and log-probs behave.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "cada/model/loader.h"
#include "cada/model/logprobs.h"
#include "cada/rollout/generator.h"
#include "cada/util/error.h"

using namespace cada;

namespace {

model::Transformer tiny_model(int64_t kv = 2) {
  nlohmann::json j = {{"model_type", "llama"},    {"hidden_size", 32},        {"intermediate_size", 48},
                      {"num_hidden_layers", 2},   {"num_attention_heads", 4}, {"num_key_value_heads", kv},
                      {"vocab_size", 50},         {"eos_token_id", 3}};
  model::Transformer m(model::ModelConfig::from_json(j, "test"));
  model::init_weights(m, 5, 0.3);
  m->eval();
  return m;
}

std::vector<rollout::Request> requests(float temperature, int64_t n) {
  std::vector<rollout::Request> r;
  std::vector<std::vector<int32_t>> prompts{{5, 6, 7}, {8}, {9, 10, 11, 12, 13, 14}, {15, 16}};
  for (size_t i = 0; i < prompts.size(); ++i) {
    rollout::Request q;
    q.prompt_ids = prompts[i];
    q.params.temperature = temperature;
    q.params.top_p = 0.95f;
    q.params.max_new_tokens = 12;
    q.params.ignore_eos = true;
    q.seed = 100 + i;
    q.n = n;
    r.push_back(q);
  }
  return r;
}

// Every test runs with both schedulers: static batches and continuous batching.
class GeneratorEngines : public ::testing::TestWithParam<rollout::Engine> {
 protected:
  rollout::GeneratorOptions opts(int64_t rows) const {
    rollout::GeneratorOptions o;
    o.max_batch_rows = rows;
    o.engine = GetParam();
    return o;
  }
};

}  // namespace

TEST_P(GeneratorEngines, BatchingDoesNotChangeSamples) {
  auto m = tiny_model();
  auto reqs = requests(1.0f, 3);
  rollout::Generator together(*m, nullptr, opts(12));
  auto a = together.generate(reqs);
  rollout::Generator small(*m, nullptr, opts(2));
  auto b = small.generate(reqs);
  for (size_t i = 0; i < reqs.size(); ++i) {
    ASSERT_EQ(a[i].size(), 3u);
    for (size_t j = 0; j < 3; ++j) {
      EXPECT_EQ(a[i][j].ids, b[i][j].ids) << "request " << i << " sample " << j;
      EXPECT_EQ(a[i][j].ids.size(), 12u);
      EXPECT_EQ(a[i][j].finish_reason, "length");
    }
  }
  // Samples of a group differ from each other (distinct random streams).
  EXPECT_NE(a[0][0].ids, a[0][1].ids);
}

TEST_P(GeneratorEngines, SeedsReproduceAndLogprobsMatchTheModel) {
  auto m = tiny_model(1);
  auto reqs = requests(0.8f, 2);
  rollout::Generator g(*m, nullptr, opts(8));
  auto a = g.generate(reqs), b = g.generate(reqs);
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(a[i][0].ids, b[i][0].ids);
  reqs[0].seed = 999;
  auto c = g.generate(reqs);
  EXPECT_NE(a[0][0].ids, c[0][0].ids);

  // The returned log-probs are log softmax(logits / T) of the model at each sampled token.
  torch::NoGradGuard ng;
  for (size_t i = 0; i < reqs.size(); ++i) {
    const auto& comp = a[i][1];
    std::vector<int64_t> seq(reqs[i].prompt_ids.begin(), reqs[i].prompt_ids.end());
    seq.insert(seq.end(), comp.ids.begin(), comp.ids.end());
    model::ForwardInput in;
    in.input_ids = at::tensor(seq, at::kLong).unsqueeze(0);
    auto logits = m->head(m->forward(in).hidden)[0] / 0.8;  // (L,V)
    auto lsm = at::log_softmax(logits, -1);
    const int64_t P = static_cast<int64_t>(reqs[i].prompt_ids.size());
    for (size_t t = 0; t < comp.ids.size(); ++t)
      EXPECT_NEAR(comp.logprobs[t], lsm[P - 1 + t][comp.ids[t]].item<float>(), 1e-4) << i << " " << t;
  }
}

TEST_P(GeneratorEngines, GreedyLogprobsEqualTeacherForcedLogprobs) {
  auto m = tiny_model();
  auto reqs = requests(0.0f, 1);
  rollout::Generator g(*m, nullptr, opts(8));
  auto out = g.generate(reqs);
  for (size_t i = 0; i < reqs.size(); ++i) {
    auto lp = model::completion_logprobs(*m, {reqs[i].prompt_ids}, {out[i][0].ids}, 1)[0].logprobs;
    ASSERT_EQ(lp.size(), out[i][0].logprobs.size());
    for (size_t t = 0; t < lp.size(); ++t) EXPECT_NEAR(lp[t], out[i][0].logprobs[t], 1e-4);
  }
}

TEST_P(GeneratorEngines, StopsAtEosPerSequence) {
  auto m = tiny_model();
  auto reqs = requests(0.0f, 1);
  rollout::Generator g(*m, nullptr, opts(8));
  auto free = g.generate(reqs);
  // Make the token that request 2 produces at step 4 a stop token for everyone.
  const int32_t stop = free[2][0].ids[4];
  for (auto& r : reqs) r.params.stop_token_ids = {stop};
  auto out = g.generate(reqs);
  for (size_t i = 0; i < reqs.size(); ++i) {
    const auto& c = out[i][0];
    auto it = std::find(free[i][0].ids.begin(), free[i][0].ids.end(), stop);
    if (it == free[i][0].ids.end()) {
      EXPECT_EQ(c.ids, free[i][0].ids);
      EXPECT_EQ(c.finish_reason, "length");
    } else {
      std::vector<int32_t> want(free[i][0].ids.begin(), it + 1);
      EXPECT_EQ(c.ids, want);
      EXPECT_EQ(c.finish_reason, "stop");
    }
  }
  EXPECT_LE(out[2][0].ids.size(), 5u);
}

TEST_P(GeneratorEngines, RejectsBadRequests) {
  auto m = tiny_model();
  rollout::Generator g(*m, nullptr, opts(8));
  auto reqs = requests(1.0f, 1);
  reqs[1].prompt_ids = {};
  EXPECT_THROW(g.generate(reqs), cada::Error);
  reqs = requests(1.0f, 1);
  reqs[0].params.top_p = 0;
  EXPECT_THROW(g.generate(reqs), cada::Error);
  reqs = requests(1.0f, 1);
  reqs[0].prompt_ids = {999};
  EXPECT_THROW(g.generate(reqs), cada::Error);
  reqs = requests(1.0f, 1);
  reqs[0].params.stop = {"x"};  // stop strings need a tokenizer
  EXPECT_THROW(g.generate(reqs), cada::Error);
}

INSTANTIATE_TEST_SUITE_P(Schedulers, GeneratorEngines,
                         ::testing::Values(rollout::Engine::kStatic, rollout::Engine::kContinuous),
                         [](const ::testing::TestParamInfo<rollout::Engine>& i) {
                           return i.param == rollout::Engine::kStatic ? std::string("Static") : std::string("Continuous");
                         });

// Top log-probs: the k most likely tokens of the same distribution as the chosen token's
// log-prob, sorted; greedy picks the first. Requests that ask run on static batches whatever the
// engine, and the sampled tokens do not change.
TEST_P(GeneratorEngines, TopLogprobsAreTheMostLikelyTokens) {
  auto m = tiny_model();
  auto reqs = requests(0.7f, 2);
  rollout::Generator plain(*m, nullptr, opts(8));
  auto base = plain.generate(reqs);
  for (auto& r : reqs) r.params.top_logprobs = 5;
  reqs[1].params.top_logprobs = 2;  // each request gets its own count
  reqs[2].params.temperature = 0.0f;
  auto base_greedy = plain.generate({reqs[2]});
  rollout::Generator g(*m, nullptr, opts(8));
  auto out = g.generate(reqs);
  for (size_t i = 0; i < reqs.size(); ++i)
    for (int64_t j = 0; j < reqs[i].n; ++j) {
      const auto& c = out[i][j];
      const auto& want = i == 2 ? base_greedy[0][j] : base[i][j];
      EXPECT_EQ(c.ids, want.ids) << "asking for top log-probs changed the samples";
      ASSERT_EQ(c.top_logprobs.size(), c.ids.size());
      for (size_t t = 0; t < c.ids.size(); ++t) {
        const auto& top = c.top_logprobs[t];
        ASSERT_EQ(static_cast<int64_t>(top.size()), reqs[i].params.top_logprobs);
        for (size_t k = 1; k < top.size(); ++k) EXPECT_GE(top[k - 1].second, top[k].second);
        for (const auto& [id, lp] : top)  // the chosen token, when listed, has the same log-prob
          if (id == c.ids[t]) EXPECT_NEAR(lp, c.logprobs[t], 1e-5);
        EXPECT_GE(top[0].second, c.logprobs[t] - 1e-5);
        if (i == 2) EXPECT_EQ(top[0].first, c.ids[t]) << "greedy takes the most likely token";
      }
    }
  // The distribution itself: the first step's top-5 equal log_softmax(logits / T) of the prompt.
  torch::NoGradGuard ng;
  model::ForwardInput in;
  in.input_ids = at::tensor(std::vector<int64_t>(reqs[0].prompt_ids.begin(), reqs[0].prompt_ids.end())).unsqueeze(0);
  auto h = m->forward(in).hidden.select(1, -1);
  auto lp = at::log_softmax(m->head(h).to(at::kFloat) / 0.7, -1)[0];
  auto ref = lp.topk(5);
  for (int64_t k = 0; k < 5; ++k) {
    EXPECT_EQ(out[0][0].top_logprobs[0][k].first, std::get<1>(ref)[k].item<int64_t>());
    EXPECT_NEAR(out[0][0].top_logprobs[0][k].second, std::get<0>(ref)[k].item<float>(), 1e-5);
  }
}

// The token sink sees every token of every sample, in order, with the finish reason on the last.
TEST_P(GeneratorEngines, TokenSinkSeesEveryToken) {
  auto m = tiny_model();
  auto reqs = requests(1.0f, 3);
  reqs[1].params.ignore_eos = false;
  std::map<std::pair<size_t, int64_t>, std::vector<int32_t>> seen;
  std::map<std::pair<size_t, int64_t>, std::string> finish;
  int64_t counted = 0;
  rollout::GenerateHooks hooks;
  hooks.on_tokens = [&](int64_t k) { counted += k; };
  hooks.on_token = [&](size_t r, int64_t s, const rollout::Completion& c) {
    auto& ids = seen[{r, s}];
    ASSERT_EQ(c.ids.size(), ids.size() + 1) << "one token per call";
    ids.push_back(c.ids.back());
    finish[{r, s}] = c.finish_reason;
  };
  rollout::Generator g(*m, nullptr, opts(5));
  auto out = g.generate(reqs, hooks);
  int64_t total = 0;
  for (size_t i = 0; i < reqs.size(); ++i)
    for (int64_t j = 0; j < reqs[i].n; ++j) {
      EXPECT_EQ(seen[std::make_pair(i, j)], out[i][j].ids);
      EXPECT_EQ(finish[std::make_pair(i, j)], out[i][j].finish_reason);
      total += static_cast<int64_t>(out[i][j].ids.size());
    }
  EXPECT_EQ(counted, total);
}
