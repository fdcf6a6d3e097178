#include "cada/kernels/device_graph.h"

#include <algorithm>
#include <map>
#include <optional>

#include "cada/util/error.h"

#ifdef CADA_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

namespace cada::kernels {

// ---------------------------------------------------------------- GraphSet

#ifdef CADA_WITH_CUDA
struct GraphSet::Impl {
  std::map<int64_t, std::unique_ptr<at::cuda::CUDAGraph>> graphs;
  at::cuda::MempoolId_t pool{0, 0};
  // One side stream for every warm-up and capture: the caching allocator reuses a freed block
  // only on the stream that freed it, so a new stream per capture would strand memory.
  std::optional<c10::cuda::CUDAStream> side;
};
#else
struct GraphSet::Impl {
  std::map<int64_t, int> graphs;
};
#endif

GraphSet::GraphSet() : impl_(std::make_unique<Impl>()) {}
GraphSet::~GraphSet() = default;

bool GraphSet::supported(const at::Device& device) {
#ifdef CADA_WITH_CUDA
  return device.is_cuda();
#else
  (void)device;
  return false;
#endif
}

bool GraphSet::contains(int64_t key) const { return impl_->graphs.count(key) > 0; }
size_t GraphSet::size() const { return impl_->graphs.size(); }

void GraphSet::clear() {
  impl_->graphs.clear();
#ifdef CADA_WITH_CUDA
  impl_->pool = {0, 0};  // a pool whose graphs are gone is not reused
#endif
}

void GraphSet::run_and_capture(int64_t key, const at::Device& device, const std::function<void()>& fn) {
  CADA_CHECK(supported(device), "CUDA graphs need a CUDA build and a CUDA device, got ", device);
#ifdef CADA_WITH_CUDA
  c10::cuda::CUDAGuard device_guard(device);
  auto main = c10::cuda::getCurrentCUDAStream();
  if (!impl_->side || impl_->side->device() != device) impl_->side = c10::cuda::getStreamFromPool(false, device.index());
  auto side = *impl_->side;
  // The side stream starts after everything queued so far on the main stream.
  at::cuda::CUDAEvent ready;
  ready.record(main);
  ready.block(side);
  {
    c10::cuda::CUDAStreamGuard stream_guard(side);
    fn();  // for real, and as the warm-up PyTorch asks for before a capture
    side.synchronize();
    if (impl_->pool.first == 0 && impl_->pool.second == 0) impl_->pool = at::cuda::graph_pool_handle();
    auto graph = std::make_unique<at::cuda::CUDAGraph>();
    graph->capture_begin(impl_->pool);
    try {
      fn();
    } catch (...) {
      // Leave the stream out of capture mode before the error travels up.
      cudaGraph_t partial = nullptr;
      (void)cudaStreamEndCapture(side.stream(), &partial);
      if (partial) (void)cudaGraphDestroy(partial);
      (void)cudaGetLastError();
      throw;
    }
    graph->capture_end();
    impl_->graphs[key] = std::move(graph);
  }
  side.synchronize();
#else
  (void)key;
  (void)fn;
#endif
}

void GraphSet::replay(int64_t key) {
#ifdef CADA_WITH_CUDA
  auto it = impl_->graphs.find(key);
  CADA_CHECK(it != impl_->graphs.end(), "no CUDA graph was captured under key ", key);
  it->second->replay();
#else
  CADA_CHECK(false, "no CUDA graph was captured under key ", key, " (this build has no CUDA)");
#endif
}

// ---------------------------------------------------------------- HostCopy

struct HostCopy::Impl {
  std::vector<at::Tensor> host;
#ifdef CADA_WITH_CUDA
  at::cuda::CUDAEvent done;
  bool pending = false;
#endif
};

HostCopy::HostCopy() : impl_(std::make_unique<Impl>()) {}
HostCopy::~HostCopy() = default;
HostCopy::HostCopy(HostCopy&&) noexcept = default;
HostCopy& HostCopy::operator=(HostCopy&&) noexcept = default;

void HostCopy::start(const std::vector<at::Tensor>& tensors) {
  auto& host = impl_->host;
  host.resize(tensors.size());
  bool any_cuda = false;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    if (!t.is_cuda()) {
      host[i] = t.clone();
      continue;
    }
    any_cuda = true;
    if (!host[i].defined() || host[i].sizes() != t.sizes() || host[i].scalar_type() != t.scalar_type() ||
        !host[i].is_pinned())
      host[i] = at::empty(t.sizes(), t.options().device(at::kCPU).pinned_memory(true));
    host[i].copy_(t, /*non_blocking=*/true);
  }
#ifdef CADA_WITH_CUDA
  if (any_cuda) {
    impl_->done.record(c10::cuda::getCurrentCUDAStream(tensors[0].device().index()));
    impl_->pending = true;
  }
#else
  (void)any_cuda;
#endif
}

void HostCopy::wait() {
#ifdef CADA_WITH_CUDA
  if (impl_->pending) {
    impl_->done.synchronize();
    impl_->pending = false;
  }
#endif
}

const at::Tensor& HostCopy::host(size_t i) const {
  CADA_CHECK(i < impl_->host.size(), "HostCopy: no tensor ", i);
  return impl_->host[i];
}

int64_t device_free_bytes(const at::Device& device) {
#ifdef CADA_WITH_CUDA
  if (!device.is_cuda()) return -1;
  c10::cuda::CUDAGuard guard(device);
  size_t free = 0, total = 0;
  if (cudaMemGetInfo(&free, &total) != cudaSuccess) {
    (void)cudaGetLastError();
    return -1;
  }
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(guard.current_device().index());
  const auto idx = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
  const int64_t cached = stats.reserved_bytes[idx].current - stats.allocated_bytes[idx].current;
  return static_cast<int64_t>(free) + std::max<int64_t>(0, cached);
#else
  (void)device;
  return -1;
#endif
}

}  // namespace cada::kernels
