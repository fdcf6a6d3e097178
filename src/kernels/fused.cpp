#include "cada/kernels/fused.h"

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <cmath>

#include "cpu_isa.h"
#include "rows.h"
#include "vexp.h"

namespace cada::kernels {

namespace reference {

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  auto h = x.to(at::kFloat);
  auto var = h.pow(2).mean(-1, /*keepdim=*/true);
  h = h * at::rsqrt(var + eps);
  return weight * h.to(x.scalar_type());
}

at::Tensor rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  auto rot = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos.unsqueeze(2) + rot * sin.unsqueeze(2);
}

at::Tensor silu_mul(const at::Tensor& gate, const at::Tensor& up) { return at::silu(gate) * up; }

}  // namespace reference

namespace {

// Inference mode only: no-grad forwards of the trainers (reference and old log-probs) run the
// same composite ops as the policy's forward with autograd, so that, e.g., the first update's
// importance ratio is exactly 1.
bool fusable(std::initializer_list<const at::Tensor*> ts) {
  if (!c10::InferenceMode::is_enabled()) return false;
  for (const at::Tensor* t : ts)
    if (!t->defined() || !t->device().is_cpu() || t->scalar_type() != at::kFloat || t->is_sparse()) return false;
  return true;
}

// Rows of work per parallel task: small inputs (decoding) stay on the calling thread.
constexpr int64_t kGrainElems = 1 << 15;

// o = silu(g) * u = g / (1 + exp(-g)) * u over n floats.
void silu_mul_scalar(const float* g, const float* u, float* o, int64_t n) {
  for (int64_t i = 0; i < n; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f,avx2,fma"))) void silu_mul_avx512(const float* g, const float* u, float* o, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_loadu_ps(g + i);
    const __m512 e = detail::exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
    _mm512_storeu_ps(o + i, _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(one, e)), _mm512_loadu_ps(u + i)));
  }
  silu_mul_scalar(g + i, u + i, o + i, n - i);
}

__attribute__((target("avx2,fma"))) void silu_mul_avx2(const float* g, const float* u, float* o, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(g + i);
    const __m256 e = detail::exp256(_mm256_sub_ps(_mm256_setzero_ps(), x));
    _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_div_ps(x, _mm256_add_ps(one, e)), _mm256_loadu_ps(u + i)));
  }
  silu_mul_scalar(g + i, u + i, o + i, n - i);
}
#endif

detail::silu_mul_fn pick_silu_mul() {
#if defined(__x86_64__) && defined(__GNUC__)
  if (detail::cpu_isa() == detail::CpuIsa::kAvx512) return &silu_mul_avx512;
  if (detail::cpu_isa() == detail::CpuIsa::kAvx2) return &silu_mul_avx2;
#endif
  return &silu_mul_scalar;
}

}  // namespace

namespace detail {

void rms_norm_row(const float* x, const float* w, float* o, int64_t C, float eps) {
  float ss = 0.f;
  for (int64_t c = 0; c < C; ++c) ss += x[c] * x[c];
  const float rstd = 1.0f / std::sqrt(ss / static_cast<float>(C) + eps);
  for (int64_t c = 0; c < C; ++c) o[c] = w[c] * (x[c] * rstd);
}

void rotary_row(const float* x, const float* cos, const float* sin, float* o, int64_t D) {
  const int64_t half = D / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float lo = x[i], hi = x[i + half];
    o[i] = lo * cos[i] + (-hi) * sin[i];
    o[i + half] = hi * cos[i + half] + lo * sin[i + half];
  }
}

silu_mul_fn silu_mul_kernel() {
  static const silu_mul_fn fn = pick_silu_mul();
  return fn;
}

}  // namespace detail

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  if (!fusable({&x, &weight}) || x.dim() == 0 || weight.dim() != 1 || weight.size(0) != x.size(-1))
    return reference::rms_norm(x, weight, eps);
  const int64_t C = x.size(-1), rows = x.numel() / std::max<int64_t>(C, 1);
  auto xc = x.contiguous();
  auto w = weight.contiguous();
  auto out = at::empty_like(xc);
  const float* xp = xc.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const float feps = static_cast<float>(eps);
  at::parallel_for(0, rows, std::max<int64_t>(1, kGrainElems / std::max<int64_t>(C, 1)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) detail::rms_norm_row(xp + r * C, wp, op + r * C, C, feps);
  });
  return out;
}

at::Tensor rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  if (!fusable({&x, &cos, &sin}) || x.dim() != 4 || cos.dim() != 3 || x.size(-1) % 2 != 0 ||
      cos.sizes() != sin.sizes() || cos.size(0) != x.size(0) || cos.size(1) != x.size(1) ||
      cos.size(2) != x.size(3))
    return reference::rotary(x, cos, sin);
  const int64_t B = x.size(0), T = x.size(1), H = x.size(2), D = x.size(3);
  auto xc = x.contiguous();
  auto cc = cos.contiguous(), sc = sin.contiguous();
  auto out = at::empty_like(xc);
  const float* xp = xc.data_ptr<float>();
  const float* cp = cc.data_ptr<float>();
  const float* sp = sc.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, B * T, std::max<int64_t>(1, kGrainElems / std::max<int64_t>(H * D, 1)), [&](int64_t b, int64_t e) {
    for (int64_t bt = b; bt < e; ++bt)
      for (int64_t h = 0; h < H; ++h)
        detail::rotary_row(xp + (bt * H + h) * D, cp + bt * D, sp + bt * D, op + (bt * H + h) * D, D);
  });
  return out;
}

namespace {

// The row stride of t seen as (rows, C) rows of contiguous floats, e.g. the halves of a fused
// gate/up product; -1 when t is not laid out so.
int64_t row_stride(const at::Tensor& t) {
  if (t.dim() == 0 || t.stride(-1) != 1) return -1;
  if (t.dim() == 1) return t.size(0);
  for (int64_t i = 0; i + 2 < t.dim(); ++i)
    if (t.size(i) > 1 && t.stride(i) != t.stride(i + 1) * t.size(i + 1)) return -1;
  return t.stride(-2);
}

}  // namespace

at::Tensor silu_mul(const at::Tensor& gate, const at::Tensor& up) {
  if (!fusable({&gate, &up}) || gate.sizes() != up.sizes() || gate.dim() == 0) return reference::silu_mul(gate, up);
  // Rows read in place when each is contiguous (the two halves of one product), else copies.
  const auto g = row_stride(gate) >= 0 ? gate : gate.contiguous();
  const auto u = row_stride(up) >= 0 ? up : up.contiguous();
  const int64_t C = g.size(-1), rows = g.numel() / std::max<int64_t>(C, 1), gs = row_stride(g), us = row_stride(u);
  auto out = at::empty(g.sizes(), g.options());
  const float* gp = g.data_ptr<float>();
  const float* upp = u.data_ptr<float>();
  float* op = out.data_ptr<float>();
  static const detail::silu_mul_fn fn = detail::silu_mul_kernel();
  at::parallel_for(0, rows, std::max<int64_t>(1, kGrainElems / std::max<int64_t>(C, 1)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) fn(gp + r * gs, upp + r * us, op + r * C, C);
  });
  return out;
}


}  // namespace cada::kernels
