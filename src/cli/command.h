// Subcommand registry for the `cada` binary.
//
// Each subcommand lives in its own thin file src/cli/cmd_<name>.cpp: it declares its
// options on the CLI11 sub-app (defaults shown in --help), and returns a runner that
// builds the library objects and does the work. Errors thrown as cada::Error are caught
// in main() and printed as one sentence with a non-zero exit code.
#pragma once

#include <CLI/CLI.hpp>

#include <algorithm>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cada/util/config.h"
#include "cada/util/error.h"

namespace cada::cli {

using Runner = std::function<int()>;  // returns the process exit code

struct CommandSpec {
  std::string name;                               // e.g. "logprobs"
  std::string help;                               // one line for `cada --help`
  std::function<Runner(CLI::App& sub)> setup;     // declares options, returns the runner
};

// Adds a subcommand; called from static initialisers in the cmd_*.cpp files.
bool register_command(CommandSpec spec);
const std::vector<CommandSpec>& commands();

// What every config-driven command (train, sft, pretrain, train-rm) takes: --config FILE,
// key.sub=value overrides, --resume and --print-defaults.
struct ConfigOptions {
  std::string config;
  std::vector<std::string> overrides;
  bool resume = false;
  bool overwrite = false;
  bool print_defaults = false;
  bool memory_plan = false;          // trainers: print the memory plan and exit
};

// Declares those options; `what` names the config in --help, `example` shows two overrides.
inline void add_config_options(CLI::App& sub, ConfigOptions& o, const std::string& what, const std::string& example) {
  sub.add_option("--config", o.config, what + " (JSON with comments); see --print-defaults");
  sub.add_option("overrides", o.overrides, "key.sub=value overrides, e.g. " + example);
  sub.add_flag("--resume", o.resume, "continue from the newest complete checkpoint in output_dir");
  sub.add_flag("--overwrite", o.overwrite, "replace the run already in output_dir (its checkpoints, metrics, final model)");
  sub.add_flag("--print-defaults", o.print_defaults, "print every config key with its default and meaning");
}

// Trainers: --memory-plan prints the run's memory estimate (train/memory_plan.h) from the model's
// config.json without loading weights, and exits.
inline void add_memory_plan_flag(CLI::App& sub, ConfigOptions& o) {
  sub.add_flag("--memory-plan", o.memory_plan,
               "print the run's memory estimate (weights, optimizer, KV cache, activations) from the model's "
               "config.json, without loading weights, and exit");
}

namespace detail {
// The visitor behind add_struct_options: key top_p -> option --top-p.
struct CliOptionVisitor {
  CLI::App& app;
  template <class F>
  void operator()(const char* key, F& field, const char* help, std::vector<std::string> choices = {}) {
    std::string name = std::string("--") + key;
    std::replace(name.begin(), name.end(), '_', '-');
    CLI::Option* opt = nullptr;
    if constexpr (std::is_same_v<F, bool>) opt = app.add_flag(name, field, help);
    else opt = app.add_option(name, field, help)->capture_default_str();
    if (!choices.empty()) opt->check(CLI::IsMember(choices));
  }
  // Ranges are checked after parsing, by config::range_problems (one message format everywhere).
  template <class F>
  void operator()(const char* key, F& field, const char* help, const config::Range&) {
    (*this)(key, field, help);
  }
};
}  // namespace detail

// One command-line option per key of an options struct's visit() (top_p -> --top-p), with the
// struct's help text and its current value as the default: the flags of `cada generate` and
// the config keys of the other commands are then the same settings by construction.
template <class T>
void add_struct_options(CLI::App& sub, T& opts) {
  detail::CliOptionVisitor v{sub};
  opts.visit(v);
}

// With --print-defaults: prints every key of T with its default and meaning and returns
// nothing. Otherwise: --config with the overrides applied, parsed into T (unknown keys and
// wrong types rejected, every problem listed).
template <class T>
std::optional<T> load_config_or_print_defaults(const ConfigOptions& o) {
  if (o.print_defaults) {
    for (const auto& line : config::describe(T{})) std::cout << line << "\n";
    return std::nullopt;
  }
  CADA_CHECK(!o.config.empty(), "--config is required (or --print-defaults)");
  auto j = config::load_file(o.config);
  config::apply_overrides(j, o.overrides);
  return config::parse<T>(j, o.config);
}

}  // namespace cada::cli

#define CADA_CLI_CONCAT_(a, b) a##b
#define CADA_CLI_CONCAT(a, b) CADA_CLI_CONCAT_(a, b)
// Registers a subcommand at static-initialisation time.
#define CADA_REGISTER_COMMAND(...) \
  static const bool CADA_CLI_CONCAT(cada_cmd_registered_, __COUNTER__) = ::cada::cli::register_command(__VA_ARGS__)
