// Readers for public safety and instruction data sets in their published files, all turned
// into the project's prompt records (benchmarks.h) with harmful / benign labels where the
// source has them.
//
// | format         | file (official source)                        | fields / columns                                  |
// |----------------|-----------------------------------------------|---------------------------------------------------|
// | pku_saferlhf   | PKU-SafeRLHF data/*/train.jsonl, test.jsonl   | prompt, response_0, response_1, is_response_0_safe, is_response_1_safe, response_{0,1}_harm_category, ... |
// | beavertails    | BeaverTails *.jsonl                           | prompt, response, category (14 booleans), is_safe |
// | wildjailbreak  | WildJailbreak train.tsv / eval.tsv            | vanilla, adversarial, completion, data_type (eval.tsv: adversarial, label, data_type) |
// | alpaca         | stanford_alpaca alpaca_data.json (a JSON list) | instruction, input, output                       |
// | dolly          | databricks-dolly-15k.jsonl                    | instruction, context, response, category          |
//
// Labels:
// - PKU-SafeRLHF and BeaverTails repeat a prompt once per (prompt, response) pair. Rows with the
//   same prompt text become one record (id: the line of its first row; meta.rows: how many rows);
//   it is "harmful" when any of its responses is marked unsafe (the prompt drew unsafe content),
//   else "benign". The category is the first harm category marked true on an unsafe response
//   ("" when none); meta.categories lists every such category.
// - WildJailbreak: data_type vanilla_harmful / adversarial_harmful -> harmful, *_benign ->
//   benign, the category is the data_type. An adversarial row asks the adversarial text (the
//   vanilla request it hides stays in meta.vanilla), a vanilla row the vanilla text.
// - Alpaca and Dolly rows are benign requests: the instruction, then a blank line and the
//   input / context when there is one. The reference answer stays in meta (output / response).
//
// Every malformed row throws cada::Error with one sentence naming "file:line" and what was
// expected (a missing field, a wrong type, an unknown data_type).
#pragma once

#include <string>
#include <vector>

#include "cada/eval/benchmarks.h"

namespace cada::eval {

std::vector<PromptRecord> read_pku_saferlhf(const std::string& path);
std::vector<PromptRecord> read_beavertails(const std::string& path);
std::vector<PromptRecord> read_wildjailbreak(const std::string& path);
std::vector<PromptRecord> read_alpaca(const std::string& path);
std::vector<PromptRecord> read_dolly(const std::string& path);

// The public formats above by name (pku_saferlhf, beavertails, wildjailbreak, alpaca, dolly).
const std::vector<std::string>& public_formats();
// Reads `path` as public format `format`; throws for a name not in public_formats().
std::vector<PromptRecord> read_public(const std::string& path, const std::string& format);
// The public format of a file from its extension and first record's fields, or "" when it is
// none of them (a .tsv is WildJailbreak; JSON(L) by its keys).
std::string detect_public_format(const std::string& path);

// One jailbreak template of the in-the-wild jailbreak prompts CSV (verazuo/jailbreak_llms:
// platform, source, prompt, jailbreak, created_at, date, community, ...).
struct JailbreakTemplate {
  std::string text;   // the prompt, with a [INSERT PROMPT HERE] or {forbidden_prompt} slot
  std::string where;  // "file:line"
};

// The rows of the CSV's `prompt` column that have a slot, in file order. Rows whose `jailbreak`
// column (when present) is not "True" are skipped, as are prompts without a slot: those are
// whole conversations, not templates. Throws naming file:line for a row with an empty prompt,
// and naming the file when no row is a template.
std::vector<JailbreakTemplate> read_jailbreak_templates(const std::string& path);

}  // namespace cada::eval
