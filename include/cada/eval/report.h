// Rendering of an eval report (the JSON that EvalRunner::judge writes) as markdown and as a
// PNG bar chart.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "cada/util/chart.h"

namespace cada::eval {

// One cell: "0.250 [0.100, 0.400]", with " (null: U units, S samples)" when there are nulls and
// "-" when there is no value.
std::string format_summary(const nlohmann::json& summary);

// The whole report as markdown: header, judges table, and per dataset one table per selector
// with a row per jailbreak, the overall row and the worst case, then (first selector) a table
// per category.
std::string report_markdown(const nlohmann::json& report);

// The metric drawn by default: the first of strongreject, asr:* (in order), refusal_rate, the
// other metrics, that has a value somewhere (an all-null judge would draw an empty chart).
std::string default_plot_metric(const nlohmann::json& report);

// Horizontal bars of `metric` (mean and interval) per dataset / selector / jailbreak, plus each
// dataset's worst case for harm metrics.
chart::Figure report_chart(const nlohmann::json& report, const std::string& metric);

}  // namespace cada::eval
