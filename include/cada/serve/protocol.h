// The OpenAI API as `cada serve` speaks it: requests to /v1/chat/completions and /v1/completions
// parsed into the rollout engine's requests, with every problem an ApiError in OpenAI's shape.
//
//   ParsedRequest r = parse_request(body, Endpoint::kChat, ctx);   // throws ApiError (4xx)
//
// Accepted: model, messages | prompt (a string, a list of strings, a list of token ids or a list
// of such lists), max_tokens (chat also max_completion_tokens), temperature, top_p, n, stop,
// seed, stream, stream_options.include_usage, logprobs / top_logprobs (chat: bool + 0..k;
// completions: an integer 0..k), and vLLM's extensions top_k, min_p, repetition_penalty,
// ignore_eos, stop_token_ids. Keys the API defines but cada does not implement (tools, logit_bias, penalties,
// echo, best_of, suffix, response_format other than text) are refused when set to anything but
// their neutral value; keys no API defines are refused ("Unrecognized request argument").
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cada/rollout/generator.h"
#include "cada/text/chat_template.h"
#include "cada/text/tokenizer.h"

namespace cada::serve {

// An answer with an HTTP status and OpenAI's error body:
//   {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::string param = "", std::string code = "");
  int status() const { return status_; }
  // invalid_request_error (400, 404, 413, 422), authentication_error (401), server_error (5xx).
  std::string type() const;
  nlohmann::json body() const;

 private:
  int status_;
  std::string param_, code_;
};

// The body of an error answer for any status (used for errors the HTTP library raises itself,
// e.g. 413 for an oversized body).
nlohmann::json error_body(int status, const std::string& message, const std::string& param = "",
                          const std::string& code = "");

enum class Endpoint { kChat, kCompletions };

// What the server knows when it parses a request.
struct ServeContext {
  std::string model_name;                          // the id clients must send as "model"
  const text::Tokenizer* tokenizer = nullptr;      // required
  const text::ChatTemplate* chat_template = nullptr;  // null: chat requests are refused
  int64_t context_length = 0;                      // prompt + completion tokens at most
  int64_t max_n = 64;                              // samples per prompt at most
  int64_t max_top_logprobs = 20;                   // top_logprobs at most
};

struct ParsedRequest {
  Endpoint endpoint = Endpoint::kChat;
  std::vector<std::vector<int32_t>> prompts;  // one for chat; completions may send several
  rollout::SamplingParams params;             // max_new_tokens resolved per prompt in requests()
  std::vector<int64_t> max_new_tokens;        // per prompt
  int64_t n = 1;
  std::optional<uint64_t> seed;               // none: a random seed per request
  bool stream = false;
  bool include_usage = false;                 // stream_options.include_usage
  bool logprobs = false;                      // return the chosen tokens' log-probs
  int64_t top_logprobs = 0;                   // and this many alternatives

  // The engine's requests: one per prompt, each with n samples; sample j of prompt p draws from
  // stream (seed, j), as `cada generate` does for a record with that seed.
  std::vector<rollout::Request> requests(uint64_t random_seed) const;
};

// Throws ApiError for every problem: malformed fields (400), an unknown model (404), a prompt
// longer than the context (400, naming both lengths).
ParsedRequest parse_request(const nlohmann::json& body, Endpoint endpoint, const ServeContext& ctx);

// The body parsed as a JSON object; ApiError 400 naming the position of a syntax error.
nlohmann::json parse_body(const std::string& body);

}  // namespace cada::serve
