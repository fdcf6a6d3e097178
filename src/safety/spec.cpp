// Specification files: loading and validation, ids, TF-IDF retrieval, case selection, rendering.
#include "cada/safety/spec.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <random>
#include <set>

#include "cada/safety/rule_select.h"
#include "cada/util/config.h"
#include "cada/util/error.h"
#include "cada/util/hash.h"
#include "cada/util/strings.h"

namespace cada::safety {

using nlohmann::json;

const std::vector<std::string>& verdicts() {
  static const std::vector<std::string> v = {"comply", "refuse", "safe_complete"};
  return v;
}

const Category* Spec::category(const std::string& n) const {
  for (const auto& c : categories)
    if (c.name == n) return &c;
  return nullptr;
}

int64_t Spec::case_index(const std::string& cid) const {
  for (size_t i = 0; i < cases.size(); ++i)
    if (cases[i].id == cid) return static_cast<int64_t>(i);
  return -1;
}

// ---------------------------------------------------------------- hashing

uint64_t fnv1a64(const std::string& bytes, uint64_t h) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string fnv1a64_hex(const std::string& bytes) {
  char out[40];
  std::snprintf(out, sizeof out, "fnv1a64:%016llx", static_cast<unsigned long long>(fnv1a64(bytes)));
  return out;
}

uint64_t derive_seed(uint64_t base, const std::string& key) {
  return util::splitmix64(base ^ fnv1a64(key));
}

// ---------------------------------------------------------------- validation

namespace {

// Collects problems with key paths while reading one spec.
struct Checker {
  std::vector<std::string> problems;

  void problem(const std::string& s) { problems.push_back(s); }

  static std::string at(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  void keys(const json& obj, const std::string& path, const std::vector<std::string>& allowed) {
    for (auto it = obj.begin(); it != obj.end(); ++it)
      if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end())
        problem("unknown key '" + at(path, it.key()) + "' (valid keys here: " + util::join(allowed) + ")");
  }

  // A non-empty string (required) or absent/empty (optional).
  std::string str(const json& obj, const std::string& path, const std::string& key, bool required) {
    if (!obj.contains(key)) {
      if (required) problem("'" + at(path, key) + "' is missing (a non-empty string)");
      return "";
    }
    const json& v = obj.at(key);
    if (!v.is_string()) {
      problem("'" + at(path, key) + "' must be a string, got " + v.dump());
      return "";
    }
    std::string s = util::trim(v.get<std::string>());
    if (required && s.empty()) problem("'" + at(path, key) + "' must not be empty");
    return s;
  }

  std::vector<std::string> str_list(const json& obj, const std::string& path, const std::string& key, bool required) {
    std::vector<std::string> out;
    if (!obj.contains(key)) {
      if (required) problem("'" + at(path, key) + "' is missing (a non-empty list of strings)");
      return out;
    }
    const json& v = obj.at(key);
    if (!v.is_array()) {
      problem("'" + at(path, key) + "' must be a list of strings, got " + v.dump());
      return out;
    }
    if (required && v.empty()) problem("'" + at(path, key) + "' must not be empty");
    for (size_t i = 0; i < v.size(); ++i) {
      const std::string p = at(path, key) + "[" + std::to_string(i) + "]";
      if (!v[i].is_string()) {
        problem("'" + p + "' must be a string, got " + v[i].dump());
        continue;
      }
      std::string s = util::trim(v[i].get<std::string>());
      if (s.empty()) problem("'" + p + "' must not be empty");
      out.push_back(s);
    }
    return out;
  }

  const json* object(const json& obj, const std::string& path, const std::string& key, bool required) {
    if (!obj.contains(key)) {
      if (required) problem("'" + at(path, key) + "' is missing (an object)");
      return nullptr;
    }
    const json& v = obj.at(key);
    if (!v.is_object()) {
      problem("'" + at(path, key) + "' must be an object, got " + v.dump());
      return nullptr;
    }
    return &v;
  }
};

void parse_explicit(const json& j, Spec& s, Checker& c) {
  c.keys(j, "", {"format_version", "kind", "name", "description", "objectives", "categories", "defaults", "style"});
  s.objectives = c.str_list(j, "", "objectives", true);
  s.defaults = c.str_list(j, "", "defaults", true);
  std::set<std::string> rule_ids;
  if (const json* cats = c.object(j, "", "categories", true)) {
    if (cats->empty()) c.problem("'categories' must declare at least one category");
    for (auto it = cats->begin(); it != cats->end(); ++it) {
      const std::string path = "categories." + it.key();
      Category cat;
      cat.name = it.key();
      if (!util::valid_name(cat.name)) c.problem("category name '" + cat.name + "' must use letters, digits, '_', '-', '.'");
      if (!it.value().is_object()) {
        c.problem("'" + path + "' must be an object with 'title' and 'rules', got " + it.value().dump());
        continue;
      }
      const json& o = it.value();
      c.keys(o, path, {"title", "rules"});
      cat.title = c.str(o, path, "title", true);
      if (!o.contains("rules") || !o["rules"].is_array() || o["rules"].empty()) {
        c.problem("'" + path + ".rules' must be a non-empty list of {id, text, allowed} objects");
      } else {
        for (size_t i = 0; i < o["rules"].size(); ++i) {
          const json& r = o["rules"][i];
          const std::string rp = path + ".rules[" + std::to_string(i) + "]";
          if (!r.is_object()) {
            c.problem("'" + rp + "' must be an object {id, text, allowed}, got " + r.dump());
            continue;
          }
          c.keys(r, rp, {"id", "text", "allowed", "conditional"});
          Rule rule;
          rule.id = c.str(r, rp, "id", true);
          rule.text = c.str(r, rp, "text", true);
          rule.allowed = c.str(r, rp, "allowed", false);
          rule.conditional = c.str(r, rp, "conditional", false);
          if (!rule.id.empty() && !rule_ids.insert(rule.id).second)
            c.problem("'" + rp + ".id' repeats the rule id '" + rule.id + "'");
          cat.rules.push_back(rule);
        }
      }
      s.categories.push_back(std::move(cat));
    }
  }
  if (const json* st = c.object(j, "", "style", true)) {
    c.keys(*st, "style", {"refusal", "categories"});
    s.refusal_style = c.str_list(*st, "style", "refusal", true);
    if (const json* sc = c.object(*st, "style", "categories", false)) {
      for (auto it = sc->begin(); it != sc->end(); ++it) {
        auto lines = c.str_list(*sc, "style.categories", it.key(), true);
        bool found = false;
        for (auto& cat : s.categories)
          if (cat.name == it.key()) {
            cat.style = lines;
            found = true;
          }
        if (!found) c.problem("'style.categories." + it.key() + "' names a category not declared in 'categories'");
      }
    }
  }
}

void parse_cases(const json& j, Spec& s, Checker& c) {
  c.keys(j, "", {"format_version", "kind", "name", "description", "codes", "categories", "cases", "default_cases"});
  s.codes = c.str_list(j, "", "codes", true);
  if (const json* cats = c.object(j, "", "categories", true)) {
    if (cats->empty()) c.problem("'categories' must declare at least one category");
    for (auto it = cats->begin(); it != cats->end(); ++it) {
      Category cat;
      cat.name = it.key();
      if (!util::valid_name(cat.name)) c.problem("category name '" + cat.name + "' must use letters, digits, '_', '-', '.'");
      cat.title = c.str(*cats, "categories", it.key(), true);
      s.categories.push_back(std::move(cat));
    }
  }
  std::set<std::string> ids;
  if (!j.contains("cases") || !j["cases"].is_array() || j["cases"].empty()) {
    c.problem("'cases' must be a non-empty list of {id, category, request, reasoning, verdict} objects");
  } else {
    for (size_t i = 0; i < j["cases"].size(); ++i) {
      const json& o = j["cases"][i];
      const std::string path = "cases[" + std::to_string(i) + "]";
      if (!o.is_object()) {
        c.problem("'" + path + "' must be an object, got " + o.dump());
        continue;
      }
      c.keys(o, path, {"id", "category", "request", "reasoning", "verdict", "response"});
      Case cs;
      cs.id = c.str(o, path, "id", true);
      cs.category = c.str(o, path, "category", true);
      cs.request = c.str(o, path, "request", true);
      cs.reasoning = c.str(o, path, "reasoning", true);
      cs.verdict = c.str(o, path, "verdict", true);
      cs.response = c.str(o, path, "response", false);
      if (!cs.id.empty() && !ids.insert(cs.id).second) c.problem("'" + path + ".id' repeats the case id '" + cs.id + "'");
      if (!cs.category.empty() && !s.category(cs.category))
        c.problem("'" + path + ".category' is '" + cs.category + "', which 'categories' does not declare");
      if (!cs.verdict.empty() && std::find(verdicts().begin(), verdicts().end(), cs.verdict) == verdicts().end())
        c.problem("'" + path + ".verdict' is '" + cs.verdict + "'; expected one of: " + util::join(verdicts()));
      s.cases.push_back(std::move(cs));
    }
  }
  s.default_cases = c.str_list(j, "", "default_cases", false);
  for (size_t i = 0; i < s.default_cases.size(); ++i)
    if (!s.default_cases[i].empty() && !ids.count(s.default_cases[i]))
      c.problem("'default_cases[" + std::to_string(i) + "]' names the unknown case '" + s.default_cases[i] + "'");
}

}  // namespace

Spec parse_spec(const json& j, const std::string& source) {
  CADA_CHECK(j.is_object(), source, ": a specification must be a JSON object");
  Spec s;
  s.source = source;
  Checker c;
  if (!j.contains("format_version")) {
    c.problem("'format_version' is missing (expected " + std::to_string(kSpecFormatVersion) + ")");
  } else if (!j["format_version"].is_number_integer()) {
    c.problem("'format_version' must be an integer, got " + j["format_version"].dump());
  } else if (j["format_version"].get<int64_t>() != kSpecFormatVersion) {
    c.problem("'format_version' is " + j["format_version"].dump() + "; this cada reads version " +
              std::to_string(kSpecFormatVersion));
  }
  s.kind = c.str(j, "", "kind", true);
  s.name = c.str(j, "", "name", true);
  if (!s.name.empty() && !util::valid_name(s.name)) c.problem("'name' must use letters, digits, '_', '-', '.' only");
  s.description = c.str(j, "", "description", false);
  if (s.kind == "explicit") {
    parse_explicit(j, s, c);
  } else if (s.kind == "cases") {
    parse_cases(j, s, c);
  } else if (!s.kind.empty()) {
    c.problem("'kind' is '" + s.kind + "'; expected one of: explicit, cases");
  }
  if (!c.problems.empty()) {
    std::string msg = source + ": " + std::to_string(c.problems.size()) + " problem(s) in the specification:";
    for (const auto& p : c.problems) msg += "\n  - " + p;
    throw Error(msg);
  }
  s.hash = fnv1a64_hex(j.dump());  // keys sorted: comments and layout do not change the id
  return s;
}

Spec load_spec(const std::string& path) { return parse_spec(config::load_file(path), path); }

// ---------------------------------------------------------------- TF-IDF

std::vector<std::string> bag_of_words(const std::string& text) {
  static const std::set<std::string> stop = {
      "a",     "an",    "the",  "of",   "to",    "in",   "on",    "for",  "and",   "or",    "is",   "are",
      "be",    "my",    "me",   "i",    "you",   "your", "it",    "this", "that",  "with",  "how",  "what",
      "do",    "does",  "can",  "at",   "by",    "from", "as",    "into", "so",    "if",    "about", "his",
      "her",   "their", "our",  "we",   "they",  "he",   "she",   "them", "was",   "were",  "will", "would",
      "should", "could", "please", "just", "am",  "im",   "s",     "t",    "m",     "its",   "who",  "which",
      "there", "some",  "any",  "all",   "write", "tell", "give",  "show", "explain", "help", "want", "need",
      "know",  "like",  "way",  "hi",   "hey",   "thanks", "thank", "much", "quick", "question", "short",
      "keep",  "answer", "assistant", "urgent", "fast", "honest", "curious", "really"};
  std::vector<std::string> out;
  std::string w;
  auto flush = [&]() {
    if (!w.empty()) {
      bool digits = std::all_of(w.begin(), w.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); });
      if (!digits && !stop.count(w)) out.push_back(w);
      w.clear();
    }
  };
  for (unsigned char ch : text) {
    if (std::isalnum(ch)) w += static_cast<char>(std::tolower(ch));
    else flush();
  }
  flush();
  return out;
}

TfidfIndex::TfidfIndex(const std::vector<std::string>& documents) : n_(documents.size()) {
  std::vector<std::map<std::string, double>> tf(documents.size());
  for (size_t i = 0; i < documents.size(); ++i) {
    for (const auto& w : bag_of_words(documents[i])) tf[i][w] += 1.0;
    for (const auto& [w, c] : tf[i]) df_[w] += 1;
  }
  for (auto& t : tf) {
    double norm = 0;
    for (auto& [w, c] : t) {
      c *= idf(w);
      norm += c * c;
    }
    norm = std::sqrt(norm);
    if (norm > 0)
      for (auto& [w, c] : t) c /= norm;
    docs_.push_back(std::move(t));
  }
}

double TfidfIndex::idf(const std::string& word) const {
  auto it = df_.find(word);
  const double df = it == df_.end() ? 0.0 : static_cast<double>(it->second);
  return std::log((1.0 + static_cast<double>(n_)) / (1.0 + df)) + 1.0;
}

TfidfIndex::Vec TfidfIndex::vectorize(const std::string& text) const {
  Vec v;
  for (const auto& w : bag_of_words(text)) v[w] += 1.0;
  double norm = 0;
  for (auto& [w, c] : v) {
    c *= idf(w);
    norm += c * c;
  }
  norm = std::sqrt(norm);
  if (norm > 0)
    for (auto& [w, c] : v) c /= norm;
  return v;
}

static double dot(const std::map<std::string, double>& a, const std::map<std::string, double>& b) {
  double s = 0;
  auto i = a.begin();
  auto j = b.begin();
  while (i != a.end() && j != b.end()) {
    if (i->first < j->first) ++i;
    else if (j->first < i->first) ++j;
    else {
      s += i->second * j->second;
      ++i;
      ++j;
    }
  }
  return s;
}

double TfidfIndex::similarity(const std::string& query, size_t i) const {
  CADA_CHECK(i < docs_.size(), "TfidfIndex: document ", i, " of ", docs_.size());
  return dot(vectorize(query), docs_[i]);
}

std::vector<std::pair<size_t, double>> TfidfIndex::rank(const std::string& query) const {
  const Vec q = vectorize(query);
  std::vector<std::pair<size_t, double>> out;
  for (size_t i = 0; i < docs_.size(); ++i) out.push_back({i, dot(q, docs_[i])});
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second > b.second + 1e-12; });
  return out;
}

// ---------------------------------------------------------------- case selection

void check_case_options(const CaseSelectOptions& o, const std::string& prefix, std::vector<std::string>& problems) {
  if (o.k < 1) problems.push_back("'" + prefix + "k' must be >= 1, got " + std::to_string(o.k));
  if (!(o.min_similarity >= 0.0 && o.min_similarity <= 1.0))
    problems.push_back("'" + prefix + "min_similarity' must be in [0, 1], got " + std::to_string(o.min_similarity));
}

static std::vector<std::string> requests_of(const Spec& spec) {
  std::vector<std::string> r;
  for (const auto& c : spec.cases) r.push_back(c.request);
  return r;
}

CaseSelector::CaseSelector(const Spec& spec, CaseSelectOptions opts)
    : spec_(&spec), opts_(std::move(opts)), index_(requests_of(spec)) {
  CADA_CHECK(opts_.k >= 1, spec.source, ": case selection needs k >= 1, got ", opts_.k);
}

std::vector<size_t> CaseSelector::retrieve(const std::string& prompt) const {
  const size_t k = static_cast<size_t>(opts_.k);
  std::vector<size_t> out;
  for (const auto& [i, sim] : index_.rank(prompt)) {
    if (out.size() >= k || sim <= 0 || sim < opts_.min_similarity) break;
    out.push_back(i);
  }
  for (const auto& id : spec_->default_cases) {
    if (out.size() >= k) break;
    const int64_t i = spec_->case_index(id);
    if (i >= 0 && std::find(out.begin(), out.end(), size_t(i)) == out.end()) out.push_back(size_t(i));
  }
  return out;
}

std::vector<size_t> CaseSelector::select(const std::string& prompt, const std::string& category,
                                         const std::string& key) const {
  const size_t k = static_cast<size_t>(opts_.k);
  if (opts_.retrieval != "always" && spec_->category(category)) {
    std::vector<size_t> idx;
    for (size_t i = 0; i < spec_->cases.size(); ++i)
      if (spec_->cases[i].category == category) idx.push_back(i);
    if (opts_.order == "sample" && idx.size() > k) {
      std::mt19937_64 rng(derive_seed(opts_.seed, key));
      for (size_t i = 0; i < k; ++i) std::swap(idx[i], idx[i + rng() % (idx.size() - i)]);
      idx.resize(k);
      std::sort(idx.begin(), idx.end());
    }
    if (idx.size() > k) idx.resize(k);
    return idx;
  }
  if (opts_.retrieval == "off") {
    std::vector<size_t> out;
    for (const auto& id : spec_->default_cases) {
      if (out.size() >= k) break;
      const int64_t i = spec_->case_index(id);
      if (i >= 0) out.push_back(size_t(i));
    }
    return out;
  }
  return retrieve(prompt);
}

// ---------------------------------------------------------------- rendering

namespace {

// The explicit layout: a rules section and the style lines for each category `shown` accepts,
// holding the rules `keep` accepts; style lines prefixed with the category title when `titled`.
template <class Keep, class Shown>
std::string render_explicit_with(const Spec& spec, Keep keep, Shown styled, bool titled) {
  CADA_CHECK(spec.kind == "explicit", spec.source, ": render_explicit needs an explicit specification, got kind '",
             spec.kind, "'");
  std::string out = "## Objectives\n";
  for (size_t i = 0; i < spec.objectives.size(); ++i) out += std::to_string(i + 1) + ". " + spec.objectives[i] + "\n";
  for (size_t c = 0; c < spec.categories.size(); ++c) {
    const auto& cat = spec.categories[c];
    if (!styled(c)) continue;
    out += "\n## Rules: " + cat.title + "\n";
    for (size_t k = 0; k < cat.rules.size(); ++k) {
      if (!keep(c, k)) continue;
      const Rule& r = cat.rules[k];
      out += "- " + r.id + ": " + r.text;
      if (!r.allowed.empty()) out += " Allowed: " + r.allowed + ".";
      if (!r.conditional.empty()) out += " Only when: " + r.conditional + ".";
      out += "\n";
    }
  }
  out += "\n## Defaults\n";
  for (const auto& d : spec.defaults) out += "- " + d + "\n";
  out += "\n## Style\n";
  for (const auto& d : spec.refusal_style) out += "- " + d + "\n";
  for (size_t c = 0; c < spec.categories.size(); ++c)
    if (styled(c))
      for (const auto& d : spec.categories[c].style)
        out += "- " + (titled ? spec.categories[c].title + ": " : std::string()) + d + "\n";
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

std::string render_explicit(const Spec& spec, const std::string& category, bool all_rules) {
  auto mine = [&](size_t c) { return all_rules || spec.categories[c].name == category; };
  return render_explicit_with(spec, [&](size_t c, size_t) { return mine(c); }, mine, all_rules);
}

std::string render_explicit_rules(const Spec& spec, const std::vector<RuleRef>& rules) {
  for (const auto& [c, r] : rules)
    CADA_CHECK(c < spec.categories.size() && r < spec.categories[c].rules.size(), spec.source, ": rule (", c, ", ",
               r, ") out of range");
  auto keep = [&](size_t c, size_t r) { return std::find(rules.begin(), rules.end(), RuleRef{c, r}) != rules.end(); };
  auto styled = [&](size_t c) {
    return std::any_of(rules.begin(), rules.end(), [&](const RuleRef& x) { return x.first == c; });
  };
  return render_explicit_with(spec, keep, styled, /*titled=*/true);
}

std::string render_cases(const Spec& spec, const std::vector<size_t>& cases) {
  CADA_CHECK(spec.kind == "cases", spec.source, ": render_cases needs a cases specification, got kind '", spec.kind,
             "'");
  std::string out = "## Codes\n";
  for (size_t i = 0; i < spec.codes.size(); ++i) out += std::to_string(i + 1) + ". " + spec.codes[i] + "\n";
  if (!cases.empty()) out += "\n## Cases\n";
  bool first = true;
  for (size_t i : cases) {
    CADA_CHECK(i < spec.cases.size(), spec.source, ": case index ", i, " out of range (", spec.cases.size(), " cases)");
    const Case& c = spec.cases[i];
    if (!first) out += "\n";
    first = false;
    out += "Case " + c.id + "\n";
    out += "Request: " + c.request + "\n";
    out += "Reasoning: " + c.reasoning + "\n";
    out += "Verdict: " + c.verdict + "\n";
    if (!c.response.empty()) out += "Response: " + c.response + "\n";
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace cada::safety
