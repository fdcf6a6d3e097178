#include "cada/train/grpo_trainer.h"
#include "cada/train/lm_trainer.h"
#include "cada/train/curves.h"
#include "cada/train/memory_plan.h"
#include "cada/train/precision.h"

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
#include "cada/kernels/device_memory.h"
#include "cada/model/loader.h"
#include "cada/model/logprobs.h"
#include "cada/rollout/generator.h"
#include "cada/rollout/sharded.h"
#include "cada/text/chat_template.h"
#include "cada/text/records.h"
#include "cada/text/tokenizer.h"
#include "cada/util/config.h"
#include "cada/util/error.h"
#include "cada/util/log.h"
#include "cada/util/metrics.h"
#include "cada/util/progress.h"
#include "cada/util/signals.h"
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


// The prompts of a run: the records (after data.where), their token ids (cut to
// rollout.max_prompt_length from the left, as TRL does) and their decoded text.
struct PromptSet {
  std::vector<nlohmann::json> records;
  std::vector<std::vector<int32_t>> ids;
  std::vector<std::string> texts;
};

PromptSet load_prompts(const GrpoConfig& cfg, const text::Tokenizer* tok, const text::ChatTemplate* tmpl,
                       const PromptFn& prompt_fn) {
  PromptSet ps;
  ps.records = io::read_jsonl(cfg.data.train);
  CADA_CHECK(!ps.records.empty(), cfg.data.train, ": no prompt records");
  CADA_CHECK(cfg.data.where.is_object(), "config: 'data.where' must be an object {field: value | [values]}");
  if (!cfg.data.where.empty()) {
    std::vector<nlohmann::json> kept;
    for (auto& r : ps.records) {
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
    CADA_INFO(kept.size(), " of ", ps.records.size(), " prompt records match data.where ", cfg.data.where.dump());
    ps.records = std::move(kept);
  }
  int64_t truncated = 0;
  for (size_t i = 0; i < ps.records.size(); ++i) {
    const std::string where = cfg.data.train + ":" + std::to_string(i + 1);
    auto ids = prompt_fn ? text::prompt_ids(prompt_fn(ps.records[i], where), tok, tmpl, false, where)
                         : text::prompt_ids(ps.records[i], tok, tmpl, cfg.data.raw, where);
    if (static_cast<int64_t>(ids.size()) > cfg.rollout.max_prompt_length) {
      ids.erase(ids.begin(), ids.end() - cfg.rollout.max_prompt_length);
      ++truncated;
    }
    ps.texts.push_back(tok->decode(ids, false));
    ps.ids.push_back(std::move(ids));
  }
  if (truncated) CADA_WARN(truncated, " prompt(s) longer than rollout.max_prompt_length were cut from the left");
  return ps;
}

void check_config(const GrpoConfig& cfg) {
  validate(cfg.advantage.opts, cfg.loss.opts);
  CADA_CHECK(!cfg.model.empty(), "config: 'model' (the policy's Hugging Face folder) is required");
  CADA_CHECK(!cfg.data.train.empty(), "config: 'data.train' (prompt records) is required");
  CADA_CHECK(cfg.rollout.num_generations >= 2, "config: 'rollout.num_generations' must be at least 2");
  auto problems = cfg.rollout.rollout::SamplingConfig::problems("rollout");
  for (auto& p : cfg.rollout.rollout::EngineConfig::problems("rollout")) problems.push_back(std::move(p));
  CADA_CHECK(problems.empty(), "config: ", problems.empty() ? "" : problems.front());
  CADA_CHECK(cfg.train.prompts_per_step >= 1 && cfg.train.micro_batch_size >= 1 && cfg.train.num_iterations >= 1 &&
                 cfg.train.steps >= 1,
             "config: train.steps, prompts_per_step, micro_batch_size and num_iterations must be positive");
}

// The rollout weights' dtype: rollout.dtype, where auto is bfloat16 on CUDA and the policy's
// float32 elsewhere.
at::ScalarType rollout_dtype(const GrpoConfig& cfg, const at::Device& dev) {
  const std::string& d = cfg.rollout.dtype;
  if (d == "auto") return dev.is_cuda() ? at::kBFloat16 : at::kFloat;
  if (d == "bfloat16") return at::kBFloat16;
  if (d == "float16") return at::kHalf;
  CADA_CHECK(d == "float32", "config: 'rollout.dtype' must be auto, float32, bfloat16 or float16, got '", d, "'");
  return at::kFloat;
}

// The memory plan of a run in `precision` (memory_plan.h): the policy, a separate reference
// (full fine-tuning with beta > 0, or ref_model set), a low-precision rollout copy of a float32
// policy, the engine's KV cache and one micro-batch of the longest sequences.
// The KL reference is a separately loaded model unless LoRA trains without ref_model: then it is
// the policy with its adapters off (AdaptersOff), no second copy.
bool separate_reference(const GrpoConfig& cfg, bool lora) {
  return cfg.loss.opts.beta > 0 && !(lora && cfg.ref_model.empty());
}

// Rollouts in a lower precision than the policy's float32 run on a copy; under LoRA the base is
// already in its low-precision dtype and rollouts run on the policy.
bool separate_rollout_copy(const GrpoConfig& cfg, const at::Device& dev, bool lora) {
  return rollout_dtype(cfg, dev) != at::kFloat && !lora;
}

MemoryPlan plan_for(const GrpoConfig& cfg, const Precision& precision) {
  const at::Device dev = plan_device(cfg.train.device);
  const bool lora = cfg.trainable.lora.enabled();
  const std::string rd_name = model::dtype_to_hf(rollout_dtype(cfg, dev));
  MemoryPlanInput in;
  in.model = model::ModelConfig::load(cfg.model);
  in.trainable = cfg.trainable;
  in.device = cfg.train.device;
  in.autocast = precision.autocast;
  const int64_t seq = cfg.rollout.max_prompt_length + cfg.rollout.max_completion_length;
  in.micro_batch_rows = cfg.train.micro_batch_size;
  in.row_tokens = seq;
  if (separate_reference(cfg, lora)) in.reference_dtype = frozen_weights_dtype(cfg.trainable, dev);
  if (separate_rollout_copy(cfg, dev, lora)) in.rollout_dtype = rd_name;
  in.kv_rows = std::min(cfg.rollout.batch_rows, cfg.train.prompts_per_step * cfg.rollout.num_generations);
  in.kv_tokens = seq;
  in.kv_dtype = lora ? base_weights_dtype(cfg.trainable, dev) : rd_name;
  return plan_memory(in);
}

// What one step generated and scored: the samples to learn from and the figures to log.
struct Trajectory {
  std::vector<Sample> samples;
  std::vector<double> rewards;                               // of the kept samples
  std::map<std::string, std::vector<double>> components;     // finite component values, all rounds
  int64_t gen_tokens = 0, zero_std = 0, refills = 0;
  double t_gen = 0, t_rew = 0;
};

// The micro-batches of this rank with their advantages, old and reference log-probs.
struct Batches {
  std::vector<model::CompletionBatch> batches;
  std::vector<at::Tensor> advs, olds, refs;
  int64_t n_batches = 0;     // over all ranks
  double num_items = 0;      // completion tokens of the step (the loss normaliser)
  double t_old = 0, t_ref = 0;
};

struct UpdateStats {
  double loss = 0, kl = 0, entropy = 0, clip_low = 0, clip_high = 0, clip_region = 0;  // means over micro-batches
  double grad_norm = 0, lr = 0, seconds = 0;
};

// Per-step metrics (train/, time/, perf/) from what the phases returned.
std::map<std::string, double> step_metrics(const Trajectory& tr, const Batches& b, const UpdateStats& up,
                                           double step_s, double prompt_tokens, double train_prompt_tokens,
                                           double n_params, int64_t forwards_per_token, double peak_tflops,
                                           int64_t iterations) {
  std::map<std::string, double> m;
  double mean_r = 0, var_r = 0, mean_len = 0;
  for (double r : tr.rewards) mean_r += r;
  mean_r /= std::max<size_t>(1, tr.rewards.size());
  for (double r : tr.rewards) var_r += (r - mean_r) * (r - mean_r);
  for (const auto& s : tr.samples) mean_len += s.completion.size();
  mean_len /= std::max<size_t>(1, tr.samples.size());
  const double seq_tokens = prompt_tokens + b.num_items, train_tokens = train_prompt_tokens + b.num_items;
  const double flops = 2 * n_params * seq_tokens + 2 * n_params * train_tokens * forwards_per_token +
                       6 * n_params * train_tokens * iterations;
  m["train/reward"] = mean_r;
  m["train/reward_std"] = std::sqrt(var_r / std::max<size_t>(1, tr.rewards.size() - 1));
  for (const auto& [name, vals] : tr.components) {
    double s = 0;
    for (double v : vals) s += v;
    m["train/reward/" + name] = vals.empty() ? NAN : s / vals.size();
  }
  m["train/loss"] = up.loss;
  m["train/kl"] = up.kl;
  m["train/entropy"] = up.entropy;
  m["train/clip_ratio/low"] = up.clip_low;
  m["train/clip_ratio/high"] = up.clip_high;
  m["train/clip_ratio/region"] = up.clip_region;
  m["train/grad_norm"] = up.grad_norm;
  m["train/lr"] = up.lr;
  m["train/completion_length"] = mean_len;
  m["train/zero_std_groups"] = static_cast<double>(tr.zero_std);
  m["train/refill_rounds"] = static_cast<double>(tr.refills);
  m["time/generate_s"] = tr.t_gen;
  m["time/reward_s"] = tr.t_rew;
  m["time/ref_logprobs_s"] = b.t_ref;
  m["time/old_logprobs_s"] = b.t_old;
  m["time/update_s"] = up.seconds;
  m["time/step_s"] = step_s;
  m["perf/gen_tokens_per_s"] = tr.t_gen > 0 ? tr.gen_tokens / tr.t_gen : 0;
  m["perf/tokens_per_s"] = step_s > 0 ? seq_tokens / step_s : 0;
  m["perf/tflops"] = step_s > 0 ? flops / step_s / 1e12 : 0;
  if (peak_tflops > 0) m["perf/mfu"] = m["perf/tflops"] / peak_tflops;
  return m;
}

// One GRPO run: the phases of a step (generate_trajectory, prepare_batches, grpo_step, metrics,
// checkpoint) over the state they share.
class GrpoRun {
 public:
  GrpoRun(const GrpoConfig& cfg, const RewardFn& reward, const PromptFn& prompt_fn);
  GrpoSummary run(bool resume);

 private:
  void load_models();
  // The KL reference is the policy with its adapters off (LoRA and no separate ref_model).
  // Shared prompt forwards go through a KV cache, which checkpointed layers do not take: with
  // gradient checkpointing every row is one plain forward.
  bool share_prefix() const { return cfg_.train.share_prompt_prefix && !cfg_.trainable.gradient_checkpointing; }
  bool uses_adapter_reference() const { return cfg_.loss.opts.beta > 0 && !ref_ && policy_->has_lora(); }
  void resume_from_checkpoint();
  Trajectory generate_trajectory(int64_t step);
  // One round of rollout -> score -> advantages over `want` new prompts; appends to tr.
  void rollout_round(int64_t step, int64_t round, int64_t want, Trajectory& tr);
  RewardOutput score(const std::vector<size_t>& picked, const std::vector<std::vector<rollout::Completion>>& outs);
  Batches prepare_batches(const Trajectory& tr);
  UpdateStats grpo_step(Batches& b);
  void log_step(int64_t step, const Trajectory& tr, const Batches& b, const UpdateStats& up, double step_s);
  // Writes checkpoint step + 1 when due (or forced); true when it was written.
  bool checkpoint(int64_t step, bool force = false);
  void save_final();
  // Copies the policy's weights into the rollout model (when it is a separate, lower-precision copy).
  void sync_rollout_weights();

  const GrpoConfig& cfg_;
  const RewardFn& reward_;
  dist::Comm& comm_;
  CheckpointSchedule schedule_{cfg_.checkpoint};
  const at::Device dev_;
  text::TextSetup txt_;
  PromptSet prompts_;
  model::Transformer policy_{nullptr}, ref_{nullptr}, rollout_model_{nullptr};
  MemoryPlan plan_;
  std::vector<at::Tensor> params_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<rollout::Generator> generator_;
  rollout::SamplingParams sampling_;
  EpochOrder order_;
  int64_t start_step_ = 0, updates_ = 0;
  std::unique_ptr<MetricsLogger> metrics_;
  GrpoSummary summary_;
  std::unique_ptr<Progress> bar_;
  const int64_t G_;
  const double T_;        // the temperature that divides the logits in the loss (1 for greedy)
  const Precision precision_;
};

GrpoRun::GrpoRun(const GrpoConfig& cfg, const RewardFn& reward, const PromptFn& prompt_fn)
    : cfg_(cfg), reward_(reward), comm_(dist::init_from_env(cfg.train.device)), dev_(model::parse_device(cfg.train.device)),
      G_(cfg.rollout.num_generations), T_(cfg.rollout.temperature > 0 ? cfg.rollout.temperature : 1.0),
      precision_(resolve_precision(model::parse_device(cfg.train.device), cfg.train.bf16_autocast, cfg.train.cpu_bf16)) {
  // Data parallel: every rank walks the same prompt order and receives every completion and
  // reward (each generates and scores its share), so advantages, the micro-batch split and the
  // loss normalisers are those of one process; each rank then runs its share of the
  // micro-batches and gradients are summed before clipping.
  dist::check_same(comm_, config::to_json(cfg).dump(), "GRPO config");
  model::configure_threads(cfg.train.threads);
  if (comm_.is_main()) {
    io::make_dirs(cfg.output_dir);
    io::atomic_write_file(cfg.output_dir + "/config.json", config::to_json(cfg).dump(2) + "\n");
  }
  txt_ = text::load_text(cfg.model, cfg.chat_template);
  prompts_ = load_prompts(cfg, txt_.tokenizer.get(), txt_.chat_template.get(), prompt_fn);
  order_.n = prompts_.records.size();
  order_.seed = cfg.train.seed;
  order_.shuffle = cfg.data.shuffle;
  sampling_ = cfg.rollout.params(cfg.rollout.max_completion_length);
}

void GrpoRun::load_models() {
  plan_ = plan_for(cfg_, precision_);
  CADA_INFO("memory plan (estimate):\n", plan_.table());
  policy_ = load_trainable(cfg_.model, cfg_.train.device, cfg_.trainable);
  params_ = trainable_parameters(*policy_);
  if (separate_reference(cfg_, policy_->has_lora())) {
    ref_ = model::load_model(cfg_.ref_model.empty() ? cfg_.model : cfg_.ref_model,
                             {cfg_.train.device, frozen_weights_dtype(cfg_.trainable, dev_)});
    for (auto& p : ref_->parameters()) p.requires_grad_(false);
  }
  optimizer_ = make_adamw(params_, cfg_.optim);
  // The rollout copy is refreshed after every update (in place, so the generator's slots and
  // CUDA graphs stay valid).
  rollout_model_ = policy_;
  if (separate_rollout_copy(cfg_, dev_, policy_->has_lora())) {
    const std::string name = model::dtype_to_hf(rollout_dtype(cfg_, dev_));
    rollout_model_ = model::load_model(cfg_.model, {cfg_.train.device, name});
    for (auto& p : rollout_model_->parameters()) p.requires_grad_(false);
    rollout_model_->eval();
    CADA_INFO("rollouts in ", name, " (a copy of the policy refreshed after every update)");
  }
  CADA_INFO("updates in ", precision_.describe);
  generator_ = std::make_unique<rollout::Generator>(*rollout_model_, txt_.tokenizer.get(), cfg_.rollout.options("rollout.max_completion_length, rollout.max_prompt_length or rollout.batch_rows"));
}

void GrpoRun::sync_rollout_weights() {
  if (rollout_model_.ptr() == policy_.ptr()) return;
  torch::NoGradGuard ng;
  auto src = policy_->parameters();
  auto dst = rollout_model_->parameters();
  CADA_CHECK(src.size() == dst.size(), "the rollout copy has ", dst.size(), " weights, the policy ", src.size());
  for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
}

void GrpoRun::resume_from_checkpoint() {
  if (auto ck = latest_checkpoint(comm_, cfg_.output_dir)) {
    auto st = load_checkpoint(*ck, policy_, *optimizer_);
    start_step_ = st.at("step").get<int64_t>();
    updates_ = st.at("updates").get<int64_t>();
    order_.restore(st.at("data"));
    CADA_INFO("resumed from ", *ck, " at step ", start_step_);
  } else {
    CADA_INFO("no checkpoint in ", cfg_.output_dir, " to resume from; starting fresh");
  }
  if (comm_.is_main()) truncate_metrics_after(cfg_.output_dir, start_step_);
}

Trajectory GrpoRun::generate_trajectory(int64_t step) {
  Trajectory tr;
  const int64_t rounds = cfg_.advantage.dynamic_sampling ? cfg_.advantage.max_refill_rounds : 0;
  for (int64_t round = 0; round <= rounds; ++round) {
    const int64_t want = cfg_.train.prompts_per_step - static_cast<int64_t>(tr.samples.size()) / G_;
    if (want <= 0) break;
    if (round > 0) ++tr.refills;
    rollout_round(step, round, want, tr);
  }
  return tr;
}

RewardOutput GrpoRun::score(const std::vector<size_t>& picked,
                            const std::vector<std::vector<rollout::Completion>>& outs) {
  // Each rank scores the completions of its share of the prompts; every rank gets all rewards.
  const int64_t P = static_cast<int64_t>(picked.size());
  const auto mine = dist::shard(P, comm_.rank(), comm_.world());
  std::vector<RewardInput> rin;
  for (int64_t k = mine.begin; k < mine.end; ++k)
    for (const auto& c : outs[k]) {
      const size_t p = picked[k];
      rin.push_back({&prompts_.records[p], prompts_.texts[p], c.text, static_cast<int64_t>(c.ids.size())});
    }
  // (A rank without prompts in this round, possible in a small refill round, scores nothing.)
  RewardOutput local = rin.empty() ? RewardOutput{} : reward_(rin);
  CADA_CHECK(local.total.size() == rin.size(), "the reward returned ", local.total.size(), " values for ", rin.size(),
             " completions");
  if (comm_.world() == 1) return local;
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  std::vector<nlohmann::json> items;  // one per prompt of this rank: G totals and G values per component
  for (int64_t k = 0; k < mine.size(); ++k) {
    nlohmann::json it = {{"total", nlohmann::json::array()}, {"comp", nlohmann::json::object()}};
    for (int64_t j = 0; j < G_; ++j) it["total"].push_back(num(local.total[k * G_ + j]));
    for (const auto& [name, vals] : local.components)
      for (int64_t j = 0; j < G_; ++j) it["comp"][name].push_back(num(vals[k * G_ + j]));
    items.push_back(std::move(it));
  }
  auto back = [](const nlohmann::json& j) { return j.is_null() ? NAN : j.get<double>(); };
  RewardOutput all;
  size_t before = 0;
  for (const auto& it : rollout::gather_shards(comm_, items, P)) {
    for (const auto& v : it["total"]) all.total.push_back(back(v));
    for (auto c = it["comp"].begin(); c != it["comp"].end(); ++c) {
      auto& dst = all.components[c.key()];
      dst.resize(before, NAN);  // a component that earlier prompts did not report
      for (const auto& v : c.value()) dst.push_back(back(v));
    }
    before += static_cast<size_t>(G_);
    for (auto& [name, vals] : all.components) vals.resize(before, NAN);
  }
  return all;
}

void GrpoRun::rollout_round(int64_t step, int64_t round, int64_t want, Trajectory& tr) {
  // ---- rollout: every rank builds the round's requests, each generates its share
  std::vector<size_t> picked;
  std::vector<rollout::Request> reqs;
  for (int64_t k = 0; k < want; ++k) {
    picked.push_back(order_.next());
    rollout::Request r;
    r.prompt_ids = prompts_.ids[picked.back()];
    r.params = sampling_;
    r.n = G_;
    r.seed = mix(cfg_.train.seed ^ mix(static_cast<uint64_t>(step) * 1315423911ULL + round * 7919ULL + k));
    reqs.push_back(std::move(r));
  }
  auto t0 = Clock::now();
  torch::NoGradGuard ng;
  policy_->eval();
  const auto outs = rollout::generate_sharded(*generator_, comm_, reqs);
  policy_->train();
  tr.t_gen += seconds_since(t0);
  // ---- score
  t0 = Clock::now();
  RewardOutput rout = score(picked, outs);
  tr.t_rew += seconds_since(t0);
  for (const auto& o : outs)
    for (const auto& c : o) tr.gen_tokens += static_cast<int64_t>(c.ids.size());
  for (auto& [name, vals] : rout.components)
    for (double v : vals)
      if (std::isfinite(v)) tr.components[name].push_back(v);
  // ---- advantages; with dynamic sampling, groups without spread wait for a later round
  std::vector<float> r(rout.total.size());
  for (size_t i = 0; i < r.size(); ++i) r[i] = std::isfinite(rout.total[i]) ? float(rout.total[i]) : 0.f;
  auto adv = compute_advantages(at::tensor(r), G_, cfg_.advantage.opts);
  tr.zero_std += adv.zero_std_groups;
  auto a = adv.advantages.contiguous();
  auto gstd = adv.group_std;
  for (size_t k = 0; k < picked.size(); ++k) {
    const bool flat = std::abs(gstd[k].item<float>()) < 1e-6f;
    if (cfg_.advantage.dynamic_sampling && flat && round < cfg_.advantage.max_refill_rounds) continue;
    for (int64_t j = 0; j < G_; ++j) {
      const size_t i = k * G_ + j;
      tr.samples.push_back({picked[k], outs[k][j].ids, r[i], a[i].item<float>()});
      tr.rewards.push_back(r[i]);
    }
    if (static_cast<int64_t>(tr.samples.size()) / G_ >= cfg_.train.prompts_per_step) break;
  }
}

Batches GrpoRun::prepare_batches(const Trajectory& tr) {
  Batches b;
  const auto& samples = tr.samples;
  const int64_t N = static_cast<int64_t>(samples.size());
  for (const auto& s : samples) b.num_items += s.completion.size();
  const int64_t mb = cfg_.train.micro_batch_size;
  b.n_batches = (N + mb - 1) / mb;
  const auto my_batches = dist::shard(b.n_batches, comm_.rank(), comm_.world());
  if (comm_.is_main() && b.n_batches < comm_.world() && summary_.steps_done == start_step_)
    CADA_WARN("data parallel: ", N, " sequences make ", b.n_batches, " micro-batch(es) of train.micro_batch_size = ", mb,
              " for ", comm_.world(), " processes, so some processes idle in the update; a micro_batch_size of at most ",
              std::max<int64_t>(1, N / comm_.world()), " uses them all");
  for (int64_t s = my_batches.begin * mb; s < std::min(N, my_batches.end * mb); s += mb) {
    std::vector<const std::vector<int32_t>*> p, c;
    std::vector<float> a;
    for (int64_t i = s; i < std::min(N, s + mb); ++i) {
      p.push_back(&prompts_.ids[samples[i].prompt]);
      c.push_back(&samples[i].completion);
      a.push_back(static_cast<float>(samples[i].advantage));
    }
    b.batches.push_back(model::make_completion_batch(p, c, share_prefix(), policy_->config(), dev_));
    b.advs.push_back(at::tensor(a).to(dev_));
  }
  if (cfg_.train.num_iterations > 1) {
    auto t0 = Clock::now();
    torch::NoGradGuard ng;
    AutocastScope ac(precision_);
    for (auto& x : b.batches) b.olds.push_back(batch_logps(*policy_, x, T_, false, false).first.detach());
    b.t_old = seconds_since(t0);
  }
  if (ref_ || uses_adapter_reference()) {
    auto t0 = Clock::now();
    torch::NoGradGuard ng;
    AutocastScope ac(precision_);
    if (ref_) {
      for (auto& x : b.batches) b.refs.push_back(batch_logps(*ref_, x, T_, false, false).first);
    } else {
      model::AdaptersOff base_only(*policy_);
      for (auto& x : b.batches) b.refs.push_back(batch_logps(*policy_, x, T_, false, false).first);
    }
    b.t_ref = seconds_since(t0);
  }
  return b;
}

UpdateStats GrpoRun::grpo_step(Batches& b) {
  auto t0 = Clock::now();
  const int64_t total_updates = cfg_.train.steps * cfg_.train.num_iterations;
  double sums[7] = {0, 0, 0, 0, 0, 0, 0};  // loss, kl, entropy, clip low / high / region, micro-batches
  UpdateStats up;
  for (int64_t it = 0; it < cfg_.train.num_iterations; ++it) {
    optimizer_->zero_grad();
    for (size_t k = 0; k < b.batches.size(); ++k) {
      AutocastScope ac(precision_);
      auto [lp, ent] = batch_logps(*policy_, b.batches[k], T_, true, cfg_.loss.opts.entropy_coef != 0);
      LossInputs li;
      li.logps = lp;
      if (!b.olds.empty()) li.old_logps = b.olds[k];
      if (!b.refs.empty()) li.ref_logps = b.refs[k];
      li.advantages = b.advs[k];
      li.mask = b.batches[k].mask;
      li.entropies = ent;
      li.num_items_in_batch = std::max(1.0, b.num_items);
      li.grad_accum_steps = b.n_batches;
      PolicyLossOptions lo = cfg_.loss.opts;
      lo.max_completion_length = cfg_.rollout.max_completion_length;
      auto res = policy_loss(li, lo);
      res.loss.backward();
      const double vals[6] = {res.policy_loss, res.kl, res.entropy, res.clip_low, res.clip_high, res.clip_region};
      for (int i = 0; i < 6; ++i) sums[i] += vals[i];
      sums[6] += 1;
    }
    dist::allreduce_gradients(comm_, params_);
    up.grad_norm = clip_grad_norm(params_, cfg_.optim.max_grad_norm);
    up.lr = lr_at(cfg_.optim, updates_, total_updates);
    set_lr(*optimizer_, up.lr);
    optimizer_->step();
    ++updates_;
  }
  sync_rollout_weights();
  up.seconds = seconds_since(t0);
  std::vector<double> v(sums, sums + 7);
  if (comm_.world() > 1) v = dist::allreduce_sum(comm_, v);
  const double n = std::max(1.0, v[6]);
  up.loss = v[0] / n, up.kl = v[1] / n, up.entropy = v[2] / n;
  up.clip_low = v[3] / n, up.clip_high = v[4] / n, up.clip_region = v[5] / n;
  return up;
}

void GrpoRun::log_step(int64_t step, const Trajectory& tr, const Batches& b, const UpdateStats& up, double step_s) {
  // Prompt tokens of the step's sequences, and of the training forwards (which compute a shared
  // prompt once per micro-batch).
  const int64_t N = static_cast<int64_t>(tr.samples.size()), mb = cfg_.train.micro_batch_size;
  int64_t prompt_tok = 0, train_prompt_tok = 0;
  for (int64_t s = 0; s < N; s += mb) {
    std::vector<size_t> seen;
    for (int64_t i = s; i < std::min(N, s + mb); ++i) {
      const size_t p = tr.samples[i].prompt, len = prompts_.ids[p].size();
      prompt_tok += len;
      const bool again = std::find(seen.begin(), seen.end(), p) != seen.end();
      if (!share_prefix() || !again) train_prompt_tok += len;
      seen.push_back(p);
    }
  }
  const int64_t extra_forwards = (ref_ || uses_adapter_reference() ? 1 : 0) + (cfg_.train.num_iterations > 1 ? 1 : 0);
  auto m = step_metrics(tr, b, up, step_s, prompt_tok, train_prompt_tok,
                        static_cast<double>(policy_->config().num_parameters()), extra_forwards,
                        peak_tflops_for(dev_, cfg_.log.peak_tflops), cfg_.train.num_iterations);
  if (comm_.world() > 1) m["dist/world_size"] = comm_.world();
  const auto peak = kernels::memory_peak(dev_);
  add_peak_metrics(m, peak, plan_);
  if (step == start_step_) CADA_INFO(describe_peak(peak, plan_));
  if (metrics_) metrics_->log(step + 1, m);
  summary_.mean_reward.push_back(m["train/reward"]);
  char line[256];
  std::snprintf(line, sizeof line,
                "reward %.3f kl %.4f clip %.3f entropy %.3f len %.1f %.0f tok/s (gen %.1fs rew %.1fs ref %.1fs upd %.1fs)",
                m["train/reward"], m["train/kl"], m["train/clip_ratio/region"], m["train/entropy"],
                m["train/completion_length"], m["perf/tokens_per_s"], tr.t_gen, tr.t_rew, b.t_ref, up.seconds);
  if ((step + 1) % std::max<int64_t>(1, cfg_.log.every) == 0) bar_->advance(1, line);
  else bar_->advance(1);
}

bool GrpoRun::checkpoint(int64_t step, bool force) {
  const bool last = step + 1 == cfg_.train.steps;
  const bool due = force || last || schedule_.due(comm_, step + 1);
  if (due) {
    nlohmann::json st = {{"updates", updates_}, {"data", order_.state()}, {"seed", cfg_.train.seed}};
    save_checkpoint(comm_, cfg_.output_dir, step + 1, policy_, *optimizer_, st, cfg_.model, cfg_.checkpoint.keep_last);
    summary_.last_checkpoint = cfg_.output_dir + "/checkpoint-" + std::to_string(step + 1);
    schedule_.written();
  }
  summary_.steps_done = step + 1;
  return due;
}

void GrpoRun::save_final() {
  // The trained policy with the tokenizer files, the next stage's `model`: a float32 model in HF
  // layout, or under LoRA an adapter folder naming the base.
  const std::string final_dir = cfg_.output_dir + "/final";
  if (comm_.is_main()) {
    policy_->to(at::kCPU);
    write_final_model(policy_, cfg_.output_dir, cfg_.model);
    write_training_curves(cfg_.output_dir);
    CADA_INFO("policy written to ", final_dir, "; training curves in ", cfg_.output_dir, "/curves.{png,svg}");
  }
  comm_.barrier();
}

GrpoSummary GrpoRun::run(bool resume) {
  util::install_stop_handlers();
  load_models();
  if (resume) resume_from_checkpoint();
  sync_rollout_weights();
  if (comm_.is_main()) metrics_ = std::make_unique<MetricsLogger>(cfg_.output_dir, cfg_.log.tensorboard);
  summary_.steps_done = start_step_;
  bar_ = std::make_unique<Progress>("train", cfg_.train.steps - start_step_, "step", 0.0);
  kernels::reset_memory_peak(dev_);  // the peak of training, not of loading
  for (int64_t step = start_step_; step < cfg_.train.steps; ++step) {
    detail::seed_step_rng(cfg_.train.seed, step);
    auto t_step = Clock::now();
    Trajectory tr = generate_trajectory(step);  // rollout -> score -> advantages
    Batches b = prepare_batches(tr);            // micro-batches, old and reference log-probs
    UpdateStats up = grpo_step(b);              // the policy updates
    log_step(step, tr, b, up, seconds_since(t_step));   // metrics
    const bool saved = checkpoint(step);
    if (stop_requested(comm_)) {                // SIGINT / SIGTERM: checkpoint, then stop
      if (!saved) checkpoint(step, /*force=*/true);
      stop_run(cfg_.output_dir, step + 1);
    }
  }
  bar_->finish();
  save_final();
  return summary_;
}

}  // namespace

MemoryPlan grpo_memory_plan(const GrpoConfig& cfg) {
  check_config(cfg);
  return plan_for(cfg, resolve_precision(plan_device(cfg.train.device), cfg.train.bf16_autocast, cfg.train.cpu_bf16));
}

GrpoSummary run_grpo(const GrpoConfig& cfg, const RewardFn& reward, bool resume, const PromptFn& prompt_fn) {
  check_config(cfg);
  GrpoRun run(cfg, reward, prompt_fn);
  return run.run(resume);
}

}  // namespace cada::train
