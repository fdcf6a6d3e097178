// Fuzz target: chat templates (include/cada/text/chat_template.h) and the reasoning / answer
// parser of responses (include/cada/text/reasoning.h).
//
// Input: a tokenizer_config.json text, optionally followed by a line "%%" and the text of a
// chat_template.jinja, written into a scratch model folder:
//
//   {"chat_template": "{% for message in messages %}<|im_start|>...", "eos_token": "<|im_end|>",
//    "messages": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."}]}
//
// The template is detected from the folder (detect_chat_template, load_chat_template) and
// also loaded under every registered name; the "messages" of the input (or, when there are
// none, the raw input as a user and an assistant turn) are rendered by each, with and without
// the generation prompt. Rejections (cada::Error for conversations a template refuses, or a
// malformed JSON file) are normal. Each message content also goes through parse_response in
// every style, and format_response -> parse_response must give back the stripped reasoning and
// answer, well formed, as reasoning.h promises.
//
// Seeds: tests/fuzz/corpus/chat_template. Run: scripts/fuzz.sh, or
// build-fuzz/fuzz_chat_template tests/fuzz/corpus/chat_template
#include <nlohmann/json.hpp>

#include <exception>
#include <memory>

#include "cada/io/files.h"
#include "cada/text/chat_template.h"
#include "cada/text/reasoning.h"
#include "cada/text/unicode.h"
#include "fuzz_common.h"

namespace {

using nlohmann::json;
namespace text = cada::text;

std::vector<text::Message> messages_of(const std::string& config_text) {
  std::vector<text::Message> out;
  json j = json::parse(config_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("messages") && j["messages"].is_array()) {
    for (const auto& m : j["messages"]) {
      if (m.is_object() && m.contains("role") && m["role"].is_string() && m.contains("content") &&
          m["content"].is_string())
        out.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    }
    return out;
  }
  out.push_back({"user", config_text.substr(0, 512)});
  out.push_back({"assistant", config_text.substr(0, 512)});
  return out;
}

bool has_marker(const std::string& s) {
  for (const char* m : {"<think>", "</think>", "### Analysis", "### Final Response"})
    if (s.find(m) != std::string::npos) return true;
  return false;
}

void check_reasoning(const std::vector<text::Message>& msgs) {
  for (size_t i = 0; i < msgs.size() && i < 8; ++i) {
    const std::string& c = msgs[i].content;
    for (const auto& style : text::response_styles()) {
      text::ParsedResponse r = text::parse_response(c, style);
      FUZZ_CHECK(r.style.empty() || r.style == "think" || r.style == "sections");
    }
    // format -> parse round trip, in both styles, pairing this message with the next one.
    const std::string& a = i + 1 < msgs.size() ? msgs[i + 1].content : msgs[0].content;
    const std::string rs = text::python_strip(c), as = text::python_strip(a);
    if (!text::is_valid_utf8(c) || !text::is_valid_utf8(a) || rs.empty() || as.empty() || has_marker(c) ||
        has_marker(a))
      continue;
    for (const char* style : {"think", "sections"}) {
      const text::ParsedResponse r = text::parse_response(text::format_response(c, a, style), style);
      FUZZ_CHECK(r.well_formed);
      FUZZ_CHECK(r.reasoning == rs);
      FUZZ_CHECK(r.answer == as);
      FUZZ_CHECK(text::parse_response(text::format_response(c, a, style), "auto").well_formed);
    }
  }
}

void render_all(const text::ChatTemplate& t, const std::vector<text::Message>& msgs) {
  for (bool gen : {false, true}) {
    try {
      (void)t.render(msgs, gen);
    } catch (const cada::Error&) {
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = cada::fuzz::model_dir();
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string> parts = cada::fuzz::split_parts(input);
  cada::fuzz::write_file(dir + "/tokenizer_config.json", parts[0]);
  if (parts.size() > 1) {
    cada::fuzz::write_file(dir + "/chat_template.jinja", parts[1]);
  } else {
    cada::fuzz::remove_if_present(dir + "/chat_template.jinja");
  }
  (void)text::detect_chat_template_from_jinja(input);

  const std::vector<text::Message> msgs = messages_of(parts[0]);
  try {
    (void)text::detect_chat_template(dir);
    auto t = text::load_chat_template(dir);
    render_all(*t, msgs);
  } catch (const std::exception&) {
  }
  // The folder's bos/eos strings (read by load_chat_template whatever the name), then every
  // registered template with them; the family defaults when the folder's JSON is broken.
  std::unique_ptr<text::ChatTemplate> with_folder_tokens;
  try {
    with_folder_tokens = text::load_chat_template(dir, "chatml");
  } catch (const std::exception&) {
  }
  for (const auto& name : text::chat_template_names()) {
    std::unique_ptr<text::ChatTemplate> t = text::make_chat_template(name);
    FUZZ_CHECK(t->name() == name);
    if (with_folder_tokens) {
      t->bos_token = with_folder_tokens->bos_token;
      t->eos_token = with_folder_tokens->eos_token;
    }
    render_all(*t, msgs);
  }
  check_reasoning(msgs);
  return 0;
}
