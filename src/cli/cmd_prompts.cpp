// cada prompts: public data sets -> the prompt-record JSONL the chains, SFT and GRPO configs read.
#include <iostream>

#include "cada/eval/prompt_export.h"
#include "cada/io/files.h"
#include "cada/util/config.h"
#include "command.h"

// A named namespace per command file: the files may be compiled as one (unity build).
namespace {
namespace cmd_prompts {

struct Opts {
  std::string config;
  std::vector<std::string> overrides;
  bool print_defaults = false;
};

int run(const Opts& o) {
  using namespace cada;
  if (o.print_defaults) {
    for (const auto& line : config::describe(eval::PromptsConfig{})) std::cout << line << "\n";
    return 0;
  }
  CADA_CHECK(!o.config.empty(), "--config is required (or --print-defaults)");
  const auto cfg = eval::load_prompts_config(o.config, o.overrides);
  std::vector<std::string> counts;
  const std::string text = eval::export_prompts(cfg, counts);
  const auto slash = cfg.output.rfind('/');
  if (slash != std::string::npos && slash > 0) io::make_dirs(cfg.output.substr(0, slash));
  io::atomic_write_file(cfg.output, text);
  for (const auto& c : counts) std::cout << c << "\n";
  std::cout << "wrote " << cfg.output << "\n";
  return 0;
}

CADA_REGISTER_COMMAND(cada::cli::CommandSpec{
    "prompts", "Public data sets (PKU-SafeRLHF, BeaverTails, WildJailbreak, Alpaca, Dolly, ...) -> prompt records",
    [](CLI::App& sub) -> cada::cli::Runner {
      auto o = std::make_shared<Opts>();
      sub.add_option("--config", o->config, "prompts config (JSON with comments); see --print-defaults");
      sub.add_option("overrides", o->overrides, "key.sub=value overrides, e.g. output=runs/prompts.jsonl");
      sub.add_flag("--print-defaults", o->print_defaults, "print every config key with its default and meaning");
      return [o]() { return run(*o); };
    }});

}  // namespace cmd_prompts
}  // namespace
