// CPU references of the kernels and the dispatch by device.
#include "cada/kernels/ops.h"

#include <cmath>

#include "cada/util/error.h"
#include "cada/util/hash.h"

namespace cada::kernels {

namespace {

void check_rows(const at::Tensor& t, int64_t B, const char* name) {
  CADA_CHECK(t.dim() == 1 && t.size(0) == B, name, " must be (", B, "), got ", t.sizes());
}

void check_sampling_args(const at::Tensor& logits, const at::Tensor& temperature, const at::Tensor& top_k,
                         const at::Tensor& top_p, const at::Tensor& min_p, const at::Tensor& uniform) {
  CADA_CHECK(logits.dim() == 2 && logits.size(1) > 0, "logits must be (B, V), got ", logits.sizes());
  const int64_t B = logits.size(0);
  check_rows(temperature, B, "temperature");
  check_rows(top_k, B, "top_k");
  check_rows(top_p, B, "top_p");
  check_rows(min_p, B, "min_p");
  check_rows(uniform, B, "uniform");
}

}  // namespace

namespace cpu {

// Sorted-prefix formulation shared with the CUDA kernel: after sorting the tempered
// probabilities in descending order, top-k, top-p and min-p each keep a prefix, so the kept
// set is the prefix of length m = min(k', m_p, m_min) and sampling is a search in the
// cumulative sum.
at::Tensor sample_tokens(const at::Tensor& logits_in, const at::Tensor& temperature, const at::Tensor& top_k,
                         const at::Tensor& top_p, const at::Tensor& min_p, const at::Tensor& uniform) {
  auto logits = logits_in.to(at::kFloat);
  const int64_t V = logits.size(1);
  auto temp = temperature.to(at::kFloat);
  auto greedy = temp <= 0;                                                   // (B)
  auto t_safe = at::where(greedy, at::ones_like(temp), temp).unsqueeze(1);  // (B,1)
  auto probs = at::softmax(logits / t_safe, -1);                             // (B,V)
  auto [sorted, idx] = probs.sort(/*stable=*/true, /*dim=*/-1, /*descending=*/true);
  auto csum = sorted.cumsum(-1);                                             // (B,V) inclusive

  auto k = top_k.to(at::kLong);
  auto kp = at::where(k > 0, k.clamp_max(V), at::full_like(k, V));          // (B) k'
  auto z1 = csum.gather(1, (kp - 1).unsqueeze(1));                           // (B,1) mass of the top-k'
  // m_p = 1 + #{j : c_j < top_p * Z1} (the first token whose exclusive mass reaches top_p is cut)
  auto mp = at::searchsorted(csum.contiguous(), (top_p.to(at::kFloat).unsqueeze(1) * z1).contiguous(),
                             /*out_int32=*/false, /*right=*/false).squeeze(1) + 1;
  // m_min = #{i : p_i >= min_p * p_0}
  auto thr = (min_p.to(at::kFloat) * sorted.select(1, 0)).unsqueeze(1);
  auto mmin = (sorted >= thr).sum(-1);
  auto m = at::minimum(at::minimum(kp, mp), mmin).clamp(1, V);              // (B)
  auto s = csum.gather(1, (m - 1).unsqueeze(1));                             // (B,1)
  auto target = uniform.to(at::kFloat).unsqueeze(1) * s;
  auto choice = at::searchsorted(csum.contiguous(), target.contiguous(), false, /*right=*/true).squeeze(1);
  choice = at::minimum(choice, m - 1);
  auto sampled = idx.gather(1, choice.unsqueeze(1)).squeeze(1);
  auto argmax = logits.argmax(-1);
  return at::where(greedy, argmax, sampled);
}

at::Tensor logsoftmax_gather(const at::Tensor& logits, const at::Tensor& targets, double temperature) {
  const int64_t N = logits.size(0), V = logits.size(1);
  auto out = at::empty({N}, logits.options().dtype(at::kFloat));
  const int64_t rows = std::max<int64_t>(1, (int64_t(1) << 24) / std::max<int64_t>(V, 1));
  for (int64_t s = 0; s < N; s += rows) {
    const int64_t n = std::min(rows, N - s);
    auto x = logits.narrow(0, s, n).to(at::kFloat) / temperature;
    auto lse = at::logsumexp(x, -1);
    out.narrow(0, s, n).copy_(x.gather(1, targets.narrow(0, s, n).to(at::kLong).unsqueeze(1)).squeeze(1) - lse);
  }
  return out;
}

at::Tensor group_advantages(const at::Tensor& rewards, int64_t group_size, bool scale_by_std, double eps) {
  auto r = rewards.to(at::kFloat).view({-1, group_size});
  auto adv = r - r.mean(1, /*keepdim=*/true);
  if (scale_by_std) adv = adv / (r.std(1, /*unbiased=*/true, /*keepdim=*/true) + eps);
  return adv.reshape({-1});
}

}  // namespace cpu

at::Tensor sample_tokens(const at::Tensor& logits, const at::Tensor& temperature, const at::Tensor& top_k,
                         const at::Tensor& top_p, const at::Tensor& min_p, const at::Tensor& uniform) {
  check_sampling_args(logits, temperature, top_k, top_p, min_p, uniform);
  SamplingKind kind = SamplingKind::kTruncated;
  if (!(temperature > 0).any().item<bool>())
    kind = SamplingKind::kGreedy;
  else if (!(top_k > 0).any().item<bool>() && !(top_p < 1).any().item<bool>() && !(min_p > 0).any().item<bool>())
    kind = SamplingKind::kPlain;
  return sample_tokens(logits, temperature, top_k, top_p, min_p, uniform, kind);
}

at::Tensor sample_tokens(const at::Tensor& logits, const at::Tensor& temperature, const at::Tensor& top_k,
                         const at::Tensor& top_p, const at::Tensor& min_p, const at::Tensor& uniform,
                         SamplingKind kind) {
  // All rows greedy: no softmax or sort needed.
  if (kind == SamplingKind::kGreedy) return logits.argmax(-1);
  // No truncation anywhere (plain temperature sampling, the GRPO default): inverse-CDF over the
  // unsorted distribution gives the same distribution without sorting the vocabulary (the CPU
  // reference in ATen ops; on CUDA one kernel).
  if (kind == SamplingKind::kPlain) {
#ifdef CADA_WITH_CUDA
    if (logits.is_cuda()) return cuda::sample_plain(logits, temperature, uniform);
#endif
    auto x = logits.to(at::kFloat);
    auto temp = temperature.to(x.device(), at::kFloat);
    auto greedy = temp <= 0;
    auto t_safe = at::where(greedy, at::ones_like(temp), temp).unsqueeze(1);
    auto csum = at::softmax(x / t_safe, -1).cumsum(-1).contiguous();
    auto target = (uniform.to(x.device(), at::kFloat).unsqueeze(1) * csum.narrow(1, x.size(1) - 1, 1)).contiguous();
    auto choice = at::searchsorted(csum, target, false, /*right=*/true).squeeze(1).clamp_max(x.size(1) - 1);
    return at::where(greedy, x.argmax(-1), choice);
  }
#ifdef CADA_WITH_CUDA
  if (logits.is_cuda()) return cuda::sample_tokens(logits, temperature, top_k, top_p, min_p, uniform);
#endif
  CADA_CHECK(logits.is_cpu(), "sample_tokens: no kernel for device ", logits.device());
  return cpu::sample_tokens(logits, temperature, top_k, top_p, min_p, uniform);
}

using util::splitmix64;

int64_t stream_key(uint64_t seed, int64_t index) {
  return static_cast<int64_t>(splitmix64(seed ^ splitmix64(static_cast<uint64_t>(index) + 1)));
}

// The CUDA kernel (ops_cuda.cu) computes exactly this.
float counter_uniform(int64_t key, int64_t counter) {
  const uint64_t h = splitmix64(static_cast<uint64_t>(key) ^ splitmix64(static_cast<uint64_t>(counter) + 0x632be59bd9b4e019ULL));
  return static_cast<float>(h >> 40) * (1.0f / 16777216.0f);
}

at::Tensor counter_uniform(const at::Tensor& keys, const at::Tensor& counters) {
  CADA_CHECK(keys.dim() == 1 && counters.dim() == 1 && keys.size(0) == counters.size(0),
             "keys and counters must be (B) and (B), got ", keys.sizes(), " and ", counters.sizes());
  CADA_CHECK(keys.scalar_type() == at::kLong && counters.scalar_type() == at::kLong, "keys and counters must be int64");
#ifdef CADA_WITH_CUDA
  if (keys.is_cuda()) return cuda::counter_uniform(keys, counters);
#endif
  CADA_CHECK(keys.is_cpu(), "counter_uniform: no kernel for device ", keys.device());
  auto k = keys.contiguous(), c = counters.contiguous();
  auto out = at::empty({k.size(0)}, at::kFloat);
  const int64_t* kp = k.data_ptr<int64_t>();
  const int64_t* cp = c.data_ptr<int64_t>();
  float* op = out.data_ptr<float>();
  for (int64_t i = 0; i < k.size(0); ++i) op[i] = counter_uniform(kp[i], cp[i]);
  return out;
}

at::Tensor logsoftmax_gather(const at::Tensor& logits, const at::Tensor& targets, double temperature) {
  CADA_CHECK(logits.dim() == 2, "logits must be (N, V), got ", logits.sizes());
  check_rows(targets, logits.size(0), "targets");
  CADA_CHECK(temperature > 0, "temperature must be positive, got ", temperature);
#ifdef CADA_WITH_CUDA
  if (logits.is_cuda()) return cuda::logsoftmax_gather(logits, targets, temperature);
#endif
  CADA_CHECK(logits.is_cpu(), "logsoftmax_gather: no kernel for device ", logits.device());
  return cpu::logsoftmax_gather(logits, targets, temperature);
}

at::Tensor group_advantages(const at::Tensor& rewards, int64_t group_size, bool scale_by_std, double eps) {
  CADA_CHECK(rewards.dim() == 1, "rewards must be (N), got ", rewards.sizes());
  CADA_CHECK(group_size >= 2, "group size must be at least 2 (a group needs a mean and a spread), got ", group_size);
  CADA_CHECK(rewards.size(0) % group_size == 0, rewards.size(0), " rewards do not split into groups of ", group_size);
#ifdef CADA_WITH_CUDA
  if (rewards.is_cuda()) return cuda::group_advantages(rewards, group_size, scale_by_std, eps);
#endif
  CADA_CHECK(rewards.is_cpu(), "group_advantages: no kernel for device ", rewards.device());
  return cpu::group_advantages(rewards, group_size, scale_by_std, eps);
}

void apply_repetition_penalty_(at::Tensor& logits, const at::Tensor& seen, const at::Tensor& penalty) {
  CADA_CHECK(logits.sizes() == seen.sizes(), "seen must match logits ", logits.sizes(), ", got ", seen.sizes());
  check_rows(penalty, logits.size(0), "penalty");
  auto p = penalty.to(logits.scalar_type()).to(logits.device()).unsqueeze(1);
  auto penalised = at::where(logits < 0, logits * p, logits / p);
  logits.copy_(at::where(seen, penalised, logits));
}

bool cuda_kernels_available() {
#ifdef CADA_WITH_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace cada::kernels
