// The CPU GEMM behind every Linear: the blocked path (cada's AVX-512 GEMM or OpenBLAS, for more
// than cpu::skinny_max_rows() rows) and the skinny kernel (fewer rows) against libtorch's
// at::linear, forward and gradients, on odd shapes (3-D inputs, non-contiguous inputs, no bias,
// K = 1, N = 1, K spanning several K blocks, every tail of the vector and register tiles), and
// the cases left to libtorch (empty batches, float64).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>

#include <torch/torch.h>

#include "cada/kernels/gemm.h"
#include "../test_util.h"

using namespace cada::kernels;

namespace {

using cada::testing_util::max_diff;
bool libtorch_forced() {
  const char* g = std::getenv("CADA_CPU_GEMM");
  return g && std::string(g) == "libtorch";
}
// More rows than the skinny kernel takes: the blocked path.
int64_t big() { return std::max<int64_t>(16, cpu::skinny_max_rows() + 1); }
}  // namespace

// scripts/setup.sh installs OpenBLAS (for CPUs without AVX-512), so a faster path than libtorch's
// always runs here; a machine without one must say so explicitly (CADA_CPU_GEMM=libtorch)
// rather than test libtorch against itself.
TEST(Gemm, FasterPathIsInUse) {
  if (libtorch_forced()) GTEST_SKIP() << "CADA_CPU_GEMM=libtorch";
  EXPECT_NE(cpu_gemm_backend().rfind("libtorch", 0), 0u) << cpu_gemm_backend();
}

TEST(Gemm, ForwardMatchesLibtorch) {
  if (cpu_gemm_backend().rfind("libtorch", 0) == 0) GTEST_SKIP() << "no blocked GEMM";
  torch::manual_seed(0);
  struct Case {
    std::vector<int64_t> x;
    int64_t n;
    bool bias;
  };
  const int64_t R = big();
  for (const auto& c : {Case{{R + 5, 33}, 65, true}, Case{{2, R, 64}, 48, false}, Case{{1, R, 256}, 2048, false},
                        Case{{R, 1}, 9, true}, Case{{R + 13, 17}, 1, true}, Case{{R + 30, 600}, 70, true},
                        Case{{3 * R, 300}, 33, false}}) {
    auto x = at::randn(c.x);
    auto w = at::randn({c.n, c.x.back()});
    auto b = c.bias ? at::randn({c.n}) : at::Tensor();
    at::Tensor y;
    ASSERT_TRUE(cpu::gemm_linear(x, w, b, &y)) << c.x;
    auto ref = at::linear(x, w, b);
    ASSERT_EQ(y.sizes(), ref.sizes());
    EXPECT_LT(max_diff(y, ref), 1e-4 * std::sqrt(double(c.x.back()))) << c.x;
    EXPECT_LT(max_diff(cada::kernels::linear(x, w, b), ref), 1e-4 * std::sqrt(double(c.x.back())));
  }
  // A transposed (non-contiguous) input and weight.
  auto x = at::randn({40, R + 7}).t();
  auto w = at::randn({40, 30}).t();
  EXPECT_LT(max_diff(cada::kernels::linear(x, w), at::linear(x, w)), 1e-4);
  // Fewer rows go to the skinny kernel, empty batches to libtorch.
  at::Tensor ys;
  EXPECT_FALSE(cpu::gemm_linear(at::randn({2, 3, 8}), at::randn({5, 8}), {}, &ys));
  EXPECT_FALSE(cpu::gemm_linear(at::randn({R - 1, 8}), at::randn({5, 8}), {}, &ys));
  EXPECT_FALSE(cpu::gemm_linear(at::randn({0, 8}), at::randn({5, 8}), {}, &ys));
  EXPECT_EQ(cada::kernels::linear(at::randn({0, 8}), at::randn({5, 8})).sizes(), (std::vector<int64_t>{0, 5}));
  // Non-float32 inputs go to libtorch.
  auto xd = at::randn({R + 4, 4}, at::kDouble), wd = at::randn({5, 4}, at::kDouble);
  at::Tensor yd;
  EXPECT_FALSE(cpu::gemm_linear(xd, wd, {}, &yd));
  EXPECT_LT(max_diff(cada::kernels::linear(xd, wd), at::linear(xd, wd)), 1e-12);
}

// The backward products: dx = dy W (both operands as stored) and dW = dy^T x (the first
// transposed), with K blocks of the blocked GEMM spanning the batch for dW.
TEST(Gemm, GradientsMatchLibtorch) {
  if (cpu_gemm_backend().rfind("libtorch", 0) == 0) GTEST_SKIP() << "no blocked GEMM";
  torch::manual_seed(1);
  const int64_t R = big();
  for (bool with_bias : {true, false}) {
    for (bool weight_only : {false, true}) {
      auto x0 = at::randn({3, R / 3 + 200, 20}), w0 = at::randn({45, 20}), b0 = at::randn({45});
      auto g = at::randn({3, R / 3 + 200, 45});
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
      EXPECT_LT(max_diff(gw1, gw0), 1e-3);  // sums over ~1000 rows
      if (with_bias) EXPECT_LT(max_diff(gb1, gb0), 1e-3);
    }
  }
  // Second use of the same weight in one graph (tied embeddings): gradients accumulate.
  auto w = at::randn({10, 8}).requires_grad_(true);
  auto x = at::randn({R + 20, 8});
  (cada::kernels::linear(x, w).sum() + cada::kernels::linear(x * 2, w).sum()).backward();
  auto gw = w.grad().clone();
  w.mutable_grad().zero_();
  (at::linear(x, w).sum() + at::linear(x * 2, w).sum()).backward();
  EXPECT_LT(max_diff(gw, w.grad()), 1e-3);
}

// OpenBLAS runs on one thread per call, the product split into 64-row (or column) bands of the
// output across the intra-op threads: with 1, 2 or 3 threads every band is computed, by rows
// and by columns, with a partial last band, forward and both backward products.
TEST(Gemm, BandsCoverTheOutputForAnyThreadCount) {
  if (cpu_gemm_backend().rfind("libtorch", 0) == 0) GTEST_SKIP() << "no blocked GEMM";
  torch::manual_seed(2);
  const int64_t R = big();
  const int threads = at::get_num_threads();
  struct Shape {
    int64_t rows, k, n;
  };
  for (int t : {1, 2, 3}) {
    at::set_num_threads(t);
    for (const auto& s : {Shape{3 * R + 17, 192, 130}, Shape{R, 256, 2048}, Shape{5 * R, 600, 70}}) {
      auto x0 = at::randn({s.rows, s.k}), w0 = at::randn({s.n, s.k}), g = at::randn({s.rows, s.n});
      auto run = [&](bool ours) {
        auto x = x0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true);
        auto y = ours ? cada::kernels::linear(x, w) : at::linear(x, w);
        (y * g).sum().backward();
        return std::array<at::Tensor, 3>{y.detach(), x.grad(), w.grad()};
      };
      const auto ours = run(true), ref = run(false);
      const double tol[3] = {1e-4 * std::sqrt(double(s.k)), 1e-4 * std::sqrt(double(s.n)), 1e-4 * std::sqrt(double(s.rows))};
      for (int i = 0; i < 3; ++i)
        EXPECT_LT(max_diff(ours[i], ref[i]), tol[i])
            << t << " threads, rows " << s.rows << ", k " << s.k << ", n " << s.n << ": output " << i;
    }
  }
  at::set_num_threads(threads);
}

// OpenBLAS's openblas_set_num_threads(1) also sets OpenMP's thread count; the blocked path must
// leave libtorch's intra-op thread count as it found it (else every later parallel op of the
// process runs on one thread). Checked in a fresh process (a death test re-runs the binary), where
// the blocked path's first call sets OpenBLAS up.
TEST(Gemm, LeavesTheIntraOpThreadCountAlone) {
  if (cpu_gemm_backend().rfind("libtorch", 0) == 0) GTEST_SKIP() << "no blocked GEMM";
  const int threads = at::get_num_threads();
  at::set_num_threads(3);
  const int team = cpu::parallel_team_size();
  at::set_num_threads(threads);
  if (team != 3) GTEST_SKIP() << "cada's kernels were built without OpenMP (a parallel team of " << team << ")";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        at::set_num_threads(3);
        at::Tensor y;
        const bool blocked = cpu::gemm_linear(at::randn({4 * big(), 64}), at::randn({96, 64}), {}, &y);
        const int team = cpu::parallel_team_size();
        std::fprintf(stderr, "blocked %d, intra-op threads %d, parallel team %d\n", int(blocked),
                     at::get_num_threads(), team);
        std::exit(blocked && at::get_num_threads() == 3 && team == 3 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

// Decoding shapes: every row count the skinny kernel takes up to 31 (its register tiles hold up
// to 4 rows and 4 outputs, so these and 1-9 outputs cover every tile shape and tail) and its
// largest, feature counts around the vector widths (8 floats AVX2, 16 AVX-512), weights large
// enough to be split across threads.
TEST(Gemm, SkinnyMatchesLibtorch) {
  if (libtorch_forced() || cpu_gemm_backend().find("skinny") == std::string::npos)
    GTEST_SKIP() << "no skinny kernel: " << cpu_gemm_backend();
  if (const char* isa = std::getenv("CADA_CPU_ISA"))  // the ctest entry for the AVX2 code
    EXPECT_NE(cpu_gemm_backend().find(std::string("skinny ") + isa), std::string::npos) << cpu_gemm_backend();
  torch::manual_seed(3);
  const int64_t top = cpu::skinny_max_rows();
  for (int64_t M : {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{4}, int64_t{5}, int64_t{7}, int64_t{8}, int64_t{15},
                    int64_t{16}, int64_t{31}, top}) {
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
  // More rows are the blocked GEMM's; no features is libtorch's.
  at::Tensor y;
  EXPECT_FALSE(cpu::skinny_linear(at::randn({top + 1, 8}), at::randn({5, 8}), {}, &y));
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
