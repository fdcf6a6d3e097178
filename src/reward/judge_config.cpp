// The `judge` reward's config: options, validation without loading weights or touching the
// network, and the builder of a local or HTTP judge.
#include <algorithm>
#include <map>

#include "cada/io/files.h"
#include "cada/model/transformer.h"
#include "cada/reward/http_judge.h"
#include "cada/reward/judge.h"
#include "cada/text/chat_template.h"
#include "cada/text/tokenizer.h"
#include "internal.h"

namespace cada::reward {

using nlohmann::json;

namespace {

struct JudgeOptions {
  std::string model;
  json endpoint;  // null, or an EndpointOptions object
  std::string parser;
  std::string template_text;
  std::string template_file;
  std::string template_contextual;
  std::string template_contextual_file;
  int64_t max_response_tokens = 0;
  std::string tokenizer;
  std::string system;
  std::string system_file;
  std::string chat_template;
  bool raw = false;
  std::vector<std::string> yes, no;
  json values;    // expectation: {"token": value in [0, 1], ...}
  bool invert = false;
  int64_t max_new_tokens = 512;
  std::string on = "answer";
  std::string style = "auto";
  std::optional<int64_t> batch_size;
  template <class V>
  void visit(V& v) {
    v("model", model, "causal LM folder of a local judge (or give 'endpoint')");
    v("endpoint", endpoint, "OpenAI-compatible server of the judge: {base_url, model, ...} (or give 'model')");
    v("parser", parser, "yes_no | expectation | safe_unsafe | strongreject",
      {"yes_no", "expectation", "safe_unsafe", "strongreject"});
    v("template", template_text, "judge prompt with {prompt} and {response} slots");
    v("template_file", template_file, "file holding the judge prompt (instead of 'template')");
    v("template_contextual", template_contextual,
      "judge prompt for samples with a context (HarmBench's contextual behaviours): {context}, {behavior}, "
      "{generation} slots (empty = 'template' for every sample)");
    v("template_contextual_file", template_contextual_file, "file holding the contextual judge prompt");
    v("max_response_tokens", max_response_tokens,
      "cut the response to this many tokens of the judge's tokenizer before judging (HarmBench: 512; 0 = no cut)");
    v("tokenizer", tokenizer, "folder of the judge's tokenizer for max_response_tokens (default: the local 'model')");
    v("system", system, "system prompt sent before the judge prompt");
    v("system_file", system_file, "file holding the system prompt (instead of 'system')");
    v("chat_template", chat_template, "override the chat template detected from the folder (local model)");
    v("raw", raw, "feed the filled template as raw text (local: BOS added; endpoint: /completions)");
    v("yes", yes, "yes_no: token strings whose probabilities make p_yes");
    v("no", no, "yes_no: token strings whose probabilities make p_no");
    v("values", values, "expectation: {token string: value in [0, 1]}");
    v("invert", invert, "report 1 - value");
    v("max_new_tokens", max_new_tokens, "generation limit for safe_unsafe / strongreject");
    v("on", on, "answer (parse_response's answer) | response (the whole text) fills {response}",
      {"answer", "response"});
    v("style", style, "response style used for on = answer", {"auto", "think", "sections"});
    v("batch_size", batch_size, "sequences per forward pass of a local model (default: the runtime batch size)");
  }
};

// The text of `key` or of the file `file_key` names; `required`: exactly one must be given.
std::string text_option(const std::string& text, const std::string& file, const std::string& key,
                        const std::string& file_key, bool required, std::vector<std::string>& problems) {
  const bool both = !text.empty() && !file.empty(), none = text.empty() && file.empty();
  if (required && (both || none)) {
    problems.push_back("give exactly one of '" + key + "' (the judge prompt) or '" + file_key + "'");
    return "";
  }
  if (both) {
    problems.push_back("give only one of '" + key + "' or '" + file_key + "'");
    return "";
  }
  if (file.empty()) return text;
  if (!io::file_exists(file)) {
    problems.push_back(file_key + " '" + file + "' does not exist");
    return "";
  }
  return io::read_file(file);
}

// Checks the keys of the parser (yes / no, values) and fills them into `spec`.
void check_parser_keys(const JudgeOptions& o, JudgeSpec& spec, std::vector<std::string>& problems) {
  if (o.parser == "yes_no") {
    if (o.yes.empty() || o.no.empty())
      problems.push_back("parser yes_no needs 'yes' and 'no': lists of token strings, e.g. [\"Yes\"] and [\"No\"]");
    for (const auto& y : o.yes)
      if (std::find(o.no.begin(), o.no.end(), y) != o.no.end())
        problems.push_back("token string \"" + y + "\" is in both 'yes' and 'no'");
  } else if (!o.yes.empty() || !o.no.empty()) {
    problems.push_back("'yes' / 'no' are only used by parser yes_no (parser is '" + o.parser + "')");
  }
  for (const auto& t : o.yes)
    if (t.empty()) problems.push_back("'yes' has an empty token string");
  for (const auto& t : o.no)
    if (t.empty()) problems.push_back("'no' has an empty token string");
  if (o.parser != "expectation") {
    if (!o.values.is_null()) problems.push_back("'values' is only used by parser expectation (parser is '" + o.parser + "')");
    return;
  }
  if (!o.values.is_object() || o.values.empty()) {
    problems.push_back("parser expectation needs 'values': an object of token string -> value in [0, 1], e.g. "
                       "{\"1\": 0.0, \"2\": 0.25, \"3\": 0.5, \"4\": 0.75, \"5\": 1.0}");
    return;
  }
  for (auto it = o.values.begin(); it != o.values.end(); ++it) {
    if (it.key().empty()) problems.push_back("'values' has an empty token string");
    if (!it.value().is_number() || it.value().get<double>() < 0 || it.value().get<double>() > 1) {
      problems.push_back("'values.\"" + it.key() + "\"' must be a number in [0, 1], got " + it.value().dump());
      continue;
    }
    spec.values.emplace_back(it.key(), it.value().get<double>());
  }
}

// Every token string the parser reads (yes_no, expectation).
std::vector<std::string> parser_tokens(const JudgeOptions& o) {
  std::vector<std::string> out = o.yes;
  out.insert(out.end(), o.no.begin(), o.no.end());
  if (o.values.is_object())
    for (auto it = o.values.begin(); it != o.values.end(); ++it) out.push_back(it.key());
  return out;
}

Prepared prepare_local(const std::string& name, const JudgeOptions& o, const JudgeSpec& spec,
                       const std::string& system, std::vector<std::string>& problems) {
  if (!detail::check_model_folder(o.model, /*classifier=*/false, problems)) return {};
  std::shared_ptr<const text::Tokenizer> tok;
  std::shared_ptr<const text::ChatTemplate> chat;
  try {
    tok.reset(text::load_tokenizer(o.model).release());
    if (!o.raw) chat.reset(text::load_chat_template(o.model, o.chat_template).release());
  } catch (const Error& e) {
    problems.push_back(e.what());
    return {};
  }
  std::map<int32_t, std::string> yes_ids;
  for (const auto& s : parser_tokens(o)) {
    if (s.empty()) continue;
    auto enc = tok->encode(s, /*add_special_tokens=*/false);
    if (enc.size() != 1) {
      problems.push_back("token string \"" + s + "\" is " + std::to_string(enc.size()) +
                         " tokens for the judge's tokenizer; each must be exactly one token");
    } else if (std::find(o.yes.begin(), o.yes.end(), s) != o.yes.end()) {
      yes_ids[enc[0]] = s;
    } else if (std::find(o.no.begin(), o.no.end(), s) != o.no.end() && yes_ids.count(enc[0])) {
      problems.push_back("token id " + std::to_string(enc[0]) + " is in both 'yes' (\"" + yes_ids[enc[0]] +
                         "\") and 'no' (\"" + s + "\")");
    }
  }
  Prepared p;
  p.build = [name, o, spec, tok, chat, system](BuildContext& ctx) -> std::shared_ptr<Reward> {
    auto backend = detail::make_model_judge_backend(ctx.model(o.model), tok, chat, system,
                                            o.batch_size.value_or(ctx.runtime().batch_size), o.max_new_tokens);
    return std::make_shared<JudgeReward>(name, spec, backend);
  };
  return p;
}

Prepared prepare_endpoint(const std::string& name, const JudgeOptions& o, const JudgeSpec& spec,
                          const std::string& system, std::vector<std::string>& problems) {
  auto ep = detail::parse_options<EndpointOptions>(o.endpoint, problems, "endpoint");
  if (!o.endpoint.is_object()) return {};
  check_endpoint(ep, problems);
  if (!o.chat_template.empty())
    problems.push_back("'chat_template' applies to a local 'model' only (the server applies its own)");
  if (o.batch_size)
    problems.push_back("'batch_size' applies to a local 'model' only (an endpoint uses 'endpoint.max_concurrency')");
  Prepared p;
  p.build = [name, o, ep, spec, system](BuildContext&) -> std::shared_ptr<Reward> {
    auto backend = std::make_shared<HttpJudgeBackend>(name, ep, system, o.raw, o.max_new_tokens);
    return std::make_shared<JudgeReward>(name, spec, backend);
  };
  return p;
}

}  // namespace

namespace detail {

Prepared prepare_judge(const PrepareInput& in, std::vector<std::string>& problems) {
  auto o = parse_options<JudgeOptions>(in.options, problems);
  if (o.parser.empty()) problems.push_back("'parser' is required: yes_no, expectation, safe_unsafe or strongreject");
  const std::string tmpl = text_option(o.template_text, o.template_file, "template", "template_file", true, problems);
  if (!tmpl.empty()) {
    const std::string src = o.template_file.empty() ? "the judge template" : "template_file '" + o.template_file + "'";
    if (tmpl.find("{prompt}") == std::string::npos && tmpl.find("{behavior}") == std::string::npos)
      problems.push_back(src + " has no {prompt} (or {behavior}) slot");
    if (tmpl.find("{response}") == std::string::npos && tmpl.find("{generation}") == std::string::npos)
      problems.push_back(src + " has no {response} (or {generation}) slot");
  }
  const std::string ctx_tmpl = text_option(o.template_contextual, o.template_contextual_file, "template_contextual",
                                           "template_contextual_file", false, problems);
  if (!ctx_tmpl.empty() && (!judge_template_complete(ctx_tmpl) || ctx_tmpl.find("{context}") == std::string::npos))
    problems.push_back("the contextual judge template needs {context}, {behavior} (or {prompt}) and {generation} "
                       "(or {response}) slots");
  if (o.max_response_tokens < 0) problems.push_back("'max_response_tokens' must be >= 0");
  const std::string system = text_option(o.system, o.system_file, "system", "system_file", false, problems);
  JudgeSpec spec;
  spec.parser = o.parser;
  spec.prompt_template = tmpl;
  spec.invert = o.invert;
  spec.on = o.on;
  spec.style = o.style;
  spec.yes = o.yes;
  spec.no = o.no;
  spec.contextual_template = ctx_tmpl;
  spec.max_response_tokens = o.max_response_tokens;
  check_parser_keys(o, spec, problems);
  if (o.max_response_tokens > 0) {
    const std::string from = o.tokenizer.empty() ? o.model : o.tokenizer;
    if (from.empty()) {
      problems.push_back("'max_response_tokens' with an 'endpoint' needs 'tokenizer': the judge's tokenizer folder");
    } else {
      try {
        spec.tokenizer.reset(text::load_tokenizer(from).release());
      } catch (const Error& e) {
        problems.push_back(e.what());
      }
    }
  }
  if (o.max_new_tokens <= 0) problems.push_back("'max_new_tokens' must be positive");
  if (o.batch_size && *o.batch_size <= 0) problems.push_back("'batch_size' must be positive");
  if (o.raw && !o.chat_template.empty()) problems.push_back("'chat_template' has no effect with raw = true");
  if (o.raw && (!o.system.empty() || !o.system_file.empty()))
    problems.push_back("'system' / 'system_file' need chat turns; they cannot be used with raw = true");
  if (o.model.empty() == o.endpoint.is_null()) {
    problems.push_back("give exactly one of 'model' (a local model folder) or 'endpoint' (an OpenAI-compatible "
                       "server: {\"base_url\": ..., \"model\": ...})");
    return {};
  }
  return o.endpoint.is_null() ? prepare_local(in.name, o, spec, system, problems)
                              : prepare_endpoint(in.name, o, spec, system, problems);
}

}  // namespace detail

}  // namespace cada::reward
