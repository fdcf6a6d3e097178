// A Jinja template engine for Hugging Face chat templates.
//
// Renders a template string the way transformers' apply_chat_template does: jinja2 with
// trim_blocks and lstrip_blocks on, keep_trailing_newline off, the loopcontrols extension
// (break / continue), the `generation` block of transformers' AssistantTracker (rendered
// as its body), the globals raise_exception(msg) and strftime_now(fmt), and transformers'
// tojson filter (json.dumps with ensure_ascii=False; indent, separators and sort_keys as
// keyword arguments). Values follow Python: integers and floats print as Python prints
// them, dicts keep their insertion order, undefined names print as empty and are falsy,
// and an attribute of an undefined value is an error.
//
// Errors (syntax errors at parse time; undefined attributes, type errors and
// raise_exception at render time) throw cada::Error with one sentence naming the template
// line: "chat template line 3: ...".
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>

namespace cada::text::jinja {

struct Node;  // the parsed template (jinja_internal.h)

class Template {
 public:
  // Parses `source`; throws cada::Error on a syntax error.
  explicit Template(const std::string& source);
  // Renders with the top-level variables of `context` (a JSON object; objects keep their key
  // order, as Python dicts do, so tojson and dict iteration match transformers).
  std::string render(const nlohmann::ordered_json& context) const;

 private:
  std::shared_ptr<const Node> root_;
};

}  // namespace cada::text::jinja
