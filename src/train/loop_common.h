// Helpers shared by the train layer's loops (GRPO, the supervised LM trainer); private to
// src/train.
#pragma once

#include <ATen/Context.h>
#include <c10/core/Device.h>

#include <chrono>
#include <cstdint>

#include "cada/util/clock.h"
#include "cada/util/hash.h"

namespace cada::train::detail {

using util::Clock;
using util::seconds_since;

// Independent seeds from (seed, epoch) and the like.
inline uint64_t mix(uint64_t x) { return util::splitmix64(x); }

// Seeds the default generator from (seed, step) at the start of a step: the random draws of
// training (LoRA dropout masks) then depend only on the step, so a resumed run draws what an
// uninterrupted one would.
inline void seed_step_rng(uint64_t seed, int64_t step) {
  at::manual_seed(mix(seed ^ mix(static_cast<uint64_t>(step) + 0x9e3779b97f4a7c15ULL)));
}

// The MFU denominator: the configured peak, else the dense bf16 peak of an H100 / H200 SXM on
// CUDA (set the config's peak_tflops for other devices), none on CPU.
inline double peak_tflops_for(const c10::Device& dev, double configured) {
  if (configured > 0) return configured;
  return dev.is_cuda() ? 989.0 : 0.0;
}

}  // namespace cada::train::detail
