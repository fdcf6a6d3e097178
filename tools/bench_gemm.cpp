// CPU float32 products of the transformer's Linear layers: libtorch's at::linear (the wheel's
// MKL) against cada's kernels::linear (skinny kernel, blocked AVX-512 GEMM or OpenBLAS, by row
// count and CPU: training and every product with autograd) and against the packed weights of
// inference (kernels::PackedWeight: generation), side by side on the same inputs, for decoding
// (M = batch) and prefill / training (M = batch x sequence) shapes of the 5M and 100M presets.
// Prints GFLOP/s for each and the ratios to libtorch.
//   build/bin/cada_bench_gemm [threads]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "cada/kernels/gemm.h"
#include "cada/kernels/packed.h"

namespace {
double seconds(const std::function<void()>& f) {
  f();
  int n = 0;
  auto t0 = std::chrono::steady_clock::now();
  double el = 0;
  do {
    f();
    ++n;
    el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (el < 0.2);
  return el / n;
}
}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  if (argc > 2 || (argc == 2 && (threads = std::atoi(argv[1])) <= 0)) {
    std::fprintf(stderr, "usage: %s [threads]   (threads: a positive number, default 2)\n", argv[0]);
    return 2;
  }
  at::set_num_threads(threads);
  c10::InferenceMode guard;
  std::printf("threads %d; cada: %s\n\n", at::get_num_threads(), cada::kernels::cpu_gemm_backend().c_str());
  std::printf("| M | K | N | libtorch GFLOP/s | cada linear GFLOP/s | cada packed GFLOP/s | linear / libtorch | packed / libtorch |\n"
              "|---|---|---|---|---|---|---|---|\n");
  const int64_t shapes[][3] = {{1, 256, 256},    {1, 256, 688},    {1, 688, 256},   {1, 256, 2048},   {4, 256, 688},    {8, 256, 688},
                               {16, 256, 256},   {16, 256, 688},   {16, 688, 256},  {16, 256, 2048},
                               {24, 256, 688},   {32, 256, 688},   {48, 256, 688},   {64, 256, 688},   {96, 256, 688},  {128, 256, 688}, {544, 256, 688},  {544, 688, 256}, {544, 256, 2048},
                               {1024, 256, 512}, {1024, 256, 1376}, {1024, 688, 256},
                               {1, 768, 2048},   {1, 768, 32000},  {8, 768, 2048},  {8, 768, 32000},  {16, 768, 2048},
                               {24, 768, 2048},  {32, 768, 2048},  {32, 768, 32000}, {64, 768, 2048},  {128, 768, 2048},
                               {1024, 768, 2048}, {1024, 2048, 768}};
  for (const auto& s : shapes) {
    auto x = at::randn({s[0], s[1]}), w = at::randn({s[2], s[1]});
    const double flop = 2.0 * s[0] * s[1] * s[2];
    const double a = seconds([&] { at::linear(x, w); });
    const double b = seconds([&] { cada::kernels::linear(x, w); });
    const auto packed = cada::kernels::PackedWeight::pack({w});
    const double c = seconds([&] { cada::kernels::linear(x, packed); });
    std::printf("| %ld | %ld | %ld | %.1f | %.1f | %.1f | %.2fx | %.2fx |\n", s[0], s[1], s[2], flop / a / 1e9, flop / b / 1e9,
                flop / c / 1e9, a / b, a / c);
  }
  return 0;
}
