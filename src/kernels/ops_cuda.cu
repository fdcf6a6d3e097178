// CUDA kernels for the ops in cada/kernels/ops.h. Each mirrors the CPU reference in ops.cpp.
// No libtorch here (ops_cuda_launch.h): the tensor entry points are in ops_cuda_host.cpp.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cfloat>
#include <cmath>
#include <cstdint>

#include "ops_cuda_launch.h"

namespace cada::kernels::cuda {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(double x) { return static_cast<float>(x); }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

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
    float v = to_float(x[i]) * inv_t;
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
    out[row] = to_float(x[targets[row]]) * inv_t - lse;
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
    const float v = to_float(x[i]);
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
  for (int64_t i = begin; i < end; ++i) s += __expf((to_float(x[i]) - M) * inv_t);
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
      const float e = __expf((to_float(x[i]) - M) * inv_t);
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

const char* launched() {
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

// Calls run(x) with the logits `data` as a typed pointer of `dtype` (the kernel template
// argument is deduced from it), then returns the launch's error.
template <typename F>
const char* with_logits(launch::Dtype dtype, const void* data, F&& run) {
  switch (dtype) {
    case launch::Dtype::kFloat32: run(static_cast<const float*>(data)); break;
    case launch::Dtype::kFloat64: run(static_cast<const double*>(data)); break;
    case launch::Dtype::kFloat16: run(static_cast<const __half*>(data)); break;
    case launch::Dtype::kBFloat16: run(static_cast<const __nv_bfloat16*>(data)); break;
    default: return "unsupported logits dtype";
  }
  return launched();
}

unsigned blocks_for(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

}  // namespace

namespace launch {

const char* select(const float* sorted, const float* csum, const int64_t* idx, const float* temp,
                   const int64_t* top_k, const float* top_p, const float* min_p, const float* uniform,
                   const int64_t* argmax, int64_t* out, int64_t B, int64_t V, void* stream) {
  select_kernel<<<blocks_for(B), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      sorted, csum, idx, temp, top_k, top_p, min_p, uniform, argmax, out, B, V);
  return launched();
}

const char* logsoftmax_gather(Dtype dtype, const void* logits, const int64_t* targets, float* out, int64_t N,
                              int64_t V, float inv_t, void* stream) {
  return with_logits(dtype, logits, [&](auto* x) {
    logsoftmax_gather_kernel<<<static_cast<unsigned>(N), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
        x, targets, out, V, inv_t);
  });
}

const char* group_advantages(const float* rewards, float* out, int64_t groups, int64_t G, bool scale, float eps,
                             void* stream) {
  group_advantages_kernel<<<blocks_for(groups), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      rewards, out, groups, G, scale, eps);
  return launched();
}

const char* sample_plain(Dtype dtype, const void* logits, const float* temp, const float* uniform, int64_t* out,
                         int64_t B, int64_t V, void* stream) {
  return with_logits(dtype, logits, [&](auto* x) {
    sample_plain_kernel<<<static_cast<unsigned>(B), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
        x, temp, uniform, out, V);
  });
}

const char* counter_uniform(const int64_t* keys, const int64_t* counters, float* out, int64_t B, void* stream) {
  counter_uniform_kernel<<<blocks_for(B), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(keys, counters, out, B);
  return launched();
}

}  // namespace launch
}  // namespace cada::kernels::cuda
