// Chat templates: the prompt strings transformers' apply_chat_template renders.
//
// A model folder with its own template (chat_template.jinja, else tokenizer_config.json's
// chat_template, a string or a list of {name, template}) is rendered by cada's Jinja engine
// (cada/text/jinja.h) exactly as transformers renders it. The built-in templates below,
// re-implemented natively, are the fallbacks for folders without a template and for a
// name the user forces (--chat-template).
//
// Names: chatml (generic ChatML), qwen2 (Qwen2-Instruct: default system "You are a
// helpful assistant."), qwen2.5 (Qwen2.5-Instruct: default system "You are Qwen, created
// by Alibaba Cloud. You are a helpful assistant.", tool messages), llama3
// (Meta-Llama-3-Instruct), llama3.1 (Llama-3.1/3.3-Instruct, with the "Cutting Knowledge
// Date" system block), llama2 (Llama-2-chat), mistral (Mistral-7B-Instruct-v0.2 /
// Mixtral: system merged into the first user turn), cada (the project's template for its
// tiny models: <|system|>/<|user|>/<|assistant|> ... <|end|>).
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace cada::text {

struct Message {
  std::string role;     // system | user | assistant (qwen2.5 also renders tool)
  std::string content;
};

class ChatTemplate {
 public:
  virtual ~ChatTemplate() = default;
  virtual std::string name() const = 0;
  // The full prompt string, as transformers' apply_chat_template(messages,
  // tokenize=False, add_generation_prompt=...) renders it. Throws cada::Error for the
  // conversations the original template rejects (e.g. roles not alternating).
  virtual std::string render(const std::vector<Message>& messages, bool add_generation_prompt) const = 0;
  // The same with messages as JSON objects (role, content and whatever else the template
  // reads, e.g. tool_calls or reasoning_content), `tools` (a list of JSON schemas, or null)
  // and extra template variables `kwargs` (an object, e.g. {"enable_thinking": false}),
  // as apply_chat_template(messages, tools=..., **kwargs). The built-in templates take
  // string role/content messages only and no tools; they ignore kwargs.
  // JSON objects keep their key order (nlohmann::ordered_json), as tojson prints them.
  virtual std::string render_json(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                  const nlohmann::ordered_json& tools, const nlohmann::ordered_json& kwargs) const;
  // Token strings the template uses for bos_token / eos_token (family defaults,
  // replaced by the tokenizer_config.json values in load_chat_template).
  std::string bos_token, eos_token;
  // Where the template came from, for `cada info`: "jinja from tokenizer_config.json",
  // "jinja from chat_template.jinja", "built-in llama3 (forced)".
  std::string origin;
};

// The Jinja source of the `cada` template, as written into tokenizer_config.json by
// train_sentencepiece (transformers' apply_chat_template renders it identically).
std::string cada_chat_template_jinja();

// Registry by name; an unknown name throws cada::Error listing the valid ones.
std::unique_ptr<ChatTemplate> make_chat_template(const std::string& name);
std::vector<std::string> chat_template_names();

// Name of the built-in template that matches the folder's template (recognised by
// signature: chatml, qwen2, qwen2.5, llama3, llama3.1, llama2, mistral, cada); "jinja"
// when the folder has a template no built-in matches; empty when it has none.
std::string detect_chat_template(const std::string& model_dir);
// Name recognised from a Jinja template string; empty if unknown.
std::string detect_chat_template_from_jinja(const std::string& jinja);

// override_name (a built-in) > the folder's own template (Jinja) > cada::Error naming the
// folder and the valid names. bos_token/eos_token (and for Jinja the other special tokens
// transformers passes: unk, sep, pad, cls, mask) come from the folder's
// tokenizer_config.json, else special_tokens_map.json; a token is a string or an
// AddedToken object {"content": ...}.
std::unique_ptr<ChatTemplate> load_chat_template(const std::string& model_dir,
                                                 const std::string& override_name = "");

// The folder's own template for the Jinja engine: chat_template.jinja (which wins, as in
// transformers), else tokenizer_config.json's chat_template; for a list of {name,
// template}, "default" is used and "tool_use" when tools are given. nullptr when the
// folder has no template. Syntax errors throw cada::Error naming the file.
std::unique_ptr<ChatTemplate> load_jinja_chat_template(const std::string& model_dir);

}  // namespace cada::text
