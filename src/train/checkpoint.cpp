#include "cada/train/checkpoint.h"
#include "cada/train/curves.h"

#include <random>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <numeric>
#include <random>
#include <sstream>

#include "cada/io/files.h"
#include "cada/io/jsonl.h"
#include "cada/model/loader.h"
#include "cada/model/peft_io.h"
#include "cada/util/error.h"
#include "cada/util/log.h"
#include "cada/util/signals.h"
#include "cada/train/optim.h"
#include "loop_common.h"

namespace cada::train {

namespace {

const char* kPrefix = "checkpoint-";

// Steps of the complete checkpoints in run_dir, ascending.
std::vector<int64_t> complete_steps(const std::string& run_dir) {
  std::vector<int64_t> steps;
  if (!io::is_directory(run_dir)) return steps;
  for (const auto& name : io::list_dir(run_dir)) {
    if (name.rfind(kPrefix, 0) != 0) continue;
    const std::string rest = name.substr(std::string(kPrefix).size());
    if (rest.empty() || rest.find_first_not_of("0123456789") != std::string::npos) continue;  // temporaries
    if (!io::file_exists(run_dir + "/" + name + "/trainer_state.json")) continue;
    steps.push_back(std::stoll(rest));
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

}  // namespace

static std::vector<std::pair<std::string, at::Tensor>> named_parameters(model::Transformer& model) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& item : model->named_parameters()) out.emplace_back(item.key(), item.value());
  return out;
}

void save_checkpoint(const std::string& run_dir, int64_t step, model::Transformer& model,
                     torch::optim::Optimizer& optimizer, const nlohmann::json& state,
                     const std::string& tokenizer_dir, int64_t keep_last) {
  const std::string final_dir = run_dir + "/" + kPrefix + std::to_string(step);
  const std::string tmp = final_dir + ".tmp-" + std::to_string(getpid());
  try {
    io::remove_tree(tmp);
    io::make_dirs(tmp);
    // float32 master weights: resume is exact. Under LoRA only the adapters (the base is the
    // unchanged model folder they name).
    if (model->has_lora()) model::save_adapter(*model, tmp, "");
    else model::save_model(model, tmp, at::kFloat);
    if (!tokenizer_dir.empty()) model::copy_tokenizer_files(tokenizer_dir, tmp);
    save_optimizer_state(tmp, optimizer, named_parameters(model));
    // Test hook: die half-way through a checkpoint write (tests/e2e resume test).
    if (const char* k = std::getenv("CADA_TEST_KILL_IN_CHECKPOINT"); k && std::atoll(k) == step) ::raise(SIGKILL);
    nlohmann::json st = state;
    st["format_version"] = kTrainerStateVersion;
    st["step"] = step;
    io::atomic_write_file(tmp + "/trainer_state.json", st.dump(2) + "\n");
    io::remove_tree(final_dir);
    io::rename_path(tmp, final_dir);
  } catch (const std::exception& e) {
    // A full disk or another write error: the partial folder goes, earlier checkpoints stay.
    try {
      io::remove_tree(tmp);
    } catch (const std::exception&) {
    }
    auto prev = complete_steps(run_dir);
    throw Error(str_cat("writing checkpoint ", final_dir, " failed: ", e.what(),
                        prev.empty() ? std::string(" (no earlier checkpoint)")
                                     : str_cat(" (checkpoint-", prev.back(), " is intact; --resume continues from it)")));
  }
  write_training_curves(run_dir);
  auto steps = complete_steps(run_dir);
  for (size_t i = 0; keep_last > 0 && i + keep_last < steps.size(); ++i)
    io::remove_tree(run_dir + "/" + kPrefix + std::to_string(steps[i]));
  // Temporaries of killed runs are cleared too.
  for (const auto& name : io::list_dir(run_dir))
    if (name.rfind(kPrefix, 0) == 0 && name.find(".tmp-") != std::string::npos)
      io::remove_tree(run_dir + "/" + name);
}

std::optional<std::string> latest_checkpoint(const std::string& run_dir) {
  auto steps = complete_steps(run_dir);
  if (steps.empty()) return std::nullopt;
  return run_dir + "/" + kPrefix + std::to_string(steps.back());
}

void truncate_metrics_after(const std::string& run_dir, int64_t step) {
  const std::string path = run_dir + "/metrics.jsonl";
  if (!io::file_exists(path)) return;
  io::truncate_partial_last_line(path);
  std::string kept;
  for (const auto& r : io::read_jsonl(path))
    if (r.value("step", int64_t(0)) <= step) kept += r.dump() + "\n";
  io::atomic_write_file(path, kept);
}

void save_checkpoint(dist::Comm& comm, const std::string& run_dir, int64_t step, model::Transformer& model,
                     torch::optim::Optimizer& optimizer, const nlohmann::json& state,
                     const std::string& tokenizer_dir, int64_t keep_last) {
  dist::check_parameters_agree(comm, model->parameters());
  if (comm.is_main()) save_checkpoint(run_dir, step, model, optimizer, state, tokenizer_dir, keep_last);
  comm.barrier();  // no rank runs ahead of a checkpoint that is not written yet
}

std::optional<std::string> latest_checkpoint(dist::Comm& comm, const std::string& run_dir) {
  auto ck = latest_checkpoint(run_dir);
  dist::check_same(comm, ck.value_or(""), "latest checkpoint in " + run_dir + " (a shared folder is needed)");
  return ck;
}

nlohmann::json load_checkpoint(const std::string& dir, model::Transformer& model, torch::optim::Optimizer& optimizer) {
  const std::string state_path = dir + "/trainer_state.json";
  auto st = nlohmann::json::parse(io::read_file(state_path), nullptr, false);
  CADA_CHECK(!st.is_discarded() && st.is_object(), state_path, ": not valid JSON");
  const int version = st.value("format_version", 0);
  CADA_CHECK(version == 1 || version == kTrainerStateVersion, state_path, ": format_version ", version,
             " is not supported (expected 1 or ", kTrainerStateVersion, ")");
  if (model::is_adapter_folder(dir)) {
    CADA_CHECK(model->has_lora(), dir, ": is a LoRA checkpoint but the run trains every weight (set lora.r as it was)");
    model::load_adapter_weights(*model, dir);
  } else {
    CADA_CHECK(!model->has_lora(), dir, ": is a full-model checkpoint but the run trains LoRA adapters (set lora.r = 0)");
    auto loaded = model::load_model(dir, {"cpu", "float32"});
    torch::NoGradGuard ng;
    auto src = loaded->named_parameters();
    for (auto& item : model->named_parameters()) {
      CADA_CHECK(src.contains(item.key()), dir, ": checkpoint lacks parameter ", item.key());
      item.value().copy_(src[item.key()]);
    }
  }
  if (version >= 2) {
    load_optimizer_state(dir, optimizer, named_parameters(model));
  } else {  // checkpoints of earlier versions: libtorch's archive
    const std::string path = dir + "/optimizer.pt";
    CADA_CHECK(io::file_exists(path), path, ": missing (the checkpoint is incomplete; resume from another)");
    try {
      torch::load(optimizer, path);
    } catch (const c10::Error&) {
      CADA_FAIL(path, ": cannot be read (damaged or truncated)");
    }
  }
  return st;
}

ShuffledOrder::ShuffledOrder(size_t n, uint64_t seed) : rng_(seed), order_(n) {
  std::iota(order_.begin(), order_.end(), 0);
  std::shuffle(order_.begin(), order_.end(), rng_);
}

size_t ShuffledOrder::next() {
  if (cursor_ == order_.size()) {
    std::shuffle(order_.begin(), order_.end(), rng_);
    cursor_ = 0;
  }
  return order_[cursor_++];
}

nlohmann::json ShuffledOrder::state() const {
  std::ostringstream rs;
  rs << rng_;
  return {{"cursor", cursor_}, {"order", order_}, {"rng", rs.str()}};
}

void ShuffledOrder::restore(const nlohmann::json& st) {
  cursor_ = st.at("cursor").get<size_t>();
  order_ = st.at("order").get<std::vector<size_t>>();
  std::istringstream(st.at("rng").get<std::string>()) >> rng_;
}

void EpochOrder::build() {
  perm.resize(n);
  std::iota(perm.begin(), perm.end(), 0);
  if (shuffle) {  // Fisher-Yates with a portable generator (std::shuffle's algorithm is implementation-defined)
    std::mt19937_64 rng(detail::mix(seed ^ detail::mix(static_cast<uint64_t>(epoch) + 17)));
    for (size_t i = n; i > 1; --i) std::swap(perm[i - 1], perm[rng() % i]);
  }
}

size_t EpochOrder::next() {
  CADA_CHECK(n > 0, "no data to draw from");
  if (perm.size() != n) build();
  if (cursor >= static_cast<int64_t>(n)) {
    ++epoch;
    cursor = 0;
    build();
  }
  return perm[cursor++];
}

void EpochOrder::restore(const nlohmann::json& st) {
  epoch = st.at("epoch").get<int64_t>();
  cursor = st.at("cursor").get<int64_t>();
  build();
}

static double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

CheckpointSchedule::CheckpointSchedule(const CheckpointOptions& o) : o_(o), last_(now_seconds()) {}

bool CheckpointSchedule::due(dist::Comm& comm, int64_t steps_done) {
  if (o_.every > 0 && steps_done % o_.every == 0) return true;
  if (o_.every_minutes <= 0) return false;
  double late = comm.is_main() && now_seconds() - last_ >= o_.every_minutes * 60 ? 1.0 : 0.0;
  if (comm.world() > 1) late = dist::allreduce_sum(comm, late);  // the main rank's decision
  return late > 0;
}

void CheckpointSchedule::written() { last_ = now_seconds(); }

bool stop_requested(dist::Comm& comm) {
  const double mine = util::stop_requested() ? 1.0 : 0.0;
  return (comm.world() > 1 ? dist::allreduce_sum(comm, mine) : mine) > 0;
}

void stop_run(const std::string& run_dir, int64_t step) {
  const int sig = util::stop_signal();
  throw Interrupted(util::signal_name(sig ? sig : SIGTERM) + ": stopped after step " + std::to_string(step) +
                        "; checkpoint " + run_dir + "/checkpoint-" + std::to_string(step) +
                        " written; continue with the same command and --resume",
                    128 + (sig ? sig : SIGTERM));
}

}  // namespace cada::train
