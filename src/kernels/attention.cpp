// The decode-step attention (fused.h: decode_attention): one query token per sequence against
// the KV cache, one pass per (sequence, kv head) with its grouped query heads, vector code per ISA.
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cada/kernels/fused.h"
#include "cpu_isa.h"
#include "rows.h"
#include "vexp.h"
#include "vreduce.h"

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's AVX-512 intrinsics (see skinny.cpp)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define CADA_ATTN_X86 1
#endif

namespace cada::kernels {

namespace reference {

at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias) {
  const int64_t B = q.size(0), H = q.size(2), D = q.size(3), Hk = k.size(1);
  const auto mask = bias.defined() ? c10::optional<at::Tensor>(bias) : c10::nullopt;
  if (Hk != H) {
    // The rep query heads of a kv head become rep queries of that head, so the cache is read in
    // place instead of being copied rep times.
    auto out = at::scaled_dot_product_attention(q.reshape({B, Hk, H / Hk, D}), k, v, mask, 0.0, false);
    return out.reshape({B, 1, H * D});
  }
  auto out = at::scaled_dot_product_attention(q.transpose(1, 2), k, v, mask, 0.0, false);  // (B,H,1,D)
  return out.transpose(1, 2).reshape({B, 1, H * D});
}

}  // namespace reference

namespace {

namespace generic {
inline float vdot(const float* a, const float* b, int64_t D) {
  float s = 0.0f;
  for (int64_t d = 0; d < D; ++d) s += a[d] * b[d];
  return s;
}
inline void vaxpy(float alpha, const float* x, float* y, int64_t D) {
  for (int64_t d = 0; d < D; ++d) y[d] += alpha * x[d];
}
inline float vexp_shift(float* s, int64_t S, float m) {
  float sum = 0.0f;
  for (int64_t j = 0; j < S; ++j) {
    s[j] = s[j] == -std::numeric_limits<float>::infinity() ? 0.0f : std::exp(s[j] - m);
    sum += s[j];
  }
  return sum;
}
inline void vscores(const float* q, const float* K, int64_t ks, int64_t S, int64_t D, float* s) {
  for (int64_t j = 0; j < S; ++j) s[j] = vdot(q, K + j * ks, D);
}
inline void vpv(const float* p, const float* V, int64_t vs, int64_t S, int64_t D, float* o) {
  for (int64_t d = 0; d < D; ++d) o[d] = 0.0f;
  for (int64_t j = 0; j < S; ++j)
    if (p[j] != 0.0f) vaxpy(p[j], V + j * vs, o, D);
}
#include "decode_attention.inc"
}  // namespace generic

#ifdef CADA_ATTN_X86
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
namespace avx512 {
inline float vdot(const float* a, const float* b, int64_t D) {
  __m512 acc = _mm512_setzero_ps();
  int64_t d = 0;
  for (; d + 16 <= D; d += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + d), _mm512_loadu_ps(b + d), acc);
  if (d < D) {
    const __mmask16 m = static_cast<__mmask16>((1u << (D - d)) - 1u);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + d), _mm512_maskz_loadu_ps(m, b + d), acc);
  }
  return detail::hsum512(acc);
}
inline void vaxpy(float alpha, const float* x, float* y, int64_t D) {
  const __m512 a = _mm512_set1_ps(alpha);
  int64_t d = 0;
  for (; d + 16 <= D; d += 16) _mm512_storeu_ps(y + d, _mm512_fmadd_ps(a, _mm512_loadu_ps(x + d), _mm512_loadu_ps(y + d)));
  if (d < D) {
    const __mmask16 m = static_cast<__mmask16>((1u << (D - d)) - 1u);
    _mm512_mask_storeu_ps(y + d, m, _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(m, x + d), _mm512_maskz_loadu_ps(m, y + d)));
  }
}
inline float vexp_shift(float* s, int64_t S, float m) {
  const __m512 vm = _mm512_set1_ps(m), ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 acc = _mm512_setzero_ps();
  for (int64_t j = 0; j < S; j += 16) {
    const __mmask16 live = S - j >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (S - j)) - 1u);
    const __m512 x = _mm512_maskz_loadu_ps(live, s + j);
    const __mmask16 keep = _mm512_mask_cmp_ps_mask(live, x, ninf, _CMP_NEQ_OQ);
    const __m512 e = _mm512_maskz_mov_ps(keep, detail::exp512(_mm512_sub_ps(x, vm)));
    _mm512_mask_storeu_ps(s + j, live, e);
    acc = _mm512_add_ps(acc, e);
  }
  return detail::hsum512(acc);
}
// Head sizes of 64 and 128 (most models) keep the query / the output in NV registers: scores
// for 4 keys at a time with one 4-way horizontal sum, and the weighted value sum without
// reloading and storing the output for every key.
template <int NV>
inline void scores_nv(const float* q, const float* K, int64_t ks, int64_t S, float* s) {
  __m512 qv[NV];
  for (int c = 0; c < NV; ++c) qv[c] = _mm512_loadu_ps(q + 16 * c);
  int64_t j = 0;
  for (; j + 4 <= S; j += 4) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    const float* k0 = K + j * ks;
    for (int c = 0; c < NV; ++c) {
      a0 = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(k0 + 16 * c), a0);
      a1 = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(k0 + ks + 16 * c), a1);
      a2 = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(k0 + 2 * ks + 16 * c), a2);
      a3 = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(k0 + 3 * ks + 16 * c), a3);
    }
    _mm_storeu_ps(s + j, detail::hsum4x512(a0, a1, a2, a3));
  }
  for (; j < S; ++j) {
    __m512 a = _mm512_setzero_ps();
    for (int c = 0; c < NV; ++c) a = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(K + j * ks + 16 * c), a);
    s[j] = detail::hsum512(a);
  }
}
template <int NV>
inline void pv_nv(const float* p, const float* V, int64_t vs, int64_t S, float* o) {
  __m512 acc[NV];
  for (int c = 0; c < NV; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t j = 0; j < S; ++j) {
    if (p[j] == 0.0f) continue;
    const __m512 pj = _mm512_set1_ps(p[j]);
    for (int c = 0; c < NV; ++c) acc[c] = _mm512_fmadd_ps(pj, _mm512_loadu_ps(V + j * vs + 16 * c), acc[c]);
  }
  for (int c = 0; c < NV; ++c) _mm512_storeu_ps(o + 16 * c, acc[c]);
}
inline void vscores(const float* q, const float* K, int64_t ks, int64_t S, int64_t D, float* s) {
  if (D == 64) return scores_nv<4>(q, K, ks, S, s);
  if (D == 128) return scores_nv<8>(q, K, ks, S, s);
  for (int64_t j = 0; j < S; ++j) s[j] = vdot(q, K + j * ks, D);
}
inline void vpv(const float* p, const float* V, int64_t vs, int64_t S, int64_t D, float* o) {
  if (D == 64) return pv_nv<4>(p, V, vs, S, o);
  if (D == 128) return pv_nv<8>(p, V, vs, S, o);
  for (int64_t d = 0; d < D; ++d) o[d] = 0.0f;
  for (int64_t j = 0; j < S; ++j)
    if (p[j] != 0.0f) vaxpy(p[j], V + j * vs, o, D);
}
#include "decode_attention.inc"

// All `rep` query heads of a kv head in one pass over its keys and one over its values (each key
// and value row loaded once, not once per query head), with the rows a few positions ahead
// prefetched: a decoding step streams the whole KV cache from L3 or memory. Same arithmetic, in
// the same order per query head, as head_group. Head sizes 64 / 128 (NV = D / 16) with REP query
// heads per kv head, REP * NV <= 16 (the accumulators stay in registers).
constexpr int64_t kPrefetchRows = 8;

template <int NV, int REP>
void head_group_joint(const float* q, const float* K, int64_t ks, const float* V, int64_t vs, const float* bias,
                      int64_t S, float scale, float* out, float* scores) {
  constexpr int64_t rep = REP;
  constexpr int64_t D = 16 * NV;
  int64_t j = 0;
  for (; j + 4 <= S; j += 4) {
    const float* k0 = K + j * ks;
    for (int64_t a = 0; a < 4; ++a)
      for (int c = 0; c < NV; ++c)  // one cache line per 16 floats
        _mm_prefetch(reinterpret_cast<const char*>(k0 + (kPrefetchRows + a) * ks + 16 * c), _MM_HINT_T0);
    __m512 acc[REP][4];  // [query head][key]
    for (int64_t r = 0; r < rep; ++r)
      for (int a = 0; a < 4; ++a) acc[r][a] = _mm512_setzero_ps();
    for (int c = 0; c < NV; ++c) {
      const __m512 kv0 = _mm512_loadu_ps(k0 + 16 * c), kv1 = _mm512_loadu_ps(k0 + ks + 16 * c);
      const __m512 kv2 = _mm512_loadu_ps(k0 + 2 * ks + 16 * c), kv3 = _mm512_loadu_ps(k0 + 3 * ks + 16 * c);
      for (int64_t r = 0; r < rep; ++r) {
        const __m512 qv = _mm512_loadu_ps(q + r * D + 16 * c);
        acc[r][0] = _mm512_fmadd_ps(qv, kv0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(qv, kv1, acc[r][1]);
        acc[r][2] = _mm512_fmadd_ps(qv, kv2, acc[r][2]);
        acc[r][3] = _mm512_fmadd_ps(qv, kv3, acc[r][3]);
      }
    }
    for (int64_t r = 0; r < rep; ++r)
      _mm_storeu_ps(scores + r * S + j, detail::hsum4x512(acc[r][0], acc[r][1], acc[r][2], acc[r][3]));
  }
  for (; j < S; ++j)
    for (int64_t r = 0; r < rep; ++r) {
      __m512 a = _mm512_setzero_ps();
      for (int c = 0; c < NV; ++c)
        a = _mm512_fmadd_ps(_mm512_loadu_ps(q + r * D + 16 * c), _mm512_loadu_ps(K + j * ks + 16 * c), a);
      scores[r * S + j] = detail::hsum512(a);
    }
  float inv[REP];
  for (int64_t r = 0; r < rep; ++r) inv[r] = softmax_weights(scores + r * S, bias, S, scale);
  __m512 acc[REP][NV];
  for (int64_t r = 0; r < rep; ++r)
    for (int c = 0; c < NV; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int64_t i = 0; i < S; ++i) {
    const float* vr = V + i * vs;
    for (int c = 0; c < NV; ++c)
      _mm_prefetch(reinterpret_cast<const char*>(vr + kPrefetchRows * vs + 16 * c), _MM_HINT_T0);
    __m512 vv[NV];
    for (int c = 0; c < NV; ++c) vv[c] = _mm512_loadu_ps(vr + 16 * c);
    for (int64_t r = 0; r < rep; ++r) {
      const float p = scores[r * S + i];
      if (p == 0.0f) continue;
      const __m512 pv = _mm512_set1_ps(p);
      for (int c = 0; c < NV; ++c) acc[r][c] = _mm512_fmadd_ps(pv, vv[c], acc[r][c]);
    }
  }
  for (int64_t r = 0; r < rep; ++r)
    for (int c = 0; c < NV; ++c) _mm512_storeu_ps(out + r * D + 16 * c, _mm512_mul_ps(acc[r][c], _mm512_set1_ps(inv[r])));
}

void head_group_fast(const float* q, const float* K, int64_t ks, const float* V, int64_t vs, const float* bias,
                     int64_t S, int64_t D, int64_t rep, float scale, float* out, float* scores) {
  if (D == 64) {
    if (rep == 1) return head_group_joint<4, 1>(q, K, ks, V, vs, bias, S, scale, out, scores);
    if (rep == 2) return head_group_joint<4, 2>(q, K, ks, V, vs, bias, S, scale, out, scores);
    if (rep == 3) return head_group_joint<4, 3>(q, K, ks, V, vs, bias, S, scale, out, scores);
    if (rep == 4) return head_group_joint<4, 4>(q, K, ks, V, vs, bias, S, scale, out, scores);
  } else if (D == 128) {
    if (rep == 1) return head_group_joint<8, 1>(q, K, ks, V, vs, bias, S, scale, out, scores);
    if (rep == 2) return head_group_joint<8, 2>(q, K, ks, V, vs, bias, S, scale, out, scores);
  }
  head_group(q, K, ks, V, vs, bias, S, D, rep, scale, out, scores);
}
}  // namespace avx512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
inline float vdot(const float* a, const float* b, int64_t D) {
  __m256 acc = _mm256_setzero_ps();
  int64_t d = 0;
  for (; d + 8 <= D; d += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + d), _mm256_loadu_ps(b + d), acc);
  float r = detail::hsum256(acc);
  for (; d < D; ++d) r += a[d] * b[d];
  return r;
}
inline void vaxpy(float alpha, const float* x, float* y, int64_t D) {
  const __m256 a = _mm256_set1_ps(alpha);
  int64_t d = 0;
  for (; d + 8 <= D; d += 8) _mm256_storeu_ps(y + d, _mm256_fmadd_ps(a, _mm256_loadu_ps(x + d), _mm256_loadu_ps(y + d)));
  for (; d < D; ++d) y[d] += alpha * x[d];
}
inline float vexp_shift(float* s, int64_t S, float m) {
  const __m256 vm = _mm256_set1_ps(m), ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 acc = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= S; j += 8) {
    const __m256 x = _mm256_loadu_ps(s + j);
    const __m256 e = _mm256_andnot_ps(_mm256_cmp_ps(x, ninf, _CMP_EQ_OQ), detail::exp256(_mm256_sub_ps(x, vm)));
    _mm256_storeu_ps(s + j, e);
    acc = _mm256_add_ps(acc, e);
  }
  float sum = detail::hsum256(acc);
  for (; j < S; ++j) {
    s[j] = s[j] == -std::numeric_limits<float>::infinity() ? 0.0f : std::exp(s[j] - m);
    sum += s[j];
  }
  return sum;
}
inline void vscores(const float* q, const float* K, int64_t ks, int64_t S, int64_t D, float* s) {
  for (int64_t j = 0; j < S; ++j) s[j] = vdot(q, K + j * ks, D);
}
inline void vpv(const float* p, const float* V, int64_t vs, int64_t S, int64_t D, float* o) {
  for (int64_t d = 0; d < D; ++d) o[d] = 0.0f;
  for (int64_t j = 0; j < S; ++j)
    if (p[j] != 0.0f) vaxpy(p[j], V + j * vs, o, D);
}
#include "decode_attention.inc"
}  // namespace avx2
#pragma GCC pop_options
#endif

detail::head_group_fn pick() {
#ifdef CADA_ATTN_X86
  if (detail::cpu_isa() == detail::CpuIsa::kAvx512) return &avx512::head_group_fast;
  if (detail::cpu_isa() == detail::CpuIsa::kAvx2) return &avx2::head_group;
#endif
  return nullptr;
}

bool cpu_f32(const at::Tensor& t) {
  return t.device().is_cpu() && t.scalar_type() == at::kFloat && !t.is_sparse();
}

}  // namespace

detail::head_group_fn detail::decode_head_group() {
  static const head_group_fn fn = pick();
  return fn;
}

at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias) {
  static const detail::head_group_fn fn = detail::decode_head_group();
  const bool shapes = q.dim() == 4 && q.size(1) == 1 && k.dim() == 4 && v.sizes() == k.sizes() &&
                      k.size(0) == q.size(0) && k.size(3) == q.size(3) && k.size(1) > 0 &&
                      q.size(2) % k.size(1) == 0 && k.stride(3) == 1 && v.stride(3) == 1;
  const int64_t S = shapes ? k.size(2) : 0;
  const bool bias_ok = !bias.defined() || (cpu_f32(bias) && bias.dim() == 4 && bias.size(1) == 1 && bias.size(2) == 1 &&
                                           bias.size(3) == S && (bias.size(0) == q.size(0) || bias.size(0) == 1));
  if (!fn || !c10::InferenceMode::is_enabled() || !shapes || !bias_ok || !cpu_f32(q) || !cpu_f32(k) || !cpu_f32(v))
    return reference::decode_attention(q, k, v, bias);
  const int64_t B = q.size(0), H = q.size(2), D = q.size(3), Hk = k.size(1), rep = H / Hk;
  auto qc = q.contiguous();
  auto bc = bias.defined() ? bias.contiguous() : bias;
  auto out = at::empty({B, 1, H * D}, q.options());
  const float* qp = qc.data_ptr<float>();
  const float* kp = k.data_ptr<float>();
  const float* vp = v.data_ptr<float>();
  const float* bp = bc.defined() ? bc.data_ptr<float>() : nullptr;
  const int64_t bstride = bc.defined() && bc.size(0) > 1 ? S : 0;
  float* op = out.data_ptr<float>();
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, rep * S * D));
  at::parallel_for(0, B * Hk, grain, [&](int64_t i0, int64_t i1) {
    std::vector<float> scores(static_cast<size_t>(rep * S));
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / Hk, g = i % Hk;
      fn(qp + (b * H + g * rep) * D, kp + b * k.stride(0) + g * k.stride(1), k.stride(2),
         vp + b * v.stride(0) + g * v.stride(1), v.stride(2), bp ? bp + b * bstride : nullptr, S, D, rep, scale,
         op + (b * H + g * rep) * D, scores.data());
    }
  });
  return out;
}

}  // namespace cada::kernels
