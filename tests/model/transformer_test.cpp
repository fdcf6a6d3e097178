// Model-layer tests: incremental decoding with the KV cache equals the full forward,
// padded batches equal single sequences, config validation, save/load round trip.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>
#include <optional>

#include "cada/io/files.h"
#include "cada/model/loader.h"
#include "cada/model/logprobs.h"
#include "cada/model/transformer.h"
#include "cada/util/error.h"
#include "../test_util.h"

using namespace cada::model;

namespace {

using cada::testing_util::fresh_dir;
using cada::testing_util::max_diff;

ModelConfig tiny_config(const std::string& type = "llama", int64_t kv = 2, bool tied = false) {
  nlohmann::json j = {{"model_type", type},    {"hidden_size", 32},        {"intermediate_size", 48},
                      {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", kv},
                      {"vocab_size", 97},       {"tie_word_embeddings", tied}};
  return ModelConfig::from_json(j, "test");
}

Transformer random_model(const ModelConfig& cfg, uint64_t seed = 1) {
  Transformer m(cfg);
  init_weights(m, seed, 0.2);
  m->eval();
  return m;
}



}  // namespace

TEST(Transformer, KVCacheIncrementalEqualsFullForward) {
  for (const std::string type : {"llama", "qwen2", "mistral"}) {
    auto m = random_model(tiny_config(type));
    torch::NoGradGuard ng;
    auto ids = at::randint(0, 97, {2, 12}, at::kLong);
    ForwardInput full;
    full.input_ids = ids;
    auto ref = m->head(m->forward(full).hidden);  // (2,12,V)

    auto cache = KVCache::allocate(m->config(), 2, 16, at::kFloat);
    ForwardInput first;
    first.input_ids = ids.narrow(1, 0, 5);
    first.cache = &cache;
    std::vector<at::Tensor> parts{m->head(m->forward(first).hidden)};
    for (int t = 5; t < 12; ++t) {
      ForwardInput step;
      step.input_ids = ids.narrow(1, t, 1);
      step.cache = &cache;
      parts.push_back(m->head(m->forward(step).hidden));
    }
    EXPECT_EQ(cache.length, 12);
    EXPECT_LT(max_diff(at::cat(parts, 1), ref), 1e-5) << type;
  }
}

TEST(Transformer, LeftPaddedBatchWithMaskEqualsSingleSequences) {
  auto m = random_model(tiny_config("llama", 1));
  torch::NoGradGuard ng;
  auto a = at::randint(0, 97, {1, 9}, at::kLong), b = at::randint(0, 97, {1, 4}, at::kLong);
  // Left-pad b to length 9; positions count real tokens only.
  auto ids = at::cat({a, at::cat({at::zeros({1, 5}, at::kLong), b}, 1)}, 0);
  auto mask = at::ones({2, 9}, at::kBool);
  mask.index_put_({1, at::indexing::Slice(0, 5)}, false);
  auto pos = (mask.to(at::kLong).cumsum(1) - 1).clamp_min(0);
  auto cache = KVCache::allocate(m->config(), 2, 12, at::kFloat);
  ForwardInput in;
  in.input_ids = ids;
  in.key_mask = mask;
  in.position_ids = pos;
  in.cache = &cache;
  auto batched = m->head(m->forward(in).hidden);
  ForwardInput sa, sb;
  sa.input_ids = a;
  sb.input_ids = b;
  EXPECT_LT(max_diff(batched[0], m->head(m->forward(sa).hidden)[0]), 1e-5);
  EXPECT_LT(max_diff(batched[1].narrow(0, 5, 4), m->head(m->forward(sb).hidden)[0]), 1e-5);
  EXPECT_FALSE(batched.isnan().any().item<bool>());

  // One decoding step for both rows continues correctly from the padded cache.
  auto next = at::randint(0, 97, {2, 1}, at::kLong);
  ForwardInput step;
  step.input_ids = next;
  step.key_mask = at::cat({mask, at::ones({2, 1}, at::kBool)}, 1);
  step.position_ids = pos.select(1, 8).unsqueeze(1) + 1;
  step.cache = &cache;
  auto stepped = m->head(m->forward(step).hidden);
  ForwardInput fb;
  fb.input_ids = at::cat({b, next.narrow(0, 1, 1)}, 1);
  EXPECT_LT(max_diff(stepped[1][0], m->head(m->forward(fb).hidden)[0][4]), 1e-5);
}

TEST(Transformer, ChunkedTokenLogprobsEqualFullLogSoftmax) {
  auto m = random_model(tiny_config("llama", 2, /*tied=*/true));
  torch::NoGradGuard ng;
  auto h = at::randn({3, 7, 32});
  auto t = at::randint(0, 97, {3, 7}, at::kLong);
  auto full = at::log_softmax(m->head(h), -1).gather(2, t.unsqueeze(2)).squeeze(2);
  auto chunked = token_logprobs(*m, h, t, /*max_chunk_elems=*/97 * 2);  // 2 rows per chunk
  EXPECT_LT(max_diff(full, chunked), 1e-5);
}

TEST(Transformer, CompletionLogprobsIndependentOfBatching) {
  auto m = random_model(tiny_config());
  std::vector<std::vector<int32_t>> p{{1, 2, 3}, {4}, {5, 6, 7, 8, 9, 10}}, c{{11, 12}, {13, 14, 15, 16}, {17}};
  auto one = completion_logprobs(*m, p, c, 1);
  auto all = completion_logprobs(*m, p, c, 3);
  for (size_t i = 0; i < p.size(); ++i) {
    ASSERT_EQ(one[i].logprobs.size(), c[i].size());
    for (size_t k = 0; k < c[i].size(); ++k) EXPECT_NEAR(one[i].logprobs[k], all[i].logprobs[k], 1e-5);
  }
  EXPECT_THROW(completion_logprobs(*m, {{}}, {{1}}, 1), cada::Error);
  EXPECT_THROW(completion_logprobs(*m, {{1000}}, {{1}}, 1), cada::Error);
}

TEST(ModelConfig, RejectsBadConfigsWithTheKeyNamed) {
  auto bad = [](nlohmann::json j) -> std::string {
    try {
      ModelConfig::from_json(j, "cfg.json");
    } catch (const cada::Error& e) {
      return e.what();
    }
    return "";
  };
  nlohmann::json ok = {{"model_type", "llama"}, {"hidden_size", 32}, {"num_attention_heads", 4}};
  EXPECT_EQ(bad(ok), "");
  auto j = ok;
  j["model_type"] = "gpt2";
  EXPECT_NE(bad(j).find("model_type 'gpt2'"), std::string::npos);
  j = ok;
  j["num_key_value_heads"] = 3;
  EXPECT_NE(bad(j).find("multiple of num_key_value_heads"), std::string::npos);
  j = ok;
  j["hidden_size"] = "32";
  EXPECT_NE(bad(j).find("'hidden_size' must be an integer"), std::string::npos);
  j = ok;
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  EXPECT_NE(bad(j).find("rope type 'yarn'"), std::string::npos);
  EXPECT_NE(bad(j).find("cfg.json"), std::string::npos);
}

TEST(ModelConfig, Llama3RopeScalingLeavesHighFrequenciesAlone) {
  nlohmann::json j = {{"model_type", "llama"}, {"hidden_size", 64}, {"num_attention_heads", 1},
                      {"rope_theta", 500000.0},
                      {"rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                                        {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}}}};
  auto scaled = rope_inv_freq(ModelConfig::from_json(j));
  j.erase("rope_scaling");
  auto plain = rope_inv_freq(ModelConfig::from_json(j));
  EXPECT_FLOAT_EQ(scaled[0].item<float>(), plain[0].item<float>());            // short wavelengths kept
  EXPECT_NEAR(scaled[31].item<float>(), plain[31].item<float>() / 8.0, 1e-12);  // long ones divided
}

TEST(Loader, SaveLoadRoundTripAndShapeMismatch) {
  const std::string dir = fresh_dir("cada_model_roundtrip");
  auto m = random_model(tiny_config("qwen2"));
  save_model(m, dir, at::kFloat, /*max_shard_bytes=*/20000);
  EXPECT_TRUE(cada::io::file_exists(dir + "/model.safetensors.index.json"));
  auto back = load_model(dir);
  auto a = m->named_parameters(), b = back->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& item : a) EXPECT_TRUE(at::equal(item.value(), b[item.key()])) << item.key();

  // A config that contradicts the weights is refused, naming the tensor.
  auto cfg = m->config().to_json();
  cfg["intermediate_size"] = 64;
  cada::io::atomic_write_file(dir + "/config.json", cfg.dump());
  try {
    load_model(dir);
    FAIL() << "expected a shape error";
  } catch (const cada::Error& e) {
    EXPECT_NE(std::string(e.what()).find("mlp"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("config.json implies"), std::string::npos) << e.what();
  }
  for (const auto& f : cada::io::list_dir(dir)) cada::io::remove_file(dir + "/" + f);
}

// Shared-prefix training batches (GRPO groups): log-probs and parameter gradients equal those
// of the plain prompt+completion layout, with prompts and completions of different lengths,
// grouped-query attention, tied embeddings and a sliding window that the batch exceeds.
TEST(Transformer, SharedPromptPrefixEqualsPlainBatch) {
  struct Case {
    std::string type;
    int64_t kv;
    bool tied;
    int64_t window;
  };
  for (const auto& c : {Case{"llama", 2, false, 0}, Case{"qwen2", 4, true, 0}, Case{"mistral", 1, false, 0},
                        Case{"mistral", 2, false, 8}}) {
    auto cfg = tiny_config(c.type, c.kv, c.tied);
    if (c.window) cfg.sliding_window = c.window;
    auto m = random_model(cfg, 3);
    m->train();
    std::vector<std::vector<int32_t>> prompts = {{5, 9, 11, 2, 7}, {3, 4}, {8, 1, 6}};
    std::vector<std::vector<int32_t>> comps = {{12, 13, 14}, {15}, {16, 17, 18, 19}, {20, 21}, {22, 23, 24}, {}, {25}};
    std::vector<int> prompt_of = {0, 0, 1, 1, 0, 2, 2};  // interleaved groups; one empty completion
    std::vector<const std::vector<int32_t>*> p, q;
    for (size_t i = 0; i < comps.size(); ++i) {
      p.push_back(&prompts[prompt_of[i]]);
      q.push_back(&comps[i]);
    }
    auto run = [&](bool share, bool* shared) {
      auto b = make_completion_batch(p, q, share, cfg, at::kCPU);
      *shared = b.shared;
      m->zero_grad();
      auto lp = token_logprobs(*m, completion_hidden(*m, b), b.targets);
      (lp * at::linspace(0.5, 1.5, lp.size(0))).sum().backward();
      std::vector<at::Tensor> grads;
      for (auto& t : m->parameters()) grads.push_back(t.grad().clone());
      EXPECT_EQ(b.mask.sum().item<int64_t>(), lp.size(0));
      return std::make_pair(lp.detach(), grads);
    };
    bool plain_shared = true, shared = false;
    auto [lp0, g0] = run(false, &plain_shared);
    auto [lp1, g1] = run(true, &shared);
    EXPECT_FALSE(plain_shared);
    // A window of 8 is exceeded by 5 prompt + 4 completion positions: the plain layout is kept.
    EXPECT_EQ(shared, c.window == 0) << c.type;
    ASSERT_EQ(lp0.size(0), 14);
    EXPECT_LT(max_diff(lp0, lp1), 1e-5) << c.type;
    for (size_t k = 0; k < g0.size(); ++k)  // relative to the gradient's size: sums run in another order
      EXPECT_LT(max_diff(g0[k], g1[k]), 1e-5 * std::max(1.0, g0[k].abs().max().item<double>()))
          << c.type << " param " << k << " max |grad| " << g0[k].abs().max().item<double>();
    // The same numbers as scoring each pair alone.
    torch::NoGradGuard ng;
    auto single = completion_logprobs(*m, {prompts[1]}, {comps[3]});
    EXPECT_NEAR(single[0].logprobs[1], lp1[1 + 3 + 4 + 1].item<float>(), 1e-5);
  }
}

// Inference on CPU runs every projection on packed weights, q/k/v and gate/up as one product each
// (PackedWeights): it equals the forward with autograd, also after the weights change in place
// (an optimizer step), which must rebuild the concatenation; qwen2 covers the q/k/v biases.
TEST(Transformer, InferenceConcatenatedProjectionsFollowWeightUpdates) {
  for (const std::string type : {"llama", "qwen2"}) {
    auto m = random_model(tiny_config(type));
    auto ids = at::randint(0, 97, {2, 9}, at::kLong);
    auto run = [&](bool inference) {
      ForwardInput in;
      in.input_ids = ids;
      if (!inference) {
        torch::NoGradGuard ng;
        return m->head(m->forward(in).hidden);
      }
      c10::InferenceMode guard;
      return m->head(m->forward(in).hidden);
    };
    auto before = run(true);
    EXPECT_LT(max_diff(before, run(false)), 1e-5) << type;
    {
      torch::NoGradGuard ng;
      for (auto& p : m->parameters()) p.add_(at::randn_like(p) * 0.05);
    }
    auto after = run(true);
    EXPECT_GT(max_diff(after, before), 1e-3) << type;
    EXPECT_LT(max_diff(after, run(false)), 1e-5) << type;
  }
}

// Packing keeps a second copy of the weights, so it is capped: layers larger than the limit
// together are not packed, and get() says so (the caller then runs the plain products).
TEST(Transformer, PackedWeightsAreCappedBySize) {
  auto m = random_model(tiny_config("qwen2"));
  auto attn = m->model->layers[0]->as<DecoderLayerImpl>()->self_attn;
  const int64_t bytes = static_cast<int64_t>(attn->q_proj->weight.nbytes() + attn->k_proj->weight.nbytes() +
                                             attn->v_proj->weight.nbytes());
  at::Tensor b;
  PackedWeights fits(bytes);
  const auto* w = fits.get({&attn->q_proj, &attn->k_proj, &attn->v_proj}, &b);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->out_features(), attn->q_proj->weight.size(0) + 2 * attn->k_proj->weight.size(0));
  EXPECT_EQ(w->in_features(), attn->q_proj->weight.size(1));
  ASSERT_TRUE(b.defined());
  EXPECT_EQ(b.size(0), w->out_features());
  PackedWeights capped(bytes - 1);
  EXPECT_EQ(capped.get({&attn->q_proj, &attn->k_proj, &attn->v_proj}, &b), nullptr);
  EXPECT_NE(PackedWeights().get({&attn->q_proj, &attn->k_proj, &attn->v_proj}, &b), nullptr);
  // The packed product equals the three products.
  c10::InferenceMode guard;
  auto x = at::randn({5, attn->q_proj->weight.size(1)});
  auto ref = at::cat({attn->q_proj->forward(x), attn->k_proj->forward(x), attn->v_proj->forward(x)}, -1);
  EXPECT_LT(max_diff(cada::kernels::linear(x, *w, b), ref), 1e-5);
}

// In inference mode on CPU a decoding step runs all layers as one fused call
// (kernels::decode_step); it equals the layer-by-layer forward (run here without inference
// mode) step after step, with a left-padded row, for each family (qwen2: q/k/v biases).
TEST(Transformer, FusedDecodingStepsEqualLayerByLayerForward) {
  for (const std::string type : {"llama", "qwen2", "mistral"}) {
    auto m = random_model(tiny_config(type));
    auto ids = at::randint(1, 97, {3, 10}, at::kLong);
    auto mask = at::ones({3, 10}, at::kBool);
    mask[1].narrow(0, 0, 4).fill_(false);  // row 1: 4 positions of left padding
    auto pos = (mask.to(at::kLong).cumsum(1) - 1).clamp_min(0);
    auto run = [&](bool inference) {
      std::optional<c10::InferenceMode> im;
      std::optional<torch::NoGradGuard> ng;
      if (inference) im.emplace(); else ng.emplace();
      auto cache = KVCache::allocate(m->config(), 3, 12, at::kFloat);
      ForwardInput first;
      first.input_ids = ids.narrow(1, 0, 6);
      first.position_ids = pos.narrow(1, 0, 6);
      first.key_mask = mask.narrow(1, 0, 6);
      first.cache = &cache;
      std::vector<at::Tensor> logits{m->head(m->forward(first).hidden).select(1, 5)};
      for (int64_t t = 6; t < 10; ++t) {
        ForwardInput step;
        step.input_ids = ids.narrow(1, t, 1);
        step.position_ids = pos.narrow(1, t, 1);
        step.key_mask = mask.narrow(1, 0, t + 1);
        step.cache = &cache;
        logits.push_back(m->head(m->forward(step).hidden).select(1, 0));
      }
      EXPECT_EQ(cache.length, 10);
      return at::stack(logits).clone();
    };
    auto fused = run(true), composite = run(false);
    EXPECT_LT(max_diff(fused, composite), 1e-4) << type;
  }
}
