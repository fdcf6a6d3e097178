// The arithmetic a trainer runs in. Master weights, gradients and optimizer state are always
// float32; under bf16 autocast the matrix products of the forward and backward run in bf16.
//   CUDA: `bf16_autocast` (default on).
//   CPU:  `cpu_bf16`: "off" (default: float32), "auto" (bf16 when the CPU has native bf16
//         instructions, AMX-BF16 or AVX512-BF16 (kernels/cpu_features.h), else float32 with a
//         one-line notice), "on" (bf16, or an error on a CPU without them).
#pragma once

#include <ATen/autocast_mode.h>
#include <c10/core/Device.h>

#include <string>

namespace cada::train {

struct Precision {
  bool autocast = false;                   // bf16 autocast on `device`
  c10::DeviceType device = c10::kCPU;
  std::string describe;                    // "float32", "bf16 autocast (avx512-bf16)", ...
};

// Throws cada::Error naming 'cpu_bf16' for a value other than off / auto / on, and for "on" on
// a CPU without native bf16.
Precision resolve_precision(const c10::Device& dev, bool bf16_autocast, const std::string& cpu_bf16);

// bf16 autocast on the precision's device for the scope (nothing when p.autocast is false).
class AutocastScope {
 public:
  explicit AutocastScope(const Precision& p);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  const Precision& p_;
  bool was_ = false;
};

}  // namespace cada::train
