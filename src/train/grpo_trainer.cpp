#include "cada/train/grpo_trainer.h"

#include <ATen/autocast_mode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>

#include "cada/dist/comm.h"
#include "cada/io/files.h"
#include "cada/io/jsonl.h"
#include "cada/model/loader.h"
#include "cada/model/logprobs.h"
#include "cada/rollout/generator.h"
#include "cada/text/chat_template.h"
#include "cada/text/records.h"
#include "cada/text/tokenizer.h"
#include "cada/util/config.h"
#include "cada/util/error.h"
#include "cada/util/log.h"
#include "cada/util/metrics.h"
#include "cada/util/progress.h"
#include "loop_common.h"

namespace cada::train {

namespace {

using namespace detail;

// A completion to learn from.
struct Sample {
  size_t prompt;                    // index into the dataset
  std::vector<int32_t> completion;  // generated ids
  double reward = 0, advantage = 0;
};

// Per-token log-probs (B,T) (and entropies) of the batch's completions under `model`.
std::pair<at::Tensor, at::Tensor> batch_logps(model::TransformerImpl& model, const model::CompletionBatch& b,
                                              double temperature, bool want_entropy, bool entropy_grad) {
  auto st = model::token_stats(model, model::completion_hidden(model, b), b.targets, temperature, want_entropy,
                               entropy_grad);
  auto lp = at::zeros({b.B * b.T}, st.logprobs.options()).index_put({b.scatter}, st.logprobs).view({b.B, b.T});
  at::Tensor ent;
  if (want_entropy) ent = at::zeros({b.B * b.T}, st.entropy.options()).index_put({b.scatter}, st.entropy).view({b.B, b.T});
  return {lp, ent};
}


// Data parallel: every rank contributes the completions and rewards of its contiguous share of
// the round's prompts and receives all of them, in prompt order, exactly as one process has them.
void exchange_round(dist::Comm& comm, std::vector<std::vector<rollout::Completion>>& outs, RewardOutput& rout,
                    int64_t G) {
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  auto back = [](const nlohmann::json& j) { return j.is_null() ? NAN : j.get<double>(); };
  nlohmann::json mine = {{"ids", nlohmann::json::array()}, {"text", nlohmann::json::array()},
                         {"total", nlohmann::json::array()}, {"comp", nlohmann::json::object()}};
  for (const auto& o : outs)
    for (const auto& c : o) {
      mine["ids"].push_back(c.ids);
      mine["text"].push_back(c.text);
    }
  for (double v : rout.total) mine["total"].push_back(num(v));
  for (const auto& [name, vals] : rout.components) {
    auto& a = mine["comp"][name] = nlohmann::json::array();
    for (double v : vals) a.push_back(num(v));
  }
  const auto parts = dist::allgather_json(comm, mine);
  outs.clear();
  RewardOutput all;
  size_t before = 0;
  for (const auto& j : parts) {
    const size_t n = j["ids"].size();
    CADA_CHECK(n % static_cast<size_t>(G) == 0, "data parallel: a rank sent ", n, " completions, not groups of ", G);
    for (size_t i = 0; i < n; ++i) {
      if (i % G == 0) outs.emplace_back();
      rollout::Completion c;
      c.ids = j["ids"][i].get<std::vector<int32_t>>();
      c.text = j["text"][i].get<std::string>();
      outs.back().push_back(std::move(c));
    }
    for (const auto& v : j["total"]) all.total.push_back(back(v));
    for (auto it = j["comp"].begin(); it != j["comp"].end(); ++it) {
      auto& dst = all.components[it.key()];
      dst.resize(before, NAN);  // a component that an earlier rank did not report
      for (const auto& v : it.value()) dst.push_back(back(v));
    }
    before += n;
    for (auto& [name, vals] : all.components) vals.resize(before, NAN);
  }
  rout = std::move(all);
}

}  // namespace

GrpoSummary run_grpo(const GrpoConfig& cfg, const RewardFn& reward, bool resume, const PromptFn& prompt_fn) {
  validate(cfg.advantage.opts, cfg.loss.opts);
  CADA_CHECK(!cfg.model.empty(), "config: 'model' (the policy's Hugging Face folder) is required");
  CADA_CHECK(!cfg.data.train.empty(), "config: 'data.train' (prompt records) is required");
  CADA_CHECK(cfg.rollout.num_generations >= 2, "config: 'rollout.num_generations' must be at least 2");
  {
    auto problems = cfg.rollout.rollout::SamplingConfig::problems("rollout");
    for (auto& p : cfg.rollout.rollout::EngineConfig::problems("rollout")) problems.push_back(std::move(p));
    CADA_CHECK(problems.empty(), "config: ", problems.empty() ? "" : problems.front());
  }
  CADA_CHECK(cfg.train.prompts_per_step >= 1 && cfg.train.micro_batch_size >= 1 && cfg.train.num_iterations >= 1 &&
                 cfg.train.steps >= 1,
             "config: train.steps, prompts_per_step, micro_batch_size and num_iterations must be positive");
  // Data parallel: every rank walks the same prompt order, generates and scores its share of
  // each round's prompts, and receives everyone's completions and rewards, so advantages, the
  // micro-batch split and the loss normalisers are those of one process; each rank then runs
  // its share of the micro-batches and gradients are summed before clipping.
  auto& comm = dist::init_from_env(cfg.train.device);
  const int rank = comm.rank(), world = comm.world();
  const bool main_rank = comm.is_main();
  dist::check_same(comm, config::to_json(cfg).dump(), "GRPO config");
  model::configure_threads(cfg.train.threads);
  const at::Device dev = model::parse_device(cfg.train.device);
  if (main_rank) {
    io::make_dirs(cfg.output_dir);
    io::atomic_write_file(cfg.output_dir + "/config.json", config::to_json(cfg).dump(2) + "\n");
  }

  // ---- data
  auto txt = text::load_text(cfg.model, cfg.chat_template);
  auto& tok = txt.tokenizer;
  auto& tmpl = txt.chat_template;
  auto records = io::read_jsonl(cfg.data.train);
  CADA_CHECK(!records.empty(), cfg.data.train, ": no prompt records");
  CADA_CHECK(cfg.data.where.is_object(), "config: 'data.where' must be an object {field: value | [values]}");
  if (!cfg.data.where.empty()) {
    std::vector<nlohmann::json> kept;
    for (auto& r : records) {
      bool ok = true;
      for (auto it = cfg.data.where.begin(); it != cfg.data.where.end() && ok; ++it) {
        const nlohmann::json* v = r.contains(it.key()) ? &r[it.key()] : nullptr;
        if (!v) ok = false;
        else if (it.value().is_array()) ok = std::find(it.value().begin(), it.value().end(), *v) != it.value().end();
        else ok = (*v == it.value());
      }
      if (ok) kept.push_back(std::move(r));
    }
    CADA_CHECK(!kept.empty(), cfg.data.train, ": no record matches data.where ", cfg.data.where.dump());
    CADA_INFO(kept.size(), " of ", records.size(), " prompt records match data.where ", cfg.data.where.dump());
    records = std::move(kept);
  }
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::string> prompt_texts;
  int64_t truncated = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    const std::string where = cfg.data.train + ":" + std::to_string(i + 1);
    auto ids = prompt_fn ? text::prompt_ids(prompt_fn(records[i], where), tok.get(), tmpl.get(), false, where)
                         : text::prompt_ids(records[i], tok.get(), tmpl.get(), cfg.data.raw, where);
    if (static_cast<int64_t>(ids.size()) > cfg.rollout.max_prompt_length) {
      ids.erase(ids.begin(), ids.end() - cfg.rollout.max_prompt_length);
      ++truncated;
    }
    prompt_texts.push_back(tok->decode(ids, false));
    prompts.push_back(std::move(ids));
  }
  if (truncated) CADA_WARN(truncated, " prompt(s) longer than rollout.max_prompt_length were cut from the left");

  // ---- models and optimizer
  auto policy = model::load_model(cfg.model, {cfg.train.device, "float32"});
  policy->train();
  std::vector<at::Tensor> params = policy->parameters();
  model::Transformer ref{nullptr};
  if (cfg.loss.opts.beta > 0) {
    ref = model::load_model(cfg.ref_model.empty() ? cfg.model : cfg.ref_model, {cfg.train.device, "float32"});
    for (auto& p : ref->parameters()) p.requires_grad_(false);
  }
  auto optimizer = make_adamw(params, cfg.optim);
  const int64_t total_updates = cfg.train.steps * cfg.train.num_iterations;
  const bool autocast = dev.is_cuda() && cfg.train.bf16_autocast;
  const double n_params = static_cast<double>(policy->config().num_parameters());
  const double peak = peak_tflops_for(dev, cfg.log.peak_tflops);

  EpochOrder order{records.size(), cfg.train.seed, cfg.data.shuffle};
  int64_t start_step = 0, updates = 0;
  if (resume) {
    if (auto ck = latest_checkpoint(comm, cfg.output_dir)) {
      auto st = load_checkpoint(*ck, policy, *optimizer);
      start_step = st.at("step").get<int64_t>();
      updates = st.at("updates").get<int64_t>();
      order.restore(st.at("data"));
      CADA_INFO("resumed from ", *ck, " at step ", start_step);
    } else {
      CADA_INFO("no checkpoint in ", cfg.output_dir, " to resume from; starting fresh");
    }
  }
  if (resume && main_rank) truncate_metrics_after(cfg.output_dir, start_step);
  std::unique_ptr<MetricsLogger> metrics;
  if (main_rank) metrics = std::make_unique<MetricsLogger>(cfg.output_dir, cfg.log.tensorboard);
  rollout::Generator generator(*policy, tok.get(), cfg.rollout.options());
  const rollout::SamplingParams sp = cfg.rollout.params(cfg.rollout.max_completion_length);
  const int64_t G = cfg.rollout.num_generations;
  const double T = cfg.rollout.temperature > 0 ? cfg.rollout.temperature : 1.0;

  GrpoSummary summary;
  Progress bar("train", cfg.train.steps - start_step, "step", 0.0);
  for (int64_t step = start_step; step < cfg.train.steps; ++step) {
    std::map<std::string, double> m;
    auto t_step = Clock::now();
    double t_gen = 0, t_rew = 0, t_ref = 0, t_old = 0, t_upd = 0;
    int64_t gen_tokens = 0, zero_std = 0, refills = 0;
    std::vector<Sample> samples;
    std::map<std::string, std::vector<double>> comp_sums;
    std::vector<double> all_rewards;
    // ---- generate + reward (+ dynamic sampling refills)
    for (int64_t round = 0; round <= (cfg.advantage.dynamic_sampling ? cfg.advantage.max_refill_rounds : 0); ++round) {
      const int64_t want = cfg.train.prompts_per_step - static_cast<int64_t>(samples.size() / G);
      if (want <= 0) break;
      if (round > 0) ++refills;
      std::vector<size_t> picked;
      std::vector<rollout::Request> reqs;
      const auto mine = dist::shard(want, rank, world);  // this rank's prompts of the round
      for (int64_t k = 0; k < want; ++k) {
        picked.push_back(order.next());
        if (k < mine.begin || k >= mine.end) continue;
        rollout::Request r;
        r.prompt_ids = prompts[picked.back()];
        r.params = sp;
        r.n = G;
        r.seed = mix(cfg.train.seed ^ mix(static_cast<uint64_t>(step) * 1315423911ULL + round * 7919ULL + k));
        reqs.push_back(std::move(r));
      }
      auto t0 = Clock::now();
      torch::NoGradGuard ng;
      policy->eval();
      auto outs = generator.generate(reqs);
      policy->train();
      t_gen += since(t0);
      t0 = Clock::now();
      std::vector<RewardInput> rin;
      for (size_t k = 0; k < outs.size(); ++k)
        for (const auto& c : outs[k]) {
          const size_t p = picked[mine.begin + k];
          rin.push_back({&records[p], prompt_texts[p], c.text, static_cast<int64_t>(c.ids.size())});
        }
      // (A rank without prompts in this round, possible in a small refill round, scores nothing.)
      RewardOutput rout = rin.empty() ? RewardOutput{} : reward(rin);
      CADA_CHECK(rout.total.size() == rin.size(), "the reward returned ", rout.total.size(), " values for ",
                 rin.size(), " completions");
      t_rew += since(t0);
      if (world > 1) exchange_round(comm, outs, rout, G);
      for (const auto& o : outs)
        for (const auto& c : o) gen_tokens += static_cast<int64_t>(c.ids.size());
      for (auto& [name, vals] : rout.components)
        for (double v : vals)
          if (std::isfinite(v)) comp_sums[name].push_back(v);
      std::vector<float> r(rout.total.size());
      for (size_t i = 0; i < r.size(); ++i) r[i] = std::isfinite(rout.total[i]) ? float(rout.total[i]) : 0.f;
      auto adv = compute_advantages(at::tensor(r), G, cfg.advantage.opts);
      zero_std += adv.zero_std_groups;
      auto a = adv.advantages.contiguous();
      auto gstd = adv.group_std;
      for (size_t k = 0; k < picked.size(); ++k) {
        const bool flat = std::abs(gstd[k].item<float>()) < 1e-6f;
        if (cfg.advantage.dynamic_sampling && flat && round < cfg.advantage.max_refill_rounds) continue;
        for (int64_t j = 0; j < G; ++j) {
          const size_t i = k * G + j;
          samples.push_back({picked[k], outs[k][j].ids, r[i], a[i].item<float>()});
          all_rewards.push_back(r[i]);
        }
        if (static_cast<int64_t>(samples.size() / G) >= cfg.train.prompts_per_step) break;
      }
    }
    const int64_t N = static_cast<int64_t>(samples.size());
    double num_items = 0;
    for (const auto& s : samples) num_items += s.completion.size();

    // ---- micro-batches (this rank's share), old and reference log-probs
    const int64_t mb = cfg.train.micro_batch_size;
    const int64_t n_batches = (N + mb - 1) / mb;
    const auto my_batches = dist::shard(n_batches, rank, world);
    if (main_rank && n_batches < world && step == start_step)
      CADA_WARN("data parallel: ", N, " sequences make ", n_batches, " micro-batch(es) of train.micro_batch_size = ", mb,
                " for ", world, " processes, so some processes idle in the update; a micro_batch_size of at most ",
                std::max<int64_t>(1, N / world), " uses them all");
    std::vector<model::CompletionBatch> batches;
    std::vector<at::Tensor> advs, olds, refs;
    for (int64_t s = my_batches.begin * mb; s < std::min(N, my_batches.end * mb); s += mb) {
      std::vector<const std::vector<int32_t>*> p, c;
      std::vector<float> a;
      for (int64_t i = s; i < std::min(N, s + mb); ++i) {
        p.push_back(&prompts[samples[i].prompt]);
        c.push_back(&samples[i].completion);
        a.push_back(static_cast<float>(samples[i].advantage));
      }
      batches.push_back(model::make_completion_batch(p, c, cfg.train.share_prompt_prefix, policy->config(), dev));
      advs.push_back(at::tensor(a).to(dev));
    }
    if (cfg.train.num_iterations > 1) {
      auto t0 = Clock::now();
      torch::NoGradGuard ng;
      Autocast ac(autocast);
      for (auto& b : batches) olds.push_back(batch_logps(*policy, b, T, false, false).first.detach());
      t_old = since(t0);
    }
    if (ref) {
      auto t0 = Clock::now();
      torch::NoGradGuard ng;
      Autocast ac(autocast);
      for (auto& b : batches) refs.push_back(batch_logps(*ref, b, T, false, false).first);
      t_ref = since(t0);
    }

    // ---- updates
    auto t0 = Clock::now();
    double loss_sum = 0, kl_sum = 0, ent_sum = 0, clip_lo = 0, clip_hi = 0, clip_reg = 0, grad_norm = 0, lr = 0;
    int64_t n_mb = 0;
    for (int64_t it = 0; it < cfg.train.num_iterations; ++it) {
      optimizer->zero_grad();
      for (size_t k = 0; k < batches.size(); ++k) {
        Autocast ac(autocast);
        auto [lp, ent] = batch_logps(*policy, batches[k], T, true, cfg.loss.opts.entropy_coef != 0);
        LossInputs li;
        li.logps = lp;
        if (!olds.empty()) li.old_logps = olds[k];
        if (!refs.empty()) li.ref_logps = refs[k];
        li.advantages = advs[k];
        li.mask = batches[k].mask;
        li.entropies = ent;
        li.num_items_in_batch = std::max(1.0, num_items);
        li.grad_accum_steps = n_batches;
        PolicyLossOptions lo = cfg.loss.opts;
        lo.max_completion_length = cfg.rollout.max_completion_length;
        auto res = policy_loss(li, lo);
        res.loss.backward();
        loss_sum += res.policy_loss;
        kl_sum += res.kl;
        ent_sum += res.entropy;
        clip_lo += res.clip_low;
        clip_hi += res.clip_high;
        clip_reg += res.clip_region;
        ++n_mb;
      }
      dist::allreduce_gradients(comm, params);
      grad_norm = clip_grad_norm(params, cfg.optim.max_grad_norm);
      lr = lr_at(cfg.optim, updates, total_updates);
      set_lr(*optimizer, lr);
      optimizer->step();
      ++updates;
    }
    t_upd = since(t0);
    if (world > 1) {
      auto sums = dist::allreduce_sum(comm, {loss_sum, kl_sum, ent_sum, clip_lo, clip_hi, clip_reg, double(n_mb)});
      loss_sum = sums[0], kl_sum = sums[1], ent_sum = sums[2], clip_lo = sums[3], clip_hi = sums[4], clip_reg = sums[5];
      n_mb = static_cast<int64_t>(sums[6]);
    }

    // ---- metrics
    double mean_r = 0, var_r = 0, mean_len = 0;
    for (double r : all_rewards) mean_r += r;
    mean_r /= std::max<size_t>(1, all_rewards.size());
    for (double r : all_rewards) var_r += (r - mean_r) * (r - mean_r);
    for (const auto& s : samples) mean_len += s.completion.size();
    mean_len /= std::max<int64_t>(1, N);
    const double secs = since(t_step);
    int64_t prompt_tok = 0, train_prompt_tok = 0;  // the training forwards compute a shared prompt once
    for (int64_t s = 0; s < N; s += mb) {
      std::vector<size_t> seen;
      for (int64_t i = s; i < std::min(N, s + mb); ++i) {
        const size_t len = prompts[samples[i].prompt].size();
        prompt_tok += len;
        const bool again = std::find(seen.begin(), seen.end(), samples[i].prompt) != seen.end();
        if (!cfg.train.share_prompt_prefix || !again) train_prompt_tok += len;
        seen.push_back(samples[i].prompt);
      }
    }
    const double seq_tokens = prompt_tok + num_items, train_tokens = train_prompt_tok + num_items;
    const double flops = 2 * n_params * seq_tokens +
                         2 * n_params * train_tokens * ((ref ? 1 : 0) + (cfg.train.num_iterations > 1 ? 1 : 0)) +
                         6 * n_params * train_tokens * cfg.train.num_iterations;
    m["train/reward"] = mean_r;
    m["train/reward_std"] = std::sqrt(var_r / std::max<size_t>(1, all_rewards.size() - 1));
    for (auto& [name, vals] : comp_sums) {
      double s = 0;
      for (double v : vals) s += v;
      m["train/reward/" + name] = vals.empty() ? NAN : s / vals.size();
    }
    m["train/loss"] = loss_sum / std::max<int64_t>(1, n_mb);
    m["train/kl"] = kl_sum / std::max<int64_t>(1, n_mb);
    m["train/entropy"] = ent_sum / std::max<int64_t>(1, n_mb);
    m["train/clip_ratio/low"] = clip_lo / std::max<int64_t>(1, n_mb);
    m["train/clip_ratio/high"] = clip_hi / std::max<int64_t>(1, n_mb);
    m["train/clip_ratio/region"] = clip_reg / std::max<int64_t>(1, n_mb);
    m["train/grad_norm"] = grad_norm;
    m["train/lr"] = lr;
    m["train/completion_length"] = mean_len;
    m["train/zero_std_groups"] = static_cast<double>(zero_std);
    m["train/refill_rounds"] = static_cast<double>(refills);
    m["time/generate_s"] = t_gen;
    m["time/reward_s"] = t_rew;
    m["time/ref_logprobs_s"] = t_ref;
    m["time/old_logprobs_s"] = t_old;
    m["time/update_s"] = t_upd;
    m["time/step_s"] = secs;
    m["perf/gen_tokens_per_s"] = t_gen > 0 ? gen_tokens / t_gen : 0;
    m["perf/tokens_per_s"] = secs > 0 ? seq_tokens / secs : 0;
    m["perf/tflops"] = secs > 0 ? flops / secs / 1e12 : 0;
    if (peak > 0) m["perf/mfu"] = m["perf/tflops"] / peak;
    if (world > 1) m["dist/world_size"] = world;
    if (metrics) metrics->log(step + 1, m);
    summary.mean_reward.push_back(mean_r);
    char line[256];
    std::snprintf(line, sizeof line,
                  "reward %.3f kl %.4f clip %.3f entropy %.3f len %.1f %.0f tok/s (gen %.1fs rew %.1fs ref %.1fs upd %.1fs)",
                  mean_r, m["train/kl"], m["train/clip_ratio/region"], m["train/entropy"], mean_len,
                  m["perf/tokens_per_s"], t_gen, t_rew, t_ref, t_upd);
    if ((step + 1) % std::max<int64_t>(1, cfg.log.every) == 0) bar.advance(1, line);
    else bar.advance(1);

    // ---- checkpoint
    const bool last = step + 1 == cfg.train.steps;
    if (last || (cfg.checkpoint.every > 0 && (step + 1) % cfg.checkpoint.every == 0)) {
      nlohmann::json st = {{"updates", updates}, {"data", order.state()},
                           {"seed", cfg.train.seed}};
      save_checkpoint(comm, cfg.output_dir, step + 1, policy, *optimizer, st, cfg.model, cfg.checkpoint.keep_last);
      summary.last_checkpoint = cfg.output_dir + "/checkpoint-" + std::to_string(step + 1);
    }
    summary.steps_done = step + 1;
  }
  bar.finish();
  // The trained policy in HF layout (float32) with the tokenizer files: the next stage's `model`.
  const std::string final_dir = cfg.output_dir + "/final";
  if (main_rank) {
    policy->to(at::kCPU);
    model::save_model(policy, final_dir, at::kFloat);
    model::copy_tokenizer_files(cfg.model, final_dir);
    CADA_INFO("policy written to ", final_dir);
  }
  comm.barrier();
  return summary;
}

}  // namespace cada::train
