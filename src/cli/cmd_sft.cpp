// cada sft: supervised fine-tuning with a completion-only loss on chat records (docs/safety.md).
#include <cmath>
#include <iostream>

#include "cada/train/lm_trainer.h"
#include "cada/util/config.h"
#include "command.h"

namespace {

struct Opts {
  std::string config;
  std::vector<std::string> overrides;
  bool print_defaults = false;
  bool resume = false;
  bool dry_run = false;
};

int run(const Opts& o) {
  using namespace cada;
  if (o.print_defaults) {
    for (const auto& line : config::describe(train::SftConfig{})) std::cout << line << "\n";
    return 0;
  }
  CADA_CHECK(!o.config.empty(), "--config is required (or --print-defaults)");
  auto j = config::load_file(o.config);
  config::apply_overrides(j, o.overrides);
  auto cfg = config::parse<train::SftConfig>(j, o.config);
  auto s = train::run_sft(cfg, o.resume, o.dry_run);
  if (o.dry_run) {
    std::cout << s.dry_run.dump() << "\n";
    return 0;
  }
  std::cout << "sft: " << s.steps_done << " steps, loss " << s.first_loss << " -> " << s.last_loss
            << ", held-out loss " << s.eval_loss << ", " << s.seconds << " s; model: " << s.final_dir << "\n";
  return 0;
}

}  // namespace

CADA_REGISTER_COMMAND(cada::cli::CommandSpec{
    "sft", "Supervised fine-tuning: completion-only loss on chat records (prompt/completion or messages)",
    [](CLI::App& sub) -> cada::cli::Runner {
      auto o = std::make_shared<Opts>();
      sub.add_option("--config", o->config, "SFT config (JSON with comments); see --print-defaults");
      sub.add_option("overrides", o->overrides, "key.sub=value overrides, e.g. epochs=2 optim.lr=5e-5");
      sub.add_flag("--resume", o->resume, "continue from the newest complete checkpoint in output_dir");
      sub.add_flag("--print-defaults", o->print_defaults, "print every config key with its default and meaning");
      sub.add_flag("--dry-run-loss", o->dry_run,
                   "print the first step's loss and gradient norms as JSON; no update, nothing written");
      return [o]() { return run(*o); };
    }});
