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

// Attention of one new token per sequence (a decoding step) against the keys and values so far:
// q (B, 1, H, D) in the projection's layout, k and v (B, Hk, S, D) in the KV cache's layout (a
// view of the first S positions of a larger cache is fine), bias additive (B or 1, 1, 1, S) or
// undefined (every key visible). Query head h reads kv head h / (H / Hk) (grouped-query
// attention). Returns (B, 1, H * D) = softmax(q k^T / sqrt(D) + bias) v, heads concatenated.
// The fused path (one pass per sequence and kv head, vector code for AVX-512 / AVX2) runs in
// inference mode on CPU float32; the reference is ATen's scaled_dot_product_attention.
at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias);

namespace reference {
at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias);
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);
at::Tensor rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);
at::Tensor silu_mul(const at::Tensor& gate, const at::Tensor& up);
}  // namespace reference

}  // namespace cada::kernels
