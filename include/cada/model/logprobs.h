// Per-token log-probabilities of given tokens under a causal LM.
#pragma once

#include <vector>

#include "cada/model/transformer.h"

namespace cada::model {

// log p(targets | hidden) for every row: hidden (N,C) or (B,T,C), targets (N) or (B,T) int64.
// The LM head and log-softmax run over chunks of rows so that at most `max_chunk_elems`
// float32 logits exist at once (never the whole (B,T,V) tensor). Differentiable.
at::Tensor token_logprobs(TransformerImpl& model, const at::Tensor& hidden, const at::Tensor& targets,
                          int64_t max_chunk_elems = int64_t(1) << 25);

// Log-probs of targets under softmax(head(hidden) / temperature), and optionally the entropy
// of that distribution per row, over row chunks (no full (N,V) float32 tensor). hidden (N,C),
// targets (N). Both differentiable; entropy is computed without grad unless entropy_grad.
struct TokenStats {
  at::Tensor logprobs;  // (N)
  at::Tensor entropy;   // (N) or undefined
};
TokenStats token_stats(TransformerImpl& model, const at::Tensor& hidden, const at::Tensor& targets, double temperature,
                       bool want_entropy, bool entropy_grad = false, int64_t max_chunk_elems = int64_t(1) << 25);

// A batch of (prompt, completion) pairs whose completion tokens are scored, for training
// forwards (differentiable). Two layouts, same numbers up to float rounding:
//  - plain: each row is prompt + completion, right-padded, one forward (causal, no mask);
//  - shared prefix: rows with equal prompts (a GRPO group) share one forward of that prompt;
//    the completions then run as a second forward attending to their prompt's keys and values
//    (a growing KVCache, so gradients flow back into the prompt forward). It saves the prompt's
//    compute (G - 1) times per group, forward and backward.
struct CompletionBatch {
  int64_t B = 0, T = 0;   // rows; longest completion (at least 1)
  at::Tensor mask;        // (B,T) float: 1 at completion tokens
  at::Tensor targets;     // (Ntok) completion tokens, row-major
  at::Tensor scatter;     // (Ntok) flat index b*T + t of each target
  at::Tensor rows;        // (Ntok) rows of the flattened hidden states that predict each target
  bool shared = false;
  at::Tensor ids;         // plain: (B,L) prompt + completion; shared: (B,T) completions
  // shared prefix only
  at::Tensor prompt_ids;  // (U,P) distinct prompts, right-padded
  at::Tensor row_prompt;  // (B) which distinct prompt each row continues
  at::Tensor positions;   // (B,T) positions of the completion tokens (prompt length + t)
  at::Tensor key_mask;    // (B,P+T) real prompt keys and all completion keys
};

// Builds the batch on `device`. Prompts must not be empty. share_prefix is applied only when
// some prompts repeat, and not for sliding-window models whose window the batch could exceed.
CompletionBatch make_completion_batch(const std::vector<const std::vector<int32_t>*>& prompts,
                                      const std::vector<const std::vector<int32_t>*>& completions,
                                      bool share_prefix, const ModelConfig& cfg, const at::Device& device);

// Final hidden states (Ntok, C) of the positions that predict b.targets. Differentiable.
at::Tensor completion_hidden(TransformerImpl& model, const CompletionBatch& b);

struct CompletionLogprobs {
  std::vector<float> logprobs;  // one per completion token
};

// For each (prompt_ids, completion_ids) pair: the log-prob of each completion token given the
// prompt and the completion tokens before it. Batches right-padded sequences sorted by length,
// up to `batch_size` per forward pass. Prompts must not be empty.
std::vector<CompletionLogprobs> completion_logprobs(TransformerImpl& model,
                                                    const std::vector<std::vector<int32_t>>& prompts,
                                                    const std::vector<std::vector<int32_t>>& completions,
                                                    int64_t batch_size = 8);

}  // namespace cada::model
