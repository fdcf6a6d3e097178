// The CPU GEMM behind every Linear: OpenBLAS (32 rows and more) and the skinny kernel (1-31
// rows) against libtorch's at::linear, forward and gradients, on odd shapes (3-D inputs,
// non-contiguous inputs, no bias, K = 1, N = 1, every tail of the vector and register tiles),
// and the cases left to libtorch (empty batches, float64).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "cada/kernels/gemm.h"

using namespace cada::kernels;

namespace {
double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return a.numel() == 0 ? 0.0 : (a - b).abs().max().item<double>();
}
}  // namespace

// scripts/setup.sh installs OpenBLAS, so the faster path is what runs here; a machine without
// it must say so explicitly (CADA_CPU_GEMM=libtorch) rather than test libtorch against itself.
TEST(Gemm, OpenBlasIsInUse) {
  const char* g = std::getenv("CADA_CPU_GEMM");
  if (g && std::string(g) == "libtorch") GTEST_SKIP() << "CADA_CPU_GEMM=libtorch";
  EXPECT_EQ(cpu_gemm_backend().rfind("openblas", 0), 0u) << cpu_gemm_backend();
}

TEST(Gemm, ForwardMatchesLibtorch) {
  if (cpu_gemm_backend() == "libtorch") GTEST_SKIP() << "no OpenBLAS";
  torch::manual_seed(0);
  struct Case {
    std::vector<int64_t> x;
    int64_t n;
    bool bias;
  };
  for (const auto& c : {Case{{37, 33}, 65, true}, Case{{2, 17, 64}, 48, false}, Case{{1, 32, 256}, 2048, false},
                        Case{{32, 1}, 9, true}, Case{{4, 9, 17}, 1, true}}) {
    auto x = at::randn(c.x);
    auto w = at::randn({c.n, c.x.back()});
    auto b = c.bias ? at::randn({c.n}) : at::Tensor();
    at::Tensor y;
    ASSERT_TRUE(cpu::openblas_linear(x, w, b, &y));
    auto ref = at::linear(x, w, b);
    ASSERT_EQ(y.sizes(), ref.sizes());
    EXPECT_LT(max_diff(y, ref), 1e-4 * std::sqrt(double(c.x.back()))) << c.x;
    EXPECT_LT(max_diff(cada::kernels::linear(x, w, b), ref), 1e-4 * std::sqrt(double(c.x.back())));
  }
  // A transposed (non-contiguous) input and weight.
  auto x = at::randn({40, 24}).t();
  auto w = at::randn({40, 30}).t();
  EXPECT_LT(max_diff(cada::kernels::linear(x, w), at::linear(x, w)), 1e-4);
  // A few rows (decoding) go to the skinny kernel, empty batches to libtorch.
  at::Tensor ys;
  EXPECT_FALSE(cpu::openblas_linear(at::randn({2, 3, 8}), at::randn({5, 8}), {}, &ys));
  EXPECT_FALSE(cpu::openblas_linear(at::randn({31, 8}), at::randn({5, 8}), {}, &ys));
  EXPECT_FALSE(cpu::openblas_linear(at::randn({0, 8}), at::randn({5, 8}), {}, &ys));
  EXPECT_EQ(cada::kernels::linear(at::randn({0, 8}), at::randn({5, 8})).sizes(), (std::vector<int64_t>{0, 5}));
  // Non-float32 inputs go to libtorch.
  auto xd = at::randn({30, 4}, at::kDouble), wd = at::randn({5, 4}, at::kDouble);
  at::Tensor yd;
  EXPECT_FALSE(cpu::openblas_linear(xd, wd, {}, &yd));
  EXPECT_LT(max_diff(cada::kernels::linear(xd, wd), at::linear(xd, wd)), 1e-12);
}

TEST(Gemm, GradientsMatchLibtorch) {
  if (cpu_gemm_backend() == "libtorch") GTEST_SKIP() << "no OpenBLAS";
  torch::manual_seed(1);
  for (bool with_bias : {true, false}) {
    for (bool weight_only : {false, true}) {
      auto x0 = at::randn({3, 6, 20}), w0 = at::randn({12, 20}), b0 = at::randn({12}), g = at::randn({3, 6, 12});
      auto run = [&](bool ours) {
        auto x = x0.clone().requires_grad_(!weight_only), w = w0.clone().requires_grad_(true);
        auto b = with_bias ? b0.clone().requires_grad_(true) : at::Tensor();
        auto y = ours ? cada::kernels::linear(x, w, b) : at::linear(x, w, b);
        (y * g).sum().backward();
        return std::make_tuple(y.detach(), weight_only ? at::Tensor() : x.grad(), w.grad(),
                               with_bias ? b.grad() : at::Tensor());
      };
      auto [y1, gx1, gw1, gb1] = run(true);
      auto [y0, gx0, gw0, gb0] = run(false);
      EXPECT_LT(max_diff(y1, y0), 1e-4);
      if (!weight_only) EXPECT_LT(max_diff(gx1, gx0), 1e-4);
      EXPECT_LT(max_diff(gw1, gw0), 1e-4);
      if (with_bias) EXPECT_LT(max_diff(gb1, gb0), 1e-4);
    }
  }
  // Second use of the same weight in one graph (tied embeddings): gradients accumulate.
  auto w = at::randn({10, 8}).requires_grad_(true);
  auto x = at::randn({20, 8});
  (cada::kernels::linear(x, w).sum() + cada::kernels::linear(x * 2, w).sum()).backward();
  auto gw = w.grad().clone();
  w.mutable_grad().zero_();
  (at::linear(x, w).sum() + at::linear(x * 2, w).sum()).backward();
  EXPECT_LT(max_diff(gw, w.grad()), 1e-4);
}

// Decoding shapes: every row count the skinny kernel takes (its register tiles hold up to 4 rows
// and 4 outputs, so 1-31 rows and 1-9 outputs cover every tile shape and tail), feature counts
// around the vector widths (8 floats AVX2, 16 AVX-512), weights large enough to be split across
// threads and prefetched.
TEST(Gemm, SkinnyMatchesLibtorch) {
  const char* g = std::getenv("CADA_CPU_GEMM");
  if ((g && std::string(g) == "libtorch") || cpu_gemm_backend().find("skinny") == std::string::npos)
    GTEST_SKIP() << "no skinny kernel: " << cpu_gemm_backend();
  if (const char* isa = std::getenv("CADA_CPU_ISA"))  // the ctest entry for the AVX2 code
    EXPECT_NE(cpu_gemm_backend().find(std::string("skinny ") + isa), std::string::npos) << cpu_gemm_backend();
  torch::manual_seed(3);
  for (int64_t M : {1, 2, 3, 4, 5, 7, 8, 15, 16, 31}) {
    for (int64_t K : {1, 7, 8, 9, 16, 17, 33, 256}) {
      for (int64_t N : {1, 2, 3, 4, 5, 9}) {
        auto x = at::randn({M, K}), w = at::randn({N, K}), b = at::randn({N});
        at::Tensor y;
        ASSERT_TRUE(cpu::skinny_linear(x, w, b, &y)) << M << " " << K << " " << N;
        EXPECT_LT(max_diff(y, at::linear(x, w, b)), 1e-5 * std::sqrt(double(K)) * 4) << M << " " << K << " " << N;
      }
    }
  }
  // Large weights: many threads' blocks, prefetching, the LM-head shape; a 3-D input.
  for (auto [M, K, N] : {std::tuple<int64_t, int64_t, int64_t>{1, 768, 4099}, {6, 256, 9000}, {9, 1000, 1030}}) {
    auto x = at::randn({M, 1, K}), w = at::randn({N, K});
    at::Tensor y;
    ASSERT_TRUE(cpu::skinny_linear(x, w, {}, &y));
    ASSERT_EQ(y.sizes(), (std::vector<int64_t>{M, 1, N}));
    EXPECT_LT(max_diff(y, at::linear(x, w)), 1e-4 * std::sqrt(double(K)));
  }
  // A strided weight view is made contiguous first.
  auto wt = at::randn({24, 10}).t();
  auto x = at::randn({3, 24});
  EXPECT_LT(max_diff(cada::kernels::linear(x, wt), at::linear(x, wt)), 1e-4);
  // 32 rows and more are OpenBLAS's; no features is libtorch's.
  at::Tensor y;
  EXPECT_FALSE(cpu::skinny_linear(at::randn({32, 8}), at::randn({5, 8}), {}, &y));
  EXPECT_FALSE(cpu::skinny_linear(at::randn({3, 0}), at::randn({5, 0}), {}, &y));
  EXPECT_FALSE(cpu::skinny_linear(at::randn({3, 8}, at::kDouble), at::randn({5, 8}, at::kDouble), {}, &y));
}

// Gradients through a few-row product (the skinny forward, the backward products on the GEMM).
TEST(Gemm, SkinnyGradientsMatchLibtorch) {
  torch::manual_seed(4);
  auto x0 = at::randn({2, 3, 40}), w0 = at::randn({11, 40}), b0 = at::randn({11}), g = at::randn({2, 3, 11});
  auto run = [&](bool ours) {
    auto x = x0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true), b = b0.clone().requires_grad_(true);
    auto y = ours ? cada::kernels::linear(x, w, b) : at::linear(x, w, b);
    (y * g).sum().backward();
    return std::make_tuple(y.detach(), x.grad(), w.grad(), b.grad());
  };
  auto [y1, gx1, gw1, gb1] = run(true);
  auto [y0, gx0, gw0, gb0] = run(false);
  EXPECT_LT(max_diff(y1, y0), 1e-4);
  EXPECT_LT(max_diff(gx1, gx0), 1e-4);
  EXPECT_LT(max_diff(gw1, gw0), 1e-4);
  EXPECT_LT(max_diff(gb1, gb0), 1e-4);
}
