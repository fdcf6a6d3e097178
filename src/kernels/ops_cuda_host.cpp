// The tensor entry points of the CUDA kernels (cada/kernels/ops.h, namespace cuda): each makes its
// inputs contiguous on the kernel's device, in the kernel's dtype, and launches ops_cuda.cu's
// kernel on the current stream. Compiled only in CUDA builds.
#ifdef CADA_WITH_CUDA
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "cada/kernels/ops.h"
#include "ops_cuda_launch.h"

namespace cada::kernels::cuda {

namespace {

void* current_stream() { return static_cast<void*>(at::cuda::getCurrentCUDAStream().stream()); }

void check(const char* name, const char* error) { TORCH_CHECK(error == nullptr, name, " failed: ", error); }

launch::Dtype logits_dtype(const at::Tensor& t, const char* name) {
  switch (t.scalar_type()) {
    case at::kFloat: return launch::Dtype::kFloat32;
    case at::kDouble: return launch::Dtype::kFloat64;
    case at::kHalf: return launch::Dtype::kFloat16;
    case at::kBFloat16: return launch::Dtype::kBFloat16;
    default: break;
  }
  TORCH_CHECK(false, name, ": logits must be float32, float64, float16 or bfloat16, not ", t.scalar_type());
}

}  // namespace

at::Tensor sample_tokens(const at::Tensor& logits_in, const at::Tensor& temperature, const at::Tensor& top_k,
                         const at::Tensor& top_p, const at::Tensor& min_p, const at::Tensor& uniform) {
  c10::cuda::CUDAGuard guard(logits_in.device());
  auto dev = logits_in.device();
  auto logits = logits_in.to(at::kFloat);
  const int64_t B = logits.size(0), V = logits.size(1);
  auto temp = temperature.to(dev, at::kFloat).contiguous();
  auto t_safe = at::where(temp <= 0, at::ones_like(temp), temp).unsqueeze(1);
  auto probs = at::softmax(logits / t_safe, -1);
  auto [sorted, idx] = probs.sort(/*stable=*/true, -1, /*descending=*/true);
  sorted = sorted.contiguous();
  idx = idx.contiguous();
  auto csum = sorted.cumsum(-1).contiguous();
  auto argmax = logits.argmax(-1).contiguous();
  auto k = top_k.to(dev, at::kLong).contiguous();
  auto tp = top_p.to(dev, at::kFloat).contiguous();
  auto mp = min_p.to(dev, at::kFloat).contiguous();
  auto u = uniform.to(dev, at::kFloat).contiguous();
  auto out = at::empty({B}, logits.options().dtype(at::kLong));
  if (B == 0) return out;
  check("sample_tokens",
        launch::select(sorted.data_ptr<float>(), csum.data_ptr<float>(), idx.data_ptr<int64_t>(), temp.data_ptr<float>(),
                       k.data_ptr<int64_t>(), tp.data_ptr<float>(), mp.data_ptr<float>(), u.data_ptr<float>(),
                       argmax.data_ptr<int64_t>(), out.data_ptr<int64_t>(), B, V, current_stream()));
  return out;
}

at::Tensor logsoftmax_gather(const at::Tensor& logits_in, const at::Tensor& targets_in, double temperature) {
  c10::cuda::CUDAGuard guard(logits_in.device());
  auto logits = logits_in.contiguous();
  const auto dtype = logits_dtype(logits, "logsoftmax_gather");
  auto targets = targets_in.to(logits.device(), at::kLong).contiguous();
  const int64_t N = logits.size(0), V = logits.size(1);
  auto out = at::empty({N}, logits.options().dtype(at::kFloat));
  if (N == 0) return out;
  check("logsoftmax_gather",
        launch::logsoftmax_gather(dtype, logits.const_data_ptr(), targets.data_ptr<int64_t>(), out.data_ptr<float>(), N,
                                  V, static_cast<float>(1.0 / temperature), current_stream()));
  return out;
}

at::Tensor group_advantages(const at::Tensor& rewards, int64_t group_size, bool scale_by_std, double eps) {
  c10::cuda::CUDAGuard guard(rewards.device());
  auto r = rewards.to(at::kFloat).contiguous();
  auto out = at::empty_like(r);
  const int64_t groups = r.size(0) / group_size;
  if (groups == 0) return out;
  check("group_advantages", launch::group_advantages(r.data_ptr<float>(), out.data_ptr<float>(), groups, group_size,
                                                     scale_by_std, static_cast<float>(eps), current_stream()));
  return out;
}

at::Tensor sample_plain(const at::Tensor& logits_in, const at::Tensor& temperature, const at::Tensor& uniform) {
  c10::cuda::CUDAGuard guard(logits_in.device());
  auto logits = logits_in.contiguous();
  const auto dtype = logits_dtype(logits, "sample_plain");
  const int64_t B = logits.size(0), V = logits.size(1);
  auto temp = temperature.to(logits.device(), at::kFloat).contiguous();
  auto u = uniform.to(logits.device(), at::kFloat).contiguous();
  auto out = at::empty({B}, logits.options().dtype(at::kLong));
  if (B == 0) return out;
  check("sample_plain", launch::sample_plain(dtype, logits.const_data_ptr(), temp.data_ptr<float>(), u.data_ptr<float>(),
                                             out.data_ptr<int64_t>(), B, V, current_stream()));
  return out;
}

at::Tensor counter_uniform(const at::Tensor& keys_in, const at::Tensor& counters_in) {
  c10::cuda::CUDAGuard guard(keys_in.device());
  auto keys = keys_in.contiguous();
  auto counters = counters_in.to(keys.device()).contiguous();
  const int64_t B = keys.size(0);
  auto out = at::empty({B}, keys.options().dtype(at::kFloat));
  if (B == 0) return out;
  check("counter_uniform", launch::counter_uniform(keys.data_ptr<int64_t>(), counters.data_ptr<int64_t>(),
                                                   out.data_ptr<float>(), B, current_stream()));
  return out;
}

}  // namespace cada::kernels::cuda
#endif  // CADA_WITH_CUDA
