#include "cada/kernels/cpu_features.h"

#include "cpu_isa.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif

namespace cada::kernels {

namespace {

const char* detect_bf16() {
  if (detail::cpu_isa() != detail::CpuIsa::kAvx512) return "";  // no AVX-512, or capped by CADA_CPU_ISA
#if defined(__x86_64__) && defined(__GNUC__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (d & (1u << 22))) return "amx-bf16";  // CPUID.7.0:EDX[22]
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5))) return "avx512-bf16";  // CPUID.7.1:EAX[5]
#endif
  return "";
}

}  // namespace

const char* cpu_bf16_name() {
  static const char* name = detect_bf16();
  return name;
}

}  // namespace cada::kernels
