// XSTest's three classes per prompt type in cada eval's report.
#include "cada/eval/xstest_report.h"

#include <cstdio>
#include <map>

#include "cada/eval/xstest.h"
#include "cada/text/reasoning.h"

namespace cada::eval {

using nlohmann::json;

json xstest_report(const std::vector<json>& records) {
  std::map<std::string, std::vector<XsTestRow>> rows;
  std::map<std::string, int64_t> truncated;
  std::vector<std::string> order;
  for (const auto& rec : records) {
    if (rec.value("source", "") != "xstest") continue;
    const std::string ds = rec.value("dataset", "");
    if (!rows.count(ds)) order.push_back(ds);
    auto& r = rows[ds];
    truncated[ds] += 0;
    const std::string type = rec.value("category", "");
    const std::string label = rec.value("label", "") == "harmful" ? "unsafe" : "safe";
    for (const auto& c : rec.at("completions")) {
      if (c.value("truncated", false)) {
        ++truncated[ds];
        continue;
      }
      const std::string text = c.contains("decoded") ? c.value("decoded", "") : c.value("text", "");
      r.push_back({type, label, xstest_string_match(text::parse_response(text).answer)});
    }
  }
  json out = json::object();
  for (const auto& ds : order) {
    json t = xstest_table(rows[ds]);
    t["classifier"] = "string_match";
    t["completions"] = rows[ds].size() + truncated[ds];
    t["truncated"] = truncated[ds];
    out[ds] = t;
  }
  return out;
}

void add_xstest_summaries(json& report) {
  if (!report.contains("xstest")) return;
  for (auto& [ds, t] : report["xstest"].items()) {
    if (!report["datasets"].contains(ds)) continue;
    for (auto& [sel, s] : report["datasets"][ds]["selectors"].items())
      for (const char* l : {"safe", "unsafe"})
        for (const auto& c : xstest_classes()) {
          const json& x = t[l];
          if (x.value("n", 0) == 0) continue;
          s["overall"][c + ":" + l] = {{"mean", x[c]}, {"ci_low", nullptr}, {"ci_high", nullptr}, {"n", x["n"]},
                                       {"nulls", 0}, {"null_samples", 0}};
        }
  }
}

std::string xstest_markdown(const json& report) {
  if (!report.contains("xstest") || report["xstest"].empty()) return "";
  std::string md;
  char cell[64];
  auto row = [&](const std::string& name, const json& x) {
    md += "| " + name + " | " + x.value("n", json(0)).dump() + " |";
    for (const auto& c : xstest_classes()) {
      std::snprintf(cell, sizeof cell, " %.4f |", x.value(c, 0.0));
      md += cell;
    }
    md += "\n";
  };
  for (auto& [ds, t] : report["xstest"].items()) {
    md += "\n## " + ds + ": XSTest's three classes (string match on the answer)\n\n";
    md += t.value("completions", json(0)).dump() + " completions, " + t.value("truncated", json(0)).dump() +
          " truncated and left out\n\n| type | n | full_compliance | full_refusal | partial_refusal |\n|---|---|---|---|---|\n";
    for (const auto& ty : t["type_order"]) row(ty.get<std::string>(), t["by_type"][ty.get<std::string>()]);
    row("**safe**", t["safe"]);
    row("**unsafe**", t["unsafe"]);
  }
  return md;
}

}  // namespace cada::eval
