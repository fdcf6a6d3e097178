// Continuous batching (rollout/continuous.h) against one request at a time and against static
// batches: slot refill, compaction, EOS / stop ids, lengths, samplers and the sliding window
// change no token.
#include <gtest/gtest.h>

#include <algorithm>

#include "cada/model/loader.h"
#include "cada/rollout/decode_slots.h"
#include "cada/rollout/generator.h"

using namespace cada;

namespace {

model::Transformer continuous_tiny_model(const std::string& type = "llama", int64_t window = 0) {
  nlohmann::json j = {{"model_type", type},       {"hidden_size", 32},        {"intermediate_size", 48},
                      {"num_hidden_layers", 2},   {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                      {"vocab_size", 60},         {"eos_token_id", 3}};
  if (window > 0) j["sliding_window"] = window;
  model::Transformer m(model::ModelConfig::from_json(j, "test"));
  model::init_weights(m, 7, 0.4);
  m->eval();
  return m;
}

// Prompts of 1..9 tokens with budgets of 2..19 new tokens.
std::vector<rollout::Request> mixed_requests(float temperature, int64_t n) {
  std::vector<rollout::Request> reqs;
  for (int i = 0; i < 9; ++i) {
    rollout::Request r;
    for (int t = 0; t <= (i * 5) % 9; ++t) r.prompt_ids.push_back(4 + (i * 7 + t * 3) % 50);
    r.params.temperature = temperature;
    r.params.max_new_tokens = 2 + (i * 11) % 18;
    r.seed = 40 + i;
    r.n = n;
    reqs.push_back(r);
  }
  return reqs;
}

rollout::GeneratorOptions options(rollout::Engine engine, int64_t rows) {
  rollout::GeneratorOptions o;
  o.engine = engine;
  o.max_batch_rows = rows;
  return o;
}

void expect_same(const std::vector<std::vector<rollout::Completion>>& a,
                 const std::vector<std::vector<rollout::Completion>>& b, double lp_tol = 1e-4) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].size(), b[i].size());
    for (size_t j = 0; j < a[i].size(); ++j) {
      EXPECT_EQ(a[i][j].ids, b[i][j].ids) << "request " << i << " sample " << j;
      EXPECT_EQ(a[i][j].finish_reason, b[i][j].finish_reason) << "request " << i << " sample " << j;
      ASSERT_EQ(a[i][j].logprobs.size(), b[i][j].logprobs.size());
      for (size_t t = 0; t < a[i][j].logprobs.size(); ++t)
        EXPECT_NEAR(a[i][j].logprobs[t], b[i][j].logprobs[t], lp_tol) << i << " " << j << " " << t;
    }
  }
}

}  // namespace

TEST(Continuous, GreedyEqualsOneRequestAtATimeWithRefillEosAndStopIds) {
  auto m = continuous_tiny_model();
  auto reqs = mixed_requests(0.0f, 1);
  // A stop id that some completions meet midway, next to the config's EOS.
  rollout::Generator probe(*m, nullptr, options(rollout::Engine::kStatic, 1));
  auto free = probe.generate(reqs);
  const int32_t stop = free[4][0].ids[1];
  for (size_t i = 0; i < reqs.size(); i += 2) reqs[i].params.stop_token_ids = {stop};

  std::vector<std::vector<rollout::Completion>> alone;
  rollout::Generator one(*m, nullptr, options(rollout::Engine::kStatic, 1));
  for (const auto& r : reqs) alone.push_back(one.generate({r})[0]);
  rollout::Generator cont(*m, nullptr, options(rollout::Engine::kContinuous, 3));  // 9 rows through 3 slots
  auto got = cont.generate(reqs);
  expect_same(alone, got);
  int64_t stopped = 0, lengths = 0;
  for (const auto& c : got) (c[0].finish_reason == "stop" ? stopped : lengths) += 1;
  EXPECT_GT(stopped, 0);
  EXPECT_GT(lengths, 0);
  EXPECT_GT(cont.stats().steps, 0);
  // A second call on the same generator reuses the slots and gives the same tokens.
  expect_same(got, cont.generate(reqs), 0.0);
}

TEST(Continuous, SamplesEqualStaticBatchesForEverySampler) {
  auto m = continuous_tiny_model();
  for (int variant = 0; variant < 4; ++variant) {
    auto reqs = mixed_requests(0.9f, 3);
    for (size_t i = 0; i < reqs.size(); ++i) {
      auto& p = reqs[i].params;
      if (variant == 1) p.top_k = 5 + static_cast<int64_t>(i);
      if (variant == 2) {
        p.top_p = 0.8f;
        p.min_p = 0.05f;
      }
      if (variant == 3) {
        p.repetition_penalty = i % 2 ? 1.3f : 1.0f;
        p.temperature = i % 3 ? 0.7f : 0.0f;  // greedy rows among sampled ones
      }
    }
    rollout::Generator stat(*m, nullptr, options(rollout::Engine::kStatic, 12));
    rollout::Generator cont(*m, nullptr, options(rollout::Engine::kContinuous, 4));
    auto a = stat.generate(reqs), b = cont.generate(reqs);
    SCOPED_TRACE("variant " + std::to_string(variant));
    expect_same(a, b);
    EXPECT_NE(b[1][0].ids, b[1][1].ids);  // the samples of a group draw different streams
    // The same seeds give the same samples with another number of slots.
    rollout::Generator wide(*m, nullptr, options(rollout::Engine::kContinuous, 16));
    expect_same(b, wide.generate(reqs));
  }
}

TEST(Continuous, SlidingWindowEqualsStaticBatches) {
  auto m = continuous_tiny_model("mistral", 4);
  auto reqs = mixed_requests(0.0f, 1);
  rollout::Generator stat(*m, nullptr, options(rollout::Engine::kStatic, 4));
  rollout::Generator cont(*m, nullptr, options(rollout::Engine::kContinuous, 2));
  expect_same(stat.generate(reqs), cont.generate(reqs));
}

TEST(Continuous, SlotStepEqualsTheModelForward) {
  auto m = continuous_tiny_model("qwen2");
  c10::InferenceMode guard;
  rollout::DecodeSlots slots(*m, 3, 32, /*cuda_graphs=*/false);
  std::vector<int32_t> p0{5, 9, 11, 2, 7}, p1{8};
  rollout::StepKind greedy{kernels::SamplingKind::kGreedy, false};
  // Slot 2 gets p0, slot 0 gets p1; slot 1 stays empty.
  auto first = slots.prefill({&p0, &p1}, {{2}, {0}}, {{0.0f}, {0.0f}}, greedy);
  ASSERT_EQ(first.tokens.size(), 2u);
  auto logits = slots.forward(3, 32);  // (3,V)
  for (auto [slot, prompt, tok] : {std::tuple{2, &p0, first.tokens[0]}, std::tuple{0, &p1, first.tokens[1]}}) {
    std::vector<int64_t> seq(prompt->begin(), prompt->end());
    seq.push_back(tok);
    model::ForwardInput in;
    in.input_ids = at::tensor(seq, at::kLong).unsqueeze(0);
    auto full = m->head(m->forward(in).hidden)[0];  // (T,V)
    EXPECT_EQ(full[static_cast<int64_t>(prompt->size()) - 1].argmax().item<int64_t>(), tok);
    EXPECT_LT((full[-1] - logits[slot]).abs().max().item<double>(), 1e-5) << "slot " << slot;
  }
}
