#include "cada/train/curves.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <map>
#include <sstream>

#include "cada/io/figure.h"
#include "cada/io/files.h"
#include "cada/util/log.h"

namespace cada::train {

namespace {

// A panel: its title and the metric keys drawn in it (series named after what follows "/").
struct PanelSpec {
  const char* title;
  std::vector<const char*> keys;
};

const std::vector<PanelSpec>& specs() {
  static const std::vector<PanelSpec> k = {
      {"reward", {"train/reward"}},
      {"KL to the reference", {"train/kl"}},
      {"loss", {"train/loss", "eval/loss"}},
      {"completion length (tokens)", {"train/completion_length"}},
      {"accuracy", {"train/accuracy", "eval/accuracy"}},
      {"entropy", {"train/entropy"}},
      {"clipped ratio", {"train/clip_ratio/region"}},
      {"learning rate", {"train/lr"}},
      {"gradient norm", {"train/grad_norm"}},
  };
  return k;
}

std::string series_name(const std::string& key) {
  const auto slash = key.find('/');
  const std::string head = key.substr(0, slash);
  return head == "eval" ? "held-out" : head;
}

}  // namespace

std::vector<chart::Panel> curve_panels(const std::string& text) {
  std::map<std::string, chart::Series> series;  // by key
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!row.is_object() || !row.contains("step") || !row["step"].is_number()) continue;  // a torn last line
    const double step = row["step"].get<double>();
    for (const auto& spec : specs())
      for (const char* key : spec.keys)
        if (row.contains(key) && row[key].is_number()) {
          auto& s = series[key];
          s.name = series_name(key);
          s.x.push_back(step);
          s.y.push_back(row[key].get<double>());
        }
  }
  std::vector<chart::Panel> panels;
  for (const auto& spec : specs()) {
    chart::Panel p{spec.title, "step", {}};
    for (const char* key : spec.keys)
      if (series.count(key)) p.series.push_back(series[key]);
    if (!p.series.empty()) panels.push_back(std::move(p));
  }
  return panels;
}

void write_training_curves(const std::string& run_dir) {
  const std::string path = io::join_path(run_dir, "metrics.jsonl");
  try {
    if (!io::file_exists(path)) return;
    const auto panels = curve_panels(io::read_file(path));
    if (panels.empty()) return;
    chart::PanelOptions o;
    o.title = "training curves: " + run_dir;
    o.columns = panels.size() > 4 ? 3 : 2;
    io::write_figure(io::join_path(run_dir, "curves"), chart::line_panels(panels, o));
  } catch (const std::exception& e) {
    CADA_WARN("training curves of ", run_dir, " not drawn: ", e.what());
  }
}

}  // namespace cada::train
