// The fused CPU inference kernels (RMSNorm, rotary embedding, SwiGLU product) against their
// composite ATen references on random inputs, and the cases that must take the reference
// (gradients needed, other dtypes).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "cada/kernels/fused.h"
#include "../test_util.h"

using namespace cada::kernels;

namespace {

using cada::testing_util::max_diff;
}  // namespace

TEST(Fused, MatchesReferenceInInference) {
  torch::manual_seed(3);
  c10::InferenceMode guard;
  for (int64_t rows : {1, 7, 300}) {  // 300 x 256 spreads over threads
    auto x = at::randn({rows, 256}) * 3, w = at::randn({256});
    EXPECT_LT(max_diff(rms_norm(x, w, 1e-6), reference::rms_norm(x, w, 1e-6)), 2e-5) << rows;
    auto x3 = at::randn({2, rows, 256});
    EXPECT_LT(max_diff(rms_norm(x3, w, 1e-5), reference::rms_norm(x3, w, 1e-5)), 2e-5) << rows;
    auto g = at::randn({rows, 688}) * 4, u = at::randn({rows, 688});
    EXPECT_LT(max_diff(silu_mul(g, u), reference::silu_mul(g, u)), 1e-5) << rows;
  }
  for (int64_t T : {1, 5, 64}) {
    auto x = at::randn({3, T, 4, 32});
    auto ang = at::rand({3, T, 16}) * 50;
    auto cos = at::cat({ang, ang}, -1).cos(), sin = at::cat({ang, ang}, -1).sin();
    auto out = rotary(x, cos, sin);
    EXPECT_LT(max_diff(out, reference::rotary(x, cos, sin)), 1e-5) << T;
    // A rotation keeps each pair's norm.
    auto n0 = x.narrow(-1, 0, 16).pow(2) + x.narrow(-1, 16, 16).pow(2);
    auto n1 = out.narrow(-1, 0, 16).pow(2) + out.narrow(-1, 16, 16).pow(2);
    EXPECT_LT(max_diff(n0, n1), 1e-4);
    // A non-contiguous input (a transposed view) gives the same numbers.
    auto xt = x.transpose(1, 2).contiguous().transpose(1, 2);
    EXPECT_LT(max_diff(rotary(xt, cos, sin), out), 1e-6);
  }
}

TEST(Fused, GradientsGoThroughTheReference) {
  torch::manual_seed(4);
  auto x = at::randn({5, 16}).requires_grad_(true), w = at::randn({16}).requires_grad_(true);
  auto y = rms_norm(x, w, 1e-6);
  ASSERT_TRUE(y.requires_grad());
  y.pow(2).sum().backward();
  auto gx = x.grad().clone(), gw = w.grad().clone();
  x.mutable_grad().zero_();
  w.mutable_grad().zero_();
  reference::rms_norm(x, w, 1e-6).pow(2).sum().backward();
  EXPECT_LT(max_diff(gx, x.grad()), 1e-6);
  EXPECT_LT(max_diff(gw, w.grad()), 1e-6);

  auto q = at::randn({2, 3, 2, 8}).requires_grad_(true);
  auto c = at::rand({2, 3, 8}), s = at::rand({2, 3, 8});
  EXPECT_TRUE(rotary(q, c, s).requires_grad());
  auto g = at::randn({4, 6}).requires_grad_(true), u = at::randn({4, 6});
  EXPECT_TRUE(silu_mul(g, u).requires_grad());
  // Under no-grad (the trainers' reference and old log-probs) the reference runs: bitwise the
  // numbers of the forward with autograd.
  {
    torch::NoGradGuard ng;
    auto xn = at::randn({3, 64}), wn = at::randn({64});
    EXPECT_TRUE(at::equal(rms_norm(xn, wn, 1e-6), reference::rms_norm(xn, wn, 1e-6)));
  }
  // bf16 takes the reference too (no fused loop for it).
  c10::InferenceMode guard;
  auto xb = at::randn({4, 16}).to(at::kBFloat16), wb = at::randn({16}).to(at::kBFloat16);
  EXPECT_EQ(rms_norm(xb, wb, 1e-6).scalar_type(), at::kBFloat16);
}

// The decode-step attention against ATen's scaled_dot_product_attention: multi-head and grouped
// heads (1 to 6 query heads per kv head), head sizes that leave vector tails, one key to hundreds, a padding mask per sequence
// (and one shared by the batch), keys and values read in place from a larger cache.
TEST(Fused, DecodeAttentionMatchesReference) {
  torch::manual_seed(5);
  c10::InferenceMode guard;
  const float ninf = -std::numeric_limits<float>::infinity();
  for (auto [H, Hk] : {std::pair<int64_t, int64_t>{4, 4}, {4, 2}, {6, 1}, {8, 2}, {3, 1}}) {
    for (int64_t D : {64, 128, 20, 16, 3}) {
      for (int64_t S : {1, 4, 7, 300}) {
        const int64_t B = 3, cap = S + 5;
        auto q = at::randn({B, 1, H, D});
        auto kc = at::randn({B, Hk, cap, D}), vc = at::randn({B, Hk, cap, D});
        auto k = kc.narrow(2, 0, S), v = vc.narrow(2, 0, S);
        auto hidden = at::rand({B, 1, 1, S}) < 0.3;
        hidden.select(3, S - 1).fill_(false);  // the new token itself is always visible
        auto bias = at::zeros({B, 1, 1, S}).masked_fill_(hidden, ninf);
        for (const auto& b : {at::Tensor(), bias, bias.narrow(0, 0, 1)}) {
          auto out = decode_attention(q, k, v, b);
          auto ref = reference::decode_attention(q, k, v, b);
          ASSERT_EQ(out.sizes(), (std::vector<int64_t>{B, 1, H * D}));
          EXPECT_LT(max_diff(out, ref), 2e-5) << H << "/" << Hk << " D " << D << " S " << S << " bias " << b.defined();
        }
      }
    }
  }
}

// The vectorised SwiGLU product (its exp) on lengths with vector tails and on extreme inputs.
TEST(Fused, SiluMulTailsAndExtremes) {
  torch::manual_seed(7);
  c10::InferenceMode guard;
  for (int64_t n : {1, 7, 15, 17, 33, 1001}) {
    auto g = at::randn({n}) * 6, u = at::randn({n});
    auto out = silu_mul(g, u), ref = reference::silu_mul(g, u);
    EXPECT_LT(((out - ref).abs() / (ref.abs() + 1e-6)).max().item<double>(), 1e-5) << n;
  }
  auto g = at::tensor({-1000.f, -100.f, -88.f, -20.f, -1e-3f, 0.f, 1e-3f, 20.f, 88.f, 100.f, 1000.f, 3.f, -3.f, 5.f, -5.f, 0.5f,
                       -0.5f});
  auto u = at::ones_like(g);
  auto out = silu_mul(g, u), ref = reference::silu_mul(g, u);
  EXPECT_TRUE(at::isfinite(out).all().item<bool>());
  EXPECT_LT((out - ref).abs().max().item<double>(), 1e-4) << out << ref;
  // The two halves of one fused gate/up product are read in place; a transposed view is copied.
  auto gu = at::randn({3, 5, 2 * 37});
  auto halves = gu.chunk(2, -1);
  EXPECT_LT(max_diff(silu_mul(halves[0], halves[1]), reference::silu_mul(halves[0], halves[1])), 1e-5);
  auto gt = at::randn({37, 6}).t(), ut = at::randn({6, 37});
  EXPECT_LT(max_diff(silu_mul(gt, ut), reference::silu_mul(gt, ut)), 1e-5);
}

TEST(Fused, DecodeAttentionOutsideInferenceIsTheReference) {
  torch::manual_seed(6);
  auto q = at::randn({2, 1, 4, 8}), k = at::randn({2, 2, 5, 8}), v = at::randn({2, 2, 5, 8});
  EXPECT_TRUE(at::equal(decode_attention(q, k, v, {}), reference::decode_attention(q, k, v, {})));
  // Double precision takes the reference too, in inference mode.
  c10::InferenceMode guard;
  auto qd = q.to(at::kDouble), kd = k.to(at::kDouble), vd = v.to(at::kDouble);
  EXPECT_TRUE(at::equal(decode_attention(qd, kd, vd, {}), reference::decode_attention(qd, kd, vd, {})));
}
