#include "cada/train/lm_trainer.h"
#include "cada/model/peft_io.h"
#include "cada/train/curves.h"
#include "cada/train/memory_plan.h"
#include "cada/train/precision.h"

#include <ATen/autocast_mode.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>

#include "cada/dist/comm.h"
#include "cada/io/files.h"
#include "cada/io/jsonl.h"
#include "cada/kernels/device_memory.h"
#include "cada/model/loader.h"
#include "cada/model/logprobs.h"
#include "cada/text/records.h"
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

// Fisher-Yates with a portable generator (std::shuffle's algorithm is implementation-defined).
template <class T>
void seeded_shuffle(std::vector<T>& v, uint64_t seed) {
  std::mt19937_64 rng(mix(seed));
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
}

std::vector<text::Message> read_messages(const nlohmann::json& v, const std::string& key, const std::string& where) {
  CADA_CHECK(v.is_array(), where, ": '", key, "' must be a list of {role, content} messages");
  std::vector<text::Message> out;
  for (const auto& e : v) {
    CADA_CHECK(e.is_object() && e.contains("role") && e["role"].is_string() && e.contains("content") &&
                   e["content"].is_string(),
               where, ": each message of '", key, "' needs string fields 'role' and 'content'");
    out.push_back({e["role"].get<std::string>(), e["content"].get<std::string>()});
  }
  return out;
}

bool is_prefix(const std::vector<int32_t>& p, const std::vector<int32_t>& full) {
  return p.size() <= full.size() && std::equal(p.begin(), p.end(), full.begin());
}

// Sum of -log p over the target tokens of a micro batch of rows (right-padded; causal attention
// keeps the padding unseen, so positions are plain arange).
struct MicroOut {
  at::Tensor nll_sum;    // scalar, differentiable
  int64_t targets = 0;   // target tokens
  int64_t tokens = 0;    // real (non-padding) tokens processed
};

MicroOut micro_nll(model::TransformerImpl& net, const std::vector<const LmExample*>& rows, const at::Device& dev) {
  const int64_t B = static_cast<int64_t>(rows.size());
  int64_t L = 1;
  for (auto* r : rows) L = std::max<int64_t>(L, r->ids.size());
  auto ids = at::zeros({B, L}, at::kLong);
  auto ia = ids.accessor<int64_t, 2>();
  std::vector<int64_t> sel, tgt;
  MicroOut out;
  for (int64_t b = 0; b < B; ++b) {
    const auto& r = *rows[b];
    for (size_t t = 0; t < r.ids.size(); ++t) {
      ia[b][t] = r.ids[t];
      if (t > 0 && r.mask[t]) {
        sel.push_back(b * L + static_cast<int64_t>(t) - 1);
        tgt.push_back(r.ids[t]);
      }
    }
    out.tokens += static_cast<int64_t>(r.ids.size());
  }
  out.targets = static_cast<int64_t>(sel.size());
  model::ForwardInput in;
  in.input_ids = ids.to(dev);
  auto hidden = net.forward(in).hidden;
  if (sel.empty()) {
    out.nll_sum = hidden.sum() * 0.0;  // keeps the graph (no targets in these rows)
    return out;
  }
  auto h = hidden.reshape({B * L, -1}).index_select(0, at::tensor(sel, at::kLong).to(dev));
  auto lp = model::token_logprobs(net, h, at::tensor(tgt, at::kLong).to(dev));
  out.nll_sum = -lp.to(at::kFloat).sum();
  return out;
}

// Everything the shared loop needs.
struct LoopInputs {
  std::string label;                 // "pretrain" | "sft" (progress label)
  std::string model_dir;
  std::string output_dir;
  nlohmann::json config_json;        // the resolved config, saved in output_dir
  const std::vector<LmExample>* train = nullptr;
  const std::vector<LmExample>* eval = nullptr;
  const SupervisedLoopOptions* loop = nullptr;
  const OptimOptions* optim = nullptr;
  const CheckpointOptions* checkpoint = nullptr;
  const TrainableOptions* trainable = nullptr;
  int64_t row_tokens = 0;            // the longest row the config allows (for the memory plan)
};

int64_t micro_rows(const SupervisedLoopOptions& loop) {
  return loop.micro_batch_size > 0 ? std::min(loop.micro_batch_size, loop.batch_size) : loop.batch_size;
}

// The memory plan of a supervised run (memory_plan.h): the model, one micro-batch of the
// longest rows, the LM head chunk.
MemoryPlan loop_plan(const std::string& model_dir, const SupervisedLoopOptions& loop, const TrainableOptions& trainable,
                     int64_t row_tokens, const Precision& precision) {
  MemoryPlanInput in;
  in.model = model::ModelConfig::load(model_dir);
  in.trainable = trainable;
  in.device = loop.device;
  in.autocast = precision.autocast;
  in.micro_batch_rows = micro_rows(loop);
  in.row_tokens = row_tokens;
  return plan_memory(in);
}

// One supervised run (pre-training or SFT), in phases: set-up (model, optimizer, resume), then
// per step the gradients of one batch, the update, its metrics and the checkpoint, then the final
// model. Data parallel: every rank draws the same batch; each runs its contiguous share of the
// micro-batches with the global target count as the normaliser, and gradients are summed.
class LmRun {
 public:
  LmRun(const LoopInputs& in, bool dry_run);
  LmTrainSummary run(bool resume);

 private:
  // One batch's gradients: summed over every rank.
  struct BatchGrads {
    double nll = 0;               // summed -log p over the target tokens
    int64_t tokens = 0;           // tokens processed (padding excluded)
    int64_t targets = 0;          // target tokens of the batch
    int64_t rows = 0;
  };
  void check_inputs() const;
  void load_model();
  void resume_from_checkpoint();
  double evaluate();
  BatchGrads batch_gradients();
  LmTrainSummary dry_run_summary(const BatchGrads& g);
  void log_step(int64_t step, const BatchGrads& g, double loss, double lr, double grad_norm, double secs);
  void checkpoint(int64_t step, bool force);
  void finish(Clock::time_point t_run);

  const LoopInputs& in_;
  const SupervisedLoopOptions& loop_;
  const std::vector<LmExample>& train_;
  const std::vector<LmExample>& eval_;
  const bool dry_run_;
  const at::Device dev_;
  int64_t mb_ = 0, total_ = 0;    // rows per micro-batch; steps of the whole run
  Precision precision_;
  dist::Comm* comm_ = nullptr;
  MemoryPlan plan_;
  model::Transformer net_{nullptr};
  std::vector<at::Tensor> params_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  EpochOrder order_;
  int64_t start_ = 0;
  LmTrainSummary summary_;
  std::unique_ptr<MetricsLogger> metrics_;
  std::unique_ptr<Progress> bar_;
  CheckpointSchedule schedule_;
};

LmRun::LmRun(const LoopInputs& in, bool dry_run)
    : in_(in), loop_(*in.loop), train_(*in.train), eval_(*in.eval), dry_run_(dry_run),
      dev_(model::parse_device(in.loop->device)), schedule_(*in.checkpoint) {
  check_inputs();
  if (!dry_run_) util::install_stop_handlers();
  mb_ = micro_rows(loop_);
  total_ = loop_.steps > 0 ? loop_.steps
                           : std::max<int64_t>(1, static_cast<int64_t>(std::ceil(loop_.epochs * train_.size() /
                                                                                 loop_.batch_size)));
  precision_ = resolve_precision(dev_, loop_.bf16_autocast, loop_.cpu_bf16);
  comm_ = &dist::init_from_env(loop_.device);
  dist::check_same(*comm_, in_.config_json.dump() + "#" + std::to_string(train_.size()), in_.label + " config and data");
  order_.n = train_.size();
  order_.seed = loop_.seed;
  order_.shuffle = loop_.shuffle;
}

void LmRun::check_inputs() const {
  CADA_CHECK(!train_.empty(), in_.label, ": no training rows (is the data empty, or shorter than one row?)");
  CADA_CHECK(loop_.batch_size >= 1, "config: 'batch_size' must be at least 1, got ", loop_.batch_size);
  CADA_CHECK(loop_.micro_batch_size >= 0, "config: 'micro_batch_size' must be >= 0, got ", loop_.micro_batch_size);
  CADA_CHECK(loop_.steps >= 0 && (loop_.steps > 0 || loop_.epochs > 0),
             "config: set 'steps' > 0, or 'epochs' > 0 with steps = 0");
}

void LmRun::load_model() {
  plan_ = loop_plan(in_.model_dir, loop_, *in_.trainable, in_.row_tokens, precision_);
  if (!dry_run_) CADA_INFO(in_.label, " memory plan (estimate):\n", plan_.table());
  net_ = load_trainable(in_.model_dir, loop_.device, *in_.trainable);
  CADA_CHECK(!net_->config().is_sequence_classifier(), in_.model_dir, ": is a sequence classifier (",
             net_->config().architecture, "); ", in_.label, " needs a causal LM");
  for (const auto& r : train_)
    for (int32_t t : r.ids)
      CADA_CHECK(t >= 0 && t < net_->config().vocab_size, in_.label, ": token id ", t,
                 " is outside the model's vocabulary (", net_->config().vocab_size, ")");
  params_ = trainable_parameters(*net_);
  optimizer_ = make_adamw(params_, *in_.optim);
}

void LmRun::resume_from_checkpoint() {
  if (auto ck = latest_checkpoint(*comm_, in_.output_dir)) {
    auto st = load_checkpoint(*ck, net_, *optimizer_);
    start_ = st.at("step").get<int64_t>();
    order_.restore(st.at("data"));
    CADA_CHECK(st.value("rows", int64_t(-1)) == static_cast<int64_t>(train_.size()), *ck,
               "/trainer_state.json: the checkpoint saw ", st.value("rows", int64_t(-1)),
               " training rows but the data now gives ", train_.size(), "; resume needs the same data and config");
    CADA_INFO("resumed from ", *ck, " at step ", start_);
  } else {
    CADA_INFO("no checkpoint in ", in_.output_dir, " to resume from; starting fresh");
  }
  if (comm_->is_main()) truncate_metrics_after(in_.output_dir, start_);
}

double LmRun::evaluate() {
  if (eval_.empty()) return NAN;
  torch::NoGradGuard ng;
  net_->eval();
  double nll = 0;
  int64_t n = 0;
  const auto mine = dist::shard(static_cast<int64_t>(eval_.size()), comm_->rank(), comm_->world());
  for (size_t s = mine.begin; s < static_cast<size_t>(mine.end); s += mb_) {
    std::vector<const LmExample*> rows;
    for (size_t i = s; i < std::min<size_t>(mine.end, s + mb_); ++i) rows.push_back(&eval_[i]);
    AutocastScope ac(precision_);
    auto o = micro_nll(*net_, rows, dev_);
    nll += o.nll_sum.item<double>();
    n += o.targets;
  }
  net_->train();
  if (comm_->world() > 1) {
    auto t = dist::allreduce_sum(*comm_, {nll, double(n)});
    nll = t[0];
    n = static_cast<int64_t>(t[1]);
  }
  return n > 0 ? nll / n : NAN;
}

LmRun::BatchGrads LmRun::batch_gradients() {
  std::vector<const LmExample*> batch;
  for (int64_t k = 0; k < loop_.batch_size; ++k) batch.push_back(&train_[order_.next()]);
  BatchGrads g;
  g.rows = static_cast<int64_t>(batch.size());
  for (auto* r : batch) g.targets += r->targets();
  const double denom = static_cast<double>(std::max<int64_t>(1, g.targets));
  optimizer_->zero_grad();
  // The loss is a sum over target tokens divided by the global count, so any split of the rows
  // gives the same gradient: each rank takes a contiguous share of the rows.
  const auto mine = dist::shard(static_cast<int64_t>(batch.size()), comm_->rank(), comm_->world());
  for (size_t s = mine.begin; s < static_cast<size_t>(mine.end); s += mb_) {
    std::vector<const LmExample*> rows(batch.begin() + s, batch.begin() + std::min<size_t>(mine.end, s + mb_));
    AutocastScope ac(precision_);
    auto o = micro_nll(*net_, rows, dev_);
    (o.nll_sum / denom).backward();
    g.nll += o.nll_sum.item<double>();
    g.tokens += o.tokens;
  }
  if (comm_->world() > 1) {
    dist::allreduce_gradients(*comm_, params_);
    auto t = dist::allreduce_sum(*comm_, {g.nll, double(g.tokens)});
    g.nll = t[0];
    g.tokens = static_cast<int64_t>(t[1]);
  }
  return g;
}

LmTrainSummary LmRun::dry_run_summary(const BatchGrads& g) {
  const double loss = g.nll / static_cast<double>(std::max<int64_t>(1, g.targets));
  nlohmann::json norms = nlohmann::json::object();
  for (const auto& item : net_->named_parameters())  // the trained ones, adapters included
    if (item.value().grad().defined())
      norms[item.key()] = item.value().grad().detach().to(at::kDouble).norm().item<double>();
  summary_.dry_run = {{"loss", loss},
                      {"grad_norm", clip_grad_norm(params_, 0.0)},
                      {"tokens", g.targets},
                      {"sequences", g.rows},
                      {"grad_norms", norms}};
  summary_.first_loss = summary_.last_loss = loss;
  summary_.losses.push_back(loss);
  return summary_;
}

void LmRun::log_step(int64_t step, const BatchGrads& g, double loss, double lr, double grad_norm, double secs) {
  const double peak_tflops = peak_tflops_for(dev_, loop_.peak_tflops);
  const double n_params = static_cast<double>(net_->config().num_parameters());
  std::map<std::string, double> m;
  m["train/loss"] = loss;
  m["train/ppl"] = std::exp(std::min(loss, 50.0));
  m["train/lr"] = lr;
  m["train/grad_norm"] = grad_norm;
  m["train/target_tokens"] = static_cast<double>(g.targets);
  m["train/epoch"] = order_.epoch + static_cast<double>(order_.cursor) / static_cast<double>(order_.n);
  m["time/step_s"] = secs;
  m["perf/tokens_per_s"] = secs > 0 ? g.tokens / secs : 0;
  m["perf/tflops"] = secs > 0 ? 6.0 * n_params * g.tokens / secs / 1e12 : 0;
  if (peak_tflops > 0) m["perf/mfu"] = m["perf/tflops"] / peak_tflops;
  const bool last = step + 1 == total_;
  if (!eval_.empty() && (last || (loop_.eval_every > 0 && (step + 1) % loop_.eval_every == 0))) {
    summary_.eval_loss = evaluate();
    m["eval/loss"] = summary_.eval_loss;
    m["eval/ppl"] = std::exp(std::min(summary_.eval_loss, 50.0));
  }
  if (comm_->world() > 1) m["dist/world_size"] = comm_->world();
  const auto peak = kernels::memory_peak(dev_);
  add_peak_metrics(m, peak, plan_);
  if (step == start_) CADA_INFO(in_.label, " ", describe_peak(peak, plan_));
  if (metrics_) metrics_->log(step + 1, m);
  summary_.losses.push_back(loss);
  if (summary_.steps_done == 0) summary_.first_loss = loss;
  summary_.last_loss = loss;
  ++summary_.steps_done;

  char line[200];
  std::snprintf(line, sizeof line, "loss %.4f lr %.2e gnorm %.2f %.0f tok/s%s", loss, lr, grad_norm,
                m["perf/tokens_per_s"],
                m.count("eval/loss") ? (" | eval loss " + std::to_string(m["eval/loss"]).substr(0, 6)).c_str() : "");
  if (m.count("eval/loss")) CADA_INFO(in_.label, " step ", step + 1, "/", total_, ": ", line);
  if ((step + 1) % std::max<int64_t>(1, loop_.log_every) == 0 || last) bar_->advance(1, line);
  else bar_->advance(1);
}

void LmRun::checkpoint(int64_t step, bool force) {
  if (!(force || step + 1 == total_ || schedule_.due(*comm_, step + 1))) return;
  nlohmann::json st = {{"data", order_.state()}, {"seed", loop_.seed}, {"rows", static_cast<int64_t>(train_.size())},
                       {"total_steps", total_}};
  save_checkpoint(*comm_, in_.output_dir, step + 1, net_, *optimizer_, st, in_.model_dir, in_.checkpoint->keep_last);
  summary_.last_checkpoint = in_.output_dir + "/checkpoint-" + std::to_string(step + 1);
  schedule_.written();
}

void LmRun::finish(Clock::time_point t_run) {
  bar_->finish();
  if (std::isnan(summary_.eval_loss) && !eval_.empty() && summary_.steps_done == 0) summary_.eval_loss = evaluate();
  summary_.seconds = seconds_since(t_run);
  net_->to(at::kCPU);
  summary_.final_dir = in_.output_dir + "/final";
  if (comm_->is_main()) {
    write_final_model(net_, in_.output_dir, in_.model_dir);
    write_training_curves(in_.output_dir);
  }
  comm_->barrier();
}

LmTrainSummary LmRun::run(bool resume) {
  load_model();
  if (!dry_run_ && comm_->is_main()) {
    io::make_dirs(in_.output_dir);
    io::atomic_write_file(in_.output_dir + "/config.json", in_.config_json.dump(2) + "\n");
  }
  if (resume && !dry_run_) resume_from_checkpoint();
  summary_.total_steps = total_;
  summary_.train_rows = static_cast<int64_t>(train_.size());
  summary_.eval_rows = static_cast<int64_t>(eval_.size());
  summary_.eval_loss = NAN;
  if (!dry_run_ && comm_->is_main()) metrics_ = std::make_unique<MetricsLogger>(in_.output_dir, loop_.tensorboard);
  if (!dry_run_ && start_ < total_)
    CADA_INFO(in_.label, ": ", train_.size(), " training rows, ", eval_.size(), " held out; ", total_, " steps of ",
              loop_.batch_size, " rows (micro batches of ", mb_, "); ", precision_.describe);
  auto t_run = Clock::now();
  if (!dry_run_) bar_ = std::make_unique<Progress>(in_.label, total_ - start_, "step", 5.0);
  kernels::reset_memory_peak(dev_);  // the peak of training, not of loading
  for (int64_t step = start_; step < total_; ++step) {
    detail::seed_step_rng(loop_.seed, step);
    auto t0 = Clock::now();
    const BatchGrads g = batch_gradients();
    if (dry_run_) return dry_run_summary(g);
    const double loss = g.nll / static_cast<double>(std::max<int64_t>(1, g.targets));
    const double grad_norm = clip_grad_norm(params_, in_.optim->max_grad_norm);
    const double lr = lr_at(*in_.optim, step, total_);
    set_lr(*optimizer_, lr);
    optimizer_->step();
    log_step(step, g, loss, lr, grad_norm, seconds_since(t0));
    const bool stop = stop_requested(*comm_);  // SIGINT / SIGTERM: checkpoint, then stop
    checkpoint(step, stop);
    if (stop) stop_run(in_.output_dir, step + 1);
  }
  if (dry_run_) return summary_;  // not reached: a dry run returns after its first step
  finish(t_run);
  CADA_INFO(in_.label, ": ", summary_.steps_done, " steps in ", summary_.seconds, " s; loss ", summary_.first_loss,
            " -> ", summary_.last_loss, ", held-out loss ", summary_.eval_loss, "; model in ", summary_.final_dir);
  return summary_;
}

LmTrainSummary run_loop(const LoopInputs& in, bool resume, bool dry_run) {
  LmRun run(in, dry_run);
  return run.run(resume);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Data

int64_t LmExample::targets() const {
  int64_t n = 0;
  for (size_t t = 1; t < mask.size(); ++t) n += mask[t] != 0;
  return n;
}

std::vector<LmExample> pack_documents(const std::vector<std::vector<int32_t>>& docs, int64_t seq_len) {
  CADA_CHECK(seq_len >= 2, "seq_len must be at least 2, got ", seq_len);
  std::vector<LmExample> rows;
  LmExample cur;
  for (const auto& d : docs)
    for (int32_t t : d) {
      cur.ids.push_back(t);
      cur.mask.push_back(cur.ids.size() > 1 ? 1 : 0);
      if (static_cast<int64_t>(cur.ids.size()) == seq_len) {
        rows.push_back(std::move(cur));
        cur = LmExample{};
      }
    }
  return rows;
}

std::vector<LmExample> pack_examples(const std::vector<LmExample>& examples, int64_t seq_len) {
  CADA_CHECK(seq_len >= 2, "the packed row length must be at least 2, got ", seq_len);
  std::vector<LmExample> rows;
  std::vector<int64_t> room;  // free tokens per row
  for (size_t i = 0; i < examples.size(); ++i) {
    const auto& e = examples[i];
    const int64_t n = static_cast<int64_t>(e.ids.size());
    CADA_CHECK(n <= seq_len, "example ", i, " has ", n, " tokens, more than the packed row length ", seq_len);
    if (n == 0) continue;
    size_t r = 0;
    while (r < rows.size() && room[r] < n) ++r;  // first fit
    if (r == rows.size()) {
      rows.emplace_back();
      room.push_back(seq_len);
    }
    auto& row = rows[r];
    row.ids.insert(row.ids.end(), e.ids.begin(), e.ids.end());
    const size_t at = row.mask.size();
    row.mask.insert(row.mask.end(), e.mask.begin(), e.mask.end());
    row.mask[at] = 0;  // never predict an example's first token from the previous example
    room[r] -= n;
  }
  return rows;
}

LmExample encode_sft_record(const nlohmann::json& rec, const text::Tokenizer& tok, const text::ChatTemplate* tmpl,
                            const SftEncodeOptions& opts, const std::string& where) {
  CADA_CHECK(rec.is_object(), where, ": expected a JSON object");
  LmExample ex;
  const char* comp_key = rec.contains("completion") ? "completion" : rec.contains("response") ? "response" : nullptr;
  auto all_targets = [&] {
    ex.mask.assign(ex.ids.size(), 1);
    if (!ex.mask.empty()) ex.mask[0] = 0;
  };
  if (comp_key) {
    // ---- prompt-completion
    const auto& c = rec[comp_key];
    const bool have_prompt = rec.contains("prompt");
    CADA_CHECK(have_prompt || rec.contains("messages"), where, ": a '", comp_key,
               "' record needs a 'prompt' (string or messages) or a 'messages' list");
    const auto& p = have_prompt ? rec["prompt"] : rec["messages"];
    const char* p_key = have_prompt ? "prompt" : "messages";
    std::vector<int32_t> prompt_ids;
    if (tmpl == nullptr) {
      CADA_CHECK(p.is_string() && c.is_string(), where,
                 ": the model has no chat template, so 'prompt' and the completion must be strings (set chat_template)");
      prompt_ids = tok.encode(p.get<std::string>(), /*add_special_tokens=*/true);
      ex.ids = prompt_ids;
      auto comp = tok.encode(c.get<std::string>(), false);
      ex.ids.insert(ex.ids.end(), comp.begin(), comp.end());
      if (tok.eos_id) ex.ids.push_back(*tok.eos_id);
    } else {
      std::vector<text::Message> pm, cm;
      if (p.is_string()) pm.push_back({"user", p.get<std::string>()});
      else pm = read_messages(p, p_key, where);
      if (c.is_string()) cm.push_back({"assistant", c.get<std::string>()});
      else cm = read_messages(c, comp_key, where);
      CADA_CHECK(!pm.empty() && !cm.empty(), where, ": empty prompt or completion");
      const std::string prompt_text = tmpl->render(pm, /*add_generation_prompt=*/true);
      auto all = pm;
      all.insert(all.end(), cm.begin(), cm.end());
      const std::string full_text = tmpl->render(all, false);
      CADA_CHECK(full_text.compare(0, prompt_text.size(), prompt_text) == 0, where, ": the chat template '",
                 tmpl->name(), "' renders the prompt with its generation prompt differently from the start of the "
                 "full conversation, so the completion cannot be separated");
      prompt_ids = tok.encode(prompt_text, false);
      ex.ids = tok.encode(full_text, false);
      if (!is_prefix(prompt_ids, ex.ids))
        CADA_DEBUG(where, ": the prompt's tokens are not a prefix of the conversation's tokens; the boundary is the "
                   "prompt's token count (as TRL)");
    }
    if (opts.completion_only_loss) {
      ex.mask.assign(ex.ids.size(), 0);
      for (size_t t = std::min(prompt_ids.size(), ex.ids.size()); t < ex.ids.size(); ++t) ex.mask[t] = 1;
      if (!ex.mask.empty()) ex.mask[0] = 0;
    } else {
      all_targets();
    }
  } else if (rec.contains("messages")) {
    // ---- conversation: loss on the assistant turns
    CADA_CHECK(tmpl != nullptr, where, ": 'messages' records need a chat template (set chat_template)");
    auto msgs = read_messages(rec["messages"], "messages", where);
    CADA_CHECK(!msgs.empty(), where, ": 'messages' is empty");
    ex.ids = tok.encode(tmpl->render(msgs, false), false);
    if (!opts.assistant_only_loss) {
      all_targets();
    } else {
      ex.mask.assign(ex.ids.size(), 0);
      bool any = false;
      for (size_t k = 0; k < msgs.size(); ++k) {
        if (msgs[k].role != "assistant") continue;
        any = true;
        std::vector<text::Message> before(msgs.begin(), msgs.begin() + k), upto(msgs.begin(), msgs.begin() + k + 1);
        const size_t b = before.empty() ? 0 : tok.encode(tmpl->render(before, true), false).size();
        const size_t e = tok.encode(tmpl->render(upto, false), false).size();
        for (size_t t = b; t < std::min(e, ex.ids.size()); ++t) ex.mask[t] = 1;
      }
      CADA_CHECK(any, where, ": 'messages' has no assistant turn to train on");
      if (!ex.mask.empty()) ex.mask[0] = 0;
    }
  } else if (rec.contains("text")) {
    CADA_CHECK(rec["text"].is_string(), where, ": 'text' must be a string");
    ex.ids = tok.encode(rec["text"].get<std::string>(), /*add_special_tokens=*/true);
    if (tok.eos_id && (ex.ids.empty() || ex.ids.back() != *tok.eos_id)) ex.ids.push_back(*tok.eos_id);
    all_targets();
  } else {
    CADA_FAIL(where, ": expected {prompt|messages, completion|response}, {messages} or {text}");
  }
  if (opts.max_length > 0 && static_cast<int64_t>(ex.ids.size()) > opts.max_length) {
    ex.ids.resize(opts.max_length);
    ex.mask.resize(opts.max_length);
  }
  return ex;
}

std::vector<std::string> read_corpus(const std::string& path, const std::string& text_field) {
  std::vector<std::string> docs;
  if (path.size() > 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0) {
    io::JsonlReader r(path);
    nlohmann::json rec;
    while (r.next(rec)) {
      CADA_CHECK(rec.is_object() && rec.contains(text_field) && rec[text_field].is_string(), path, ":", r.line(),
                 ": expected a '", text_field, "' string");
      docs.push_back(rec[text_field].get<std::string>());
    }
  } else {
    std::istringstream in(io::read_file(path));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) docs.push_back(line);
    }
  }
  CADA_CHECK(!docs.empty(), path, ": no documents");
  return docs;
}

std::string write_final_model(model::Transformer& model, const std::string& output_dir, const std::string& tokenizer_dir) {
  const std::string final_dir = output_dir + "/final";
  const std::string tmp = final_dir + ".tmp-" + std::to_string(getpid());
  io::remove_tree(tmp);
  io::make_dirs(tmp);
  if (model->has_lora()) model::save_adapter(*model, tmp, "");  // PEFT's layout, naming the base folder
  else model::save_model(model, tmp, at::kFloat);
  if (!tokenizer_dir.empty()) model::copy_tokenizer_files(tokenizer_dir, tmp);
  io::remove_tree(final_dir);
  io::rename_path(tmp, final_dir);
  return final_dir;
}

// ---------------------------------------------------------------------------------------------
// Trainers

MemoryPlan lm_pretraining_memory_plan(const LmPretrainConfig& cfg) {
  const auto& l = cfg.loop;
  return loop_plan(cfg.model, l, cfg.trainable, cfg.seq_len,
                   resolve_precision(plan_device(l.device), l.bf16_autocast, l.cpu_bf16));
}

MemoryPlan sft_memory_plan(const SftConfig& cfg) {
  const auto& l = cfg.loop;
  return loop_plan(cfg.model, l, cfg.trainable, cfg.encode.max_length,
                   resolve_precision(plan_device(l.device), l.bf16_autocast, l.cpu_bf16));
}

LmTrainSummary run_lm_pretraining(const LmPretrainConfig& cfg, bool resume, bool dry_run) {
  CADA_CHECK(!cfg.model.empty(), "config: 'model' (the initial model folder, e.g. from `cada init-model`) is required");
  CADA_CHECK(!cfg.corpus.empty(), "config: 'corpus' (.jsonl with 'text', or plain text) is required");
  CADA_CHECK(cfg.seq_len >= 2, "config: 'seq_len' must be at least 2, got ", cfg.seq_len);
  CADA_CHECK(cfg.eval_fraction >= 0 && cfg.eval_fraction < 1, "config: 'eval_fraction' must be in [0, 1), got ",
             cfg.eval_fraction);
  model::configure_threads(cfg.loop.threads);
  auto tok = text::load_tokenizer(cfg.model);
  if (cfg.add_bos) CADA_CHECK(tok->bos_id.has_value(), cfg.model, ": the tokenizer has no BOS token; set add_bos=false");
  if (cfg.add_eos) CADA_CHECK(tok->eos_id.has_value(), cfg.model, ": the tokenizer has no EOS token; set add_eos=false");
  auto encode = [&](const std::vector<std::string>& texts) {
    std::vector<std::vector<int32_t>> out;
    out.reserve(texts.size());
    for (const auto& t : texts) {
      std::vector<int32_t> ids;
      if (cfg.add_bos) ids.push_back(*tok->bos_id);
      auto body = tok->encode(t, false);
      ids.insert(ids.end(), body.begin(), body.end());
      if (cfg.add_eos) ids.push_back(*tok->eos_id);
      out.push_back(std::move(ids));
    }
    return out;
  };
  auto docs = encode(read_corpus(cfg.corpus, cfg.text_field));
  // Seeded document order; the first eval_fraction of it is held out.
  std::vector<size_t> idx(docs.size());
  std::iota(idx.begin(), idx.end(), 0);
  seeded_shuffle(idx, cfg.loop.seed ^ 0xd0c5ULL);
  std::vector<std::vector<int32_t>> train_docs, eval_docs;
  size_t n_eval = 0;
  if (!cfg.eval_corpus.empty()) {
    eval_docs = encode(read_corpus(cfg.eval_corpus, cfg.text_field));
  } else if (cfg.eval_fraction > 0 && docs.size() > 1) {
    n_eval = std::max<size_t>(1, static_cast<size_t>(std::llround(cfg.eval_fraction * docs.size())));
    n_eval = std::min(n_eval, docs.size() - 1);
  }
  int64_t doc_tokens = 0;
  for (size_t k = 0; k < idx.size(); ++k) {
    doc_tokens += static_cast<int64_t>(docs[idx[k]].size());
    (k < n_eval ? eval_docs : train_docs).push_back(std::move(docs[idx[k]]));
  }
  auto train = pack_documents(train_docs, cfg.seq_len);
  CADA_CHECK(!train.empty(), cfg.corpus, ": the training documents hold fewer than seq_len = ", cfg.seq_len, " tokens");
  auto eval = pack_documents(eval_docs, cfg.seq_len);
  if (eval.empty())  // too few held-out tokens for one row: each document is its own row
    for (auto& d : eval_docs) {
      if (static_cast<int64_t>(d.size()) > cfg.seq_len) d.resize(cfg.seq_len);
      LmExample e{d, std::vector<uint8_t>(d.size(), 1)};
      if (!e.mask.empty()) e.mask[0] = 0;
      if (e.targets() > 0) eval.push_back(std::move(e));
    }
  if (!dry_run)
    CADA_INFO("pretrain: ", train_docs.size() + n_eval, " documents (", doc_tokens, " tokens), ", eval_docs.size(),
              " held out; ", train.size(), " training rows of ", cfg.seq_len, " tokens");
  LoopInputs in;
  in.label = "pretrain";
  in.model_dir = cfg.model;
  in.output_dir = cfg.output_dir;
  in.config_json = config::to_json(cfg);
  in.train = &train;
  in.eval = &eval;
  in.loop = &cfg.loop;
  in.optim = &cfg.optim;
  in.checkpoint = &cfg.checkpoint;
  in.trainable = &cfg.trainable;
  in.row_tokens = cfg.seq_len;
  return run_loop(in, resume, dry_run);
}

LmTrainSummary run_sft(const SftConfig& cfg, bool resume, bool dry_run) {
  CADA_CHECK(!cfg.model.empty(), "config: 'model' (the initial model folder) is required");
  CADA_CHECK(!cfg.data.empty(), "config: 'data' (training records, JSONL) is required");
  CADA_CHECK(cfg.encode.max_length >= 2, "config: 'max_length' must be at least 2, got ", cfg.encode.max_length);
  CADA_CHECK(cfg.eval_fraction >= 0 && cfg.eval_fraction < 1, "config: 'eval_fraction' must be in [0, 1), got ",
             cfg.eval_fraction);
  model::configure_threads(cfg.loop.threads);
  auto txt = text::load_text(cfg.model, cfg.chat_template);
  // Reads records; with `held` given, records marked by the split field go there.
  auto load = [&](const std::string& path, int64_t* dropped, int64_t* truncated, std::vector<LmExample>* held) {
    std::vector<LmExample> out;
    io::JsonlReader r(path);
    nlohmann::json rec;
    while (r.next(rec)) {
      const std::string where = path + ":" + std::to_string(r.line());
      if (!cfg.completion_field.empty() && rec.is_object()) {
        CADA_CHECK(rec.contains(cfg.completion_field), where, ": no '", cfg.completion_field,
                   "' field (completion_field)");
        rec["completion"] = rec[cfg.completion_field];
        rec.erase("response");
      }
      const bool marked = held && !cfg.eval_split_field.empty() && rec.is_object() &&
                          rec.contains(cfg.eval_split_field) && rec[cfg.eval_split_field].is_string() &&
                          rec[cfg.eval_split_field].get<std::string>() == cfg.eval_split_value;
      SftEncodeOptions o = cfg.encode;
      o.max_length = 0;
      auto e = encode_sft_record(rec, *txt.tokenizer, txt.chat_template.get(), o, where);
      if (static_cast<int64_t>(e.ids.size()) > cfg.encode.max_length) {
        ++*truncated;
        e.ids.resize(cfg.encode.max_length);
        e.mask.resize(cfg.encode.max_length);
      }
      if (e.targets() == 0) {
        ++*dropped;
        continue;
      }
      (marked ? *held : out).push_back(std::move(e));
    }
    return out;
  };
  int64_t dropped = 0, truncated = 0;
  std::vector<LmExample> eval;
  auto examples = load(cfg.data, &dropped, &truncated, cfg.eval_data.empty() ? &eval : nullptr);
  if (!cfg.eval_data.empty()) {
    eval = load(cfg.eval_data, &dropped, &truncated, nullptr);
  } else if (eval.empty() && cfg.eval_fraction > 0 && examples.size() > 1) {
    std::vector<size_t> idx(examples.size());
    std::iota(idx.begin(), idx.end(), 0);
    seeded_shuffle(idx, cfg.loop.seed ^ 0xe7a1ULL);
    size_t n_eval = std::max<size_t>(1, static_cast<size_t>(std::llround(cfg.eval_fraction * examples.size())));
    n_eval = std::min(n_eval, examples.size() - 1);
    std::vector<char> held(examples.size(), 0);
    for (size_t k = 0; k < n_eval; ++k) held[idx[k]] = 1;
    std::vector<LmExample> kept;
    for (size_t i = 0; i < examples.size(); ++i) (held[i] ? eval : kept).push_back(std::move(examples[i]));
    examples = std::move(kept);
  }
  if (truncated) CADA_WARN("sft: ", truncated, " example(s) longer than max_length = ", cfg.encode.max_length, " were cut");
  if (dropped) CADA_WARN("sft: ", dropped, " example(s) without target tokens (after truncation) were dropped");
  std::vector<LmExample> train;
  if (cfg.packing) {
    // Pack in a seeded order so that rows mix examples from the whole file.
    std::vector<size_t> idx(examples.size());
    std::iota(idx.begin(), idx.end(), 0);
    seeded_shuffle(idx, cfg.loop.seed ^ 0x9ac4ULL);
    std::vector<LmExample> ordered;
    for (size_t i : idx) ordered.push_back(examples[i]);
    train = pack_examples(ordered, cfg.encode.max_length);
    if (!dry_run) CADA_INFO("sft: packed ", examples.size(), " examples into ", train.size(), " rows of at most ",
                            cfg.encode.max_length, " tokens");
  } else {
    train = std::move(examples);
  }
  LoopInputs in;
  in.label = "sft";
  in.model_dir = cfg.model;
  in.output_dir = cfg.output_dir;
  in.config_json = config::to_json(cfg);
  in.train = &train;
  in.eval = &eval;
  in.loop = &cfg.loop;
  in.optim = &cfg.optim;
  in.checkpoint = &cfg.checkpoint;
  in.trainable = &cfg.trainable;
  in.row_tokens = cfg.encode.max_length;
  return run_loop(in, resume, dry_run);
}

}  // namespace cada::train
