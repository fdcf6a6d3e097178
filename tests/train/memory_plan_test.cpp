// The memory plan (train/memory_plan.h): its parameter counts against real models, its terms
// against hand arithmetic for Llama-3-8B's shape, and the measured peak.
#include <gtest/gtest.h>

#include "cada/kernels/device_memory.h"
#include "cada/model/lora.h"
#include "cada/model/transformer.h"
#include "cada/train/memory_plan.h"
#include "cada/util/error.h"

using namespace cada;
using cada::train::MemoryPlanInput;

namespace {

model::ModelConfig config_from(nlohmann::json j) { return model::ModelConfig::from_json(j, "test"); }

model::ModelConfig tiny(const std::string& type, bool tied) {
  return config_from({{"model_type", type},     {"hidden_size", 32},        {"intermediate_size", 48},
                      {"num_hidden_layers", 3}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                      {"vocab_size", 97},       {"tie_word_embeddings", tied}});
}

model::ModelConfig llama3_8b() {
  return config_from({{"model_type", "llama"},       {"hidden_size", 4096},       {"intermediate_size", 14336},
                      {"num_hidden_layers", 32},     {"num_attention_heads", 32}, {"num_key_value_heads", 8},
                      {"vocab_size", 128256},        {"tie_word_embeddings", false}});
}

int64_t count(model::TransformerImpl& m, bool trainable_only) {
  int64_t n = 0;
  for (auto& p : m.parameters())
    if (!trainable_only || p.requires_grad()) n += p.numel();
  return n;
}

model::LoraConfig lora(int64_t r, std::vector<std::string> targets, std::vector<int64_t> layers = {}) {
  model::LoraConfig c;
  c.r = r;
  c.target_modules = std::move(targets);
  c.layers = std::move(layers);
  return c;
}

}  // namespace

TEST(MemoryPlan, ParameterCountsEqualTheBuiltModels) {
  struct Case {
    std::string type;
    bool tied;
    model::LoraConfig lora;
    bool classifier;
  };
  const std::vector<Case> cases = {
      {"llama", false, lora(4, {"all-linear"}), false},
      {"qwen2", true, lora(8, {"q_proj", "v_proj", "down_proj"}, {1}), false},
      {"llama", false, lora(2, {"o_proj", "gate_proj"}, {0, 2}), true},
  };
  for (const auto& c : cases) {
    auto cfg = tiny(c.type, c.tied);
    auto l = c.lora;
    if (c.classifier) {
      cfg = cfg.as_classifier(3, 0);
      l.modules_to_save = {"score"};
    }
    model::Transformer m(cfg);
    EXPECT_EQ(count(*m, false), cfg.num_parameters()) << c.type;
    model::attach_lora(*m, l);
    EXPECT_EQ(count(*m, true), train::lora_trainable_parameters(cfg, l)) << c.type << " r=" << l.r;

    MemoryPlanInput in;
    in.model = cfg;
    in.trainable.lora = l;
    auto plan = train::plan_memory(in);
    EXPECT_EQ(plan.parameters, cfg.num_parameters());
    EXPECT_EQ(plan.trainable, count(*m, true));
  }
}

TEST(MemoryPlan, Llama3_8bLoraTermsByHand) {
  MemoryPlanInput in;
  in.model = llama3_8b();
  in.trainable.lora = lora(64, {"all-linear"});
  in.trainable.gradient_checkpointing = true;
  in.device = "cuda";  // a plan for a GPU is made without one
  in.autocast = true;
  in.micro_batch_rows = 4;
  in.row_tokens = 1536;
  in.kv_rows = 64;
  in.kv_tokens = 1536;
  in.kv_dtype = "bfloat16";
  auto p = train::plan_memory(in);
  const double P = 8030261248.0, T = 167772160.0;  // Llama-3-8B; PEFT's count for r = 64 on all-linear
  EXPECT_EQ(p.parameters, static_cast<int64_t>(P));
  EXPECT_EQ(p.trainable, static_cast<int64_t>(T));
  EXPECT_DOUBLE_EQ(p.bytes("weights"), P * 2 + T * 4);  // bf16 base, float32 adapters
  EXPECT_DOUBLE_EQ(p.bytes("gradients"), T * 4);
  EXPECT_DOUBLE_EQ(p.bytes("optimizer"), T * 8);
  EXPECT_DOUBLE_EQ(p.bytes("reference"), 0);            // adapters off: no copy
  EXPECT_DOUBLE_EQ(p.bytes("autocast copies"), 0);      // the base is already bf16
  EXPECT_DOUBLE_EQ(p.bytes("KV cache"), 2.0 * 32 * 8 * 128 * 64 * 1536 * 2);
  // 261 rows of the 128256-wide head fit one 2^25-element chunk.
  EXPECT_DOUBLE_EQ(p.bytes("logits"), 261.0 * 128256 * 4 * 3);
  // Checkpointed: each layer's float32 input, plus one adapted layer's intermediates.
  const double one_layer = cada::train::activation_bytes_per_token(in.model, in.trainable.lora, 2, false) / 32;
  EXPECT_DOUBLE_EQ(p.bytes("activations"), 4.0 * 1536 * (32 * 4 * 4096 + one_layer));
  EXPECT_LT(p.total(), 40e9);
  EXPECT_NE(p.table().find("KV cache"), std::string::npos);
  EXPECT_EQ(p.to_json()["items"]["optimizer"].get<double>(), T * 8);
}

TEST(MemoryPlan, FullFineTuningTerms) {
  auto cfg = llama3_8b();
  MemoryPlanInput in;
  in.model = cfg;
  in.device = "cuda";
  in.autocast = true;
  in.reference_dtype = "bfloat16";
  in.rollout_dtype = "bfloat16";
  auto plain = train::plan_memory(in);
  const double P = static_cast<double>(cfg.num_parameters());
  EXPECT_EQ(plain.trainable, plain.parameters);
  EXPECT_DOUBLE_EQ(plain.bytes("weights"), P * 4);
  EXPECT_DOUBLE_EQ(plain.bytes("gradients"), P * 4);
  EXPECT_DOUBLE_EQ(plain.bytes("optimizer"), P * 8);
  EXPECT_DOUBLE_EQ(plain.bytes("reference"), P * 2);
  EXPECT_DOUBLE_EQ(plain.bytes("rollout copy"), P * 2);
  EXPECT_DOUBLE_EQ(plain.bytes("autocast copies"), (P - 128256.0 * 4096) * 2);  // all but the input embedding
  in.trainable.gradient_checkpointing = true;
  auto ckpt = train::plan_memory(in);
  EXPECT_LT(ckpt.bytes("autocast copies"), plain.bytes("autocast copies") / 10);  // the head and one layer
  EXPECT_LT(ckpt.bytes("activations"), plain.bytes("activations"));
  in.autocast = false;
  EXPECT_DOUBLE_EQ(train::plan_memory(in).bytes("autocast copies"), 0);
}

TEST(MemoryPlan, ActivationsGrowWithAdaptersAndShrinkWhenCheckpointed) {
  auto cfg = tiny("llama", false);
  auto none = lora(0, {"all-linear"});
  auto some = lora(4, {"q_proj"}, {1});
  auto all = lora(4, {"all-linear"});
  for (int a : {2, 4}) {
    const double n = train::activation_bytes_per_token(cfg, none, a, false);
    EXPECT_DOUBLE_EQ(n, 3 * train::layer_activation_bytes_per_token(cfg, a));
    EXPECT_GT(train::activation_bytes_per_token(cfg, some, a, false), n);
    EXPECT_GT(train::activation_bytes_per_token(cfg, all, a, false), train::activation_bytes_per_token(cfg, some, a, false));
    EXPECT_LT(train::activation_bytes_per_token(cfg, none, a, true), n);
  }
}

TEST(MemoryPlan, RejectsUnknownDevicesAndDtypes) {
  EXPECT_THROW(train::plan_device("tpu:0"), cada::Error);
  EXPECT_THROW(train::dtype_bytes("int8"), cada::Error);
  EXPECT_TRUE(train::plan_device("cuda:1").is_cuda());
}

TEST(MemoryPlan, CpuPeakIsThePeakResidentSet) {
  auto before = kernels::memory_peak(c10::Device("cpu"));
  EXPECT_EQ(before.source, "peak RSS");
  EXPECT_GT(before.allocated_bytes, 1e6);
  EXPECT_GT(before.device_total_bytes, before.allocated_bytes);
  {
    auto big = at::ones({64, 1024, 1024}, at::kFloat);  // 256 MiB touched
    EXPECT_EQ(big.sum().item<double>(), 64.0 * 1024 * 1024);
  }
  auto after = kernels::memory_peak(c10::Device("cpu"));
  EXPECT_GE(after.allocated_bytes, before.allocated_bytes);
  EXPECT_GE(after.allocated_bytes, 256.0 * 1024 * 1024);
  std::map<std::string, double> m;
  train::MemoryPlan plan;
  plan.items.push_back({"weights", 1024.0 * 1024 * 1024, ""});
  train::add_peak_metrics(m, after, plan);
  EXPECT_DOUBLE_EQ(m["memory/plan_gib"], 1.0);
  EXPECT_GT(m["memory/peak_allocated_gib"], 0.25);
  EXPECT_NE(train::describe_peak(after, plan).find("peak RSS"), std::string::npos);
}
