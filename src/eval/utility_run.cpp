// MMLU letter log-probs, GSM8K grading, and their report tables.
#include "cada/eval/utility_run.h"

#include "cada/dist/comm.h"
#include "cada/eval/eval.h"
#include "cada/io/files.h"
#include "cada/model/logprobs.h"
#include "cada/rollout/generator.h"
#include "cada/rollout/sharded.h"
#include "cada/text/records.h"
#include "cada/util/log.h"
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

// MMLU and GSM8K (utility_run.h) with the loaded model: every rank takes part in the
// generation, and each gets every result.
json run_utility(const EvalConfig& cfg, model::TransformerImpl& net, const text::Tokenizer* tok,
                 const text::ChatTemplate* tmpl, rollout::Generator& gen, dist::Comm& comm) {
  const auto& u = cfg.utility;
  auto path = [&](const std::string& p) {
    return !cfg.data_dir.empty() && !p.empty() && p[0] != '/' ? io::join_path(cfg.data_dir, p) : p;
  };
  auto cut = [&](auto& v) {
    if (u.limit > 0 && v.size() > static_cast<size_t>(u.limit)) v.resize(static_cast<size_t>(u.limit));
  };
  json out = json::object();
  if (!u.mmlu.empty()) {
    std::vector<MmluItem> items;
    for (const auto& f : u.mmlu) {
      auto part = read_mmlu_csv(path(f), mmlu_subject(f));
      cut(part);
      items.insert(items.end(), part.begin(), part.end());
    }
    out["mmlu"] = score_mmlu(net, *tok, items, cfg.batch_size);
    CADA_INFO("utility: MMLU, ", items.size(), " questions scored");
  }
  if (!u.gsm8k.empty()) {
    auto items = read_gsm8k_jsonl(path(u.gsm8k));
    cut(items);
    rollout::SamplingParams sp = cfg.sampling.params(u.max_new_tokens);
    sp.temperature = 0.0f;  // greedy, one answer per question
    std::vector<rollout::Request> reqs;
    for (size_t i = 0; i < items.size(); ++i) {
      json rec;
      if (cfg.raw) rec["prompt"] = items[i].question;
      else rec["messages"] = json::array({{{"role", "user"}, {"content", items[i].question}}});
      rollout::Request q;
      q.prompt_ids = text::prompt_ids(rec, tok, tmpl, cfg.raw, u.gsm8k + ": question " + std::to_string(i + 1));
      q.params = sp;
      q.seed = i;
      reqs.push_back(std::move(q));
    }
    const auto res = rollout::generate_sharded(gen, comm, reqs);
    std::vector<std::string> texts;
    for (const auto& r : res) texts.push_back(r.at(0).text);
    out["gsm8k"] = grade_gsm8k(items, texts);
    CADA_INFO("utility: GSM8K, ", items.size(), " questions answered");
  }
  return out;
}

// utility.json in the folder of the generation file (the working directory when it has none).
std::string utility_path(const std::string& generations) {
  const auto slash = generations.rfind('/');
  return slash == std::string::npos ? "utility.json" : generations.substr(0, slash) + "/utility.json";
}

}  // namespace cada::eval
