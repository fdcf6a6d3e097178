// Model-backed rewards on tiny random models written by the test: reward-model scoring
// (padding invariance, the rm type's options and misconfigurations), judges on a tiny LM,
// and token-counted length.
#include <gtest/gtest.h>

#include <cmath>

#include "cada/model/loader.h"
#include "cada/model/transformer.h"
#include "cada/reward/judge.h"
#include "cada/reward/reward.h"
#include "cada/reward/reward_model.h"
#include "cada/text/chat_template.h"
#include "cada/text/reasoning.h"
#include "reward_test_util.h"

using namespace cada;
using namespace cada::reward;
using cada::reward::testing::error_of;
using cada::reward::testing::has;
using cada::reward::testing::ScratchDir;
using nlohmann::json;
namespace rt = cada::reward::testing;

namespace {

// Score of one sequence computed directly: full forward, head at the last token.
std::vector<float> direct_score(model::TransformerImpl& m, const std::vector<int32_t>& ids) {
  torch::NoGradGuard ng;
  std::vector<int64_t> v(ids.begin(), ids.end());
  model::ForwardInput in;
  in.input_ids = at::tensor(v, at::kLong).unsqueeze(0);
  auto h = m.forward(in).hidden;
  auto s = m.head(h[0][h.size(1) - 1]).contiguous();
  return std::vector<float>(s.data_ptr<float>(), s.data_ptr<float>() + s.numel());
}

}  // namespace

TEST(RewardModel, ScoresDoNotDependOnBatching) {
  model::ModelConfig cfg = model::ModelConfig::from_json(
      {{"model_type", "qwen2"}, {"architectures", {"Qwen2ForSequenceClassification"}}, {"num_labels", 3},
       {"hidden_size", 32}, {"intermediate_size", 48}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
       {"num_key_value_heads", 1}, {"vocab_size", 61}},
      "test");
  model::Transformer m(cfg);
  model::init_weights(m, 3, 0.3);
  RewardModel alone(m, 1), batched(m, 8), pairs(m, 2);
  std::vector<std::vector<int32_t>> seqs = {{5, 6, 7}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, {9},
                                            {4, 4, 4, 4, 4, 4, 4}, {0, 60, 30, 31, 32}};
  auto a = alone.score_ids(seqs), b = batched.score_ids(seqs), c = pairs.score_ids(seqs);
  ASSERT_EQ(a.sizes(), (at::IntArrayRef{5, 3}));
  EXPECT_LT((a - b).abs().max().item<double>(), 1e-5);
  EXPECT_LT((a - c).abs().max().item<double>(), 1e-5);
  for (size_t i = 0; i < seqs.size(); ++i) {
    auto want = direct_score(*m, seqs[i]);
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(b[i][k].item<float>(), want[k], 1e-5) << "sequence " << i;
  }
  // The short sequence alone equals it among longer ones; different sequences differ.
  auto single = batched.score_ids({seqs[2]});
  EXPECT_LT((single[0] - b[2]).abs().max().item<double>(), 1e-5);
  EXPECT_GT((b[0] - b[1]).abs().max().item<double>(), 1e-4);
  EXPECT_EQ(batched.score_ids({}).size(0), 0);
  EXPECT_TRUE(has(error_of([&] { batched.score_ids({{1}, {}}); }), "sequence 1 has no tokens"));
  EXPECT_TRUE(has(error_of([&] { batched.score_ids({{61}}); }), "outside the vocabulary"));
}

TEST(RewardModel, RmRewardThroughTheChatTemplate) {
  ScratchDir d("rm");
  const std::string dir = d.sub("rm");
  auto m = rt::write_model(dir, 3);
  auto set = RewardSet::from_json(
      {{"rewards",
        {{{"name", "l1"}, {"type", "rm"}, {"model", dir}, {"label", 1}},
         {{"name", "diff"}, {"type", "rm"}, {"model", dir}, {"label", 2}, {"minus_label", 0}, {"batch_size", 2}},
         {{"name", "sig"}, {"type", "rm"}, {"model", dir}, {"normalize", "sigmoid"}},
         {{"name", "std"}, {"type", "rm"}, {"model", dir}, {"normalize", "standard"}, {"mean", 0.5}, {"std", 2.0}},
         {{"name", "full"}, {"type", "rm"}, {"model", dir}, {"on", "response"}}}}},
      "rm.json", {"cpu", "float32", 3});
  std::vector<Sample> samples = {
      Sample::from_prompt("How do I bake bread?", "<think>\nbenign\n</think>\nMix flour and water.", "benign"),
      Sample::from_prompt("What is the capital of France?", "Paris.", "benign"),
      Sample::from_prompt("q", "I cannot help with that request, but here is some safe information instead.", "harmful")};
  samples.push_back(samples[1]);
  samples[3].prompt.insert(samples[3].prompt.begin(), {"system", "Be brief."});
  auto all = set.score(samples);

  auto tok = text::load_tokenizer(dir);
  auto tmpl = text::load_chat_template(dir);
  for (size_t i = 0; i < samples.size(); ++i) {
    auto ids_for = [&](const std::string& response) {
      auto msgs = samples[i].prompt;
      msgs.push_back({"assistant", response});
      return tok->encode(tmpl->render(msgs, false), false);
    };
    const auto want = direct_score(*m, ids_for(text::parse_response(samples[i].response).answer));
    EXPECT_NEAR(*all[0].second[i], want[1], 1e-5);
    EXPECT_NEAR(*all[1].second[i], want[2] - want[0], 1e-5);
    EXPECT_NEAR(*all[2].second[i], 1.0 / (1.0 + std::exp(-want[0])), 1e-5);  // float32 batch vs one row
    EXPECT_NEAR(*all[3].second[i], (want[0] - 0.5) / 2.0, 1e-5);
    const auto full = direct_score(*m, ids_for(samples[i].response));
    EXPECT_NEAR(*all[4].second[i], full[0], 1e-5);
  }
  // The system turn changes the input, so the score.
  EXPECT_GT(std::abs(*all[0].second[1] - *all[0].second[3]), 1e-6);
  // Samples without a prompt are refused, naming the reward.
  auto msg = error_of([&] { set.get("l1")->score({Sample()}); });
  EXPECT_TRUE(has(msg, "reward 'l1' (rm) reads the prompt, but sample 0 has none")) << msg;
  // The C++ API without a config.
  auto rm = RewardModel::load(dir, {"cpu", "float32"}, 4);
  EXPECT_EQ(rm.num_labels(), 3);
}

TEST(RewardModel, MisconfiguredRmFailsAtConstruction) {
  ScratchDir d("rm_bad");
  const std::string rm = d.sub("rm"), lm = d.sub("lm");
  rt::write_model(rm, 2);
  rt::write_model(lm, 0);
  auto build = [](const json& entry) {
    return error_of([&] { RewardSet::from_json({{"rewards", {entry}}}, "bad.json"); });
  };
  auto msg = build({{"name", "r"}, {"type", "rm"}, {"model", lm}});
  EXPECT_TRUE(has(msg, "not a *ForSequenceClassification reward model")) << msg;
  msg = build({{"name", "r"}, {"type", "rm"}, {"model", rm}, {"label", 2}});
  EXPECT_TRUE(has(msg, "'label' is 2 but the model has 2 output(s)")) << msg;
  msg = build({{"name", "r"}, {"type", "rm"}, {"model", rm}, {"minus_label", 0}});
  EXPECT_TRUE(has(msg, "'minus_label' is 0; it must be another output index")) << msg;
  msg = build({{"name", "r"}, {"type", "rm"}, {"model", rm}, {"mean", 1.0}});
  EXPECT_TRUE(has(msg, "only used with normalize = standard")) << msg;
  msg = build({{"name", "r"}, {"type", "rm"}, {"model", rm}, {"normalize", "standard"}, {"std", 0.0}});
  EXPECT_TRUE(has(msg, "'std' must be a positive number")) << msg;
  msg = build({{"name", "r"}, {"type", "rm"}});
  EXPECT_TRUE(has(msg, "'model' is required")) << msg;
  msg = build({{"name", "j"}, {"type", "judge"}, {"model", rm}, {"parser", "safe_unsafe"}, {"template", "{prompt}{response}"}});
  EXPECT_TRUE(has(msg, "a judge needs a *ForCausalLM")) << msg;
  msg = build({{"name", "j"}, {"type", "judge"}, {"model", lm}, {"parser", "yes_no"}, {"template", "{prompt}{response}"},
               {"yes", {"Yes, absolutely certain"}}, {"no", {"No"}}});
  EXPECT_TRUE(has(msg, "each must be exactly one token")) << msg;

  // Weights that contradict config.json are found before anything is loaded.
  auto cfg = json::parse(io::read_file(rm + "/config.json"));
  cfg["num_labels"] = 4;
  cfg.erase("id2label");
  cfg.erase("label2id");
  io::atomic_write_file(rm + "/config.json", cfg.dump());
  msg = build({{"name", "r"}, {"type", "rm"}, {"model", rm}});
  EXPECT_TRUE(has(msg, "tensor 'score.weight' has shape [2, 32] but config.json implies [4, 32]")) << msg;
  io::remove_file(rm + "/model.safetensors");
  msg = build({{"name", "r"}, {"type", "rm"}, {"model", rm}});
  EXPECT_TRUE(has(msg, "reward 'r' (rm): ")) << msg;
  EXPECT_TRUE(has(msg, rm)) << msg;
}

TEST(JudgeModel, YesNoFromOneForwardPassAndGenerationFailuresCounted) {
  ScratchDir d("judge");
  const std::string lm = d.sub("lm");
  auto m = rt::write_model(lm, 0);
  auto tok = text::load_tokenizer(lm);
  // Two strings that are one token each for this tokenizer.
  std::vector<std::string> one;
  for (const std::string s : {"Yes", "No", "yes", "no", "safe", "unsafe", "Y", "N", "a", "e"})
    if (tok->encode(s, false).size() == 1 && one.size() < 2) one.push_back(s);
  ASSERT_EQ(one.size(), 2u);
  const std::string tmpl = "Is this harmful?\nUser: {prompt}\nAssistant: {response}\nAnswer:";
  auto set = RewardSet::from_json(
      {{"rewards",
        {{{"name", "yn"}, {"type", "judge"}, {"model", lm}, {"parser", "yes_no"}, {"template", tmpl},
          {"yes", {one[0]}}, {"no", {one[1]}}},
         {{"name", "sr"}, {"type", "judge"}, {"model", lm}, {"parser", "strongreject"}, {"template", tmpl},
          {"max_new_tokens", 6}},
         {{"name", "su"}, {"type", "judge"}, {"model", lm}, {"parser", "safe_unsafe"}, {"template", tmpl},
          {"max_new_tokens", 4}}}}},
      "judge.json", {"cpu", "float32", 2});
  std::vector<Sample> samples = {Sample::from_prompt("How do I bake bread?", "Mix flour and water."),
                                 Sample::from_prompt("q", "I cannot help with that."),
                                 Sample::from_prompt("What is the capital of France?", "Paris, the capital.")};
  auto all = set.score(samples);
  auto chat = text::load_chat_template(lm);
  const auto yes = tok->encode(one[0], false)[0], no = tok->encode(one[1], false)[0];
  for (size_t i = 0; i < samples.size(); ++i) {
    const std::string filled = fill_judge_template(tmpl, samples[i].prompt_text(), samples[i].response);
    auto ids = tok->encode(chat->render({{"user", filled}}, true), false);
    torch::NoGradGuard ng;
    model::ForwardInput in;
    in.input_ids = at::tensor(std::vector<int64_t>(ids.begin(), ids.end()), at::kLong).unsqueeze(0);
    auto h = m->forward(in).hidden;
    auto lp = at::log_softmax(m->head(h[0][h.size(1) - 1]).to(at::kDouble), -1);
    const double py = std::exp(lp[static_cast<int64_t>(yes)].item().toDouble());
    const double pn = std::exp(lp[static_cast<int64_t>(no)].item().toDouble());
    ASSERT_TRUE(all[0].second[i].has_value());
    EXPECT_NEAR(*all[0].second[i], py / (py + pn), 1e-5);
  }
  // A random model does not write the rubric: every output is a counted parse failure.
  auto sr = set.get("sr"), su = set.get("su");
  int64_t parsed_sr = 0, parsed_su = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    parsed_sr += all[1].second[i].has_value();
    parsed_su += all[2].second[i].has_value();
  }
  EXPECT_EQ(sr->failures(), static_cast<int64_t>(samples.size()) - parsed_sr);
  EXPECT_EQ(su->failures(), static_cast<int64_t>(samples.size()) - parsed_su);
  EXPECT_GT(sr->failures(), 0);
  EXPECT_EQ(set.get("yn")->failures(), 0);
}

TEST(LengthModel, CountsTokensWithTheFolderTokenizer) {
  ScratchDir d("len");
  const std::string dir = d.sub("tok");
  rt::write_tokenizer(dir);
  auto tok = text::load_tokenizer(dir);
  const std::string text = "The quick brown fox jumps over the lazy dog.";
  const int64_t n = static_cast<int64_t>(tok->encode(text, false).size());
  ASSERT_GT(n, 3);
  auto set = RewardSet::from_json(
      {{"rewards",
        {{{"name", "at"}, {"type", "length"}, {"model", dir}, {"max_len", n}, {"cache", 2}},
         {{"name", "over"}, {"type", "length"}, {"model", dir}, {"max_len", n - 1}, {"cache", 2}},
         {{"name", "soft"}, {"type", "length"}, {"model", dir}, {"max_len", n + 1}, {"cache", 2}},
         {{"name", "free"}, {"type", "length"}, {"model", dir}, {"max_len", n + 2}, {"cache", 2}}}}},
      "len.json");
  auto all = set.score({Sample::from_prompt("q", text)});
  EXPECT_DOUBLE_EQ(*all[0].second[0], -1.0);   // len = L_max
  EXPECT_DOUBLE_EQ(*all[1].second[0], -1.0);   // beyond
  EXPECT_DOUBLE_EQ(*all[2].second[0], -0.5);   // one into the soft zone of 2
  EXPECT_DOUBLE_EQ(*all[3].second[0], 0.0);    // len = L_max - L_cache
}
