// Qwen3, Gemma and Gemma-2: config parsing (defaults as transformers reads them, errors naming
// the key), the choice between the fused decoding step and the model's own step, and
// incremental decoding equal to the full forward through per-layer windows and soft-caps.
// Numerics against transformers: tests/parity/test_new_archs.py.
#include <gtest/gtest.h>

#include <optional>

#include "cada/model/loader.h"
#include "cada/model/transformer.h"
#include "cada/util/error.h"

using namespace cada::model;
using nlohmann::json;

namespace {

json tiny(const std::string& type) {
  return {{"model_type", type},       {"hidden_size", 32},         {"intermediate_size", 48},
          {"num_hidden_layers", 3},   {"num_attention_heads", 4},  {"num_key_value_heads", 2},
          {"head_dim", 12},           {"vocab_size", 97}};
}

std::string error_of(const json& j) {
  try {
    ModelConfig::from_json(j, "cfg.json");
  } catch (const cada::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(ArchConfig, UnknownModelTypeNamesTheSupportedOnes) {
  auto j = tiny("phi3");
  const auto msg = error_of(j);
  EXPECT_NE(msg.find("cfg.json: model_type 'phi3' is not supported"), std::string::npos) << msg;
  for (const char* t : {"llama", "qwen2", "mistral", "qwen3", "gemma", "gemma2"})
    EXPECT_NE(msg.find(t), std::string::npos) << t;
  j.erase("model_type");
  EXPECT_NE(error_of(j).find("model_type '' is not supported"), std::string::npos);
}

TEST(ArchConfig, BadFamilyKeysAreNamed) {
  auto j = tiny("gemma2");
  j["layer_types"] = {"full_attention", "sliding_attention"};  // 2 entries for 3 layers
  EXPECT_NE(error_of(j).find("'layer_types' must be a list of num_hidden_layers (3)"), std::string::npos);
  j["layer_types"] = {"full_attention", "sliding_attention", "chunked_attention"};
  EXPECT_NE(error_of(j).find("layer_types[2]"), std::string::npos);
  j = tiny("gemma2");
  j["query_pre_attn_scalar"] = "24";
  EXPECT_NE(error_of(j).find("'query_pre_attn_scalar' must be a number"), std::string::npos);
  j = tiny("qwen3");
  j["hidden_act"] = "relu";
  EXPECT_NE(error_of(j).find("activation 'relu' is not supported"), std::string::npos);
  j = tiny("gemma");
  j["final_logit_softcapping"] = -1.0;  // read by Gemma-2 only; Gemma ignores it as transformers does
  EXPECT_EQ(error_of(j), "");
  j = tiny("gemma2");
  j["attn_logit_softcapping"] = -1.0;
  EXPECT_NE(error_of(j).find("soft-capping"), std::string::npos);
}

TEST(ArchConfig, DefaultsFollowTransformers) {
  auto q = tiny("qwen3");
  q.erase("head_dim");
  auto c = ModelConfig::from_json(q);
  EXPECT_EQ(c.head_dim, 128);  // Qwen3Config's default, not hidden_size / heads
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.architecture, "Qwen3ForCausalLM");
  EXPECT_EQ(c.min_window(), 0);
  q["use_sliding_window"] = true;
  q["sliding_window"] = 5;
  q["max_window_layers"] = 1;
  c = ModelConfig::from_json(q);
  EXPECT_EQ(c.layer_windows, (std::vector<int64_t>{0, 5, 5}));
  q["use_sliding_window"] = false;  // transformers drops the window: every layer is full
  EXPECT_EQ(ModelConfig::from_json(q).min_window(), 0);

  c = ModelConfig::from_json(tiny("gemma"));
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.hidden_act, "gelu_pytorch_tanh");
  EXPECT_TRUE(c.norm_plus_one && c.scale_embeddings && !c.sandwich_norms);
  auto g = tiny("gemma");
  g["hidden_act"] = "gelu";  // Gemma's legacy value means the tanh approximation
  EXPECT_EQ(ModelConfig::from_json(g).hidden_act, "gelu_pytorch_tanh");

  c = ModelConfig::from_json(tiny("gemma2"));
  EXPECT_EQ(c.layer_windows, (std::vector<int64_t>{4096, 0, 4096}));  // even layers slide
  EXPECT_DOUBLE_EQ(c.attention_scale, 1.0 / 16.0);                      // query_pre_attn_scalar 256
  EXPECT_DOUBLE_EQ(c.attn_logit_softcapping, 50.0);
  EXPECT_DOUBLE_EQ(c.final_logit_softcapping, 30.0);
  auto g2 = tiny("gemma2");
  g2["final_logit_softcapping"] = nullptr;  // null: no cap
  g2["layer_types"] = {"full_attention", "full_attention", "sliding_attention"};
  g2["sliding_window"] = 6;
  c = ModelConfig::from_json(g2);
  EXPECT_DOUBLE_EQ(c.final_logit_softcapping, 0.0);
  EXPECT_EQ(c.layer_windows, (std::vector<int64_t>{0, 0, 6}));
}

TEST(ArchConfig, SavedConfigReadsBackTheSame) {
  for (const char* t : {"qwen3", "gemma", "gemma2"}) {
    auto j = tiny(t);
    if (std::string(t) == "gemma2") j["sliding_window"] = 7;
    auto c = ModelConfig::from_json(j);
    auto back = ModelConfig::from_json(c.to_json());
    EXPECT_EQ(back.layer_windows, c.layer_windows) << t;
    EXPECT_EQ(back.hidden_act, c.hidden_act) << t;
    EXPECT_EQ(back.tie_word_embeddings, c.tie_word_embeddings) << t;
    EXPECT_DOUBLE_EQ(back.attention_scale, c.attention_scale) << t;
    EXPECT_DOUBLE_EQ(back.final_logit_softcapping, c.final_logit_softcapping) << t;
    EXPECT_EQ(back.num_parameters(), c.num_parameters()) << t;
    Transformer m(c);
    int64_t n = 0;
    for (const auto& [name, p] : m->hf_named_parameters()) n += p.numel();
    EXPECT_EQ(n, c.num_parameters()) << t;
  }
}

// The fused CPU decoding step (kernels::decode_step) and the continuous engine's slots compute
// the plain Llama layer only; the new families take the model's own step.
TEST(ArchConfig, FusedStepOnlyForPlainLlamaLayers) {
  for (const char* t : {"llama", "qwen2", "mistral"}) EXPECT_TRUE(ModelConfig::from_json(tiny(t)).plain_llama_layers()) << t;
  for (const char* t : {"qwen3", "gemma", "gemma2"}) EXPECT_FALSE(ModelConfig::from_json(tiny(t)).plain_llama_layers()) << t;
}

// Decoding one token at a time (inference mode, the generator's path) equals the full forward
// without a cache, through q/k norms, GeGLU, sandwich norms, soft-caps and alternating windows
// shorter than the sequence, with a left-padded row.
TEST(Transformer, NewArchsIncrementalDecodingEqualsFullForward) {
  for (const char* t : {"qwen3", "gemma", "gemma2"}) {
    auto j = tiny(t);
    if (std::string(t) != "gemma") j["sliding_window"] = 4;
    if (std::string(t) == "qwen3") j["use_sliding_window"] = true, j["max_window_layers"] = 1;
    if (std::string(t) == "gemma2") j["attn_logit_softcapping"] = 1.5, j["final_logit_softcapping"] = 2.0;
    Transformer m(ModelConfig::from_json(j));
    init_weights(m, 3, 0.2);
    m->eval();
    auto ids = at::randint(1, 97, {2, 11}, at::kLong);
    auto mask = at::ones({2, 11}, at::kBool);
    mask[1].narrow(0, 0, 3).fill_(false);
    auto pos = (mask.to(at::kLong).cumsum(1) - 1).clamp_min(0);
    at::Tensor full;
    {
      torch::NoGradGuard ng;
      ForwardInput in;
      in.input_ids = ids;
      in.key_mask = mask;
      in.position_ids = pos;
      full = m->head(m->forward(in).hidden);  // (2,11,V)
    }
    c10::InferenceMode im;
    auto cache = KVCache::allocate(m->config(), 2, 12, at::kFloat);
    ForwardInput first;
    first.input_ids = ids.narrow(1, 0, 5);
    first.position_ids = pos.narrow(1, 0, 5);
    first.key_mask = mask.narrow(1, 0, 5);
    first.cache = &cache;
    std::vector<at::Tensor> parts{m->head(m->forward(first).hidden)};
    for (int64_t s = 5; s < 11; ++s) {
      ForwardInput step;
      step.input_ids = ids.narrow(1, s, 1);
      step.position_ids = pos.narrow(1, s, 1);
      step.key_mask = mask.narrow(1, 0, s + 1);
      step.cache = &cache;
      parts.push_back(m->head(m->forward(step).hidden));
    }
    auto inc = at::cat(parts, 1);
    EXPECT_LT((inc - full).abs().max().item<double>(), 1e-4) << t;
    if (std::string(t) == "gemma2") EXPECT_LE(full.abs().max().item<double>(), 2.0) << "final soft-cap";
  }
}
