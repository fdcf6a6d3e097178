// Side-by-side comparison of eval reports (the report.json files `cada eval` writes): one
// table and one grouped bar chart over runs such as base / sft / grpo, or explicit codes vs
// case-augmented codes. `cada compare`.
//
//   auto cmp = cada::eval::compare_reports({{"base", "runs/q/eval-base/report.json"},
//                                           {"grpo", "runs/q/eval-grpo/report.json"}}, {});
//   std::cout << cada::eval::compare_markdown(cmp);
//   cada::io::write_figure("compare", cada::eval::compare_chart(cmp));  // compare.png + .svg
//
// A row is (dataset, metric); its cells are the runs' summaries (mean, bootstrap interval, n)
// of that metric for one selector and one jailbreak (or all jailbreaks together). Rows follow
// the order of CompareOptions::datasets / metrics, else name order; a run without the row gets
// an empty cell.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "cada/util/chart.h"

namespace cada::eval {

struct CompareRun {
  std::string name;    // column name (unique)
  std::string report;  // path of a report.json
};

struct CompareOptions {
  std::string selector = "all";       // Best-of-N selector ("all" = every sample)
  std::string jailbreak;              // "" = all jailbreaks together (the report's overall)
  std::vector<std::string> metrics;   // metrics to keep, in this order (empty = every metric, by name)
  std::vector<std::string> datasets;  // datasets to keep, in this order (empty = every dataset, by name)
};

// Reads the reports and builds
//   {"runs": [{name, report, model}], "selector", "jailbreak",
//    "rows": [{"dataset", "metric", "cells": {run: summary | null}}]}.
// Throws naming the file for an unreadable report, a missing selector or jailbreak, or a
// repeated run name.
nlohmann::json compare_reports(const std::vector<CompareRun>& runs, const CompareOptions& opts);

// Markdown table: a row per (dataset, metric), a column per run ("mean [lo, hi]").
std::string compare_markdown(const nlohmann::json& cmp);

// Horizontal bars, grouped by (dataset, metric), one colour per run, with the intervals.
chart::Figure compare_chart(const nlohmann::json& cmp, const std::string& title = "");

}  // namespace cada::eval
