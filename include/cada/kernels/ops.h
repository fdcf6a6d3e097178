// Hot numeric ops of rollout and RL, one function each. Every op has a CPU reference
// implementation and, when built with CUDA (CADA_WITH_CUDA), a CUDA kernel; the function
// dispatches on the device of its input. Tests compare the two on random inputs (label gpu).
#pragma once

#include <ATen/ATen.h>

namespace cada::kernels {

// Samples one token per row from processed logits, HF generate's order of warpers:
// temperature, then top-k, then top-p, then min-p, then inverse-CDF sampling with the given
// uniform number. Repetition penalty is applied by the caller before this.
//   logits      (B,V) float32, bfloat16 or float16
//   temperature (B) float32; 0 = greedy (argmax; other settings ignored)
//   top_k       (B) int64; 0 = off
//   top_p       (B) float32; 1 = off. Keeps the smallest set of top tokens whose mass reaches
//               top_p (a token is kept when the mass ranked strictly above it is < top_p)
//   min_p       (B) float32; 0 = off. Keeps tokens with prob >= min_p * max prob
//   uniform     (B) float32 in [0,1): the row's random number for this step
// Returns (B) int64 token ids. Deterministic for given inputs. When no row truncates (top_k 0,
// top_p 1, min_p 0) the search runs over the unsorted distribution instead (no vocabulary sort).
at::Tensor sample_tokens(const at::Tensor& logits, const at::Tensor& temperature, const at::Tensor& top_k,
                         const at::Tensor& top_p, const at::Tensor& min_p, const at::Tensor& uniform);

// What a batch of rows asks of the sampler, known on the host beforehand, so that sampling
// needs no host synchronisation (the CUDA-graph decoding step): every row greedy; temperature
// only (no top-k / top-p / min-p anywhere); some row truncating.
enum class SamplingKind { kGreedy, kPlain, kTruncated };

// The same as above with the kind given, so that no value is read back from the device: the
// result equals sample_tokens()'s when `kind` describes the rows (kGreedy: every temperature 0;
// kPlain: top_k 0, top_p 1 and min_p 0 everywhere). kTruncated is always correct.
at::Tensor sample_tokens(const at::Tensor& logits, const at::Tensor& temperature, const at::Tensor& top_k,
                         const at::Tensor& top_p, const at::Tensor& min_p, const at::Tensor& uniform,
                         SamplingKind kind);

// Counter-based random numbers: one uniform in [0, 1) (24 bits) per row from the row's stream
// key and its counter (the index of the token being sampled), the same on every device, so a
// seeded sample does not depend on the batch it ran in, the device, or the order of the rows.
//   keys (B) int64 (stream_key()), counters (B) int64 -> (B) float32
at::Tensor counter_uniform(const at::Tensor& keys, const at::Tensor& counters);
// The stream key of sample `index` of a request seeded with `seed` (splitmix64 mixing).
int64_t stream_key(uint64_t seed, int64_t index);
// The uniform counter_uniform() gives for one (key, counter) pair, computed on the host.
float counter_uniform(int64_t key, int64_t counter);

// log softmax(logits / temperature)[target] per row without materialising the (N,V)
// log-softmax: logits (N,V) any float dtype, targets (N) int64 -> (N) float32.
// Forward only (rollout and old log-probs); training uses the autograd path in the model.
at::Tensor logsoftmax_gather(const at::Tensor& logits, const at::Tensor& targets, double temperature = 1.0);

// GRPO group advantages: rewards (N) float32 with N = groups * group_size, consecutive
// entries forming a group. Returns (N): r - mean(group), divided by (std(group) + eps) when
// scale_by_std (std with Bessel's correction, as torch.std and TRL use).
at::Tensor group_advantages(const at::Tensor& rewards, int64_t group_size, bool scale_by_std, double eps = 1e-4);

// Repetition penalty as HF's RepetitionPenaltyLogitsProcessor, in place on logits (B,V):
// for each token present in `seen` (B,V) bool, logit < 0 ? logit * penalty : logit / penalty,
// with penalty (B) float32 (1 = off).
void apply_repetition_penalty_(at::Tensor& logits, const at::Tensor& seen, const at::Tensor& penalty);

namespace cpu {
at::Tensor sample_tokens(const at::Tensor& logits, const at::Tensor& temperature, const at::Tensor& top_k,
                         const at::Tensor& top_p, const at::Tensor& min_p, const at::Tensor& uniform);
at::Tensor logsoftmax_gather(const at::Tensor& logits, const at::Tensor& targets, double temperature);
at::Tensor group_advantages(const at::Tensor& rewards, int64_t group_size, bool scale_by_std, double eps);
}  // namespace cpu

#ifdef CADA_WITH_CUDA
namespace cuda {
at::Tensor sample_tokens(const at::Tensor& logits, const at::Tensor& temperature, const at::Tensor& top_k,
                         const at::Tensor& top_p, const at::Tensor& min_p, const at::Tensor& uniform);
at::Tensor logsoftmax_gather(const at::Tensor& logits, const at::Tensor& targets, double temperature);
at::Tensor group_advantages(const at::Tensor& rewards, int64_t group_size, bool scale_by_std, double eps);
at::Tensor counter_uniform(const at::Tensor& keys, const at::Tensor& counters);
// Plain temperature sampling (kPlain: no top-k / top-p / min-p) in one kernel, greedy rows too.
at::Tensor sample_plain(const at::Tensor& logits, const at::Tensor& temperature, const at::Tensor& uniform);
}  // namespace cuda
#endif

// True when this build has the CUDA kernels.
bool cuda_kernels_available();

}  // namespace cada::kernels
