// Chain filters: the per-prompt stage (thresholds, duplicates, best-of-K) and the global stage
// (category caps, harmful/benign mix, total cap), plus the samples.jsonl record.
#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "cada/safety/chains.h"
#include "cada/util/error.h"

namespace cada::safety {

using nlohmann::json;

void check_filter_options(const FilterOptions& f, const std::string& prefix, std::vector<std::string>& problems) {
  auto p = [&](const std::string& key, const std::string& what) { problems.push_back("'" + prefix + key + "' " + what); };
  if (f.keep_per_prompt < 0) p("keep_per_prompt", "must be >= 0 (0 = all), got " + std::to_string(f.keep_per_prompt));
  if (f.per_category_cap < 0) p("per_category_cap", "must be >= 0 (0 = no cap), got " + std::to_string(f.per_category_cap));
  if (f.total_cap < 0) p("total_cap", "must be >= 0 (0 = no cap), got " + std::to_string(f.total_cap));
  if (f.harmful_fraction && !(*f.harmful_fraction >= 0.0 && *f.harmful_fraction <= 1.0))
    p("harmful_fraction", "must be in [0, 1] or null, got " + std::to_string(*f.harmful_fraction));
  if (!f.category_caps.is_object()) {
    p("category_caps", "must be an object {category: cap}, got " + f.category_caps.dump());
  } else {
    for (auto it = f.category_caps.begin(); it != f.category_caps.end(); ++it)
      if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0)
        p("category_caps." + it.key(), "must be an integer >= 0 (0 = no cap), got " + it.value().dump());
  }
}

static std::optional<double> value_of(const ScoredSample& s, const std::string& name) {
  auto it = s.scores.find(name);
  return it == s.scores.end() ? std::nullopt : it->second;
}

void filter_prompt(std::vector<ScoredSample>& samples, const FilterOptions& f) {
  std::vector<size_t> alive;
  std::set<std::string> seen;
  for (size_t i = 0; i < samples.size(); ++i) {
    ScoredSample& s = samples[i];
    s.dropped.clear();
    s.rank = -1;
    if (f.require_format && !s.well_formed) {
      s.dropped = "format";
    } else if (s.label == "harmful" && !f.harmless_reward.empty()) {
      auto v = value_of(s, f.harmless_reward);
      if (!v || !(*v >= f.harmless_min)) s.dropped = "harmless";
    } else if (s.label == "benign" && !f.helpful_reward.empty()) {
      auto v = value_of(s, f.helpful_reward);
      if (!v || !(*v >= f.helpful_min)) s.dropped = "helpful";
    }
    if (s.dropped.empty() && f.dedupe && !seen.insert(s.response).second) s.dropped = "duplicate";
    if (s.dropped.empty()) alive.push_back(i);
  }
  if (!f.best_of.empty()) {
    // Highest value first; null values after every number; ties keep sample order.
    std::stable_sort(alive.begin(), alive.end(), [&](size_t a, size_t b) {
      auto va = value_of(samples[a], f.best_of), vb = value_of(samples[b], f.best_of);
      if (va && vb) return *va > *vb;
      return va.has_value() && !vb.has_value();
    });
  }
  const size_t keep = f.keep_per_prompt > 0 ? static_cast<size_t>(f.keep_per_prompt) : alive.size();
  for (size_t r = 0; r < alive.size(); ++r) {
    if (r < keep) samples[alive[r]].rank = static_cast<int64_t>(r);
    else samples[alive[r]].dropped = "best_of";
  }
}

std::vector<std::string> select_chains(const std::vector<const ScoredSample*>& cands, const FilterOptions& f) {
  std::vector<std::string> reasons(cands.size());
  // 1. category caps, first come first served in processing order.
  std::map<std::string, int64_t> count;
  for (size_t i = 0; i < cands.size(); ++i) {
    const std::string& c = cands[i]->category;
    int64_t cap = f.per_category_cap;
    if (f.category_caps.is_object() && f.category_caps.contains(c) && f.category_caps[c].is_number_integer())
      cap = f.category_caps[c].get<int64_t>();
    if (cap > 0 && count[c] >= cap) reasons[i] = "category_cap";
    else ++count[c];
  }
  const int64_t T = f.total_cap;
  if (f.harmful_fraction) {
    // 2. the mix: N = min(T, H / f, B / (1 - f)) chains, round(f N) of them harmful.
    std::vector<size_t> harm, other;
    for (size_t i = 0; i < cands.size(); ++i)
      if (reasons[i].empty()) (cands[i]->label == "harmful" ? harm : other).push_back(i);
    const double fr = *f.harmful_fraction;
    const int64_t inf = std::numeric_limits<int64_t>::max() / 4;
    const int64_t H = static_cast<int64_t>(harm.size()), B = static_cast<int64_t>(other.size());
    const int64_t lim_t = T > 0 ? T : inf;
    const int64_t lim_h = fr > 0 ? static_cast<int64_t>(std::floor(H / fr + 1e-9)) : inf;
    const int64_t lim_b = fr < 1 ? static_cast<int64_t>(std::floor(B / (1.0 - fr) + 1e-9)) : inf;
    const int64_t N = std::min({lim_t, lim_h, lim_b});
    const int64_t nh = std::min<int64_t>(H, std::llround(fr * static_cast<double>(N)));
    const int64_t nb = std::min<int64_t>(B, N - nh);
    const char* why = (T > 0 && N == T) ? "total_cap" : "mix";
    for (size_t k = static_cast<size_t>(nh); k < harm.size(); ++k) reasons[harm[k]] = why;
    for (size_t k = static_cast<size_t>(nb); k < other.size(); ++k) reasons[other[k]] = why;
  } else if (T > 0) {
    // 3. total cap: the first T.
    int64_t n = 0;
    for (size_t i = 0; i < cands.size(); ++i) {
      if (!reasons[i].empty()) continue;
      if (n >= T) reasons[i] = "total_cap";
      else ++n;
    }
  }
  return reasons;
}

bool selection_full(const std::vector<std::string>& reasons, const FilterOptions& f) {
  if (f.total_cap <= 0) return false;
  const auto n = std::count_if(reasons.begin(), reasons.end(), [](const std::string& r) { return r.empty(); });
  return n >= f.total_cap;
}

// ---------------------------------------------------------------- samples.jsonl

json sample_to_json(const ScoredSample& s) {
  json scores = json::object();
  for (const auto& [k, v] : s.scores) scores[k] = v ? json(*v) : json(nullptr);
  return {{"prompt_id", s.prompt_id},   {"prompt_index", s.prompt_index}, {"sample", s.sample},
          {"seed", s.seed},             {"label", s.label},               {"category", s.category},
          {"text", s.text},             {"reasoning", s.reasoning},       {"answer", s.answer},
          {"response", s.response},     {"well_formed", s.well_formed},   {"finish_reason", s.finish_reason},
          {"scores", scores},           {"dropped", s.dropped.empty() ? json(nullptr) : json(s.dropped)},
          {"rank", s.rank}};
}

ScoredSample sample_from_json(const json& j, const std::string& where) {
  CADA_CHECK(j.is_object(), where, ": a sample record must be a JSON object");
  auto str = [&](const char* k) {
    CADA_CHECK(j.contains(k) && j[k].is_string(), where, ": sample record field '", k, "' must be a string");
    return j[k].get<std::string>();
  };
  auto integer = [&](const char* k) {
    CADA_CHECK(j.contains(k) && j[k].is_number_integer(), where, ": sample record field '", k, "' must be an integer");
    return j[k].get<int64_t>();
  };
  ScoredSample s;
  s.prompt_id = str("prompt_id");
  s.prompt_index = integer("prompt_index");
  s.sample = integer("sample");
  CADA_CHECK(j.contains("seed") && j["seed"].is_number_unsigned(), where, ": sample record field 'seed' must be an unsigned integer");
  s.seed = j["seed"].get<uint64_t>();
  s.label = str("label");
  s.category = str("category");
  s.text = str("text");
  s.reasoning = str("reasoning");
  s.answer = str("answer");
  s.response = str("response");
  s.finish_reason = str("finish_reason");
  CADA_CHECK(j.contains("well_formed") && j["well_formed"].is_boolean(), where, ": sample record field 'well_formed' must be true or false");
  s.well_formed = j["well_formed"].get<bool>();
  CADA_CHECK(j.contains("scores") && j["scores"].is_object(), where, ": sample record field 'scores' must be an object");
  for (auto it = j["scores"].begin(); it != j["scores"].end(); ++it) {
    CADA_CHECK(it.value().is_null() || it.value().is_number(), where, ": score '", it.key(), "' must be a number or null");
    s.scores[it.key()] = it.value().is_null() ? std::nullopt : std::optional<double>(it.value().get<double>());
  }
  if (j.contains("dropped") && j["dropped"].is_string()) s.dropped = j["dropped"].get<std::string>();
  if (j.contains("rank") && j["rank"].is_number_integer()) s.rank = j["rank"].get<int64_t>();
  return s;
}

}  // namespace cada::safety
