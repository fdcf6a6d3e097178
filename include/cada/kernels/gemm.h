// The matrix products of every Linear layer and the LM head: y = x W^T (+ b).
//
// On CPU in float32, by row count (rows = tokens in the batch):
//   - up to cpu::skinny_max_rows() rows (decoding, short batches): cada's skinny kernel, which
//     streams each weight once per call across the intra-op threads (AVX-512 or AVX2+FMA);
//   - more rows (training, prefill): on CPUs with AVX-512, cada's own blocked GEMM (packed
//     panels, 14 x 32 register tiles); elsewhere OpenBLAS's OpenMP build when it can be loaded at
//     run time (dlopen; the pthreads build keeps its own spinning threads that fight libtorch's
//     for the cores), one OpenBLAS thread per call on 64-row or -column bands of the output
//     split across libtorch's intra-op threads.
// The PyPI libtorch wheel multiplies with MKL, whose float32 kernels on AMD CPUs use AVX2 only
// (docs/benchmarks/gemm_cpu.md). Everything else (CUDA, bf16, autocast, CPUs without AVX2 and
// no OpenBLAS) is at::linear. Differentiable: the backward products (dx = dy W, dW = dy^T x)
// run on the blocked GEMM.
//
// Environment:
//   CADA_CPU_GEMM=libtorch   use libtorch's GEMM on CPU too (none of the paths above)
//   CADA_CPU_ISA=avx2|off    the widest vector code of cada's own CPU kernels (skinny and
//                            blocked GEMM, decode attention; default: the CPU's best of avx512,
//                            avx2); avx2 leaves the larger products to OpenBLAS, off leaves all
//                            of their work to OpenBLAS / libtorch
//   CADA_OPENBLAS=PATH       the OpenBLAS OpenMP library to load (default: Debian's
//                            openblas-openmp, then whichever libopenblas.so.0 the loader finds)
//   OPENBLAS_CORETYPE        OpenBLAS's kernel choice, respected when set; when unset on an AMD
//                            CPU with AVX-512, cada sets SKYLAKEX (OpenBLAS before 0.3.23 does
//                            not know these CPUs and falls back to AVX2 kernels)
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace cada::kernels {

// x (..., K), weight (N, K), bias (N) or undefined -> (..., N).
at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = {});

// What CPU float32 products run on in this process: "cada avx512", "openblas (<core>)" or
// "libtorch" for the larger products, followed by " + skinny <isa>" when the skinny kernel takes
// the fewer-row ones.
std::string cpu_gemm_backend();

namespace cpu {
// The blocked-GEMM path itself (cada's AVX-512 GEMM or OpenBLAS; forward only, no autograd);
// false when neither is in use or the inputs are not CPU float32 with more than
// skinny_max_rows() rows. For tests comparing it with at::linear.
bool gemm_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, at::Tensor* out);
// The skinny kernel itself (forward only); false when the inputs are not CPU float32 with
// 1..skinny_max_rows() rows.
bool skinny_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, at::Tensor* out);
// The most rows the skinny kernel takes on this CPU (95 with AVX-512, 47 with AVX2; 0 without).
int64_t skinny_max_rows();
// How many threads an at::parallel_for region of cada's kernels runs on now (1 where the kernels
// were built without OpenMP). For tests that a call leaves libtorch's intra-op setting alone.
int parallel_team_size();
}  // namespace cpu

}  // namespace cada::kernels
