// Native renderings of the chat templates of the supported model families. Each
// render() follows the control flow of the family's original Jinja template, so that
// the output equals transformers' apply_chat_template(..., tokenize=False) byte for byte
// (tests/parity/test_chat_templates.py checks this against the original templates).
#include "cada/text/chat_template.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <functional>
#include <map>
#include <optional>

#include "cada/io/files.h"
#include "cada/text/unicode.h"
#include "cada/util/error.h"
#include "internal.h"

namespace cada::text {

namespace detail {

// Python's json.dumps(s, ensure_ascii=False) for a string (transformers' |tojson filter).
std::string python_json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

nlohmann::json read_json_or_null(const std::string& path) {
  if (!io::file_exists(path)) return nullptr;
  try {
    return nlohmann::json::parse(io::read_file(path));
  } catch (const nlohmann::json::exception& e) {
    CADA_FAIL(path, " is not valid JSON: ", e.what());
  }
}

}  // namespace detail

using detail::python_json_string;
using detail::read_json_or_null;

namespace {

using detail::token_value;

const char* const kQwenDefaultSystem = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

std::string join_names() {
  std::string out;
  for (const auto& n : chat_template_names()) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

void need_messages(const std::vector<Message>& messages, const std::string& name) {
  CADA_CHECK(!messages.empty(), "the ", name, " chat template needs at least one message");
}

// Generic ChatML: <|im_start|>{role}\n{content}<|im_end|>\n per message, any role.
class ChatmlTemplate : public ChatTemplate {
 public:
  std::string name() const override { return "chatml"; }
  std::string render(const std::vector<Message>& messages, bool gen) const override {
    std::string out;
    for (const auto& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    if (gen) out += "<|im_start|>assistant\n";
    return out;
  }
};

// Qwen2-Instruct (and Qwen1.5-Chat-72B): ChatML with a default system turn.
class Qwen2Template : public ChatTemplate {
 public:
  std::string name() const override { return "qwen2"; }
  std::string render(const std::vector<Message>& messages, bool gen) const override {
    std::string out;
    for (size_t i = 0; i < messages.size(); ++i) {
      if (i == 0 && messages[0].role != "system") out += "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n";
      out += "<|im_start|>" + messages[i].role + "\n" + messages[i].content + "<|im_end|>\n";
    }
    if (gen) out += "<|im_start|>assistant\n";
    return out;
  }
};

// Qwen2.5-Instruct (without tools): default system message, tool turns as
// <tool_response> blocks inside a user turn, other roles dropped.
class Qwen25Template : public ChatTemplate {
 public:
  std::string name() const override { return "qwen2.5"; }
  std::string render(const std::vector<Message>& messages, bool gen) const override {
    need_messages(messages, name());
    std::string out;
    if (messages[0].role == "system") {
      out += "<|im_start|>system\n" + messages[0].content + "<|im_end|>\n";
    } else {
      out += std::string("<|im_start|>system\n") + kQwenDefaultSystem + "<|im_end|>\n";
    }
    const size_t n = messages.size();
    for (size_t i = 0; i < n; ++i) {
      const Message& m = messages[i];
      if (m.role == "user" || (m.role == "system" && i != 0) || m.role == "assistant") {
        out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      } else if (m.role == "tool") {
        if (i == 0 || messages[i - 1].role != "tool") out += "<|im_start|>user";
        out += "\n<tool_response>\n" + m.content + "\n</tool_response>";
        if (i + 1 == n || messages[i + 1].role != "tool") out += "<|im_end|>\n";
      }
    }
    if (gen) out += "<|im_start|>assistant\n";
    return out;
  }
};

// Meta-Llama-3-Instruct: bos + headers, trimmed content, <|eot_id|>.
class Llama3Template : public ChatTemplate {
 public:
  Llama3Template() { bos_token = "<|begin_of_text|>", eos_token = "<|eot_id|>"; }
  std::string name() const override { return "llama3"; }
  std::string render(const std::vector<Message>& messages, bool gen) const override {
    std::string out;
    for (size_t i = 0; i < messages.size(); ++i) {
      if (i == 0) out += bos_token;
      out += "<|start_header_id|>" + messages[i].role + "<|end_header_id|>\n\n" + python_strip(messages[i].content) +
             "<|eot_id|>";
    }
    if (gen) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
    return out;
  }
};

// Llama-3.1/3.3-Instruct (without tool definitions): a system block with the knowledge
// cutoff and the template's fixed date is always present; tool/ipython results are
// rendered as JSON strings under an ipython header.
class Llama31Template : public ChatTemplate {
 public:
  Llama31Template() { bos_token = "<|begin_of_text|>", eos_token = "<|eot_id|>"; }
  std::string name() const override { return "llama3.1"; }
  std::string render(const std::vector<Message>& messages, bool gen) const override {
    need_messages(messages, name());
    std::string out = bos_token;
    size_t first = 0;
    std::string system;
    if (messages[0].role == "system") {
      system = python_strip(messages[0].content);
      first = 1;
    }
    out += "<|start_header_id|>system<|end_header_id|>\n\n";
    out += "Cutting Knowledge Date: December 2023\n";
    out += "Today Date: 26 Jul 2024\n\n";
    out += system + "<|eot_id|>";
    for (size_t i = first; i < messages.size(); ++i) {
      const Message& m = messages[i];
      if (m.role == "tool" || m.role == "ipython") {
        out += "<|start_header_id|>ipython<|end_header_id|>\n\n" + python_json_string(m.content) + "<|eot_id|>";
      } else {
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + python_strip(m.content) + "<|eot_id|>";
      }
    }
    if (gen) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
    return out;
  }
};

// Llama-2-chat: <s>[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] answer </s>; ignores the
// generation prompt flag (the prompt already ends with [/INST]).
class Llama2Template : public ChatTemplate {
 public:
  Llama2Template() { bos_token = "<s>", eos_token = "</s>"; }
  std::string name() const override { return "llama2"; }
  std::string render(const std::vector<Message>& messages, bool) const override {
    need_messages(messages, name());
    size_t first = 0;
    bool has_system = false;
    std::string system;
    if (messages[0].role == "system") {
      first = 1;
      has_system = true;
      system = messages[0].content;
    }
    std::string out;
    for (size_t k = first; k < messages.size(); ++k) {
      const size_t i = k - first;
      const Message& m = messages[k];
      CADA_CHECK((m.role == "user") == (i % 2 == 0),
                 "llama2 chat template: Conversation roles must alternate user/assistant/user/assistant/... "
                 "(message ", k, " has role '", m.role, "')");
      std::string content = m.content;
      if (i == 0 && has_system) content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + m.content;
      if (m.role == "user") {
        out += bos_token + "[INST] " + python_strip(content) + " [/INST]";
      } else if (m.role == "assistant") {
        out += " " + python_strip(content) + " " + eos_token;
      }
    }
    return out;
  }
};

// Mistral-7B-Instruct-v0.2 / Mixtral-8x7B-Instruct-v0.1 (2024 template): the system
// message is prepended to the first user turn; ignores the generation prompt flag.
class MistralTemplate : public ChatTemplate {
 public:
  MistralTemplate() { bos_token = "<s>", eos_token = "</s>"; }
  std::string name() const override { return "mistral"; }
  std::string render(const std::vector<Message>& messages, bool) const override {
    need_messages(messages, name());
    size_t first = 0;
    bool has_system = false;
    std::string system;
    if (messages[0].role == "system") {
      first = 1;
      has_system = true;
      system = messages[0].content;
    }
    std::string out = bos_token;
    for (size_t k = first; k < messages.size(); ++k) {
      const size_t i = k - first;
      const Message& m = messages[k];
      CADA_CHECK((m.role == "user") == (i % 2 == 0),
                 "mistral chat template: After the optional system message, conversation roles must alternate "
                 "user/assistant/user/assistant/... (message ",
                 k, " has role '", m.role, "')");
      if (m.role == "user") {
        if (i == 0 && has_system) {
          out += " [INST] " + system + "\n\n" + m.content + " [/INST]";
        } else {
          out += " [INST] " + m.content + " [/INST]";
        }
      } else if (m.role == "assistant") {
        out += " " + m.content + eos_token;
      } else {
        CADA_FAIL("mistral chat template: Only user and assistant roles are supported, with the exception of an "
                  "initial optional system message! (message ",
                  k, " has role '", m.role, "')");
      }
    }
    return out;
  }
};

// The project's template for its tiny models.
class CadaTemplate : public ChatTemplate {
 public:
  CadaTemplate() { bos_token = "<s>", eos_token = "<|end|>"; }
  std::string name() const override { return "cada"; }
  std::string render(const std::vector<Message>& messages, bool gen) const override {
    std::string out;
    for (size_t k = 0; k < messages.size(); ++k) {
      const Message& m = messages[k];
      CADA_CHECK(m.role == "system" || m.role == "user" || m.role == "assistant", "cada chat template: unknown role '",
                 m.role, "' (expected system, user or assistant)");
      out += "<|" + m.role + "|>\n" + m.content + "<|end|>\n";
    }
    if (gen) out += "<|assistant|>\n";
    return out;
  }
};

using Factory = std::function<std::unique_ptr<ChatTemplate>()>;

const std::map<std::string, Factory>& registry() {
  static const std::map<std::string, Factory> r = {
      {"cada", [] { return std::make_unique<CadaTemplate>(); }},
      {"chatml", [] { return std::make_unique<ChatmlTemplate>(); }},
      {"llama2", [] { return std::make_unique<Llama2Template>(); }},
      {"llama3", [] { return std::make_unique<Llama3Template>(); }},
      {"llama3.1", [] { return std::make_unique<Llama31Template>(); }},
      {"mistral", [] { return std::make_unique<MistralTemplate>(); }},
      {"qwen2", [] { return std::make_unique<Qwen2Template>(); }},
      {"qwen2.5", [] { return std::make_unique<Qwen25Template>(); }},
  };
  return r;
}

bool has(const std::string& s, const char* needle) { return s.find(needle) != std::string::npos; }

// The chat template text of a folder: chat_template.jinja, else tokenizer_config.json's
// chat_template (a string, or a list of {name, template} where "default" is used).
std::string folder_jinja(const std::string& model_dir) {
  const std::string jinja_path = io::join_path(model_dir, "chat_template.jinja");
  if (io::file_exists(jinja_path)) return io::read_file(jinja_path);
  nlohmann::json cfg = read_json_or_null(io::join_path(model_dir, "tokenizer_config.json"));
  if (!cfg.is_object() || !cfg.contains("chat_template")) return "";
  const auto& t = cfg["chat_template"];
  if (t.is_string()) return t.get<std::string>();
  if (t.is_array()) {
    for (const auto& e : t) {
      if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string())
        return e["template"].get<std::string>();
    }
  }
  return "";
}

}  // namespace

std::string cada_chat_template_jinja() {
  // Rendered by transformers with trim_blocks/lstrip_blocks; every tag also trims.
  return R"JINJA({#- cada chat template v1: <|role|>\n{content}<|end|>\n for each message -#}
{%- for message in messages -%}
    {%- if message['role'] not in ['system', 'user', 'assistant'] -%}
        {{- raise_exception("cada chat template: unknown role '" + message['role'] + "' (expected system, user or assistant)") -}}
    {%- endif -%}
    {{- '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|assistant|>\n' -}}
{%- endif -%}
)JINJA";
}

std::vector<std::string> chat_template_names() {
  std::vector<std::string> out;
  for (const auto& [name, f] : registry()) out.push_back(name);
  return out;
}

std::unique_ptr<ChatTemplate> make_chat_template(const std::string& name) {
  auto it = registry().find(name);
  CADA_CHECK(it != registry().end(), "unknown chat template '", name, "' (valid names: ", join_names(), ")");
  return it->second();
}

std::string detect_chat_template_from_jinja(const std::string& j) {
  if (j.empty()) return "";
  if (has(j, "cada chat template")) return "cada";
  if (has(j, "<|im_start|>")) {
    if (has(j, "You are Qwen, created by Alibaba Cloud")) return "qwen2.5";
    if (has(j, "You are a helpful assistant.<|im_end|>") && !has(j, "tools")) return "qwen2";
    if (!has(j, "system") && !has(j, "tools")) return "chatml";
    return "";
  }
  if (has(j, "<|start_header_id|>")) {
    if (has(j, "Cutting Knowledge Date")) return has(j, "strftime_now") ? "" : "llama3.1";
    return "llama3";
  }
  if (has(j, "[INST]")) {
    if (has(j, "<<SYS>>")) return "llama2";
    if (has(j, "' [INST] ' + system_message") && !has(j, "[AVAILABLE_TOOLS]")) return "mistral";
    return "";
  }
  return "";
}

std::string detect_chat_template(const std::string& model_dir) {
  const std::string jinja = folder_jinja(model_dir);
  if (jinja.empty()) return "";
  const std::string name = detect_chat_template_from_jinja(jinja);
  return name.empty() ? "jinja" : name;
}

std::unique_ptr<ChatTemplate> load_chat_template(const std::string& model_dir, const std::string& override_name) {
  if (override_name.empty()) {
    CADA_CHECK(io::is_directory(model_dir), "model folder '", model_dir, "' does not exist");
    auto tmpl = load_jinja_chat_template(model_dir);
    CADA_CHECK(tmpl != nullptr, "no chat template in '", model_dir,
               "' (no chat_template.jinja, and tokenizer_config.json has no chat_template); pass --chat-template "
               "with one of: ", join_names());
    return tmpl;
  }
  auto tmpl = make_chat_template(override_name);
  tmpl->origin = "built-in " + override_name + " (forced)";
  // bos/eos strings as transformers passes them to the template.
  nlohmann::json cfg = read_json_or_null(io::join_path(model_dir, "tokenizer_config.json"));
  nlohmann::json map = read_json_or_null(io::join_path(model_dir, "special_tokens_map.json"));
  if (cfg.is_object() || map.is_object()) {
    auto pick = [&](const char* key) -> std::string {
      if (auto v = token_value(cfg, key)) return *v;
      if (auto v = token_value(map, key)) return *v;
      return "";
    };
    tmpl->bos_token = pick("bos_token");
    tmpl->eos_token = pick("eos_token");
  }
  return tmpl;
}

}  // namespace cada::text
