// cada compare: eval reports side by side (a markdown table, compare.json and a PNG chart).
#include <iostream>

#include "cada/eval/compare.h"
#include "cada/io/figure.h"
#include "cada/io/files.h"
#include "cada/util/error.h"
#include "command.h"

// A named namespace per command file: the files may be compiled as one (unity build).
namespace {
namespace cmd_compare {

struct Opts {
  std::vector<std::string> runs;  // name=path/to/report.json
  std::string out;
  std::string title;
  cada::eval::CompareOptions cmp;
};

int run(const Opts& o) {
  using namespace cada;
  std::vector<eval::CompareRun> runs;
  for (const auto& r : o.runs) {
    const auto eq = r.find('=');
    CADA_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < r.size(), "run '", r,
               "' is not NAME=REPORT (e.g. base=runs/eval-base/report.json)");
    std::string path = r.substr(eq + 1);
    if (io::is_directory(path)) {
      CADA_CHECK(io::file_exists(io::join_path(path, "report.json")), "run '", r.substr(0, eq), "': ", path,
                 " holds no report.json (run cada eval with output_dir=", path, " first)");
      path = io::join_path(path, "report.json");
    }
    runs.push_back({r.substr(0, eq), path});
  }
  auto cmp = eval::compare_reports(runs, o.cmp);
  const std::string md = eval::compare_markdown(cmp);
  std::cout << md;
  if (!o.out.empty()) {
    io::make_dirs(o.out);
    io::atomic_write_file(io::join_path(o.out, "compare.json"), cmp.dump(2) + "\n");
    io::atomic_write_file(io::join_path(o.out, "compare.md"), md);
    io::write_figure(io::join_path(o.out, "compare"), eval::compare_chart(cmp, o.title));
    std::cout << "wrote " << io::join_path(o.out, "compare.{md,json,png,svg}") << "\n";
  }
  return 0;
}

CADA_REGISTER_COMMAND(cada::cli::CommandSpec{
    "compare", "Eval reports side by side: a table (markdown, JSON) and a grouped bar chart (PNG)",
    [](CLI::App& sub) -> cada::cli::Runner {
      auto o = std::make_shared<Opts>();
      sub.add_option("runs", o->runs, "NAME=REPORT pairs (REPORT: a report.json of cada eval, or its folder)")->required();
      sub.add_option("--out", o->out, "folder for compare.md, compare.json and compare.png / .svg (empty = print only)");
      sub.add_option("--selector", o->cmp.selector, "Best-of-N selector to compare (all = every sample)");
      sub.add_option("--jailbreak", o->cmp.jailbreak, "one jailbreak (empty = all jailbreaks together)");
      sub.add_option("--metrics", o->cmp.metrics, "metrics to keep, in order (default: every metric)");
      sub.add_option("--datasets", o->cmp.datasets, "datasets to keep, in order (default: every dataset)");
      sub.add_option("--title", o->title, "chart title");
      return [o]() { return run(*o); };
    }});

}  // namespace cmd_compare
}  // namespace
