// CUDA kernels for the ops in cada/kernels/ops.h. Each mirrors the CPU reference in ops.cpp.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <cfloat>

#include "cada/kernels/ops.h"

namespace cada::kernels::cuda {

namespace {

constexpr int kThreads = 256;

// Lower bound: first index in [0, n) with a[i] >= x (n when none).
__device__ int64_t lower_bound(const float* a, int64_t n, float x) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    int64_t mid = (lo + hi) / 2;
    if (a[mid] < x) lo = mid + 1; else hi = mid;
  }
  return lo;
}
// Upper bound: first index in [0, n) with a[i] > x (n when none).
__device__ int64_t upper_bound(const float* a, int64_t n, float x) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    int64_t mid = (lo + hi) / 2;
    if (a[mid] <= x) lo = mid + 1; else hi = mid;
  }
  return lo;
}
// First index with a[i] < x in a descending array (= count of entries >= x).
__device__ int64_t count_at_least_desc(const float* a, int64_t n, float x) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    int64_t mid = (lo + hi) / 2;
    if (a[mid] >= x) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// One thread per row: the kept prefix m = min(k', m_p, m_min) of the descending sorted
// probabilities, then inverse-CDF selection in the inclusive cumulative sum.
__global__ void select_kernel(const float* __restrict__ sorted, const float* __restrict__ csum,
                              const int64_t* __restrict__ idx, const float* __restrict__ temp,
                              const int64_t* __restrict__ top_k, const float* __restrict__ top_p,
                              const float* __restrict__ min_p, const float* __restrict__ uniform,
                              const int64_t* __restrict__ argmax, int64_t* __restrict__ out, int64_t B, int64_t V) {
  int64_t b = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (b >= B) return;
  if (temp[b] <= 0.f) {
    out[b] = argmax[b];
    return;
  }
  const float* p = sorted + b * V;
  const float* c = csum + b * V;
  int64_t k = top_k[b];
  int64_t kp = k > 0 ? (k < V ? k : V) : V;
  float z1 = c[kp - 1];
  int64_t mp = lower_bound(c, V, top_p[b] * z1) + 1;
  int64_t mmin = count_at_least_desc(p, V, min_p[b] * p[0]);
  int64_t m = kp < mp ? kp : mp;
  m = m < mmin ? m : mmin;
  if (m < 1) m = 1;
  if (m > V) m = V;
  float target = uniform[b] * c[m - 1];
  int64_t choice = upper_bound(c, V, target);
  if (choice > m - 1) choice = m - 1;
  out[b] = idx[b * V + choice];
}

// One block per row: streaming max / sum-exp (online softmax), then logit[target]/T - lse.
template <typename scalar_t>
__global__ void logsoftmax_gather_kernel(const scalar_t* __restrict__ logits, const int64_t* __restrict__ targets,
                                         float* __restrict__ out, int64_t V, float inv_t) {
  const int64_t row = blockIdx.x;
  const scalar_t* x = logits + row * V;
  float m = -FLT_MAX, s = 0.f;
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
    float v = static_cast<float>(x[i]) * inv_t;
    if (v > m) {
      s = s * __expf(m - v) + 1.f;
      m = v;
    } else {
      s += __expf(v - m);
    }
  }
  __shared__ float sm[kThreads], ss[kThreads];
  sm[threadIdx.x] = m;
  ss[threadIdx.x] = s;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) {
      float m1 = sm[threadIdx.x], m2 = sm[threadIdx.x + stride];
      float s1 = ss[threadIdx.x], s2 = ss[threadIdx.x + stride];
      float mm = fmaxf(m1, m2);
      float total = (m1 == -FLT_MAX ? 0.f : s1 * __expf(m1 - mm)) + (m2 == -FLT_MAX ? 0.f : s2 * __expf(m2 - mm));
      sm[threadIdx.x] = mm;
      ss[threadIdx.x] = total;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    float lse = sm[0] + logf(ss[0]);
    out[row] = static_cast<float>(x[targets[row]]) * inv_t - lse;
  }
}

// One thread per group: mean and Bessel-corrected std over group_size consecutive rewards.
__global__ void group_advantages_kernel(const float* __restrict__ r, float* __restrict__ out, int64_t groups,
                                        int64_t G, bool scale, float eps) {
  int64_t g = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (g >= groups) return;
  const float* x = r + g * G;
  float mean = 0.f;
  for (int64_t i = 0; i < G; ++i) mean += x[i];
  mean /= G;
  float var = 0.f;
  for (int64_t i = 0; i < G; ++i) var += (x[i] - mean) * (x[i] - mean);
  float denom = scale ? sqrtf(var / (G - 1)) + eps : 1.f;
  for (int64_t i = 0; i < G; ++i) out[g * G + i] = (x[i] - mean) / denom;
}

// One block per row, plain temperature sampling (no truncation) in one kernel: the row's max
// and first argmax; for a greedy row (temperature <= 0) the argmax; otherwise each thread sums
// exp((x - max) / T) over its contiguous chunk of the vocabulary, a block scan gives the chunk
// offsets, and the thread whose chunk holds u * total walks it to the first token whose running
// sum exceeds that target: inverse-CDF sampling in vocabulary order, as the CPU reference does
// with cumsum and searchsorted (sums in another order, so a uniform within rounding of a bucket
// boundary may pick the neighbour).
template <typename scalar_t>
__global__ void sample_plain_kernel(const scalar_t* __restrict__ logits, const float* __restrict__ temp,
                                    const float* __restrict__ uniform, int64_t* __restrict__ out, int64_t V) {
  const int64_t row = blockIdx.x;
  const scalar_t* x = logits + row * V;
  const int tid = threadIdx.x;
  const int64_t chunk = (V + blockDim.x - 1) / blockDim.x;
  const int64_t begin = tid * chunk < V ? tid * chunk : V;
  const int64_t end = begin + chunk < V ? begin + chunk : V;
  __shared__ float sm[kThreads];
  __shared__ int64_t si[kThreads];
  float m = -INFINITY;
  int64_t am = V;
  for (int64_t i = begin; i < end; ++i) {
    const float v = static_cast<float>(x[i]);
    if (am == V || v > m) {  // ascending i: a tie keeps the first index, as argmax does
      m = v;
      am = i;
    }
  }
  sm[tid] = m;
  si[tid] = am;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (tid < stride) {
      const float m2 = sm[tid + stride];
      const int64_t a2 = si[tid + stride];
      if (m2 > sm[tid] || (m2 == sm[tid] && a2 < si[tid])) {
        sm[tid] = m2;
        si[tid] = a2;
      }
    }
    __syncthreads();
  }
  const float M = sm[0];
  const int64_t argmax = si[0];
  const float T = temp[row];
  if (T <= 0.f) {
    if (tid == 0) out[row] = argmax < V ? argmax : 0;
    return;
  }
  __syncthreads();
  const float inv_t = 1.f / T;
  float s = 0.f;
  for (int64_t i = begin; i < end; ++i) s += __expf((static_cast<float>(x[i]) - M) * inv_t);
  __shared__ float prefix[kThreads + 1];
  sm[tid] = s;
  __syncthreads();
  if (tid == 0) {  // exclusive scan of kThreads chunk sums
    float acc = 0.f;
    for (int t = 0; t < static_cast<int>(blockDim.x); ++t) {
      prefix[t] = acc;
      acc += sm[t];
    }
    prefix[blockDim.x] = acc;
    out[row] = argmax;  // fallback when rounding puts the target past every chunk
  }
  __syncthreads();
  const float target = uniform[row] * prefix[blockDim.x];
  const bool last_nonzero = s > 0.f && prefix[tid] + s >= prefix[blockDim.x];
  if (s > 0.f && target >= prefix[tid] && (target < prefix[tid] + s || last_nonzero)) {
    // The running sum is accumulated as s was (loc), so the search meets the target whenever the
    // chunk test above did; otherwise the chunk's last token with a nonzero probability.
    float loc = 0.f;
    int64_t pick = -1, last = -1;
    for (int64_t i = begin; i < end; ++i) {
      const float e = __expf((static_cast<float>(x[i]) - M) * inv_t);
      loc += e;
      if (e > 0.f) last = i;
      if (prefix[tid] + loc > target) {
        pick = i;
        break;
      }
    }
    out[row] = pick >= 0 ? pick : last;
  }
}

__device__ __forceinline__ uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// One thread per row: the CPU reference's counter_uniform (ops.cpp), bit for bit.
__global__ void counter_uniform_kernel(const int64_t* __restrict__ keys, const int64_t* __restrict__ counters,
                                       float* __restrict__ out, int64_t B) {
  int64_t b = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (b >= B) return;
  uint64_t h = mix64(static_cast<uint64_t>(keys[b]) ^ mix64(static_cast<uint64_t>(counters[b]) + 0x632be59bd9b4e019ULL));
  out[b] = static_cast<float>(h >> 40) * (1.0f / 16777216.0f);
}

void check_kernel(const char* name) {
  cudaError_t err = cudaGetLastError();
  TORCH_CHECK(err == cudaSuccess, name, " failed: ", cudaGetErrorString(err));
}

}  // namespace

at::Tensor sample_tokens(const at::Tensor& logits_in, const at::Tensor& temperature, const at::Tensor& top_k,
                         const at::Tensor& top_p, const at::Tensor& min_p, const at::Tensor& uniform) {
  c10::cuda::CUDAGuard guard(logits_in.device());
  auto dev = logits_in.device();
  auto logits = logits_in.to(at::kFloat);
  const int64_t B = logits.size(0), V = logits.size(1);
  auto temp = temperature.to(dev, at::kFloat).contiguous();
  auto t_safe = at::where(temp <= 0, at::ones_like(temp), temp).unsqueeze(1);
  auto probs = at::softmax(logits / t_safe, -1);
  auto [sorted, idx] = probs.sort(/*stable=*/true, -1, /*descending=*/true);
  sorted = sorted.contiguous();
  idx = idx.contiguous();
  auto csum = sorted.cumsum(-1).contiguous();
  auto argmax = logits.argmax(-1).contiguous();
  auto k = top_k.to(dev, at::kLong).contiguous();
  auto tp = top_p.to(dev, at::kFloat).contiguous();
  auto mp = min_p.to(dev, at::kFloat).contiguous();
  auto u = uniform.to(dev, at::kFloat).contiguous();
  auto out = at::empty({B}, logits.options().dtype(at::kLong));
  if (B == 0) return out;
  const int blocks = static_cast<int>((B + kThreads - 1) / kThreads);
  select_kernel<<<blocks, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      sorted.data_ptr<float>(), csum.data_ptr<float>(), idx.data_ptr<int64_t>(), temp.data_ptr<float>(),
      k.data_ptr<int64_t>(), tp.data_ptr<float>(), mp.data_ptr<float>(), u.data_ptr<float>(),
      argmax.data_ptr<int64_t>(), out.data_ptr<int64_t>(), B, V);
  check_kernel("sample_tokens");
  return out;
}

at::Tensor logsoftmax_gather(const at::Tensor& logits_in, const at::Tensor& targets_in, double temperature) {
  c10::cuda::CUDAGuard guard(logits_in.device());
  auto logits = logits_in.contiguous();
  auto targets = targets_in.to(logits.device(), at::kLong).contiguous();
  const int64_t N = logits.size(0), V = logits.size(1);
  auto out = at::empty({N}, logits.options().dtype(at::kFloat));
  if (N == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, logits.scalar_type(), "logsoftmax_gather", [&] {
    logsoftmax_gather_kernel<scalar_t><<<static_cast<unsigned>(N), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        logits.data_ptr<scalar_t>(), targets.data_ptr<int64_t>(), out.data_ptr<float>(), V,
        static_cast<float>(1.0 / temperature));
  });
  check_kernel("logsoftmax_gather");
  return out;
}

at::Tensor group_advantages(const at::Tensor& rewards, int64_t group_size, bool scale_by_std, double eps) {
  c10::cuda::CUDAGuard guard(rewards.device());
  auto r = rewards.to(at::kFloat).contiguous();
  auto out = at::empty_like(r);
  const int64_t groups = r.size(0) / group_size;
  if (groups == 0) return out;
  const int blocks = static_cast<int>((groups + kThreads - 1) / kThreads);
  group_advantages_kernel<<<blocks, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      r.data_ptr<float>(), out.data_ptr<float>(), groups, group_size, scale_by_std, static_cast<float>(eps));
  check_kernel("group_advantages");
  return out;
}

at::Tensor sample_plain(const at::Tensor& logits_in, const at::Tensor& temperature, const at::Tensor& uniform) {
  c10::cuda::CUDAGuard guard(logits_in.device());
  auto logits = logits_in.contiguous();
  const int64_t B = logits.size(0), V = logits.size(1);
  auto temp = temperature.to(logits.device(), at::kFloat).contiguous();
  auto u = uniform.to(logits.device(), at::kFloat).contiguous();
  auto out = at::empty({B}, logits.options().dtype(at::kLong));
  if (B == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, logits.scalar_type(), "sample_plain", [&] {
    sample_plain_kernel<scalar_t><<<static_cast<unsigned>(B), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        logits.data_ptr<scalar_t>(), temp.data_ptr<float>(), u.data_ptr<float>(), out.data_ptr<int64_t>(), V);
  });
  check_kernel("sample_plain");
  return out;
}

at::Tensor counter_uniform(const at::Tensor& keys_in, const at::Tensor& counters_in) {
  c10::cuda::CUDAGuard guard(keys_in.device());
  auto keys = keys_in.contiguous();
  auto counters = counters_in.to(keys.device()).contiguous();
  const int64_t B = keys.size(0);
  auto out = at::empty({B}, keys.options().dtype(at::kFloat));
  if (B == 0) return out;
  const int blocks = static_cast<int>((B + kThreads - 1) / kThreads);
  counter_uniform_kernel<<<blocks, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      keys.data_ptr<int64_t>(), counters.data_ptr<int64_t>(), out.data_ptr<float>(), B);
  check_kernel("counter_uniform");
  return out;
}

}  // namespace cada::kernels::cuda
