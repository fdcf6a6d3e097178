// A judge behind an OpenAI-compatible server: the `endpoint` of a judge reward.
//
//   {"name": "guard", "type": "judge", "parser": "safe_unsafe", "template_file": "guard.txt",
//    "endpoint": {"base_url": "http://127.0.0.1:8000/v1", "model": "llama-guard"}}
//
// Requests (one per judged sample; identical ones within a call are sent once):
//   generation parsers (safe_unsafe, strongreject):
//     POST <base_url>/chat/completions {model, messages: [system?, user], temperature: 0,
//                                       max_tokens: max_new_tokens}  -> choices[0].message.content
//     raw: POST <base_url>/completions {model, prompt, temperature: 0, max_tokens} -> choices[0].text
//   log-prob parsers (yes_no, expectation): the first generated token's top log-probs,
//     chat: {..., max_tokens: 1, temperature: 0, logprobs: true, top_logprobs: K}
//           -> choices[0].logprobs.content[0].top_logprobs[*].{token, logprob}
//     raw:  {..., max_tokens: 1, temperature: 0, logprobs: K}
//           -> choices[0].logprobs.top_logprobs[0] (an object token -> logprob)
//     Token strings are matched exactly (" Yes" is not "Yes"); a group's log-prob is the
//     logsumexp over every matching entry, -inf when none is among the top K.
//
// Answers come from the on-disk cache (judge_cache.h) when present; successful, parseable
// answers are appended to it as they arrive. Each call logs one line:
//   judge 'x': 40 answers (12 requests, 28 from the cache, 2 retries)
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cada/reward/judge.h"
#include "cada/util/config.h"

namespace cada::reward {

class OpenAIClient;
class JudgeCache;

// The judge's "endpoint" object; unknown keys are refused.
struct EndpointOptions {
  std::string base_url;         // required: "http://127.0.0.1:8000/v1", "https://api.openai.com/v1"
  std::string model;            // required: the model name the server knows
  std::string api_key_env;      // environment variable holding the API key ("" = no key sent)
  double timeout_s = 120;       // per attempt
  int64_t max_retries = 5;      // retries of 429, 5xx, timeouts and failed connections
  double backoff_s = 1.0;       // first retry's wait; doubled each time, with jitter
  int64_t max_concurrency = 8;  // requests in flight at once
  int64_t top_logprobs = 20;    // yes_no / expectation: alternatives asked for (OpenAI allows <= 20)
  bool cache = true;            // answers cached on disk
  std::string cache_dir;        // "" = $XDG_CACHE_HOME/cada/judge or $HOME/.cache/cada/judge
  template <class V>
  void visit(V& v) {
    v("base_url", base_url, "server URL up to the API version, e.g. http://127.0.0.1:8000/v1");
    v("model", model, "model name sent in every request");
    v("api_key_env", api_key_env, "environment variable holding the API key (sent as a Bearer token)");
    v("timeout_s", timeout_s, "seconds to wait for one answer", config::Range::above(0));
    v("max_retries", max_retries, "retries of 429, 5xx, timeouts and failed connections", config::Range::at_least(0));
    v("backoff_s", backoff_s, "wait before the first retry, doubled each time (with jitter)", config::Range::at_least(0));
    v("max_concurrency", max_concurrency, "requests in flight at once", config::Range::at_least(1));
    v("top_logprobs", top_logprobs, "yes_no / expectation: top log-probs asked for", config::Range::at_least(1));
    v("cache", cache, "keep answers on disk and reuse them for identical requests");
    v("cache_dir", cache_dir, "cache folder (default $XDG_CACHE_HOME/cada/judge or ~/.cache/cada/judge)");
  }
};

// Problems that need no network: base_url scheme, a model name, an API key variable that is
// named but unset, no cache folder to default to. Appends one sentence per problem, naming the
// key as "endpoint.<key>".
void check_endpoint(const EndpointOptions& o, std::vector<std::string>& problems);

// Counts since construction.
struct HttpJudgeStats {
  int64_t answers = 0;     // prompts answered
  int64_t requests = 0;    // POSTs sent, retries included
  int64_t cache_hits = 0;  // answers from the cache (or repeated within one call)
  int64_t retries = 0;
};

class HttpJudgeBackend : public JudgeBackend {
 public:
  // `name` is the judge reward's name (in messages); `system` is sent as a system message
  // ("" = none; not allowed with raw); `raw` uses /completions with the filled template.
  // Reads the API key from the environment and opens the cache; sends nothing.
  HttpJudgeBackend(std::string name, EndpointOptions endpoint, std::string system, bool raw,
                   int64_t max_new_tokens);
  ~HttpJudgeBackend() override;

  std::vector<std::string> generate(const std::vector<std::string>& prompts) override;
  std::vector<std::vector<double>> choice_logprobs(const std::vector<std::string>& prompts,
                                                   const std::vector<std::vector<std::string>>& groups) override;

  // The request body for one filled judge prompt (`logprobs`: the one-token log-prob request).
  nlohmann::json request_body(const std::string& prompt, bool logprobs) const;
  // "chat/completions" or "completions".
  std::string path() const { return raw_ ? "completions" : "chat/completions"; }
  HttpJudgeStats stats() const { return stats_; }
  // The cache file ("" when the cache is off).
  std::string cache_path() const;

 private:
  // One answer per prompt: {"text": ...} or {"top_logprobs": [[token, logprob], ...]};
  // null for an answer without content (a parse failure for the judge, never cached).
  std::vector<nlohmann::json> answers(const std::vector<std::string>& prompts, bool logprobs);
  // The cacheable answer in a server response; throws when a log-prob answer has no logprobs.
  nlohmann::json extract(const nlohmann::json& response, bool logprobs) const;

  std::string name_;
  EndpointOptions endpoint_;
  std::string system_;
  bool raw_;
  int64_t max_new_tokens_;
  std::unique_ptr<OpenAIClient> client_;
  std::unique_ptr<JudgeCache> cache_;
  HttpJudgeStats stats_;
};

// Log-probs of token groups from a cached top-log-probs answer ({"top_logprobs": [[t, lp], ...]}):
// out[g] = logsumexp of lp over the entries whose t is in groups[g] (exact match), -inf if none.
std::vector<double> group_logprobs(const nlohmann::json& answer, const std::vector<std::vector<std::string>>& groups);

}  // namespace cada::reward
