// The Jinja chat template of a model folder, rendered as transformers' apply_chat_template
// renders it (tokenize=False): messages without their null fields, reasoning aliased,
// tools (or None), documents=None, add_generation_prompt, the special tokens and the
// caller's extra variables (which win over the special tokens).
#include <optional>

#include "cada/io/files.h"
#include "cada/text/chat_template.h"
#include "cada/text/jinja.h"
#include "cada/util/error.h"
#include "internal.h"

namespace cada::text {
namespace {

using detail::read_json_or_null;
using detail::token_value;

// transformers drops the null fields of each message, then copies a message's reasoning
// (reasoning_content, thinking or reasoning) to both "thinking" and "reasoning_content".
nlohmann::ordered_json plain_messages(const nlohmann::ordered_json& messages) {
  CADA_CHECK(messages.is_array(), "chat messages must be a list of objects");
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& m : messages) {
    CADA_CHECK(m.is_object(), "each chat message must be a JSON object (got ", m.dump().substr(0, 60), ")");
    nlohmann::ordered_json kept = nlohmann::ordered_json::object();
    for (const auto& [k, v] : m.items())
      if (!v.is_null()) kept[k] = v;
    for (const char* field : {"reasoning_content", "thinking", "reasoning"}) {
      if (!kept.contains(field)) continue;
      nlohmann::ordered_json reasoning = kept[field];
      nlohmann::ordered_json aliased = nlohmann::ordered_json::object();
      if (!kept.contains("thinking")) aliased["thinking"] = reasoning;
      for (const auto& [k, v] : kept.items()) aliased[k] = v;
      aliased["reasoning_content"] = reasoning;
      kept = aliased;
      break;
    }
    out.push_back(kept);
  }
  return out;
}

class JinjaChatTemplate : public ChatTemplate {
 public:
  JinjaChatTemplate(const std::string& source, const std::string& tool_source, nlohmann::ordered_json special)
      : default_(source), special_(std::move(special)) {
    if (!tool_source.empty()) tool_use_ = std::make_unique<jinja::Template>(tool_source);
  }
  std::string name() const override { return "jinja"; }
  std::string render(const std::vector<Message>& messages, bool add_generation_prompt) const override {
    nlohmann::ordered_json m = nlohmann::ordered_json::array();
    for (const auto& msg : messages) m.push_back({{"role", msg.role}, {"content", msg.content}});
    return render_json(m, add_generation_prompt, nullptr, nlohmann::ordered_json::object());
  }
  std::string render_json(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                          const nlohmann::ordered_json& tools, const nlohmann::ordered_json& kwargs) const override {
    nlohmann::ordered_json ctx = special_;
    ctx["bos_token"] = bos_token;
    ctx["eos_token"] = eos_token;
    if (bos_token.empty()) ctx.erase("bos_token");
    if (eos_token.empty()) ctx.erase("eos_token");
    if (kwargs.is_object())
      for (const auto& [k, v] : kwargs.items()) ctx[k] = v;
    ctx["messages"] = plain_messages(messages);
    ctx["tools"] = tools;
    ctx["documents"] = nullptr;
    ctx["add_generation_prompt"] = add_generation_prompt;
    const jinja::Template& t = !tools.is_null() && tool_use_ ? *tool_use_ : default_;
    return t.render(ctx);
  }

 private:
  jinja::Template default_;
  std::unique_ptr<jinja::Template> tool_use_;
  nlohmann::ordered_json special_;  // special token strings by name (bos_token, eos_token, unk_token, ...)
};

}  // namespace

std::string ChatTemplate::render_json(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                      const nlohmann::ordered_json& tools, const nlohmann::ordered_json& kwargs) const {
  (void)kwargs;
  CADA_CHECK(tools.is_null(), "the built-in chat template '", name(), "' does not take tools");
  CADA_CHECK(messages.is_array(), "chat messages must be a list of objects");
  std::vector<Message> msgs;
  for (const auto& m : messages) {
    CADA_CHECK(m.is_object() && m.contains("role") && m["role"].is_string() && m.contains("content") &&
                   m["content"].is_string(),
               "the built-in chat template '", name(), "' needs messages with string 'role' and 'content'");
    msgs.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return render(msgs, add_generation_prompt);
}

std::unique_ptr<ChatTemplate> load_jinja_chat_template(const std::string& model_dir) {
  const std::string jinja_path = io::join_path(model_dir, "chat_template.jinja");
  const std::string cfg_path = io::join_path(model_dir, "tokenizer_config.json");
  const nlohmann::json cfg = read_json_or_null(cfg_path);
  std::string source, tool_source, origin, file;
  if (io::file_exists(jinja_path)) {
    source = io::read_file(jinja_path);
    origin = "jinja from chat_template.jinja";
    file = jinja_path;
  } else if (cfg.is_object() && cfg.contains("chat_template") && !cfg["chat_template"].is_null()) {
    const auto& t = cfg["chat_template"];
    file = cfg_path;
    origin = "jinja from tokenizer_config.json";
    if (t.is_string()) {
      source = t.get<std::string>();
    } else {
      CADA_CHECK(t.is_array(), cfg_path, ": chat_template must be a string or a list of {name, template} objects");
      for (const auto& e : t) {
        CADA_CHECK(e.is_object() && e.contains("name") && e["name"].is_string() && e.contains("template") &&
                       e["template"].is_string(),
                   cfg_path, ": each chat_template entry must be an object with string 'name' and 'template'");
        if (e["name"] == "default") source = e["template"].get<std::string>();
        if (e["name"] == "tool_use") tool_source = e["template"].get<std::string>();
      }
      CADA_CHECK(!source.empty(), cfg_path, ": chat_template lists no template named 'default'");
      origin += " ('default'" + std::string(tool_source.empty() ? ")" : ", 'tool_use' with tools)");
    }
  } else {
    return nullptr;
  }
  const nlohmann::json map = read_json_or_null(io::join_path(model_dir, "special_tokens_map.json"));
  nlohmann::ordered_json special = nlohmann::ordered_json::object();
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
    if (auto v = token_value(cfg, key)) special[key] = *v;
    else if (auto w = token_value(map, key)) special[key] = *w;
  }
  std::unique_ptr<JinjaChatTemplate> tmpl;
  try {
    tmpl = std::make_unique<JinjaChatTemplate>(source, tool_source, special);
  } catch (const Error& e) {
    CADA_FAIL(file, ": ", e.what());
  }
  tmpl->bos_token = special.value("bos_token", "");
  tmpl->eos_token = special.value("eos_token", "");
  tmpl->origin = origin;
  return tmpl;
}

}  // namespace cada::text
