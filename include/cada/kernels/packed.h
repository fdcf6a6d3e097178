// Linear weights laid out once for inference on CPU float32. A model generating on CPU packs
// each group of projections that read the same input (q/k/v, gate/up) as one weight, and the
// others alone; the copy is rebuilt when training changes the weights (model::PackedWeights).
//
// On CPUs with AVX-512 the layout is panels of 32 outputs (packed_gemm.h), multiplied by a
// register-tiled kernel that reads the input rows in place: every product, from a decoding
// step's few rows to a prefill's thousands, skips the per-call packing of a general GEMM and the
// horizontal sums of a row-dot-product kernel (docs/benchmarks/gemm_cpu.md). Elsewhere (AVX2,
// CADA_CPU_ISA=avx2|off, CADA_CPU_GEMM=libtorch) it is the plain (N, K) concatenation and the
// products run on kernels::linear.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace cada::kernels {

class PackedWeight {
 public:
  PackedWeight() = default;
  // The concatenation of parts (N_i, K) along the outputs; CPU float32 (others: undefined).
  static PackedWeight pack(const std::vector<at::Tensor>& parts);

  bool defined() const { return data_.defined(); }
  int64_t out_features() const { return n_; }
  int64_t in_features() const { return k_; }
  bool panels() const { return panels_; }     // the AVX-512 panel layout, else plain (N, K)
  const at::Tensor& data() const { return data_; }

 private:
  at::Tensor data_;
  int64_t n_ = 0, k_ = 0;
  bool panels_ = false;
};

// x (..., K) -> (..., N) = x W^T + bias (N, or undefined). No autograd: for inference. x of
// another device or dtype than the packed weight is an error.
at::Tensor linear(const at::Tensor& x, const PackedWeight& weight, const at::Tensor& bias = {});

namespace detail {
// The product of M contiguous rows into y (M, N), y (+)= x W^T, for output blocks [b0, b1) on
// the calling thread (a block: 32 outputs in the panel layout, the skinny kernel's tile of
// weight rows in the plain one; M no more than cpu::skinny_max_rows() there). For callers that
// split the work themselves (the fused decoding step, decode_step.h).
int64_t product_blocks(const PackedWeight& w);
int64_t product_block_width(const PackedWeight& w);  // outputs per block
void product_rows(const PackedWeight& w, int64_t M, const float* x, float* y, int64_t b0, int64_t b1,
                  bool accumulate);
}  // namespace detail

}  // namespace cada::kernels
