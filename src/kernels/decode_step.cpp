// The fused decoding step of a decoder stack (decode_step.h): one OpenMP parallel region for all
// layers; in every phase each thread takes a fixed share of the work (rows, sequences x kv heads,
// or blocks of outputs of the products, packed.h) and the phases meet at barriers.
#include "cada/kernels/decode_step.h"

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cada/kernels/gemm.h"
#include "rows.h"

namespace cada::kernels {

namespace {

struct LayerPtrs {
  const float *ln1, *qkv_b, *o_b, *ln2, *gu_b, *down_b;
  float *cache_k, *cache_v;
};

const float* ptr_or_null(const at::Tensor& t) { return t.defined() ? t.data_ptr<float>() : nullptr; }

bool cpu_f32_contiguous(const at::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == at::kFloat && !t.is_sparse() && t.is_contiguous();
}

// [begin, end) of n items for thread t of nt: contiguous static shares.
struct Share {
  int64_t begin, end;
};
Share share(int64_t n, int t, int nt) { return {n * t / nt, n * (t + 1) / nt}; }

bool layer_ok(const DecodeLayer& L, int64_t B, int64_t C, int64_t NQKV, int64_t NQ, int64_t Hk, int64_t D,
              int64_t S) {
  auto vec = [](const at::Tensor& t, int64_t n) { return cpu_f32_contiguous(t) && t.dim() == 1 && t.size(0) == n; };
  auto opt_vec = [&](const at::Tensor& t, int64_t n) { return !t.defined() || vec(t, n); };
  const bool panels = L.qkv.panels();
  auto mat = [&](const PackedWeight& w, int64_t n, int64_t k) {
    return w.defined() && w.panels() == panels && w.out_features() == n && w.in_features() == k &&
           cpu_f32_contiguous(w.data());
  };
  const int64_t F2 = L.gate_up.out_features();
  auto cache_ok = [&](const at::Tensor& c) {
    return cpu_f32_contiguous(c) && c.dim() == 4 && c.size(0) == B && c.size(1) == Hk && c.size(2) >= S &&
           c.size(3) == D;
  };
  return F2 % 2 == 0 && vec(L.input_norm, C) && mat(L.qkv, NQKV, C) && opt_vec(L.qkv_bias, NQKV) && mat(L.o, C, NQ) &&
         opt_vec(L.o_bias, C) && vec(L.post_norm, C) && mat(L.gate_up, F2, C) && opt_vec(L.gate_up_bias, F2) &&
         mat(L.down, C, F2 / 2) && opt_vec(L.down_bias, C) && cache_ok(L.cache_k) && cache_ok(L.cache_v) &&
         L.cache_k.size(2) == L.cache_v.size(2);
}

// One thread's share of a product, y (+)= bias + x W^T over its blocks of outputs (all M rows):
// the thread owns those output columns, so the bias goes in without a barrier.
void product_share(const PackedWeight& w, int64_t M, const float* x, float* y, bool accumulate, const float* bias,
                   int t, int T) {
  const Share s = share(detail::product_blocks(w), t, T);
  if (bias) {
    const int64_t N = w.out_features(), per = detail::product_block_width(w);
    const int64_t c0 = std::min(N, s.begin * per), c1 = std::min(N, s.end * per);
    for (int64_t m = 0; m < M; ++m) {
      float* ym = y + m * N;
      if (accumulate)
        for (int64_t c = c0; c < c1; ++c) ym[c] += bias[c];
      else
        std::memcpy(ym + c0, bias + c0, sizeof(float) * (c1 - c0));
    }
  }
  detail::product_rows(w, M, x, y, s.begin, s.end, accumulate || bias);
}

}  // namespace

bool decode_step_supported(int64_t B) {
  return B >= 1 && B <= cpu::skinny_max_rows() && detail::decode_head_group() != nullptr;
}

at::Tensor decode_step(const at::Tensor& x, const std::vector<DecodeLayer>& layers, const at::Tensor& cos,
                       const at::Tensor& sin, const at::Tensor& bias, const DecodeStepShape& shape) {
  if (!c10::InferenceMode::is_enabled() || layers.empty() || !cpu_f32_contiguous(x) || x.dim() != 3 ||
      x.size(1) != 1 || !decode_step_supported(x.size(0)))
    return {};
  const int64_t B = x.size(0), C = x.size(2), H = shape.heads, Hk = shape.kv_heads, D = shape.head_dim;
  if (H <= 0 || Hk <= 0 || H % Hk != 0 || D <= 0 || D % 2 != 0 || shape.past < 0) return {};
  const int64_t rep = H / Hk, NQ = H * D, NKV = Hk * D, NQKV = NQ + 2 * NKV, S = shape.past + 1, past = shape.past;
  for (const auto* t : {&cos, &sin})
    if (!cpu_f32_contiguous(*t) || t->dim() != 3 || t->size(0) != B || t->size(1) != 1 || t->size(2) != D) return {};
  if (bias.defined() && !(cpu_f32_contiguous(bias) && bias.dim() == 4 && (bias.size(0) == B || bias.size(0) == 1) &&
                          bias.size(1) == 1 && bias.size(2) == 1 && bias.size(3) == S))
    return {};
  int64_t F = 0;
  for (const auto& L : layers) {
    if (!layer_ok(L, B, C, NQKV, NQ, Hk, D, S)) return {};
    F = std::max(F, L.gate_up.out_features() / 2);
  }

  std::vector<LayerPtrs> lp;
  for (const auto& L : layers)
    lp.push_back({L.input_norm.data_ptr<float>(), ptr_or_null(L.qkv_bias), ptr_or_null(L.o_bias),
                  L.post_norm.data_ptr<float>(), ptr_or_null(L.gate_up_bias), ptr_or_null(L.down_bias),
                  L.cache_k.data_ptr<float>(), L.cache_v.data_ptr<float>()});

  const int nt = at::in_parallel_region() ? 1 : std::max(1, at::get_num_threads());
  auto out = x.clone();  // the residual stream, updated in place layer by layer
  // Scratch: q/k/v (B,NQKV), the attention output (B,NQ), gate/up (B,2F), the SwiGLU output
  // (B,F), and per thread the normed input (B,C) and attention scores (rep,S).
  const int64_t per_thread = B * C + rep * S;
  auto work = at::empty({B * (NQKV + NQ + 3 * F) + nt * per_thread}, x.options());
  float* h = out.data_ptr<float>();
  float* qkv = work.data_ptr<float>();
  float* attn = qkv + B * NQKV;
  float* gu = attn + B * NQ;
  float* act = gu + B * 2 * F;
  float* thread_scratch = act + B * F;
  const float* cp = cos.data_ptr<float>();
  const float* sp = sin.data_ptr<float>();
  const float* bp = bias.defined() ? bias.data_ptr<float>() : nullptr;
  const int64_t bstride = bias.defined() && bias.size(0) > 1 ? S : 0;
  const float eps = static_cast<float>(shape.rms_norm_eps);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const detail::head_group_fn attend = detail::decode_head_group();
  const detail::silu_mul_fn silu_mul = detail::silu_mul_kernel();

  // Six phases per layer, each ending at a barrier. Every thread normalises all B rows itself
  // (a few thousand flops) rather than waiting at one more barrier for a shared copy.
#pragma omp parallel num_threads(nt)
  {
#ifdef _OPENMP
    const int t = omp_get_thread_num(), T = omp_get_num_threads();
#else
    const int t = 0, T = 1;
#endif
    float* xn = thread_scratch + t * per_thread;
    float* scores = xn + B * C;
    const Share rows = share(B, t, T), heads = share(B * Hk, t, T);
    for (size_t l = 0; l < lp.size(); ++l) {
      const LayerPtrs& w = lp[l];
      const DecodeLayer& L = layers[l];
      const int64_t F2 = L.gate_up.out_features(), Fl = F2 / 2, cap = L.cache_k.size(2);
      // 1. q/k/v = norm(h) W^T (+ bias)
      for (int64_t b = 0; b < B; ++b) detail::rms_norm_row(h + b * C, w.ln1, xn + b * C, C, eps);
      product_share(L.qkv, B, xn, qkv, false, w.qkv_b, t, T);
#pragma omp barrier
      // 2. per sequence and kv head: rotary on its query heads (in place) and its key (into the
      // cache), its value into the cache at position `past`, then attention over the cache
      for (int64_t i = heads.begin; i < heads.end; ++i) {
        const int64_t b = i / Hk, g = i % Hk;
        const float* c = cp + b * D;
        const float* s = sp + b * D;
        float* q = qkv + b * NQKV + g * rep * D;
        for (int64_t r = 0; r < rep; ++r) detail::rotary_row(q + r * D, c, s, q + r * D, D);
        float* kc = w.cache_k + (b * Hk + g) * cap * D;
        float* vc = w.cache_v + (b * Hk + g) * cap * D;
        detail::rotary_row(qkv + b * NQKV + NQ + g * D, c, s, kc + past * D, D);
        std::memcpy(vc + past * D, qkv + b * NQKV + NQ + NKV + g * D, sizeof(float) * D);
        attend(q, kc, D, vc, D, bp ? bp + b * bstride : nullptr, S, D, rep, scale, attn + b * NQ + g * rep * D, scores);
      }
#pragma omp barrier
      // 3. h += attn W_o^T (+ bias)
      product_share(L.o, B, attn, h, true, w.o_b, t, T);
#pragma omp barrier
      // 4. gate/up = norm(h) W^T (+ bias)
      for (int64_t b = 0; b < B; ++b) detail::rms_norm_row(h + b * C, w.ln2, xn + b * C, C, eps);
      product_share(L.gate_up, B, xn, gu, false, w.gu_b, t, T);
#pragma omp barrier
      // 5. SwiGLU
      for (int64_t b = rows.begin; b < rows.end; ++b) silu_mul(gu + b * F2, gu + b * F2 + Fl, act + b * Fl, Fl);
#pragma omp barrier
      // 6. h += act W_down^T (+ bias)
      product_share(L.down, B, act, h, true, w.down_b, t, T);
#pragma omp barrier
    }
  }
  return out;
}

}  // namespace cada::kernels
