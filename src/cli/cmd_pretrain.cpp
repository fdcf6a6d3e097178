// cada pretrain: next-token training on a corpus packed into fixed-length rows (docs/safety.md: the tiny base model).
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
    for (const auto& line : config::describe(train::LmPretrainConfig{})) std::cout << line << "\n";
    return 0;
  }
  CADA_CHECK(!o.config.empty(), "--config is required (or --print-defaults)");
  auto j = config::load_file(o.config);
  config::apply_overrides(j, o.overrides);
  auto cfg = config::parse<train::LmPretrainConfig>(j, o.config);
  auto s = train::run_lm_pretraining(cfg, o.resume, o.dry_run);
  if (o.dry_run) {
    std::cout << s.dry_run.dump() << "\n";
    return 0;
  }
  std::cout << "pretrain: " << s.steps_done << " steps, loss " << s.first_loss << " -> " << s.last_loss
            << ", held-out loss " << s.eval_loss << " (ppl " << std::exp(s.eval_loss) << "), " << s.seconds
            << " s; model: " << s.final_dir << "\n";
  return 0;
}

}  // namespace

CADA_REGISTER_COMMAND(cada::cli::CommandSpec{
    "pretrain", "Next-token training on a corpus (BOS + text + EOS, packed rows), e.g. the tiny base model",
    [](CLI::App& sub) -> cada::cli::Runner {
      auto o = std::make_shared<Opts>();
      sub.add_option("--config", o->config, "pre-training config (JSON with comments); see --print-defaults");
      sub.add_option("overrides", o->overrides, "key.sub=value overrides, e.g. steps=100 optim.lr=1e-3");
      sub.add_flag("--resume", o->resume, "continue from the newest complete checkpoint in output_dir");
      sub.add_flag("--print-defaults", o->print_defaults, "print every config key with its default and meaning");
      sub.add_flag("--dry-run-loss", o->dry_run,
                   "print the first step's loss and gradient norms as JSON; no update, nothing written");
      return [o]() { return run(*o); };
    }});
