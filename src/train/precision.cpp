#include "cada/train/precision.h"

#include "cada/kernels/cpu_features.h"
#include "cada/util/error.h"
#include "cada/util/log.h"

namespace cada::train {

Precision resolve_precision(const c10::Device& dev, bool bf16_autocast, const std::string& cpu_bf16) {
  CADA_CHECK(cpu_bf16 == "off" || cpu_bf16 == "auto" || cpu_bf16 == "on",
             "config: 'cpu_bf16' must be off, auto or on, got '", cpu_bf16, "'");
  Precision p;
  p.device = dev.type();
  if (dev.is_cuda()) {
    p.autocast = bf16_autocast;
    p.describe = p.autocast ? "bf16 autocast over float32 weights" : "float32";
    return p;
  }
  const std::string isa = kernels::cpu_bf16_name();
  if (cpu_bf16 == "on")
    CADA_CHECK(!isa.empty(), "config: 'cpu_bf16' is on but this CPU has no native bf16 instructions (AMX-BF16 or "
               "AVX512-BF16, or CADA_CPU_ISA caps them); use auto or off");
  if (cpu_bf16 == "auto" && isa.empty())
    CADA_INFO("cpu_bf16=auto: this CPU has no native bf16 instructions (AMX-BF16 / AVX512-BF16); training in float32");
  p.autocast = cpu_bf16 != "off" && !isa.empty();
  p.describe = p.autocast ? "bf16 autocast over float32 weights (" + isa + ")" : "float32";
  return p;
}

AutocastScope::AutocastScope(const Precision& p) : p_(p) {
  if (!p_.autocast) return;
  was_ = at::autocast::is_autocast_enabled(p_.device);
  at::autocast::set_autocast_enabled(p_.device, true);
  at::autocast::set_autocast_dtype(p_.device, at::kBFloat16);
}

AutocastScope::~AutocastScope() {
  if (!p_.autocast) return;
  at::autocast::set_autocast_enabled(p_.device, was_);
  if (!was_) at::autocast::clear_cache();
}

}  // namespace cada::train
