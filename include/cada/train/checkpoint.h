// Trainer checkpoints: <run>/checkpoint-<step>/ holds the model in HF layout (loadable by
// transformers), the tokenizer files, the AdamW state (optimizer.safetensors + optimizer.json, train/optim.h)
// and trainer_state.json (format version,
// step, data position, anything else the trainer needs to continue exactly). A checkpoint is
// written into a temporary folder and renamed into place only when complete, so a process
// killed mid-write, or a write that fails (a full disk), leaves the previous checkpoints usable and
// is one error naming the folder; the last `keep_last` are kept.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cada/dist/comm.h"
#include "cada/model/transformer.h"
#include "cada/util/config.h"

namespace cada::train {

// 2: optimizer state as optimizer.safetensors + optimizer.json (train/optim.h); 1: optimizer.pt.
constexpr int kTrainerStateVersion = 2;

struct CheckpointOptions {
  int64_t every = 0;           // trainer steps between checkpoints; 0 = by time only
  double every_minutes = 30;   // also when this much time has passed since the last one; 0 = off
  int64_t keep_last = 2;       // complete checkpoints kept
  template <class V> void visit(V& v) {
    v("every", every, "steps between checkpoints (0 = only by time and at the end)", config::Range::at_least(0));
    v("every_minutes", every_minutes, "also checkpoint when this many minutes passed since the last one (0 = off)",
      config::Range::at_least(0));
    v("keep_last", keep_last, "complete checkpoints kept (older ones are deleted)", config::Range::at_least(0));
  }
};

// When a checkpoint is due after a step: every `every` steps, or once `every_minutes` have passed
// since the last checkpoint (or the start), so that a long run interrupted by a crash loses at
// most that much work. The main rank's clock decides for every rank.
class CheckpointSchedule {
 public:
  explicit CheckpointSchedule(const CheckpointOptions& o);
  // After step `steps_done` (1-based); every rank must call it.
  bool due(dist::Comm& comm, int64_t steps_done);
  void written();  // a checkpoint was just written: the time interval starts again

 private:
  CheckpointOptions o_;
  double last_ = 0;  // seconds since the epoch of the last checkpoint
};

// Writes checkpoint-<step> atomically, then prunes old ones. `tokenizer_dir` supplies the
// tokenizer files copied next to the weights.
void save_checkpoint(const std::string& run_dir, int64_t step, model::Transformer& model,
                     torch::optim::Optimizer& optimizer, const nlohmann::json& state,
                     const std::string& tokenizer_dir, int64_t keep_last);

// The newest complete checkpoint folder in run_dir, if any (incomplete temporaries ignored).
std::optional<std::string> latest_checkpoint(const std::string& run_dir);

// Data parallel: every rank must hold the same parameters (checked), rank 0 writes, and all
// ranks wait until the write is complete. One process: save_checkpoint above.
void save_checkpoint(dist::Comm& comm, const std::string& run_dir, int64_t step, model::Transformer& model,
                     torch::optim::Optimizer& optimizer, const nlohmann::json& state,
                     const std::string& tokenizer_dir, int64_t keep_last);
// The newest complete checkpoint, which every rank must see (a shared run folder).
std::optional<std::string> latest_checkpoint(dist::Comm& comm, const std::string& run_dir);

// On resume: drops the metrics.jsonl lines after `step` (they will be logged again) and a
// partial last line.
void truncate_metrics_after(const std::string& run_dir, int64_t step);

// After a step: true when a SIGINT or SIGTERM asked the run to stop on any rank (util/signals.h;
// every rank must call it, so that all stop after the same step).
bool stop_requested(dist::Comm& comm);
// Ends a run stopped by a signal after its checkpoint at `step` was written: throws
// cada::Interrupted naming the checkpoint and how to resume, exit code 128 + the signal.
[[noreturn]] void stop_run(const std::string& run_dir, int64_t step);

// Loads weights and optimizer state into existing objects; returns trainer_state.json.
nlohmann::json load_checkpoint(const std::string& ckpt_dir, model::Transformer& model,
                               torch::optim::Optimizer& optimizer);

// A seeded permutation of n items per epoch (GRPO prompts, LM trainer rows); (epoch, cursor) is
// the exact data position, saved in checkpoints as state().
struct EpochOrder {
  size_t n = 0;
  uint64_t seed = 0;
  bool shuffle = true;
  int64_t epoch = 0, cursor = 0;
  std::vector<size_t> perm;
  void build();  // the permutation of `epoch`
  size_t next(); // next item; moves to the next epoch when one is used up
  nlohmann::json state() const { return {{"epoch", epoch}, {"cursor", cursor}}; }
  void restore(const nlohmann::json& st);
};

// The order in which a trainer visits its n examples: a seeded shuffle, reshuffled at each
// pass, with the cursor and generator state saved in checkpoints so that a resumed run visits
// exactly the examples an uninterrupted one would.
class ShuffledOrder {
 public:
  ShuffledOrder(size_t n, uint64_t seed);
  size_t next();                                  // index of the next example
  nlohmann::json state() const;                   // for trainer_state.json
  void restore(const nlohmann::json& state);      // from trainer_state.json

 private:
  std::mt19937_64 rng_;
  std::vector<size_t> order_;
  size_t cursor_ = 0;
};

}  // namespace cada::train
