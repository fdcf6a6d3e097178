// Batched generation with a preallocated KV cache: the rollout engine of GRPO, generate-chains,
// eval and `cada generate`. Two schedulers behind one interface, giving the same tokens for the
// same seeds (each sample draws counter-based random numbers from its own stream, keyed by the
// request's seed and the sample's index, whatever batch it runs in):
//
//  - continuous batching (rollout/continuous.h), the default on CUDA: a fixed set of decoding
//    slots; a finished sample frees its slot for the next waiting one; each decoding step is one
//    CUDA graph launch with sampling on the device.
//  - static batches, the default on CPU, described here, whose decoding steps take the fused
//    CPU path (kernels::decode_step).
//
// Static batches: prompts of different lengths are LEFT-padded into one prefill; each row's
// positions count its real tokens only and a key mask hides the padding, so every row
// computes exactly what it would alone. The n samples of a prompt (a GRPO group) share its
// prefill: the prompt's cache rows are copied n times after prefill. Rows that finish (EOS,
// stop string, max_new_tokens) are dropped from the batch once a quarter of the rows have
// finished, so finished sequences stop costing compute.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cada/model/transformer.h"
#include "cada/text/tokenizer.h"

namespace cada::rollout {

// Sampling parameters, named as in HF generate / TRL.
struct SamplingParams {
  float temperature = 1.0f;          // 0 = greedy
  int64_t top_k = 0;                 // 0 = off
  float top_p = 1.0f;                // 1 = off
  float min_p = 0.0f;                // 0 = off
  float repetition_penalty = 1.0f;   // 1 = off; HF semantics over prompt + generated tokens
  int64_t max_new_tokens = 128;
  std::vector<std::string> stop;     // stop strings; the text is cut before the match
  std::vector<int32_t> stop_token_ids;  // in addition to the tokenizer's stop ids
  bool ignore_eos = false;           // generate exactly max_new_tokens (benchmarks)
  int64_t top_logprobs = 0;          // > 0: also return the this many most likely tokens at each step
                                     // (requests that ask run on static batches, whatever the engine)
};

struct Request {
  std::vector<int32_t> prompt_ids;
  SamplingParams params;
  uint64_t seed = 0;                 // sample j of this request uses stream (seed, j)
  int64_t n = 1;                     // samples (the GRPO group size)
};

struct Completion {
  std::vector<int32_t> ids;          // generated tokens, the stop token included when it ended the text
  std::vector<float> logprobs;       // log softmax(logits / T)[token] of the sampling policy (T = 1 for greedy)
  std::string text;                  // decoded, special tokens skipped, cut at a stop string
  std::string finish_reason;         // "stop" (EOS, stop token or stop string) or "length"
  // With params.top_logprobs = k > 0: per generated token, the k most likely (token, log-prob)
  // of the same distribution as `logprobs`, most likely first.
  std::vector<std::vector<std::pair<int32_t, float>>> top_logprobs;
};

// Called after every token appended to sample `sample` of request `request` (on the generating
// thread): `c` holds the ids and log-probs so far, and finish_reason once the sample ended; its
// text is only set when generate() returns (streaming decodes c.ids itself).
using TokenSink = std::function<void(size_t request, int64_t sample, const Completion& c)>;

// What generate() reports while it runs.
struct GenerateHooks {
  std::function<void(int64_t)> on_tokens;  // k new tokens (progress bars)
  TokenSink on_token;                      // each token of each sample (streaming)
};

// Which scheduler generates: continuous batching on CUDA and static batches on CPU (auto), or
// either one everywhere.
enum class Engine { kAuto, kStatic, kContinuous };
// "auto", "static" or "continuous"; throws cada::Error naming the valid values otherwise.
Engine parse_engine(const std::string& name);

struct GeneratorOptions {
  int64_t max_batch_rows = 32;       // sequences decoded together (samples of all prompts)
  float compact_fraction = 0.25f;    // static batches: drop finished rows once this share of the batch finished
  Engine engine = Engine::kAuto;
  bool cuda_graphs = true;           // continuous batching on CUDA: each decoding step one graph launch
  int64_t reserve_positions = 0;     // continuous batching: cache positions per slot at least this (a
                                     // short warm-up call then leaves the slots and graphs for the real one)
  // The options that bound a call's KV cache, named when it would not fit in memory (each
  // frontend names its own keys or flags).
  std::string limit_hint = "max_new_tokens or the sequences decoded together";
};

struct GenerationStats {
  int64_t prompt_tokens = 0, generated_tokens = 0;
  double prefill_s = 0, decode_s = 0;
  int64_t steps = 0;                 // continuous batching: decoding steps launched
  int64_t graphs_captured = 0, graph_replays = 0;
};

class ContinuousBatcher;

class Generator {
 public:
  // tok may be null when no stop strings and no text are needed (ids only).
  Generator(model::TransformerImpl& model, const text::Tokenizer* tok, GeneratorOptions opts = {});
  ~Generator();

  // One vector of n completions per request, in request order. on_tokens(k) is called as
  // tokens are produced (for progress bars).
  std::vector<std::vector<Completion>> generate(const std::vector<Request>& requests,
                                                const std::function<void(int64_t)>& on_tokens = {});
  std::vector<std::vector<Completion>> generate(const std::vector<Request>& requests, const GenerateHooks& hooks);
  const GenerationStats& stats() const { return stats_; }
  // The scheduler generate() uses for this model ("static" or "continuous").
  std::string engine_name() const;

 private:
  void validate(const std::vector<Request>& requests) const;
  void check_memory(const std::vector<Request>& requests) const;
  void run_batch(const std::vector<Request>& requests, const std::vector<std::pair<size_t, int64_t>>& rows,
                 std::vector<std::vector<Completion>>& out, const GenerateHooks& hooks);
  model::TransformerImpl& model_;
  const text::Tokenizer* tok_;
  GeneratorOptions opts_;
  GenerationStats stats_;
  std::unique_ptr<ContinuousBatcher> continuous_;  // created on first use, kept with its CUDA graphs
};

}  // namespace cada::rollout
