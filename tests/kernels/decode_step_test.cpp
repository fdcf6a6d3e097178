// The fused decoding step of a decoder stack (decode_step.h) against the same step composed from
// the reference ops (RMSNorm, at::linear, rotary, ATen's attention, SwiGLU) on random weights:
// outputs and the keys / values written to the caches; every bias, grouped and plain heads,
// head and hidden sizes off the vector widths, padding masks, several steps; and the inputs for
// which it must decline (and write nothing).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "cada/kernels/decode_step.h"
#include "cada/kernels/fused.h"
#include "cada/kernels/gemm.h"
#include "cada/kernels/packed.h"
#include "../test_util.h"

using namespace cada::kernels;

namespace {

using cada::testing_util::max_diff;


struct Dims {
  int64_t B, C, H, Hk, D, F, layers;
  bool biases;
};

// A layer's plain weights (for the reference) and caches.
struct Layer {
  at::Tensor input_norm, qkv_weight, qkv_bias, o_weight, o_bias, post_norm, gate_up_weight, gate_up_bias, down_weight,
      down_bias, cache_k, cache_v;
};

std::vector<Layer> random_layers(const Dims& d, int64_t capacity) {
  std::vector<Layer> ls;
  const int64_t NQKV = (d.H + 2 * d.Hk) * d.D;
  auto opt_bias = [&](int64_t n) { return d.biases ? at::randn({n}) * 0.1 : at::Tensor(); };
  for (int64_t l = 0; l < d.layers; ++l) {
    Layer L;
    L.input_norm = 1 + at::randn({d.C}) * 0.1;
    L.qkv_weight = at::randn({NQKV, d.C}) / std::sqrt(static_cast<double>(d.C));
    L.qkv_bias = opt_bias(NQKV);
    L.o_weight = at::randn({d.C, d.H * d.D}) / std::sqrt(static_cast<double>(d.H * d.D));
    L.o_bias = opt_bias(d.C);
    L.post_norm = 1 + at::randn({d.C}) * 0.1;
    L.gate_up_weight = at::randn({2 * d.F, d.C}) / std::sqrt(static_cast<double>(d.C));
    L.gate_up_bias = opt_bias(2 * d.F);
    L.down_weight = at::randn({d.C, d.F}) / std::sqrt(static_cast<double>(d.F));
    L.down_bias = opt_bias(d.C);
    L.cache_k = at::randn({d.B, d.Hk, capacity, d.D});
    L.cache_v = at::randn({d.B, d.Hk, capacity, d.D});
    ls.push_back(L);
  }
  return ls;
}

// The fused step's view of the layers: packed weights (q/k/v and gate/up given as their parts,
// as the model packs them), the same caches.
std::vector<DecodeLayer> packed(const std::vector<Layer>& ls, const Dims& d) {
  std::vector<DecodeLayer> out;
  const int64_t NQ = d.H * d.D, NKV = d.Hk * d.D;
  for (const auto& L : ls) {
    DecodeLayer p;
    p.input_norm = L.input_norm;
    p.qkv = PackedWeight::pack(
        {L.qkv_weight.narrow(0, 0, NQ), L.qkv_weight.narrow(0, NQ, NKV), L.qkv_weight.narrow(0, NQ + NKV, NKV)});
    p.qkv_bias = L.qkv_bias;
    p.o = PackedWeight::pack({L.o_weight});
    p.o_bias = L.o_bias;
    p.post_norm = L.post_norm;
    p.gate_up = PackedWeight::pack({L.gate_up_weight.narrow(0, 0, d.F), L.gate_up_weight.narrow(0, d.F, d.F)});
    p.gate_up_bias = L.gate_up_bias;
    p.down = PackedWeight::pack({L.down_weight});
    p.down_bias = L.down_bias;
    p.cache_k = L.cache_k;
    p.cache_v = L.cache_v;
    out.push_back(p);
  }
  return out;
}

at::Tensor lin(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) { return at::linear(x, w, b); }

// The layer-by-layer step from the reference ops; writes the caches like the fused step.
at::Tensor reference_step(at::Tensor h, std::vector<Layer>& ls, const at::Tensor& cos, const at::Tensor& sin,
                          const at::Tensor& bias, const Dims& d, int64_t past) {
  const int64_t NQ = d.H * d.D, NKV = d.Hk * d.D;
  for (auto& L : ls) {
    auto qkv = lin(reference::rms_norm(h, L.input_norm, 1e-5), L.qkv_weight, L.qkv_bias);
    auto q = reference::rotary(qkv.narrow(-1, 0, NQ).reshape({d.B, 1, d.H, d.D}), cos, sin);
    auto k = reference::rotary(qkv.narrow(-1, NQ, NKV).reshape({d.B, 1, d.Hk, d.D}), cos, sin).transpose(1, 2);
    auto v = qkv.narrow(-1, NQ + NKV, NKV).reshape({d.B, 1, d.Hk, d.D}).transpose(1, 2);
    L.cache_k.narrow(2, past, 1).copy_(k);
    L.cache_v.narrow(2, past, 1).copy_(v);
    auto a = reference::decode_attention(q, L.cache_k.narrow(2, 0, past + 1), L.cache_v.narrow(2, 0, past + 1), bias);
    h = h + lin(a, L.o_weight, L.o_bias);
    auto gu = lin(reference::rms_norm(h, L.post_norm, 1e-5), L.gate_up_weight, L.gate_up_bias).chunk(2, -1);
    h = h + lin(reference::silu_mul(gu[0], gu[1]), L.down_weight, L.down_bias);
  }
  return h;
}

std::vector<Layer> clone_layers(const std::vector<Layer>& ls) {
  auto out = ls;
  for (auto& L : out) {
    L.cache_k = L.cache_k.clone();
    L.cache_v = L.cache_v.clone();
  }
  return out;
}

void rotary_tables(int64_t B, int64_t D, at::Tensor* cos, at::Tensor* sin) {
  auto ang = at::rand({B, 1, D / 2}) * 40;
  *cos = at::cat({ang, ang}, -1).cos();
  *sin = at::cat({ang, ang}, -1).sin();
}

}  // namespace

TEST(DecodeStep, MatchesLayerByLayerReference) {
  torch::manual_seed(11);
  const int64_t max_rows = cpu::skinny_max_rows();
  if (!decode_step_supported(1)) GTEST_SKIP() << "no vector ISA for the fused step";
  const std::vector<Dims> cases = {
      {1, 256, 4, 2, 64, 688, 2, false},   // the tiny preset's layer, GQA
      {5, 72, 3, 3, 24, 50, 2, true},      // every bias, plain heads, sizes off the vector widths
      {32, 128, 6, 2, 16, 100, 3, false},  // rep 3
      {std::min<int64_t>(max_rows, 40), 96, 2, 1, 128, 64, 1, true},  // head size 128, one kv head
  };
  for (const auto& d : cases) {
    for (int64_t past : {0, 1, 7, 33}) {
      for (int masking = 0; masking < 3; ++masking) {  // none, per row, shared by all rows
        SCOPED_TRACE("B=" + std::to_string(d.B) + " C=" + std::to_string(d.C) + " past=" + std::to_string(past) +
                     " masking=" + std::to_string(masking));
        const int64_t S = past + 1;
        auto layers = random_layers(d, S + 3);
        auto x = at::randn({d.B, 1, d.C});
        at::Tensor cos, sin, bias;
        rotary_tables(d.B, d.D, &cos, &sin);
        if (masking > 0) {
          auto hidden = at::rand({masking == 1 ? d.B : 1, 1, 1, S}) < 0.3;
          hidden.select(3, S - 1).fill_(false);  // the new token itself is always visible
          bias = at::zeros(hidden.sizes()).masked_fill_(hidden, -std::numeric_limits<float>::infinity());
        }
        auto ref_layers = clone_layers(layers);
        auto expected = [&] {
          torch::NoGradGuard ng;
          return reference_step(x, ref_layers, cos, sin, bias, d, past);
        }();
        c10::InferenceMode guard;
        DecodeStepShape shape{d.H, d.Hk, d.D, 1e-5, past};
        auto got = decode_step(x, packed(layers, d), cos, sin, bias, shape);
        ASSERT_TRUE(got.defined());
        EXPECT_LT(max_diff(got, expected), 2e-4);
        for (size_t l = 0; l < layers.size(); ++l) {
          EXPECT_LT(max_diff(layers[l].cache_k.narrow(2, 0, S), ref_layers[l].cache_k.narrow(2, 0, S)), 1e-4) << l;
          EXPECT_LT(max_diff(layers[l].cache_v.narrow(2, 0, S), ref_layers[l].cache_v.narrow(2, 0, S)), 1e-4) << l;
          // Positions after the new one are untouched.
          EXPECT_TRUE(at::equal(layers[l].cache_k.narrow(2, S, 3), ref_layers[l].cache_k.narrow(2, S, 3)));
        }
      }
    }
  }
}

// Several steps in a row, each appending to the caches, stay with the reference.
TEST(DecodeStep, ConsecutiveStepsFollowTheReference) {
  torch::manual_seed(5);
  if (!decode_step_supported(8)) GTEST_SKIP() << "no vector ISA for the fused step";
  const Dims d{8, 64, 4, 2, 16, 96, 2, true};
  auto layers = random_layers(d, 12);
  auto ref_layers = clone_layers(layers);
  auto h_fused = at::randn({d.B, 1, d.C}), h_ref = h_fused.clone();
  for (int64_t past = 0; past < 10; ++past) {
    at::Tensor cos, sin;
    rotary_tables(d.B, d.D, &cos, &sin);
    {
      torch::NoGradGuard ng;
      h_ref = reference::rms_norm(reference_step(h_ref, ref_layers, cos, sin, {}, d, past), at::ones({d.C}), 1e-5);
    }
    c10::InferenceMode guard;
    auto out = decode_step(h_fused, packed(layers, d), cos, sin, {}, DecodeStepShape{d.H, d.Hk, d.D, 1e-5, past});
    ASSERT_TRUE(out.defined());
    h_fused = rms_norm(out, at::ones({d.C}), 1e-5);
    EXPECT_LT(max_diff(h_fused, h_ref), 1e-4) << past;
  }
}

// Where the fused step does not apply it returns an undefined tensor and writes nothing.
TEST(DecodeStep, DeclinesWhatItCannotRun) {
  torch::manual_seed(2);
  const Dims d{3, 32, 2, 2, 8, 40, 1, false};
  auto raw = random_layers(d, 4);
  auto layers = packed(raw, d);
  const auto before = layers[0].cache_k.clone();
  auto x = at::randn({d.B, 1, d.C});
  at::Tensor cos, sin;
  rotary_tables(d.B, d.D, &cos, &sin);
  const DecodeStepShape shape{d.H, d.Hk, d.D, 1e-5, 2};
  EXPECT_FALSE(decode_step(x, layers, cos, sin, {}, shape).defined());  // not in inference mode
  c10::InferenceMode guard;
  EXPECT_FALSE(decode_step(x.to(at::kDouble), layers, cos, sin, {}, shape).defined());  // float64
  EXPECT_FALSE(decode_step(x.expand({d.B, 2, d.C}), layers, cos, sin, {}, shape).defined());  // two tokens
  auto too_far = shape;
  too_far.past = 4;  // the caches hold 4 positions
  EXPECT_FALSE(decode_step(x, layers, cos, sin, {}, too_far).defined());
  EXPECT_FALSE(decode_step(x, layers, cos, sin, at::zeros({d.B, 1, 1, 5}), shape).defined());  // mask length
  auto wrong = layers;
  wrong[0].o = PackedWeight::pack({at::randn({d.C + 1, d.H * d.D})});  // one output too many
  EXPECT_FALSE(decode_step(x, wrong, cos, sin, {}, shape).defined());
  wrong = layers;
  wrong[0].down = PackedWeight();  // missing
  EXPECT_FALSE(decode_step(x, wrong, cos, sin, {}, shape).defined());
  const int64_t too_many = cpu::skinny_max_rows() + 1;
  EXPECT_FALSE(decode_step_supported(too_many));
  EXPECT_TRUE(at::equal(layers[0].cache_k, before));
}
