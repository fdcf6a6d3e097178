// How much memory a device holds at its peak: what a trainer reports after its first step.
//   CUDA: the caching allocator's peak of allocated bytes (tensors alive) and of reserved bytes
//         (what the allocator holds from the driver, the figure nvidia-smi is close to), since
//         the last reset_memory_peak on that device.
//   CPU:  the process's peak resident set (getrusage's ru_maxrss) since the process started;
//         it includes the libraries and the loaded data, and cannot be reset.
#pragma once

#include <c10/core/Device.h>

#include <string>

namespace cada::kernels {

struct MemoryPeak {
  double allocated_bytes = 0;   // CUDA: peak allocated; CPU: peak resident set
  double reserved_bytes = 0;    // CUDA: peak reserved; CPU: the same as allocated_bytes
  double device_total_bytes = 0;  // CUDA: the device's memory; CPU: the machine's physical memory
  std::string source;           // "cuda caching allocator" | "peak RSS"
};

MemoryPeak memory_peak(const c10::Device& device);
// Starts a new peak on a CUDA device (nothing on CPU).
void reset_memory_peak(const c10::Device& device);

}  // namespace cada::kernels
