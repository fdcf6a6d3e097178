#include "cada/text/records.h"

#include <climits>

#include "cada/io/files.h"
#include "cada/util/error.h"
#include "cada/util/log.h"

namespace cada::text {

using nlohmann::json;

static std::vector<int32_t> id_list(const json& v, const char* key, const std::string& where) {
  CADA_CHECK(v.is_array(), where, ": '", key, "' must be a list of token ids");
  std::vector<int32_t> out;
  out.reserve(v.size());
  for (const auto& e : v) {
    CADA_CHECK(e.is_number_integer(), where, ": '", key, "' must contain integers only");
    // Read as 64 bits: a huge id is reported as written, not wrapped to 32 bits.
    const int64_t id = e.is_number_unsigned() && e.get<uint64_t>() > uint64_t(INT64_MAX) ? -1 : e.get<int64_t>();
    CADA_CHECK(id >= 0 && id <= INT32_MAX, where, ": '", key, "' holds ", e.dump(), ", which is not a token id");
    out.push_back(static_cast<int32_t>(id));
  }
  return out;
}

static bool has_template_key(const std::string& model_dir) {
  const std::string path = model_dir + "/tokenizer_config.json";
  if (!io::file_exists(path)) return false;
  auto j = json::parse(io::read_file(path), nullptr, false);
  return !j.is_discarded() && j.is_object() && j.contains("chat_template") && !j["chat_template"].is_null();
}

static const Tokenizer& need(const Tokenizer* tok, const std::string& where) {
  CADA_CHECK(tok != nullptr, where, ": the record has text but the model folder has no tokenizer");
  return *tok;
}

std::vector<Message> parse_messages(const json& m, const std::string& where) {
  CADA_CHECK(m.is_array() && !m.empty(), where, ": 'messages' must be a non-empty list");
  std::vector<Message> msgs;
  for (size_t i = 0; i < m.size(); ++i) {
    const json& e = m[i];
    const std::string at = where + ": message " + std::to_string(i + 1);
    CADA_CHECK(e.is_object() && e.contains("role") && e["role"].is_string(), at,
               " needs a string field 'role'");
    CADA_CHECK(e.contains("content"), at, " needs a field 'content'");
    const json& c = e["content"];
    std::string content;
    if (c.is_string()) {
      content = c.get<std::string>();
    } else {
      CADA_CHECK(c.is_array(), at, ": 'content' must be a string or a list of text parts");
      for (const auto& part : c) {
        CADA_CHECK(part.is_object() && part.value("type", "") == "text" && part.contains("text") &&
                       part["text"].is_string(),
                   at, ": content parts must be {\"type\": \"text\", \"text\": string} (got ",
                   part.dump().substr(0, 80), ")");
        content += part["text"].get<std::string>();
      }
    }
    msgs.push_back({e["role"].get<std::string>(), std::move(content)});
  }
  return msgs;
}

std::vector<int32_t> prompt_ids(const json& rec, const Tokenizer* tok, const ChatTemplate* tmpl,
                                bool raw, const std::string& where) {
  CADA_CHECK(rec.is_object(), where, ": expected a JSON object");
  if (rec.contains("prompt_ids")) return id_list(rec["prompt_ids"], "prompt_ids", where);
  const bool rec_raw = rec.contains("raw") && rec["raw"].is_boolean() ? rec["raw"].get<bool>() : raw;
  std::vector<Message> msgs;
  if (rec.contains("messages")) {
    msgs = parse_messages(rec["messages"], where);
  } else {
    CADA_CHECK(rec.contains("prompt") && rec["prompt"].is_string(), where,
               ": expected a 'prompt' string, a 'messages' list or 'prompt_ids'");
    const std::string prompt = rec["prompt"].get<std::string>();
    if (rec_raw) return need(tok, where).encode(prompt, /*add_special_tokens=*/true);
    msgs.push_back({"user", prompt});
  }
  CADA_CHECK(tmpl != nullptr, where, ": the record needs a chat template, but none was loaded for the model "
             "(it has none, or one cada does not recognise); pass --chat-template NAME (or the config's chat_template) "
             "or use raw prompts");
  std::string text;
  try {
    text = tmpl->render(msgs, /*add_generation_prompt=*/true);
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  return need(tok, where).encode(text, /*add_special_tokens=*/false);
}

std::vector<int32_t> completion_ids(const json& rec, const Tokenizer* tok, const std::string& where) {
  if (rec.contains("completion_ids")) return id_list(rec["completion_ids"], "completion_ids", where);
  CADA_CHECK(rec.contains("completion") && rec["completion"].is_string(), where,
             ": expected a 'completion' string or 'completion_ids'");
  return need(tok, where).encode(rec["completion"].get<std::string>(), /*add_special_tokens=*/false);
}

// The folder holding a model's tokenizer: the folder itself, or for a LoRA adapter folder
// written without tokenizer files (as PEFT writes them) its base model's folder.
static std::string tokenizer_folder(const std::string& dir) {
  if (io::file_exists(dir + "/tokenizer.json") || io::file_exists(dir + "/tokenizer.model") ||
      !io::file_exists(dir + "/adapter_config.json"))
    return dir;
  auto j = nlohmann::json::parse(io::read_file(dir + "/adapter_config.json"), nullptr, false);
  if (!j.is_object() || !j.contains("base_model_name_or_path") || !j["base_model_name_or_path"].is_string()) return dir;
  const std::string base = j["base_model_name_or_path"].get<std::string>();
  if (!base.empty() && io::is_directory(base)) return base;
  if (!base.empty() && io::is_directory(io::join_path(dir, base))) return io::join_path(dir, base);
  return dir;
}

TextSetup load_text(const std::string& dir, const std::string& template_override, bool required) {
  const std::string model_dir = tokenizer_folder(dir);
  TextSetup t;
  try {
    t.tokenizer = load_tokenizer(model_dir);
  } catch (const Error&) {
    if (required) throw;
    return t;
  }
  if (!template_override.empty() || !detect_chat_template(model_dir).empty()) {
    t.chat_template = load_chat_template(model_dir, template_override);
  } else if (io::file_exists(model_dir + "/chat_template.jinja") || has_template_key(model_dir)) {
    CADA_WARN(model_dir, ": its chat template is not one cada recognises; records that need one fail unless "
              "--chat-template (or the config's chat_template) names one of the built-in templates");
  }
  return t;
}

}  // namespace cada::text
