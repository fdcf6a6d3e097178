// Products with few rows (decoding 1-15 sequences): y (M,N) = x (M,K) W^T with W row-major
// (N,K), the layout of every Linear weight. Such products read each weight once and are bound by
// memory bandwidth, so the kernel streams W rows once, multiplies each against all M rows of x
// (kept in L1), and splits N across libtorch's intra-op threads. Vector code for AVX-512 and
// AVX2+FMA, picked at run time (cpu_isa.h); elsewhere it reports itself unavailable and callers
// use libtorch. Internal to the kernels layer.
#pragma once

#include <cstdint>

namespace cada::kernels::detail {

// "avx512", "avx2" or "" (not available on this CPU).
const char* skinny_isa();

// The most rows it takes (0 when unavailable): up to there it beats the blocked GEMMs on this
// ISA (AVX-512: cada's blocked_gemm.h; AVX2: OpenBLAS), tools/bench_gemm.cpp.
int64_t skinny_max_rows();

// y (M,N) = x (M,K) W^T, all row-major contiguous float32; 1 <= M <= skinny_max_rows().
void skinny_gemm(int64_t M, int64_t N, int64_t K, const float* x, const float* w, float* y);

// The same product on the calling thread for the output blocks [b0, b1) only, block b being
// outputs [b * skinny_block_rows(), ...) (the last block may be shorter); accumulate: y += x W^T.
// For callers that split the work themselves (the fused decoding step, decode_step.h).
int64_t skinny_block_rows();
void skinny_gemm_blocks(int64_t M, int64_t N, int64_t K, const float* x, const float* w, float* y, int64_t b0,
                        int64_t b1, bool accumulate);

}  // namespace cada::kernels::detail
