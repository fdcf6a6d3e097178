// Recorded device work replayed with one launch (CUDA graphs), and asynchronous copies of small
// results to pinned host memory: what a decoding loop needs so that the GPU never waits for the
// host between tokens. Both degrade to plain eager work on CPU or in builds without CUDA.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <vector>

namespace cada::kernels {

// CUDA graphs keyed by an integer (e.g. one per batch-size and cache-length bucket of a
// decoding step), all drawing their temporaries from one shared memory pool. Sharing is safe
// because the graphs run one at a time on one stream and write their results only into tensors
// allocated outside the graphs.
class GraphSet {
 public:
  GraphSet();
  ~GraphSet();
  GraphSet(const GraphSet&) = delete;
  GraphSet& operator=(const GraphSet&) = delete;

  // True when this build has CUDA and `device` is a CUDA device.
  static bool supported(const at::Device& device);

  bool contains(int64_t key) const;
  // Runs fn once for real on a side stream (which also warms up library handles and the
  // allocator), waits for it, then records a second call of fn as graph `key` without running
  // it. fn must not read device values on the host or synchronise; every tensor it writes for
  // later use must have been allocated before. Throws cada::Error when not supported().
  void run_and_capture(int64_t key, const at::Device& device, const std::function<void()>& fn);
  // Launches graph `key` on the current stream.
  void replay(int64_t key);
  void clear();
  size_t size() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Copies small device tensors into pinned host buffers on the current stream without blocking
// the host; wait() blocks until the copies, and all work queued before them, have finished.
// On CPU the copies are made at once.
class HostCopy {
 public:
  HostCopy();
  ~HostCopy();
  HostCopy(HostCopy&&) noexcept;
  HostCopy& operator=(HostCopy&&) noexcept;

  void start(const std::vector<at::Tensor>& tensors);
  void wait();
  // The i-th tensor's copy (valid after wait()).
  const at::Tensor& host(size_t i) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Free memory on a CUDA device in bytes (cudaMemGetInfo), plus what PyTorch's caching allocator
// holds reserved but unused; -1 for other devices or builds without CUDA.
int64_t device_free_bytes(const at::Device& device);

}  // namespace cada::kernels
