// cada eval: safety benchmarks (jailbreaks, Best-of-N) -> generations -> judges -> reports.
#include <cstdio>
#include <iostream>

#include "cada/dist/comm.h"
#include "cada/eval/eval.h"
#include "cada/eval/report.h"
#include "cada/io/files.h"
#include "cada/util/config.h"
#include "cada/util/log.h"
#include "command.h"

// A named namespace per command file: the files may be compiled as one (unity build).
namespace {
namespace cmd_eval {

struct Opts {
  std::string config;
  std::vector<std::string> overrides;
  std::string generations;
  bool generate_only = false;
  bool print_defaults = false;
};

int run(const Opts& o) {
  using namespace cada;
  if (o.print_defaults) {
    for (const auto& line : config::describe(eval::EvalConfig{})) std::cout << line << "\n";
    return 0;
  }
  CADA_CHECK(!o.config.empty(), "--config is required (or --print-defaults)");
  CADA_CHECK(!(o.generate_only && !o.generations.empty()), "--generate-only and --generations exclude each other");
  auto cfg = eval::load_config(o.config, o.overrides);
  // Several processes (torchrun, mpirun, srun) share the generation and judging; rank 0 writes.
  auto& comm = dist::init_from_env(cfg.device);
  dist::check_same(comm, config::to_json(cfg).dump(), "eval config");
  io::make_dirs(cfg.output_dir);
  if (comm.is_main())
    io::atomic_write_file(io::join_path(cfg.output_dir, "eval_config.json"), config::to_json(cfg).dump(2) + "\n");
  eval::EvalRunner runner(cfg, o.config);
  std::string gens = o.generations;
  if (gens.empty()) {
    gens = io::join_path(cfg.output_dir, "generations.jsonl");
    runner.generate(gens);
    if (o.generate_only) return 0;
  }
  auto report = runner.judge(gens, cfg.output_dir);
  if (!comm.is_main()) return 0;
  std::cout << eval::report_markdown(report);
  std::cout.flush();
  return 0;
}

CADA_REGISTER_COMMAND(cada::cli::CommandSpec{
    "eval", "Safety evaluation: benchmarks, jailbreaks, Best-of-N, judges, metrics with bootstrap intervals",
    [](CLI::App& sub) -> cada::cli::Runner {
      auto o = std::make_shared<Opts>();
      sub.add_option("--config", o->config, "eval config (JSON with comments); see `--print-defaults` and docs/eval.md");
      sub.add_option("overrides", o->overrides, "key.sub=value overrides, e.g. bon.n=4 sampling.temperature=0.7");
      sub.add_option("--generations", o->generations,
                     "judge this generation file only (no generation): re-score old generations with the config's judges");
      sub.add_flag("--generate-only", o->generate_only, "write output_dir/generations.jsonl and stop (judge later)");
      sub.add_flag("--print-defaults", o->print_defaults, "print every config key with its default and meaning");
      return [o]() { return run(*o); };
    }});

}  // namespace cmd_eval
}  // namespace
