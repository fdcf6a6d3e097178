// The OpenAI-compatible HTTP client: libcurl easy handles, one per worker thread, retries with
// backoff, and one clear error for a request that fails for good.
#include "cada/reward/openai_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <random>
#include <system_error>
#include <thread>

#include "cada/util/error.h"
#include "cada/util/strings.h"

namespace cada::reward {

using nlohmann::json;

namespace {

std::string seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", s);
  return buf;
}

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    CADA_CHECK(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK, "libcurl could not be initialised");
  });
}

// What one POST brought back.
struct Attempt {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string body;
  std::optional<double> retry_after;
  char error[CURL_ERROR_SIZE] = {0};
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  static_cast<Attempt*>(user)->body.append(data, size * n);
  return size * n;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* a = static_cast<Attempt*>(user);
  const std::string line(data, size * n);
  static const std::string kName = "retry-after:";
  if (line.rfind("HTTP/", 0) == 0) a->retry_after.reset();  // a new response starts
  if (line.size() > kName.size()) {
    std::string head = line.substr(0, kName.size());
    std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return std::tolower(c); });
    if (head == kName) a->retry_after = parse_retry_after(line.substr(kName.size()));
  }
  return size * n;
}

// A non-zero return abandons the transfer: another request of the call failed for good.
int on_progress(void* abort, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<std::atomic<bool>*>(abort)->load() ? 1 : 0;
}

bool retryable_transport(CURLcode c) {
  switch (c) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
      return true;
    default:
      return false;
  }
}

double jitter() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

}  // namespace

// ------------------------------------------------------------------ helpers

double retry_delay_s(int64_t retry, double backoff_s, std::optional<double> retry_after_s, double u) {
  if (retry_after_s) return std::clamp(*retry_after_s, 0.0, kMaxRetryAfterS);
  const double base = backoff_s * std::pow(2.0, static_cast<double>(std::max<int64_t>(retry, 1) - 1));
  return base * (0.5 + 0.5 * std::clamp(u, 0.0, 1.0));
}

std::optional<double> parse_retry_after(const std::string& value) {
  const std::string v = util::trim(value);
  if (v.empty()) return std::nullopt;
  for (char c : v)
    if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.') return std::nullopt;
  try {
    return std::stod(v);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string server_error_message(const std::string& body) {
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    if (j.contains("error") && j["error"].is_object() && j["error"].contains("message") &&
        j["error"]["message"].is_string())
      return j["error"]["message"].get<std::string>();
    if (j.contains("error") && j["error"].is_string()) return j["error"].get<std::string>();
    if (j.contains("message") && j["message"].is_string()) return j["message"].get<std::string>();
    if (j.contains("detail") && j["detail"].is_string()) return j["detail"].get<std::string>();
  }
  const std::string t = util::trim(body);
  if (t.empty()) return "(empty body)";
  return t.size() > 300 ? t.substr(0, 300) + "..." : t;
}

// ------------------------------------------------------------------ the client

struct OpenAIClient::Handles {
  std::vector<CURL*> easy;
  ~Handles() {
    for (CURL* h : easy) curl_easy_cleanup(h);
  }
};

struct OpenAIClient::Call {
  std::atomic<bool> abort{false};
  std::mutex m;                // guards error; with cv, wakes workers waiting to retry
  std::condition_variable cv;
  std::string error;           // the first failure
  std::mutex answer_m;         // on_answer runs one at a time
  void fail(const std::string& msg) {
    {
      std::lock_guard<std::mutex> lock(m);
      if (error.empty()) error = msg;
      abort = true;
    }
    cv.notify_all();
  }
};

OpenAIClient::OpenAIClient(ClientOptions opts) : opts_(std::move(opts)), handles_(std::make_unique<Handles>()) {
  while (!opts_.base_url.empty() && opts_.base_url.back() == '/') opts_.base_url.pop_back();
  const std::string who = opts_.label.empty() ? "OpenAI client" : opts_.label;
  CADA_CHECK(opts_.base_url.rfind("http://", 0) == 0 || opts_.base_url.rfind("https://", 0) == 0, who,
             ": base_url must start with http:// or https://, got '", opts_.base_url, "'");
  CADA_CHECK(opts_.timeout_s > 0 && std::isfinite(opts_.timeout_s), who, ": timeout_s must be positive, got ",
             opts_.timeout_s);
  CADA_CHECK(opts_.max_retries >= 0, who, ": max_retries must be >= 0, got ", opts_.max_retries);
  CADA_CHECK(opts_.backoff_s >= 0 && std::isfinite(opts_.backoff_s), who, ": backoff_s must be >= 0, got ",
             opts_.backoff_s);
  CADA_CHECK(opts_.max_concurrency >= 1, who, ": max_concurrency must be >= 1, got ", opts_.max_concurrency);
  curl_init_once();
  for (int64_t i = 0; i < opts_.max_concurrency; ++i) {
    CURL* h = curl_easy_init();
    CADA_CHECK(h != nullptr, who, ": libcurl could not create a handle");
    handles_->easy.push_back(h);
  }
}

OpenAIClient::~OpenAIClient() = default;

std::string OpenAIClient::url(const std::string& path) const { return opts_.base_url + "/" + path; }

ClientStats OpenAIClient::stats() const { return {requests_.load(), retries_.load()}; }

namespace {

// One POST on handle `h`; the transfer stops early when *abort becomes true.
Attempt perform(CURL* h, const std::string& url, const std::string& body, const std::string& api_key,
                double timeout_s, std::atomic<bool>* abort) {
  Attempt a;
  curl_easy_reset(h);
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Accept: application/json");
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip for large bodies
  const std::string auth = "Authorization: Bearer " + api_key;
  if (!api_key.empty()) headers = curl_slist_append(headers, auth.c_str());
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "cada/" CADA_VERSION);
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, std::max(1L, static_cast<long>(std::ceil(timeout_s * 1000))));
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM: we run in threads
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &a);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, a.error);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, abort);
  a.code = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a.status);
  curl_slist_free_all(headers);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);  // `a` (and its buffer) goes out of scope
  return a;
}

std::string transport_problem(const Attempt& a, double timeout_s) {
  if (a.code == CURLE_OPERATION_TIMEDOUT) return "no answer within " + seconds(timeout_s) + " s";
  const std::string detail = a.error[0] ? std::string(a.error) : std::string(curl_easy_strerror(a.code));
  if (a.code == CURLE_COULDNT_CONNECT || a.code == CURLE_COULDNT_RESOLVE_HOST || a.code == CURLE_COULDNT_RESOLVE_PROXY)
    return "could not connect (" + detail + ")";
  if (retryable_transport(a.code)) return "the connection broke (" + detail + ")";
  return detail;
}

std::string attempts_text(int64_t n) { return " (" + std::to_string(n) + (n == 1 ? " attempt)" : " attempts)"); }

}  // namespace

// nullopt: the call was abandoned (another request failed for good).
std::optional<json> OpenAIClient::post_one(size_t worker, const std::string& url, const std::string& body,
                                           Call& call) {
  CURL* h = handles_->easy.at(worker);
  const std::string where = (opts_.label.empty() ? "" : opts_.label + ": ") + "POST " + url + ": ";
  const int64_t attempts = 1 + opts_.max_retries;
  for (int64_t n = 1;; ++n) {
    if (call.abort) return std::nullopt;
    ++requests_;
    if (n > 1) ++retries_;
    Attempt a = perform(h, url, body, opts_.api_key, opts_.timeout_s, &call.abort);
    if (a.code == CURLE_ABORTED_BY_CALLBACK) return std::nullopt;
    std::string problem;
    if (a.code != CURLE_OK) {
      problem = transport_problem(a, opts_.timeout_s);
      if (!retryable_transport(a.code)) CADA_FAIL(where, problem, attempts_text(n));
    } else if (a.status >= 200 && a.status < 300) {
      json j = json::parse(a.body, nullptr, /*allow_exceptions=*/false);
      CADA_CHECK(!j.is_discarded(), where, "HTTP ", a.status, " with a body that is not JSON: ",
                 server_error_message(a.body), attempts_text(n));
      return j;
    } else {
      problem = "HTTP " + std::to_string(a.status) + ": " + server_error_message(a.body);
      if (a.status != 429 && a.status < 500) CADA_FAIL(where, problem, attempts_text(n));
    }
    if (n >= attempts) CADA_FAIL(where, problem, attempts_text(n));
    const double wait = retry_delay_s(n, opts_.backoff_s, a.retry_after, jitter());
    std::unique_lock<std::mutex> lock(call.m);
    call.cv.wait_for(lock, std::chrono::duration<double>(wait), [&] { return call.abort.load(); });
  }
}

std::vector<json> OpenAIClient::post_all(const std::string& path, const std::vector<json>& bodies,
                                         const std::function<void(size_t, const json&)>& on_answer) {
  std::vector<json> out(bodies.size());
  if (bodies.empty()) return out;
  const std::string u = url(path);
  Call call;
  std::atomic<size_t> next{0};
  auto work = [&](size_t worker) {
    for (size_t i = next++; i < bodies.size() && !call.abort; i = next++) {
      std::optional<json> answer;
      try {
        // Invalid UTF-8 (a generation cut inside a character) becomes U+FFFD rather than an error.
        answer = post_one(worker, u, bodies[i].dump(-1, ' ', false, json::error_handler_t::replace), call);
      } catch (const std::exception& e) {
        call.fail(e.what());
      }
      if (!answer) return;
      if (on_answer) {
        std::lock_guard<std::mutex> lock(call.answer_m);
        if (call.abort) return;
        try {
          on_answer(i, *answer);
        } catch (const std::exception& e) {
          call.fail((opts_.label.empty() ? "" : opts_.label + ": ") + "POST " + u + ": " + e.what());
          return;
        }
      }
      out[i] = std::move(*answer);
    }
  };
  const size_t workers = std::min(static_cast<size_t>(opts_.max_concurrency), bodies.size());
  std::vector<std::thread> threads;
  try {
    for (size_t w = 1; w < workers; ++w) threads.emplace_back(work, w);
  } catch (const std::system_error&) {  // no more threads: the ones that started share the work
  }
  work(0);
  for (auto& t : threads) t.join();
  if (!call.error.empty()) throw Error(call.error);
  return out;
}

}  // namespace cada::reward
