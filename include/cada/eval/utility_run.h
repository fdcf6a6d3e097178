// Utility benchmarks inside `cada eval`, beside the safety metrics (library pieces: utility.h).
//
//   "utility": {"mmlu": ["data/external/mmlu/abstract_algebra_test.csv", ...],
//               "gsm8k": "data/external/gsm8k/test.jsonl", "limit": 100, "max_new_tokens": 512}
//
// MMLU: zero-shot, the standard prompt (mmlu_prompt) as raw text with the tokenizer's special
// tokens; each letter continuation " A".." D" is scored by its summed token log-probability, the
// largest is the model's choice. GSM8K: the question as one user turn (chat template), greedy
// decoding, extract_number on the answer (parse_response's answer) against the reference.
// The generate phase writes utility.json (one record per question) beside generations.jsonl; the
// judge phase reports each benchmark as a dataset with the metric "accuracy" (bootstrap interval),
// so `cada compare` shows it beside the safety metrics.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "cada/eval/metrics.h"
#include "cada/eval/utility.h"

namespace cada::dist {
class Comm;
}
namespace cada::model {
class TransformerImpl;
}
namespace cada::rollout {
class Generator;
}
namespace cada::text {
class Tokenizer;
class ChatTemplate;
}  // namespace cada::text

namespace cada::eval {

struct UtilityConfig {
  std::vector<std::string> mmlu;  // MMLU test CSVs, <subject>_test.csv (no header)
  std::string gsm8k;              // GSM8K test JSONL
  int64_t limit = 0;              // first N questions of each file (0 = all)
  int64_t max_new_tokens = 512;   // GSM8K completion length
  template <class V> void visit(V& v) {
    v("mmlu", mmlu, "MMLU test CSVs (<subject>_test.csv, relative to data_dir); empty = no MMLU");
    v("gsm8k", gsm8k, "GSM8K test JSONL (relative to data_dir); empty = no GSM8K");
    v("limit", limit, "first N questions of each file (0 = all)");
    v("max_new_tokens", max_new_tokens, "GSM8K: tokens generated at most (greedy)");
  }
  bool any() const { return !mmlu.empty() || !gsm8k.empty(); }
};

// "abstract_algebra_test.csv" -> "abstract algebra" (MMLU's file naming).
std::string mmlu_subject(const std::string& path);

// Per item {"subject", "answer", "pick", "correct", "logprobs": [4]}: the letter log-probs of
// the model after mmlu_prompt. Rows are (prompt + letter) sequences, batch_size per pass.
nlohmann::json score_mmlu(model::TransformerImpl& model, const text::Tokenizer& tok, const std::vector<MmluItem>& items,
                          int64_t batch_size);

// Per item {"question", "reference", "completion", "extracted", "correct"} from completions
// (one per item, in order).
nlohmann::json grade_gsm8k(const std::vector<Gsm8kItem>& items, const std::vector<std::string>& completions);

struct EvalConfig;  // eval.h

// MMLU and GSM8K of cfg.utility (paths relative to cfg.data_dir) with the loaded model:
// {"mmlu": score_mmlu rows, "gsm8k": grade_gsm8k rows}, the benchmarks not configured absent.
// Every rank takes part in the GSM8K generation and gets every result.
nlohmann::json run_utility(const EvalConfig& cfg, model::TransformerImpl& net, const text::Tokenizer* tok,
                           const text::ChatTemplate* tmpl, rollout::Generator& gen, dist::Comm& comm);

// utility.json in the folder of a generation file.
std::string utility_path(const std::string& generations);

// utility.json -> report datasets {"mmlu": ..., "gsm8k": ...} in the layout of aggregate()
// (selector "all", jailbreak "none"), metric "accuracy"; MMLU also by subject (its categories).
nlohmann::json utility_datasets(const nlohmann::json& utility, const BootstrapOptions& o);

}  // namespace cada::eval
