// Prompt builders for the none / explicit / cases settings.
#include "cada/safety/prompt.h"

#include <algorithm>

#include "cada/text/records.h"
#include "cada/util/error.h"

namespace cada::safety {

using nlohmann::json;

const std::vector<std::string>& settings() {
  static const std::vector<std::string> s = {"none", "explicit", "cases"};
  return s;
}

std::string default_instructions(const std::string& setting, const std::string& style, const std::string& rules) {
  if (setting == "none") return "";
  CADA_CHECK(setting == "explicit" || setting == "cases", "unknown setting '", setting,
             "'; expected one of: none, explicit, cases");
  // rules "all": one text for both settings, so the arms differ only in the specification.
  const std::string what = rules != "category"     ? "which parts of the specification apply (cite their ids)"
                           : setting == "explicit" ? "which rules apply (cite ids)"
                                                   : "which codes and cases apply (cite case ids)";
  std::string s;
  if (style == "think") {
    s = "First think inside <think> </think>: " + what +
        "? Comply, refuse, or help with the safe part only? Then give the final answer";
  } else if (style == "sections") {
    s = "First think under a line \"### Analysis\": " + what +
        "? Comply, refuse, or help with the safe part only? Then give the final answer under a line "
        "\"### Final Response\"";
  } else {
    CADA_FAIL("unknown response style '", style, "'; expected think or sections");
  }
  return s + ", without citing the rules.";
}

PromptBuilder::PromptBuilder(PromptOptions opts, std::shared_ptr<const Spec> spec)
    : opts_(std::move(opts)), spec_(std::move(spec)) {
  const auto& st = settings();
  CADA_CHECK(std::find(st.begin(), st.end(), opts_.setting) != st.end(), "unknown setting '", opts_.setting,
             "'; expected one of: none, explicit, cases");
  CADA_CHECK(opts_.format.style == "think" || opts_.format.style == "sections", "prompt.style is '",
             opts_.format.style, "'; expected think or sections");
  if (opts_.setting == "none") return;
  CADA_CHECK(spec_ != nullptr, "the ", opts_.setting, " setting needs a specification");
  CADA_CHECK(spec_->kind == opts_.setting, spec_->source, ": the ", opts_.setting, " setting needs a spec of kind '",
             opts_.setting, "', but this one is '", spec_->kind, "'");
  if (opts_.setting == "cases") selector_ = std::make_unique<CaseSelector>(*spec_, opts_.cases);
  if (opts_.setting == "explicit" && opts_.format.rules == "retrieved")
    rule_selector_ = std::make_unique<RuleSelector>(*spec_, opts_.cases);
}

BuiltPrompt PromptBuilder::build(const std::vector<text::Message>& original, const std::string& category,
                                 const std::string& key) const {
  CADA_CHECK(!original.empty(), "prompt '", key, "': the conversation is empty");
  BuiltPrompt p;
  p.response_prefix = opts_.format.response_prefix;
  if (opts_.setting == "none") {
    p.messages = original;
    return p;
  }
  if (rule_selector_) {
    const auto picked = rule_selector_->select(last_user_text(original));
    for (const auto& [c, r] : picked) p.rule_ids.push_back(spec_->categories[c].rules[r].id);
    p.spec_text = render_explicit_rules(*spec_, picked);
  } else if (opts_.setting == "explicit") {
    p.spec_text = render_explicit(*spec_, category, opts_.format.rules == "all");
  } else {
    const auto picked = selector_->select(last_user_text(original), category, key);
    for (size_t i : picked) p.case_ids.push_back(spec_->cases[i].id);
    p.spec_text = render_cases(*spec_, picked);
  }
  const std::string instr = opts_.format.instructions.empty()
                                ? default_instructions(opts_.setting, opts_.format.style, opts_.format.rules)
                                : opts_.format.instructions;
  p.system = p.spec_text + (instr.empty() ? "" : "\n\n" + instr);
  size_t first = 0;
  std::string sys = p.system;
  if (original[0].role == "system") {
    sys += "\n\n" + original[0].content;
    first = 1;
  }
  p.messages.push_back({"system", sys});
  for (size_t i = first; i < original.size(); ++i) p.messages.push_back(original[i]);
  return p;
}

std::string PromptBuilder::render(const BuiltPrompt& p, const text::ChatTemplate& tmpl) const {
  return tmpl.render(p.messages, /*add_generation_prompt=*/true) + p.response_prefix;
}

std::vector<text::Message> record_messages(const json& rec, const std::string& where) {
  CADA_CHECK(rec.is_object(), where, ": expected a JSON object");
  std::vector<text::Message> msgs;
  if (rec.contains("messages")) {
    return text::parse_messages(rec["messages"], where);
  }
  CADA_CHECK(rec.contains("prompt") && rec["prompt"].is_string(), where,
             ": expected a 'prompt' string or a 'messages' list");
  msgs.push_back({"user", rec["prompt"].get<std::string>()});
  return msgs;
}

json messages_json(const std::vector<text::Message>& msgs) {
  json a = json::array();
  for (const auto& m : msgs) a.push_back({{"role", m.role}, {"content", m.content}});
  return a;
}

std::string last_user_text(const std::vector<text::Message>& msgs) {
  for (auto it = msgs.rbegin(); it != msgs.rend(); ++it)
    if (it->role == "user") return it->content;
  return "";
}

}  // namespace cada::safety
