// CPU features the trainers ask about.
#pragma once

namespace cada::kernels {

// The native bf16 matrix instructions of this CPU, best first: "amx-bf16", "avx512-bf16", or ""
// when it has none. CADA_CPU_ISA=avx2 or off (the switch that caps cada's own kernels below
// AVX-512) also reports "", which forces the fp32 fallback for testing.
const char* cpu_bf16_name();
inline bool cpu_has_bf16() { return cpu_bf16_name()[0] != '\0'; }

}  // namespace cada::kernels
