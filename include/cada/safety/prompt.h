// Prompt builders for the safety-reasoning settings (docs/safety.md):
//
//   none      no safety reasoning: the original conversation as is;
//   explicit  a system message holding the explicit specification (all rules by default) and
//             the reasoning instructions, then the original conversation;
//   cases     a system message holding the simple codes, the selected cases and the same
//             instructions, then the original conversation.
//
// The instructions ask for the project's one response structure (text/reasoning.h): style
// `think` ("<think>\nreasoning\n</think>\n\nanswer", the default) or `sections`
// ("### Analysis" / "### Final Response"). An optional response prefix (e.g. "<think>\n") is
// appended after the generation prompt, so the assistant turn starts inside the structure; the
// generated text continues it and the prefix is part of the parsed response.
//
// The instructions are the same for explicit and cases: the two arms' prompts differ only in
// the specification text (tests/safety/hazard_specs_test.cpp diffs them).
//
// The specification lives only in the built prompt. Chain records keep the ORIGINAL messages
// (context distillation: SFT learns the spec-conditioned behaviour without the spec).
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "cada/safety/rule_select.h"
#include "cada/safety/spec.h"
#include "cada/text/chat_template.h"

namespace cada::safety {

// Settings: none, explicit, cases.
const std::vector<std::string>& settings();

struct PromptFormat {
  std::string style = "think";       // think | sections
  std::string response_prefix;       // text the assistant turn starts with ("" = none), e.g. "<think>\n"
  std::string instructions;          // "" = the built-in instructions for the style and setting
  std::string rules = "all";         // explicit: all (the default) | retrieved (the cases arm's budget) | category
  template <class V> void visit(V& v) {
    v("style", style, "response structure asked for and parsed (text/reasoning.h)", {"think", "sections"});
    v("response_prefix", response_prefix,
      "text the assistant turn starts with, after the generation prompt (e.g. \"<think>\\n\"); part of the "
      "stored response");
    v("instructions", instructions, "replaces the built-in reasoning instructions (empty = built-in)");
    v("rules", rules,
      "explicit setting: insert the rules of all categories (every prompt sees every rule and its allowed "
      "clauses); or the cases.k rules most similar to the request (retrieved: the cases arm's budget and "
      "retriever, safety/rule_select.h); or the prompt's category only (reveals the label; benign prompts see no rules)",
      {"all", "retrieved", "category"});
  }
};

struct PromptOptions {
  std::string setting = "explicit";  // none | explicit | cases
  PromptFormat format;
  CaseSelectOptions cases;
};

// The built-in instructions appended after the specification for `setting` and `style`. With
// rules "all" both settings get one text (the arms differ only in the specification); with
// "category", the layout the tiny world's rulebook documents were written in, each setting
// names its own parts ("which rules apply" / "which codes and cases apply").
std::string default_instructions(const std::string& setting, const std::string& style,
                                 const std::string& rules = "all");

struct BuiltPrompt {
  std::vector<text::Message> messages;  // what the model sees (spec + instructions in the system turn)
  std::string system;                   // the system text added ("" for none)
  std::string spec_text;                // the rendered specification alone ("" for none)
  std::vector<std::string> case_ids;    // cases inserted (cases setting)
  std::vector<std::string> rule_ids;    // rules inserted (explicit setting with rules "retrieved")
  std::string response_prefix;          // appended after the generation prompt
};

class PromptBuilder {
 public:
  // spec may be null only for setting none; its kind must match the setting.
  PromptBuilder(PromptOptions opts, std::shared_ptr<const Spec> spec);
  // `original`: the prompt conversation as recorded; `category` the record's category ("" =
  // unknown); `key` the record's id (seeds order = sample). An original system message is kept,
  // after the spec system text (one system turn). Throws cada::Error for an empty conversation.
  BuiltPrompt build(const std::vector<text::Message>& original, const std::string& category,
                    const std::string& key) const;
  // The text the model sees: template(messages, generation prompt) + response_prefix.
  std::string render(const BuiltPrompt& p, const text::ChatTemplate& tmpl) const;
  const PromptOptions& options() const { return opts_; }
  const Spec* spec() const { return spec_.get(); }

 private:
  PromptOptions opts_;
  std::shared_ptr<const Spec> spec_;
  std::unique_ptr<CaseSelector> selector_;
  std::unique_ptr<RuleSelector> rule_selector_;  // explicit with rules "retrieved"
};

// The prompt conversation of a prompt record: `messages` ([{role, content}]) or `prompt` (one
// user turn). `where` names the record in errors ("prompts.jsonl:3").
std::vector<text::Message> record_messages(const nlohmann::json& rec, const std::string& where);
nlohmann::json messages_json(const std::vector<text::Message>& msgs);
// Content of the last user message ("" when none).
std::string last_user_text(const std::vector<text::Message>& msgs);

}  // namespace cada::safety
