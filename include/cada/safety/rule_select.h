// The explicit arm with the cases arm's retrieval budget (prompt.rules = "retrieved"): instead
// of every rule, each prompt sees the k rules most similar to its request, k and the similarity
// floor being the cases arm's (cases.k, cases.min_similarity). The retriever is the cases arm's
// (TfidfIndex, spec.h) over each rule's text with its allowed and conditional clauses. Rules with
// similarity > 0 and >= min_similarity come first, most similar first; the rest of k is filled
// with the spec's rules in file order, so every prompt sees exactly k rules (the cases arm sees
// exactly k cases). No label or category is read.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "cada/safety/spec.h"

namespace cada::safety {

using RuleRef = std::pair<size_t, size_t>;  // (category index, rule index) in the spec

class RuleSelector {
 public:
  RuleSelector(const Spec& spec, const CaseSelectOptions& budget);
  // The k rules for `prompt`, in the spec's file order (rendering order).
  std::vector<RuleRef> select(const std::string& prompt) const;

 private:
  const Spec* spec_;
  size_t k_;
  double min_similarity_;
  std::vector<RuleRef> rules_;  // every rule, in file order (the index documents)
  TfidfIndex index_;
};

// The explicit spec as render_explicit lays it out, with only the given rules (under their
// categories' titles) and the style lines of those categories.
std::string render_explicit_rules(const Spec& spec, const std::vector<RuleRef>& rules);

}  // namespace cada::safety
