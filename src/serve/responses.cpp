// OpenAI response bodies, stream chunks, log-probs and incremental text for `cada serve`.
#include "cada/serve/responses.h"

#include <algorithm>
#include <random>

#include "cada/text/unicode.h"

namespace cada::serve {

using nlohmann::json;

std::string new_response_id(const std::string& prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string id = prefix + "-";
  for (int i = 0; i < 24; ++i) id += hex[rng() & 15];
  return id;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

namespace {

// The token decoded alone, valid UTF-8 (a lone piece of a character becomes U+FFFD), and its bytes.
std::pair<std::string, json> token_text(const text::Tokenizer& tok, int32_t id) {
  const std::string raw = tok.decode({id}, /*skip_special_tokens=*/false);
  json bytes = json::array();
  for (unsigned char c : raw) bytes.push_back(static_cast<int>(c));
  return {text::utf8_lossy(raw), bytes};
}

json chat_logprobs(const rollout::Completion& c, size_t from, size_t to, int64_t top, const text::Tokenizer& tok) {
  json content = json::array();
  for (size_t i = from; i < to; ++i) {
    auto [t, b] = token_text(tok, c.ids[i]);
    json alts = json::array();
    if (top > 0 && i < c.top_logprobs.size())
      for (const auto& [id, lp] : c.top_logprobs[i]) {
        if (static_cast<int64_t>(alts.size()) >= top) break;
        auto [at, ab] = token_text(tok, id);
        alts.push_back({{"token", at}, {"logprob", lp}, {"bytes", ab}});
      }
    content.push_back({{"token", t}, {"logprob", c.logprobs[i]}, {"bytes", b}, {"top_logprobs", alts}});
  }
  return {{"content", content}};
}

// Code points in s (its UTF-8 lead bytes).
size_t chars(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

json completion_logprobs(const rollout::Completion& c, size_t from, size_t to, int64_t top, const text::Tokenizer& tok) {
  json tokens = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
  for (size_t i = from; i < to; ++i) {
    tokens.push_back(token_text(tok, c.ids[i]).first);
    lps.push_back(c.logprobs[i]);
    // The character offset of the token in the text: the length of the text before it.
    offsets.push_back(chars(tok.decode(std::vector<int32_t>(c.ids.begin(), c.ids.begin() + i), true)));
    json alts = json::object();
    if (i < c.top_logprobs.size())
      for (const auto& [id, lp] : c.top_logprobs[i]) {
        if (static_cast<int64_t>(alts.size()) >= top) break;
        alts[token_text(tok, id).first] = lp;  // tokens that decode alike share a key, as in OpenAI's format
      }
    tops.push_back(top > 0 ? alts : json(nullptr));
  }
  return {{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

const char* object_name(Endpoint e, bool chunk) {
  if (e == Endpoint::kChat) return chunk ? "chat.completion.chunk" : "chat.completion";
  return "text_completion";
}

json header(const ParsedRequest& req, const ResponseMeta& meta, bool chunk) {
  return {{"id", meta.id},
          {"object", object_name(req.endpoint, chunk)},
          {"created", meta.created},
          {"model", meta.model},
          {"system_fingerprint", std::string("cada-") + CADA_VERSION}};
}

}  // namespace

json logprobs_json(Endpoint endpoint, const rollout::Completion& c, size_t from, size_t to, int64_t top,
                   const text::Tokenizer& tok) {
  to = std::min(to, c.ids.size());
  return endpoint == Endpoint::kChat ? chat_logprobs(c, from, to, top, tok) : completion_logprobs(c, from, to, top, tok);
}

json usage_json(const ParsedRequest& req, const std::vector<std::vector<rollout::Completion>>& results) {
  int64_t prompt = 0, completion = 0;
  for (const auto& p : req.prompts) prompt += static_cast<int64_t>(p.size());
  for (const auto& cs : results)
    for (const auto& c : cs) completion += static_cast<int64_t>(c.ids.size());
  return {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
}

json response_body(const ParsedRequest& req, const ResponseMeta& meta,
                   const std::vector<std::vector<rollout::Completion>>& results, const text::Tokenizer& tok) {
  json out = header(req, meta, false);
  json choices = json::array();
  for (size_t p = 0; p < results.size(); ++p)
    for (size_t s = 0; s < results[p].size(); ++s) {
      const auto& c = results[p][s];
      json choice = {{"index", p * req.n + s}, {"finish_reason", c.finish_reason}, {"logprobs", nullptr}};
      if (req.logprobs) choice["logprobs"] = logprobs_json(req.endpoint, c, 0, c.ids.size(), req.top_logprobs, tok);
      if (req.endpoint == Endpoint::kChat) choice["message"] = {{"role", "assistant"}, {"content", c.text}};
      else choice["text"] = c.text;
      choices.push_back(std::move(choice));
    }
  out["choices"] = std::move(choices);
  out["usage"] = usage_json(req, results);
  return out;
}

json stream_chunk(const ParsedRequest& req, const ResponseMeta& meta, int64_t index, const std::string& text, bool first,
                  const std::optional<std::string>& finish_reason, const rollout::Completion* c, size_t from, size_t to,
                  const text::Tokenizer& tok) {
  json out = header(req, meta, true);
  json choice = {{"index", index}, {"logprobs", nullptr}};
  choice["finish_reason"] = finish_reason ? json(*finish_reason) : json(nullptr);
  if (req.logprobs && c && to > from) choice["logprobs"] = logprobs_json(req.endpoint, *c, from, to, req.top_logprobs, tok);
  if (req.endpoint == Endpoint::kChat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || (first && !finish_reason)) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  out["choices"] = json::array({choice});
  if (req.include_usage) out["usage"] = nullptr;
  return out;
}

json usage_chunk(const ParsedRequest& req, const ResponseMeta& meta, const json& usage) {
  json out = header(req, meta, true);
  out["choices"] = json::array();
  out["usage"] = usage;
  return out;
}

// ------------------------------------------------------------------ incremental text

IncrementalText::IncrementalText(const text::Tokenizer& tok, std::vector<std::string> stops)
    : tok_(tok), stops_(std::move(stops)) {}

namespace {

// Length of s without an incomplete UTF-8 sequence or U+FFFD replacement characters at its end.
size_t complete_prefix(const std::string& s) {
  size_t n = s.size();
  while (n >= 3 && s.compare(n - 3, 3, "\xEF\xBF\xBD") == 0) n -= 3;
  size_t i = n, back = 0;
  while (i > 0 && back < 4 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) {
    --i;
    ++back;
  }
  if (i == 0) return n;
  const unsigned char lead = static_cast<unsigned char>(s[i - 1]);
  const size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  return (need > 1 && back + 1 < need) ? i - 1 : n;
}

}  // namespace

std::string IncrementalText::update(const std::vector<int32_t>& ids) {
  if (stopped_) return "";
  std::string full = tok_.decode(ids, /*skip_special_tokens=*/true);
  size_t end = complete_prefix(full);
  size_t hit = std::string::npos;
  for (const auto& s : stops_) hit = std::min(hit, full.find(s));
  if (hit != std::string::npos) {
    end = std::min(end, hit);
    stopped_ = true;
  } else {
    // Hold back an ending that could be the start of a stop string.
    size_t hold = 0;
    for (const auto& s : stops_)
      for (size_t k = std::min(s.size() - 1, end); k > hold; --k)
        if (full.compare(end - k, k, s, 0, k) == 0) {
          hold = k;
          break;
        }
    end -= hold;
  }
  if (end <= sent_.size() || full.compare(0, sent_.size(), sent_) != 0) return "";
  std::string delta = full.substr(sent_.size(), end - sent_.size());
  sent_ += delta;
  return delta;
}

std::string IncrementalText::finish(const std::string& final_text) {
  if (final_text.size() < sent_.size() || final_text.compare(0, sent_.size(), sent_) != 0) return "";
  std::string rest = final_text.substr(sent_.size());
  sent_ = final_text;
  return rest;
}

}  // namespace cada::serve
