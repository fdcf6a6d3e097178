#include "cada/kernels/gemm.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <dlfcn.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstdlib>
#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>

#include "blocked_gemm.h"
#include "skinny.h"

namespace cada::kernels {

namespace {

// The few OpenBLAS entry points used, resolved at run time (CBLAS enum values are fixed by
// the CBLAS standard).
enum { kRowMajor = 101, kNoTrans = 111, kTrans = 112 };
using sgemm_fn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*,
                          int);
using set_threads_fn = void (*)(int);
using corename_fn = char* (*)();

struct OpenBlas {
  bool disabled = false;  // CADA_CPU_GEMM=libtorch: libtorch for every product
  sgemm_fn sgemm = nullptr;
  set_threads_fn set_threads = nullptr;
  std::string name = "libtorch";
};

OpenBlas load() {
  OpenBlas ob;
  if (const char* g = std::getenv("CADA_CPU_GEMM"); g && std::strcmp(g, "libtorch") == 0) {
    ob.disabled = true;
    return ob;
  }
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (!std::getenv("OPENBLAS_CORETYPE") && __builtin_cpu_is("amd") && __builtin_cpu_supports("avx512f") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd"))
    setenv("OPENBLAS_CORETYPE", "SKYLAKEX", 0);
#endif
  std::vector<std::string> candidates;
  if (const char* p = std::getenv("CADA_OPENBLAS")) candidates.push_back(p);
#ifdef CADA_MULTIARCH
  candidates.push_back("/usr/lib/" CADA_MULTIARCH "/openblas-openmp/libopenblas.so.0");
#endif
  candidates.push_back("libopenblas.so.0");
  for (const auto& path : candidates) {
    void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) continue;
    auto sgemm = reinterpret_cast<sgemm_fn>(dlsym(h, "cblas_sgemm"));
    auto set_threads = reinterpret_cast<set_threads_fn>(dlsym(h, "openblas_set_num_threads"));
    auto corename = reinterpret_cast<corename_fn>(dlsym(h, "openblas_get_corename"));
    auto parallel = reinterpret_cast<int (*)()>(dlsym(h, "openblas_get_parallel"));
    // Only the OpenMP build: it shares libtorch's OpenMP threads. The pthreads build keeps its
    // own spinning threads, which fight libtorch's for the cores (measured 3x slower steps).
    if (!sgemm || !set_threads || !parallel || parallel() != 2) {
      dlclose(h);
      continue;
    }
    ob.sgemm = sgemm;
    ob.set_threads = set_threads;
    ob.name = std::string("openblas (") + (corename ? corename() : "?") + ")";
    break;
  }
  return ob;
}

OpenBlas& blas() {
  static OpenBlas ob = load();
  return ob;
}

// Products with up to skinny_max_rows() rows (decoding, short sequences) run on the skinny kernel
// (skinny.h), which streams each weight once; larger ones on a blocked GEMM: cada's own on CPUs
// with AVX-512 (blocked_gemm.h), else OpenBLAS (tools/bench_gemm.cpp).
enum class Path { kLibtorch, kGemm, kSkinny };

bool use_skinny(int64_t M) { return M <= detail::skinny_max_rows(); }

// Without the skinny kernel (CADA_CPU_ISA=off, CPUs without AVX2), products with fewer rows stay
// on libtorch's matrix-vector paths, which beat a blocked GEMM there.
constexpr int64_t kMinGemmRows = 16;

Path path_for(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (x.dim() == 0 || w.dim() != 2 || x.size(-1) != w.size(1)) return Path::kLibtorch;
  if (!x.device().is_cpu() || x.scalar_type() != at::kFloat || w.scalar_type() != at::kFloat) return Path::kLibtorch;
  if (!w.device().is_cpu() || (b.defined() && (b.scalar_type() != at::kFloat || !b.device().is_cpu())))
    return Path::kLibtorch;
  if (x.is_sparse() || w.is_sparse() || at::autocast::is_autocast_enabled(at::kCPU)) return Path::kLibtorch;
  auto& ob = blas();
  if (ob.disabled) return Path::kLibtorch;
  const int64_t rows = x.numel() / std::max<int64_t>(1, x.size(-1));
  if (rows == 0 || x.size(-1) == 0) return Path::kLibtorch;  // empty products
  if (use_skinny(rows)) return Path::kSkinny;
  if (rows < kMinGemmRows) return Path::kLibtorch;
  if (detail::blocked_gemm_available()) return Path::kGemm;
  return ob.sgemm ? Path::kGemm : Path::kLibtorch;
}

// OpenBLAS on one thread per call, the product split into bands of C across libtorch's
// intra-op threads (at::parallel_for: OpenMP, waiting as OMP_WAIT_POLICY says). OpenBLAS's own
// threads hand packed panels to each other by spinning on sched_yield: alone that costs
// nothing, but when another process holds a core the spinning thread burns its time slices
// (20 pre-training steps beside a busy loop: 2.1-2.6 s of system time and 8-13% more CPU than
// with bands; docs/benchmarks/gemm_cpu.md). Bands are whole multiples of kBand rows or columns
// of C; a partial band rounds differently from the same rows inside a larger call, so, as with
// OpenBLAS's own threads, the sums can depend on the thread count by float rounding.
constexpr int64_t kBand = 64;

void openblas_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, const float* B, float beta,
                   float* C) {
  auto& ob = blas();
  static std::once_flag single;
  std::call_once(single, [&] {  // the OpenMP build then never starts its own threads
    // openblas_set_num_threads also sets OpenMP's thread count, which is libtorch's intra-op
    // setting: put that back.
    const int intra_op = at::get_num_threads();
    ob.set_threads(1);
    at::set_num_threads(intra_op);
  });
  const int lda = static_cast<int>(ta ? M : K), ldb = static_cast<int>(tb ? K : N), ldc = static_cast<int>(N);
  auto call = [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    const float* a = A + (ta ? m0 : m0 * lda);  // rows m0.. of op(A)
    const float* b = B + (tb ? n0 * ldb : n0);  // columns n0.. of op(B)
    ob.sgemm(kRowMajor, ta ? kTrans : kNoTrans, tb ? kTrans : kNoTrans, static_cast<int>(m1 - m0),
             static_cast<int>(n1 - n0), static_cast<int>(K), 1.0f, a, lda, b, ldb, beta, C + m0 * ldc + n0, ldc);
  };
  // Split the longer side of C, so that each band re-packs the smaller operand.
  const bool by_rows = M >= N;
  const int64_t len = by_rows ? M : N, bands = (len + kBand - 1) / kBand;
  // Products too small to share (under about 2 MFLOP per thread) stay on the calling thread.
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(1, (by_rows ? N : M) * K * kBand));
  at::parallel_for(0, bands, grain, [&](int64_t b0, int64_t b1) {
    const int64_t lo = b0 * kBand, hi = std::min(len, b1 * kBand);
    if (by_rows) call(lo, hi, 0, N);
    else call(0, M, lo, hi);
  });
}

// C (M,N) = alpha op(A) op(B) + beta C, row-major contiguous operands.
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, const float* B, float beta, float* C) {
  if (M == 0 || N == 0) return;
  if (detail::blocked_gemm_available()) {
    detail::blocked_gemm(ta, tb, M, N, K, A, ta ? M : K, B, tb ? K : N, beta, C, N);
    return;
  }
  if (!blas().sgemm) {  // the skinny path's backward on a CPU with neither
    auto a = at::from_blob(const_cast<float*>(A), {ta ? K : M, ta ? M : K});
    auto bm = at::from_blob(const_cast<float*>(B), {tb ? N : K, tb ? K : N});
    auto c = at::from_blob(C, {M, N});
    at::addmm_out(c, c, ta ? a.t() : a, tb ? bm.t() : bm, beta, 1.0f);
    return;
  }
  openblas_gemm(ta, tb, M, N, K, A, B, beta, C);
}

// y (M,N) = x (M,K) W^T + b.
at::Tensor forward2d(const at::Tensor& x2, const at::Tensor& w, const at::Tensor& b) {
  const int64_t M = x2.size(0), K = x2.size(1), N = w.size(0);
  at::Tensor y;
  float beta = 0.0f;
  if (b.defined()) {
    // A fresh buffer: with one row, expand().contiguous() would alias the bias itself.
    y = at::empty({M, N}, x2.options()).copy_(b.reshape({1, N}).expand({M, N}));
    beta = 1.0f;
  } else {
    y = at::empty({M, N}, x2.options());
  }
  if (K == 0) return beta == 0.0f ? y.zero_() : y;
  if (use_skinny(M)) {
    if (b.defined()) {
      auto t = at::empty({M, N}, x2.options());
      detail::skinny_gemm(M, N, K, x2.data_ptr<float>(), w.data_ptr<float>(), t.data_ptr<float>());
      return y.add_(t);
    }
    detail::skinny_gemm(M, N, K, x2.data_ptr<float>(), w.data_ptr<float>(), y.data_ptr<float>());
    return y;
  }
  gemm(false, true, M, N, K, x2.data_ptr<float>(), w.data_ptr<float>(), beta, y.data_ptr<float>());
  return y;
}

class LinearFn : public torch::autograd::Function<LinearFn> {
 public:
  // The bias, when there is one, is added outside (autograd's own add).
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x2, const at::Tensor& w) {
    ctx->save_for_backward({x2, w});
    return forward2d(x2, w, {});
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& x2 = saved[0];
    const auto& w = saved[1];
    auto gy = grads[0].contiguous();
    const int64_t M = x2.size(0), K = x2.size(1), N = w.size(0);
    at::Tensor gx, gw;
    if (ctx->needs_input_grad(0)) {  // dx (M,K) = dy (M,N) W (N,K)
      gx = at::empty({M, K}, x2.options());
      if (N == 0) gx.zero_();
      else gemm(false, false, M, K, N, gy.data_ptr<float>(), w.data_ptr<float>(), 0.0f, gx.data_ptr<float>());
    }
    if (ctx->needs_input_grad(1)) {  // dW (N,K) = dy^T (N,M) x (M,K)
      gw = at::empty({N, K}, w.options());
      if (M == 0) gw.zero_();
      else gemm(true, false, N, K, M, gy.data_ptr<float>(), x2.data_ptr<float>(), 0.0f, gw.data_ptr<float>());
    }
    return {gx, gw};
  }
};

// y = x W^T (+ b) for inputs path_for() gave a cada path (OpenBLAS or the skinny kernel, by row
// count); with autograd when `grad`.
at::Tensor cada_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, bool grad) {
  auto sizes = x.sizes().vec();
  sizes.back() = weight.size(0);
  auto x2 = x.reshape({-1, x.size(-1)}).contiguous();
  auto w = weight.contiguous();
  auto b = bias.defined() ? bias.contiguous() : bias;
  auto y = !grad ? forward2d(x2, w, b) : b.defined() ? LinearFn::apply(x2, w) + b : LinearFn::apply(x2, w);
  return y.view(sizes);
}

}  // namespace

std::string cpu_gemm_backend() {
  const auto& ob = blas();
  if (ob.disabled) return ob.name;
  if (detail::blocked_gemm_available()) return std::string("cada avx512 + skinny ") + detail::skinny_isa();
  const std::string skinny = *detail::skinny_isa() ? std::string(" + skinny ") + detail::skinny_isa() : "";
  return ob.name + skinny;
}

namespace cpu {
bool gemm_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, at::Tensor* out) {
  if (path_for(x, weight, bias) != Path::kGemm) return false;
  *out = cada_linear(x, weight, bias, /*grad=*/false);
  return true;
}

bool skinny_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, at::Tensor* out) {
  if (path_for(x, weight, bias) != Path::kSkinny) return false;
  *out = cada_linear(x, weight, bias, /*grad=*/false);
  return true;
}

int64_t skinny_max_rows() { return blas().disabled ? 0 : detail::skinny_max_rows(); }

int parallel_team_size() {
  std::atomic<int> chunks{0};
  at::parallel_for(0, 1 << 20, 1, [&](int64_t, int64_t) { ++chunks; });  // one chunk per thread
  return chunks.load();
}
}  // namespace cpu

at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  if (path_for(x, weight, bias) == Path::kLibtorch) return at::linear(x, weight, bias);
  const bool grad = at::GradMode::is_enabled() &&
                    (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()));
  return cada_linear(x, weight, bias, grad);
}

}  // namespace cada::kernels
