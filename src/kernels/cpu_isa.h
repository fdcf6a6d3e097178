// The widest x86 vector code cada's own CPU kernels (skinny.h, the decode attention) use: the
// best the CPU has of AVX-512 and AVX2+FMA, capped by CADA_CPU_ISA (avx512 | avx2 | off; off
// leaves their work to libtorch). Internal to the kernels layer.
#pragma once

namespace cada::kernels::detail {

enum class CpuIsa { kNone, kAvx2, kAvx512 };

CpuIsa cpu_isa();

// "avx512", "avx2" or "".
const char* cpu_isa_name();

}  // namespace cada::kernels::detail
