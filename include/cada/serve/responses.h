// OpenAI response bodies for `cada serve`: whole answers, stream chunks, log-probs, and the text of
// a growing completion released in pieces that never change (streaming).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cada/rollout/generator.h"
#include "cada/serve/protocol.h"
#include "cada/text/tokenizer.h"

namespace cada::serve {

// What every answer to one request carries.
struct ResponseMeta {
  std::string id;      // "chatcmpl-..." / "cmpl-..."
  int64_t created = 0; // unix seconds
  std::string model;
};

// A new id: the prefix and 24 random hex digits.
std::string new_response_id(const std::string& prefix);

// The non-streaming answer: one choice per (prompt, sample), index p * n + s, with usage.
nlohmann::json response_body(const ParsedRequest& req, const ResponseMeta& meta,
                             const std::vector<std::vector<rollout::Completion>>& results, const text::Tokenizer& tok);

// usage: prompt tokens counted once per prompt (not per sample), completion tokens over all samples.
nlohmann::json usage_json(const ParsedRequest& req, const std::vector<std::vector<rollout::Completion>>& results);

// One stream chunk for choice `index`: chat's delta {"content": text} (with role on the first
// chunk) or the completions "text"; finish_reason null until the last; logprobs of tokens
// [from, to) of `c` when the request asked for them.
nlohmann::json stream_chunk(const ParsedRequest& req, const ResponseMeta& meta, int64_t index, const std::string& text,
                            bool first, const std::optional<std::string>& finish_reason, const rollout::Completion* c,
                            size_t from, size_t to, const text::Tokenizer& tok);
// The last chunk when stream_options.include_usage: no choices, the usage.
nlohmann::json usage_chunk(const ParsedRequest& req, const ResponseMeta& meta, const nlohmann::json& usage);

// Log-probs of tokens [from, to) of c: chat's {"content": [{token, logprob, bytes, top_logprobs}]}
// or the completions' {tokens, token_logprobs, top_logprobs, text_offset}. Token strings are the
// token decoded alone (invalid UTF-8 replaced; "bytes" keeps the raw bytes).
nlohmann::json logprobs_json(Endpoint endpoint, const rollout::Completion& c, size_t from, size_t to,
                             int64_t top, const text::Tokenizer& tok);

// JSON text with invalid UTF-8 (a token cut inside a character) replaced by U+FFFD.
std::string dump(const nlohmann::json& j);

// The text of a growing completion, released in pieces that are never taken back: an incomplete
// character at the end and any ending that could begin a stop string are held back.
class IncrementalText {
 public:
  IncrementalText(const text::Tokenizer& tok, std::vector<std::string> stops);
  // New text safe to send after these ids ("" when none).
  std::string update(const std::vector<int32_t>& ids);
  // What is left to send, given the completion's final text (already cut at a stop string).
  std::string finish(const std::string& final_text);

 private:
  const text::Tokenizer& tok_;
  std::vector<std::string> stops_;
  std::string sent_;
  bool stopped_ = false;
};

}  // namespace cada::serve
