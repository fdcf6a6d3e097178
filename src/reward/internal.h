// Shared by the built-in reward types: their prepare functions and option-parsing helpers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cada/reward/reward.h"
#include "cada/util/config.h"

namespace cada::reward {
class JudgeBackend;
}

namespace cada::reward::detail {

Prepared prepare_rm(const PrepareInput& in, std::vector<std::string>& problems);
Prepared prepare_refusal(const PrepareInput& in, std::vector<std::string>& problems);
Prepared prepare_format(const PrepareInput& in, std::vector<std::string>& problems);
Prepared prepare_length(const PrepareInput& in, std::vector<std::string>& problems);
Prepared prepare_judge(const PrepareInput& in, std::vector<std::string>& problems);
Prepared prepare_composite(const PrepareInput& in, std::vector<std::string>& problems);

// Fills an options struct (visit() table) from `j`, appending problems (wrong types, invalid
// choices, unknown keys, values outside their declared config::Range). A reward entry
// (section "") knows "name" and "type" too; a nested object names its keys "section.key".
template <class T>
T parse_options(const nlohmann::json& j, std::vector<std::string>& problems, const std::string& section = "") {
  T out{};
  if (!j.is_object()) {
    problems.push_back(section.empty() ? "the entry must be a JSON object"
                                       : "'" + section + "' must be a JSON object, got " + j.dump());
    return out;
  }
  std::vector<std::string> known;
  if (section.empty()) known = {"name", "type"};
  config::detail::Reader r{&j, section.empty() ? "" : section + ".", &problems, known};
  out.visit(r);
  r.check_unknown();
  for (auto& p : config::range_problems(out, section)) problems.push_back(std::move(p));
  return out;
}

// Checks a model folder before anything is loaded: the folder and config.json exist and parse,
// the weights open (safetensors headers, index), and the architecture is the expected kind
// (`classifier` true: *ForSequenceClassification; false: *ForCausalLM). Returns false after
// appending problems.
bool check_model_folder(const std::string& dir, bool classifier, std::vector<std::string>& problems,
                        int64_t* num_labels = nullptr);

// The local judge backend (judge_local.cpp): `chat` null means raw text with BOS; `system`
// (needs `chat`) becomes a system turn before the user turn.
std::shared_ptr<JudgeBackend> make_model_judge_backend(model::Transformer net,
                                                       std::shared_ptr<const text::Tokenizer> tok,
                                                       std::shared_ptr<const text::ChatTemplate> chat,
                                                       std::string system, int64_t batch_size,
                                                       int64_t max_new_tokens);

// How errors name a sample: "sample 3" (0-based index in the batch).
std::string sample_name(size_t i);

// Throws when a sample that the reward must read has no prompt.
void require_prompts(const Reward& r, const std::vector<Sample>& samples);

}  // namespace cada::reward::detail
