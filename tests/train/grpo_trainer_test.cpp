// GRPO trainer on a tiny model: the mean reward rises on a task the test defines, and
// N steps straight equal N/2 + resume + N/2 bitwise.
#include <gtest/gtest.h>
#include <unistd.h>

#include <random>

#include "cada/io/files.h"
#include "cada/io/jsonl.h"
#include "cada/model/loader.h"
#include "cada/text/tokenizer.h"
#include "cada/train/grpo_trainer.h"

using namespace cada;

namespace {

std::string grpo_workdir(const std::string& name) {
  std::string d = ::testing::TempDir() + "/cada_grpo_" + name + "_" + std::to_string(getpid());
  io::remove_tree(d);
  io::make_dirs(d);
  return d;
}

// A tiny model folder with a sentencepiece tokenizer over a small alphabet.
std::string grpo_model_dir(const std::string& dir) {
  std::mt19937 rng(1);
  std::vector<std::string> corpus;
  const std::string letters = "abcdefghijklmnopqrstuvwxyz";
  for (int i = 0; i < 400; ++i) {
    std::string line;
    for (int w = 0; w < 8; ++w) {
      for (int c = 0; c < 1 + int(rng() % 4); ++c) line += letters[rng() % letters.size()];
      line += ' ';
    }
    corpus.push_back(line);
  }
  const std::string m = dir + "/model";
  text::train_sentencepiece(corpus, 320, m, {"<|system|>", "<|user|>", "<|assistant|>", "<|end|>"});
  auto tok = text::load_tokenizer(m);
  nlohmann::json cfg = {{"model_type", "llama"},  {"hidden_size", 32},        {"intermediate_size", 64},
                        {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                        {"vocab_size", tok->vocab_size()}, {"eos_token_id", *tok->eos_id},
                        {"tie_word_embeddings", true}};
  model::Transformer net(model::ModelConfig::from_json(cfg, "test"));
  model::init_weights(net, 3, 0.1);
  model::save_model(net, m, at::kFloat);
  std::vector<std::string> prompts = {"abc def", "ghi", "jkl mno pq", "rs tu", "vw", "yz ab cd", "ef gh", "ij kl"};
  std::string jsonl;
  for (const auto& p : prompts) jsonl += nlohmann::json{{"prompt", p}}.dump() + "\n";
  io::atomic_write_file(dir + "/prompts.jsonl", jsonl);
  return m;
}

// Reward: the share of the letter 'x' in the completion (one property of the completion).
train::RewardOutput x_share(const std::vector<train::RewardInput>& in) {
  train::RewardOutput out;
  for (const auto& r : in) {
    double n = 0, x = 0;
    for (char c : r.completion)
      if (c >= 'a' && c <= 'z') {
        ++n;
        x += c == 'x';
      }
    out.total.push_back(n > 0 ? x / n : 0.0);
  }
  out.components["x_share"] = out.total;
  return out;
}

train::GrpoConfig base_config(const std::string& dir, const std::string& model) {
  train::GrpoConfig c;
  c.model = model;
  c.output_dir = dir + "/run";
  c.data.train = dir + "/prompts.jsonl";
  c.rollout.num_generations = 8;
  c.rollout.max_completion_length = 8;
  c.rollout.max_prompt_length = 32;
  c.train.prompts_per_step = 4;
  c.train.micro_batch_size = 16;
  c.train.seed = 7;
  c.optim.lr = 1e-2;
  c.optim.max_grad_norm = 1.0;
  c.loss.opts.loss_type = "dapo";
  c.log.tensorboard = false;
  return c;
}

std::map<std::string, at::Tensor> grpo_params_of(const std::string& ckpt) {
  auto m = model::load_model(ckpt);
  std::map<std::string, at::Tensor> out;
  for (auto& [k, v] : m->hf_named_parameters()) out[k] = v.detach().clone();
  return out;
}

// A 30-step run's mean reward over its last 5 steps against its first 5: random init puts roughly
// 1/26 of the letters on 'x'; training must at least triple it.
void expect_learns(const train::GrpoSummary& s) {
  ASSERT_EQ(s.mean_reward.size(), 30u);
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) {
    first += s.mean_reward[i] / 5;
    last += s.mean_reward[25 + i] / 5;
  }
  std::cout << "mean reward, first 5 steps " << first << ", last 5 steps " << last << "\n";
  EXPECT_GT(last, 3 * first + 0.05) << "first " << first << " last " << last;
}

}  // namespace

TEST(GrpoTrainer, RewardRisesOnATinyTask) {
  auto dir = grpo_workdir("learn");
  auto model = grpo_model_dir(dir);
  auto cfg = base_config(dir, model);
  cfg.train.steps = 30;
  cfg.loss.opts.beta = 0.01;  // exercises the reference model path too
  expect_learns(train::run_grpo(cfg, x_share, false));
  EXPECT_TRUE(io::file_exists(cfg.output_dir + "/metrics.jsonl"));
  EXPECT_EQ(io::count_complete_jsonl_records(cfg.output_dir + "/metrics.jsonl"), 30u);
  if (!std::getenv("CADA_KEEP_TEST_DIRS")) io::remove_tree(dir);
}

// Rollouts through continuous batching on a bfloat16 copy of the policy that is refreshed after
// every update: the policy still learns (a stale copy would sample the initial policy forever).
TEST(GrpoTrainer, LearnsWithBfloat16RolloutsOnContinuousBatching) {
  auto dir = grpo_workdir("bf16rollout");
  auto model = grpo_model_dir(dir);
  auto cfg = base_config(dir, model);
  cfg.train.steps = 30;
  cfg.rollout.dtype = "bfloat16";
  cfg.rollout.engine = "continuous";
  cfg.rollout.batch_rows = 12;  // 32 samples a step through 12 slots
  expect_learns(train::run_grpo(cfg, x_share, false));
  if (!std::getenv("CADA_KEEP_TEST_DIRS")) io::remove_tree(dir);
}

TEST(GrpoTrainer, ResumeIsBitwiseExact) {
  auto dir = grpo_workdir("resume");
  auto model = grpo_model_dir(dir);
  auto cfg = base_config(dir, model);
  cfg.train.steps = 6;
  cfg.train.num_iterations = 2;  // old log-probs path
  cfg.optim.schedule = "cosine";
  cfg.optim.warmup_steps = 2;
  cfg.checkpoint.every = 3;
  cfg.checkpoint.keep_last = 5;
  train::run_grpo(cfg, x_share, false);
  auto straight = grpo_params_of(cfg.output_dir + "/checkpoint-6");
  io::remove_tree(cfg.output_dir + "/checkpoint-6");
  auto s = train::run_grpo(cfg, x_share, /*resume=*/true);
  EXPECT_EQ(s.mean_reward.size(), 3u);  // only steps 4..6 ran
  auto resumed = grpo_params_of(cfg.output_dir + "/checkpoint-6");
  ASSERT_EQ(straight.size(), resumed.size());
  for (auto& [k, v] : straight) EXPECT_TRUE(at::equal(v, resumed[k])) << k;
  io::remove_tree(dir);
}
