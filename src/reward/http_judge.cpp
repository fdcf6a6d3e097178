// The HTTP judge backend: request bodies, the cache in front of the client, and the answers
// (generated text or the first token's top log-probs) read from OpenAI-shaped responses.
#include "cada/reward/http_judge.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>

#include "cada/reward/judge_cache.h"
#include "cada/reward/openai_client.h"
#include "cada/util/log.h"

namespace cada::reward {

using nlohmann::json;

namespace {

bool http_url(const std::string& u) { return u.rfind("http://", 0) == 0 || u.rfind("https://", 0) == 0; }

// "1 answer", "2 answers".
std::string counted(int64_t n, const std::string& one, const std::string& many = "") {
  return std::to_string(n) + " " + (n == 1 ? one : many.empty() ? one + "s" : many);
}

std::string canonical(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string excerpt(const json& j) {
  std::string s = canonical(j);
  return s.size() > 300 ? s.substr(0, 300) + "..." : s;
}

std::string api_key_of(const EndpointOptions& o, const std::string& who) {
  if (o.api_key_env.empty()) return "";
  const char* k = std::getenv(o.api_key_env.c_str());
  CADA_CHECK(k && *k, who, ": endpoint.api_key_env names ", o.api_key_env, ", which is not set");
  return k;
}

// [token, logprob] pairs of the first generated token; null when the answer has none.
json top_logprobs_chat(const json& lp) {
  CADA_CHECK(lp.contains("content") && lp["content"].is_array(),
             "the answer has no choices[0].logprobs.content list: ", excerpt(lp));
  if (lp["content"].empty()) return nullptr;
  const json& first = lp["content"][0];
  CADA_CHECK(first.is_object() && first.contains("top_logprobs") && first["top_logprobs"].is_array(),
             "the answer has no choices[0].logprobs.content[0].top_logprobs list: ", excerpt(first));
  json out = json::array();
  for (const auto& e : first["top_logprobs"])
    if (e.is_object() && e.contains("token") && e["token"].is_string() && e.contains("logprob") &&
        e["logprob"].is_number())
      out.push_back({e["token"], e["logprob"].get<double>()});
  return out;
}

json top_logprobs_completions(const json& lp) {
  CADA_CHECK(lp.contains("top_logprobs") && lp["top_logprobs"].is_array(),
             "the answer has no choices[0].logprobs.top_logprobs list: ", excerpt(lp));
  if (lp["top_logprobs"].empty() || !lp["top_logprobs"][0].is_object()) return nullptr;
  json out = json::array();
  for (auto it = lp["top_logprobs"][0].begin(); it != lp["top_logprobs"][0].end(); ++it)
    if (it.value().is_number()) out.push_back({it.key(), it.value().get<double>()});
  return out;
}

// A cached answer of the expected kind (a hand-edited or foreign line is asked again).
bool well_formed(const json& a, bool logprobs) {
  if (!logprobs) return a.contains("text") && a["text"].is_string();
  if (!a.contains("top_logprobs") || !a["top_logprobs"].is_array()) return false;
  for (const auto& e : a["top_logprobs"])
    if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_number()) return false;
  return true;
}

}  // namespace

void check_endpoint(const EndpointOptions& o, std::vector<std::string>& problems) {
  if (o.base_url.empty())
    problems.push_back("'endpoint.base_url' is required, e.g. \"http://127.0.0.1:8000/v1\"");
  else if (!http_url(o.base_url))
    problems.push_back("'endpoint.base_url' must start with http:// or https://, got '" + o.base_url + "'");
  if (o.model.empty()) problems.push_back("'endpoint.model' is required (the model name the server knows)");
  if (!o.api_key_env.empty()) {
    const char* k = std::getenv(o.api_key_env.c_str());
    if (!k || !*k)
      problems.push_back("'endpoint.api_key_env' names the environment variable " + o.api_key_env +
                         ", which is not set (export it, or drop api_key_env for a server without keys)");
  }
  if (o.cache && o.cache_dir.empty() && default_judge_cache_dir().empty())
    problems.push_back("'endpoint.cache' is on, but there is no 'cache_dir' and neither XDG_CACHE_HOME nor HOME is set");
}

std::vector<double> group_logprobs(const json& answer, const std::vector<std::vector<std::string>>& groups) {
  const double kNone = -std::numeric_limits<double>::infinity();
  std::vector<double> out(groups.size(), kNone);
  if (!answer.is_object() || !answer.contains("top_logprobs")) return out;
  for (size_t g = 0; g < groups.size(); ++g) {
    std::vector<double> lps;
    for (const auto& e : answer["top_logprobs"]) {
      const std::string& token = e[0].get_ref<const std::string&>();
      if (std::find(groups[g].begin(), groups[g].end(), token) != groups[g].end()) lps.push_back(e[1].get<double>());
    }
    if (lps.empty()) continue;
    const double m = *std::max_element(lps.begin(), lps.end());
    double s = 0;
    for (double lp : lps) s += std::exp(lp - m);
    out[g] = m + std::log(s);
  }
  return out;
}

HttpJudgeBackend::HttpJudgeBackend(std::string name, EndpointOptions endpoint, std::string system, bool raw,
                                   int64_t max_new_tokens)
    : name_(std::move(name)), endpoint_(std::move(endpoint)), system_(std::move(system)), raw_(raw),
      max_new_tokens_(max_new_tokens) {
  const std::string who = "judge '" + name_ + "'";
  CADA_CHECK(!raw_ || system_.empty(), who, ": a system prompt needs chat messages (raw = false)");
  CADA_CHECK(!endpoint_.model.empty(), who, ": endpoint.model is required");
  CADA_CHECK(endpoint_.top_logprobs >= 1, who, ": endpoint.top_logprobs must be >= 1");
  ClientOptions c;
  c.base_url = endpoint_.base_url;
  c.api_key = api_key_of(endpoint_, who);
  c.timeout_s = endpoint_.timeout_s;
  c.max_retries = endpoint_.max_retries;
  c.backoff_s = endpoint_.backoff_s;
  c.max_concurrency = endpoint_.max_concurrency;
  c.label = who;
  client_ = std::make_unique<OpenAIClient>(c);
  if (endpoint_.cache) {
    const std::string dir = endpoint_.cache_dir.empty() ? default_judge_cache_dir() : expand_home(endpoint_.cache_dir);
    CADA_CHECK(!dir.empty(), who, ": no cache folder (set endpoint.cache_dir, XDG_CACHE_HOME or HOME)");
    cache_ = std::make_unique<JudgeCache>(dir, judge_cache_file_name(endpoint_.model));
  }
}

HttpJudgeBackend::~HttpJudgeBackend() = default;

std::string HttpJudgeBackend::cache_path() const { return cache_ ? cache_->path() : ""; }

json HttpJudgeBackend::request_body(const std::string& prompt, bool logprobs) const {
  json body = {{"model", endpoint_.model}, {"temperature", 0}};
  if (raw_) {
    body["prompt"] = prompt;
  } else {
    json messages = json::array();
    if (!system_.empty()) messages.push_back({{"role", "system"}, {"content", system_}});
    messages.push_back({{"role", "user"}, {"content", prompt}});
    body["messages"] = std::move(messages);
  }
  if (!logprobs) {
    body["max_tokens"] = max_new_tokens_;
  } else if (raw_) {  // the completions API: logprobs is the number of alternatives
    body["max_tokens"] = 1;
    body["logprobs"] = endpoint_.top_logprobs;
  } else {
    body["max_tokens"] = 1;
    body["logprobs"] = true;
    body["top_logprobs"] = endpoint_.top_logprobs;
  }
  return body;
}

json HttpJudgeBackend::extract(const json& r, bool logprobs) const {
  CADA_CHECK(r.is_object() && r.contains("choices") && r["choices"].is_array() && !r["choices"].empty() &&
                 r["choices"][0].is_object(),
             "the answer has no choices[0]: ", excerpt(r));
  const json& c = r["choices"][0];
  if (!logprobs) {
    const json* text = nullptr;
    if (raw_ && c.contains("text")) text = &c["text"];
    if (!raw_ && c.contains("message") && c["message"].is_object() && c["message"].contains("content"))
      text = &c["message"]["content"];
    if (!text || !text->is_string()) return nullptr;  // e.g. content null: a parse failure, not cached
    return {{"text", *text}};
  }
  CADA_CHECK(c.contains("logprobs") && c["logprobs"].is_object(),
             "the answer has no choices[0].logprobs; the server must support ",
             raw_ ? "'logprobs' on /completions" : "'logprobs' and 'top_logprobs' on /chat/completions");
  json top = raw_ ? top_logprobs_completions(c["logprobs"]) : top_logprobs_chat(c["logprobs"]);
  if (top.is_null()) return nullptr;
  return {{"top_logprobs", std::move(top)}};
}

std::vector<json> HttpJudgeBackend::answers(const std::vector<std::string>& prompts, bool logprobs) {
  std::vector<json> out(prompts.size());
  std::vector<json> bodies;             // one per distinct request not in the cache
  std::vector<std::string> keys;        // their cache keys
  std::vector<std::vector<size_t>> who; // the prompts each one answers
  std::map<std::string, size_t> pending;
  int64_t hits = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    json body = request_body(prompts[i], logprobs);
    const std::string key = sha256_hex(path() + "\n" + canonical(body));
    auto a = cache_ ? cache_->get(key) : std::nullopt;
    if (a && well_formed(*a, logprobs)) {
      out[i] = std::move(*a);
      ++hits;
    } else if (auto it = pending.find(key); it != pending.end()) {
      who[it->second].push_back(i);
      ++hits;
    } else {
      pending[key] = bodies.size();
      bodies.push_back(std::move(body));
      keys.push_back(key);
      who.push_back({i});
    }
  }
  const ClientStats before = client_->stats();
  auto count = [&] {
    const ClientStats after = client_->stats();
    stats_.requests += after.requests - before.requests;
    stats_.retries += after.retries - before.retries;
    stats_.cache_hits += hits;
  };
  std::vector<json> got(bodies.size());
  try {
    client_->post_all(path(), bodies, [&](size_t k, const json& response) {
      got[k] = extract(response, logprobs);
      if (cache_ && !got[k].is_null()) cache_->put(keys[k], got[k]);
    });
  } catch (...) {
    count();
    throw;
  }
  count();
  for (size_t k = 0; k < bodies.size(); ++k)
    for (size_t i : who[k]) out[i] = got[k];
  stats_.answers += static_cast<int64_t>(prompts.size());
  const ClientStats now = client_->stats();
  CADA_INFO("judge '", name_, "': ", counted(static_cast<int64_t>(prompts.size()), "answer"), " (",
            counted(now.requests - before.requests, "request"), ", ", hits, " from the cache, ",
            counted(now.retries - before.retries, "retry", "retries"), ")");
  return out;
}

std::vector<std::string> HttpJudgeBackend::generate(const std::vector<std::string>& prompts) {
  std::vector<std::string> out;
  out.reserve(prompts.size());
  for (const auto& a : answers(prompts, /*logprobs=*/false))
    out.push_back(a.is_object() ? a["text"].get<std::string>() : std::string());
  return out;
}

std::vector<std::vector<double>> HttpJudgeBackend::choice_logprobs(const std::vector<std::string>& prompts,
                                                                   const std::vector<std::vector<std::string>>& groups) {
  std::vector<std::vector<double>> out;
  out.reserve(prompts.size());
  for (const auto& a : answers(prompts, /*logprobs=*/true)) out.push_back(group_logprobs(a, groups));
  return out;
}

}  // namespace cada::reward
