// MMLU letter log-probs, GSM8K grading, and their report tables.
#include "cada/eval/utility_run.h"

#include "cada/model/logprobs.h"
#include "cada/text/reasoning.h"
#include "cada/text/tokenizer.h"
#include "cada/util/error.h"

namespace cada::eval {

using nlohmann::json;

std::string mmlu_subject(const std::string& path) {
  std::string name = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  if (const auto dot = name.rfind('.'); dot != std::string::npos) name.resize(dot);
  for (const char* suffix : {"_test", "_val", "_dev"}) {
    const std::string s = suffix;
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      name.resize(name.size() - s.size());
      break;
    }
  }
  for (auto& c : name)
    if (c == '_') c = ' ';
  return name;
}

json score_mmlu(model::TransformerImpl& model, const text::Tokenizer& tok, const std::vector<MmluItem>& items,
                int64_t batch_size) {
  const auto conts = mmlu_continuations();
  std::vector<std::vector<int32_t>> letters;
  for (const auto& c : conts) letters.push_back(tok.encode(c, /*add_special_tokens=*/false));
  std::vector<std::vector<int32_t>> prompts, completions;
  for (const auto& it : items) {
    const auto ids = tok.encode(mmlu_prompt(it), /*add_special_tokens=*/true);
    for (const auto& l : letters) {
      prompts.push_back(ids);
      completions.push_back(l);
    }
  }
  const auto lps = model::completion_logprobs(model, prompts, completions, batch_size);
  json out = json::array();
  for (size_t i = 0; i < items.size(); ++i) {
    std::vector<double> v;
    for (size_t c = 0; c < 4; ++c) {
      double s = 0;
      for (float x : lps[i * 4 + c].logprobs) s += x;
      v.push_back(s);
    }
    const int pick = mmlu_pick(v);
    out.push_back({{"subject", items[i].subject}, {"answer", items[i].answer}, {"pick", pick},
                   {"correct", pick == items[i].answer}, {"logprobs", v}});
  }
  return out;
}

json grade_gsm8k(const std::vector<Gsm8kItem>& items, const std::vector<std::string>& completions) {
  CADA_CHECK(items.size() == completions.size(), "grade_gsm8k: ", completions.size(), " completions for ",
             items.size(), " questions");
  json out = json::array();
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string answer = text::parse_response(completions[i]).answer;
    const auto got = extract_number(answer);
    out.push_back({{"question", items[i].question}, {"reference", items[i].answer}, {"completion", completions[i]},
                   {"extracted", got ? json(*got) : json(nullptr)}, {"correct", got && *got == items[i].answer}});
  }
  return out;
}

namespace {

// One benchmark as a report dataset: accuracy overall and per category.
json accuracy_dataset(const json& rows, const char* category_key, const std::string& name, const BootstrapOptions& o) {
  std::vector<Value> all;
  std::map<std::string, std::vector<Value>> by;
  std::vector<std::string> cats;
  for (const auto& r : rows) {
    const Value v = r.at("correct").get<bool>() ? 1.0 : 0.0;
    all.push_back(v);
    const std::string c = category_key ? r.value(category_key, std::string()) : std::string();
    if (!by.count(c)) cats.push_back(c);
    by[c].push_back(v);
  }
  const json overall = {{"accuracy", summarize(all, o, stream_id(name + "|accuracy")).to_json()}};
  json by_cat = json::object();
  for (const auto& c : cats)
    by_cat[c] = {{"accuracy", summarize(by[c], o, stream_id(name + "|" + c + "|accuracy")).to_json()}};
  json sel = {{"overall", overall}, {"by_jailbreak", {{"none", overall}}}, {"by_category", by_cat},
              {"worst_case", json::object()}};
  return {{"prompts", rows.size()}, {"units", rows.size()}, {"jailbreaks", {"none"}}, {"categories", cats},
          {"selectors", {{"all", sel}}}};
}

}  // namespace

json utility_datasets(const json& utility, const BootstrapOptions& o) {
  json out = json::object();
  if (utility.contains("mmlu") && !utility["mmlu"].empty()) out["mmlu"] = accuracy_dataset(utility["mmlu"], "subject", "mmlu", o);
  if (utility.contains("gsm8k") && !utility["gsm8k"].empty())
    out["gsm8k"] = accuracy_dataset(utility["gsm8k"], nullptr, "gsm8k", o);
  return out;
}

}  // namespace cada::eval
