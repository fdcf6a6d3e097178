// A small client of OpenAI-compatible servers (OpenAI, vLLM, `cada serve`, ...) over libcurl:
// JSON bodies POSTed to <base_url>/<path>, several at a time, with retries and timeouts.
//
//   OpenAIClient client({"http://127.0.0.1:8000/v1", "", 120, 5, 1.0, 8, "judge 'x'"});
//   auto answers = client.post_all("chat/completions", bodies);   // answers[i] answers bodies[i]
//
// Retried, with exponential backoff and jitter (retry_delay_s): HTTP 429 and 5xx (a Retry-After
// header in seconds is honoured, capped at kMaxRetryAfterS), timeouts, failed connections and
// connections that broke. Not retried: other 4xx, TLS and URL problems. What cannot be retried,
// or still fails after max_retries retries, ends post_all with one cada::Error naming the label,
// the URL, the HTTP status and the server's error.message, e.g.
//   judge 'x': POST http://127.0.0.1:9/v1/chat/completions: no answer within 1 s (3 attempts)
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cada::reward {

// The longest wait a Retry-After header may ask for, in seconds.
constexpr double kMaxRetryAfterS = 60.0;

struct ClientOptions {
  std::string base_url;         // "http://127.0.0.1:8000/v1"; a trailing '/' is ignored
  std::string api_key;          // sent as "Authorization: Bearer <key>" when not empty
  double timeout_s = 120;       // per attempt, connection included
  int64_t max_retries = 5;      // attempts = 1 + max_retries
  double backoff_s = 1.0;       // the first retry waits about this long, each later one twice as long
  int64_t max_concurrency = 8;  // requests in flight at once
  std::string label;            // starts every error message, e.g. "judge 'x'"
};

// Counts since construction.
struct ClientStats {
  int64_t requests = 0;  // POSTs sent, retries included
  int64_t retries = 0;   // POSTs that repeated an earlier one
};

class OpenAIClient {
 public:
  // Checks the options (http:// or https:// URL, positive timeout and concurrency, ...).
  explicit OpenAIClient(ClientOptions opts);
  ~OpenAIClient();
  OpenAIClient(const OpenAIClient&) = delete;
  OpenAIClient& operator=(const OpenAIClient&) = delete;

  // POSTs every body to url(path), at most max_concurrency at a time, each on its own worker's
  // connection; returns the parsed JSON of each 2xx answer, in the order of `bodies`.
  // on_answer(i, answer) runs as each answer arrives (one call at a time, from a worker thread),
  // so that the caller keeps what it got if a later request fails; an exception it throws
  // fails the call like a request error. On the first request that fails for good the requests
  // in flight are abandoned and one cada::Error is thrown.
  std::vector<nlohmann::json> post_all(const std::string& path, const std::vector<nlohmann::json>& bodies,
                                       const std::function<void(size_t, const nlohmann::json&)>& on_answer = {});

  std::string url(const std::string& path) const;  // base_url + "/" + path
  ClientStats stats() const;
  const ClientOptions& options() const { return opts_; }

 private:
  struct Handles;  // one CURL easy handle per worker, kept between calls (connection reuse)
  struct Call;     // the shared state of one post_all
  // nullopt when the call was abandoned because another request failed for good.
  std::optional<nlohmann::json> post_one(size_t worker, const std::string& url, const std::string& body, Call& call);

  ClientOptions opts_;
  std::unique_ptr<Handles> handles_;
  std::atomic<int64_t> requests_{0}, retries_{0};
};

// The wait before retry number `retry` (1 for the first): the Retry-After value when the server
// sent one (capped at kMaxRetryAfterS), else backoff_s * 2^(retry - 1) * (0.5 + 0.5 * u), with
// u in [0, 1) the jitter that keeps many clients from retrying in step.
double retry_delay_s(int64_t retry, double backoff_s, std::optional<double> retry_after_s, double u);

// A Retry-After header value in seconds ("3", " 1.5 "); nullopt for an HTTP date or garbage.
std::optional<double> parse_retry_after(const std::string& value);

// The server's explanation in an error body: error.message (OpenAI), message (vLLM), detail
// (FastAPI), else the body itself shortened to 300 bytes.
std::string server_error_message(const std::string& body);

}  // namespace cada::reward
