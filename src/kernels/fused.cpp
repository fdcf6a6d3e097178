#include "cada/kernels/fused.h"

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <cmath>

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

}  // namespace

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
    for (int64_t r = b; r < e; ++r) {
      const float* xr = xp + r * C;
      float* orow = op + r * C;
      float ss = 0.f;
      for (int64_t c = 0; c < C; ++c) ss += xr[c] * xr[c];
      const float rstd = 1.0f / std::sqrt(ss / static_cast<float>(C) + feps);
      for (int64_t c = 0; c < C; ++c) orow[c] = wp[c] * (xr[c] * rstd);
    }
  });
  return out;
}

at::Tensor rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  if (!fusable({&x, &cos, &sin}) || x.dim() != 4 || cos.dim() != 3 || x.size(-1) % 2 != 0 ||
      cos.sizes() != sin.sizes() || cos.size(0) != x.size(0) || cos.size(1) != x.size(1) ||
      cos.size(2) != x.size(3))
    return reference::rotary(x, cos, sin);
  const int64_t B = x.size(0), T = x.size(1), H = x.size(2), D = x.size(3), half = D / 2;
  auto xc = x.contiguous();
  auto cc = cos.contiguous(), sc = sin.contiguous();
  auto out = at::empty_like(xc);
  const float* xp = xc.data_ptr<float>();
  const float* cp = cc.data_ptr<float>();
  const float* sp = sc.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, B * T, std::max<int64_t>(1, kGrainElems / std::max<int64_t>(H * D, 1)), [&](int64_t b, int64_t e) {
    for (int64_t bt = b; bt < e; ++bt) {
      const float* c = cp + bt * D;
      const float* s = sp + bt * D;
      for (int64_t h = 0; h < H; ++h) {
        const float* xr = xp + (bt * H + h) * D;
        float* orow = op + (bt * H + h) * D;
        for (int64_t i = 0; i < half; ++i) {
          const float lo = xr[i], hi = xr[i + half];
          orow[i] = lo * c[i] + (-hi) * s[i];
          orow[i + half] = hi * c[i + half] + lo * s[i + half];
        }
      }
    }
  });
  return out;
}

at::Tensor silu_mul(const at::Tensor& gate, const at::Tensor& up) {
  if (!fusable({&gate, &up}) || gate.sizes() != up.sizes()) return reference::silu_mul(gate, up);
  auto g = gate.contiguous(), u = up.contiguous();
  auto out = at::empty_like(g);
  const float* gp = g.data_ptr<float>();
  const float* upp = u.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, g.numel(), kGrainElems, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) op[i] = gp[i] / (1.0f + std::exp(-gp[i])) * upp[i];
  });
  return out;
}

}  // namespace cada::kernels
