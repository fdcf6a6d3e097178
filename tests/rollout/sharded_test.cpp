// Sharded generation over two Gloo processes equals one process: every rank gets every
// completion, in request order, with the tokens and log-probs one process generates.
#include <gtest/gtest.h>

#include "../dist/two_process.h"
#include "cada/model/loader.h"
#include "cada/rollout/sharded.h"

using namespace cada;

namespace {

model::Transformer sharded_tiny_model() {
  nlohmann::json j = {{"model_type", "llama"},    {"hidden_size", 32},        {"intermediate_size", 48},
                      {"num_hidden_layers", 2},   {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                      {"vocab_size", 60},         {"eos_token_id", 3}};
  model::Transformer m(model::ModelConfig::from_json(j, "test"));
  model::init_weights(m, 3, 0.4);
  m->eval();
  return m;
}

std::vector<rollout::Request> sharded_requests() {
  std::vector<rollout::Request> reqs;
  for (int i = 0; i < 7; ++i) {  // 7 requests: shards of 4 and 3
    rollout::Request r;
    for (int t = 0; t <= i % 4; ++t) r.prompt_ids.push_back(5 + (i * 9 + t) % 50);
    r.params.temperature = 0.8f;
    r.params.top_p = 0.9f;
    r.params.max_new_tokens = 4 + i;
    r.seed = 70 + i;
    r.n = 2;
    reqs.push_back(r);
  }
  return reqs;
}

}  // namespace

TEST(Sharded, TwoGlooProcessesEqualOneProcess) {
  int st = 0;
  const int rc = dist::run_pair(
      [](int rank, int port) {
        auto m = sharded_tiny_model();
        auto reqs = sharded_requests();
        auto& comm = dist::init(dist::launch(rank, 2, port), dist::opts(30));
        for (auto engine : {rollout::Engine::kStatic, rollout::Engine::kContinuous}) {
          rollout::GeneratorOptions o;
          o.engine = engine;
          o.max_batch_rows = 3;
          rollout::Generator alone(*m, nullptr, o);
          const auto want = alone.generate(reqs);  // what one process generates
          rollout::Generator gen(*m, nullptr, o);
          const auto got = rollout::generate_sharded(gen, comm, reqs);
          ASSERT_EQ(got.size(), want.size()) << "rank " << rank;
          for (size_t i = 0; i < want.size(); ++i) {
            ASSERT_EQ(got[i].size(), 2u);
            for (size_t j = 0; j < 2; ++j) {
              EXPECT_EQ(got[i][j].ids, want[i][j].ids) << "rank " << rank << " request " << i << " sample " << j;
              // Batches of other sizes may round the last bit differently.
              ASSERT_EQ(got[i][j].logprobs.size(), want[i][j].logprobs.size());
              for (size_t t = 0; t < want[i][j].logprobs.size(); ++t)
                EXPECT_NEAR(got[i][j].logprobs[t], want[i][j].logprobs[t], 1e-5) << "rank " << rank << " request " << i;
              EXPECT_EQ(got[i][j].finish_reason, want[i][j].finish_reason);
            }
          }
          // This rank generated its share only.
          EXPECT_EQ(gen.stats().generated_tokens > 0, true);
          EXPECT_LT(gen.stats().generated_tokens, alone.stats().generated_tokens) << "rank " << rank;
          comm.barrier();
        }
      },
      &st);
  EXPECT_EQ(rc, 0);
}
