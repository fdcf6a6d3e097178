// cada's own blocked SGEMM for CPUs with AVX-512: C (M,N) = op(A) op(B) + beta C, all row-major.
// The products of training and prefill (16 rows and more) on such CPUs. Both operands are packed
// into micro-panels (A: MR rows, B: NR = 32 columns, one K block at a time), and a 14 x 32
// register-tiled kernel (28 zmm accumulators) does the arithmetic; the B panels are split across
// libtorch's intra-op threads. Where a CPU has full-width 512-bit FMA units this doubles the
// arithmetic rate of AVX2 kernels (docs/benchmarks/gemm_cpu.md). Internal to the kernels layer.
#pragma once

#include <cstdint>

namespace cada::kernels::detail {

// Columns of a B micro-panel: two zmm vectors.
constexpr int64_t kNR = 32;

// True when the CPU (and CADA_CPU_ISA) allow AVX-512.
bool blocked_gemm_available();

// Packs op(B)[p0 : p0+kc, j0 : j0+kNR] into dst as kc groups of kNR values (columns past N
// zero-filled); tb: B is stored (N, K), else (K, N). Also lays out packed weights (packed_gemm.h).
void pack_b(bool tb, const float* B, int64_t ldb, int64_t N, int64_t j0, int64_t p0, int64_t kc, float* dst);

// ta: A is stored (K, M) (op(A) = A^T), else (M, K); tb: B is stored (N, K), else (K, N).
// lda / ldb / ldc are the row strides of the stored matrices. beta 0 ignores C's old contents.
void blocked_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                  int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace cada::kernels::detail
