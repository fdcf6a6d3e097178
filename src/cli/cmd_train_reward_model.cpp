// cada train-rm: reward-model training (pairwise Bradley-Terry or pointwise).
#include <iostream>

#include "cada/train/reward_trainer.h"
#include "cada/train/run_folder.h"
#include "cada/util/config.h"
#include "command.h"

// A named namespace per command file: the files may be compiled as one (unity build).
namespace {
namespace cmd_train_reward_model {

int run(const cada::cli::ConfigOptions& o) {
  using namespace cada;
  auto cfg = cli::load_config_or_print_defaults<train::RewardTrainConfig>(o);
  if (!cfg) return 0;
  if (o.memory_plan) {
    const auto plan = train::reward_memory_plan(*cfg).table();
    std::cout << "memory plan (estimate):\n" << plan;
    return 0;
  }
  const auto folder = train::RunFolder::claim(cfg->output_dir, o.resume, o.overwrite, config::to_json(*cfg));  // locked while it trains
  auto s = train::run_reward_training(*cfg, o.resume);
  std::cout << "held-out accuracy " << s.eval_accuracy << " (" << s.eval_examples << " records); model: " << s.final_dir
            << "\n";
  return 0;
}

CADA_REGISTER_COMMAND(cada::cli::CommandSpec{
    "train-rm", "Train a reward model (HF sequence-classification layout): pairwise Bradley-Terry or pointwise",
    [](CLI::App& sub) -> cada::cli::Runner {
      auto o = std::make_shared<cada::cli::ConfigOptions>();
      cada::cli::add_config_options(sub, *o, "reward-model training config", "steps=100 optim.lr=1e-4");
      cada::cli::add_memory_plan_flag(sub, *o);
      return [o]() { return run(*o); };
    }});

}  // namespace cmd_train_reward_model
}  // namespace
