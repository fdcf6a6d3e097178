// Reward-model training: `cada train-rm`.
//
// A sequence classifier on the policy's backbone (HF *ForSequenceClassification layout: the
// backbone of a causal LM folder plus a fresh `score` head with num_labels outputs), trained
//   - pairwise (Bradley-Terry, TRL's RewardTrainer loss): -log sigmoid(r(chosen) - r(rejected)
//     - margin), plus center_rewards_coefficient * (r(chosen) + r(rejected))^2 / ... when set;
//   - pointwise: cross-entropy over num_labels >= 2 classes, or BCE on one logit.
// (prompt, response) pairs go through the chat template as a user turn and an assistant turn;
// the score is read at the last token (right padding, so padding never matters).
#pragma once

#include <string>

#include "cada/train/checkpoint.h"
#include "cada/train/memory_plan.h"
#include "cada/train/trainable.h"
#include "cada/train/optim.h"
#include "cada/util/config.h"

namespace cada::train {

struct RewardTrainConfig {
  std::string model;                  // causal LM folder whose backbone and tokenizer are used
  std::string output_dir = "runs/rm";
  std::string chat_template;          // override the detected template
  std::string data;                   // JSONL: prompt, chosen, rejected [, margin] | prompt, response, label
  std::string mode = "pairwise";      // pairwise | pointwise
  std::string eval_split_field = "split";  // records whose field equals eval_split_value are held out
  std::string eval_split_value = "test";
  int64_t num_labels = 1;
  double center_rewards_coefficient = 0.0;  // TRL: pushes mean rewards towards 0
  int64_t max_length = 256;           // tokens per (prompt, response), longer ones cut from the left
  int64_t steps = 200;
  int64_t batch_size = 16;            // pairs (or examples) per optimizer step
  int64_t eval_every = 50;
  uint64_t seed = 0;
  std::string device = "cpu";
  int threads = 0;
  bool bf16_autocast = true;          // on CUDA: bf16 autocast over fp32 master weights
  std::string cpu_bf16 = "off";       // on CPU: off | auto | on (train/precision.h)
  OptimOptions optim;
  CheckpointOptions checkpoint;
  bool tensorboard = true;
  TrainableOptions trainable;         // LoRA (the score head trains in full), checkpointing

  template <class V> void visit(V& v) {
    v("model", model, "causal LM folder: backbone, tokenizer and chat template of the reward model");
    v("output_dir", output_dir, "run directory; the trained model goes to output_dir/final");
    v("chat_template", chat_template, "override the detected chat template");
    v("data", data, "JSONL: {prompt, chosen, rejected[, margin]} (pairwise) or {prompt, response, label} (pointwise)");
    v("mode", mode, "pairwise (Bradley-Terry) | pointwise (classification)", {"pairwise", "pointwise"});
    v("eval_split_field", eval_split_field, "record field that marks held-out records");
    v("eval_split_value", eval_split_value, "value of that field for held-out records");
    v("num_labels", num_labels, "outputs of the score head (pairwise uses label 0)", config::Range::at_least(1));
    v("center_rewards_coefficient", center_rewards_coefficient, "TRL's penalty on the squared sum of rewards (0 = off)", config::Range::at_least(0));
    v("max_length", max_length, "tokens kept per sequence (from the end)", config::Range::at_least(2));
    v("steps", steps, "optimizer steps", config::Range::at_least(1));
    v("batch_size", batch_size, "pairs or examples per step", config::Range::at_least(1));
    v("eval_every", eval_every, "steps between held-out evaluations", config::Range::at_least(0));
    v("seed", seed, "data order and head initialisation");
    v("device", device, "cpu, cuda or cuda:N");
    v("threads", threads, "intra-op CPU threads (0 = all available)", config::Range::at_least(0));
    v("bf16_autocast", bf16_autocast, "bf16 autocast on CUDA");
    v("cpu_bf16", cpu_bf16, "bf16 autocast on CPU: off, auto (when the CPU has AMX / AVX512-BF16) or on");
    v.section("optim", optim, "AdamW and learning-rate schedule");
    v.section("checkpoint", checkpoint, "checkpoints");
    v("tensorboard", tensorboard, "write TensorBoard event files");
    trainable.visit(v);
  }
};

struct RewardTrainSummary {
  double eval_accuracy = 0;    // pairwise: share of held-out pairs with r(chosen) > r(rejected)
  int64_t eval_examples = 0;
  std::string final_dir;
};

// Trains (or, with resume, continues from the newest complete checkpoint in output_dir:
// weights, optimizer, data order and position, so the result equals an uninterrupted run).
RewardTrainSummary run_reward_training(const RewardTrainConfig& cfg, bool resume = false);

// The run's memory plan from the model's config.json alone (no weights loaded).
MemoryPlan reward_memory_plan(const RewardTrainConfig& cfg);

}  // namespace cada::train
