#include "blocked_gemm.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "cpu_isa.h"

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's AVX-512 intrinsics (see skinny.cpp)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define CADA_BLOCKED_X86 1
#endif

namespace cada::kernels::detail {

namespace {

constexpr int64_t kMR = 14;   // rows of a micro-tile: 14 x 2 accumulators + 2 B vectors + 1 broadcast
constexpr int64_t kKC = 256;  // K block: one B micro-panel (KC x NR floats = 32 KiB) stays in L1

// Packs op(A)[i0 : i0+MR, p0 : p0+kc] as kc groups of MR values (rows past M are zeros).
void pack_a(bool ta, const float* A, int64_t lda, int64_t M, int64_t i0, int64_t p0, int64_t kc, float* dst) {
  const int64_t rows = std::min<int64_t>(kMR, M - i0);
  if (!ta) {
    for (int64_t r = 0; r < rows; ++r) {
      const float* src = A + (i0 + r) * lda + p0;
      for (int64_t k = 0; k < kc; ++k) dst[k * kMR + r] = src[k];
    }
  } else {
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = A + (p0 + k) * lda + i0;
      for (int64_t r = 0; r < rows; ++r) dst[k * kMR + r] = src[r];
    }
  }
  if (rows < kMR)
    for (int64_t k = 0; k < kc; ++k)
      for (int64_t r = rows; r < kMR; ++r) dst[k * kMR + r] = 0.0f;
}

#ifdef CADA_BLOCKED_X86

// C[0:mr, 0:nr] (+)= Ap (kc x MR) . Bp (kc x NR); `add` keeps C's contents (scaled by beta).
__attribute__((target("avx512f,avx2,fma"))) void micro_kernel(int64_t kc, const float* a, const float* b, float* c,
                                                               int64_t ldc, int64_t mr, int64_t nr, bool add,
                                                               float beta) {
  __m512 acc0[kMR], acc1[kMR];
#pragma GCC unroll 14
  for (int i = 0; i < kMR; ++i) acc0[i] = acc1[i] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b);
    const __m512 b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 14
    for (int i = 0; i < kMR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
      acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
    }
    a += kMR;
    b += kNR;
  }
  const __mmask16 m0 = nr >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << nr) - 1u);
  const __mmask16 m1 = nr >= 32 ? static_cast<__mmask16>(0xFFFF)
                                : nr <= 16 ? static_cast<__mmask16>(0)
                                           : static_cast<__mmask16>((1u << (nr - 16)) - 1u);
  const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 14
  for (int i = 0; i < kMR; ++i) {
    if (i >= mr) break;
    float* ci = c + i * ldc;
    __m512 r0 = acc0[i], r1 = acc1[i];
    if (add) {
      r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, ci), r0);
      r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, ci + 16), r1);
    }
    _mm512_mask_storeu_ps(ci, m0, r0);
    _mm512_mask_storeu_ps(ci + 16, m1, r1);
  }
}

#else
void micro_kernel(int64_t, const float*, const float*, float*, int64_t, int64_t, int64_t, bool, float) {}
#endif

}  // namespace

void pack_b(bool tb, const float* B, int64_t ldb, int64_t N, int64_t j0, int64_t p0, int64_t kc, float* dst) {
  const int64_t cols = std::min<int64_t>(kNR, N - j0);
  if (!tb) {
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = B + (p0 + k) * ldb + j0;
      float* d = dst + k * kNR;
      for (int64_t c = 0; c < cols; ++c) d[c] = src[c];
      for (int64_t c = cols; c < kNR; ++c) d[c] = 0.0f;
    }
  } else {
    for (int64_t c = 0; c < cols; ++c) {
      const float* src = B + (j0 + c) * ldb + p0;
      for (int64_t k = 0; k < kc; ++k) dst[k * kNR + c] = src[k];
    }
    if (cols < kNR)
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t c = cols; c < kNR; ++c) dst[k * kNR + c] = 0.0f;
  }
}

bool blocked_gemm_available() {
#ifdef CADA_BLOCKED_X86
  return cpu_isa() == CpuIsa::kAvx512;
#else
  return false;
#endif
}

void blocked_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                  int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {  // C = beta C
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  const int64_t mp = (M + kMR - 1) / kMR, np = (N + kNR - 1) / kNR;
  const int64_t kc_max = std::min(kKC, K);
  std::vector<float> ap(static_cast<size_t>(mp * kMR * kc_max)), bp(static_cast<size_t>(np * kNR * kc_max));
  for (int64_t p0 = 0; p0 < K; p0 += kKC) {
    const int64_t kc = std::min(kKC, K - p0);
    // Pack both operands' K block (each panel by one thread), then every B panel against all of A:
    // a thread's B micro-panel stays in L1 while the A panels stream from L2.
    at::parallel_for(0, mp + np, 8, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        if (t < mp) pack_a(ta, A, lda, M, t * kMR, p0, kc, ap.data() + t * kMR * kc);
        else pack_b(tb, B, ldb, N, (t - mp) * kNR, p0, kc, bp.data() + (t - mp) * kNR * kc);
      }
    });
    const bool add = p0 > 0 || beta != 0.0f;
    const float b_eff = p0 > 0 ? 1.0f : beta;
    at::parallel_for(0, np, 1, [&](int64_t j0, int64_t j1) {
      for (int64_t jp = j0; jp < j1; ++jp) {
        const int64_t nr = std::min(kNR, N - jp * kNR);
        for (int64_t ip = 0; ip < mp; ++ip) {
          const int64_t mr = std::min(kMR, M - ip * kMR);
          micro_kernel(kc, ap.data() + ip * kMR * kc, bp.data() + jp * kNR * kc, C + ip * kMR * ldc + jp * kNR, ldc,
                       mr, nr, add, b_eff);
        }
      }
    });
  }
}

}  // namespace cada::kernels::detail
