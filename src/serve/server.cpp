// The HTTP side of `cada serve`: routes, errors in OpenAI's shape, streaming, drain on SIGTERM.
#include "cada/serve/server.h"

#include <httplib.h>

#include <chrono>
#include <ctime>
#include <random>
#include <thread>

#include "cada/io/files.h"
#include "cada/serve/responses.h"
#include "cada/util/error.h"
#include "cada/util/log.h"
#include "cada/util/signals.h"

namespace cada::serve {

using nlohmann::json;

namespace {

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) { send_json(res, e.status(), e.body()); }

// Counts a request in flight for as long as the object lives (a streaming answer keeps it in its
// content provider until the last byte is written).
class InFlight {
 public:
  explicit InFlight(std::atomic<int64_t>& n) : n_(n) { ++n_; }
  ~InFlight() { --n_; }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  std::atomic<int64_t>& n_;
};

// One token event of a streaming request, copied on the engine thread.
struct TokenEvent {
  size_t request;
  int64_t sample;
};

// What a streaming request shares between the engine thread and its connection's thread.
struct StreamState {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<TokenEvent> events;
  std::vector<std::vector<rollout::Completion>> partial;  // the completions so far, per prompt and sample
  bool done = false;
};

}  // namespace

struct Server::Impl {
  ServeContext ctx;
  Scheduler& sched;
  ServerOptions opts;
  httplib::Server http;
  std::atomic<bool> draining{false};
  std::atomic<int64_t> in_flight{0};
  std::atomic<int64_t> requests{0}, errors{0};
  int64_t started = 0;
  std::mt19937_64 rng{std::random_device{}()};
  std::mutex rng_mu;

  Impl(ServeContext c, Scheduler& s, ServerOptions o) : ctx(std::move(c)), sched(s), opts(std::move(o)) {}

  uint64_t random_seed() {
    std::lock_guard<std::mutex> lock(rng_mu);
    return rng();
  }

  void routes();
  void generation(const httplib::Request& req, httplib::Response& res, Endpoint ep);
  void answer_whole(httplib::Response& res, const ParsedRequest& pr, const ResponseMeta& meta);
  void answer_stream(httplib::Response& res, const ParsedRequest& pr, const ResponseMeta& meta,
                     std::shared_ptr<InFlight> guard);
  bool authorised(const httplib::Request& req) const {
    return opts.api_key.empty() || req.get_header_value("Authorization") == "Bearer " + opts.api_key;
  }
  json stats_json() const;
};

void Server::Impl::routes() {
  http.set_payload_max_length(static_cast<size_t>(opts.max_body_bytes));
  http.set_keep_alive_timeout(2);
  const size_t threads = static_cast<size_t>(opts.http_threads);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    ++errors;
    if (!res.body.empty()) return;  // already an answer in our shape
    std::string msg = res.status == 404 ? "no route " + req.method + " " + req.path
                      : res.status == 413 ? "the request body is larger than the server's limit of " +
                                                std::to_string(opts.max_body_bytes) + " bytes"
                                          : res.status == 400 ? "the request is not valid HTTP"
                                          : "the request was refused (HTTP " + std::to_string(res.status) + ")";
    res.set_content(dump(error_body(res.status, msg)), "application/json");
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string msg = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      msg = e.what();
    } catch (...) {
    }
    CADA_ERROR("serve: ", msg);
    send_json(res, 500, error_body(500, msg));
  });
  http.Post("/v1/chat/completions",
            [this](const httplib::Request& q, httplib::Response& r) { generation(q, r, Endpoint::kChat); });
  http.Post("/v1/completions",
            [this](const httplib::Request& q, httplib::Response& r) { generation(q, r, Endpoint::kCompletions); });
  http.Get("/v1/models", [this](const httplib::Request& q, httplib::Response& r) {
    if (!authorised(q)) return send_error(r, ApiError(401, "a valid API key is required (Authorization: Bearer ...)"));
    json m = {{"id", ctx.model_name}, {"object", "model"}, {"created", started}, {"owned_by", "cada"},
              {"max_model_len", ctx.context_length}};
    send_json(r, 200, {{"object", "list"}, {"data", json::array({m})}});
  });
  http.Get("/health", [this](const httplib::Request&, httplib::Response& r) {
    if (draining) send_json(r, 503, {{"status", "draining"}, {"in_flight", in_flight.load()}});
    else send_json(r, 200, {{"status", "ok"}});
  });
  http.Get("/stats", [this](const httplib::Request&, httplib::Response& r) { send_json(r, 200, stats_json()); });
}

json Server::Impl::stats_json() const {
  const auto s = sched.stats();
  return {{"requests", requests.load()},     {"errors", errors.load()},
          {"in_flight", in_flight.load()},   {"queued_jobs", s.queued_jobs},
          {"running_jobs", s.running_jobs},  {"engine_calls", s.calls},
          {"completed_jobs", s.completed_jobs}, {"failed_jobs", s.failed_jobs},
          {"prompt_tokens", s.prompt_tokens}, {"generated_tokens", s.generated_tokens},
          {"engine_busy_s", s.busy_s},       {"engine", sched.engine_name()},
          {"uptime_s", static_cast<int64_t>(std::time(nullptr)) - started}};
}

void Server::Impl::generation(const httplib::Request& req, httplib::Response& res, Endpoint ep) {
  auto guard = std::make_shared<InFlight>(in_flight);
  ++requests;
  try {
    if (!authorised(req)) throw ApiError(401, "a valid API key is required (Authorization: Bearer ...)");
    if (draining) throw ApiError(503, "the server is shutting down");
    const ParsedRequest pr = parse_request(parse_body(req.body), ep, ctx);
    ResponseMeta meta{new_response_id(ep == Endpoint::kChat ? "chatcmpl" : "cmpl"),
                      static_cast<int64_t>(std::time(nullptr)), ctx.model_name};
    if (pr.stream) answer_stream(res, pr, meta, guard);
    else answer_whole(res, pr, meta);
  } catch (const ApiError& e) {
    send_error(res, e);
  } catch (const std::exception& e) {
    CADA_ERROR("serve: ", e.what());
    send_json(res, 500, error_body(500, e.what()));
  }
}

void Server::Impl::answer_whole(httplib::Response& res, const ParsedRequest& pr, const ResponseMeta& meta) {
  auto results = sched.submit(pr.requests(random_seed())).get();
  send_json(res, 200, response_body(pr, meta, results, *ctx.tokenizer));
}

void Server::Impl::answer_stream(httplib::Response& res, const ParsedRequest& pr, const ResponseMeta& meta,
                                 std::shared_ptr<InFlight> guard) {
  auto st = std::make_shared<StreamState>();
  st->partial.resize(pr.prompts.size(), std::vector<rollout::Completion>(pr.n));
  // On the engine thread: append the one new token (copying the whole completion would cost
  // the engine O(length) per token).
  auto sink = [st](size_t r, int64_t s, const rollout::Completion& c) {
    {
      std::lock_guard<std::mutex> lock(st->mu);
      auto& p = st->partial[r][s];
      p.ids.push_back(c.ids.back());
      p.logprobs.push_back(c.logprobs.back());
      if (c.top_logprobs.size() == c.ids.size()) p.top_logprobs.push_back(c.top_logprobs.back());
      p.finish_reason = c.finish_reason;
      st->events.push_back({r, s});
    }
    st->cv.notify_one();
  };
  auto on_done = [st] {
    {
      std::lock_guard<std::mutex> lock(st->mu);
      st->done = true;
    }
    st->cv.notify_one();
  };
  auto fut = std::make_shared<std::future<Completions>>(sched.submit(pr.requests(random_seed()), sink, on_done));
  const text::Tokenizer* tok = ctx.tokenizer;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream", [st, fut, pr, meta, tok, guard](size_t, httplib::DataSink& out) {
        auto send = [&](const json& j) {
          const std::string line = "data: " + dump(j) + "\n\n";
          return out.write(line.data(), line.size());
        };
        const size_t choices = pr.prompts.size() * static_cast<size_t>(pr.n);
        std::vector<IncrementalText> texts;
        for (size_t i = 0; i < choices; ++i) texts.emplace_back(*tok, pr.params.stop);
        std::vector<size_t> logged(choices, 0);  // tokens whose log-probs were sent
        std::vector<bool> first(choices, true);
        auto index = [&](size_t r, int64_t s) { return r * static_cast<size_t>(pr.n) + static_cast<size_t>(s); };
        while (true) {
          std::unique_lock<std::mutex> lock(st->mu);
          st->cv.wait(lock, [&] { return st->done || !st->events.empty(); });
          if (st->events.empty() && st->done) break;
          std::deque<TokenEvent> evs;
          evs.swap(st->events);
          std::vector<std::pair<size_t, rollout::Completion>> snaps;  // copies, read without the lock
          for (const auto& e : evs) snaps.emplace_back(index(e.request, e.sample), st->partial[e.request][e.sample]);
          lock.unlock();
          for (const auto& [i, c] : snaps) {
            const std::string delta = texts[i].update(c.ids);
            if (delta.empty() && !first[i]) continue;
            if (!send(stream_chunk(pr, meta, i, delta, first[i], std::nullopt, &c, logged[i], c.ids.size(), *tok)))
              return false;  // the client left; the engine finishes the request on its own
            first[i] = false;
            logged[i] = c.ids.size();
          }
        }
        Completions results;
        try {
          results = fut->get();
        } catch (const std::exception& e) {
          send({{"error", error_body(500, e.what())["error"]}});
          out.done();
          return true;
        }
        for (size_t r = 0; r < results.size(); ++r)
          for (size_t s = 0; s < results[r].size(); ++s) {
            const size_t i = index(r, static_cast<int64_t>(s));
            const auto& c = results[r][s];
            const std::string rest = texts[i].finish(c.text);
            if (!send(stream_chunk(pr, meta, i, rest, first[i], c.finish_reason, &c, logged[i], c.ids.size(), *tok)))
              return false;
          }
        if (pr.include_usage && !send(usage_chunk(pr, meta, usage_json(pr, results)))) return false;
        const std::string end = "data: [DONE]\n\n";
        out.write(end.data(), end.size());
        out.done();
        return true;
      });
}

Server::Server(ServeContext ctx, Scheduler& scheduler, ServerOptions opts)
    : impl_(std::make_unique<Impl>(std::move(ctx), scheduler, std::move(opts))) {
  CADA_CHECK(impl_->ctx.tokenizer != nullptr, "serve: the model folder has no tokenizer");
  CADA_CHECK(impl_->opts.http_threads >= 1, "serve: --http-threads must be at least 1");
  impl_->routes();
}

Server::~Server() = default;

int Server::run() {
  auto& im = *impl_;
  util::set_stop_messages("draining requests in flight, then stopping", "exiting at once");
  util::install_stop_handlers();
  int port = im.opts.port;
  if (port == 0) {
    port = im.http.bind_to_any_port(im.opts.host);
    CADA_CHECK(port > 0, "serve: cannot listen on ", im.opts.host, " (any port)");
  } else {
    CADA_CHECK(im.http.bind_to_port(im.opts.host, port), "serve: cannot listen on ", im.opts.host, ":", port,
               " (is another server using it? choose another --port)");
  }
  im.started = static_cast<int64_t>(std::time(nullptr));
  if (!im.opts.port_file.empty()) io::atomic_write_file(im.opts.port_file, std::to_string(port) + "\n");
  std::thread listener([&] { im.http.listen_after_bind(); });
  for (int i = 0; i < 500 && !im.http.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CADA_INFO("serving '", im.ctx.model_name, "' at http://", im.opts.host, ":", port, "/v1 (engine ",
            im.sched.engine_name(), ", context ", im.ctx.context_length, " tokens); SIGTERM or Ctrl-C drains and stops");
  while (!util::stop_requested() && im.http.is_running())
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  im.draining = true;
  CADA_INFO("serve: ", util::signal_name(util::stop_signal()), ": draining ", im.in_flight.load(),
            " request(s) in flight (new requests get 503)");
  const auto t0 = std::chrono::steady_clock::now();
  while (im.in_flight.load() > 0 &&
         std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < im.opts.drain_timeout_s)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const int64_t left = im.in_flight.load();
  im.http.stop();
  listener.join();
  im.sched.shutdown();
  const json s = im.stats_json();
  CADA_INFO("serve: stopped after ", s["requests"].get<int64_t>(), " requests (", s["generated_tokens"].get<int64_t>(),
            " tokens generated)", left > 0 ? "; " + std::to_string(left) + " still running at the drain timeout" : "");
  return left > 0 ? 1 : 0;
}

}  // namespace cada::serve
