// The serving scheduler: jobs queued together run as one engine call and get exactly what the
// Generator gives each alone; a failing job fails alone; shutdown finishes queued work.
#include <gtest/gtest.h>

#include <map>

#include "cada/model/loader.h"
#include "cada/serve/scheduler.h"
#include "cada/util/error.h"

using namespace cada;

namespace {

model::Transformer tiny_model() {
  nlohmann::json j = {{"model_type", "llama"},  {"hidden_size", 32},        {"intermediate_size", 48},
                      {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                      {"vocab_size", 50},       {"eos_token_id", 3}};
  model::Transformer m(model::ModelConfig::from_json(j, "test"));
  model::init_weights(m, 5, 0.3);
  m->eval();
  return m;
}

rollout::Request request(int i, int64_t n) {
  rollout::Request q;
  for (int t = 0; t <= i % 5; ++t) q.prompt_ids.push_back(5 + i + t);
  q.params.temperature = 1.0f;
  q.params.max_new_tokens = 6 + i % 4;
  q.seed = 100 + i;
  q.n = n;
  return q;
}

serve::SchedulerOptions options(double gather_ms) {
  serve::SchedulerOptions o;
  o.engine.max_batch_rows = 8;
  o.gather_ms = gather_ms;
  return o;
}

}  // namespace

TEST(Scheduler, QueuedJobsRunTogetherAndGetWhatEachGetsAlone) {
  auto m = tiny_model();
  serve::Scheduler sched(*m, nullptr, options(/*gather_ms=*/300));
  std::vector<std::future<serve::Completions>> futs;
  std::map<std::pair<int, int64_t>, std::vector<int32_t>> streamed;
  std::mutex mu;
  for (int i = 0; i < 6; ++i)
    futs.push_back(sched.submit({request(i, 1 + i % 3)}, [&, i](size_t r, int64_t s, const rollout::Completion& c) {
      std::lock_guard<std::mutex> lock(mu);
      EXPECT_EQ(r, 0u) << "indices are the job's own";
      streamed[{i, s}].push_back(c.ids.back());
    }));
  rollout::Generator alone(*m, nullptr, options(0).engine);
  for (int i = 0; i < 6; ++i) {
    auto got = futs[i].get();
    auto want = alone.generate({request(i, 1 + i % 3)});
    ASSERT_EQ(got.size(), 1u);
    ASSERT_EQ(got[0].size(), want[0].size());
    for (size_t s = 0; s < got[0].size(); ++s) {
      EXPECT_EQ(got[0][s].ids, want[0][s].ids) << "job " << i << " sample " << s;
      EXPECT_EQ(streamed[std::make_pair(i, static_cast<int64_t>(s))], got[0][s].ids);
      for (size_t t = 0; t < got[0][s].logprobs.size(); ++t)
        EXPECT_NEAR(got[0][s].logprobs[t], want[0][s].logprobs[t], 1e-5);
    }
  }
  const auto st = sched.stats();
  EXPECT_EQ(st.completed_jobs, 6);
  EXPECT_LE(st.calls, 2) << "jobs queued within the gathering window share an engine call";
  EXPECT_GT(st.generated_tokens, 0);
}

TEST(Scheduler, AFailingJobFailsAlone) {
  auto m = tiny_model();
  serve::Scheduler sched(*m, nullptr, options(/*gather_ms=*/300));
  auto good1 = sched.submit({request(0, 2)});
  auto bad_req = request(1, 1);
  bad_req.prompt_ids.push_back(999);  // outside the vocabulary: the engine refuses the call
  auto bad = sched.submit({bad_req});
  auto good2 = sched.submit({request(2, 1)});
  EXPECT_EQ(good1.get()[0].size(), 2u);
  EXPECT_EQ(good2.get()[0].size(), 1u);
  try {
    bad.get();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside the vocabulary"), std::string::npos) << e.what();
  }
  EXPECT_EQ(sched.stats().failed_jobs, 1);
  EXPECT_EQ(sched.stats().completed_jobs, 2);
}

TEST(Scheduler, ShutdownFinishesQueuedJobs) {
  auto m = tiny_model();
  std::vector<std::future<serve::Completions>> futs;
  int done_callbacks = 0;
  {
    serve::Scheduler sched(*m, nullptr, options(0));
    for (int i = 0; i < 5; ++i) futs.push_back(sched.submit({request(i, 1)}, {}, [&] { ++done_callbacks; }));
    sched.shutdown();
    EXPECT_THROW(sched.submit({request(0, 1)}), Error);
  }
  for (auto& f : futs) EXPECT_EQ(f.get()[0].size(), 1u);
  EXPECT_EQ(done_callbacks, 5);
}
