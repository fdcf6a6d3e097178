// Helpers shared by the train layer's loops (GRPO, the supervised LM trainer); private to
// src/train.
#pragma once

#include <c10/core/Device.h>

#include <chrono>
#include <cstdint>

#include "cada/util/hash.h"

namespace cada::train::detail {

using Clock = std::chrono::steady_clock;
inline double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Independent seeds from (seed, epoch) and the like.
inline uint64_t mix(uint64_t x) { return util::splitmix64(x); }

// The MFU denominator: the configured peak, else the dense bf16 peak of an H100 / H200 SXM on
// CUDA (set the config's peak_tflops for other devices), none on CPU.
inline double peak_tflops_for(const c10::Device& dev, double configured) {
  if (configured > 0) return configured;
  return dev.is_cuda() ? 989.0 : 0.0;
}

}  // namespace cada::train::detail
