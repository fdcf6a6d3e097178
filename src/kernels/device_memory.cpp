#include "cada/kernels/device_memory.h"

#include <sys/resource.h>
#include <unistd.h>

#ifdef CADA_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <cuda_runtime_api.h>
#endif

#include "cada/util/error.h"

namespace cada::kernels {

namespace {

MemoryPeak cpu_peak() {
  MemoryPeak p;
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  p.allocated_bytes = p.reserved_bytes = static_cast<double>(u.ru_maxrss) * 1024.0;  // Linux: KiB
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page > 0) p.device_total_bytes = static_cast<double>(pages) * static_cast<double>(page);
  p.source = "peak RSS";
  return p;
}

}  // namespace

MemoryPeak memory_peak(const c10::Device& device) {
  if (!device.is_cuda()) return cpu_peak();
#ifdef CADA_WITH_CUDA
  const auto index = device.has_index() ? device.index() : c10::DeviceIndex(0);
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
  const size_t all = 0;  // StatType::AGGREGATE, whose namespace moved between libtorch releases
  MemoryPeak p;
  p.allocated_bytes = static_cast<double>(stats.allocated_bytes[all].peak);
  p.reserved_bytes = static_cast<double>(stats.reserved_bytes[all].peak);
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, index) == cudaSuccess) p.device_total_bytes = static_cast<double>(prop.totalGlobalMem);
  p.source = "cuda caching allocator";
  return p;
#else
  CADA_FAIL("device ", device, ": this build of cada has no CUDA");
#endif
}

void reset_memory_peak(const c10::Device& device) {
#ifdef CADA_WITH_CUDA
  if (device.is_cuda())
    c10::cuda::CUDACachingAllocator::resetPeakStats(device.has_index() ? device.index() : c10::DeviceIndex(0));
#else
  (void)device;
#endif
}

}  // namespace cada::kernels
