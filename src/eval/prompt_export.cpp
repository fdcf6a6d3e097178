// Public data sets -> the project's prompt-record JSONL.
#include "cada/eval/prompt_export.h"

#include <set>

#include "cada/util/config.h"
#include "cada/util/error.h"

namespace cada::eval {

using nlohmann::json;

namespace {

std::vector<DatasetSpec> specs_of(const PromptsConfig& cfg, const std::string& source, std::vector<std::string>& problems) {
  std::vector<DatasetSpec> out;
  if (!cfg.datasets.is_array() || cfg.datasets.empty()) {
    problems.push_back(source + ": 'datasets' must be a non-empty list of objects");
    return out;
  }
  std::set<std::string> names;
  for (size_t i = 0; i < cfg.datasets.size(); ++i) {
    const std::string w = source + ": datasets[" + std::to_string(i) + "]";
    try {
      auto d = config::parse<DatasetSpec>(cfg.datasets[i], w);
      if (d.path.empty()) problems.push_back(w + ": 'path' is required");
      if (d.name.empty()) problems.push_back(w + ": 'name' is required (it prefixes the ids)");
      if (!d.name.empty() && !names.insert(d.name).second) problems.push_back(w + ": the name '" + d.name + "' is used twice");
      if (!d.jailbreaks.is_null()) problems.push_back(w + ": 'jailbreaks' has no use in a prompts config");
      out.push_back(d);
    } catch (const Error& e) {
      problems.push_back(e.what());
    }
  }
  return out;
}

json record_json(const PromptRecord& r, const std::string& dataset) {
  json j = {{"id", dataset + "-" + r.id}};
  if (!r.messages.empty()) {
    json m = json::array();
    for (const auto& x : r.messages) m.push_back({{"role", x.role}, {"content", x.content}});
    j["messages"] = m;
  } else {
    j["prompt"] = r.prompt;
  }
  j["label"] = r.label;
  j["kind"] = r.label;
  j["category"] = r.category;
  j["source"] = r.source;
  j["dataset"] = dataset;
  j["where"] = r.where;
  j["meta"] = r.meta;
  return j;
}

}  // namespace

PromptsConfig load_prompts_config(const std::string& path, const std::vector<std::string>& overrides) {
  auto j = config::load_file(path);
  config::apply_overrides(j, overrides);
  auto cfg = config::parse<PromptsConfig>(j, path);
  std::vector<std::string> problems;
  if (cfg.output.empty()) problems.push_back(path + ": 'output' is required");
  specs_of(cfg, path, problems);
  if (!problems.empty()) {
    std::string msg = path + ": " + std::to_string(problems.size()) + " problem(s) in the prompts config:";
    for (const auto& p : problems) msg += "\n  - " + p;
    throw Error(msg);
  }
  return cfg;
}

std::string export_prompts(const PromptsConfig& cfg, std::vector<std::string>& counts) {
  std::vector<std::string> problems;
  const auto specs = specs_of(cfg, "prompts config", problems);
  CADA_CHECK(problems.empty(), problems.empty() ? "" : problems[0]);
  std::string out;
  std::set<std::string> seen;
  for (const auto& s : specs) {
    int64_t harmful = 0, benign = 0, kept = 0;
    for (const auto& r : load_dataset(s, cfg.data_dir)) {
      if (!seen.insert(r.prompt).second) continue;
      out += record_json(r, s.name).dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
      ++kept;
      harmful += r.label == "harmful";
      benign += r.label == "benign";
    }
    counts.push_back(s.name + ": " + std::to_string(kept) + " prompts (" + std::to_string(harmful) + " harmful, " +
                     std::to_string(benign) + " benign) from " + s.path);
  }
  return out;
}

}  // namespace cada::eval
