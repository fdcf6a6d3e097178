#include "cada/train/reward_trainer.h"
#include "cada/train/lm_trainer.h"
#include "loop_common.h"
#include "cada/train/curves.h"

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

}  // namespace

MemoryPlan reward_memory_plan(const RewardTrainConfig& cfg) {
  MemoryPlanInput in;
  in.model = model::ModelConfig::load(cfg.model).as_classifier(cfg.num_labels, 0);
  in.trainable = rm_trainable(cfg);
  in.device = cfg.device;
  in.micro_batch_rows = cfg.batch_size * (cfg.mode == "pairwise" ? 2 : 1);  // chosen and rejected
  in.row_tokens = cfg.max_length;
  in.lm_head = false;
  return plan_memory(in);
}

RewardTrainSummary run_reward_training(const RewardTrainConfig& cfg, bool resume) {
  CADA_CHECK(!cfg.model.empty() && !cfg.data.empty(), "config: 'model' and 'data' are required");
  CADA_CHECK(cfg.num_labels >= 1 && cfg.steps >= 1 && cfg.batch_size >= 1, "config: num_labels, steps and batch_size must be positive");
  model::configure_threads(cfg.threads);
  util::install_stop_handlers();
  const at::Device dev = model::parse_device(cfg.device);
  // Data parallel: every rank draws the same batch and scores its contiguous share of the rows;
  // losses are means over the global batch and gradients are summed.
  auto& comm = dist::init_from_env(cfg.device);
  const int rank = comm.rank(), world = comm.world();
  const bool main_rank = comm.is_main();
  dist::check_same(comm, config::to_json(cfg).dump(), "reward-model config");
  if (main_rank) {
    io::make_dirs(cfg.output_dir);
    io::atomic_write_file(cfg.output_dir + "/config.json", config::to_json(cfg).dump(2) + "\n");
  }
  auto txt = text::load_text(cfg.model, cfg.chat_template);
  CADA_CHECK(txt.chat_template != nullptr, cfg.model, ": no chat template detected; set 'chat_template'");

  // ---- data
  std::vector<Example> train, eval;
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
    (held ? eval : train).push_back(std::move(e));
  }
  CADA_CHECK(!train.empty(), cfg.data, ": no training records (all are held out?)");

  // ---- the reward model: causal backbone + fresh score head
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
  const TrainableOptions trainable = rm_trainable(cfg);
  const MemoryPlan plan = reward_memory_plan(cfg);
  CADA_INFO("train-rm memory plan (estimate):\n", plan.table());
  make_trainable(*rm, trainable, cfg.model);
  auto params = trainable_parameters(*rm);
  auto opt = make_adamw(params, cfg.optim);
  std::unique_ptr<MetricsLogger> metrics;
  if (main_rank) metrics = std::make_unique<MetricsLogger>(cfg.output_dir, cfg.tensorboard);

  auto evaluate = [&]() -> double {
    if (eval.empty()) return NAN;
    torch::NoGradGuard ng;
    rm->eval();
    int64_t correct = 0;
    const size_t bs = static_cast<size_t>(cfg.batch_size);
    const auto mine = dist::shard((static_cast<int64_t>(eval.size()) + cfg.batch_size - 1) / cfg.batch_size, rank, world);
    for (size_t s = mine.begin * bs; s < std::min(eval.size(), mine.end * bs); s += bs) {
      std::vector<const std::vector<int32_t>*> a, b;
      std::vector<int64_t> labels;
      for (size_t i = s; i < std::min(eval.size(), s + cfg.batch_size); ++i) {
        a.push_back(&eval[i].a);
        b.push_back(&eval[i].b);
        labels.push_back(eval[i].label);
      }
      auto ra = score(*rm, a, dev).cpu();
      if (cfg.mode == "pairwise") {
        auto rb = score(*rm, b, dev).cpu();
        correct += (ra.select(1, 0) > rb.select(1, 0)).sum().item<int64_t>();
      } else {
        auto pred = cfg.num_labels == 1 ? (ra.select(1, 0) > 0).to(at::kLong) : ra.argmax(1);
        correct += (pred == at::tensor(labels, at::kLong)).sum().item<int64_t>();
      }
    }
    rm->train();
    if (world > 1) correct = static_cast<int64_t>(dist::allreduce_sum(comm, static_cast<double>(correct)));
    return static_cast<double>(correct) / eval.size();
  };

  ShuffledOrder order(train.size(), cfg.seed);
  int64_t start = 0;
  if (resume) {
    if (auto ck = latest_checkpoint(comm, cfg.output_dir)) {
      auto st = load_checkpoint(*ck, rm, *opt);
      start = st.at("step").get<int64_t>();
      order.restore(st.at("data"));
      CADA_INFO("resumed from ", *ck, " at step ", start);
    }
  }
  CheckpointSchedule schedule(cfg.checkpoint);
  Progress bar("train-rm", cfg.steps - start, "step", 0.0);
  kernels::reset_memory_peak(dev);  // the peak of training, not of loading
  RewardTrainSummary out;
  for (int64_t step = start; step < cfg.steps; ++step) {
    detail::seed_step_rng(cfg.seed, step);
    std::vector<const std::vector<int32_t>*> a, b;
    std::vector<double> margins;
    std::vector<int64_t> labels;
    const auto mine = dist::shard(cfg.batch_size, rank, world);
    for (int64_t k = 0; k < cfg.batch_size; ++k) {
      const auto& e = train[order.next()];
      if (k < mine.begin || k >= mine.end) continue;
      a.push_back(&e.a);
      b.push_back(&e.b);
      margins.push_back(e.margin);
      labels.push_back(e.label);
    }
    opt->zero_grad();
    at::Tensor loss;
    double acc = 0;
    // This rank's share of the global batch mean (exactly 1 in one process).
    const double share = static_cast<double>(mine.size()) / static_cast<double>(cfg.batch_size);
    if (a.empty()) {
      loss = at::zeros({}, at::kFloat);
    } else if (cfg.mode == "pairwise") {
      auto ra = score(*rm, a, dev).select(1, 0), rb = score(*rm, b, dev).select(1, 0);
      auto diff = ra - rb - at::tensor(margins, at::kDouble).to(dev, at::kFloat);
      loss = -at::log_sigmoid(diff).mean();
      if (cfg.center_rewards_coefficient > 0) loss = loss + cfg.center_rewards_coefficient * (ra + rb).pow(2).mean();
      acc = (ra > rb).to(at::kFloat).mean().item<double>();
    } else {
      auto ra = score(*rm, a, dev);
      auto y = at::tensor(labels, at::kLong).to(dev);
      if (cfg.num_labels == 1) {
        loss = at::binary_cross_entropy_with_logits(ra.select(1, 0), y.to(at::kFloat));
        acc = ((ra.select(1, 0) > 0).to(at::kLong) == y).to(at::kFloat).mean().item<double>();
      } else {
        loss = at::cross_entropy_loss(ra, y);
        acc = (ra.argmax(1) == y).to(at::kFloat).mean().item<double>();
      }
    }
    double loss_value = 0;
    if (world > 1) {
      if (!a.empty()) (loss * share).backward();
      dist::allreduce_gradients(comm, params);
      auto t = dist::allreduce_sum(comm, {loss.item<double>() * share, acc * share});
      loss_value = t[0];
      acc = t[1];
    } else {
      loss.backward();
      loss_value = loss.item<double>();
    }
    const double gn = clip_grad_norm(params, cfg.optim.max_grad_norm);
    const double lr = lr_at(cfg.optim, step, cfg.steps);
    set_lr(*opt, lr);
    opt->step();
    std::map<std::string, double> m{{"train/loss", loss_value}, {"train/accuracy", acc},
                                    {"train/grad_norm", gn}, {"train/lr", lr}};
    const bool last = step + 1 == cfg.steps;
    if (last || (cfg.eval_every > 0 && (step + 1) % cfg.eval_every == 0)) m["eval/accuracy"] = evaluate();
    const auto peak = kernels::memory_peak(dev);
    add_peak_metrics(m, peak, plan);
    if (step == start) CADA_INFO("train-rm ", describe_peak(peak, plan));
    if (metrics) metrics->log(step + 1, m);
    char line[160];
    std::snprintf(line, sizeof line, "loss %.4f acc %.3f%s", m["train/loss"], acc,
                  m.count("eval/accuracy") ? (" eval acc " + std::to_string(m["eval/accuracy"]).substr(0, 5)).c_str() : "");
    bar.advance(1, line);
    if (last) out.eval_accuracy = m["eval/accuracy"];
    const bool stop = stop_requested(comm);  // SIGINT / SIGTERM: checkpoint, then stop
    if (stop || (!last && schedule.due(comm, step + 1))) {
      save_checkpoint(comm, cfg.output_dir, step + 1, rm, *opt, {{"data", order.state()}}, cfg.model,
                      cfg.checkpoint.keep_last);
      schedule.written();
    }
    if (stop) stop_run(cfg.output_dir, step + 1);
  }
  bar.finish();
  out.eval_examples = static_cast<int64_t>(eval.size());
  out.final_dir = cfg.output_dir + "/final";
  dist::check_parameters_agree(comm, params);
  if (main_rank) {
    rm->to(at::kCPU);
    write_final_model(rm, cfg.output_dir, cfg.model);  // an adapter folder under LoRA
    write_training_curves(cfg.output_dir);
  }
  comm.barrier();
  CADA_INFO("held-out accuracy ", out.eval_accuracy, " on ", out.eval_examples, " records; model in ", out.final_dir);
  return out;
}

}  // namespace cada::train
