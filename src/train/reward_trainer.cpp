#include "cada/train/reward_trainer.h"
#include "cada/train/lm_trainer.h"
#include "loop_common.h"
#include "cada/train/curves.h"
#include "cada/train/precision.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>

#include "cada/dist/comm.h"
#include "cada/io/files.h"
#include "cada/io/jsonl.h"
#include "cada/kernels/device_memory.h"
#include "cada/model/loader.h"
#include "cada/text/records.h"
#include "cada/util/config.h"
#include "cada/util/error.h"
#include "cada/util/log.h"
#include "cada/util/metrics.h"
#include "cada/util/progress.h"
#include "cada/util/signals.h"

namespace cada::train {

namespace {

struct Example {
  std::vector<int32_t> a, b;  // pairwise: chosen, rejected; pointwise: a only
  double margin = 0;
  int64_t label = 0;
};

std::vector<int32_t> encode_pair(const text::Tokenizer& tok, const text::ChatTemplate& tmpl, const std::string& prompt,
                                 const std::string& response, int64_t max_len) {
  auto ids = tok.encode(tmpl.render({{"user", prompt}, {"assistant", response}}, false), false);
  if (static_cast<int64_t>(ids.size()) > max_len) ids.erase(ids.begin(), ids.end() - max_len);
  return ids;
}

// Scores (N, num_labels) of right-padded sequences at their last token.
at::Tensor score(model::TransformerImpl& m, const std::vector<const std::vector<int32_t>*>& seqs, const at::Device& dev) {
  int64_t L = 0;
  for (auto* s : seqs) L = std::max<int64_t>(L, s->size());
  const int64_t B = static_cast<int64_t>(seqs.size());
  auto ids = at::zeros({B, L}, at::kLong);
  auto acc = ids.accessor<int64_t, 2>();
  std::vector<int64_t> last;
  for (int64_t i = 0; i < B; ++i) {
    for (size_t t = 0; t < seqs[i]->size(); ++t) acc[i][t] = (*seqs[i])[t];
    last.push_back(i * L + static_cast<int64_t>(seqs[i]->size()) - 1);
  }
  model::ForwardInput in;
  in.input_ids = ids.to(dev);
  auto h = m.forward(in).hidden.reshape({B * L, -1}).index_select(0, at::tensor(last, at::kLong).to(dev));
  return m.head(h).to(at::kFloat);
}

// The trainable options of a reward model: under LoRA its fresh score head trains in full.
TrainableOptions rm_trainable(const RewardTrainConfig& cfg) {
  TrainableOptions t = cfg.trainable;
  if (t.lora.enabled()) t.lora.modules_to_save = {"score"};
  return t;
}

// The memory plan of a reward-model run in the given precision.
MemoryPlan plan_for(const RewardTrainConfig& cfg, const Precision& precision) {
  MemoryPlanInput in;
  in.model = model::ModelConfig::load(cfg.model).as_classifier(cfg.num_labels, 0);
  in.trainable = rm_trainable(cfg);
  in.device = cfg.device;
  in.micro_batch_rows = cfg.batch_size * (cfg.mode == "pairwise" ? 2 : 1);  // chosen and rejected
  in.row_tokens = cfg.max_length;
  in.lm_head = false;
  in.autocast = precision.autocast;
  return plan_memory(in);
}

// The training and held-out examples of a reward-model data file.
struct ExampleSets {
  std::vector<Example> train, eval;
};

ExampleSets read_examples(const RewardTrainConfig& cfg, const text::TextSetup& txt) {
  ExampleSets out;
  auto recs = io::read_jsonl(cfg.data);
  for (size_t i = 0; i < recs.size(); ++i) {
    const auto& r = recs[i];
    const std::string where = cfg.data + ":" + std::to_string(i + 1);
    CADA_CHECK(r.contains("prompt") && r["prompt"].is_string(), where, ": expected a 'prompt' string");
    Example e;
    const std::string prompt = r["prompt"].get<std::string>();
    if (cfg.mode == "pairwise") {
      CADA_CHECK(r.contains("chosen") && r["chosen"].is_string() && r.contains("rejected") && r["rejected"].is_string(),
                 where, ": pairwise records need 'chosen' and 'rejected' strings");
      e.a = encode_pair(*txt.tokenizer, *txt.chat_template, prompt, r["chosen"], cfg.max_length);
      e.b = encode_pair(*txt.tokenizer, *txt.chat_template, prompt, r["rejected"], cfg.max_length);
      e.margin = r.value("margin", 0.0);
    } else {
      CADA_CHECK(r.contains("response") && r["response"].is_string() && r.contains("label") &&
                     r["label"].is_number_integer(),
                 where, ": pointwise records need a 'response' string and an integer 'label'");
      e.a = encode_pair(*txt.tokenizer, *txt.chat_template, prompt, r["response"], cfg.max_length);
      e.label = r["label"].get<int64_t>();
      const int64_t classes = cfg.num_labels == 1 ? 2 : cfg.num_labels;
      CADA_CHECK(e.label >= 0 && e.label < classes, where, ": label ", e.label, " is outside [0, ", classes, ")");
    }
    const bool held = r.contains(cfg.eval_split_field) && r[cfg.eval_split_field].is_string() &&
                      r[cfg.eval_split_field].get<std::string>() == cfg.eval_split_value;
    (held ? out.eval : out.train).push_back(std::move(e));
  }
  CADA_CHECK(!out.train.empty(), cfg.data, ": no training records (all are held out?)");
  return out;
}

// The causal backbone as a classifier with a fresh score head (seeded), on `dev`.
model::Transformer build_reward_model(const RewardTrainConfig& cfg, const text::TextSetup& txt, const at::Device& dev) {
  const int64_t pad = txt.tokenizer->pad_id ? *txt.tokenizer->pad_id : (txt.tokenizer->eos_id ? *txt.tokenizer->eos_id : 0);
  model::Transformer rm = model::load_as_classifier(cfg.model, cfg.num_labels, pad,
                                                    {"cpu", base_weights_dtype(cfg.trainable, dev)});
  {
    torch::NoGradGuard ng;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(cfg.seed + 1);
    auto w = at::empty(rm->score->weight.sizes(), at::kFloat);
    w.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(rm->config().hidden_size) + 1), gen);
    rm->score->weight.set_data(w);
  }
  rm->to(dev);
  return rm;
}

// One reward-model run, in phases. Data parallel: every rank draws the same batch and scores its
// contiguous share of the rows; losses are means over the global batch and gradients are summed.
class RmRun {
 public:
  explicit RmRun(const RewardTrainConfig& cfg);
  RewardTrainSummary run(bool resume);

 private:
  struct StepOut {
    double loss = 0, accuracy = 0;   // over the global batch
  };
  void resume_from_checkpoint();
  double evaluate();
  StepOut step_gradients();
  // Logs the step's metrics (with the held-out accuracy when due); returns that accuracy or NaN.
  double log_step(int64_t step, const StepOut& s, double grad_norm, double lr);
  void finish();

  const RewardTrainConfig& cfg_;
  const at::Device dev_;
  dist::Comm& comm_;
  text::TextSetup txt_;
  ExampleSets data_;
  Precision precision_;
  MemoryPlan plan_;
  model::Transformer rm_{nullptr};
  std::vector<at::Tensor> params_;
  std::unique_ptr<torch::optim::Optimizer> opt_;
  std::unique_ptr<MetricsLogger> metrics_;
  ShuffledOrder order_;
  int64_t start_ = 0;
  RewardTrainSummary out_;
};

RmRun::RmRun(const RewardTrainConfig& cfg)
    : cfg_(cfg), dev_(model::parse_device(cfg.device)), comm_(dist::init_from_env(cfg.device)), order_(1, cfg.seed) {
  dist::check_same(comm_, config::to_json(cfg_).dump(), "reward-model config");
  if (comm_.is_main()) {
    io::make_dirs(cfg_.output_dir);
    io::atomic_write_file(cfg_.output_dir + "/config.json", config::to_json(cfg_).dump(2) + "\n");
  }
  txt_ = text::load_text(cfg_.model, cfg_.chat_template);
  CADA_CHECK(txt_.chat_template != nullptr, cfg_.model, ": no chat template detected; set 'chat_template'");
  data_ = read_examples(cfg_, txt_);
  order_ = ShuffledOrder(data_.train.size(), cfg_.seed);
  rm_ = build_reward_model(cfg_, txt_, dev_);
  precision_ = resolve_precision(dev_, cfg_.bf16_autocast, cfg_.cpu_bf16);
  CADA_INFO("train-rm in ", precision_.describe);
  plan_ = plan_for(cfg_, precision_);
  CADA_INFO("train-rm memory plan (estimate):\n", plan_.table());
  make_trainable(*rm_, rm_trainable(cfg_), cfg_.model);
  params_ = trainable_parameters(*rm_);
  opt_ = make_adamw(params_, cfg_.optim);
  if (comm_.is_main()) metrics_ = std::make_unique<MetricsLogger>(cfg_.output_dir, cfg_.tensorboard);
}

double RmRun::evaluate() {
  const auto& eval = data_.eval;
  if (eval.empty()) return NAN;
  torch::NoGradGuard ng;
  AutocastScope autocast(precision_);
  rm_->eval();
  int64_t correct = 0;
  const size_t bs = static_cast<size_t>(cfg_.batch_size);
  const auto mine = dist::shard((static_cast<int64_t>(eval.size()) + cfg_.batch_size - 1) / cfg_.batch_size,
                                comm_.rank(), comm_.world());
  for (size_t s = mine.begin * bs; s < std::min(eval.size(), mine.end * bs); s += bs) {
    std::vector<const std::vector<int32_t>*> a, b;
    std::vector<int64_t> labels;
    for (size_t i = s; i < std::min(eval.size(), s + cfg_.batch_size); ++i) {
      a.push_back(&eval[i].a);
      b.push_back(&eval[i].b);
      labels.push_back(eval[i].label);
    }
    auto ra = score(*rm_, a, dev_).cpu();
    if (cfg_.mode == "pairwise") {
      auto rb = score(*rm_, b, dev_).cpu();
      correct += (ra.select(1, 0) > rb.select(1, 0)).sum().item<int64_t>();
    } else {
      auto pred = cfg_.num_labels == 1 ? (ra.select(1, 0) > 0).to(at::kLong) : ra.argmax(1);
      correct += (pred == at::tensor(labels, at::kLong)).sum().item<int64_t>();
    }
  }
  rm_->train();
  if (comm_.world() > 1) correct = static_cast<int64_t>(dist::allreduce_sum(comm_, static_cast<double>(correct)));
  return static_cast<double>(correct) / eval.size();
}

void RmRun::resume_from_checkpoint() {
  if (auto ck = latest_checkpoint(comm_, cfg_.output_dir)) {
    auto st = load_checkpoint(*ck, rm_, *opt_);
    start_ = st.at("step").get<int64_t>();
    order_.restore(st.at("data"));
    CADA_INFO("resumed from ", *ck, " at step ", start_);
  }
}

RmRun::StepOut RmRun::step_gradients() {
  std::vector<const std::vector<int32_t>*> a, b;
  std::vector<double> margins;
  std::vector<int64_t> labels;
  const auto mine = dist::shard(cfg_.batch_size, comm_.rank(), comm_.world());
  for (int64_t k = 0; k < cfg_.batch_size; ++k) {
    const auto& e = data_.train[order_.next()];
    if (k < mine.begin || k >= mine.end) continue;
    a.push_back(&e.a);
    b.push_back(&e.b);
    margins.push_back(e.margin);
    labels.push_back(e.label);
  }
  opt_->zero_grad();
  AutocastScope autocast(precision_);  // scores come back in float32 (score())
  at::Tensor loss;
  double acc = 0;
  // This rank's share of the global batch mean (exactly 1 in one process).
  const double share = static_cast<double>(mine.size()) / static_cast<double>(cfg_.batch_size);
  if (a.empty()) {
    loss = at::zeros({}, at::kFloat);
  } else if (cfg_.mode == "pairwise") {
    auto ra = score(*rm_, a, dev_).select(1, 0), rb = score(*rm_, b, dev_).select(1, 0);
    auto diff = ra - rb - at::tensor(margins, at::kDouble).to(dev_, at::kFloat);
    loss = -at::log_sigmoid(diff).mean();
    if (cfg_.center_rewards_coefficient > 0) loss = loss + cfg_.center_rewards_coefficient * (ra + rb).pow(2).mean();
    acc = (ra > rb).to(at::kFloat).mean().item<double>();
  } else {
    auto ra = score(*rm_, a, dev_);
    auto y = at::tensor(labels, at::kLong).to(dev_);
    if (cfg_.num_labels == 1) {
      loss = at::binary_cross_entropy_with_logits(ra.select(1, 0), y.to(at::kFloat));
      acc = ((ra.select(1, 0) > 0).to(at::kLong) == y).to(at::kFloat).mean().item<double>();
    } else {
      loss = at::cross_entropy_loss(ra, y);
      acc = (ra.argmax(1) == y).to(at::kFloat).mean().item<double>();
    }
  }
  StepOut s;
  if (comm_.world() > 1) {
    if (!a.empty()) (loss * share).backward();
    dist::allreduce_gradients(comm_, params_);
    auto t = dist::allreduce_sum(comm_, {loss.item<double>() * share, acc * share});
    s.loss = t[0];
    s.accuracy = t[1];
  } else {
    loss.backward();
    s.loss = loss.item<double>();
    s.accuracy = acc;
  }
  return s;
}

double RmRun::log_step(int64_t step, const StepOut& s, double grad_norm, double lr) {
  std::map<std::string, double> m{{"train/loss", s.loss}, {"train/accuracy", s.accuracy},
                                  {"train/grad_norm", grad_norm}, {"train/lr", lr}};
  const bool last = step + 1 == cfg_.steps;
  if (last || (cfg_.eval_every > 0 && (step + 1) % cfg_.eval_every == 0)) m["eval/accuracy"] = evaluate();
  const auto peak = kernels::memory_peak(dev_);
  add_peak_metrics(m, peak, plan_);
  if (step == start_) CADA_INFO("train-rm ", describe_peak(peak, plan_));
  if (metrics_) metrics_->log(step + 1, m);
  if (last) out_.eval_accuracy = m["eval/accuracy"];
  return m.count("eval/accuracy") ? m["eval/accuracy"] : NAN;
}

void RmRun::finish() {
  out_.eval_examples = static_cast<int64_t>(data_.eval.size());
  out_.final_dir = cfg_.output_dir + "/final";
  dist::check_parameters_agree(comm_, params_);
  if (comm_.is_main()) {
    rm_->to(at::kCPU);
    write_final_model(rm_, cfg_.output_dir, cfg_.model);  // an adapter folder under LoRA
    write_training_curves(cfg_.output_dir);
  }
  comm_.barrier();
}

RewardTrainSummary RmRun::run(bool resume) {
  if (resume) resume_from_checkpoint();
  CheckpointSchedule schedule(cfg_.checkpoint);
  Progress bar("train-rm", cfg_.steps - start_, "step", 0.0);
  kernels::reset_memory_peak(dev_);  // the peak of training, not of loading
  for (int64_t step = start_; step < cfg_.steps; ++step) {
    detail::seed_step_rng(cfg_.seed, step);
    const StepOut s = step_gradients();
    const double gn = clip_grad_norm(params_, cfg_.optim.max_grad_norm);
    const double lr = lr_at(cfg_.optim, step, cfg_.steps);
    set_lr(*opt_, lr);
    opt_->step();
    const double eval_acc = log_step(step, s, gn, lr);
    char line[160];
    std::snprintf(line, sizeof line, "loss %.4f acc %.3f%s", s.loss, s.accuracy,
                  std::isnan(eval_acc) ? "" : (" eval acc " + std::to_string(eval_acc).substr(0, 5)).c_str());
    bar.advance(1, line);
    const bool stop = stop_requested(comm_);  // SIGINT / SIGTERM: checkpoint, then stop
    if (stop || (step + 1 != cfg_.steps && schedule.due(comm_, step + 1))) {
      save_checkpoint(comm_, cfg_.output_dir, step + 1, rm_, *opt_, {{"data", order_.state()}}, cfg_.model,
                      cfg_.checkpoint.keep_last);
      schedule.written();
    }
    if (stop) stop_run(cfg_.output_dir, step + 1);
  }
  bar.finish();
  finish();
  CADA_INFO("held-out accuracy ", out_.eval_accuracy, " on ", out_.eval_examples, " records; model in ", out_.final_dir);
  return out_;
}

}  // namespace

MemoryPlan reward_memory_plan(const RewardTrainConfig& cfg) {
  return plan_for(cfg, resolve_precision(plan_device(cfg.device), cfg.bf16_autocast, cfg.cpu_bf16));
}

RewardTrainSummary run_reward_training(const RewardTrainConfig& cfg, bool resume) {
  CADA_CHECK(!cfg.model.empty() && !cfg.data.empty(), "config: 'model' and 'data' are required");
  CADA_CHECK(cfg.num_labels >= 1 && cfg.steps >= 1 && cfg.batch_size >= 1, "config: num_labels, steps and batch_size must be positive");
  model::configure_threads(cfg.threads);
  util::install_stop_handlers();
  RmRun run(cfg);
  return run.run(resume);
}

}  // namespace cada::train
