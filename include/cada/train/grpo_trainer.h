// The GRPO trainer: `cada train --config`.
//
// One trainer step = one generation round: prompts_per_step prompts, num_generations
// completions each (the group) from the rollout engine, rewards, group advantages, then
// num_iterations optimizer updates over the round, each accumulating gradients over micro
// batches. Checkpoints, metrics.jsonl, TensorBoard and console progress as configured.
// Everything between rounds is deterministic given the seed, so `--resume` continues
// exactly (bitwise on CPU).
//
// Data parallel (cada/dist, docs/distributed.md): every rank walks the same prompt order and
// generates its contiguous share of a round; completions and rewards are exchanged so that the
// advantages, micro-batches and loss normalisers are those of one process; each rank runs its
// share of the micro-batches and gradients are summed before clipping.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cada/rollout/sampling.h"
#include "cada/train/trainable.h"
#include "cada/train/checkpoint.h"
#include "cada/train/grpo_loss.h"
#include "cada/train/memory_plan.h"
#include "cada/train/optim.h"
#include "cada/util/config.h"

namespace cada::train {

struct DataOptions {
  std::string train;                 // prompt records (JSONL): prompt | messages | prompt_ids, label, category
  bool shuffle = true;               // a fresh permutation per epoch from the seed
  bool raw = false;                  // plain 'prompt' strings are raw text instead of a user turn
  nlohmann::json where = nlohmann::json::object();  // {field: value | [values]}: keep matching records only
  template <class V> void visit(V& v) {
    v("train", train, "prompt records (JSONL): prompt | messages | prompt_ids, with label and category");
    v("where", where, "keep only records whose fields match, e.g. {\"split\": \"train\"} or {\"kind\": [\"harmful\", \"benign\"]}");
    v("shuffle", shuffle, "new permutation of the prompts each epoch (seeded)");
    v("raw", raw, "treat 'prompt' strings as raw text (BOS added) instead of a user turn");
  }
};

// GRPO's rollout: the shared sampler and engine settings (rollout/sampling.h) with the group size,
// TRL's length limits and the precision the rollouts run in. The temperature also divides the
// logits in the loss, as in TRL.
struct RolloutOptions : rollout::SamplingConfig, rollout::EngineConfig {
  int64_t num_generations = 8;       // G, completions per prompt
  int64_t max_prompt_length = 512;   // longer prompts keep their last tokens (as TRL truncates left)
  int64_t max_completion_length = 256;
  std::string dtype = "auto";        // rollout weights: auto = bfloat16 on CUDA, the policy's float32 on CPU
  RolloutOptions() { batch_rows = 64; }
  template <class V> void visit(V& v) {
    v("num_generations", num_generations, "completions per prompt (the GRPO group, G >= 2)", config::Range::at_least(2));
    rollout::SamplingConfig::visit(v);
    v("max_prompt_length", max_prompt_length, "prompt tokens kept (from the end)", config::Range::at_least(1));
    v("max_completion_length", max_completion_length, "new tokens per completion", config::Range::at_least(1));
    rollout::EngineConfig::visit(v);
    v("dtype", dtype, "precision of the rollout weights: auto (bfloat16 on CUDA, float32 on CPU), float32, "
                      "bfloat16 or float16; a copy refreshed after every update when it differs from the policy's",
      {"auto", "float32", "bfloat16", "float16"});
  }
};

struct AdvantageConfig {
  AdvantageOptions opts;
  bool dynamic_sampling = false;     // drop zero-variance groups and refill with new prompts (DAPO)
  int64_t max_refill_rounds = 3;
  template <class V> void visit(V& v) {
    v("estimator", opts.estimator, "grpo (group mean baseline) | rloo (leave-one-out)", {"grpo", "rloo"});
    v("scale_rewards", opts.scale_rewards, "group | batch | none (Dr. GRPO)", {"group", "batch", "none"});
    v("eps", opts.eps, "added to the std before dividing", config::Range::above(0));
    v("dynamic_sampling", dynamic_sampling, "drop groups with equal rewards and refill with new prompts");
    v("max_refill_rounds", max_refill_rounds, "extra generation rounds to refill dropped groups", config::Range::at_least(0));
  }
};

struct LossConfig {
  PolicyLossOptions opts;
  template <class V> void visit(V& v) {
    v("loss_type", opts.loss_type, "aggregation: grpo | bnpo | dr_grpo | dapo", {"grpo", "bnpo", "dr_grpo", "dapo"});
    v("epsilon_low", opts.epsilon_low, "ratio clipped below at 1 - epsilon_low", config::Range::at_least(0));
    v("epsilon_high", opts.epsilon_high, "ratio clipped above at 1 + epsilon_high (clip-higher when larger)", config::Range::at_least(0));
    v("delta", opts.delta, "TRL two-sided clipping bound on the ratio (null = off)");
    v("dual_clip", opts.dual_clip, "verl dual clip c > 1 for negative advantages (0 = off)", config::Range::at_least(0));
    v("importance_sampling_level", opts.importance_sampling_level, "token | sequence (GSPO)", {"token", "sequence"});
    v("beta", opts.beta, "KL coefficient to the reference model (0 = no reference model is loaded)", config::Range::at_least(0));
    v("kl_estimator", opts.kl_estimator, "k1 | k2 | k3", {"k1", "k2", "k3"});
    v("entropy_coef", opts.entropy_coef, "entropy bonus coefficient (0 = off)", config::Range::at_least(0));
  }
};

struct TrainLoopOptions {
  int64_t steps = 100;               // generation rounds
  int64_t prompts_per_step = 8;
  int64_t micro_batch_size = 8;      // sequences per forward/backward
  int64_t num_iterations = 1;        // optimizer updates per generation round (mu in GRPO)
  bool share_prompt_prefix = true;   // one prompt forward per group in a micro-batch
  uint64_t seed = 0;
  std::string device = "cpu";
  bool bf16_autocast = true;         // on CUDA: bf16 autocast over fp32 master weights
  std::string cpu_bf16 = "off";      // on CPU: off | auto | on (train/precision.h)
  int threads = 0;
  template <class V> void visit(V& v) {
    v("steps", steps, "generation rounds", config::Range::at_least(1));
    v("prompts_per_step", prompts_per_step, "prompts per round (each gets num_generations completions)", config::Range::at_least(1));
    v("micro_batch_size", micro_batch_size, "sequences per forward/backward; gradients accumulate over the round", config::Range::at_least(1));
    v("num_iterations", num_iterations, "optimizer updates per round (old log-probs recomputed when > 1)", config::Range::at_least(1));
    v("share_prompt_prefix", share_prompt_prefix,
      "compute a prompt once per micro-batch for all its completions (same numbers up to float rounding)");
    v("seed", seed, "seed of data order and sampling");
    v("device", device, "cpu, cuda or cuda:N");
    v("bf16_autocast", bf16_autocast, "bf16 autocast on CUDA");
    v("cpu_bf16", cpu_bf16, "bf16 autocast on CPU: off, auto (when the CPU has AMX / AVX512-BF16) or on");
    v("threads", threads, "intra-op CPU threads (0 = all available)", config::Range::at_least(0));
  }
};

struct LogOptions {
  int64_t every = 1;
  bool tensorboard = true;
  double peak_tflops = 0;            // for MFU; 0 = auto on known GPUs, omitted on CPU
  template <class V> void visit(V& v) {
    v("every", every, "steps between console lines", config::Range::at_least(1));
    v("tensorboard", tensorboard, "write TensorBoard event files in the run directory");
    v("peak_tflops", peak_tflops, "device peak for MFU (0 = auto for known GPUs, none on CPU)", config::Range::at_least(0));
  }
};

struct GrpoConfig {
  std::string model;                 // policy initialisation (HF folder)
  std::string ref_model;             // reference for the KL ("" = model)
  std::string output_dir = "runs/grpo";
  std::string chat_template;         // override the detected template
  nlohmann::json rewards;            // reward registry config (object) or the path of one
  std::string reward;                // name of the reward to optimise ("" = the last one configured)
  nlohmann::json spec;               // safety specification in the rollout prompt (null = none); read by the CLI
  DataOptions data;
  RolloutOptions rollout;
  AdvantageConfig advantage;
  LossConfig loss;
  OptimOptions optim;
  TrainLoopOptions train;
  CheckpointOptions checkpoint;
  LogOptions log;
  TrainableOptions trainable;        // LoRA, frozen base dtype, activation checkpointing
  template <class V> void visit(V& v) {
    v("model", model, "policy initialisation: a Hugging Face model folder");
    v("ref_model", ref_model, "reference model for the KL (empty = model)");
    v("output_dir", output_dir, "run directory: config, metrics, TensorBoard, checkpoints");
    v("chat_template", chat_template, "override the chat template detected in the model folder");
    v("rewards", rewards, "reward registry config (an object, or the path of a JSON file); see docs/rewards.md");
    v("reward", reward, "name of the reward to optimise (empty = the last configured); all are logged");
    v("spec", spec,
      "CADA setting: a safety specification in the rollout prompt, {\"setting\": \"none\" | \"explicit\" | \"cases\", "
      "\"file\": \"data/specs/cases.json\", \"prompt\": {...}, \"cases\": {...}} (docs/safety.md); null = the prompt as recorded");
    v.section("data", data, "prompt data");
    v.section("rollout", rollout, "generation of the groups");
    v.section("advantage", advantage, "advantage estimation");
    v.section("loss", loss, "policy loss");
    v.section("optim", optim, "AdamW and learning-rate schedule");
    v.section("train", train, "the loop");
    v.section("checkpoint", checkpoint, "checkpoints");
    v.section("log", log, "logging");
    trainable.visit(v);
  }
};

// One prompt's record and one completion, as the reward functions see it.
struct RewardInput {
  const nlohmann::json* record;      // the prompt record (label, category, ...)
  std::string prompt_text;           // the rendered prompt
  std::string completion;            // decoded completion text
  int64_t completion_tokens = 0;
};
struct RewardOutput {
  std::vector<double> total;                               // one per input; NaN = no reward applies
  std::map<std::string, std::vector<double>> components;   // logged as reward/<name>
};
using RewardFn = std::function<RewardOutput(const std::vector<RewardInput>&)>;

struct GrpoSummary {
  int64_t steps_done = 0;
  std::vector<double> mean_reward;   // per step
  std::string last_checkpoint;
};

// Runs (or resumes) training. `config_json` is the resolved config saved in the run dir.
// Rewrites a prompt record into the record whose prompt the policy sees (e.g. with a safety
// specification in a system turn); `where` names the record in errors. Rewards still receive
// the original record.
using PromptFn = std::function<nlohmann::json(const nlohmann::json& record, const std::string& where)>;

GrpoSummary run_grpo(const GrpoConfig& cfg, const RewardFn& reward, bool resume, const PromptFn& prompt_fn = {});

// The run's memory plan from the model's config.json alone (no weights loaded): what run_grpo
// prints when it starts and `cada train --memory-plan` prints.
MemoryPlan grpo_memory_plan(const GrpoConfig& cfg);

}  // namespace cada::train
