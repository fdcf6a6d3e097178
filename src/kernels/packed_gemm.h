// Products against a weight packed once (packed.h): y (M,N) (+)= x (M,K) W^T with W (N,K) stored
// as panels of 32 outputs, each panel one 256-deep K block after another (kc x 32 floats, outputs
// past N zero-filled). The x rows are read in place (no packing: at inference they are few, or
// stream once from L2), and register tiles of up to 14 rows x 32 outputs (28 zmm accumulators)
// do the arithmetic with no horizontal sums, so the same kernel serves a decoding step's 8-64
// rows and a prefill's thousands (tools/bench_gemm.cpp). AVX-512 only. Internal to the kernels
// layer.
#pragma once

#include <cstdint>

namespace cada::kernels::detail {

constexpr int64_t kPanelCols = 32;
constexpr int64_t kPanelDepth = 256;

// True when the CPU (and CADA_CPU_ISA) allow AVX-512.
bool packed_gemm_available();

// Floats of the packed form of an (N, K) weight.
int64_t packed_size(int64_t N, int64_t K);

// Packs W (N, K) row-major into dst (packed_size(N, K) floats).
void pack_panels(const float* W, int64_t N, int64_t K, float* dst);

// y[:, panels [j0, j1)] (+)= x W^T on the calling thread; x rows ldx apart, y rows ldy apart;
// accumulate: add to y, else overwrite it.
void packed_gemm_panels(int64_t M, int64_t N, int64_t K, const float* x, int64_t ldx, const float* wp, float* y,
                        int64_t ldy, int64_t j0, int64_t j1, bool accumulate);

// The whole product over libtorch's intra-op threads (x, y contiguous).
void packed_gemm(int64_t M, int64_t N, int64_t K, const float* x, const float* wp, float* y, bool accumulate);

}  // namespace cada::kernels::detail
