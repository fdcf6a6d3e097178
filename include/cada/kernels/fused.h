// The decoder's small element-wise steps, each one function: a fused single-pass CPU float32
// loop for inference, and the composite ATen expression (the reference, and what runs with
// autograd, on CUDA and in other dtypes). Decoding a few sequences on CPU costs more in ATen's
// per-op dispatch than in arithmetic, so one dispatch instead of 4-12 per step matters there.
// The fused path is taken in inference mode (c10::InferenceMode: generation) when every input
// is a CPU float32 tensor; tests/kernels/fused_test.cpp compares it with the reference. The
// trainers' no-grad forwards (reference and old log-probs) keep the composite ops, so they
// compute exactly what the policy's forward with autograd computes.
#pragma once

#include <ATen/ATen.h>

namespace cada::kernels {

// RMSNorm as Llama: weight * (x * rsqrt(mean(x^2, -1) + eps)), the statistics in float32.
// x (..., C), weight (C).
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

// Rotary embedding (rotate-half form) of x (B, T, H, D) with cos/sin (B, T, D):
// x * cos + rotate_half(x) * sin, rotate_half(x) = cat(-x[..., D/2:], x[..., :D/2]).
at::Tensor rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// silu(gate) * up, the SwiGLU product of the MLP. gate and up of equal shape.
at::Tensor silu_mul(const at::Tensor& gate, const at::Tensor& up);

namespace reference {
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);
at::Tensor rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);
at::Tensor silu_mul(const at::Tensor& gate, const at::Tensor& up);
}  // namespace reference

}  // namespace cada::kernels
