// LoRA, activation checkpointing and chunked log-probs on tiny models this test creates:
//  - a fresh adapter (B = 0) changes nothing; with adapters off the model equals a separately
//    loaded base (GRPO's reference);
//  - merging equals base + adapter; save/load of an adapter folder round-trips;
//  - activation checkpointing gives the plain backward's gradients (full fine-tuning, LoRA, LoRA
//    with dropout: the recomputation repeats the masks), and really checkpoints;
//  - chunked log-probs and entropy equal the full computation, gradients included.
// PEFT parity is tests/parity/test_lora.py.
#include <gtest/gtest.h>

#include <ATen/autocast_mode.h>

#include <unistd.h>

#include <functional>
#include <set>

#include "cada/io/files.h"
#include "cada/model/checkpointing.h"
#include "cada/model/loader.h"
#include "cada/model/logprobs.h"
#include "cada/model/lora.h"
#include "cada/model/peft_io.h"
#include "cada/model/transformer.h"
#include "cada/util/error.h"
#include "../test_util.h"

using namespace cada::model;

namespace {

using cada::testing_util::fresh_dir;
using cada::testing_util::max_diff;

ModelConfig lora_base_config(const std::string& type = "llama", bool tied = false) {
  nlohmann::json j = {{"model_type", type},    {"hidden_size", 32},        {"intermediate_size", 48},
                      {"num_hidden_layers", 3}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                      {"vocab_size", 97},       {"tie_word_embeddings", tied}};
  return ModelConfig::from_json(j, "test");
}


// A random base model saved to a folder.
std::string saved_base(const std::string& name, const std::string& type = "llama") {
  const std::string dir = fresh_dir(name);
  Transformer m(lora_base_config(type));
  init_weights(m, 7, 0.2);
  save_model(m, dir, at::kFloat);
  return dir;
}

at::Tensor logits(TransformerImpl& m, const at::Tensor& ids) {
  ForwardInput in;
  in.input_ids = ids;
  return m.head(m.forward(in).hidden);
}

// Gives every adapter random B (a fresh one is zero), so that it changes the output.
void randomise_b(TransformerImpl& m, uint64_t seed) {
  torch::NoGradGuard ng;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& [name, p] : lora_named_parameters(m))
    if (name.find("lora_B") != std::string::npos) p.normal_(0.0, 0.3, gen);
}


LoraConfig lora(int64_t r = 4) {
  LoraConfig c;
  c.r = r;
  c.alpha = 8;
  c.seed = 3;
  return c;
}

// Loss and gradients (by name) of a summed-log-prob loss over a batch.
std::map<std::string, at::Tensor> gradients(TransformerImpl& m, const at::Tensor& ids, uint64_t seed = 0) {
  m.zero_grad();
  at::manual_seed(seed);
  ForwardInput in;
  in.input_ids = ids;
  auto h = m.forward(in).hidden;  // (B,T,C)
  auto lp = token_logprobs(m, h.narrow(1, 0, ids.size(1) - 1), ids.narrow(1, 1, ids.size(1) - 1));
  (-lp.sum()).backward();
  std::map<std::string, at::Tensor> out;
  for (const auto& item : m.named_parameters())
    if (item.value().grad().defined()) out[item.key()] = item.value().grad().clone();
  return out;
}

double max_relative(const std::map<std::string, at::Tensor>& a, const std::map<std::string, at::Tensor>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (const auto& [name, g] : a) {
    auto it = b.find(name);
    EXPECT_TRUE(it != b.end()) << name;
    if (it == b.end()) continue;
    worst = std::max(worst, max_diff(g, it->second) / std::max(g.abs().max().item<double>(), 1e-12));
  }
  return worst;
}

// Whether the autograd graph behind t contains a node whose name contains `what`.
bool graph_has(const at::Tensor& t, const std::string& what) {
  std::set<torch::autograd::Node*> seen;
  std::function<bool(torch::autograd::Node*)> walk = [&](torch::autograd::Node* n) {
    if (!n || !seen.insert(n).second) return false;
    if (n->name().find(what) != std::string::npos) return true;
    for (const auto& e : n->next_edges())
      if (walk(e.function.get())) return true;
    return false;
  };
  return walk(t.grad_fn().get());
}

}  // namespace

TEST(Lora, FreshAdapterChangesNothingAndFreezesTheBase) {
  auto m = load_model(saved_base("lora_fresh"));
  auto ids = at::randint(0, 97, {2, 9}, at::kLong);
  torch::NoGradGuard ng;
  auto before = logits(*m, ids);
  EXPECT_EQ(attach_lora(*m, lora()), 3 * 7);
  EXPECT_EQ(max_diff(before, logits(*m, ids)), 0.0);
  int64_t trainable = 0;
  for (const auto& item : m->named_parameters()) {
    EXPECT_EQ(item.value().requires_grad(), is_lora_parameter_name(item.key())) << item.key();
    trainable += item.value().requires_grad();
  }
  EXPECT_EQ(trainable, 2 * 3 * 7);
  EXPECT_EQ(lora_named_parameters(*m).size(), size_t(2 * 3 * 7));
  for (const auto& [name, p] : m->hf_named_parameters()) EXPECT_FALSE(is_lora_parameter_name(name)) << name;
}

TEST(Lora, AdaptersOffEqualASeparatelyLoadedBase) {
  const std::string dir = saved_base("lora_ref", "qwen2");
  auto policy = load_model(dir);
  auto base = load_model(dir);
  attach_lora(*policy, lora());
  randomise_b(*policy, 11);
  auto ids = at::randint(0, 97, {3, 8}, at::kLong);
  torch::NoGradGuard ng;
  EXPECT_GT(max_diff(logits(*policy, ids), logits(*base, ids)), 1e-3);  // the adapters do something
  {
    AdaptersOff off(*policy);
    EXPECT_EQ(max_diff(logits(*policy, ids), logits(*base, ids)), 0.0);
  }
  EXPECT_GT(max_diff(logits(*policy, ids), logits(*base, ids)), 1e-3);  // and are back on
}

TEST(Lora, MergeEqualsBasePlusAdapterAndSaveLoadRoundTrips) {
  const std::string base_dir = saved_base("lora_merge");
  auto m = load_model(base_dir);
  LoraConfig c = lora(5);
  c.target_modules = {"q_proj", "o_proj", "up_proj"};
  c.layers = {0, 2};
  c.rslora = true;
  EXPECT_EQ(attach_lora(*m, c), 6);
  randomise_b(*m, 12);
  auto ids = at::randint(0, 97, {2, 10}, at::kLong);
  at::Tensor adapted;
  {
    torch::NoGradGuard ng;
    adapted = logits(*m, ids);
  }
  const std::string adapter_dir = fresh_dir("lora_adapter");
  m->lora.base_model = base_dir;
  save_adapter(*m, adapter_dir, "");
  auto reloaded = load_model(adapter_dir);  // an adapter folder loads as base + adapter
  ASSERT_TRUE(reloaded->has_lora());
  EXPECT_EQ(reloaded->lora.r, 5);
  EXPECT_EQ(reloaded->lora.layers, (std::vector<int64_t>{0, 2}));
  torch::NoGradGuard ng;
  EXPECT_LT(max_diff(adapted, logits(*reloaded, ids)), 1e-6);
  merge_lora(*m);
  EXPECT_FALSE(m->has_lora());
  EXPECT_LT(max_diff(adapted, logits(*m, ids)), 1e-5);
  for (const auto& item : m->named_parameters()) EXPECT_FALSE(is_lora_parameter_name(item.key()));
}

TEST(Lora, BadConfigsAndFoldersNameTheProblem) {
  auto m = load_model(saved_base("lora_bad"));
  LoraConfig c = lora();
  c.target_modules = {"qkv"};
  EXPECT_THROW(attach_lora(*m, c), cada::Error);
  c = lora();
  c.layers = {5};
  EXPECT_THROW(attach_lora(*m, c), cada::Error);
  const std::string dir = fresh_dir("lora_dora");
  cada::io::atomic_write_file(dir + "/adapter_config.json", R"({"peft_type": "LORA", "use_dora": true, "r": 4})");
  try {
    load_adapter(*m, dir);
    FAIL() << "DoRA accepted";
  } catch (const cada::Error& e) {
    EXPECT_NE(std::string(e.what()).find("use_dora"), std::string::npos) << e.what();
  }
}

TEST(Checkpointing, SameGradientsAsThePlainBackward) {
  const std::string dir = saved_base("ckpt_grads", "qwen2");
  auto ids = at::randint(0, 97, {2, 11}, at::kLong);
  for (int variant = 0; variant < 3; ++variant) {  // full fine-tuning, LoRA, LoRA with dropout
    auto m = load_model(dir);
    if (variant > 0) {
      LoraConfig c = lora();
      c.dropout = variant == 2 ? 0.3 : 0.0;
      attach_lora(*m, c);
      randomise_b(*m, 13);
    }
    m->train();
    auto plain = gradients(*m, ids, 5);
    m->gradient_checkpointing = true;
    auto checkpointed = gradients(*m, ids, 5);
    EXPECT_LE(max_relative(plain, checkpointed), 1e-6) << "variant " << variant;
    ForwardInput in;
    in.input_ids = ids;
    EXPECT_TRUE(graph_has(m->forward(in).hidden, "LayerCheckpoint")) << "variant " << variant;
    m->gradient_checkpointing = false;
    EXPECT_FALSE(graph_has(m->forward(in).hidden, "LayerCheckpoint"));
  }
}

// Under bf16 autocast a checkpointed layer casts its weights afresh each run: a weight changed in
// place between two steps inside one autocast region is seen by the second step (the cast cache
// would hand it the first step's copy), so the checkpointed gradients equal the plain ones of the
// changed model.
TEST(Checkpointing, AutocastSeesWeightsChangedBetweenSteps) {
  const std::string dir = saved_base("ckpt_autocast");
  auto ids = at::randint(0, 97, {2, 9}, at::kLong);
  auto change = [](TransformerImpl& m) {
    torch::NoGradGuard ng;
    for (auto& item : m.named_parameters())
      if (item.key().find(".mlp.") != std::string::npos) item.value().mul_(1.5);
  };
  auto m = load_model(dir);
  m->train();
  m->gradient_checkpointing = true;
  std::map<std::string, at::Tensor> checkpointed;
  {
    at::autocast::set_autocast_enabled(at::kCPU, true);
    at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
    gradients(*m, ids);  // step 1 (with a cache, its casts would stay until the region ends)
    change(*m);
    checkpointed = gradients(*m, ids);  // step 2, same autocast region
    at::autocast::set_autocast_enabled(at::kCPU, false);
    at::autocast::clear_cache();
  }
  auto ref = load_model(dir);
  change(*ref);
  ref->train();
  at::autocast::set_autocast_enabled(at::kCPU, true);
  auto plain = gradients(*ref, ids);
  at::autocast::set_autocast_enabled(at::kCPU, false);
  at::autocast::clear_cache();
  double worst = 0;
  for (const auto& [name, g] : plain)
    if (name.find(".mlp.") != std::string::npos)
      worst = std::max(worst, (g - checkpointed.at(name)).abs().max().item<double>() / g.abs().max().item<double>());
  EXPECT_LT(worst, 1e-2) << worst;  // bf16 products: rounding differs between the two graphs, a stale weight by far more
}

TEST(ChunkedLogprobs, LogprobsAndEntropyEqualTheFullComputationWithGradients) {
  Transformer m(lora_base_config("llama", /*tied=*/true));
  init_weights(m, 9, 0.3);
  auto h0 = at::randn({13, 32});
  auto t = at::randint(0, 97, {13}, at::kLong);
  const double temperature = 0.7;
  // Full: the whole (N,V) logits at once.
  auto h1 = h0.clone().requires_grad_(true);
  auto lsm = at::log_softmax(m->head(h1) / temperature, -1);
  auto full_lp = lsm.gather(1, t.unsqueeze(1)).squeeze(1);
  auto full_ent = -(lsm.exp() * lsm).sum(-1);
  (full_lp.sum() + 0.5 * full_ent.sum()).backward();
  auto full_grad_h = h1.grad().clone();
  auto full_grad_w = m->lm_head_weight().grad().clone();
  m->zero_grad();
  // Chunked: 3 rows per chunk.
  auto h2 = h0.clone().requires_grad_(true);
  auto st = token_stats(*m, h2, t, temperature, /*want_entropy=*/true, /*entropy_grad=*/true, 97 * 3);
  EXPECT_LT(max_diff(full_lp, st.logprobs), 1e-6);
  // Entropies are about log V = 4.6: float32 rounding of the two formulas, relative.
  EXPECT_LT(max_diff(full_ent, st.entropy) / full_ent.abs().max().item<double>(), 1e-6);
  (st.logprobs.sum() + 0.5 * st.entropy.sum()).backward();
  EXPECT_LT(max_diff(full_grad_h, h2.grad()) / full_grad_h.abs().max().item<double>(), 1e-6);
  EXPECT_LT(max_diff(full_grad_w, m->lm_head_weight().grad()) / full_grad_w.abs().max().item<double>(), 1e-6);
}
