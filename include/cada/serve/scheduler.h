// The batching behind `cada serve`: requests from many connections are queued, and one engine
// thread runs everything that is waiting as one Generator call (the rollout engine then batches
// the rows: static batches on CPU, continuous batching on CUDA). Requests that arrive while a
// call runs form the next call.
//
//   Scheduler sched(model, tok, {engine_options});
//   auto done = sched.submit(requests, on_token);   // on_token: streaming, on the engine thread
//   auto completions = done.get();                  // or the engine's exception
//
// A call that fails before producing any token (e.g. its KV cache would not fit) is retried
// one job at a time, so one oversized request fails alone.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "cada/rollout/generator.h"

namespace cada::serve {

using Completions = std::vector<std::vector<rollout::Completion>>;

struct SchedulerOptions {
  rollout::GeneratorOptions engine;  // batch rows, scheduler, CUDA graphs
  int64_t max_rows_per_call = 256;   // samples taken into one Generator call at most (at least one job)
  double gather_ms = 2.0;            // after the first request of an idle spell, wait this long for others
};

struct SchedulerStats {
  int64_t queued_jobs = 0, running_jobs = 0;
  int64_t calls = 0, completed_jobs = 0, failed_jobs = 0;
  int64_t prompt_tokens = 0, generated_tokens = 0;
  double busy_s = 0;                 // time inside Generator calls
};

class Scheduler {
 public:
  Scheduler(model::TransformerImpl& model, const text::Tokenizer* tok, SchedulerOptions opts);
  ~Scheduler();  // shutdown()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues the requests. on_token (optional) sees each token as it is produced, with the
  // request's own indices; on_done (optional) runs on the engine thread once the future is ready.
  std::future<Completions> submit(std::vector<rollout::Request> requests, rollout::TokenSink on_token = {},
                                  std::function<void()> on_done = {});
  SchedulerStats stats() const;
  // Finishes every queued job, then stops the engine thread. Later submits throw cada::Error.
  void shutdown();
  // The engine's scheduler name ("static" or "continuous").
  std::string engine_name() const;

 private:
  struct Job {
    std::vector<rollout::Request> requests;
    rollout::TokenSink on_token;
    std::function<void()> on_done;
    std::promise<Completions> done;
    int64_t rows = 0;
  };
  void loop();
  std::vector<std::unique_ptr<Job>> take_batch(std::unique_lock<std::mutex>& lock);
  void run(std::vector<std::unique_ptr<Job>>& jobs);
  void finish(Job& job, Completions* result, std::exception_ptr error);

  rollout::Generator gen_;
  SchedulerOptions opts_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Job>> queue_;
  SchedulerStats stats_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace cada::serve
