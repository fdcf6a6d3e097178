// One engine thread over a queue of jobs: everything waiting runs as one Generator call.
#include "cada/serve/scheduler.h"

#include <chrono>

#include "cada/util/error.h"
#include "cada/util/log.h"

namespace cada::serve {

Scheduler::Scheduler(model::TransformerImpl& model, const text::Tokenizer* tok, SchedulerOptions opts)
    : gen_(model, tok, opts.engine), opts_(opts) {
  CADA_CHECK(opts_.max_rows_per_call >= 1, "serve: max_rows_per_call must be at least 1");
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() { shutdown(); }

std::string Scheduler::engine_name() const { return gen_.engine_name(); }

std::future<Completions> Scheduler::submit(std::vector<rollout::Request> requests, rollout::TokenSink on_token,
                                           std::function<void()> on_done) {
  auto job = std::make_unique<Job>();
  for (const auto& r : requests) job->rows += r.n;
  job->requests = std::move(requests);
  job->on_token = std::move(on_token);
  job->on_done = std::move(on_done);
  auto fut = job->done.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    CADA_CHECK(!stopping_, "serve: the scheduler is shutting down");
    queue_.push_back(std::move(job));
    ++stats_.queued_jobs;
  }
  cv_.notify_one();
  return fut;
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Scheduler::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::vector<std::unique_ptr<Scheduler::Job>> Scheduler::take_batch(std::unique_lock<std::mutex>& lock) {
  // A short gathering window: requests sent together by concurrent clients arrive a little apart.
  if (opts_.gather_ms > 0 && !stopping_) {
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(opts_.gather_ms * 1000)));
    lock.lock();
  }
  std::vector<std::unique_ptr<Job>> jobs;
  int64_t rows = 0;
  while (!queue_.empty() && (jobs.empty() || rows + queue_.front()->rows <= opts_.max_rows_per_call)) {
    rows += queue_.front()->rows;
    jobs.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  stats_.queued_jobs -= static_cast<int64_t>(jobs.size());
  stats_.running_jobs = static_cast<int64_t>(jobs.size());
  return jobs;
}

void Scheduler::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) break;  // stopping, nothing left
    auto jobs = take_batch(lock);
    lock.unlock();
    run(jobs);
    lock.lock();
    stats_.running_jobs = 0;
  }
}

void Scheduler::finish(Job& job, Completions* result, std::exception_ptr error) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++(error ? stats_.failed_jobs : stats_.completed_jobs);
  }
  if (error) job.done.set_exception(error);
  else job.done.set_value(std::move(*result));
  if (job.on_done) job.on_done();
}

void Scheduler::run(std::vector<std::unique_ptr<Job>>& jobs) {
  // All jobs' requests as one call; (job, request within the job) of each global request.
  std::vector<rollout::Request> all;
  std::vector<std::pair<size_t, size_t>> owner;
  for (size_t j = 0; j < jobs.size(); ++j)
    for (size_t r = 0; r < jobs[j]->requests.size(); ++r) {
      all.push_back(jobs[j]->requests[r]);
      owner.emplace_back(j, r);
    }
  bool produced = false;
  rollout::GenerateHooks hooks;
  hooks.on_token = [&](size_t req, int64_t sample, const rollout::Completion& c) {
    produced = true;
    const auto [j, r] = owner[req];
    if (jobs[j]->on_token) jobs[j]->on_token(r, sample, c);
  };
  const auto before = gen_.stats();
  const auto t0 = std::chrono::steady_clock::now();
  Completions out;
  std::exception_ptr error;
  try {
    out = gen_.generate(all, hooks);
  } catch (...) {
    error = std::current_exception();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.calls;
    stats_.busy_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    stats_.prompt_tokens += gen_.stats().prompt_tokens - before.prompt_tokens;
    stats_.generated_tokens += gen_.stats().generated_tokens - before.generated_tokens;
  }
  if (error && jobs.size() > 1 && !produced) {
    // Find the job that failed: each one alone.
    for (auto& job : jobs) {
      std::vector<std::unique_ptr<Job>> one;
      one.push_back(std::move(job));
      run(one);
    }
    return;
  }
  size_t next = 0;
  for (auto& job : jobs) {
    if (error) {
      finish(*job, nullptr, error);
      continue;
    }
    Completions mine(std::make_move_iterator(out.begin() + next),
                     std::make_move_iterator(out.begin() + next + job->requests.size()));
    next += job->requests.size();
    finish(*job, &mine, nullptr);
  }
}

}  // namespace cada::serve
