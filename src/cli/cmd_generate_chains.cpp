// cada generate-chains: K samples per prompt with a safety specification in context, scored,
// filtered, written as SFT records without the specification (docs/safety.md).
#include <iostream>

#include "cada/safety/chains.h"
#include "cada/util/config.h"
#include "cada/util/log.h"
#include "command.h"

// A named namespace per command file: the files may be compiled as one (unity build).
namespace {
namespace cmd_generate_chains {

struct Opts {
  std::string config;
  std::vector<std::string> overrides;
  bool resume = false;
  bool print_defaults = false;
  int64_t show_prompts = 0;
};

int run(const Opts& o) {
  using namespace cada;
  if (o.print_defaults) {
    for (const auto& line : config::describe(safety::ChainsConfig{})) std::cout << line << "\n";
    return 0;
  }
  CADA_CHECK(!o.config.empty(), "--config is required (or --print-defaults)");
  auto cfg = safety::load_chains_config(o.config, o.overrides);
  if (o.show_prompts > 0) {
    for (const auto& p : safety::preview_prompts(cfg, o.show_prompts)) {
      std::cout << "=====\n";
      for (const auto& m : p.messages) std::cout << "[" << m.role << "]\n" << m.content << "\n";
      if (!p.response_prefix.empty()) std::cout << "[assistant prefix]\n" << p.response_prefix << "\n";
    }
    return 0;
  }
  auto sum = safety::run_generate_chains(cfg, o.config, o.resume);
  CADA_INFO("done: ", sum.chains, " chain(s) from ", sum.prompts_done, " of ", sum.prompts_total, " prompt(s), ",
            sum.samples, " sample(s); ", cfg.output_dir, "/chains.jsonl (summary.json has the filter counts)");
  return 0;
}

CADA_REGISTER_COMMAND(cada::cli::CommandSpec{
    "generate-chains",
    "Reasoning chains over a safety specification: sample, score, filter, write SFT records without the spec",
    [](CLI::App& sub) -> cada::cli::Runner {
      auto o = std::make_shared<Opts>();
      sub.add_option("--config", o->config, "chains config (JSON with comments); see `--print-defaults`");
      sub.add_option("overrides", o->overrides, "key.sub=value overrides, e.g. data.limit=50 filter.total_cap=100");
      sub.add_flag("--resume", o->resume,
                   "continue the run in output_dir (prompts not marked finished are redone); with a finished run, "
                   "re-apply the filters");
      sub.add_flag("--print-defaults", o->print_defaults, "print every config key with its default and meaning");
      sub.add_option("--show-prompts", o->show_prompts,
                     "print the prompts the model would see for the first N records and exit (no model needed)");
      return [o]() { return run(*o); };
    }});

}  // namespace cmd_generate_chains
}  // namespace
