// Markdown and PNG renderings of the eval report.
#include "cada/eval/report.h"

#include <cmath>
#include <cstdio>

#include "cada/eval/metrics.h"
#include "cada/eval/xstest_report.h"
#include "cada/util/error.h"

namespace cada::eval {

using nlohmann::json;

namespace {

std::string num(const json& v) {
  if (!v.is_number()) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.3f", v.get<double>());
  return b;
}

// j[k] for const objects without undefined behaviour: null when absent.
const json& at(const json& j, const std::string& k) {
  static const json null_json;
  if (!j.is_object()) return null_json;
  auto it = j.find(k);
  return it == j.end() ? null_json : *it;
}

bool has_data(const json& s) { return s.is_object() && (s.value("n", 0) > 0 || s.value("nulls", 0) > 0); }

std::vector<std::string> strings(const json& a) {
  std::vector<std::string> v;
  if (a.is_array())
    for (const auto& x : a)
      if (x.is_string()) v.push_back(x.get<std::string>());
  return v;
}

std::string escape_cell(std::string s) {
  std::string o;
  for (char c : s) {
    if (c == '|') o += "\\|";
    else if (c == '\n') o += ' ';
    else o += c;
  }
  return o;
}

}  // namespace

std::string format_summary(const json& s) {
  if (!s.is_object()) return "";
  std::string out;
  if (s.contains("mean") && at(s, "mean").is_number()) {
    out = num(at(s, "mean"));
    if (s.contains("ci_low") && at(s, "ci_low").is_number()) out += " [" + num(at(s, "ci_low")) + ", " + num(at(s, "ci_high")) + "]";
  } else {
    out = "-";
  }
  const int64_t nulls = s.value("nulls", int64_t{0}), ns = s.value("null_samples", int64_t{0});
  if (nulls > 0 || ns > 0)
    out += " (null: " + std::to_string(nulls) + " units, " + std::to_string(ns) + " samples)";
  return out;
}

std::string report_markdown(const json& r) {
  std::string md = "# cada eval report\n\n";
  if (r.contains("model") && at(r, "model").is_object())
    md += "- model: `" + at(r, "model").value("path", std::string()) + "` (" + at(r, "model").value("fingerprint", std::string()) +
          ")\n";
  if (r.contains("base_model") && at(r, "base_model").is_object())
    md += "- base model: `" + at(r, "base_model").value("path", std::string()) + "`\n";
  if (r.contains("generations")) md += "- generations: `" + at(r, "generations").get<std::string>() + "`";
  if (r.contains("records")) md += " (" + at(r, "records").dump() + " records, " + r.value("completions", json(0)).dump() + " completions)";
  md += "\n";
  if (r.contains("bootstrap") && at(r, "bootstrap").is_object()) {
    const auto& b = at(r, "bootstrap");
    char line[200];
    std::snprintf(line, sizeof line, "- intervals: percentile bootstrap, %lld resamples, %.0f%% confidence, seed %llu\n",
                  static_cast<long long>(b.value("resamples", int64_t{0})), 100 * b.value("confidence", 0.95),
                  static_cast<unsigned long long>(b.value("seed", uint64_t{0})));
    md += line;
  }
  if (r.contains("truncation") && at(r, "truncation").is_object()) {
    const auto& t = at(r, "truncation");
    char line[256];
    std::snprintf(line, sizeof line,
                  "- truncated (no final answer): %lld of %lld completions (rate %.4f); policy `%s`\n",
                  static_cast<long long>(t.value("truncated", 0)), static_cast<long long>(t.value("completions", 0)),
                  t.value("rate", 0.0), t.value("policy", std::string("exclude")).c_str());
    md += line;
  }
  md += "\nCells: mean [interval]; \"null\" counts units without any judge value and null judge values inside "
        "the counted units (never averaged in).\n";

  if (r.contains("rewards") && at(r, "rewards").is_object() && !at(r, "rewards").empty()) {
    md += "\n## Judges\n\n| reward | type | role | values | null | parse failures |\n|---|---|---|---|---|---|\n";
    for (auto it = at(r, "rewards").begin(); it != at(r, "rewards").end(); ++it) {
      const auto& x = it.value();
      md += "| " + it.key() + " | " + x.value("type", std::string()) + " | " + x.value("role", std::string()) + " | " +
            x.value("values", json(0)).dump() + " | " + x.value("nulls", json(0)).dump() + " | " +
            x.value("parse_failures", json(0)).dump() + " |\n";
    }
  }

  const auto metrics = strings(r.value("metrics", json::array()));
  const auto selectors = strings(r.value("selectors", json::array()));
  if (!r.contains("datasets") || !at(r, "datasets").is_object()) return md + xstest_markdown(r);
  for (auto dit = at(r, "datasets").begin(); dit != at(r, "datasets").end(); ++dit) {
    const auto& d = dit.value();
    md += "\n## " + dit.key() + "\n\n" + d.value("prompts", json(0)).dump() + " prompts, " +
          d.value("units", json(0)).dump() + " (prompt, jailbreak) units\n";
    const auto jbs = strings(d.value("jailbreaks", json::array()));
    const auto cats = strings(d.value("categories", json::array()));
    for (const auto& sel : selectors) {
      if (!at(d, "selectors").contains(sel)) continue;
      const auto& s = at(at(d, "selectors"), sel);
      // Columns: metrics with data somewhere in this dataset.
      std::vector<std::string> cols;
      for (const auto& m : metrics) {
        bool any = has_data(at(at(s, "overall"), m));
        for (const auto& jb : jbs) any = any || has_data(at(at(at(s, "by_jailbreak"), jb), m));
        if (any) cols.push_back(m);
      }
      if (cols.empty()) continue;
      md += "\n### " + dit.key() + ", selector `" + sel + "`\n\n| jailbreak |";
      for (const auto& c : cols) md += " " + c + " |";
      md += "\n|---|";
      for (size_t i = 0; i < cols.size(); ++i) md += "---|";
      md += "\n";
      auto row = [&](const std::string& name, const json& table) {
        md += "| " + escape_cell(name) + " |";
        for (const auto& c : cols) md += " " + (table.contains(c) ? format_summary(at(table, c)) : std::string("")) + " |";
        md += "\n";
      };
      for (const auto& jb : jbs) row(jb, at(at(s, "by_jailbreak"), jb));
      if (jbs.size() > 1) {
        row("**all jailbreaks**", at(s, "overall"));
        row("**worst case**", at(s, "worst_case"));
      }
      // Categories for the first selector ("all"); report.json has them for every selector.
      if (sel == selectors.front() && (cats.size() > 1 || (cats.size() == 1 && !cats[0].empty()))) {
        md += "\n| category |";
        for (const auto& c : cols) md += " " + c + " |";
        md += "\n|---|";
        for (size_t i = 0; i < cols.size(); ++i) md += "---|";
        md += "\n";
        for (const auto& c : cats) row(c.empty() ? "(none)" : c, at(at(s, "by_category"), c));
      }
    }
  }
  return md + xstest_markdown(r);
}

std::string default_plot_metric(const json& r) {
  const auto metrics = strings(r.value("metrics", json::array()));
  // A metric with at least one value somewhere (an all-null judge makes an empty chart).
  auto has_values = [&](const std::string& m) {
    if (!r.contains("datasets") || !at(r, "datasets").is_object()) return false;
    for (auto d = at(r, "datasets").begin(); d != at(r, "datasets").end(); ++d)
      for (auto s = at(d.value(), "selectors").begin(); s != at(d.value(), "selectors").end(); ++s)
        if (const json& v = at(at(s.value(), "overall"), m); v.is_object() && v.value("n", 0) > 0) return true;
    return false;
  };
  std::vector<std::string> order;
  for (const auto& m : metrics)
    if (m == "strongreject") order.push_back(m);
  for (const auto& m : metrics)
    if (m.rfind("asr:", 0) == 0) order.push_back(m);
  for (const auto& m : metrics)
    if (m == "refusal_rate") order.push_back(m);
  for (const auto& m : metrics) order.push_back(m);
  for (const auto& m : order)
    if (has_values(m)) return m;
  return order.empty() ? "" : order[0];
}

chart::Figure report_chart(const json& r, const std::string& metric) {
  std::vector<chart::Bar> bars;
  const auto selectors = strings(r.value("selectors", json::array()));
  auto add = [&](const std::string& label, const json& s, int group) {
    if (!has_data(s)) return;
    chart::Bar b;
    b.label = label;
    b.group = group;
    b.value = at(s, "mean").is_number() ? at(s, "mean").get<double>() : std::nan("");
    if (at(s, "ci_low").is_number()) {
      b.lo = at(s, "ci_low").get<double>();
      b.hi = at(s, "ci_high").get<double>();
    }
    bars.push_back(b);
  };
  if (r.contains("datasets") && at(r, "datasets").is_object())
    for (auto dit = at(r, "datasets").begin(); dit != at(r, "datasets").end(); ++dit) {
      const auto& d = dit.value();
      const auto jbs = strings(d.value("jailbreaks", json::array()));
      for (size_t si = 0; si < selectors.size(); ++si) {
        const auto& sel = selectors[si];
        if (!at(d, "selectors").contains(sel)) continue;
        const auto& s = at(at(d, "selectors"), sel);
        const std::string prefix = dit.key() + (selectors.size() > 1 ? "/" + sel : "") + "/";
        for (const auto& jb : jbs) add(prefix + jb, at(at(at(s, "by_jailbreak"), jb), metric), static_cast<int>(si));
        if (jbs.size() > 1 && is_harm_metric(metric))
          add(prefix + "worst case", at(at(s, "worst_case"), metric), static_cast<int>(si));
      }
    }
  chart::BarOptions o;
  o.title = metric.empty() ? "no metric" : metric + " (mean, " +
                                               std::to_string(static_cast<int>(std::lround(
                                                   100 * r.value("bootstrap", json::object()).value("confidence", 0.95)))) +
                                               "% bootstrap interval)";
  if (bars.empty()) {
    chart::Bar b;
    b.label = "no data";
    b.value = std::nan("");
    bars.push_back(b);
  }
  return chart::bar_chart(bars, o);
}

}  // namespace cada::eval
