#include "cada/kernels/packed.h"

#include "cada/kernels/gemm.h"
#include "cada/util/error.h"
#include "packed_gemm.h"
#include "skinny.h"

namespace cada::kernels {

PackedWeight PackedWeight::pack(const std::vector<at::Tensor>& parts) {
  PackedWeight p;
  if (parts.empty()) return p;
  for (const auto& w : parts)
    if (!w.defined() || w.dim() != 2 || !w.device().is_cpu() || w.scalar_type() != at::kFloat ||
        w.size(1) != parts[0].size(1))
      return p;
  std::vector<at::Tensor> ws;
  for (const auto& w : parts) ws.push_back(w.detach());
  // One plain weight is used in place (no copy; an in-place update shows through).
  auto plain = ws.size() == 1 ? ws[0].contiguous() : at::cat(ws, 0);
  p.n_ = plain.size(0);
  p.k_ = plain.size(1);
  p.panels_ = detail::packed_gemm_available() && cpu_gemm_backend().rfind("cada", 0) == 0;
  if (p.panels_) {
    p.data_ = at::empty({detail::packed_size(p.n_, p.k_)}, plain.options());
    detail::pack_panels(plain.data_ptr<float>(), p.n_, p.k_, p.data_.data_ptr<float>());
  } else {
    p.data_ = plain;
  }
  return p;
}

at::Tensor linear(const at::Tensor& x, const PackedWeight& w, const at::Tensor& bias) {
  CADA_CHECK(w.defined(), "linear: the packed weight is empty");
  CADA_CHECK(x.dim() >= 1 && x.size(-1) == w.in_features(), "linear: input of ", x.sizes(), " for a packed weight of ",
             w.in_features(), " inputs");
  CADA_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat, "linear: a packed weight takes CPU float32 input");
  if (!w.panels()) return linear(x, w.data(), bias);
  const int64_t N = w.out_features(), K = w.in_features(), M = x.numel() / std::max<int64_t>(K, 1);
  auto x2 = x.reshape({M, K}).contiguous();
  auto y = at::empty({M, N}, x.options());
  if (bias.defined()) y.copy_(bias.reshape({1, N}).expand({M, N}));
  detail::packed_gemm(M, N, K, x2.data_ptr<float>(), w.data().data_ptr<float>(), y.data_ptr<float>(), bias.defined());
  auto sizes = x.sizes().vec();
  sizes.back() = N;
  return y.view(sizes);
}

namespace detail {

int64_t product_block_width(const PackedWeight& w) { return w.panels() ? kPanelCols : skinny_block_rows(); }

int64_t product_blocks(const PackedWeight& w) {
  const int64_t per = product_block_width(w);
  return (w.out_features() + per - 1) / per;
}

void product_rows(const PackedWeight& w, int64_t M, const float* x, float* y, int64_t b0, int64_t b1,
                  bool accumulate) {
  const int64_t N = w.out_features(), K = w.in_features();
  if (w.panels())
    packed_gemm_panels(M, N, K, x, K, w.data().data_ptr<float>(), y, N, b0, b1, accumulate);
  else
    skinny_gemm_blocks(M, N, K, x, w.data().data_ptr<float>(), y, b0, b1, accumulate);
}

}  // namespace detail

}  // namespace cada::kernels
