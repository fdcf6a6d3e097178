// Retrieved rules for the explicit arm (the cases arm's budget and retriever).
#include "cada/safety/rule_select.h"

#include <algorithm>

#include "cada/util/error.h"

namespace cada::safety {

namespace {

std::vector<RuleRef> all_rules(const Spec& spec) {
  std::vector<RuleRef> out;
  for (size_t c = 0; c < spec.categories.size(); ++c)
    for (size_t r = 0; r < spec.categories[c].rules.size(); ++r) out.emplace_back(c, r);
  return out;
}

std::vector<std::string> rule_documents(const Spec& spec, const std::vector<RuleRef>& rules) {
  std::vector<std::string> docs;
  for (const auto& [c, r] : rules) {
    const Rule& x = spec.categories[c].rules[r];
    docs.push_back(x.text + " " + x.allowed + " " + x.conditional);
  }
  return docs;
}

}  // namespace

RuleSelector::RuleSelector(const Spec& spec, const CaseSelectOptions& budget)
    : spec_(&spec),
      k_(static_cast<size_t>(std::max<int64_t>(budget.k, 0))),
      min_similarity_(budget.min_similarity),
      rules_(all_rules(spec)),
      index_(rule_documents(spec, rules_)) {
  CADA_CHECK(spec.kind == "explicit", spec.source, ": rules \"retrieved\" needs an explicit specification");
  CADA_CHECK(budget.k >= 1, spec.source, ": rules \"retrieved\" needs cases.k >= 1 (the retrieval budget), got ",
             budget.k);
  CADA_CHECK(!rules_.empty(), spec.source, ": the specification has no rules to retrieve");
}

std::vector<RuleRef> RuleSelector::select(const std::string& prompt) const {
  std::vector<size_t> picked;
  for (const auto& [i, sim] : index_.rank(prompt)) {
    if (picked.size() >= k_ || sim <= 0 || sim < min_similarity_) break;
    picked.push_back(i);
  }
  for (size_t i = 0; i < rules_.size() && picked.size() < k_; ++i)
    if (std::find(picked.begin(), picked.end(), i) == picked.end()) picked.push_back(i);
  std::sort(picked.begin(), picked.end());  // file order
  std::vector<RuleRef> out;
  for (size_t i : picked) out.push_back(rules_[i]);
  return out;
}

}  // namespace cada::safety
