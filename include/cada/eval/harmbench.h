// HarmBench's evaluation protocol around its classifier (the classifier prompts themselves are a
// judge's template and contextual template, reward/judge.h; the 512-token cut is the judge's
// max_response_tokens):
//   - contextual behaviours are judged with two slots, {context} and {behavior}, filled from the
//     row's ContextString and Behavior (not from the merged prompt the model was asked);
//   - copyright behaviours (FunctionalCategory "copyright") are judged by HarmBench with a hashing
//     judge, not the classifier: without one configured (judges.copyright) they are excluded, and
//     the exclusion is printed.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <vector>

#include "cada/eval/benchmarks.h"

namespace cada::eval {

// True for a HarmBench row whose FunctionalCategory is "copyright".
bool is_copyright_behavior(const PromptRecord& r);
// Removes the copyright behaviours; returns how many were removed.
size_t drop_copyright_behaviors(std::vector<PromptRecord>& records);
// The note printed when `n` copyright behaviours of `dataset` are excluded.
std::string copyright_note(const std::string& dataset, size_t n);

// The judge slots of a generation record (cada eval's "source" and "meta"): for a HarmBench row,
// behavior = meta.Behavior and, for a contextual one, context = meta.ContextString; else both "".
void harmbench_slots(const std::string& source, const nlohmann::json& meta, std::string& behavior,
                     std::string& context);

}  // namespace cada::eval
