#include "packed_gemm.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>

#include "blocked_gemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's AVX-512 intrinsics (see skinny.cpp)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define CADA_PACKED_X86 1
#endif

namespace cada::kernels::detail {

static_assert(kPanelCols == kNR, "packed weights are laid out as the blocked GEMM's B micro-panels");

namespace {

constexpr int kMaxMR = 14;  // 14 x 2 accumulators + 2 weight vectors + 1 broadcast of 32 zmm

// Decoding streams the packed weights from L3 or memory (a model's weights do not stay in L2
// from one step to the next), where the hardware prefetcher alone left the kernel at half its
// in-cache rate: the first row tile over each panel block prefetches this far ahead.
constexpr int64_t kPrefetchFloats = 2048;

using tile_fn = void (*)(int64_t kc, const float* x, int64_t ldx, const float* w, float* y, int64_t ldy, int64_t nr,
                         bool accumulate, bool prefetch);

#ifdef CADA_PACKED_X86

// y[0:MR, 0:nr] (+)= x[0:MR, 0:kc] . panel (kc x 32).
template <int MR>
__attribute__((target("avx512f,avx2,fma"))) void tile(int64_t kc, const float* x, int64_t ldx, const float* w,
                                                       float* y, int64_t ldy, int64_t nr, bool accumulate,
                                                       bool prefetch) {
  __m512 acc0[MR], acc1[MR];
#pragma GCC unroll 14
  for (int i = 0; i < MR; ++i) acc0[i] = acc1[i] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    if (prefetch) {
      _mm_prefetch(reinterpret_cast<const char*>(w + k * kPanelCols + kPrefetchFloats), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(w + k * kPanelCols + kPrefetchFloats + 16), _MM_HINT_T0);
    }
    const __m512 w0 = _mm512_loadu_ps(w + k * kPanelCols);
    const __m512 w1 = _mm512_loadu_ps(w + k * kPanelCols + 16);
#pragma GCC unroll 14
    for (int i = 0; i < MR; ++i) {
      const __m512 xi = _mm512_set1_ps(x[i * ldx + k]);
      acc0[i] = _mm512_fmadd_ps(xi, w0, acc0[i]);
      acc1[i] = _mm512_fmadd_ps(xi, w1, acc1[i]);
    }
  }
  const __mmask16 m0 = nr >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << nr) - 1u);
  const __mmask16 m1 = nr >= 32   ? static_cast<__mmask16>(0xFFFF)
                       : nr <= 16 ? static_cast<__mmask16>(0)
                                  : static_cast<__mmask16>((1u << (nr - 16)) - 1u);
#pragma GCC unroll 14
  for (int i = 0; i < MR; ++i) {
    float* yi = y + i * ldy;
    __m512 r0 = acc0[i], r1 = acc1[i];
    if (accumulate) {
      r0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, yi), r0);
      r1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, yi + 16), r1);
    }
    _mm512_mask_storeu_ps(yi, m0, r0);
    _mm512_mask_storeu_ps(yi + 16, m1, r1);
  }
}

template <int... MRs>
struct Tiles {
  tile_fn fns[sizeof...(MRs)] = {&tile<MRs>...};
};
const Tiles<1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14> kTiles;

#endif

// Rows split into ceil(M / 14) nearly equal tiles (32 rows: 11 + 11 + 10, not 14 + 14 + 4).
void row_tiles(int64_t M, int64_t* count, int64_t* base, int64_t* extra) {
  *count = (M + kMaxMR - 1) / kMaxMR;
  *base = M / *count;
  *extra = M % *count;  // the first `extra` tiles take one row more
}

}  // namespace

bool packed_gemm_available() { return blocked_gemm_available(); }  // the same ISA check

int64_t packed_size(int64_t N, int64_t K) { return (N + kPanelCols - 1) / kPanelCols * kPanelCols * K; }

void pack_panels(const float* W, int64_t N, int64_t K, float* dst) {
  const int64_t panels = (N + kPanelCols - 1) / kPanelCols;
  at::parallel_for(0, panels, 1, [&](int64_t j0, int64_t j1) {
    for (int64_t jp = j0; jp < j1; ++jp) {
      float* panel = dst + jp * kPanelCols * K;
      for (int64_t p0 = 0; p0 < K; p0 += kPanelDepth) {
        const int64_t kc = std::min(kPanelDepth, K - p0);
        pack_b(/*tb=*/true, W, K, N, jp * kPanelCols, p0, kc, panel + p0 * kPanelCols);
      }
    }
  });
}

void packed_gemm_panels(int64_t M, int64_t N, int64_t K, const float* x, int64_t ldx, const float* wp, float* y,
                        int64_t ldy, int64_t j0, int64_t j1, bool accumulate) {
#ifdef CADA_PACKED_X86
  int64_t tiles, base, extra;
  row_tiles(M, &tiles, &base, &extra);
  for (int64_t jp = j0; jp < j1; ++jp) {
    const int64_t nr = std::min(kPanelCols, N - jp * kPanelCols);
    const float* panel = wp + jp * kPanelCols * K;
    if (K == 0 && !accumulate)
      for (int64_t m = 0; m < M; ++m) std::memset(y + m * ldy + jp * kPanelCols, 0, sizeof(float) * nr);
    for (int64_t p0 = 0; p0 < K; p0 += kPanelDepth) {
      const int64_t kc = std::min(kPanelDepth, K - p0);
      int64_t m0 = 0;
      for (int64_t t = 0; t < tiles; ++t) {
        const int64_t mr = base + (t < extra ? 1 : 0);
        kTiles.fns[mr - 1](kc, x + m0 * ldx + p0, ldx, panel + p0 * kPanelCols, y + m0 * ldy + jp * kPanelCols, ldy,
                           nr, accumulate || p0 > 0, t == 0);
        m0 += mr;
      }
    }
  }
#endif
}

void packed_gemm(int64_t M, int64_t N, int64_t K, const float* x, const float* wp, float* y, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  // Work items: (panel, chunk of rows), panel-major so that a thread's consecutive items reuse
  // the panel from L1; chunks of 8 tiles keep enough items for the threads on few panels.
  const int64_t panels = (N + kPanelCols - 1) / kPanelCols;
  const int64_t chunk_rows = 8 * kMaxMR, chunks = (M + chunk_rows - 1) / chunk_rows;
  const int64_t items = panels * chunks;
  const int64_t grain = 2 * M * N * K < (int64_t{1} << 20) ? items : 1;  // tiny products: one thread
  at::parallel_for(0, items, grain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t jp = i / chunks, c = i % chunks;
      const int64_t m0 = c * chunk_rows, rows = std::min(chunk_rows, M - m0);
      packed_gemm_panels(rows, N, K, x + m0 * K, K, wp, y + m0 * N, N, jp, jp + 1, accumulate);
    }
  });
}

}  // namespace cada::kernels::detail
