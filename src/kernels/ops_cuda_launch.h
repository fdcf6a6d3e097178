// The CUDA kernels of ops_cuda.cu behind plain pointers: no libtorch types, so nvcc compiles them
// without the ATen headers (which cost it most of a minute per GPU architecture). ops_cuda_host.cpp
// turns tensors into these arguments (contiguous, on the kernel's device) and checks the result.
// Every launcher enqueues on `stream` (a cudaStream_t) and returns nullptr, or the CUDA error
// message of the launch.
#pragma once

#include <cstdint>

namespace cada::kernels::cuda::launch {

// The element type of a logits buffer.
enum class Dtype { kFloat32, kFloat64, kFloat16, kBFloat16 };

// sorted, csum, idx: [B, V] (probabilities sorted descending, their inclusive cumulative sum,
// the vocabulary ids); temp, top_p, min_p, uniform: [B] float; top_k, argmax: [B] int64 -> out [B].
const char* select(const float* sorted, const float* csum, const int64_t* idx, const float* temp,
                   const int64_t* top_k, const float* top_p, const float* min_p, const float* uniform,
                   const int64_t* argmax, int64_t* out, int64_t B, int64_t V, void* stream);
// logits [N, V] of `dtype`, targets [N] -> out [N] float: log_softmax(logits * inv_t)[target].
const char* logsoftmax_gather(Dtype dtype, const void* logits, const int64_t* targets, float* out, int64_t N,
                              int64_t V, float inv_t, void* stream);
// rewards [groups * G] -> out: (r - group mean) / (Bessel std + eps), or r - mean without scale.
const char* group_advantages(const float* rewards, float* out, int64_t groups, int64_t G, bool scale, float eps,
                             void* stream);
// logits [B, V] of `dtype`, temp [B], uniform [B] -> out [B] int64: plain temperature sampling.
const char* sample_plain(Dtype dtype, const void* logits, const float* temp, const float* uniform, int64_t* out,
                         int64_t B, int64_t V, void* stream);
// keys, counters [B] int64 -> out [B] float in [0, 1).
const char* counter_uniform(const int64_t* keys, const int64_t* counters, float* out, int64_t B, void* stream);

}  // namespace cada::kernels::cuda::launch
