// The `cada` binary: dispatches to the registered subcommands.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>

#include "cada/dist/comm.h"
#include "cada/util/error.h"
#include "cada/util/log.h"
#include "cada/util/malloc_tuning.h"
#include "command.h"

namespace cada::cli {

static std::vector<CommandSpec>& registry() {
  static std::vector<CommandSpec> r;
  return r;
}
bool register_command(CommandSpec spec) {
  registry().push_back(std::move(spec));
  return true;
}
const std::vector<CommandSpec>& commands() { return registry(); }

}  // namespace cada::cli

int main(int argc, char** argv) {
  using namespace cada::cli;
  cada::util::tune_malloc_for_tensors();
  CLI::App app{"cada: case-augmented deliberative alignment for open language models"};
  app.set_version_flag("--version", std::string("cada ") + CADA_VERSION);
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();

  auto specs = commands();
  std::sort(specs.begin(), specs.end(),
            [](const CommandSpec& a, const CommandSpec& b) { return a.name < b.name; });
  std::map<CLI::App*, std::pair<std::string, Runner>> runners;
  for (const auto& spec : specs) {
    CLI::App* sub = app.add_subcommand(spec.name, spec.help);
    sub->option_defaults()->always_capture_default();
    runners[sub] = {spec.name, spec.setup(*sub)};
  }
  CLI11_PARSE(app, argc, argv);

  for (auto& [sub, named] : runners) {
    if (!sub->parsed()) continue;
    try {
      cada::init_logging(log_level);
      return named.second();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "cada %s: error: %s\n", named.first.c_str(), e.what());
      // In a multi-process run the process group's threads may wait on peers that are gone:
      // leave without running their destructors.
      if (cada::dist::active()) {
        std::fflush(stderr);
        std::fflush(stdout);
        std::_Exit(1);
      }
      return 1;
    }
  }
  return 1;
}
