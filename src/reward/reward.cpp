// The reward registry, RewardSet (validate everything, then build, then score in dependency
// order), shared helpers, and the composite type.
#include "cada/reward/reward.h"
#include "cada/model/peft_io.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <mutex>
#include <set>

#include "cada/io/checkpoint.h"
#include "cada/io/files.h"
#include "cada/model/config.h"
#include "cada/model/loader.h"
#include "cada/model/transformer.h"
#include "cada/text/reasoning.h"
#include "cada/text/tokenizer.h"
#include "cada/util/config.h"
#include "cada/util/log.h"
#include "internal.h"
#include "cada/util/strings.h"

namespace cada::reward {

using nlohmann::json;

// ------------------------------------------------------------------ Sample / Reward

Sample Sample::from_prompt(const std::string& prompt, const std::string& response, const std::string& label,
                           const std::string& category) {
  Sample s;
  s.prompt.push_back({"user", prompt});
  s.response = response;
  s.label = label;
  s.category = category;
  return s;
}

std::string Sample::prompt_text() const {
  for (auto it = prompt.rbegin(); it != prompt.rend(); ++it)
    if (it->role == "user") return it->content;
  return "";
}

Values Reward::combine(const std::vector<Sample>&, const std::map<std::string, Values>&) {
  CADA_FAIL("reward '", name(), "' (", type(), ") does not combine other rewards");
}

// ------------------------------------------------------------------ helpers

std::string select_text(const std::string& response, const std::string& on, const std::string& style) {
  if (on == "response") return response;
  CADA_CHECK(on == "answer", "'on' must be 'answer' or 'response', got '", on, "'");
  return text::parse_response(response, style).answer;
}

double overlong_penalty(int64_t len, int64_t max_len, int64_t cache) {
  CADA_CHECK(cache > 0 && cache <= max_len, "overlong penalty: need 0 < cache <= max_len, got cache ", cache,
             " and max_len ", max_len);
  const int64_t soft = max_len - cache;
  if (len <= soft) return 0.0;
  if (len <= max_len) return static_cast<double>(soft - len) / static_cast<double>(cache);
  return -1.0;
}

namespace detail {

std::string sample_name(size_t i) { return "sample " + std::to_string(i); }

void require_prompts(const Reward& r, const std::vector<Sample>& samples) {
  for (size_t i = 0; i < samples.size(); ++i)
    CADA_CHECK(!samples[i].prompt.empty(), "reward '", r.name(), "' (", r.type(), ") reads the prompt, but ",
               sample_name(i), " has none (give records a 'prompt' or 'messages' field)");
}

bool check_model_folder(const std::string& dir, bool classifier, std::vector<std::string>& problems,
                        int64_t* num_labels) {
  if (dir.empty()) {
    problems.push_back("'model' is required (a Hugging Face model folder)");
    return false;
  }
  if (!io::is_directory(dir)) {
    problems.push_back("model folder '" + dir + "' does not exist");
    return false;
  }
  model::ModelConfig cfg;
  try {
    cfg = model::ModelConfig::load(dir);
  } catch (const Error& e) {
    problems.push_back(e.what());
    return false;
  }
  if (classifier && !cfg.is_sequence_classifier()) {
    problems.push_back("'" + dir + "' is a " + cfg.architecture +
                       ", not a *ForSequenceClassification reward model (config.json needs a "
                       "...ForSequenceClassification architecture and a score head)");
    return false;
  }
  if (!classifier && cfg.is_sequence_classifier()) {
    problems.push_back("'" + dir + "' is a " + cfg.architecture + " (a classifier); a judge needs a *ForCausalLM");
    return false;
  }
  if (num_labels) *num_labels = cfg.num_labels;
  // A LoRA adapter folder: its weights are checked when it loads on its base (model/peft_io.h).
  if (model::is_adapter_folder(dir)) return true;
  try {
    auto reader = io::CheckpointReader::open(dir);
    auto expect = [&](const std::string& name, std::vector<int64_t> shape) {
      if (!reader->contains(name)) {
        problems.push_back(dir + ": the weights have no tensor '" + name + "'");
        return;
      }
      if (reader->get(name).shape != shape) {
        std::string got, want;
        for (auto d : reader->get(name).shape) got += (got.empty() ? "" : ", ") + std::to_string(d);
        for (auto d : shape) want += (want.empty() ? "" : ", ") + std::to_string(d);
        problems.push_back(dir + ": tensor '" + name + "' has shape [" + got + "] but config.json implies [" + want +
                           "]");
      }
    };
    const size_t before = problems.size();
    expect("model.embed_tokens.weight", {cfg.vocab_size, cfg.hidden_size});
    if (classifier) expect("score.weight", {cfg.num_labels, cfg.hidden_size});
    else if (!cfg.tie_word_embeddings) expect("lm_head.weight", {cfg.vocab_size, cfg.hidden_size});
    return problems.size() == before;
  } catch (const Error& e) {
    problems.push_back(e.what());
    return false;
  }
}

}  // namespace detail

// ------------------------------------------------------------------ BuildContext

struct BuildContext::Cache {
  std::map<std::string, model::Transformer> models;
  std::map<std::string, std::shared_ptr<const text::Tokenizer>> tokenizers;
  std::map<std::string, std::shared_ptr<Reward>> rewards;
};

BuildContext::BuildContext(RuntimeOptions rt) : rt_(std::move(rt)), cache_(std::make_unique<Cache>()) {}
BuildContext::~BuildContext() = default;

model::Transformer BuildContext::model(const std::string& dir) {
  auto it = cache_->models.find(dir);
  if (it != cache_->models.end()) return it->second;
  CADA_INFO("loading ", dir, " (", rt_.device, ", ", rt_.dtype, ")");
  auto net = model::load_model(dir, {rt_.device, rt_.dtype});
  net->eval();
  cache_->models.emplace(dir, net);
  return net;
}

std::shared_ptr<const text::Tokenizer> BuildContext::tokenizer(const std::string& dir) {
  auto it = cache_->tokenizers.find(dir);
  if (it != cache_->tokenizers.end()) return it->second;
  std::shared_ptr<const text::Tokenizer> tok(text::load_tokenizer(dir).release());
  cache_->tokenizers.emplace(dir, tok);
  return tok;
}

std::shared_ptr<Reward> BuildContext::reward(const std::string& name) const {
  auto it = cache_->rewards.find(name);
  CADA_CHECK(it != cache_->rewards.end(), "reward '", name, "' is not built yet");
  return it->second;
}

// ------------------------------------------------------------------ registry

namespace {

std::map<std::string, PrepareFn>& registry() {
  static std::map<std::string, PrepareFn> r = {
      {"rm", detail::prepare_rm},         {"refusal", detail::prepare_refusal},
      {"format", detail::prepare_format}, {"length", detail::prepare_length},
      {"judge", detail::prepare_judge},   {"composite", detail::prepare_composite},
  };
  return r;
}
std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

void register_reward_type(const std::string& type, PrepareFn prepare) {
  CADA_CHECK(!type.empty() && prepare, "register_reward_type: need a type name and a prepare function");
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry()[type] = std::move(prepare);
}

std::vector<std::string> reward_types() {
  std::lock_guard<std::mutex> lock(registry_mutex());
  std::vector<std::string> out;
  for (const auto& [k, v] : registry()) out.push_back(k);
  return out;
}

// ------------------------------------------------------------------ RewardSet

RewardSet RewardSet::load(const std::string& path, const RuntimeOptions& rt) {
  return from_json(config::load_file(path), path, rt);
}

RewardSet RewardSet::from_json(const json& config, const std::string& source, const RuntimeOptions& rt) {
  CADA_CHECK(config.is_object(), source, ": the reward config must be a JSON object with a 'rewards' list");
  std::vector<std::string> problems;
  for (auto it = config.begin(); it != config.end(); ++it)
    if (it.key() != "rewards") problems.push_back("unknown key '" + it.key() + "' (valid keys here: rewards)");
  CADA_CHECK(config.contains("rewards") && config["rewards"].is_array() && !config["rewards"].empty(), source,
             ": expected a non-empty 'rewards' list of {\"name\": ..., \"type\": ..., ...} entries");
  CADA_CHECK(rt.batch_size > 0, source, ": the batch size must be positive, got ", rt.batch_size);
  const json& list = config["rewards"];

  // Pass 1: names and types.
  std::map<std::string, std::string> declared;
  std::vector<std::string> names(list.size()), types(list.size());
  const auto types_known = reward_types();
  for (size_t i = 0; i < list.size(); ++i) {
    const json& e = list[i];
    const std::string where = "rewards[" + std::to_string(i) + "]";
    if (!e.is_object()) {
      problems.push_back(where + " must be an object with 'name' and 'type'");
      continue;
    }
    if (!e.contains("name") || !e["name"].is_string() || !util::valid_name(e["name"].get<std::string>())) {
      problems.push_back(where + ": 'name' must be a non-empty string of letters, digits, '_', '-' or '.'");
      continue;
    }
    names[i] = e["name"].get<std::string>();
    if (declared.count(names[i])) {
      problems.push_back(where + ": the name '" + names[i] + "' is used twice");
      names[i].clear();
      continue;
    }
    if (!e.contains("type") || !e["type"].is_string()) {
      problems.push_back("reward '" + names[i] + "': 'type' is required (one of: " + util::join(types_known) + ")");
      declared[names[i]] = "";
      continue;
    }
    types[i] = e["type"].get<std::string>();
    declared[names[i]] = types[i];
    if (std::find(types_known.begin(), types_known.end(), types[i]) == types_known.end())
      problems.push_back("reward '" + names[i] + "': unknown type '" + types[i] + "' (valid types: " +
                         util::join(types_known) + ")");
  }

  // Pass 2: each type validates its options (no weights loaded).
  std::vector<Prepared> prepared(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    if (names[i].empty() || types[i].empty()) continue;
    PrepareFn fn;
    {
      std::lock_guard<std::mutex> lock(registry_mutex());
      auto it = registry().find(types[i]);
      if (it == registry().end()) continue;
      fn = it->second;
    }
    PrepareInput in{names[i], list[i], declared, rt};
    in.options.erase("name");
    in.options.erase("type");
    std::vector<std::string> mine;
    try {
      prepared[i] = fn(in, mine);
    } catch (const std::exception& e) {  // cada::Error, or a JSON type error in the options
      mine.push_back(e.what());
    }
    for (const auto& p : mine) problems.push_back("reward '" + names[i] + "' (" + types[i] + "): " + p);
    if (mine.empty() && !prepared[i].build)
      problems.push_back("reward '" + names[i] + "' (" + types[i] + "): the type returned no builder");
  }

  // Dependencies: known names, no cycles; order = dependencies first, else config order.
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < names.size(); ++i)
    if (!names[i].empty()) index[names[i]] = i;
  std::vector<size_t> order;
  if (problems.empty()) {
    std::vector<int> state(list.size(), 0);  // 0 new, 1 visiting, 2 done
    std::function<bool(size_t, std::vector<std::string>&)> visit = [&](size_t i, std::vector<std::string>& path) {
      if (state[i] == 2) return true;
      path.push_back(names[i]);
      if (state[i] == 1) {
        problems.push_back("rewards form a cycle: " + [&] {
          std::string s;
          for (size_t k = 0; k < path.size(); ++k) s += (k ? " -> " : "") + path[k];
          return s;
        }());
        return false;
      }
      state[i] = 1;
      for (const auto& d : prepared[i].depends_on) {
        auto it = index.find(d);
        if (it == index.end()) {
          problems.push_back("reward '" + names[i] + "' uses '" + d + "', which the config does not declare");
          return false;
        }
        if (!visit(it->second, path)) return false;
      }
      path.pop_back();
      state[i] = 2;
      order.push_back(i);
      return true;
    };
    for (size_t i = 0; i < list.size() && problems.empty(); ++i) {
      std::vector<std::string> path;
      visit(i, path);
    }
  }

  if (!problems.empty()) {
    std::string msg = source + ": " + std::to_string(problems.size()) + " problem(s) in the reward config:";
    for (const auto& p : problems) msg += "\n  - " + p;
    throw Error(msg);
  }

  // Build: models are loaded here, after the whole config was checked.
  BuildContext ctx(rt);
  std::vector<std::shared_ptr<Reward>> built(list.size());
  for (size_t i : order) {
    try {
      built[i] = prepared[i].build(ctx);
    } catch (const Error& e) {
      CADA_FAIL(source, ": reward '", names[i], "' (", types[i], "): ", e.what());
    }
    CADA_CHECK(built[i] != nullptr, source, ": reward '", names[i], "' was not built");
    ctx.cache_->rewards[names[i]] = built[i];
  }
  RewardSet set;
  set.rewards_ = built;
  set.order_ = order;
  return set;
}

std::shared_ptr<Reward> RewardSet::get(const std::string& name) const {
  std::vector<std::string> names;
  for (const auto& r : rewards_) {
    if (r->name() == name) return r;
    names.push_back(r->name());
  }
  CADA_FAIL("no reward named '", name, "' (configured: ", util::join(names), ")");
}

std::vector<std::pair<std::string, Values>> RewardSet::score(const std::vector<Sample>& samples) {
  std::map<std::string, Values> done;
  for (size_t i : order_) {
    auto& r = rewards_[i];
    Values v = r->dependencies().empty() ? r->score(samples) : r->combine(samples, done);
    CADA_CHECK(v.size() == samples.size(), "reward '", r->name(), "' returned ", v.size(), " values for ",
               samples.size(), " samples");
    done[r->name()] = std::move(v);
  }
  std::vector<std::pair<std::string, Values>> out;
  for (const auto& r : rewards_) out.emplace_back(r->name(), std::move(done[r->name()]));
  return out;
}

// ------------------------------------------------------------------ composite

namespace {

struct TermOptions {
  std::string reward;
  double weight = 1.0;
  std::string when = "any";
  template <class V>
  void visit(V& v) {
    v("reward", reward, "name of another reward in the config");
    v("weight", weight, "multiplies the reward's value");
    v("when", when, "prompt label the term applies to: any | harmful | benign | unlabeled",
      {"any", "harmful", "benign", "unlabeled"});
  }
};

struct CompositeOptions {
  json terms = json::array();
  template <class V>
  void visit(V& v) {
    v("terms", terms, "list of {reward, weight, when}");
  }
};

bool term_applies(const std::string& when, const std::string& label) {
  if (when == "any") return true;
  if (when == "unlabeled") return label.empty();
  return label == when;
}

class CompositeReward : public Reward {
 public:
  CompositeReward(std::string name, std::vector<TermOptions> terms, std::vector<std::shared_ptr<Reward>> parts)
      : Reward(std::move(name), "composite"), terms_(std::move(terms)), parts_(std::move(parts)) {}

  std::vector<std::string> dependencies() const override {
    std::vector<std::string> d;
    for (const auto& t : terms_)
      if (std::find(d.begin(), d.end(), t.reward) == d.end()) d.push_back(t.reward);
    return d;
  }
  bool needs_prompt() const override {
    for (const auto& p : parts_)
      if (p->needs_prompt()) return true;
    return false;
  }
  int64_t failures() const override { return 0; }

  Values score(const std::vector<Sample>& samples) override {
    // Standalone use: compute the terms (each distinct reward once), then combine.
    std::map<std::string, Values> done;
    for (const auto& p : parts_) {
      if (done.count(p->name())) continue;
      done[p->name()] = p->score(samples);
    }
    return combine(samples, done);
  }

  Values combine(const std::vector<Sample>& samples, const std::map<std::string, Values>& done) override {
    Values out(samples.size());
    for (size_t i = 0; i < samples.size(); ++i) {
      double sum = 0;
      bool any = false;
      for (const auto& t : terms_) {
        if (!term_applies(t.when, samples[i].label)) continue;
        auto it = done.find(t.reward);
        CADA_CHECK(it != done.end() && it->second.size() == samples.size(), "composite '", name(),
                   "': values of '", t.reward, "' are missing");
        const auto& v = it->second[i];
        if (!v) continue;
        sum += t.weight * *v;
        any = true;
      }
      if (any) out[i] = sum;
    }
    return out;
  }

 private:
  std::vector<TermOptions> terms_;
  std::vector<std::shared_ptr<Reward>> parts_;
};

}  // namespace

namespace detail {

Prepared prepare_composite(const PrepareInput& in, std::vector<std::string>& problems) {
  auto o = parse_options<CompositeOptions>(in.options, problems);
  if (!o.terms.is_array() || o.terms.empty()) {
    problems.push_back("'terms' must be a non-empty list of {\"reward\": NAME, \"weight\": W, \"when\": ...}");
    return {};
  }
  std::vector<TermOptions> terms;
  for (size_t k = 0; k < o.terms.size(); ++k) {
    const std::string where = "terms[" + std::to_string(k) + "]";
    const json& t = o.terms[k];
    if (!t.is_object()) {
      problems.push_back(where + " must be an object {\"reward\": NAME, \"weight\": W, \"when\": ...}");
      continue;
    }
    std::vector<std::string> mine;
    TermOptions term{};
    config::detail::Reader r{&t, where + ".", &mine, {}};
    term.visit(r);
    r.check_unknown();
    if (term.reward.empty()) mine.push_back("'" + where + ".reward' is required (the name of another reward)");
    else if (term.reward == in.name) mine.push_back("'" + where + ".reward' names the composite itself");
    else if (!in.declared.count(term.reward))
      mine.push_back("'" + where + ".reward' is '" + term.reward + "', which the config does not declare");
    if (!std::isfinite(term.weight)) mine.push_back("'" + where + ".weight' must be a finite number");
    problems.insert(problems.end(), mine.begin(), mine.end());
    terms.push_back(term);
  }
  Prepared p;
  for (const auto& t : terms)
    if (std::find(p.depends_on.begin(), p.depends_on.end(), t.reward) == p.depends_on.end())
      p.depends_on.push_back(t.reward);
  const std::string name = in.name;
  p.build = [name, terms, deps = p.depends_on](BuildContext& ctx) -> std::shared_ptr<Reward> {
    std::vector<std::shared_ptr<Reward>> parts;
    for (const auto& d : deps) parts.push_back(ctx.reward(d));
    return std::make_shared<CompositeReward>(name, terms, parts);
  };
  return p;
}

}  // namespace detail

}  // namespace cada::reward
