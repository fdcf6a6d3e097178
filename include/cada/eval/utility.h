// Utility benchmarks beside the safety metrics: MMLU (multiple choice, scored by the
// log-probability of each answer letter) and GSM8K (exact match on the extracted number).
//
//   auto items = cada::eval::read_mmlu_csv("abstract_algebra_test.csv", "abstract algebra");
//   std::string p = cada::eval::mmlu_prompt(items[0]);   // ... "\nAnswer:"
//   // score " A".." D" as continuations of p, then mmlu_pick(logprobs) == items[0].answer
//
//   auto g = cada::eval::read_gsm8k_jsonl("test.jsonl");
//   bool ok = cada::eval::gsm8k_correct(completion, g[0].answer);
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace cada::eval {

struct MmluItem {
  std::string subject;   // words, e.g. "abstract algebra"
  std::string question;
  std::string choices[4];
  int answer = 0;        // 0..3 for A..D
};

// The original MMLU test CSVs: no header, six fields per row (question, A, B, C, D, answer
// letter). Throws cada::Error naming "path:line" for a wrong field count or an answer that is
// not one of A, B, C, D.
std::vector<MmluItem> read_mmlu_csv(const std::string& path, const std::string& subject);

// "The following are multiple choice questions (with answers) about <subject>.\n\n" + question
// + "\nA. a\nB. b\nC. c\nD. d\nAnswer:" (zero-shot, as in the MMLU evaluation code).
std::string mmlu_prompt(const MmluItem& item);
// The continuations scored after the prompt: " A", " B", " C", " D".
std::vector<std::string> mmlu_continuations();
// Index of the largest log-probability (the first on ties). Throws unless there are 4.
int mmlu_pick(const std::vector<double>& logprobs);

struct Gsm8kItem {
  std::string question;
  std::string answer;  // the normalised number after "####"
};

// GSM8K JSONL: {"question", "answer"} with the answer ending in "#### <number>". Throws
// cada::Error naming "path:line" for a missing field or a missing / non-numeric "####" part.
std::vector<Gsm8kItem> read_gsm8k_jsonl(const std::string& path);

// The number a completion answers, normalised (commas removed, "+" and trailing zeros after a
// decimal point dropped, "-0" -> "0"), found in this order:
//   1. after the last "####" marker: the first number there;
//   2. inside the last \boxed{...}: the first number there;
//   3. the last number anywhere in the text.
// Numbers may be negative and have thousands commas ("-1,234.50" -> "-1234.5"); trailing text
// and units ("$18 dollars", "5 cm.") are ignored. nullopt when there is no number.
std::optional<std::string> extract_number(const std::string& text);
// Normalises one number string as extract_number does; nullopt when it is not a number.
std::optional<std::string> normalize_number(const std::string& s);
// extract_number(completion) equals the normalised reference.
bool gsm8k_correct(const std::string& completion, const std::string& reference);

}  // namespace cada::eval
