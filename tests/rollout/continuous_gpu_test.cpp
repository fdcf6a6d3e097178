// Continuous batching on CUDA (label gpu): graph-captured decoding equals eager decoding
// (bitwise in float32, token-identical in bfloat16), and greedy tokens equal the CPU's.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include "cada/kernels/ops.h"
#include "cada/model/loader.h"
#include "cada/rollout/generator.h"

using namespace cada;

namespace {

bool have_gpu() { return kernels::cuda_kernels_available() && torch::cuda::is_available(); }

model::Transformer gpu_tiny_model() {
  nlohmann::json j = {{"model_type", "qwen2"},    {"hidden_size", 64},        {"intermediate_size", 96},
                      {"num_hidden_layers", 3},   {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                      {"vocab_size", 500},        {"eos_token_id", 3}};
  model::Transformer m(model::ModelConfig::from_json(j, "test"));
  model::init_weights(m, 9, 0.3);
  m->eval();
  return m;
}

std::vector<rollout::Request> gpu_requests(float temperature) {
  std::vector<rollout::Request> reqs;
  for (int i = 0; i < 40; ++i) {
    rollout::Request r;
    for (int t = 0; t < 3 + (i * 13) % 40; ++t) r.prompt_ids.push_back(4 + (i * 31 + t * 7) % 490);
    r.params.temperature = temperature;
    r.params.top_p = i % 3 == 0 ? 0.9f : 1.0f;
    r.params.max_new_tokens = 5 + (i * 17) % 60;
    r.seed = 100 + i;
    r.n = 1 + i % 3;
    reqs.push_back(r);
  }
  return reqs;
}

std::vector<std::vector<rollout::Completion>> run(model::TransformerImpl& m, const std::vector<rollout::Request>& reqs,
                                                  rollout::Engine engine, bool graphs, int64_t rows,
                                                  rollout::GenerationStats* stats = nullptr) {
  rollout::GeneratorOptions o;
  o.engine = engine;
  o.cuda_graphs = graphs;
  o.max_batch_rows = rows;
  rollout::Generator g(m, nullptr, o);
  auto out = g.generate(reqs);
  if (stats) *stats = g.stats();
  return out;
}

}  // namespace

TEST(ContinuousGpu, GraphsEqualEagerBitwiseInFloat32) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device or CUDA kernels in this build";
  auto m = gpu_tiny_model();
  m->to(at::kCUDA);
  for (float temperature : {0.0f, 1.0f}) {
    auto reqs = gpu_requests(temperature);
    rollout::GenerationStats st;
    auto graphed = run(*m, reqs, rollout::Engine::kContinuous, true, 16, &st);
    auto eager = run(*m, reqs, rollout::Engine::kContinuous, false, 16);
    EXPECT_GT(st.graph_replays, 0);
    for (size_t i = 0; i < reqs.size(); ++i)
      for (size_t j = 0; j < graphed[i].size(); ++j) {
        EXPECT_EQ(graphed[i][j].ids, eager[i][j].ids) << i << " " << j;
        EXPECT_EQ(graphed[i][j].logprobs, eager[i][j].logprobs) << i << " " << j;
      }
  }
}

TEST(ContinuousGpu, GraphsEqualEagerGreedyInBfloat16) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device or CUDA kernels in this build";
  auto m = gpu_tiny_model();
  m->to(at::kCUDA, at::kBFloat16);
  auto reqs = gpu_requests(0.0f);
  auto graphed = run(*m, reqs, rollout::Engine::kContinuous, true, 16);
  auto eager = run(*m, reqs, rollout::Engine::kContinuous, false, 16);
  for (size_t i = 0; i < reqs.size(); ++i)
    for (size_t j = 0; j < graphed[i].size(); ++j) EXPECT_EQ(graphed[i][j].ids, eager[i][j].ids) << i << " " << j;
}

TEST(ContinuousGpu, GreedyTokensEqualTheCpu) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device or CUDA kernels in this build";
  auto m = gpu_tiny_model();
  auto reqs = gpu_requests(0.0f);
  auto cpu = run(*m, reqs, rollout::Engine::kStatic, false, 16);
  m->to(at::kCUDA);
  auto gpu = run(*m, reqs, rollout::Engine::kContinuous, true, 16);
  int64_t same = 0, total = 0;
  for (size_t i = 0; i < reqs.size(); ++i)
    for (size_t j = 0; j < gpu[i].size(); ++j) {
      ++total;
      same += gpu[i][j].ids == cpu[i][j].ids;
      for (size_t t = 0; t < std::min(gpu[i][j].logprobs.size(), cpu[i][j].logprobs.size()); ++t) {
        if (gpu[i][j].ids[t] != cpu[i][j].ids[t]) break;
        EXPECT_NEAR(gpu[i][j].logprobs[t], cpu[i][j].logprobs[t], 1e-4) << i << " " << j << " " << t;
      }
    }
  EXPECT_EQ(same, total);
}
