// OpenAI request parsing for `cada serve`: field checks, prompts to token ids, context limits.
#include "cada/serve/protocol.h"

#include <algorithm>
#include <set>

#include "cada/text/records.h"
#include "cada/util/error.h"

namespace cada::serve {

using nlohmann::json;

// ------------------------------------------------------------------ errors

ApiError::ApiError(int status, std::string message, std::string param, std::string code)
    : std::runtime_error(std::move(message)), status_(status), param_(std::move(param)), code_(std::move(code)) {}

std::string ApiError::type() const {
  if (status_ == 401) return "authentication_error";
  if (status_ >= 500) return status_ == 503 ? "service_unavailable" : "server_error";
  return "invalid_request_error";
}

json ApiError::body() const { return error_body(status_, what(), param_, code_); }

json error_body(int status, const std::string& message, const std::string& param, const std::string& code) {
  ApiError probe(status, "");
  json e = {{"message", message}, {"type", probe.type()}, {"param", nullptr}, {"code", nullptr}};
  if (!param.empty()) e["param"] = param;
  if (!code.empty()) e["code"] = code;
  return {{"error", e}};
}

json parse_body(const std::string& body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::parse_error& e) {
    throw ApiError(400, std::string("the request body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object, got " + std::string(j.type_name()));
  return j;
}

namespace {

// ------------------------------------------------------------------ typed field readers

[[noreturn]] void bad(const std::string& key, const std::string& what, const json& got) {
  std::string shown = got.dump(-1, ' ', false, json::error_handler_t::replace);
  if (shown.size() > 60) shown = shown.substr(0, 57) + "...";
  throw ApiError(400, "'" + key + "' " + what + ", got " + shown, key);
}

bool present(const json& b, const char* key) { return b.contains(key) && !b[key].is_null(); }

double number(const json& b, const char* key, double lo, double hi, bool lo_open, const std::string& range) {
  const json& v = b[key];
  if (!v.is_number()) bad(key, "must be a number", v);
  const double x = v.get<double>();
  if (!(lo_open ? x > lo : x >= lo) || !(x <= hi)) bad(key, "must be " + range, v);
  return x;
}

int64_t integer(const json& b, const char* key, int64_t lo, int64_t hi) {
  const json& v = b[key];
  if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)))
    bad(key, "must be an integer", v);
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi) bad(key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi), v);
  return x;
}

bool boolean(const json& b, const char* key) {
  const json& v = b[key];
  if (!v.is_boolean()) bad(key, "must be true or false", v);
  return v.get<bool>();
}

// ------------------------------------------------------------------ keys

const std::set<std::string>& known_keys(Endpoint e) {
  static const std::set<std::string> common = {
      "model", "max_tokens", "temperature", "top_p", "n", "stop", "seed", "stream", "stream_options", "logprobs",
      "presence_penalty", "frequency_penalty", "logit_bias", "user", "top_k", "min_p", "repetition_penalty",
      "ignore_eos", "stop_token_ids"};
  static const std::set<std::string> chat = [] {
    auto s = common;
    for (const char* k : {"messages", "max_completion_tokens", "top_logprobs", "tools", "tool_choice",
                          "parallel_tool_calls", "response_format", "metadata", "store", "service_tier"})
      s.insert(k);
    return s;
  }();
  static const std::set<std::string> completions = [] {
    auto s = common;
    for (const char* k : {"prompt", "echo", "best_of", "suffix"}) s.insert(k);
    return s;
  }();
  return e == Endpoint::kChat ? chat : completions;
}

// Keys the API defines that cada accepts only at their neutral value.
void check_unsupported(const json& b) {
  auto refuse = [&](const char* key, const std::string& why) {
    throw ApiError(400, "'" + std::string(key) + "' is not supported by this server" + why, key, "unsupported_parameter");
  };
  for (const char* k : {"presence_penalty", "frequency_penalty"})
    if (present(b, k) && !(b[k].is_number() && b[k].get<double>() == 0.0))
      refuse(k, " (use repetition_penalty, HF semantics)");
  if (present(b, "logit_bias") && !(b["logit_bias"].is_object() && b["logit_bias"].empty())) refuse("logit_bias", "");
  if (present(b, "tools") && !(b["tools"].is_array() && b["tools"].empty())) refuse("tools", " (no tool calling)");
  if (present(b, "tool_choice") && b["tool_choice"] != "none") refuse("tool_choice", " (no tool calling)");
  if (present(b, "response_format") && !(b["response_format"].is_object() && b["response_format"].value("type", "") == "text"))
    refuse("response_format", " (only {\"type\": \"text\"})");
  if (present(b, "echo") && b["echo"] != false) refuse("echo", "");
  if (present(b, "suffix")) refuse("suffix", "");
  if (present(b, "best_of") && !(b["best_of"].is_number_integer() && b["best_of"].get<int64_t>() == b.value("n", 1)))
    refuse("best_of", " (best_of must equal n)");
}

// ------------------------------------------------------------------ prompts

std::vector<int32_t> checked_ids(const json& list, const std::string& key, const text::Tokenizer& tok) {
  std::vector<int32_t> ids;
  for (const auto& v : list) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= tok.vocab_size())
      bad(key, "must hold token ids below the vocabulary size " + std::to_string(tok.vocab_size()), v);
    ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  return ids;
}

std::vector<std::vector<int32_t>> completion_prompts(const json& b, const ServeContext& ctx) {
  if (!present(b, "prompt")) throw ApiError(400, "'prompt' is required", "prompt");
  const json& p = b["prompt"];
  const auto& tok = *ctx.tokenizer;
  std::vector<std::vector<int32_t>> out;
  if (p.is_string()) {
    out.push_back(tok.encode(p.get<std::string>(), /*add_special_tokens=*/true));
  } else if (p.is_array() && !p.empty() && p[0].is_number_integer()) {
    out.push_back(checked_ids(p, "prompt", tok));
  } else if (p.is_array() && !p.empty()) {
    for (const auto& e : p) {
      if (e.is_string()) out.push_back(tok.encode(e.get<std::string>(), true));
      else if (e.is_array()) out.push_back(checked_ids(e, "prompt", tok));
      else bad("prompt", "must be a string, a list of strings or a list of token-id lists", e);
    }
  } else {
    bad("prompt", "must be a non-empty string, a list of strings or token ids", p);
  }
  for (const auto& ids : out)
    if (ids.empty()) throw ApiError(400, "'prompt' has an empty prompt (no tokens)", "prompt");
  return out;
}

std::vector<int32_t> chat_prompt(const json& b, const ServeContext& ctx) {
  if (!present(b, "messages")) throw ApiError(400, "'messages' is required", "messages");
  if (!ctx.chat_template)
    throw ApiError(400, "this model has no chat template cada recognises; use /v1/completions, or restart the "
                        "server with --chat-template NAME", "messages");
  try {
    auto msgs = text::parse_messages(b["messages"], "'messages'");
    return ctx.tokenizer->encode(ctx.chat_template->render(msgs, /*add_generation_prompt=*/true), false);
  } catch (const Error& e) {
    throw ApiError(400, e.what(), "messages");
  }
}

// ------------------------------------------------------------------ sampling

std::vector<std::string> stop_strings(const json& b) {
  if (!present(b, "stop")) return {};
  const json& s = b["stop"];
  std::vector<std::string> out;
  if (s.is_string()) out.push_back(s.get<std::string>());
  else if (s.is_array())
    for (const auto& e : s) {
      if (!e.is_string()) bad("stop", "must be a string or a list of strings", s);
      out.push_back(e.get<std::string>());
    }
  else bad("stop", "must be a string or a list of strings", s);
  for (const auto& x : out)
    if (x.empty()) bad("stop", "must not contain empty strings", s);
  return out;
}

void read_sampling(const json& b, const ServeContext& ctx, ParsedRequest& r) {
  auto& p = r.params;
  if (present(b, "temperature")) p.temperature = static_cast<float>(number(b, "temperature", 0, 1e6, false, ">= 0"));
  if (present(b, "top_p")) p.top_p = static_cast<float>(number(b, "top_p", 0, 1, true, "in (0, 1]"));
  if (present(b, "top_k")) p.top_k = std::max<int64_t>(0, integer(b, "top_k", -1, INT32_MAX));  // -1 / 0: off
  if (present(b, "min_p")) p.min_p = static_cast<float>(number(b, "min_p", 0, 1, false, "in [0, 1]"));
  if (present(b, "repetition_penalty"))
    p.repetition_penalty = static_cast<float>(number(b, "repetition_penalty", 0, 1e6, true, "> 0"));
  if (present(b, "ignore_eos")) p.ignore_eos = boolean(b, "ignore_eos");
  if (present(b, "stop_token_ids")) {
    if (!b["stop_token_ids"].is_array()) bad("stop_token_ids", "must be a list of token ids", b["stop_token_ids"]);
    p.stop_token_ids = checked_ids(b["stop_token_ids"], "stop_token_ids", *ctx.tokenizer);
  }
  p.stop = stop_strings(b);
  if (present(b, "n")) r.n = integer(b, "n", 1, ctx.max_n);
  if (present(b, "seed")) r.seed = static_cast<uint64_t>(integer(b, "seed", INT64_MIN, INT64_MAX));
  if (present(b, "stream")) r.stream = boolean(b, "stream");
  if (present(b, "stream_options")) {
    const json& so = b["stream_options"];
    if (!so.is_object()) bad("stream_options", "must be an object", so);
    if (!r.stream) throw ApiError(400, "'stream_options' is only allowed with stream = true", "stream_options");
    for (const auto& [k, v] : so.items())
      if (k != "include_usage") throw ApiError(400, "unknown stream option '" + k + "'", "stream_options");
    if (present(so, "include_usage")) r.include_usage = boolean(so, "include_usage");
  }
}

void read_logprobs(const json& b, const ServeContext& ctx, ParsedRequest& r) {
  if (r.endpoint == Endpoint::kChat) {
    if (present(b, "logprobs")) r.logprobs = boolean(b, "logprobs");
    if (present(b, "top_logprobs")) {
      r.top_logprobs = integer(b, "top_logprobs", 0, ctx.max_top_logprobs);
      if (!r.logprobs) throw ApiError(400, "'top_logprobs' needs 'logprobs': true", "top_logprobs");
    }
  } else if (present(b, "logprobs")) {
    r.logprobs = true;
    r.top_logprobs = integer(b, "logprobs", 0, ctx.max_top_logprobs);
  }
  r.params.top_logprobs = r.top_logprobs;
}

// max_tokens per prompt: the request's value, else what the context leaves; both checked
// against the context length as OpenAI words it.
void resolve_lengths(const json& b, const ServeContext& ctx, ParsedRequest& r) {
  std::optional<int64_t> asked;
  const char* key = "max_tokens";
  if (r.endpoint == Endpoint::kChat && present(b, "max_completion_tokens")) key = "max_completion_tokens";
  if (present(b, key)) asked = integer(b, key, 1, INT32_MAX);
  const char* where = r.endpoint == Endpoint::kChat ? "messages" : "prompt";
  for (const auto& ids : r.prompts) {
    const int64_t len = static_cast<int64_t>(ids.size());
    const int64_t room = ctx.context_length - len;
    if (room < 1 || (asked && *asked > room))
      throw ApiError(400,
                     "This model's maximum context length is " + std::to_string(ctx.context_length) +
                         " tokens. However, you requested " + std::to_string(len + asked.value_or(1)) + " tokens (" +
                         std::to_string(len) + " in the " + where + ", " + std::to_string(asked.value_or(1)) +
                         " in the completion). Please reduce the length of the " + where + " or completion.",
                     where, "context_length_exceeded");
    r.max_new_tokens.push_back(asked.value_or(room));
  }
}

}  // namespace

ParsedRequest parse_request(const json& b, Endpoint endpoint, const ServeContext& ctx) {
  CADA_CHECK(ctx.tokenizer != nullptr, "serve: no tokenizer");
  for (const auto& [k, v] : b.items())
    if (!known_keys(endpoint).count(k)) throw ApiError(400, "Unrecognized request argument supplied: " + k, k);
  if (!present(b, "model") || !b["model"].is_string()) throw ApiError(400, "'model' is required (a string)", "model");
  const std::string model = b["model"].get<std::string>();
  if (model != ctx.model_name)
    throw ApiError(404, "The model '" + model + "' does not exist; this server serves '" + ctx.model_name + "'",
                   "model", "model_not_found");
  check_unsupported(b);
  ParsedRequest r;
  r.endpoint = endpoint;
  read_sampling(b, ctx, r);
  read_logprobs(b, ctx, r);
  if (endpoint == Endpoint::kChat) r.prompts.push_back(chat_prompt(b, ctx));
  else r.prompts = completion_prompts(b, ctx);
  resolve_lengths(b, ctx, r);
  return r;
}

std::vector<rollout::Request> ParsedRequest::requests(uint64_t random_seed) const {
  std::vector<rollout::Request> out;
  for (size_t p = 0; p < prompts.size(); ++p) {
    rollout::Request q;
    q.prompt_ids = prompts[p];
    q.params = params;
    q.params.max_new_tokens = max_new_tokens.at(p);
    q.seed = seed.value_or(random_seed);
    q.n = n;
    out.push_back(std::move(q));
  }
  return out;
}

}  // namespace cada::serve
