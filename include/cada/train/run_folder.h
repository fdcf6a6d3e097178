// A trainer's output_dir belongs to one run. Without --resume, a folder that already holds a
// run (its config.json, metrics.jsonl, checkpoints, final model or TensorBoard events) is refused,
// naming the ways on, so that a new run can neither overwrite the old one's checkpoints nor
// append to its metrics; --overwrite removes that run's files first. While the run lasts, an
// exclusive lock (flock on output_dir/.lock, holding the owner's pid) refuses a second process.
// In a data-parallel run only the main rank (by the launcher's environment) checks and locks.
#pragma once

#include <string>
#include <vector>

namespace cada::train {

class RunFolder {
 public:
  // Claims `dir` (created if missing). Throws cada::Error with one sentence when it holds
  // another run (without resume or overwrite) or another process holds its lock.
  static RunFolder claim(const std::string& dir, bool resume, bool overwrite);
  RunFolder() = default;
  RunFolder(RunFolder&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  RunFolder& operator=(RunFolder&& o) noexcept;
  RunFolder(const RunFolder&) = delete;
  RunFolder& operator=(const RunFolder&) = delete;
  ~RunFolder();

  // The entries of `dir` that belong to a trainer's run (names, sorted).
  static std::vector<std::string> run_entries(const std::string& dir);

 private:
  int fd_ = -1;
};

}  // namespace cada::train
