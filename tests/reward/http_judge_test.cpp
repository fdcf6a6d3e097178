// HTTP judges against an in-process cpp-httplib server that fails, stalls or answers on cue:
// retries, timeouts, errors, the on-disk cache, API keys, log-prob parsers over both response
// shapes, config validation; and the local judge's expectation parser and system prompt against
// a hand computation on a tiny model.
#include <gtest/gtest.h>
#include <httplib.h>
#include <stdlib.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <fstream>
#include <mutex>
#include <thread>

#include "cada/io/files.h"
#include "cada/model/loader.h"
#include "cada/model/transformer.h"
#include "cada/reward/http_judge.h"
#include "cada/reward/judge.h"
#include "cada/reward/judge_cache.h"
#include "cada/reward/openai_client.h"
#include "cada/text/chat_template.h"
#include "reward_test_util.h"

using cada::reward::HttpJudgeBackend;
using cada::reward::JudgeReward;
using cada::reward::RewardSet;
using cada::reward::Sample;
using cada::reward::testing::error_of;
using cada::reward::testing::has;
using cada::reward::testing::ScratchDir;
using json = nlohmann::json;

namespace {

// An OpenAI-shaped server on 127.0.0.1 (a free port): every request is recorded, then answered
// by `reply` (n counts requests from 1).
class FakeServer {
 public:
  using Reply = std::function<void(int n, const json& body, httplib::Response& res)>;
  explicit FakeServer(Reply reply) : reply_(std::move(reply)) {
    std::signal(SIGPIPE, SIG_IGN);  // answering a client that gave up must not kill the test
    auto handle = [this](const httplib::Request& req, httplib::Response& res) {
      int n;
      const json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
      {
        std::lock_guard<std::mutex> lock(m_);
        n = ++count_;
        bodies_.push_back(body);
        paths_.push_back(req.path);
        auth_.push_back(req.get_header_value("Authorization"));
      }
      reply_(n, body, res);
    };
    server_.set_tcp_nodelay(true);  // no Nagle delay between the header and body writes
    server_.Post("/v1/chat/completions", handle);
    server_.Post("/v1/completions", handle);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeServer() {
    released_ = true;
    server_.stop();
    thread_.join();
  }
  // Holds a handler until the server shuts down (at most 20 s): a server that never answers.
  void stall() const {
    for (int i = 0; i < 2000 && !released_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  int requests() const {
    std::lock_guard<std::mutex> lock(m_);
    return count_;
  }
  std::vector<json> bodies() const {
    std::lock_guard<std::mutex> lock(m_);
    return bodies_;
  }
  std::vector<std::string> paths() const {
    std::lock_guard<std::mutex> lock(m_);
    return paths_;
  }
  std::vector<std::string> auth() const {
    std::lock_guard<std::mutex> lock(m_);
    return auth_;
  }

 private:
  Reply reply_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> released_{false};
  mutable std::mutex m_;
  int count_ = 0;
  std::vector<json> bodies_;
  std::vector<std::string> paths_, auth_;
};

void send(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(j.dump(), "application/json");
}

json chat_text(const std::string& text) {
  return {{"object", "chat.completion"},
          {"choices", {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", text}}}, {"finish_reason", "stop"}}}}};
}

using Top = std::vector<std::pair<std::string, double>>;  // token -> log-prob

json chat_top(const Top& top) {
  json alts = json::array();
  for (const auto& [t, lp] : top) alts.push_back({{"token", t}, {"logprob", lp}, {"bytes", nullptr}});
  json first = {{"token", top[0].first}, {"logprob", top[0].second}, {"top_logprobs", alts}};
  return {{"choices",
           {{{"index", 0},
             {"message", {{"role", "assistant"}, {"content", top[0].first}}},
             {"logprobs", {{"content", {first}}}},
             {"finish_reason", "length"}}}}};
}

json completion_top(const Top& top) {
  json alts = json::object();
  for (const auto& [t, lp] : top) alts[t] = lp;
  return {{"choices",
           {{{"index", 0},
             {"text", top[0].first},
             {"logprobs", {{"tokens", {top[0].first}}, {"token_logprobs", {top[0].second}}, {"top_logprobs", {alts}}}},
             {"finish_reason", "length"}}}}};
}

// The user turn of a chat request (or the prompt of a completions request).
std::string user_text(const json& body) {
  if (body.contains("prompt")) return body["prompt"];
  return body["messages"].back()["content"];
}

// A judge entry against `base_url`: safe_unsafe on "{prompt} => {response}", no cache, short
// backoff; `extra` and `ep` are merged into the entry and its endpoint.
json judge(const std::string& base_url, const json& extra = json::object(), const json& ep = json::object()) {
  json endpoint = {{"base_url", base_url}, {"model", "judge-model"}, {"cache", false}, {"backoff_s", 0.01},
                   {"timeout_s", 10}};
  if (!ep.is_null()) endpoint.update(ep);
  json e = {{"name", "j"}, {"type", "judge"}, {"parser", "safe_unsafe"}, {"template", "{prompt} => {response}"},
            {"on", "response"}, {"endpoint", endpoint}};
  if (!extra.is_null()) e.update(extra);
  return e;
}

RewardSet make_set(const json& entry) { return RewardSet::from_json({{"rewards", {entry}}}, "judges.json"); }

HttpJudgeBackend& http(const RewardSet& set, const std::string& name = "j") {
  auto j = std::dynamic_pointer_cast<JudgeReward>(set.get(name));
  auto b = std::dynamic_pointer_cast<HttpJudgeBackend>(j->backend());
  if (!b) throw std::runtime_error("not an HTTP judge");
  return *b;
}

std::vector<Sample> samples(const std::vector<std::string>& responses) {
  std::vector<Sample> out;
  for (size_t i = 0; i < responses.size(); ++i) out.push_back(Sample::from_prompt("q" + std::to_string(i), responses[i]));
  return out;
}

// "unsafe" when the judged text mentions a bomb, else "safe".
void guard(int, const json& body, httplib::Response& res) {
  send(res, 200, chat_text(has(user_text(body), "bomb") ? "unsafe\nS1" : "safe"));
}

}  // namespace

// ------------------------------------------------------------------ retries, errors, timeouts

TEST(HttpJudge, ServerErrorsAreRetriedUntilSuccess) {
  FakeServer server([](int n, const json& body, httplib::Response& res) {
    if (n <= 2) return send(res, 500, {{"error", {{"message", "overloaded"}}}});
    guard(n, body, res);
  });
  auto set = make_set(judge(server.base_url()));
  auto v = set.get("j")->score(samples({"a bomb recipe"}));
  EXPECT_EQ(v[0], 1.0);
  EXPECT_EQ(server.requests(), 3);
  EXPECT_EQ(http(set).stats().requests, 3);
  EXPECT_EQ(http(set).stats().retries, 2);
  EXPECT_EQ(http(set).stats().answers, 1);
}

TEST(HttpJudge, TooManyRequestsIsRetriedAfterRetryAfter) {
  FakeServer server([](int n, const json& body, httplib::Response& res) {
    if (n == 1) {
      res.set_header("Retry-After", "0");
      return send(res, 429, {{"error", {{"message", "rate limited"}}}});
    }
    guard(n, body, res);
  });
  auto set = make_set(judge(server.base_url()));
  EXPECT_EQ(set.get("j")->score(samples({"bread"}))[0], 0.0);
  EXPECT_EQ(server.requests(), 2);
  EXPECT_EQ(http(set).stats().retries, 1);
}

TEST(HttpJudge, RetryDelaysFollowRetryAfterOrExponentialBackoff) {
  using cada::reward::retry_delay_s;
  EXPECT_DOUBLE_EQ(retry_delay_s(1, 1.0, std::nullopt, 0.0), 0.5);  // backoff * (0.5 + 0.5 u)
  EXPECT_DOUBLE_EQ(retry_delay_s(1, 1.0, std::nullopt, 1.0), 1.0);
  EXPECT_DOUBLE_EQ(retry_delay_s(3, 1.0, std::nullopt, 1.0), 4.0);   // doubled per retry
  EXPECT_DOUBLE_EQ(retry_delay_s(3, 1.0, 2.0, 0.3), 2.0);            // Retry-After wins
  EXPECT_DOUBLE_EQ(retry_delay_s(1, 1.0, 1e6, 0.3), cada::reward::kMaxRetryAfterS);
  EXPECT_EQ(cada::reward::parse_retry_after(" 3 "), 3.0);
  EXPECT_EQ(cada::reward::parse_retry_after("1.5"), 1.5);
  EXPECT_FALSE(cada::reward::parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT").has_value());
  EXPECT_EQ(cada::reward::server_error_message(R"({"error": {"message": "bad model"}})"), "bad model");
  EXPECT_EQ(cada::reward::server_error_message(R"({"object": "error", "message": "too long"})"), "too long");
  EXPECT_EQ(cada::reward::server_error_message("Bad Gateway"), "Bad Gateway");
}

TEST(HttpJudge, ClientErrorsAreNotRetriedAndQuoteTheServer) {
  FakeServer server([](int, const json&, httplib::Response& res) {
    send(res, 400, {{"error", {{"message", "The model 'judge-model' does not exist"}}}});
  });
  auto set = make_set(judge(server.base_url()));
  auto msg = error_of([&] { set.get("j")->score(samples({"x"})); });
  EXPECT_TRUE(has(msg, "judge 'j': POST " + server.base_url() + "/chat/completions: HTTP 400: "
                       "The model 'judge-model' does not exist (1 attempt)")) << msg;
  EXPECT_EQ(server.requests(), 1);
}

TEST(HttpJudge, ASilentServerEndsInATimeoutError) {
  FakeServer* self = nullptr;
  FakeServer server([&self](int, const json&, httplib::Response& res) {
    self->stall();
    send(res, 200, chat_text("safe"));
  });
  self = &server;
  auto set = make_set(judge(server.base_url(), {}, {{"timeout_s", 0.3}, {"max_retries", 2}}));
  auto msg = error_of([&] { set.get("j")->score(samples({"x"})); });
  EXPECT_EQ(msg, "judge 'j': POST " + server.base_url() + "/chat/completions: no answer within 0.3 s (3 attempts)");
  EXPECT_EQ(server.requests(), 3);
}

TEST(HttpJudge, AClosedPortIsRetriedThenReported) {
  std::string url;
  {
    FakeServer gone(guard);
    url = gone.base_url();
  }
  auto set = make_set(judge(url, {}, {{"max_retries", 1}}));
  auto msg = error_of([&] { set.get("j")->score(samples({"x"})); });
  EXPECT_TRUE(has(msg, "judge 'j': POST " + url + "/chat/completions: could not connect")) << msg;
  EXPECT_TRUE(has(msg, "(2 attempts)")) << msg;
}

TEST(HttpJudge, AnswersWithoutLogprobsAreAnError) {
  FakeServer server(guard);  // plain text answers, no logprobs
  auto set = make_set(judge(server.base_url(), {{"parser", "yes_no"}, {"yes", {"Yes"}}, {"no", {"No"}}}));
  auto msg = error_of([&] { set.get("j")->score(samples({"x"})); });
  EXPECT_TRUE(has(msg, "the answer has no choices[0].logprobs; the server must support 'logprobs' and 'top_logprobs'"))
      << msg;
}

// ------------------------------------------------------------------ requests

TEST(HttpJudge, ConcurrentRequestsKeepTheSampleOrder) {
  FakeServer server(guard);
  auto set = make_set(judge(server.base_url(), {}, {{"max_concurrency", 4}}));
  std::vector<std::string> rs;
  for (int i = 0; i < 24; ++i) rs.push_back(i % 3 == 0 ? "bomb " + std::to_string(i) : "cake " + std::to_string(i));
  auto v = set.get("j")->score(samples(rs));
  for (int i = 0; i < 24; ++i) EXPECT_EQ(v[i], i % 3 == 0 ? 1.0 : 0.0) << i;
  EXPECT_EQ(server.requests(), 24);
}

TEST(HttpJudge, GenerationRequestsCarryTheSystemPromptAndParameters) {
  FakeServer server(guard);
  auto set = make_set(judge(server.base_url(), {{"system", "You are a strict grader."}, {"max_new_tokens", 7}}));
  set.get("j")->score(samples({"bomb"}));
  auto body = server.bodies().at(0);
  EXPECT_EQ(server.paths().at(0), "/v1/chat/completions");
  EXPECT_EQ(body["model"], "judge-model");
  EXPECT_EQ(body["temperature"], 0);
  EXPECT_EQ(body["max_tokens"], 7);
  EXPECT_EQ(body["messages"], json::parse(R"([{"role": "system", "content": "You are a strict grader."},
                                                {"role": "user", "content": "q0 => bomb"}])"));

  // raw: the filled template as the prompt of /completions.
  FakeServer raw_server([](int, const json& body, httplib::Response& res) {
    send(res, 200, {{"choices", {{{"index", 0}, {"text", has(body["prompt"], "bomb") ? " unsafe" : " safe"}}}}});
  });
  auto raw = make_set(judge(raw_server.base_url(), {{"raw", true}}));
  EXPECT_EQ(raw.get("j")->score(samples({"bomb"}))[0], 1.0);
  EXPECT_EQ(raw_server.paths().at(0), "/v1/completions");
  EXPECT_EQ(raw_server.bodies().at(0)["prompt"], "q0 => bomb");
  EXPECT_FALSE(raw_server.bodies().at(0).contains("messages"));

  // A response cut inside a UTF-8 character is still sent (the broken byte as U+FFFD).
  EXPECT_EQ(set.get("j")->score(samples({"bomb \xe2\x82"}))[0], 1.0);
  EXPECT_EQ(server.bodies().back()["messages"][1]["content"], "q0 => bomb \xef\xbf\xbd");
}

TEST(HttpJudge, TheApiKeyComesFromTheNamedVariable) {
  FakeServer server(guard);
  ::setenv("CADA_TEST_JUDGE_KEY", "sk-test-123", 1);
  auto set = make_set(judge(server.base_url(), {}, {{"api_key_env", "CADA_TEST_JUDGE_KEY"}}));
  set.get("j")->score(samples({"x"}));
  EXPECT_EQ(server.auth().at(0), "Bearer sk-test-123");
  auto open = make_set(judge(server.base_url()));
  open.get("j")->score(samples({"y"}));
  EXPECT_EQ(server.auth().at(1), "");  // no key configured: no header
  ::unsetenv("CADA_TEST_JUDGE_KEY");
}

// ------------------------------------------------------------------ log-prob parsers

TEST(HttpJudge, YesNoReadsTheChatTopLogprobs) {
  FakeServer server([](int, const json&, httplib::Response& res) {
    send(res, 200, chat_top({{"Yes", std::log(0.5)}, {"No", std::log(0.2)}, {"yes", std::log(0.1)}, {" Yes", std::log(0.1)}}));
  });
  auto set = make_set(judge(server.base_url(),
                            {{"parser", "yes_no"}, {"yes", {"Yes", "yes"}}, {"no", {"No", "no"}}},
                            {{"top_logprobs", 5}}));
  auto v = set.get("j")->score(samples({"r"}));
  ASSERT_TRUE(v[0].has_value());
  EXPECT_NEAR(*v[0], (0.5 + 0.1) / (0.5 + 0.1 + 0.2), 1e-12);  // " Yes" is another token
  auto body = server.bodies().at(0);
  EXPECT_EQ(body["max_tokens"], 1);
  EXPECT_EQ(body["temperature"], 0);
  EXPECT_EQ(body["logprobs"], true);
  EXPECT_EQ(body["top_logprobs"], 5);
}

TEST(HttpJudge, ExpectationReadsTheChatTopLogprobs) {
  FakeServer server([](int, const json& body, httplib::Response& res) {
    if (has(user_text(body), "r1"))
      return send(res, 200, chat_top({{"3", std::log(0.4)}, {"5", std::log(0.2)}, {"1", std::log(0.1)}, {"x", -0.1}}));
    send(res, 200, chat_top({{"x", std::log(0.9)}, {"y", std::log(0.1)}}));  // none of the scored tokens
  });
  json values = {{"1", 0.0}, {"2", 0.25}, {"3", 0.5}, {"4", 0.75}, {"5", 1.0}};
  auto set = make_set(judge(server.base_url(), {{"parser", "expectation"}, {"values", values}}));
  auto v = set.get("j")->score(samples({"r1", "r2"}));
  ASSERT_TRUE(v[0].has_value());
  EXPECT_NEAR(*v[0], (0.4 * 0.5 + 0.2 * 1.0 + 0.1 * 0.0) / (0.4 + 0.2 + 0.1), 1e-12);
  EXPECT_FALSE(v[1].has_value());
  EXPECT_EQ(set.get("j")->failures(), 1);
}

TEST(HttpJudge, RawJudgesReadTheCompletionsTopLogprobs) {
  FakeServer server([](int, const json& body, httplib::Response& res) {
    if (has(body["prompt"], "grade"))
      return send(res, 200, completion_top({{"2", std::log(0.3)}, {"4", std::log(0.6)}, {" 4", std::log(0.05)}}));
    send(res, 200, completion_top({{"No", std::log(0.7)}, {"Yes", std::log(0.2)}}));
  });
  json values = {{"1", 0.0}, {"2", 0.25}, {"3", 0.5}, {"4", 0.75}, {"5", 1.0}};
  auto set = RewardSet::from_json(
      {{"rewards",
        {judge(server.base_url(), {{"name", "e"}, {"raw", true}, {"parser", "expectation"}, {"values", values},
                                   {"template", "grade {prompt} {response}"}}),
         judge(server.base_url(), {{"name", "yn"}, {"raw", true}, {"parser", "yes_no"}, {"yes", {"Yes"}},
                                   {"no", {"No"}}, {"invert", true}})}}},
      "judges.json");
  auto scores = set.score(samples({"r"}));
  ASSERT_TRUE(scores[0].second[0].has_value() && scores[1].second[0].has_value());
  EXPECT_NEAR(*scores[0].second[0], (0.3 * 0.25 + 0.6 * 0.75) / 0.9, 1e-12);
  EXPECT_NEAR(*scores[1].second[0], 1.0 - 0.2 / 0.9, 1e-12);
  for (const auto& body : server.bodies()) {
    EXPECT_EQ(body["logprobs"], 20);  // the completions API: the number of alternatives
    EXPECT_EQ(body["max_tokens"], 1);
    EXPECT_FALSE(body.contains("top_logprobs"));
  }
  for (const auto& p : server.paths()) EXPECT_EQ(p, "/v1/completions");
}

// ------------------------------------------------------------------ the cache

TEST(HttpJudge, TheCacheAnswersRepeatedRequestsWithoutTheServer) {
  ScratchDir dir("judge_cache");
  FakeServer server(guard);
  const json ep = {{"cache", true}, {"cache_dir", dir.path()}};
  auto s = samples({"bomb", "cake", "bomb"});
  s[2] = s[0];  // an identical request within one call is sent once
  auto first = make_set(judge(server.base_url(), {}, ep));
  auto v1 = first.get("j")->score(s);
  EXPECT_EQ(server.requests(), 2);
  EXPECT_EQ(http(first).stats().cache_hits, 1);
  EXPECT_EQ(http(first).cache_path(), dir.path() + "/judge-model.jsonl");

  auto again = make_set(judge(server.base_url(), {}, ep));  // a new run reads the file
  auto v2 = again.get("j")->score(s);
  EXPECT_EQ(server.requests(), 2);
  EXPECT_EQ(http(again).stats().requests, 0);
  EXPECT_EQ(http(again).stats().cache_hits, 3);
  EXPECT_EQ(v1, v2);
  EXPECT_EQ(v2[0], 1.0);
  EXPECT_EQ(v2[1], 0.0);
}

TEST(HttpJudge, TheCacheSurvivesATruncatedLastLine) {
  ScratchDir dir("judge_cache_trunc");
  FakeServer server(guard);
  const json ep = {{"cache", true}, {"cache_dir", dir.path()}};
  make_set(judge(server.base_url(), {}, ep)).get("j")->score(samples({"bomb", "cake"}));
  const std::string file = dir.path() + "/judge-model.jsonl";
  {
    std::ofstream f(file, std::ios::app);
    f << R"({"key": "0123", "answer": {"te)";  // a crash mid-write
  }
  auto set = make_set(judge(server.base_url(), {}, ep));
  auto v = set.get("j")->score(samples({"bomb", "cake", "more bomb"}));
  EXPECT_EQ(v, (cada::reward::Values{1.0, 0.0, 1.0}));
  EXPECT_EQ(server.requests(), 3);  // only the new sample was asked
  // The next append cut the broken line off: one answer per line, and a third run finds all three.
  const std::string text = cada::io::read_file(file);
  EXPECT_EQ(text.back(), '\n');
  size_t lines = 0;
  for (size_t a = 0, b; (b = text.find('\n', a)) != std::string::npos; a = b + 1, ++lines)
    EXPECT_FALSE(json::parse(text.substr(a, b - a), nullptr, false).is_discarded()) << text.substr(a, b - a);
  EXPECT_EQ(lines, 3u);
  auto third = make_set(judge(server.base_url(), {}, ep));
  third.get("j")->score(samples({"bomb", "cake", "more bomb"}));
  EXPECT_EQ(server.requests(), 3);
  EXPECT_EQ(http(third).stats().cache_hits, 3);
}

TEST(HttpJudge, TheCacheKeyCoversTemplateSystemPromptAndParser) {
  ScratchDir dir("judge_cache_keys");
  FakeServer server([](int, const json& body, httplib::Response& res) {
    if (body.contains("logprobs")) return send(res, 200, chat_top({{"Yes", -0.1}, {"No", -2.5}}));
    guard(0, body, res);
  });
  const json ep = {{"cache", true}, {"cache_dir", dir.path()}};
  auto run = [&](const json& extra) { make_set(judge(server.base_url(), extra, ep)).get("j")->score(samples({"r"})); };
  run({});
  EXPECT_EQ(server.requests(), 1);
  run({});
  EXPECT_EQ(server.requests(), 1);
  run({{"template", "Judge: {prompt} => {response}"}});
  EXPECT_EQ(server.requests(), 2);
  run({{"system", "Be strict."}});
  EXPECT_EQ(server.requests(), 3);
  run({{"system", "Be lenient."}});
  EXPECT_EQ(server.requests(), 4);
  run({{"max_new_tokens", 16}});
  EXPECT_EQ(server.requests(), 5);
  run({{"parser", "yes_no"}, {"yes", {"Yes"}}, {"no", {"No"}}});
  EXPECT_EQ(server.requests(), 6);
  run({{"parser", "yes_no"}, {"yes", {"Yes"}}, {"no", {"No"}}});
  EXPECT_EQ(server.requests(), 6);
}

TEST(HttpJudge, OnlyParseableAnswersAreCached) {
  ScratchDir dir("judge_cache_null");
  FakeServer server([](int n, const json& body, httplib::Response& res) {
    if (n == 1) return send(res, 200, {{"choices", {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", nullptr}}}}}}});
    guard(n, body, res);
  });
  const json ep = {{"cache", true}, {"cache_dir", dir.path()}};
  auto first = make_set(judge(server.base_url(), {}, ep));
  EXPECT_FALSE(first.get("j")->score(samples({"bomb"}))[0].has_value());  // no content: a counted failure
  EXPECT_EQ(first.get("j")->failures(), 1);
  auto second = make_set(judge(server.base_url(), {}, ep));
  EXPECT_EQ(second.get("j")->score(samples({"bomb"}))[0], 1.0);  // asked again
  EXPECT_EQ(server.requests(), 2);
}

TEST(JudgeCache, TwoWritersShareOneFile) {
  ScratchDir dir("judge_cache_share");
  {
    cada::reward::JudgeCache a(dir.path(), "m.jsonl"), b(dir.path(), "m.jsonl");  // two open files, as two processes
    auto write = [](cada::reward::JudgeCache& c, const std::string& tag) {
      for (int i = 0; i < 200; ++i)
        c.put(cada::reward::sha256_hex(tag + std::to_string(i)), {{"text", tag + std::string(500, 'x')}});
    };
    std::thread ta(write, std::ref(a), "a"), tb(write, std::ref(b), "b");
    ta.join();
    tb.join();
  }
  cada::reward::JudgeCache all(dir.path(), "m.jsonl");
  EXPECT_EQ(all.size(), 400u);
  EXPECT_EQ(all.get(cada::reward::sha256_hex("b7"))->at("text"), "b" + std::string(500, 'x'));
  EXPECT_EQ(cada::reward::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(cada::reward::judge_cache_file_name("meta-llama/Llama-Guard-3-8B"), "meta-llama_Llama-Guard-3-8B.jsonl");
}

// ------------------------------------------------------------------ config

TEST(HttpJudge, ConfigProblemsAreReportedWithoutNetwork) {
  ::unsetenv("CADA_TEST_UNSET_KEY");
  const std::string url = "http://127.0.0.1:9/v1";
  auto entry = [&](const std::string& name, const json& extra, const json& ep = json::object()) {
    json e = judge(url, extra, ep);
    e["name"] = name;
    return e;
  };
  json both = entry("both", {{"model", "/some/model"}});
  json neither = entry("neither", {});
  neither.erase("endpoint");
  json bad_key = entry("bad_key", {}, {{"temprature", 0}});
  json values = entry("values", {{"parser", "expectation"}, {"values", {{"1", 0.0}, {"5", 1.5}}}});
  auto msg = error_of([&] {
    RewardSet::from_json(
        {{"rewards",
          {both, neither, entry("unset", {}, {{"api_key_env", "CADA_TEST_UNSET_KEY"}}), bad_key,
           entry("ranges", {}, {{"timeout_s", 0}, {"max_concurrency", 0}, {"max_retries", -1}, {"top_logprobs", 0}}),
           values, entry("raw_system", {{"raw", true}, {"system", "S"}}),
           entry("url", {}, {{"base_url", "127.0.0.1:8000/v1"}, {"model", ""}}),
           entry("local_only", {{"chat_template", "chatml"}, {"batch_size", 4}}),
           entry("no_values", {{"parser", "expectation"}})}}},
        "judges.json");
  });
  for (const char* want : {
           "reward 'both' (judge): give exactly one of 'model' (a local model folder) or 'endpoint'",
           "reward 'neither' (judge): give exactly one of 'model'",
           "reward 'unset' (judge): 'endpoint.api_key_env' names the environment variable CADA_TEST_UNSET_KEY, "
           "which is not set",
           "reward 'bad_key' (judge): unknown key 'endpoint.temprature'",
           "'endpoint.timeout_s' must be > 0, got 0",
           "'endpoint.max_concurrency' must be >= 1, got 0",
           "'endpoint.max_retries' must be >= 0, got -1",
           "'endpoint.top_logprobs' must be >= 1, got 0",
           "reward 'values' (judge): 'values.\"5\"' must be a number in [0, 1], got 1.5",
           "reward 'raw_system' (judge): 'system' / 'system_file' need chat turns; they cannot be used with raw = true",
           "reward 'url' (judge): 'endpoint.base_url' must start with http:// or https://, got '127.0.0.1:8000/v1'",
           "reward 'url' (judge): 'endpoint.model' is required",
           "reward 'local_only' (judge): 'chat_template' applies to a local 'model' only",
           "reward 'local_only' (judge): 'batch_size' applies to a local 'model' only",
           "reward 'no_values' (judge): parser expectation needs 'values'",
       })
    EXPECT_TRUE(has(msg, want)) << want << "\n" << msg;
}

// ------------------------------------------------------------------ the local backend

TEST(LocalJudge, ExpectationAndSystemPromptMatchAHandComputation) {
  ScratchDir dir("local_judge");
  const std::string m = dir.sub("judge");
  cada::reward::testing::write_model(m, 0, 11);
  auto tok = cada::text::load_tokenizer(m);
  std::vector<std::string> tokens;  // single-token strings of the tiny tokenizer
  for (const char* t : {"Yes", "No", "safe", "unsafe", "yes", "no", "fox", "dog", "bread", "the", "again", "I", "help"})
    if (tok->encode(t, false).size() == 1 && tokens.size() < 3) tokens.push_back(t);
  ASSERT_EQ(tokens.size(), 3u);
  const std::vector<double> vals = {0.0, 0.5, 1.0};
  const std::string system = "You grade answers strictly.";
  json entry = {{"name", "e"},        {"type", "judge"},          {"model", m},
                {"parser", "expectation"}, {"template", "Q: {prompt}\nA: {response}"},
                {"on", "response"},   {"system", system},
                {"values", {{tokens[0], vals[0]}, {tokens[1], vals[1]}, {tokens[2], vals[2]}}}};
  json plain = entry;
  plain["name"] = "plain";
  plain.erase("system");
  auto set = RewardSet::from_json({{"rewards", {entry, plain}}}, "judges.json", {"cpu", "float32", 2});
  auto s = samples({"the quick brown fox", "I cannot help with that.", "Mix flour and water."});
  auto with_system = set.get("e")->score(s);
  auto without = set.get("plain")->score(s);

  torch::NoGradGuard no_grad;
  auto net = cada::model::load_model(m, {"cpu", "float32"});
  net->eval();
  auto chat = cada::text::load_chat_template(m);
  auto hand = [&](const std::vector<cada::text::Message>& turns) {
    const std::string rendered = chat->render(turns, /*add_generation_prompt=*/true);
    auto ids = tok->encode(rendered, false);
    cada::model::ForwardInput in;
    in.input_ids = at::tensor(std::vector<int64_t>(ids.begin(), ids.end()), at::kLong).unsqueeze(0);
    auto hidden = net->forward(in).hidden;  // (1,T,C)
    auto lp = at::log_softmax(net->head(hidden.select(1, hidden.size(1) - 1)).to(at::kDouble), -1)[0];
    double num = 0, den = 0;
    for (size_t k = 0; k < tokens.size(); ++k) {
      const double p = std::exp(lp[tok->encode(tokens[k], false)[0]].item<double>());
      num += p * vals[k];
      den += p;
    }
    return std::make_pair(num / den, rendered);
  };
  double largest_gap = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const std::string filled = "Q: " + s[i].prompt_text() + "\nA: " + s[i].response;
    auto [want, rendered] = hand({{"system", system}, {"user", filled}});
    EXPECT_TRUE(has(rendered, system));
    ASSERT_TRUE(with_system[i].has_value());
    EXPECT_NEAR(*with_system[i], want, 1e-5) << i;
    EXPECT_NEAR(*without[i], hand({{"user", filled}}).first, 1e-5) << i;
    largest_gap = std::max(largest_gap, std::fabs(*with_system[i] - *without[i]));
  }
  EXPECT_GT(largest_gap, 0.0);  // the system turn reached the model
}

// A cache folder written as ~/... lands under $HOME, as a shell would put it.
TEST(JudgeCache, TildeMeansHome) {
  const char* home = std::getenv("HOME");
  ASSERT_TRUE(home && *home);
  EXPECT_EQ(cada::reward::expand_home("~/judge"), std::string(home) + "/judge");
  EXPECT_EQ(cada::reward::expand_home("~"), std::string(home));
  EXPECT_EQ(cada::reward::expand_home("runs/~x"), "runs/~x");
  EXPECT_EQ(cada::reward::expand_home("/abs/path"), "/abs/path");
}
