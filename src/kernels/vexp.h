// exp over float vectors (AVX-512 and AVX2), for cada's own CPU kernels: Cephes' range reduction
// (x = n ln2 + r) and degree-6 polynomial, relative error about 1e-7 over [-87, 88]; inputs are
// clamped to that range (so exp(-inf) is about 1e-38, callers that need an exact 0 mask it).
// Include only inside `#pragma GCC target` regions (or functions) for the ISA used.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12's AVX-512 intrinsics fill unused lanes from _mm*_undefined_*(), which its own
// uninitialized-value warnings then flag in every caller.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

namespace cada::kernels::detail {

#define CADA_VEXP_BODY(V, set1, add, mul, fmadd, maxv, minv, floorv, cvt, slli, addi, seti, cast)                  \
  x = minv(maxv(x, set1(-87.33654f)), set1(88.72283f));                                                            \
  V n = floorv(fmadd(x, set1(1.44269504088896341f), set1(0.5f)));                                                  \
  V r = fmadd(n, set1(-0.693359375f), x);                                                                          \
  r = fmadd(n, set1(2.12194440e-4f), r);                                                                           \
  V p = set1(1.9875691500e-4f);                                                                                    \
  p = fmadd(p, r, set1(1.3981999507e-3f));                                                                         \
  p = fmadd(p, r, set1(8.3334519073e-3f));                                                                         \
  p = fmadd(p, r, set1(4.1665795894e-2f));                                                                         \
  p = fmadd(p, r, set1(1.6666665459e-1f));                                                                         \
  p = fmadd(p, r, set1(5.0000001201e-1f));                                                                         \
  V y = add(fmadd(p, mul(r, r), r), set1(1.0f));                                                                   \
  return mul(y, cast(slli(addi(cvt(n), seti(127)), 23)));

__attribute__((target("avx512f,avx2,fma"))) inline __m512 floor512(__m512 v) {
  return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
}

__attribute__((target("avx512f,avx2,fma"))) inline __m512 exp512(__m512 x) {
  CADA_VEXP_BODY(__m512, _mm512_set1_ps, _mm512_add_ps, _mm512_mul_ps, _mm512_fmadd_ps, _mm512_max_ps, _mm512_min_ps,
                 floor512, _mm512_cvtps_epi32, _mm512_slli_epi32, _mm512_add_epi32, _mm512_set1_epi32, _mm512_castsi512_ps)
}

__attribute__((target("avx2,fma"))) inline __m256 exp256(__m256 x) {
  CADA_VEXP_BODY(__m256, _mm256_set1_ps, _mm256_add_ps, _mm256_mul_ps, _mm256_fmadd_ps, _mm256_max_ps, _mm256_min_ps,
                 _mm256_floor_ps, _mm256_cvtps_epi32, _mm256_slli_epi32, _mm256_add_epi32, _mm256_set1_epi32,
                 _mm256_castsi256_ps)
}

#undef CADA_VEXP_BODY

}  // namespace cada::kernels::detail

#endif
