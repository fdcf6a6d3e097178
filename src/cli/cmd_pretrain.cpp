// cada pretrain: next-token training on a corpus packed into fixed-length rows (docs/safety.md: the tiny base model).
#include <cmath>
#include <iostream>

#include "cada/train/lm_trainer.h"
#include "cada/train/run_folder.h"
#include "cada/util/config.h"
#include "command.h"

// A named namespace per command file: the files may be compiled as one (unity build).
namespace {
namespace cmd_pretrain {

struct Opts : cada::cli::ConfigOptions {
  bool dry_run = false;
};

int run(const Opts& o) {
  using namespace cada;
  auto cfg = cli::load_config_or_print_defaults<train::LmPretrainConfig>(o);
  if (!cfg) return 0;
  if (o.memory_plan) {
    const auto plan = train::lm_pretraining_memory_plan(*cfg).table();
    std::cout << "memory plan (estimate):\n" << plan;
    return 0;
  }
  train::RunFolder folder;  // the run's output_dir, locked while it trains (a dry run writes nothing)
  if (!o.dry_run) folder = train::RunFolder::claim(cfg->output_dir, o.resume, o.overwrite, config::to_json(*cfg));
  auto s = train::run_lm_pretraining(*cfg, o.resume, o.dry_run);
  if (o.dry_run) {
    std::cout << s.dry_run.dump() << "\n";
    return 0;
  }
  std::cout << "pretrain: " << s.steps_done << " steps, loss " << s.first_loss << " -> " << s.last_loss
            << ", held-out loss " << s.eval_loss << " (ppl " << std::exp(s.eval_loss) << "), " << s.seconds
            << " s; model: " << s.final_dir << "\n";
  return 0;
}

CADA_REGISTER_COMMAND(cada::cli::CommandSpec{
    "pretrain", "Next-token training on a corpus (BOS + text + EOS, packed rows), e.g. the tiny base model",
    [](CLI::App& sub) -> cada::cli::Runner {
      auto o = std::make_shared<Opts>();
      cada::cli::add_config_options(sub, *o, "pre-training config", "steps=100 optim.lr=1e-3");
      cada::cli::add_memory_plan_flag(sub, *o);
      sub.add_flag("--dry-run-loss", o->dry_run,
                   "print the first step's loss and gradient norms as JSON; no update, nothing written");
      return [o]() { return run(*o); };
    }});

}  // namespace cmd_pretrain
}  // namespace
