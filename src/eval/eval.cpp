// The eval pipeline: config checks, generation (jailbreaks, Best-of-N), judging and reports.
#include "cada/eval/eval.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "cada/eval/benchmarks.h"
#include "cada/eval/bon.h"
#include "cada/eval/harmbench.h"
#include "cada/eval/jailbreaks.h"
#include "cada/eval/judge_target.h"
#include "cada/eval/report.h"
#include "cada/eval/truncation.h"
#include "cada/eval/utility_run.h"
#include "cada/eval/xstest_report.h"
#include "cada/dist/comm.h"
#include "cada/io/figure.h"
#include "cada/io/files.h"
#include "cada/io/jsonl.h"
#include "cada/model/loader.h"
#include "cada/reward/reward.h"
#include "cada/rollout/generator.h"
#include "cada/rollout/sampling.h"
#include "cada/rollout/sharded.h"
#include "cada/text/records.h"
#include "cada/util/config.h"
#include "cada/util/log.h"
#include "cada/util/progress.h"
#include "cada/util/strings.h"

namespace cada::eval {

using nlohmann::json;

namespace {

std::string basename_no_ext(const std::string& path) {
  std::string b = path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
  const size_t dot = b.find_last_of('.');
  return dot == std::string::npos || dot == 0 ? b : b.substr(0, dot);
}

std::vector<std::string> selector_list(const json& sel, std::vector<std::string>* problems) {
  std::vector<std::string> out;
  auto add = [&](const json& x) {
    if (!x.is_string()) {
      if (problems) problems->push_back("'bon.selector' entries must be strings, got " + x.dump());
      return;
    }
    const std::string s = x.get<std::string>();
    if (std::find(bon_selectors().begin(), bon_selectors().end(), s) == bon_selectors().end()) {
      if (problems) problems->push_back("'bon.selector' is '" + s + "'; expected one of: " + util::join(bon_selectors()));
      return;
    }
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  };
  if (sel.is_array()) {
    for (const auto& x : sel) add(x);
  } else if (!sel.is_null()) {
    add(sel);
  }
  return out;
}

std::vector<AsrJudge> asr_list(const json& a, std::vector<std::string>* problems) {
  std::vector<AsrJudge> out;
  if (a.is_null()) return out;
  if (!a.is_array()) {
    if (problems) problems->push_back("'judges.asr' must be a list, got " + a.dump());
    return out;
  }
  for (const auto& x : a) {
    AsrJudge j;
    if (x.is_string()) {
      j.reward = x.get<std::string>();
    } else if (x.is_object()) {
      for (auto it = x.begin(); it != x.end(); ++it) {
        const std::string& k = it.key();
        if (k == "reward" && it->is_string()) j.reward = it->get<std::string>();
        else if (k == "threshold" && it->is_number()) j.threshold = it->get<double>();
        else if (k == "success" && it->is_string() && (*it == "above" || *it == "below")) j.above = *it == "above";
        else if (problems)
          problems->push_back("'judges.asr' entry " + x.dump() + ": bad key '" + k +
                              "' (valid: reward (string), threshold (number), success (above | below))");
      }
    } else if (problems) {
      problems->push_back("'judges.asr' entries must be reward names or objects, got " + x.dump());
    }
    if (j.reward.empty()) {
      if (problems) problems->push_back("'judges.asr' entry " + x.dump() + " names no reward");
      continue;
    }
    out.push_back(j);
  }
  return out;
}

// The rewards config as an object ({"rewards": [...]}), from the inline object or the file.
json rewards_json(const json& r, const std::string& source) {
  if (r.is_string()) return config::load_file(r.get<std::string>());
  CADA_CHECK(r.is_object(), source, ": 'rewards' must be an object or the path of a reward config");
  return r;
}

std::vector<std::string> reward_names_of(const json& rj) {
  std::vector<std::string> names;
  if (rj.is_object() && rj.contains("rewards") && rj["rewards"].is_array())
    for (const auto& e : rj["rewards"])
      if (e.is_object() && e.contains("name") && e["name"].is_string()) names.push_back(e["name"].get<std::string>());
  return names;
}

std::vector<DatasetSpec> dataset_specs(const EvalConfig& cfg, const std::string& source,
                                       std::vector<std::string>& problems) {
  std::vector<DatasetSpec> out;
  if (!cfg.datasets.is_array()) {
    problems.push_back("'datasets' must be a list of objects");
    return out;
  }
  std::set<std::string> names;
  for (size_t i = 0; i < cfg.datasets.size(); ++i) {
    const std::string w = source + ": datasets[" + std::to_string(i) + "]";
    try {
      auto d = config::parse<DatasetSpec>(cfg.datasets[i], w);
      if (d.path.empty()) problems.push_back(w + ": 'path' is required");
      if (d.name.empty()) d.name = basename_no_ext(d.path);
      if (!names.insert(d.name).second) problems.push_back(w + ": the name '" + d.name + "' is used twice");
      if (!d.jailbreaks.is_null() && !d.jailbreaks.is_array())
        problems.push_back(w + ": 'jailbreaks' must be null or a list of jailbreak names");
      out.push_back(d);
    } catch (const Error& e) {
      problems.push_back(e.what());
    }
  }
  return out;
}

json num_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// A dataset's jailbreak name selects that jailbreak, or all draws "<name>.<k>" of an expanded one.
bool jailbreak_matches(const std::string& want, const std::string& have) {
  if (have == want) return true;
  if (have.size() <= want.size() + 1 || have.compare(0, want.size() + 1, want + ".") != 0) return false;
  return std::all_of(have.begin() + static_cast<long>(want.size()) + 1, have.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

// The judge value a truncated completion contributes (eval/truncation.h): the refusal judge's
// by refusal_under_policy; an attack-success judge's null (exclude), not a success
// (as_refusal: the threshold itself) or a success (as_compliance); StrongREJECT's null,
// 0 or the judge's own value; other rewards keep theirs.
std::optional<double> truncated_value(std::optional<double> v, const std::string& name, const EvalConfig& cfg,
                                      TruncatedPolicy p) {
  if (name == cfg.judges.refusal) return refusal_under_policy(v, true, p);
  for (const auto& a : asr_list(cfg.judges.asr, nullptr))
    if (a.reward == name) {
      if (p == TruncatedPolicy::exclude) return std::nullopt;
      if (p == TruncatedPolicy::as_refusal) return a.threshold;
      return a.above ? a.threshold + 1.0 : a.threshold - 1.0;
    }
  if (name == cfg.judges.strongreject) {
    if (p == TruncatedPolicy::exclude) return std::nullopt;
    if (p == TruncatedPolicy::as_refusal) return 0.0;
  }
  return v;
}

}  // namespace

// ------------------------------------------------------------------ config

EvalConfig parse_config(const json& j, const std::string& source) {
  auto cfg = config::parse<EvalConfig>(j, source);
  std::vector<std::string> problems;
  auto specs = dataset_specs(cfg, source, problems);
  std::vector<std::string> jb_names;
  try {
    for (const auto& jb : make_jailbreaks(cfg.jailbreaks, source)) jb_names.push_back(jb->name());
  } catch (const Error& e) {
    problems.push_back(e.what());
  }
  for (size_t i = 0; i < specs.size(); ++i)
    if (specs[i].jailbreaks.is_array() && !jb_names.empty())
      for (const auto& n : specs[i].jailbreaks)
        if (!n.is_string() || std::none_of(jb_names.begin(), jb_names.end(), [&](const std::string& h) {
              return jailbreak_matches(n.get<std::string>(), h);
            }))
          problems.push_back(source + ": datasets[" + std::to_string(i) + "]: jailbreak " + n.dump() +
                             " is not configured (configured: " + util::join(jb_names) + ")");
  auto sels = selector_list(cfg.bon.selector, &problems);
  for (auto& p : cfg.sampling.rollout::SamplingConfig::problems("sampling")) problems.push_back(std::move(p));
  for (auto& p : cfg.sampling.rollout::EngineConfig::problems("sampling")) problems.push_back(std::move(p));
  if (cfg.bon.n < 1) problems.push_back("'bon.n' must be >= 1, got " + std::to_string(cfg.bon.n));
  if (cfg.bon.n > 1 && cfg.sampling.temperature <= 0)
    problems.push_back("'bon.n' > 1 samples several completions, so 'sampling.temperature' must be > 0");
  if (cfg.bon.n > 1 && sels.empty()) problems.push_back("'bon.selector' names no selector");
  if (cfg.bon.layer < 0) problems.push_back("'bon.layer' must be >= 0");
  for (const auto& s : sels) {
    if (selector_needs_base(s) && cfg.base_model.empty() && cfg.bon.n > 1)
      problems.push_back("selector '" + s + "' needs 'base_model'");
    if (s == "reward" && cfg.bon.reward.empty()) problems.push_back("selector 'reward' needs 'bon.reward'");
  }
  auto asr = asr_list(cfg.judges.asr, &problems);
  try {
    parse_truncated_policy(cfg.judges.truncated, "'judges.truncated'");
  } catch (const Error& e) {
    problems.push_back(e.what());
  }
  if (cfg.metrics.bootstrap < 0) problems.push_back("'metrics.bootstrap' must be >= 0");
  if (!(cfg.metrics.confidence > 0 && cfg.metrics.confidence < 1))
    problems.push_back("'metrics.confidence' must be in (0, 1)");
  if (cfg.chunk <= 0) problems.push_back("'chunk' must be positive");
  // Judge names against the reward config (names only; the rewards are validated when built).
  std::vector<std::string> judged = {cfg.judges.refusal, cfg.judges.strongreject, cfg.judges.helpfulness,
                                     cfg.judges.reasoning_leak, cfg.judges.copyright};
  for (const auto& a : asr) judged.push_back(a.reward);
  if (!cfg.judges.reasoning_leak.empty() && cfg.judges.refusal.empty())
    problems.push_back("'judges.reasoning_leak' counts harmful reasoning behind refusing answers, so it needs "
                       "'judges.refusal'");
  if (cfg.bon.n > 1 && std::find(sels.begin(), sels.end(), "reward") != sels.end()) judged.push_back(cfg.bon.reward);
  bool any_judge = false;
  for (const auto& n : judged) any_judge |= !n.empty();
  if (!cfg.rewards.is_null()) {
    try {
      const auto names = reward_names_of(rewards_json(cfg.rewards, source));
      for (const auto& n : judged)
        if (!n.empty() && std::find(names.begin(), names.end(), n) == names.end())
          problems.push_back("judge '" + n + "' is not a configured reward (configured: " + util::join(names) + ")");
    } catch (const Error& e) {
      problems.push_back(e.what());
    }
  } else if (any_judge) {
    problems.push_back("'judges' name rewards, but 'rewards' configures none");
  }
  if (!problems.empty()) {
    std::string msg = source + ": " + std::to_string(problems.size()) + " problem(s) in the eval config:";
    for (const auto& p : problems) msg += "\n  - " + p;
    throw Error(msg);
  }
  return cfg;
}

EvalConfig load_config(const std::string& path, const std::vector<std::string>& overrides) {
  auto j = config::load_file(path);
  config::apply_overrides(j, overrides);
  return parse_config(j, path);
}

std::vector<std::string> report_selectors(const EvalConfig& cfg) {
  std::vector<std::string> out = {"all"};
  if (cfg.bon.n > 1)
    for (const auto& s : selector_list(cfg.bon.selector, nullptr)) out.push_back(s);
  return out;
}

namespace {

// The harm judges (strongreject, asr) re-read under judges.target, and the leak judge.
TargetPlan target_plan(const EvalConfig& cfg, const reward::RewardSet& set) {
  TargetPlan p;
  p.target = parse_judge_target(cfg.judges.target, "judges.target");
  std::vector<std::string> harm;
  if (!cfg.judges.strongreject.empty()) harm.push_back(cfg.judges.strongreject);
  for (const auto& a : asr_list(cfg.judges.asr, nullptr))
    if (std::find(harm.begin(), harm.end(), a.reward) == harm.end()) harm.push_back(a.reward);
  for (size_t r = 0; r < set.size(); ++r)
    if (std::find(harm.begin(), harm.end(), set.rewards()[r]->name()) != harm.end())
      p.harm.emplace_back(r, set.rewards()[r]->name());
  p.leak = cfg.judges.reasoning_leak;
  p.leak_row = set.size();
  return p;
}

}  // namespace

MetricSpec metric_spec(const EvalConfig& cfg, const std::vector<std::string>& reward_names) {
  MetricSpec m;
  m.refusal = cfg.judges.refusal;
  m.strongreject = cfg.judges.strongreject;
  m.helpfulness = cfg.judges.helpfulness;
  m.asr = asr_list(cfg.judges.asr, nullptr);
  if (!cfg.judges.reasoning_leak.empty()) m.reasoning_leak = "reasoning_leak";
  // Every other reward is reported as a plain mean (the judges already have their metrics).
  for (const auto& n : reward_names) {
    bool role = n == m.refusal || n == m.strongreject || n == m.helpfulness || n == cfg.judges.reasoning_leak;
    for (const auto& a : m.asr) role |= a.reward == n;
    if (!role) m.rewards.push_back(n);
  }
  return m;
}

// ------------------------------------------------------------------ fingerprint

std::string model_fingerprint(const std::string& dir) {
  uint64_t h = 1469598103934665603ull;
  auto feed = [&](const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) {
      h ^= b[i];
      h *= 1099511628211ull;
    }
  };
  const std::string cfg = io::join_path(dir, "config.json");
  if (io::file_exists(cfg)) {
    const std::string c = io::read_file(cfg);
    feed(c.data(), c.size());
  }
  for (const auto& name : io::list_dir(dir)) {
    if (name.size() < 12 || name.compare(name.size() - 12, 12, ".safetensors") != 0) continue;
    const std::string p = io::join_path(dir, name);
    struct stat st {};
    CADA_CHECK(::stat(p.c_str(), &st) == 0, p, ": cannot stat the weights file");
    feed(name.data(), name.size());
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    feed(&size, sizeof size);
    std::FILE* f = std::fopen(p.c_str(), "rb");
    CADA_CHECK(f != nullptr, p, ": cannot open the weights file");
    std::vector<char> buf(1 << 20);
    size_t n = std::fread(buf.data(), 1, buf.size(), f);
    feed(buf.data(), n);
    if (size > buf.size()) {
      std::fseek(f, -static_cast<long>(buf.size()), SEEK_END);
      n = std::fread(buf.data(), 1, buf.size(), f);
      feed(buf.data(), n);
    }
    std::fclose(f);
  }
  char out[40];
  std::snprintf(out, sizeof out, "fnv1a64:%016llx", static_cast<unsigned long long>(h));
  return out;
}

// ------------------------------------------------------------------ runner

EvalRunner::EvalRunner(EvalConfig cfg, std::string source) : cfg_(std::move(cfg)), source_(std::move(source)) {}
EvalRunner::~EvalRunner() = default;

reward::RewardSet& EvalRunner::rewards() {
  if (!rewards_) {
    CADA_CHECK(!cfg_.rewards.is_null(), source_, ": 'rewards' is required to judge (an object or a file path)");
    reward::RuntimeOptions rt{cfg_.device, cfg_.dtype, cfg_.batch_size};
    rewards_ = std::make_unique<reward::RewardSet>(
        cfg_.rewards.is_string() ? reward::RewardSet::load(cfg_.rewards.get<std::string>(), rt)
                                 : reward::RewardSet::from_json(cfg_.rewards, source_ + " (rewards)", rt));
  }
  return *rewards_;
}

namespace {

struct Unit {
  const PromptRecord* rec;
  std::string dataset;
  size_t prompt_index;
  std::shared_ptr<Jailbreak> jb;
  std::string transformed;
  std::vector<int32_t> ids;
};

std::vector<text::Message> conversation(const PromptRecord& r, const std::string& last_user) {
  std::vector<text::Message> m = r.messages;
  if (m.empty()) m.push_back({"user", last_user});
  else m.back().content = last_user;
  return m;
}

json messages_json(const std::vector<text::Message>& m) {
  json a = json::array();
  for (const auto& x : m) a.push_back({{"role", x.role}, {"content", x.content}});
  return a;
}

}  // namespace

namespace {

// What eval generates: one unit per (prompt, jailbreak), each one request of n completions.
struct GenerationPlan {
  std::vector<DatasetSpec> specs;
  std::vector<std::vector<PromptRecord>> data;  // per dataset (the units point into it)
  std::vector<std::shared_ptr<Jailbreak>> jailbreaks;
  std::vector<Unit> units;
  std::vector<rollout::Request> requests;       // one per unit
  int64_t budget = 0;                           // tokens at most, for the progress bar
};

// Reads and checks every dataset file (before any model is loaded).
void load_datasets(const EvalConfig& cfg, const std::string& source, GenerationPlan& plan) {
  std::vector<std::string> problems;
  plan.specs = dataset_specs(cfg, source, problems);
  CADA_CHECK(problems.empty(), problems.empty() ? "" : problems[0]);
  CADA_CHECK(!plan.specs.empty(), source, ": 'datasets' is empty; give at least one {\"path\": ...}");
  plan.jailbreaks = make_jailbreaks(cfg.jailbreaks, source);
  for (const auto& s : plan.specs) {
    plan.data.push_back(load_dataset(s, cfg.data_dir));
    if (cfg.judges.copyright.empty())
      if (const size_t n = drop_copyright_behaviors(plan.data.back()); n > 0) {
        CADA_INFO(copyright_note(s.name, n));
        CADA_CHECK(!plan.data.back().empty(), "dataset '", s.name, "' has only copyright behaviours, and ",
                   "no hashing judge is configured (judges.copyright)");
      }
    CADA_INFO("dataset '", s.name, "': ", plan.data.back().size(), " prompts from ", s.path);
  }
}

// The (prompt, jailbreak) units with their token ids, and one request per unit.
void plan_units(const EvalConfig& cfg, const text::Tokenizer* tok, const text::ChatTemplate* tmpl, GenerationPlan& plan) {
  const auto& specs = plan.specs;
  for (size_t d = 0; d < specs.size(); ++d) {
    std::vector<std::shared_ptr<Jailbreak>> jbs;
    for (const auto& jb : plan.jailbreaks) {
      bool use = specs[d].jailbreaks.is_null();
      if (!use)
        for (const auto& x : specs[d].jailbreaks) use |= jailbreak_matches(x.get<std::string>(), jb->name());
      if (use) jbs.push_back(jb);
    }
    for (size_t i = 0; i < plan.data[d].size(); ++i) {
      const auto& r = plan.data[d][i];
      const uint64_t key = stream_id(specs[d].name + "\x1f" + r.id);
      for (const auto& jb : jbs) {
        Unit u{&r, specs[d].name, i, jb, jb->apply(r.prompt, key), {}};
        json rec;
        if (cfg.raw && r.messages.empty()) rec["prompt"] = u.transformed;
        else rec["messages"] = messages_json(conversation(r, u.transformed));
        u.ids = text::prompt_ids(rec, tok, tmpl, cfg.raw, r.where);
        plan.units.push_back(std::move(u));
      }
    }
  }
  // End-of-sequence ids come from the tokenizer (its EOS, generation_config.json's, chat end tokens).
  const rollout::SamplingParams sp = cfg.sampling.params(cfg.sampling.max_new_tokens);
  for (size_t k = 0; k < plan.units.size(); ++k) {
    rollout::Request q;
    q.prompt_ids = plan.units[k].ids;
    q.params = sp;
    q.n = cfg.bon.n;
    q.seed = cfg.sampling.seed * 1000003ULL + k;
    plan.budget += cfg.bon.n * sp.max_new_tokens;
    plan.requests.push_back(std::move(q));
  }
}

using SelectorScores = std::vector<std::vector<std::map<std::string, double>>>;  // [unit][completion][selector]

// Best-of-N scores of the candidates of units [mine.begin, mine.end) from the policy (and base)
// models: perplexity, self-certainty, KL to the base, latent similarity to the base.
void model_selector_scores(const EvalConfig& cfg, model::TransformerImpl& net, const std::vector<std::string>& selectors,
                           const GenerationPlan& plan, const std::vector<std::vector<rollout::Completion>>& results,
                           const dist::Range& mine, SelectorScores& scores) {
  ScoreOptions so;
  so.token_stats = false;
  for (const auto& s : selectors) {
    if (s == "perplexity" || s == "self_certainty") so.token_stats = true;
    if (s == "kl") so.kl = true;
    if (s == "latent") so.latent = true;
  }
  so.layer = cfg.bon.layer;
  so.batch_size = cfg.bon.batch_size;
  if (!so.token_stats && !so.kl && !so.latent) return;
  model::Transformer base{nullptr};
  if (so.kl || so.latent) {
    base = model::load_model(cfg.base_model, {cfg.device, cfg.dtype});
    base->eval();
  }
  std::vector<std::vector<int32_t>> ps, cs;
  std::vector<std::pair<size_t, size_t>> where;
  for (int64_t k = mine.begin; k < mine.end; ++k)
    for (size_t j = 0; j < results[k].size(); ++j)
      if (!results[k][j].ids.empty()) {
        ps.push_back(plan.units[k].ids);
        cs.push_back(results[k][j].ids);
        where.emplace_back(k, j);
      }
  Progress bar("eval bon scores", static_cast<int64_t>(ps.size()), "seq");
  const size_t step = static_cast<size_t>(std::max<int64_t>(1, so.batch_size)) * 8;
  for (size_t s = 0; s < ps.size(); s += step) {
    const size_t e = std::min(ps.size(), s + step);
    std::vector<std::vector<int32_t>> p2(ps.begin() + s, ps.begin() + e), c2(cs.begin() + s, cs.begin() + e);
    auto sc = score_completions(net, base ? base.ptr().get() : nullptr, p2, c2, so);
    for (size_t i = 0; i < sc.size(); ++i) {
      auto& m = scores[where[s + i].first][where[s + i].second];
      if (so.token_stats) {
        m["perplexity"] = sc[i].perplexity;
        m["self_certainty"] = sc[i].self_certainty;
      }
      if (so.kl) m["kl"] = sc[i].kl;
      if (so.latent) m["latent"] = sc[i].latent_cosine;
    }
    bar.advance(static_cast<int64_t>(e - s));
  }
  bar.finish();
}

// The reward selector's scores of the candidates of units [mine.begin, mine.end).
void reward_selector_scores(const EvalConfig& cfg, reward::RewardSet& rewards, const GenerationPlan& plan,
                            const std::vector<std::vector<rollout::Completion>>& results, const dist::Range& mine,
                            SelectorScores& scores) {
  auto rw = rewards.get(cfg.bon.reward);
  std::vector<reward::Sample> samples;
  for (int64_t k = mine.begin; k < mine.end; ++k)
    for (const auto& c : results[k]) {
      const auto& u = plan.units[k];
      reward::Sample s;
      s.prompt = conversation(*u.rec, u.rec->prompt);
      s.response = u.jb->decode(c.text);
      s.label = u.rec->label;
      s.category = u.rec->category;
      samples.push_back(std::move(s));
    }
  if (samples.empty()) return;
  // Only this reward (a composite needs the whole set to combine its terms).
  reward::Values own;
  std::vector<std::pair<std::string, reward::Values>> vals;
  const reward::Values* v = nullptr;
  if (rw->dependencies().empty()) {
    own = rw->score(samples);
    v = &own;
  } else {
    vals = rewards.score(samples);
    for (const auto& [name, values] : vals)
      if (name == cfg.bon.reward) v = &values;
  }
  CADA_CHECK(v != nullptr && v->size() == samples.size(), "reward '", cfg.bon.reward, "' gave no values");
  size_t i = 0;
  for (int64_t k = mine.begin; k < mine.end; ++k)
    for (size_t j = 0; j < results[k].size(); ++j, ++i) scores[k][j]["reward"] = (*v)[i] ? *(*v)[i] : std::nan("");
}

// Every rank's selector scores of its units, in unit order, on every rank.
void gather_selector_scores(dist::Comm& comm, const dist::Range& mine, SelectorScores& scores) {
  if (comm.world() == 1) return;
  std::vector<json> items;
  for (int64_t k = mine.begin; k < mine.end; ++k) {
    json cs = json::array();
    for (const auto& m : scores[k]) {
      json sc = json::object();
      for (const auto& [name, v] : m) sc[name] = num_or_null(v);
      cs.push_back(sc);
    }
    items.push_back(std::move(cs));
  }
  const auto all = rollout::gather_shards(comm, items, static_cast<int64_t>(scores.size()));
  for (size_t k = 0; k < all.size(); ++k)
    for (size_t c = 0; c < all[k].size() && c < scores[k].size(); ++c)
      for (auto it = all[k][c].begin(); it != all[k][c].end(); ++it)
        scores[k][c][it.key()] = it.value().is_null() ? std::nan("") : it.value().get<double>();
}

// One generation record per unit: the prompt, its completions with their selector scores and
// each selector's choice, the sampling settings and the models.
std::string generation_records(const EvalConfig& cfg, const std::vector<std::string>& selectors, int64_t layer,
                               const GenerationPlan& plan, const std::vector<std::vector<rollout::Completion>>& results,
                               const SelectorScores& scores) {
  const int64_t n = cfg.bon.n;
  json sampling = config::to_json(cfg.sampling);
  sampling["n"] = n;
  json model_info = {{"path", cfg.model}, {"fingerprint", model_fingerprint(cfg.model)}};
  json base_info = cfg.base_model.empty()
                       ? json(nullptr)
                       : json{{"path", cfg.base_model}, {"fingerprint", model_fingerprint(cfg.base_model)}};
  std::string out;
  for (size_t k = 0; k < plan.units.size(); ++k) {
    const auto& u = plan.units[k];
    const auto& r = *u.rec;
    json j;
    j["dataset"] = u.dataset;
    j["id"] = r.id;
    j["prompt_index"] = u.prompt_index;
    j["index"] = k;
    j["prompt"] = r.prompt;
    if (!r.messages.empty()) j["messages"] = messages_json(r.messages);
    j["transformed_prompt"] = u.transformed;
    j["jailbreak"] = u.jb->name();
    j["label"] = r.label;
    j["category"] = r.category;
    j["source"] = r.source;
    j["meta"] = r.meta;
    j["where"] = r.where;
    j["prompt_ids"] = u.ids;
    j["seed"] = plan.requests[k].seed;
    json comps = json::array();
    std::map<std::string, std::vector<double>> by_sel;
    for (size_t c = 0; c < results[k].size(); ++c) {
      const auto& x = results[k][c];
      json cj = {{"text", x.text}, {"ids", x.ids}, {"finish_reason", x.finish_reason}};
      if (u.jb->decodes()) cj["decoded"] = u.jb->decode(x.text);
      if (n > 1) {
        json ss = json::object();
        for (const auto& [name, v] : scores[k][c]) {
          ss[name] = num_or_null(v);
          by_sel[name].push_back(v);
        }
        cj["selector_scores"] = ss;
      }
      comps.push_back(cj);
    }
    j["completions"] = comps;
    json chosen = json::object();
    if (n > 1)
      for (const auto& s : selectors) {
        if (s == "random") {
          chosen[s] = random_index(cfg.bon.seed, k, n);
        } else {
          auto it = by_sel.find(s);
          chosen[s] = select_index(s, it == by_sel.end() ? std::vector<double>(n, std::nan("")) : it->second);
        }
      }
    j["bon"] = {{"n", n}, {"selectors", n > 1 ? json(selectors) : json::array()}, {"chosen", chosen}, {"layer", layer}};
    j["sampling"] = sampling;
    j["model"] = model_info;
    j["base_model"] = base_info;
    out += j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  }
  return out;
}

}  // namespace

size_t EvalRunner::generate(const std::string& out_path) {
  CADA_CHECK(!cfg_.model.empty(), source_, ": 'model' is required to generate");
  const auto selectors = selector_list(cfg_.bon.selector, nullptr);
  const int64_t n = cfg_.bon.n;
  model::configure_threads(cfg_.threads);
  // 1. Data, and the reward selector's reward, checked before a model is loaded.
  GenerationPlan plan;
  load_datasets(cfg_, source_, plan);
  const bool use_reward_selector = n > 1 && std::find(selectors.begin(), selectors.end(), "reward") != selectors.end();
  if (use_reward_selector) rewards().get(cfg_.bon.reward);
  // 2. Prompts.
  auto tok = text::load_tokenizer(cfg_.model);
  std::unique_ptr<text::ChatTemplate> tmpl;
  if (!cfg_.raw && (!cfg_.chat_template.empty() || !text::detect_chat_template(cfg_.model).empty()))
    tmpl = text::load_chat_template(cfg_.model, cfg_.chat_template);
  plan_units(cfg_, tok.get(), tmpl.get(), plan);
  const auto& units = plan.units;
  CADA_INFO(units.size(), " (prompt, jailbreak) units x ", n, " completion(s) with ", plan.jailbreaks.size(),
            " jailbreak(s)");
  // 3. Generation: with several processes each generates (and scores, below) its contiguous share
  // of the units; every rank receives all of them and rank 0 writes the file.
  auto& comm = dist::init_from_env(cfg_.device);
  const auto mine = dist::shard(static_cast<int64_t>(units.size()), comm.rank(), comm.world());
  auto net = model::load_model(cfg_.model, {cfg_.device, cfg_.dtype});
  net->eval();
  rollout::Generator gen(*net, tok.get(), cfg_.sampling.options("sampling.max_new_tokens or sampling.batch_rows"));
  Progress bar("eval generate", plan.budget * mine.size() / std::max<int64_t>(1, static_cast<int64_t>(units.size())), "tok");
  const auto results = rollout::generate_sharded(gen, comm, plan.requests, [&](int64_t k) { bar.advance(k); });
  const auto& st = gen.stats();
  const double secs = st.prefill_s + st.decode_s;
  char line[160];
  std::snprintf(line, sizeof line, "%lld tokens in %.2fs (%.1f tok/s)", static_cast<long long>(st.generated_tokens),
                secs, secs > 0 ? st.generated_tokens / secs : 0.0);
  bar.finish(line);
  // 4. Best-of-N scores of the candidates (each rank its units, then gathered).
  const int64_t layer = resolve_layer(cfg_.bon.layer, net->config().num_hidden_layers);
  SelectorScores scores(units.size(), std::vector<std::map<std::string, double>>(n));
  if (n > 1) {
    model_selector_scores(cfg_, *net, selectors, plan, results, mine, scores);
    if (use_reward_selector) reward_selector_scores(cfg_, rewards(), plan, results, mine, scores);
    gather_selector_scores(comm, mine, scores);
  }
  // 5. The generation file.
  if (comm.is_main()) {
    io::atomic_write_file(out_path, generation_records(cfg_, selectors, layer, plan, results, scores));
    CADA_INFO("wrote ", units.size(), " generation records to ", out_path);
  }
  if (cfg_.utility.any()) {
    const json utility = run_utility(cfg_, *net, tok.get(), tmpl.get(), gen, comm);
    if (comm.is_main()) io::atomic_write_file(utility_path(out_path), utility.dump(1) + "\n");
  } else if (comm.is_main() && io::file_exists(utility_path(out_path))) {
    io::remove_file(utility_path(out_path));  // an older run's utility results are not this model's
  }
  comm.barrier();  // the judge stage of every rank reads the file
  return units.size();
}

namespace {

// A generation file read and checked: its records, one judge sample per completion, each
// sample's (record, completion) slot, and the Best-of-N selectors every record shares.
struct GenerationFile {
  std::vector<json> records;
  std::vector<reward::Sample> samples;
  std::vector<std::pair<size_t, size_t>> slots;
  std::vector<std::string> selectors;
};

GenerationFile read_generation_file(const std::string& generations) {
  GenerationFile f;
  io::JsonlReader reader(generations);
  json rec;
  while (reader.next(rec)) {
    const std::string where = generations + ":" + std::to_string(reader.line());
    CADA_CHECK(rec.is_object(), where, ": expected a JSON object");
    for (const char* k : {"dataset", "jailbreak", "prompt"})
      CADA_CHECK(rec.contains(k) && rec[k].is_string(), where, ": '", k,
                 "' must be a string (is this a cada eval generation file?)");
    CADA_CHECK(rec.contains("completions") && rec["completions"].is_array() && !rec["completions"].empty(), where,
               ": 'completions' must be a non-empty list");
    reward::Sample base;
    if (rec.contains("messages")) {
      CADA_CHECK(rec["messages"].is_array() && !rec["messages"].empty(), where,
                 ": 'messages' must be a non-empty list");
      for (const auto& m : rec["messages"]) {
        CADA_CHECK(m.is_object() && m.contains("role") && m["role"].is_string() && m.contains("content") &&
                       m["content"].is_string(),
                   where, ": each message needs string fields 'role' and 'content'");
        base.prompt.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
      }
      base.prompt.back().content = rec["prompt"].get<std::string>();
    } else {
      base.prompt.push_back({"user", rec["prompt"].get<std::string>()});
    }
    base.label = rec.value("label", "");
    base.category = rec.value("category", "");
    harmbench_slots(rec.value("source", ""), rec.value("meta", json::object()), base.behavior, base.context);
    const size_t ri = f.records.size();
    const auto& comps = rec["completions"];
    for (size_t c = 0; c < comps.size(); ++c) {
      const auto& x = comps[c];
      CADA_CHECK(x.is_object() && x.contains("text") && x["text"].is_string(), where, ": completions[", c,
                 "] needs a 'text' string");
      reward::Sample s = base;
      s.response = x.contains("decoded") && x["decoded"].is_string() ? x["decoded"].get<std::string>()
                                                                     : x["text"].get<std::string>();
      f.samples.push_back(std::move(s));
      f.slots.emplace_back(ri, c);
    }
    std::vector<std::string> sels;
    if (rec.contains("bon") && rec["bon"].is_object() && rec["bon"].contains("selectors")) {
      for (const auto& s : rec["bon"]["selectors"]) {
        CADA_CHECK(s.is_string(), where, ": 'bon.selectors' must be a list of names");
        sels.push_back(s.get<std::string>());
        const auto& ch = rec["bon"]["chosen"];
        CADA_CHECK(ch.is_object() && ch.contains(s) && ch[s].is_number_integer() && ch[s].get<int64_t>() >= 0 &&
                       ch[s].get<size_t>() < comps.size(),
                   where, ": 'bon.chosen' has no valid index for selector ", s.dump());
      }
    }
    if (ri == 0) f.selectors = sels;
    else
      CADA_CHECK(sels == f.selectors, where, ": the Best-of-N selectors (", util::join(sels),
                 ") differ from the first record's (", util::join(f.selectors), ")");
    f.records.push_back(std::move(rec));
  }
  CADA_CHECK(!f.records.empty(), generations, ": no records");
  return f;
}

// Every judge's value for every completion (rows: the rewards, then the leak judge on the
// reasoning when configured) and each judge's parse failures. With several processes each
// judges its contiguous share of the responses and the values are exchanged; `main` is false on
// the ranks that leave the reports to rank 0.
struct JudgeValues {
  std::vector<reward::Values> values;
  std::vector<int64_t> failures;
  bool main = true;
};

JudgeValues run_judges(reward::RewardSet& set, const TargetPlan& plan, const std::vector<reward::Sample>& samples,
                       int64_t chunk, dist::Comm& comm) {
  const size_t R = set.size();
  std::vector<int64_t> failures_before;  // parse failures are counted per judge since it was built
  for (const auto& r : set.rewards()) failures_before.push_back(r->failures());
  const size_t V = R + (plan.leak.empty() ? 0 : 1);
  JudgeValues jv;
  jv.values.assign(V, reward::Values(samples.size()));
  auto& values = jv.values;
  const auto mine = dist::shard(static_cast<int64_t>(samples.size()), comm.rank(), comm.world());
  {
    Progress bar("eval judge", mine.size(), "responses");
    for (size_t s = mine.begin; s < static_cast<size_t>(mine.end); s += static_cast<size_t>(chunk)) {
      const size_t e = std::min<size_t>(mine.end, s + static_cast<size_t>(chunk));
      std::vector<reward::Sample> part(samples.begin() + s, samples.begin() + e);
      auto scored = set.score(part);
      for (size_t r = 0; r < R; ++r) std::copy(scored[r].second.begin(), scored[r].second.end(), values[r].begin() + s);
      if (plan.active()) rescore_targets(set, plan, part, s, values);
      bar.advance(static_cast<int64_t>(e - s));
    }
    bar.finish();
  }
  jv.failures.resize(R);
  for (size_t r = 0; r < R; ++r) jv.failures[r] = set.rewards()[r]->failures() - failures_before[r];
  if (comm.world() == 1) return jv;
  // Values travel as float64 with NaN for "no value" (both count as missing in the metrics).
  std::vector<double> flat;
  for (size_t r = 0; r < V; ++r)
    for (int64_t k = mine.begin; k < mine.end; ++k) flat.push_back(values[r][k] ? *values[r][k] : std::nan(""));
  const auto parts = comm.allgather(std::string(reinterpret_cast<const char*>(flat.data()), flat.size() * sizeof(double)));
  for (int q = 0; q < comm.world(); ++q) {
    const auto other = dist::shard(static_cast<int64_t>(samples.size()), q, comm.world());
    CADA_CHECK(parts[q].size() == V * other.size() * sizeof(double), "data parallel: rank ", q,
               " sent judge values of another size");
    const double* v = reinterpret_cast<const double*>(parts[q].data());
    for (size_t r = 0; r < V; ++r)
      for (int64_t k = other.begin; k < other.end; ++k, ++v)
        values[r][k] = std::isnan(*v) ? std::nullopt : std::optional<double>(*v);
  }
  std::vector<double> f(jv.failures.begin(), jv.failures.end());
  f = dist::allreduce_sum(comm, f);
  for (size_t r = 0; r < R; ++r) jv.failures[r] = static_cast<int64_t>(f[r]);
  jv.main = comm.is_main();
  return jv;
}

// The judged completions: each marked truncated or not and given its scores in the records (the
// truncation policy applied), and one metric unit per record.
struct ScoredUnits {
  std::vector<EvalUnit> units;
  TruncatedPolicy policy = TruncatedPolicy::exclude;
  json by_dataset = json::object();   // {dataset: {completions, truncated}}
  int64_t truncated = 0;
};

ScoredUnits score_units(GenerationFile& file, const std::vector<std::string>& names, const JudgeValues& jv,
                        const TargetPlan& plan, const EvalConfig& cfg) {
  auto& records = file.records;
  const size_t R = names.size();
  ScoredUnits su;
  su.units.resize(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& rec = records[i];
    auto& u = su.units[i];
    u.dataset = rec["dataset"].get<std::string>();
    u.jailbreak = rec["jailbreak"].get<std::string>();
    u.label = rec.value("label", "");
    u.category = rec.value("category", "");
    u.prompt_key = rec.contains("prompt_index") ? rec["prompt_index"].dump() : rec.value("id", rec["prompt"].get<std::string>());
    for (const auto& s : file.selectors) u.chosen[s] = rec["bon"]["chosen"][s].get<int64_t>();
    for (const auto& nm : names) u.scores[nm].resize(rec["completions"].size());
    if (!plan.leak.empty()) u.scores["reasoning_leak"].resize(rec["completions"].size());
  }
  su.policy = parse_truncated_policy(cfg.judges.truncated, "judges.truncated");
  for (size_t k = 0; k < file.samples.size(); ++k) {
    const auto [ri, c] = file.slots[k];
    auto& comp = records[ri]["completions"][c];
    const bool cut = is_truncated(comp.value("text", ""), comp.value("finish_reason", ""));
    comp["truncated"] = cut;
    auto& td = su.by_dataset[su.units[ri].dataset];
    if (td.is_null()) td = {{"completions", 0}, {"truncated", 0}};
    td["completions"] = td.value("completions", 0) + 1;
    td["truncated"] = td.value("truncated", 0) + (cut ? 1 : 0);
    su.truncated += cut ? 1 : 0;
    json sc = json::object();
    auto& scores = su.units[ri].scores;
    for (size_t r = 0; r < R; ++r) {
      auto v = jv.values[r][k];
      if (cut) v = truncated_value(v, names[r], cfg, su.policy);
      const bool ok = v && std::isfinite(*v);
      sc[names[r]] = ok ? json(*v) : json(nullptr);
      scores[names[r]][c] = ok ? v : std::nullopt;
    }
    if (!plan.leak.empty()) {
      const Value leak = reasoning_leak_value(scores[cfg.judges.refusal][c], jv.values[R][k], cfg.judges.leak_threshold);
      scores["reasoning_leak"][c] = leak;
      sc["reasoning_leak"] = leak ? json(*leak) : json(nullptr);
    }
    comp["scores"] = sc;
  }
  return su;
}

// The report's "rewards" section: each judge's type, role in the metrics, counts and parse
// failures (warned about).
json rewards_section(reward::RewardSet& set, const MetricSpec& spec, const JudgeValues& jv) {
  json rj = json::object();
  for (size_t r = 0; r < set.size(); ++r) {
    const auto& rw = set.rewards()[r];
    int64_t nn = 0, nulls = 0;
    for (const auto& v : jv.values[r]) (v && std::isfinite(*v)) ? ++nn : ++nulls;
    std::string role;
    if (rw->name() == spec.refusal) role += "refusal ";
    if (rw->name() == spec.strongreject) role += "strongreject ";
    if (rw->name() == spec.helpfulness) role += "helpfulness ";
    for (const auto& a : spec.asr)
      if (a.reward == rw->name()) role += "asr ";
    if (!role.empty()) role.pop_back();
    const int64_t failed = jv.failures[r];
    rj[rw->name()] = {{"type", rw->type()}, {"role", role}, {"values", nn}, {"nulls", nulls},
                      {"parse_failures", failed}};
    if (failed > 0)
      CADA_WARN("judge '", rw->name(), "': ", failed, " output(s) could not be parsed (null values, counted)");
  }
  return rj;
}

// The report's "truncation" section, with a rate per dataset.
json truncation_section(ScoredUnits& su, size_t completions) {
  for (auto& [ds, td] : su.by_dataset.items())
    td["rate"] = td["completions"].get<double>() > 0
                     ? td["truncated"].get<double>() / td["completions"].get<double>() : 0.0;
  CADA_INFO("truncated (no final answer): ", su.truncated, " of ", completions, " completions; policy ",
            to_string(su.policy));
  return {{"policy", to_string(su.policy)}, {"truncated", su.truncated}, {"completions", completions},
          {"rate", completions == 0 ? 0.0 : static_cast<double>(su.truncated) / completions},
          {"by_dataset", su.by_dataset}};
}

// The report's header: the generation file, its model and sampling, the bootstrap and the judges.
json report_header(const GenerationFile& file, const std::string& generations, const MetricSpec& spec,
                   const TargetPlan& plan, const EvalConfig& cfg, const BootstrapOptions& bo) {
  const auto& first = file.records[0];
  json report;
  report["cada_eval_report"] = 1;
  report["generations"] = generations;
  report["records"] = file.records.size();
  report["completions"] = file.samples.size();
  report["model"] = first.value("model", json());
  report["base_model"] = first.value("base_model", json());
  report["sampling"] = first.value("sampling", json());
  report["bon"] = first.value("bon", json::object()).value("n", 1) > 1
                      ? json{{"n", first["bon"]["n"]}, {"selectors", file.selectors},
                             {"layer", first["bon"].value("layer", json())}}
                      : json(nullptr);
  report["bootstrap"] = {{"resamples", bo.resamples}, {"confidence", bo.confidence}, {"seed", bo.seed},
                         {"method", "percentile"}};
  json asr_j = json::array();
  for (const auto& a : spec.asr)
    asr_j.push_back({{"reward", a.reward}, {"threshold", a.threshold}, {"success", a.above ? "above" : "below"}});
  report["judges"] = {{"refusal", spec.refusal}, {"strongreject", spec.strongreject},
                      {"helpfulness", spec.helpfulness}, {"asr", asr_j}, {"target", to_string(plan.target)},
                      {"reasoning_leak", cfg.judges.reasoning_leak},
                      {"leak_threshold", cfg.judges.leak_threshold}};
  report["metrics"] = metric_names(spec);
  return report;
}

// The utility tables of the generation file's side file (MMLU / GSM8K), into the report.
void add_utility(json& report, const std::string& generations, const BootstrapOptions& bo) {
  if (!io::file_exists(utility_path(generations))) return;
  json util;
  try {
    util = json::parse(io::read_file(utility_path(generations)));
  } catch (const json::exception& e) {
    CADA_FAIL(utility_path(generations), ": invalid JSON (", e.what(), ")");
  }
  const json tables = utility_datasets(util, bo);
  for (const auto& [name, table] : tables.items()) report["datasets"][name] = table;
  if (!util.empty()) report["metrics"].push_back("accuracy");
}

}  // namespace

json EvalRunner::judge(const std::string& generations, const std::string& out_dir) {
  model::configure_threads(cfg_.threads);
  GenerationFile file = read_generation_file(generations);
  auto& set = rewards();
  const TargetPlan plan = target_plan(cfg_, set);
  const JudgeValues jv = run_judges(set, plan, file.samples, cfg_.chunk, dist::init_from_env(cfg_.device));
  if (!jv.main) return json();  // rank 0 writes the scores and reports

  std::vector<std::string> names;
  for (const auto& r : set.rewards()) names.push_back(r->name());
  ScoredUnits su = score_units(file, names, jv, plan, cfg_);
  io::make_dirs(out_dir);
  {
    std::string out;
    for (const auto& rec : file.records) out += rec.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    io::atomic_write_file(io::join_path(out_dir, "scores.jsonl"), out);
  }

  std::vector<std::string> selectors = {"all"};
  selectors.insert(selectors.end(), file.selectors.begin(), file.selectors.end());
  const MetricSpec spec = metric_spec(cfg_, names);
  for (const auto& n : {spec.refusal, spec.strongreject, spec.helpfulness}) if (!n.empty()) set.get(n);
  for (const auto& a : spec.asr) set.get(a.reward);
  BootstrapOptions bo{cfg_.metrics.bootstrap, cfg_.metrics.confidence, cfg_.metrics.seed};
  json report = report_header(file, generations, spec, plan, cfg_, bo);
  report["selectors"] = selectors;
  report["rewards"] = rewards_section(set, spec, jv);
  report["truncation"] = truncation_section(su, file.samples.size());
  report["datasets"] = aggregate(su.units, spec, selectors, bo);
  add_utility(report, generations, bo);
  if (json xs = xstest_report(file.records); !xs.empty()) {
    report["xstest"] = xs;
    add_xstest_summaries(report);
  }
  const std::string plot = cfg_.metrics.plot.empty() ? default_plot_metric(report) : cfg_.metrics.plot;
  report["plot_metric"] = plot;
  io::atomic_write_file(io::join_path(out_dir, "report.json"), report.dump(2) + "\n");
  io::atomic_write_file(io::join_path(out_dir, "report.md"), report_markdown(report));
  io::write_figure(io::join_path(out_dir, "report"), report_chart(report, plot));
  CADA_INFO("judged ", file.samples.size(), " completions of ", file.records.size(), " records; wrote ", out_dir,
            "/{scores.jsonl, report.json, report.md, report.{png,svg}}");
  return report;
}

}  // namespace cada::eval
