// Side-by-side comparison of eval reports: `cada compare`.
#include "cada/eval/compare.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "cada/eval/report.h"
#include "cada/io/files.h"
#include "cada/util/error.h"
#include "cada/util/strings.h"

namespace cada::eval {

using nlohmann::json;

namespace {

// The summaries {metric: summary} of one dataset of a report for the selector and jailbreak.
const json* dataset_summaries(const json& report, const std::string& ds, const CompareOptions& o,
                              const std::string& source) {
  const json& d = report.at("datasets").at(ds);
  CADA_CHECK(d.contains("selectors") && d["selectors"].contains(o.selector), source, ": dataset '", ds,
             "' has no selector '", o.selector, "'");
  const json& s = d["selectors"][o.selector];
  if (o.jailbreak.empty()) return &s.at("overall");
  CADA_CHECK(s.contains("by_jailbreak") && s["by_jailbreak"].contains(o.jailbreak), source, ": dataset '", ds,
             "' has no jailbreak '", o.jailbreak, "'");
  return &s["by_jailbreak"][o.jailbreak];
}

}  // namespace

json compare_reports(const std::vector<CompareRun>& runs, const CompareOptions& o) {
  CADA_CHECK(!runs.empty(), "compare: no reports given");
  std::set<std::string> names;
  std::vector<json> reports;
  json out = {{"selector", o.selector}, {"jailbreak", o.jailbreak.empty() ? json("all") : json(o.jailbreak)}};
  out["runs"] = json::array();
  for (const auto& r : runs) {
    CADA_CHECK(!r.name.empty(), "compare: a run has an empty name (", r.report, ")");
    CADA_CHECK(names.insert(r.name).second, "compare: run name '", r.name, "' is given twice");
    CADA_CHECK(io::file_exists(r.report), "compare: ", r.report, " does not exist (expected a report.json of cada eval)");
    json rep;
    try {
      rep = json::parse(io::read_file(r.report));
    } catch (const json::exception& e) {
      CADA_FAIL(r.report, " is not valid JSON: ", e.what());
    }
    CADA_CHECK(rep.is_object() && rep.contains("datasets") && rep["datasets"].is_object(), r.report,
               ": not a cada eval report (no 'datasets' object)");
    json model = rep.contains("model") ? rep["model"] : json(nullptr);
    out["runs"].push_back({{"name", r.name}, {"report", r.report}, {"model", model}});
    reports.push_back(std::move(rep));
  }
  // Row order: datasets and metrics in option order, else in name order (the reports' JSON
  // objects are sorted by key).
  std::vector<std::string> datasets = o.datasets;
  if (datasets.empty())
    for (const auto& rep : reports)
      for (auto it = rep["datasets"].begin(); it != rep["datasets"].end(); ++it)
        if (!util::contains(datasets, it.key())) datasets.push_back(it.key());
  if (o.datasets.empty()) std::sort(datasets.begin(), datasets.end());
  json rows = json::array();
  for (const auto& ds : datasets) {
    std::vector<std::string> metrics = o.metrics;
    std::vector<const json*> sums(reports.size(), nullptr);
    bool any = false;
    for (size_t i = 0; i < reports.size(); ++i) {
      if (!reports[i]["datasets"].contains(ds)) continue;
      any = true;
      sums[i] = dataset_summaries(reports[i], ds, o, runs[i].report);
      if (o.metrics.empty())
        for (auto it = sums[i]->begin(); it != sums[i]->end(); ++it)
          if (!util::contains(metrics, it.key())) metrics.push_back(it.key());
    }
    if (o.metrics.empty()) std::sort(metrics.begin(), metrics.end());
    CADA_CHECK(any, "compare: no report has dataset '", ds, "'");
    for (const auto& m : metrics) {
      json cells = json::object();
      bool has = false;
      for (size_t i = 0; i < reports.size(); ++i) {
        if (sums[i] && sums[i]->contains(m)) {
          cells[runs[i].name] = (*sums[i])[m];
          has = true;
        } else {
          cells[runs[i].name] = nullptr;
        }
      }
      if (has) rows.push_back({{"dataset", ds}, {"metric", m}, {"cells", cells}});
    }
  }
  out["rows"] = rows;
  return out;
}

std::string compare_markdown(const json& cmp) {
  std::string md = "| dataset | metric |";
  std::string sep = "|---|---|";
  std::vector<std::string> names;
  for (const auto& r : cmp.at("runs")) {
    names.push_back(r.at("name").get<std::string>());
    md += " " + names.back() + " |";
    sep += "---|";
  }
  md += "\n" + sep + "\n";
  for (const auto& row : cmp.at("rows")) {
    md += "| " + row.at("dataset").get<std::string>() + " | " + row.at("metric").get<std::string>() + " |";
    for (const auto& n : names) {
      const json& c = row.at("cells").at(n);
      md += " " + (c.is_null() ? std::string("-") : format_summary(c)) + " |";
    }
    md += "\n";
  }
  md += "\nselector: " + cmp.value("selector", std::string("all")) +
        ", jailbreak: " + cmp.value("jailbreak", std::string("all")) + "; 95% bootstrap intervals in brackets\n";
  return md;
}

chart::Figure compare_chart(const json& cmp, const std::string& title) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<chart::Bar> bars;
  std::vector<std::string> names;
  for (const auto& r : cmp.at("runs")) names.push_back(r.at("name").get<std::string>());
  double top = 0;
  bool unit = true;
  for (const auto& row : cmp.at("rows")) {
    const std::string label = row.at("dataset").get<std::string>() + " " + row.at("metric").get<std::string>();
    for (size_t i = 0; i < names.size(); ++i) {
      const json& c = row.at("cells").at(names[i]);
      chart::Bar b;
      b.label = (i == 0 ? label : std::string()) + " " + names[i];
      b.group = static_cast<int>(i);
      b.value = nan;
      if (c.is_object() && c.contains("mean") && c["mean"].is_number()) {
        b.value = c["mean"].get<double>();
        if (c.contains("ci_low") && c["ci_low"].is_number()) b.lo = c["ci_low"].get<double>();
        if (c.contains("ci_high") && c["ci_high"].is_number()) b.hi = c["ci_high"].get<double>();
        top = std::max(top, std::isnan(b.hi) ? b.value : b.hi);
        if (b.value < 0 || b.value > 1) unit = false;
      }
      bars.push_back(b);
    }
  }
  chart::BarOptions opts;
  opts.title = title.empty() ? "cada compare: " + [&] {
    std::string s;
    for (size_t i = 0; i < names.size(); ++i) s += (i ? " vs " : "") + names[i];
    return s;
  }() : title;
  opts.max_value = unit ? 1.0 : 0.0;
  (void)top;
  return chart::bar_chart(bars, opts);
}

}  // namespace cada::eval
