// Packed weights (packed.h) against at::linear: every tail of the 14-row tiles, the 32-output
// panels and the 256-deep K blocks, biases, 3-D inputs, concatenated parts; and the layouts'
// choice (panels with AVX-512, the plain matrix elsewhere).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "cada/kernels/gemm.h"
#include "cada/kernels/packed.h"

using namespace cada::kernels;

namespace {
double max_rel(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-6)).item<double>();
}
}  // namespace

TEST(Packed, MatchesLinearOnEveryTail) {
  torch::manual_seed(7);
  c10::InferenceMode guard;
  for (int64_t M : {1, 2, 13, 14, 15, 28, 32, 95, 131, 1000}) {
    for (int64_t K : {1, 15, 16, 17, 255, 256, 257, 700}) {
      for (int64_t N : {1, 31, 32, 33, 100}) {
        auto x = at::randn({M, K}), w = at::randn({N, K}), b = at::randn({N});
        auto p = PackedWeight::pack({w});
        ASSERT_TRUE(p.defined());
        EXPECT_EQ(p.out_features(), N);
        EXPECT_EQ(p.in_features(), K);
        EXPECT_LT(max_rel(linear(x, p), at::linear(x, w)), 1e-5) << M << " " << K << " " << N;
        EXPECT_LT(max_rel(linear(x, p, b), at::linear(x, w, b)), 1e-5) << M << " " << K << " " << N;
      }
    }
  }
}

TEST(Packed, ConcatenatedPartsAndShapes) {
  torch::manual_seed(8);
  c10::InferenceMode guard;
  auto q = at::randn({64, 48}), k = at::randn({16, 48}), v = at::randn({16, 48});
  auto p = PackedWeight::pack({q, k, v});
  EXPECT_EQ(p.out_features(), 96);
  auto x = at::randn({2, 9, 48});
  auto got = linear(x, p);
  EXPECT_EQ(got.sizes(), (std::vector<int64_t>{2, 9, 96}));
  EXPECT_LT(max_rel(got, at::linear(x, at::cat({q, k, v}, 0))), 1e-5);
  // A non-contiguous input is read correctly.
  auto xt = at::randn({48, 7}).t();
  EXPECT_LT(max_rel(linear(xt, p), at::linear(xt, at::cat({q, k, v}, 0))), 1e-5);
  // Different input sizes, another dtype: not packable.
  EXPECT_FALSE(PackedWeight::pack({q, at::randn({4, 47})}).defined());
  EXPECT_FALSE(PackedWeight::pack({q.to(at::kDouble)}).defined());
  EXPECT_THROW(linear(at::randn({3, 47}), p), std::exception);
}

TEST(Packed, LayoutFollowsTheCpuGemm) {
  auto p = PackedWeight::pack({at::randn({40, 20})});
  EXPECT_EQ(p.panels(), cpu_gemm_backend().rfind("cada avx512", 0) == 0);
  if (!p.panels()) EXPECT_EQ(p.data().sizes(), (std::vector<int64_t>{40, 20}));
}
