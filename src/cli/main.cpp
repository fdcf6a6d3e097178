// The `cada` binary: dispatches to the registered subcommands.
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <new>
#include <string>

#include "cada/dist/comm.h"
#include "cada/util/error.h"
#include "cada/util/log.h"
#include "cada/util/malloc_tuning.h"
#include "cada/util/signals.h"
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

namespace {

// One sentence for the user: libtorch's errors without their C++ backtrace (kept under
// --debug or CADA_DEBUG=1), memory exhaustion named as such.
std::string error_sentence(const std::exception& e) {
  const char* debug = std::getenv("CADA_DEBUG");
  const bool full = debug && std::string(debug) != "0" && std::string(debug) != "";
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) {
    if (full) return c->what();
    std::string msg = c->what_without_backtrace();
    if (msg.find("out of memory") != std::string::npos || msg.find("can't allocate memory") != std::string::npos)
      return "out of memory: " + msg.substr(0, msg.find('\n')) +
             " (lower the batch size, sequence lengths or sequences decoded together)";
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return msg + " (CADA_DEBUG=1 shows libtorch's backtrace)";
  }
  if (dynamic_cast<const std::bad_alloc*>(&e))
    return "out of host memory while allocating (lower the batch size or sequence lengths)";
  return e.what();
}

}  // namespace

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
  bool debug = false;
  app.add_flag("--debug", debug, "show libtorch's C++ backtrace with errors (as CADA_DEBUG=1)");

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
  if (debug) ::setenv("CADA_DEBUG", "1", 1);

  for (auto& [sub, named] : runners) {
    if (!sub->parsed()) continue;
    try {
      cada::init_logging(log_level);
      return named.second();
    } catch (const cada::Interrupted& e) {
      std::fprintf(stderr, "cada %s: %s\n", named.first.c_str(), e.what());
      std::fflush(stderr);
      if (cada::dist::active()) std::_Exit(e.exit_code());
      return e.exit_code();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "cada %s: error: %s\n", named.first.c_str(), error_sentence(e).c_str());
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
