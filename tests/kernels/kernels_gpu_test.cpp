// CUDA kernels against their CPU references on random inputs (label gpu).
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cmath>

#include "cada/kernels/ops.h"

using namespace cada::kernels;

namespace {
bool have_gpu() { return cuda_kernels_available() && torch::cuda::is_available(); }
}  // namespace

TEST(KernelsGpu, SampleTokensMatchesCpu) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device or CUDA kernels in this build";
  at::manual_seed(11);
  const int64_t B = 512, V = 32000;
  auto logits = at::randn({B, V}) * 3;
  auto temp = at::rand({B}) + 0.3;
  temp.narrow(0, 0, 32).zero_();  // some greedy rows
  auto k = at::randint(0, 100, {B}, at::kLong);
  auto p = at::rand({B}) * 0.5 + 0.5;
  auto mp = at::rand({B}) * 0.1;
  auto u = at::rand({B});
  auto cpu = sample_tokens(logits, temp, k, p, mp, u);
  auto gpu = sample_tokens(logits.cuda(), temp.cuda(), k.cuda(), p.cuda(), mp.cuda(), u.cuda()).cpu();
  // Cumulative sums are summed in a different order on the GPU; a row may differ only when its
  // uniform number falls within float rounding of a bucket boundary, so allow a handful.
  int64_t diff = (cpu != gpu).sum().item<int64_t>();
  EXPECT_LE(diff, 2) << diff << " of " << B << " rows differ";
}

TEST(KernelsGpu, PlainSamplingKernelMatchesCpu) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device or CUDA kernels in this build";
  at::manual_seed(13);
  const int64_t B = 512;
  for (int64_t V : {1000, 151936}) {
    auto logits = at::randn({B, V}) * 3;
    auto temp = at::rand({B}) + 0.3;
    temp.narrow(0, 0, 32).zero_();  // greedy rows
    auto u = at::rand({B});
    auto zk = at::zeros({B}, at::kLong), op = at::ones({B}), zp = at::zeros({B});
    auto cpu = sample_tokens(logits, temp, zk, op, zp, u, SamplingKind::kPlain);
    for (auto dt : {at::kFloat, at::kBFloat16}) {
      auto x = logits.to(dt);
      auto want = dt == at::kFloat ? cpu : sample_tokens(x.to(at::kFloat), temp, zk, op, zp, u, SamplingKind::kPlain);
      auto gpu = sample_tokens(x.cuda(), temp.cuda(), zk.cuda(), op.cuda(), zp.cuda(), u.cuda(), SamplingKind::kPlain).cpu();
      EXPECT_TRUE(at::equal(gpu.narrow(0, 0, 32), x.to(at::kFloat).argmax(-1).narrow(0, 0, 32))) << "greedy rows";
      // Sums in another order: a row may differ only when its uniform is within rounding of a boundary.
      const int64_t diff = (want != gpu).sum().item<int64_t>();
      EXPECT_LE(diff, 2) << diff << " of " << B << " rows differ, V " << V << " " << c10::toString(dt);
    }
  }
}

TEST(KernelsGpu, LogSoftmaxGatherMatchesCpu) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device or CUDA kernels in this build";
  at::manual_seed(12);
  auto logits = at::randn({300, 50000}) * 5;
  auto t = at::randint(0, 50000, {300}, at::kLong);
  for (auto dt : {at::kFloat, at::kBFloat16, at::kHalf}) {
    auto x = logits.to(dt);
    auto cpu = logsoftmax_gather(x, t, 0.8);
    auto gpu = logsoftmax_gather(x.cuda(), t.cuda(), 0.8).cpu();
    EXPECT_LT((cpu - gpu).abs().max().item<double>(), 1e-3) << c10::toString(dt);
  }
}

TEST(KernelsGpu, GroupAdvantagesMatchCpu) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device or CUDA kernels in this build";
  auto r = at::rand({1024});
  for (bool scale : {true, false}) {
    auto cpu = group_advantages(r, 8, scale);
    auto gpu = group_advantages(r.cuda(), 8, scale).cpu();
    EXPECT_LT((cpu - gpu).abs().max().item<double>(), 1e-5);
  }
}

TEST(KernelsGpu, CounterUniformEqualsCpuBitwise) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device or CUDA kernels in this build";
  auto keys = at::randint(-(int64_t(1) << 62), int64_t(1) << 62, {100000}, at::kLong);
  auto counters = at::randint(0, 1 << 20, {100000}, at::kLong);
  auto cpu = counter_uniform(keys, counters);
  auto gpu = counter_uniform(keys.cuda(), counters.cuda()).cpu();
  EXPECT_TRUE(at::equal(cpu, gpu));
}

// Device sampling with device random numbers draws from the distribution the CPU reference
// defines: many rows of the same logits, counts against the kept, renormalised probabilities.
TEST(KernelsGpu, DeviceSamplersMatchTheReferenceDistribution) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device or CUDA kernels in this build";
  at::manual_seed(21);
  const int64_t N = 200000, V = 40;
  auto row = at::randn({V}) * 1.5;
  struct Case {
    SamplingKind kind;
    int64_t top_k;
    float top_p, min_p;
  };
  for (const Case& c : {Case{SamplingKind::kPlain, 0, 1.0f, 0.0f}, Case{SamplingKind::kTruncated, 12, 1.0f, 0.0f},
                        Case{SamplingKind::kTruncated, 0, 0.8f, 0.0f}, Case{SamplingKind::kTruncated, 0, 1.0f, 0.1f}}) {
    const float T = 0.8f;
    // Reference distribution: temperature, then the kept set as the CPU reference defines it.
    auto probs = at::softmax(row / T, -1);
    auto [sorted, idx] = probs.sort(true, -1, true);
    auto csum = sorted.cumsum(-1);
    int64_t m = V;
    if (c.top_k > 0) m = std::min(m, c.top_k);
    if (c.top_p < 1) m = std::min<int64_t>(m, (csum < c.top_p).sum().item<int64_t>() + 1);
    if (c.min_p > 0) m = std::min<int64_t>(m, (sorted >= c.min_p * sorted[0]).sum().item<int64_t>());
    auto want = at::zeros({V}, at::kDouble);
    auto kept = sorted.narrow(0, 0, m).to(at::kDouble);
    want.index_put_({idx.narrow(0, 0, m)}, kept / kept.sum());
    auto dev = at::kCUDA;
    auto logits = row.unsqueeze(0).expand({N, V}).contiguous().to(dev);
    auto keys = at::full({N}, stream_key(5, 0), at::TensorOptions().dtype(at::kLong).device(dev));
    auto u = counter_uniform(keys, at::arange(N, at::TensorOptions().dtype(at::kLong).device(dev)));
    auto tok = sample_tokens(logits, at::full({N}, T, dev), at::full({N}, c.top_k, at::TensorOptions().dtype(at::kLong).device(dev)),
                             at::full({N}, c.top_p, dev), at::full({N}, c.min_p, dev), u, c.kind)
                   .cpu();
    auto counts = at::bincount(tok, {}, V).to(at::kDouble);
    EXPECT_EQ(counts.masked_select(want == 0).sum().item<double>(), 0.0) << "a dropped token was sampled";
    auto keep = want > 0;
    auto e = want.masked_select(keep) * N, o = counts.masked_select(keep);
    const double chi2 = ((o - e).pow(2) / e).sum().item<double>();
    const double dof = static_cast<double>(keep.sum().item<int64_t>() - 1);
    // A generous bound (about p = 1e-4 for these degrees of freedom): dof + 6 sqrt(2 dof).
    EXPECT_LT(chi2, dof + 6 * std::sqrt(2 * dof) + 10) << "kind " << static_cast<int>(c.kind) << " k " << c.top_k
                                                         << " p " << c.top_p << " min_p " << c.min_p;
  }
}
