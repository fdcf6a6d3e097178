// A trainer's output_dir belongs to one run. Without --resume, a folder that already holds a
// run (its config.json, metrics.jsonl, checkpoints, final model or TensorBoard events) is refused,
// naming the ways on, so that a new run can neither overwrite the old one's checkpoints nor
// append to its metrics; --overwrite removes that run's files first. While the run lasts, an
// exclusive lock (flock on output_dir/.lock, holding the owner's pid) refuses a second process.
// In a data-parallel run only the main rank (by the launcher's environment) checks and locks.
//
// On --resume the new config is compared with the run's saved config.json: keys that change what
// the run computes (model, data, seed, optimizer, loss, rollout sampling, ...) are refused with
// the list of differences; runtime keys may change (see resumable_key).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace cada::train {

class RunFolder {
 public:
  // Claims `dir` (created if missing). Throws cada::Error with one sentence when it holds
  // another run (without resume or overwrite) or another process holds its lock.
  // `config` is the run's resolved config (config::to_json), compared on resume when not null.
  static RunFolder claim(const std::string& dir, bool resume, bool overwrite,
                         const nlohmann::json& config = nlohmann::json());
  RunFolder() = default;
  RunFolder(RunFolder&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  RunFolder& operator=(RunFolder&& o) noexcept;
  RunFolder(const RunFolder&) = delete;
  RunFolder& operator=(const RunFolder&) = delete;
  ~RunFolder();

  // The dotted keys whose values differ between two configs (objects compared key by key, other
  // values as a whole), each as "key (old -> new)"; keys that resumable_key allows are skipped.
  static std::vector<std::string> meaning_changes(const nlohmann::json& saved, const nlohmann::json& now);
  // True for keys a resumed run may change: how long it runs (steps, epochs), how it logs and
  // checkpoints (log.*, checkpoint.*, eval_every, log_every, tensorboard, peak_tflops), where it
  // runs (output_dir, device, threads) and how work is split (micro_batch_size, batch_rows,
  // engine, cuda_graphs).
  static bool resumable_key(const std::string& dotted);

  // The entries of `dir` that belong to a trainer's run (names, sorted).
  static std::vector<std::string> run_entries(const std::string& dir);

 private:
  int fd_ = -1;
};

}  // namespace cada::train
