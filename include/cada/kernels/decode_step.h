// One decoding step (one new token per sequence) through a whole stack of Llama-family decoder
// layers, on CPU float32, as one call: a single parallel region whose threads split each of six
// phases per layer (RMSNorm + the q/k/v product; rotary + KV-cache write + attention; the output
// product into the residual; RMSNorm + the gate/up product; SwiGLU; the down product into the
// residual) and meet at a barrier between phases. Decoding a batch of sequences with a small
// model costs more in ATen's per-op dispatch, allocation and thread fork/join (about 20 calls per
// layer) than in arithmetic; this step makes none of them. It computes what the layer-by-layer
// forward computes with the fused kernels of fused.h and the packed products of packed.h
// (tests/kernels/decode_step_test.cpp).
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "cada/kernels/packed.h"

namespace cada::kernels {

// One decoder layer's weights (packed.h; biases may be undefined) and its KV cache. The q/k/v and
// gate/up projections come packed as one weight each, concatenated along their outputs:
// [q (H*D); k (Hk*D); v (Hk*D)] and [gate (F); up (F)].
struct DecodeLayer {
  at::Tensor input_norm;               // (C)
  PackedWeight qkv;                    // (H*D + 2*Hk*D, C)
  at::Tensor qkv_bias;
  PackedWeight o;                      // (C, H*D)
  at::Tensor o_bias;
  at::Tensor post_norm;                // (C)
  PackedWeight gate_up;                // (2F, C)
  at::Tensor gate_up_bias;
  PackedWeight down;                   // (C, F)
  at::Tensor down_bias;
  at::Tensor cache_k, cache_v;         // (B, Hk, capacity, D) contiguous
};

struct DecodeStepShape {
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
  double rms_norm_eps = 1e-6;
  int64_t past = 0;  // positions already in the caches; the step writes position `past`
};

// Whether decode_step can run B sequences here: a vector ISA (cpu_isa.h) and B no more than
// cpu::skinny_max_rows() (gemm.h).
bool decode_step_supported(int64_t B);

// x (B, 1, C): the embedded new tokens; cos / sin (B, 1, D) their rotary tables; bias additive
// (B or 1, 1, 1, past + 1) or undefined (every key visible). Writes each layer's key and value
// at position `past` of its cache and returns the last layer's output (B, 1, C), before the
// final norm. Returns an undefined tensor, having written nothing, when the step does not apply
// (not in inference mode, not all CPU float32 and contiguous, shapes, packed weights of another
// layout than the step's products take, !decode_step_supported(B));
// the caller then runs the layers one by one.
at::Tensor decode_step(const at::Tensor& x, const std::vector<DecodeLayer>& layers, const at::Tensor& cos,
                       const at::Tensor& sin, const at::Tensor& bias, const DecodeStepShape& shape);

}  // namespace cada::kernels
