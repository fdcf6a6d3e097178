// Row-level pieces of the fused CPU float32 kernels (fused.cpp, attention.cpp), shared with the
// fused decoding step (decode_step.cpp), which runs them inside its own parallel region. Each
// runs on the calling thread. Internal to the kernels layer.
#pragma once

#include <cstdint>

namespace cada::kernels::detail {

// o (C) = w * (x * rsqrt(mean(x^2) + eps)), Llama's RMSNorm of one row.
void rms_norm_row(const float* x, const float* w, float* o, int64_t C, float eps);

// One head vector (D, even) rotated: o = x * cos + rotate_half(x) * sin; o may be x.
void rotary_row(const float* x, const float* cos, const float* sin, float* o, int64_t D);

// o (n) = silu(g) * u, vector code for the CPU's ISA.
using silu_mul_fn = void (*)(const float* g, const float* u, float* o, int64_t n);
silu_mul_fn silu_mul_kernel();

// The decode-step attention of one sequence's kv head and its `rep` query heads: q (rep, D),
// keys / values (S, D) with row strides ks / vs, bias (S) additive or null; out (rep, D);
// scores (rep, S) scratch. Null when no vector ISA is available (callers use the reference).
using head_group_fn = void (*)(const float* q, const float* K, int64_t ks, const float* V, int64_t vs,
                               const float* bias, int64_t S, int64_t D, int64_t rep, float scale, float* out,
                               float* scores);
head_group_fn decode_head_group();

}  // namespace cada::kernels::detail
