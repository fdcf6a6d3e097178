// cada train: GRPO from a JSON config (comments allowed), with key.sub=value overrides.
#include <cmath>
#include <cstdio>
#include <iostream>

#include "cada/reward/reward.h"
#include "cada/safety/prompt.h"
#include "cada/train/grpo_trainer.h"
#include "cada/train/run_folder.h"
#include "cada/util/config.h"
#include "cada/util/log.h"
#include "command.h"

// A named namespace per command file: the files may be compiled as one (unity build).
namespace {
namespace cmd_train {

// `spec` of the GRPO config: the CADA setting with the specification in the rollout prompt.
struct SpecRollout {
  std::string setting = "none";
  std::string file;
  cada::safety::PromptFormat prompt;
  cada::safety::CaseSelectOptions cases;
  template <class V> void visit(V& v) {
    v("setting", setting, "none | explicit | cases", {"none", "explicit", "cases"});
    v("file", file, "the specification (data/specs/*.json) of the setting's kind");
    v.section("prompt", prompt, "prompt layout (response_prefix is not supported in RL)");
    v.section("cases", cases, "case selection (cases setting)");
  }
};

cada::train::PromptFn spec_prompt_fn(const nlohmann::json& j, const std::string& source) {
  using namespace cada;
  if (j.is_null()) return {};
  auto sr = config::parse<SpecRollout>(j, source + " (spec)");
  if (sr.setting == "none") return {};
  CADA_CHECK(!sr.file.empty(), source, ": spec.file is required for the ", sr.setting, " setting");
  CADA_CHECK(sr.prompt.response_prefix.empty(), source,
             ": spec.prompt.response_prefix is not supported in RL (the completion must hold the whole response)");
  auto spec = std::make_shared<const safety::Spec>(safety::load_spec(sr.file));
  auto builder = std::make_shared<safety::PromptBuilder>(safety::PromptOptions{sr.setting, sr.prompt, sr.cases}, spec);
  CADA_INFO("rollout prompts carry the ", sr.setting, " specification ", spec->id());
  return [builder](const nlohmann::json& rec, const std::string& where) {
    auto msgs = safety::record_messages(rec, where);
    auto built = builder->build(msgs, rec.value("category", std::string()), rec.value("id", where));
    return nlohmann::json{{"messages", safety::messages_json(built.messages)}};
  };
}

// The prompt of a record as the reward functions see it.
cada::reward::Sample to_sample(const cada::train::RewardInput& in) {
  cada::reward::Sample s;
  const auto& r = *in.record;
  if (r.contains("messages") && r["messages"].is_array()) {
    for (const auto& m : r["messages"]) s.prompt.push_back({m.value("role", "user"), m.value("content", "")});
  } else if (r.contains("prompt") && r["prompt"].is_string()) {
    s.prompt.push_back({"user", r["prompt"].get<std::string>()});
  } else {
    s.prompt.push_back({"user", in.prompt_text});
  }
  s.response = in.completion;
  s.label = r.value("label", "");
  s.category = r.value("category", "");
  return s;
}

int run(const cada::cli::ConfigOptions& o) {
  using namespace cada;
  auto loaded = cli::load_config_or_print_defaults<train::GrpoConfig>(o);
  if (!loaded) return 0;
  const auto& cfg = *loaded;
  if (o.memory_plan) {
    const auto plan = train::grpo_memory_plan(cfg).table();
    std::cout << "memory plan (estimate):\n" << plan;
    return 0;
  }
  CADA_CHECK(!cfg.rewards.is_null(), o.config, ": 'rewards' is required (an object or the path of a reward config)");
  const auto folder = train::RunFolder::claim(cfg.output_dir, o.resume, o.overwrite, config::to_json(cfg));  // locked while it trains

  // Rewards are validated and built before any training compute.
  reward::RuntimeOptions rt;
  rt.device = cfg.train.device;
  auto rewards = cfg.rewards.is_string() ? reward::RewardSet::load(cfg.rewards.get<std::string>(), rt)
                                         : reward::RewardSet::from_json(cfg.rewards, o.config + " (rewards)", rt);
  CADA_CHECK(rewards.size() > 0, o.config, ": 'rewards' configures no reward");
  const std::string target = cfg.reward.empty() ? rewards.rewards().back()->name() : cfg.reward;
  rewards.get(target);  // throws listing the names when absent
  CADA_INFO("optimising reward '", target, "' (", rewards.size(), " reward(s) configured)");

  auto fn = [&](const std::vector<train::RewardInput>& in) {
    std::vector<reward::Sample> samples;
    for (const auto& x : in) samples.push_back(to_sample(x));
    train::RewardOutput out;
    for (auto& [name, vals] : rewards.score(samples)) {
      std::vector<double> v;
      for (const auto& x : vals) v.push_back(x ? *x : NAN);
      if (name == target) out.total = v;
      out.components[name] = std::move(v);
    }
    return out;
  };
  auto summary = train::run_grpo(cfg, fn, o.resume, spec_prompt_fn(cfg.spec, o.config));
  for (const auto& r : rewards.rewards())
    if (r->failures() > 0) CADA_WARN("reward '", r->name(), "': ", r->failures(), " judge output(s) could not be parsed");
  CADA_INFO("done: ", summary.steps_done, " steps; final checkpoint ", summary.last_checkpoint);
  return 0;
}

CADA_REGISTER_COMMAND(cada::cli::CommandSpec{
    "train", "GRPO reinforcement learning from a JSON config (rewards, rollout, loss, optimizer, checkpoints)",
    [](CLI::App& sub) -> cada::cli::Runner {
      auto o = std::make_shared<cada::cli::ConfigOptions>();
      cada::cli::add_config_options(sub, *o, "training config", "optim.lr=1e-5 train.steps=10");
      cada::cli::add_memory_plan_flag(sub, *o);
      return [o]() { return run(*o); };
    }});

}  // namespace cmd_train
}  // namespace
