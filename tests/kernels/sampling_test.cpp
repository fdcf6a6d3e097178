// CPU kernels: the sampler against an independently computed truncated distribution
// (chi-square goodness of fit with fixed seeds), greedy, reproducibility, log-softmax gather,
// group advantages against their definitions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "cada/kernels/ops.h"
#include "cada/util/error.h"

using namespace cada::kernels;

namespace {

// The truncated distribution by direct definition (double precision, loops), independent of
// the prefix/search formulation in the kernel: temperature, top-k, top-p, min-p in HF order.
std::vector<double> truncated(const std::vector<float>& logits, double T, int64_t k, double p, double minp) {
  const size_t V = logits.size();
  std::vector<double> pr(V);
  double mx = *std::max_element(logits.begin(), logits.end());
  double z = 0;
  for (size_t i = 0; i < V; ++i) z += pr[i] = std::exp((logits[i] - mx) / T);
  for (auto& x : pr) x /= z;
  std::vector<size_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return pr[a] > pr[b]; });
  std::vector<bool> keep(V, true);
  if (k > 0)
    for (size_t r = k; r < V; ++r) keep[order[r]] = false;
  double zk = 0;
  for (size_t i = 0; i < V; ++i) zk += keep[i] ? pr[i] : 0;
  double above = 0;  // mass ranked strictly above, renormalised over the top-k set
  for (size_t r = 0; r < V; ++r) {
    size_t i = order[r];
    if (!keep[i]) continue;
    if (above / zk >= p) keep[i] = false;
    above += pr[i];
  }
  double top = pr[order[0]];
  for (size_t i = 0; i < V; ++i)
    if (pr[i] < minp * top) keep[i] = false;
  double zz = 0;
  for (size_t i = 0; i < V; ++i) zz += keep[i] ? pr[i] : 0;
  std::vector<double> out(V);
  for (size_t i = 0; i < V; ++i) out[i] = keep[i] ? pr[i] / zz : 0;
  return out;
}

// Upper 0.999 quantile of chi-square with df degrees of freedom (Wilson-Hilferty).
double chi2_crit(int df) {
  const double z = 3.090232;
  double a = 2.0 / (9.0 * df);
  return df * std::pow(1 - a + z * std::sqrt(a), 3);
}

struct Case {
  double T;
  int64_t k;
  double p, minp;
};

}  // namespace

TEST(Sampler, EmpiricalDistributionMatchesTruncatedDistribution) {
  at::manual_seed(1);
  const int64_t V = 12, N = 60000;
  std::mt19937 gen(7);
  std::normal_distribution<float> nd(0.f, 1.5f);
  std::vector<float> row(V);
  for (auto& x : row) x = nd(gen);
  for (const Case c : {Case{1.0, 0, 1.0, 0.0}, Case{0.7, 5, 1.0, 0.0}, Case{1.0, 0, 0.8, 0.0},
                       Case{1.3, 0, 1.0, 0.15}, Case{0.9, 8, 0.9, 0.05}}) {
    auto logits = at::tensor(row).unsqueeze(0).expand({N, V}).contiguous();
    auto u = at::rand({N}, at::TensorOptions().dtype(at::kFloat)).contiguous();
    auto tokens = sample_tokens(logits, at::full({N}, (float)c.T), at::full({N}, c.k, at::kLong),
                                at::full({N}, (float)c.p), at::full({N}, (float)c.minp), u);
    auto want = truncated(row, c.T, c.k, c.p, c.minp);
    std::vector<int64_t> counts(V, 0);
    auto acc = tokens.accessor<int64_t, 1>();
    for (int64_t i = 0; i < N; ++i) counts[acc[i]]++;
    double chi2 = 0;
    int df = -1;
    for (int64_t v = 0; v < V; ++v) {
      if (want[v] == 0) {
        EXPECT_EQ(counts[v], 0) << "token " << v << " must be truncated (T=" << c.T << " k=" << c.k << " p=" << c.p
                                << " min_p=" << c.minp << ")";
        continue;
      }
      double e = want[v] * N;
      chi2 += (counts[v] - e) * (counts[v] - e) / e;
      ++df;
    }
    ASSERT_GT(df, 0);
    EXPECT_LT(chi2, chi2_crit(df)) << "chi2=" << chi2 << " df=" << df << " (T=" << c.T << " k=" << c.k
                                   << " p=" << c.p << " min_p=" << c.minp << ")";
  }
}

TEST(Sampler, GreedyAndReproducible) {
  at::manual_seed(3);
  auto logits = at::randn({16, 50});
  auto u = at::rand({16});
  auto ones = at::ones({16}), zeros = at::zeros({16});
  auto k0 = at::zeros({16}, at::kLong);
  auto greedy = sample_tokens(logits, zeros, k0, ones, zeros, u);
  EXPECT_TRUE(at::equal(greedy, logits.argmax(-1)));
  auto a = sample_tokens(logits, ones, k0, ones * 0.9, zeros, u);
  auto b = sample_tokens(logits, ones, k0, ones * 0.9, zeros, u);
  EXPECT_TRUE(at::equal(a, b));
  // top_k = 1 is greedy whatever the temperature.
  EXPECT_TRUE(at::equal(sample_tokens(logits, ones * 2, at::ones({16}, at::kLong), ones, zeros, u), greedy));
  EXPECT_THROW(sample_tokens(logits, ones, k0, ones, zeros, at::rand({3})), cada::Error);
}

TEST(LogSoftmaxGather, MatchesDefinitionAcrossDtypes) {
  at::manual_seed(4);
  auto logits = at::randn({37, 1001}) * 4;
  auto t = at::randint(0, 1001, {37}, at::kLong);
  for (double T : {1.0, 0.7}) {
    auto want = at::log_softmax(logits / T, -1).gather(1, t.unsqueeze(1)).squeeze(1);
    EXPECT_LT((logsoftmax_gather(logits, t, T) - want).abs().max().item<double>(), 1e-5);
  }
  auto bf = logits.to(at::kBFloat16);
  auto want_bf = at::log_softmax(bf.to(at::kFloat), -1).gather(1, t.unsqueeze(1)).squeeze(1);
  EXPECT_LT((logsoftmax_gather(bf, t, 1.0) - want_bf).abs().max().item<double>(), 1e-4);
}

TEST(GroupAdvantages, ZScoreWithinGroupsAndValidation) {
  auto r = at::tensor({1.f, 0.f, 0.f, 1.f, 2.f, 2.f, 2.f, 2.f});
  auto a = group_advantages(r, 4, true, 1e-4);
  // Group 1: mean 0.5, std (unbiased) = sqrt(1/3).
  EXPECT_NEAR(a[0].item<float>(), 0.5 / (std::sqrt(1.0 / 3) + 1e-4), 1e-5);
  EXPECT_NEAR(a[1].item<float>(), -0.5 / (std::sqrt(1.0 / 3) + 1e-4), 1e-5);
  for (int i = 4; i < 8; ++i) EXPECT_EQ(a[i].item<float>(), 0.f);  // zero-variance group
  auto d = group_advantages(r, 4, false);
  EXPECT_NEAR(d[0].item<float>(), 0.5, 1e-6);
  EXPECT_THROW(group_advantages(r, 3, true), cada::Error);
  EXPECT_THROW(group_advantages(r, 1, true), cada::Error);
}

TEST(RepetitionPenalty, HfSemantics) {
  at::Tensor logits = at::tensor({2.f, -2.f, 1.f}).view({1, 3});
  at::Tensor seen = at::tensor({1.f, 1.f, 0.f}).view({1, 3}).to(at::kBool);
  apply_repetition_penalty_(logits, seen, at::tensor({2.f}));
  EXPECT_FLOAT_EQ(logits[0][0].item<float>(), 1.f);
  EXPECT_FLOAT_EQ(logits[0][1].item<float>(), -4.f);
  EXPECT_FLOAT_EQ(logits[0][2].item<float>(), 1.f);
}

TEST(CounterUniform, DeterministicUniformAndIndependentStreams) {
  const int64_t N = 200000;
  auto keys = at::full({N}, cada::kernels::stream_key(7, 0), at::kLong);
  auto counters = at::arange(N, at::kLong);
  auto u = cada::kernels::counter_uniform(keys, counters);
  EXPECT_TRUE(at::equal(u, cada::kernels::counter_uniform(keys, counters)));
  EXPECT_GE(u.min().item<float>(), 0.0f);
  EXPECT_LT(u.max().item<float>(), 1.0f);
  // 20 equal bins: chi-square with 19 degrees of freedom (p = 0.001 at 43.8).
  auto counts = at::histc(u, 20, 0, 1);
  const double expected = static_cast<double>(N) / 20;
  double chi2 = ((counts - expected).pow(2) / expected).sum().item<double>();
  EXPECT_LT(chi2, 43.8);
  // Neighbouring streams are uncorrelated.
  auto v = cada::kernels::counter_uniform(at::full({N}, cada::kernels::stream_key(7, 1), at::kLong), counters);
  double corr = ((u - 0.5) * (v - 0.5)).mean().item<double>() / (1.0 / 12);
  EXPECT_LT(std::abs(corr), 0.01);
  // The host function gives the tensor function's numbers.
  EXPECT_EQ(cada::kernels::counter_uniform(cada::kernels::stream_key(7, 0), 12345), u[12345].item<float>());
}

TEST(SampleTokens, KnownKindEqualsInspectedKind) {
  at::manual_seed(3);
  const int64_t B = 64, V = 300;
  auto logits = at::randn({B, V}) * 2;
  auto u = at::rand({B});
  auto zero_k = at::zeros({B}, at::kLong), one_p = at::ones({B}), zero_minp = at::zeros({B});
  auto temp = at::rand({B}) + 0.2;
  using cada::kernels::SamplingKind;
  EXPECT_TRUE(at::equal(cada::kernels::sample_tokens(logits, temp, zero_k, one_p, zero_minp, u),
                        cada::kernels::sample_tokens(logits, temp, zero_k, one_p, zero_minp, u, SamplingKind::kPlain)));
  // The truncating path with no truncation samples the same distribution; with greedy rows too.
  auto greedy = at::zeros({B});
  EXPECT_TRUE(at::equal(cada::kernels::sample_tokens(logits, greedy, zero_k, one_p, zero_minp, u, SamplingKind::kTruncated),
                        logits.argmax(-1)));
  EXPECT_TRUE(at::equal(cada::kernels::sample_tokens(logits, greedy, zero_k, one_p, zero_minp, u, SamplingKind::kGreedy),
                        logits.argmax(-1)));
}
