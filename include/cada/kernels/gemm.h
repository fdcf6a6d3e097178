// The matrix products of every Linear layer and the LM head: y = x W^T (+ b).
//
// On CPU in float32 the products run on OpenBLAS when its OpenMP build can be loaded at run time
// (looked up with dlopen, so a build machine without it, or a GPU node, simply uses libtorch).
// Only the OpenMP build is taken: it shares libtorch's OpenMP threads, while the pthreads build
// keeps its own spinning threads that fight libtorch's for the cores. The PyPI libtorch wheel
// multiplies with MKL, whose float32 kernels run far below the machine's peak on AMD CPUs
// (docs/benchmarks/gemm_cpu.md). Products with fewer than 16 rows (decoding a few sequences)
// run on cada's own skinny kernel (AVX-512 or AVX2+FMA, chosen from the CPU's features), which
// streams each weight once across the intra-op threads. Everything else (CUDA, bf16, autocast,
// CPUs without AVX2 and no OpenBLAS) is at::linear.
// Differentiable: the backward products (dx = dy W, dW = dy^T x) run on the same backend.
//
// Environment:
//   CADA_CPU_GEMM=libtorch   use libtorch's GEMM on CPU too (neither OpenBLAS nor the skinny kernel)
//   CADA_CPU_ISA=avx2|off    the widest vector code of cada's own CPU kernels (the skinny GEMM,
//                            the decode attention; default: the CPU's best of avx512, avx2);
//                            off leaves their work to libtorch
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

// What CPU float32 products run on in this process: "openblas (<core>)" or "libtorch" for 16 rows
// and more, followed by " + skinny <isa>" when the skinny kernel takes the fewer-row products.
std::string cpu_gemm_backend();

namespace cpu {
// The OpenBLAS path itself (forward only, no autograd); false when OpenBLAS is not in use or
// the inputs are not CPU float32. For tests comparing it with at::linear.
bool openblas_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, at::Tensor* out);
// The skinny kernel itself (forward only); false when the inputs are not CPU float32 with 1-15
// rows, or the CPU lacks AVX2.
bool skinny_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, at::Tensor* out);
}  // namespace cpu

}  // namespace cada::kernels
