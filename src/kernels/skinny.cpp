#include "skinny.h"

#include "cpu_isa.h"
#include "vreduce.h"

#include <ATen/Parallel.h>

#include <algorithm>

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12's AVX-512 intrinsics fill unused lanes from _mm*_undefined_*(), which its own
// uninitialized-value warnings then flag in every caller.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define CADA_SKINNY_X86 1
#endif

namespace cada::kernels::detail {

namespace {

// Each tile: NR consecutive W rows (outputs n0..n0+NR) against MR x rows, over the whole K, with
// NR x MR vector accumulators; every W vector loaded is used MR times from registers.

// Below this many weight floats per thread the fork/join of a parallel region costs more than
// it saves.
constexpr int64_t kMinFloatsPerThread = 16384;

// `prefetch`: the first pass over these weight rows, which also pulls the next NR rows toward L1
// (they follow in memory), so streaming the weights from L3 or DRAM (a decoder's weights do not
// stay in L2 from one step to the next) overlaps with the arithmetic.
// `accumulate`: y += the products instead of y = them.
using tile_fn = void (*)(int64_t K, const float* x, int64_t ldx, const float* w, int64_t ldw, float* y,
                         int64_t ldy, bool prefetch, bool accumulate);

#ifdef CADA_SKINNY_X86

#define CADA_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define CADA_AVX2 __attribute__((target("avx2,fma")))

template <int MR, int NR>
CADA_AVX512 void tile_avx512(int64_t K, const float* x, int64_t ldx, const float* w, int64_t ldw, float* y,
                             int64_t ldy, bool prefetch, bool accumulate) {
  __m512 acc[NR][MR];
  for (int j = 0; j < NR; ++j)
    for (int i = 0; i < MR; ++i) acc[j][i] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = _mm512_loadu_ps(w + j * ldw + k);
    if (prefetch)
      for (int j = 0; j < NR; ++j) _mm_prefetch(reinterpret_cast<const char*>(w + (NR + j) * ldw + k), _MM_HINT_T0);
    for (int i = 0; i < MR; ++i) {
      const __m512 xv = _mm512_loadu_ps(x + i * ldx + k);
      for (int j = 0; j < NR; ++j) acc[j][i] = _mm512_fmadd_ps(wv[j], xv, acc[j][i]);
    }
  }
  if (k < K) {
    const __mmask16 m = static_cast<__mmask16>((1u << (K - k)) - 1u);
    __m512 wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = _mm512_maskz_loadu_ps(m, w + j * ldw + k);
    for (int i = 0; i < MR; ++i) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x + i * ldx + k);
      for (int j = 0; j < NR; ++j) acc[j][i] = _mm512_fmadd_ps(wv[j], xv, acc[j][i]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    float* yi = y + i * ldy;
    if constexpr (NR == 4) {
      const __m128 sums = hsum4x512(acc[0][i], acc[1][i], acc[2][i], acc[3][i]);
      _mm_storeu_ps(yi, accumulate ? _mm_add_ps(_mm_loadu_ps(yi), sums) : sums);
    } else {
      for (int j = 0; j < NR; ++j) yi[j] = (accumulate ? yi[j] : 0.0f) + hsum512(acc[j][i]);
    }
  }
}

template <int MR, int NR>
CADA_AVX2 void tile_avx2(int64_t K, const float* x, int64_t ldx, const float* w, int64_t ldw, float* y,
                         int64_t ldy, bool prefetch, bool accumulate) {
  __m256 acc[NR][MR];
  for (int j = 0; j < NR; ++j)
    for (int i = 0; i < MR; ++i) acc[j][i] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = _mm256_loadu_ps(w + j * ldw + k);
    if (prefetch && (k & 15) == 0)  // one cache line per weight row every two steps
      for (int j = 0; j < NR; ++j) _mm_prefetch(reinterpret_cast<const char*>(w + (NR + j) * ldw + k), _MM_HINT_T0);
    for (int i = 0; i < MR; ++i) {
      const __m256 xv = _mm256_loadu_ps(x + i * ldx + k);
      for (int j = 0; j < NR; ++j) acc[j][i] = _mm256_fmadd_ps(wv[j], xv, acc[j][i]);
    }
  }
  if (k < K) {
    static const int32_t ones_then_zeros[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    const __m256i m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ones_then_zeros + 8 - (K - k)));
    __m256 wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = _mm256_maskload_ps(w + j * ldw + k, m);
    for (int i = 0; i < MR; ++i) {
      const __m256 xv = _mm256_maskload_ps(x + i * ldx + k, m);
      for (int j = 0; j < NR; ++j) acc[j][i] = _mm256_fmadd_ps(wv[j], xv, acc[j][i]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    float* yi = y + i * ldy;
    if constexpr (NR == 4) {
      const __m128 sums = hsum4x256(acc[0][i], acc[1][i], acc[2][i], acc[3][i]);
      _mm_storeu_ps(yi, accumulate ? _mm_add_ps(_mm_loadu_ps(yi), sums) : sums);
    } else {
      for (int j = 0; j < NR; ++j) yi[j] = (accumulate ? yi[j] : 0.0f) + hsum256(acc[j][i]);
    }
  }
}

#endif  // CADA_SKINNY_X86

// A tiling: tiles[mr-1][nr-1] for up to max_mr rows and nr outputs per tile; the widest tile an
// ISA takes is bounded by its vector register count (MR x NR accumulators + NR weights + 1 input).
struct Scheme {
  int max_mr = 0;
  int nr = 0;
  tile_fn tiles[8][4] = {};
};

// (A wider AVX-512 tiling, 8 rows x 3 outputs, was measured slower than 4 x 4 at 8-64 rows:
// tools/bench_gemm.cpp.)
struct Isa {
  const char* name = "";
  Scheme tiling;
};

#ifdef CADA_SKINNY_X86

template <int MR, int NR>
struct Avx512Tile {
  static constexpr tile_fn fn = &tile_avx512<MR, NR>;
};
template <int MR, int NR>
struct Avx2Tile {
  static constexpr tile_fn fn = &tile_avx2<MR, NR>;
};

template <template <int, int> class T, int NR, int... MRs>
Scheme scheme() {
  Scheme s;
  s.max_mr = sizeof...(MRs);
  s.nr = NR;
  ((s.tiles[MRs - 1][0] = T<MRs, 1>::fn), ...);
  if constexpr (NR >= 2) ((s.tiles[MRs - 1][1] = T<MRs, 2>::fn), ...);
  if constexpr (NR >= 3) ((s.tiles[MRs - 1][2] = T<MRs, 3>::fn), ...);
  if constexpr (NR >= 4) ((s.tiles[MRs - 1][3] = T<MRs, 4>::fn), ...);
  return s;
}

Isa detect() {
  Isa isa;
  if (cpu_isa() == CpuIsa::kAvx512) {
    isa.name = "avx512";
    isa.tiling = scheme<Avx512Tile, 4, 1, 2, 3, 4>();  // 16 + 4 + 1 of 32 registers
  } else if (cpu_isa() == CpuIsa::kAvx2) {
    isa.name = "avx2";
    isa.tiling = scheme<Avx2Tile, 4, 1, 2>();  // 8 + 4 + 1 of 16 registers
  }
  return isa;
}

#else
Isa detect() { return {}; }
#endif

const Isa& isa() {
  static const Isa i = detect();
  return i;
}

}  // namespace

const char* skinny_isa() { return isa().name; }

int64_t skinny_max_rows() {
  if (isa().tiling.max_mr == 4) return 95;  // AVX-512
  if (isa().tiling.max_mr == 2) return 47;  // AVX2
  return 0;
}

int64_t skinny_block_rows() { return isa().tiling.nr; }

void skinny_gemm_blocks(int64_t M, int64_t N, int64_t K, const float* x, const float* w, float* y, int64_t b0,
                        int64_t b1, bool accumulate) {
  const Scheme& sc = isa().tiling;
  const int64_t NR = sc.nr;
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t n0 = b * NR;
    const int nr = static_cast<int>(std::min<int64_t>(NR, N - n0));
    if (K == 0) {
      if (!accumulate)
        for (int64_t m = 0; m < M; ++m) std::fill(y + m * N + n0, y + m * N + n0 + nr, 0.0f);
      continue;
    }
    for (int64_t m0 = 0; m0 < M; m0 += sc.max_mr) {
      const int mr = static_cast<int>(std::min<int64_t>(sc.max_mr, M - m0));
      sc.tiles[mr - 1][nr - 1](K, x + m0 * K, K, w + n0 * K, K, y + m0 * N + n0, N, m0 == 0 && b + 1 < b1, accumulate);
    }
  }
}

void skinny_gemm(int64_t M, int64_t N, int64_t K, const float* x, const float* w, float* y) {
  const int64_t NR = skinny_block_rows();
  const int64_t blocks = (N + NR - 1) / NR;
  const int64_t grain = std::max<int64_t>(1, kMinFloatsPerThread / std::max<int64_t>(1, NR * K));
  at::parallel_for(0, blocks, grain, [&](int64_t b0, int64_t b1) { skinny_gemm_blocks(M, N, K, x, w, y, b0, b1, false); });
}

}  // namespace cada::kernels::detail
