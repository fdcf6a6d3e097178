// The sampling and engine settings that every command which generates embeds in its config
// (generate-chains' `sampling` / `runtime`, eval's `sampling`, GRPO's `rollout`): one struct each,
// one default, one help text and one check, so that a key means the same everywhere.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "cada/rollout/generator.h"
#include "cada/util/config.h"

namespace cada::rollout {

// How each token is drawn (HF generate's names and semantics).
struct SamplingConfig {
  float temperature = 1.0f;          // 0 = greedy
  float top_p = 1.0f;                // 1 = off
  int64_t top_k = 0;                 // 0 = off
  float min_p = 0.0f;                // 0 = off
  float repetition_penalty = 1.0f;   // 1 = off
  std::vector<std::string> stop;     // the text is cut before the first one
  template <class V> void visit(V& v) {
    v("temperature", temperature, "sampling temperature (0 = greedy)", config::Range::at_least(0));
    v("top_p", top_p, "nucleus sampling: keep the smallest set of tokens with this mass (1 = off)", config::Range::open_closed(0, 1));
    v("top_k", top_k, "keep the k most likely tokens (0 = off)", config::Range::at_least(0));
    v("min_p", min_p, "drop tokens below min_p x the top probability (0 = off)", config::Range::closed(0, 1));
    v("repetition_penalty", repetition_penalty, "HF repetition penalty over prompt and completion (1 = off)", config::Range::above(0));
    v("stop", stop, "stop strings: generation ends at one and the text is cut before it");
  }
  // Each problem as one sentence naming its key, e.g. "'rollout.top_p' must be in (0, 1], got 0".
  std::vector<std::string> problems(const std::string& section) const;
  // A request's parameters for completions of up to max_new_tokens.
  SamplingParams params(int64_t max_new_tokens) const;
  // The settings as JSON (run fingerprints: what changes the samples).
  nlohmann::json to_json() const;
};

// How many sequences decode together and on which scheduler (rollout/generator.h).
struct EngineConfig {
  int64_t batch_rows = 32;           // sequences decoded together
  std::string engine = "auto";       // auto | static | continuous
  bool cuda_graphs = true;
  template <class V> void visit(V& v) {
    v("batch_rows", batch_rows, "sequences decoded together by the rollout engine", config::Range::at_least(1));
    v("engine", engine, "generation scheduler: auto (continuous batching on CUDA, static batches on CPU), static "
                        "or continuous", {"auto", "static", "continuous"});
    v("cuda_graphs", cuda_graphs, "continuous batching on CUDA: each decoding step as one CUDA graph launch");
  }
  std::vector<std::string> problems(const std::string& section) const;
  // limit_hint names the keys that bound the KV cache (GeneratorOptions::limit_hint).
  GeneratorOptions options(const std::string& limit_hint = "") const;
};

}  // namespace cada::rollout
