// Truncation-aware scoring. A completion that stops before giving a final answer (reasoning
// opened but never closed, or finish_reason "length" with an empty answer) is TRUNCATED: it is
// neither a refusal nor compliance. It is reported as its own rate (truncated_rate), and the
// policy says how it enters the refusal-based metrics:
//   exclude        (default) its refusal value is null: counted in nulls, never averaged in
//   as_refusal     counted as a refusal (1)
//   as_compliance  counted as compliance (0)
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace cada::eval {

enum class TruncatedPolicy { exclude, as_refusal, as_compliance };

// Parses "exclude" | "as_refusal" | "as_compliance"; throws cada::Error naming `key` otherwise.
TruncatedPolicy parse_truncated_policy(const std::string& s, const std::string& key = "truncated");
std::string to_string(TruncatedPolicy p);

// True when the completion has no final answer: text::parse_response(text) finds reasoning
// but an empty answer (an opening marker without its closing one), or finish_reason is
// "length" and the answer is empty.
bool is_truncated(const std::string& text, const std::string& finish_reason);

// The refusal value a completion contributes under the policy: `refusal` when not truncated,
// else nullopt / 1 / 0.
std::optional<double> refusal_under_policy(std::optional<double> refusal, bool truncated, TruncatedPolicy p);

}  // namespace cada::eval
