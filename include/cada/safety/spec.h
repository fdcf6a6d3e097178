// Safety specifications: the text a policy reasons over while it generates training chains
// (data/specs, documented in data/specs/README.md and docs/safety.md).
//
// Two kinds, one JSON file each, both with "format_version": 1:
//
//   explicit  a code-like specification: objectives, numbered rules per hazard category
//             ("VW-2: Do not ... Allowed: ..."), defaults (what to do when no rule applies) and
//             style (how to refuse; per-category additions such as self-harm's crisis help);
//   cases     a few simple codes plus precedent cases (request, reasoning, verdict in
//             {comply, refuse, safe_complete}), each attached to one category, with an optional
//             default set for prompts of no known category.
//
//   auto spec = cada::safety::load_spec("data/specs/cases.json");   // validated; throws naming file and key
//   spec.id();                                                        // "tiny-cases@fnv1a64:0123456789abcdef"
//   cada::safety::CaseSelector sel(spec, {/*k=*/3});
//   auto picked = sel.select(prompt_text, category, prompt_id);      // indices into spec.cases
//   std::string text = cada::safety::render_cases(spec, picked);
//
// Rendering is category-conditional: only the prompt's category's rules / cases are inserted
// with the general parts; for a prompt whose category the spec does not know (benign topics,
// borderline prompts, unlabeled data) the explicit spec renders its general parts only and the
// cases spec retrieves the most similar cases (bag-of-words TF-IDF cosine) or its default set.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace cada::safety {

constexpr int kSpecFormatVersion = 1;

struct Rule {
  std::string id;        // "VW-2"
  std::string text;      // what is forbidden (or required)
  std::string allowed;   // what stays allowed ("" = nothing stated)
  std::string conditional;  // what is allowed only under a stated condition ("" = none)
};

struct Category {
  std::string name;                // "violence_weapons" (the prompts' `category`)
  std::string title;               // "Violence and weapons"
  std::vector<Rule> rules;         // explicit only
  std::vector<std::string> style;  // explicit only: style lines added for this category
};

struct Case {
  std::string id;         // unique in the spec
  std::string category;   // a category of the spec
  std::string request;    // the precedent request (placeholders only)
  std::string reasoning;  // why the verdict
  std::string verdict;    // comply | refuse | safe_complete
  std::string response;   // optional example answer ("" = none)
};

struct Spec {
  int format_version = kSpecFormatVersion;
  std::string kind;                        // "explicit" | "cases"
  std::string name;                        // letters, digits, '_', '-', '.'
  std::string description;
  std::string source;                      // the file (or label) it was read from
  std::string hash;                        // "fnv1a64:<16 hex>" of the canonical JSON (comments and layout do not count)
  // explicit
  std::vector<std::string> objectives;
  std::vector<std::string> defaults;
  std::vector<std::string> refusal_style;  // style.refusal: general refusal style lines
  // both kinds (a cases spec gives titles only)
  std::vector<Category> categories;        // in file order
  // cases
  std::vector<std::string> codes;
  std::vector<Case> cases;                 // in file order
  std::vector<std::string> default_cases;  // case ids for prompts of no known category

  // "<name>@<hash>": names the exact specification a chain was generated with.
  std::string id() const { return name + "@" + hash; }
  // The category `name`, or null when the spec does not know it.
  const Category* category(const std::string& name) const;
  // Index of case `id` in `cases`, or -1.
  int64_t case_index(const std::string& id) const;
};

// The valid verdicts: comply, refuse, safe_complete.
const std::vector<std::string>& verdicts();

// Reads a spec file (JSON; // and /* */ comments allowed) and validates it. Every problem
// (unknown keys, wrong types, missing fields, bad verdicts, duplicate ids, cases naming
// undeclared categories, default_cases naming unknown cases, an unsupported format_version)
// is listed in one cada::Error naming the file and the key path, e.g.
//   data/specs/cases.json: 1 problem(s) in the specification:
//     - cases[3].verdict is 'maybe'; expected one of: comply, refuse, safe_complete
Spec load_spec(const std::string& path);
// Validates a parsed spec; `source` names it in errors.
Spec parse_spec(const nlohmann::json& j, const std::string& source);

// FNV-1a 64-bit hash of a byte string, and its "fnv1a64:<16 hex>" form.
uint64_t fnv1a64(const std::string& bytes, uint64_t h = 1469598103934665603ull);
std::string fnv1a64_hex(const std::string& bytes);
// splitmix64 finaliser of (base ^ fnv1a64(key)): independent, reproducible seeds per key.
uint64_t derive_seed(uint64_t base, const std::string& key);

// ---------------------------------------------------------------- similarity

// Lower-cased alphanumeric words of `text` (runs of ASCII letters and digits; other bytes split
// words), without pure numbers and without a short list of English stop words. Placeholders
// such as "[DRUG-5]" give "drug".
std::vector<std::string> bag_of_words(const std::string& text);

// TF-IDF vectors over a fixed set of documents (the case requests): term frequency = raw
// count, idf = ln((1 + N) / (1 + df)) + 1 (scikit-learn's smoothed idf), cosine similarity.
// Query words that occur in no document have the idf of df = 0.
class TfidfIndex {
 public:
  explicit TfidfIndex(const std::vector<std::string>& documents);
  size_t size() const { return docs_.size(); }
  // Cosine similarity of `query` with document i, in [0, 1].
  double similarity(const std::string& query, size_t i) const;
  // Every document as (index, similarity), most similar first; ties keep document order.
  std::vector<std::pair<size_t, double>> rank(const std::string& query) const;

 private:
  using Vec = std::map<std::string, double>;
  Vec vectorize(const std::string& text) const;  // L2-normalised
  double idf(const std::string& word) const;
  size_t n_ = 0;
  std::map<std::string, int64_t> df_;
  std::vector<Vec> docs_;
};

// ---------------------------------------------------------------- case selection

struct CaseSelectOptions {
  int64_t k = 3;                        // cases per prompt
  std::string order = "spec";           // spec | sample: which k of the category's cases
  uint64_t seed = 0;                    // for order = sample (mixed with the prompt id)
  std::string retrieval = "fallback";   // off | fallback | always
  double min_similarity = 0.1;          // retrieved cases need a cosine >= this (and > 0)
  template <class V> void visit(V& v) {
    v("k", k, "cases inserted per prompt (>= 1)");
    v("order", order, "spec: the category's first k cases in file order; sample: k of them, seeded per prompt",
      {"spec", "sample"});
    v("seed", seed, "seed of order = sample (mixed with the prompt id, so each prompt gets its own draw)");
    v("retrieval", retrieval,
      "off: unknown categories get the default set; fallback: unknown categories get the k most similar cases "
      "(TF-IDF cosine); always: every prompt gets the k most similar cases of the whole spec",
      {"off", "fallback", "always"});
    v("min_similarity", min_similarity, "retrieved cases need at least this TF-IDF cosine (and > 0); the rest of k "
      "comes from the spec's default_cases");
  }
};

// Chooses the cases inserted for one prompt (indices into spec.cases, in the order rendered):
//   - a category the spec knows (retrieval != always): k of its cases, the first k in file order
//     (order = spec, then in file order) or k drawn without replacement with a generator seeded
//     by derive_seed(seed, key) (order = sample, kept in file order);
//   - a category the spec does not know: retrieval off -> default_cases (first k);
//     fallback -> the k most similar cases with similarity > 0 and >= min_similarity, most
//     similar first, filled with default_cases when fewer match;
//   - retrieval always -> the k most similar cases of the whole spec, as fallback does.
// Deterministic: the same (prompt, category, key) always gives the same cases.
class CaseSelector {
 public:
  CaseSelector(const Spec& spec, CaseSelectOptions opts);
  std::vector<size_t> select(const std::string& prompt, const std::string& category, const std::string& key) const;
  // The top-k retrieval alone (similarity > 0 and >= min_similarity, then default_cases).
  std::vector<size_t> retrieve(const std::string& prompt) const;
  const CaseSelectOptions& options() const { return opts_; }

 private:
  const Spec* spec_;
  CaseSelectOptions opts_;
  TfidfIndex index_;
};

// Checks options against a spec-free view (k >= 1); appends problems prefixed with `prefix`.
void check_case_options(const CaseSelectOptions& o, const std::string& prefix, std::vector<std::string>& problems);

// ---------------------------------------------------------------- rendering

// The explicit spec as text, for a prompt of `category`: objectives, the rules of that
// category only (every category's rules when all_rules), defaults, and style (the general
// refusal lines plus that category's lines). Markdown-like layout:
//
//   ## Objectives
//   1. ...
//   ## Rules: Violence and weapons
//   - VW-1: Do not ... Allowed: ...
//   ## Defaults
//   - ...
//   ## Style
//   - ...
std::string render_explicit(const Spec& spec, const std::string& category, bool all_rules = false);

// The cases spec as text: the codes and the given cases (indices into spec.cases):
//
//   ## Codes
//   1. ...
//   ## Cases
//   Case VW-c
//   Request: ...
//   Reasoning: ...
//   Verdict: comply
std::string render_cases(const Spec& spec, const std::vector<size_t>& cases);

}  // namespace cada::safety
