// XSTest's three classes in `cada eval`'s report: for every dataset read from XSTest's file
// (records with source "xstest"), each completion's answer (parse_response's answer of the text
// judges read) is classified by XSTest's string-match classifier, and xstest_table tabulates the
// class rates per prompt type and over the safe / unsafe prompts. Truncated completions (no final
// answer) are left out and counted.
//
// report.json: "xstest": {dataset: {"classifier": "string_match", "completions", "truncated",
//   "by_type", "type_order", "safe", "unsafe"}}; the safe / unsafe rates also enter the dataset's
// overall summaries as "<class>:<safe|unsafe>" (so `cada compare` shows them).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace cada::eval {

// The tables from scored generation records (each completion has "text" or "decoded" and
// "truncated"). Datasets without an XSTest record are absent.
nlohmann::json xstest_report(const std::vector<nlohmann::json>& records);

// Adds "<class>:<safe|unsafe>" summaries (mean = the rate, n = completions) to each XSTest
// dataset's overall table of every selector in report["datasets"].
void add_xstest_summaries(nlohmann::json& report);

// The markdown section (empty when the report has no XSTest tables).
std::string xstest_markdown(const nlohmann::json& report);

}  // namespace cada::eval
