#include "cada/model/checkpointing.h"

#include <ATen/autocast_mode.h>
#include <ATen/core/Generator.h>
#include <torch/csrc/autograd/autograd.h>

#include <array>

#include "cada/model/transformer.h"

namespace cada::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Autocast as the first run saw it, per device type that cada trains on.
struct AutocastState {
  std::array<bool, 2> on{};
  std::array<at::ScalarType, 2> dtype{};
  static constexpr std::array<c10::DeviceType, 2> kTypes{c10::kCPU, c10::kCUDA};

  static AutocastState capture() {
    AutocastState s;
    for (size_t i = 0; i < kTypes.size(); ++i) {
      s.on[i] = at::autocast::is_autocast_enabled(kTypes[i]);
      s.dtype[i] = at::autocast::get_autocast_dtype(kTypes[i]);
    }
    return s;
  }
};

// Sets an autocast state for a scope (the backward pass runs on the autograd engine's thread,
// where the forward's thread-local autocast state is not set).
class AutocastRestore {
 public:
  explicit AutocastRestore(const AutocastState& s) : before_(AutocastState::capture()) { apply(s); }
  ~AutocastRestore() { apply(before_); }

 private:
  static void apply(const AutocastState& s) {
    for (size_t i = 0; i < AutocastState::kTypes.size(); ++i) {
      at::autocast::set_autocast_enabled(AutocastState::kTypes[i], s.on[i]);
      at::autocast::set_autocast_dtype(AutocastState::kTypes[i], s.dtype[i]);
    }
  }
  AutocastState before_;
};

// Turns autocast's cache of weight casts off for a scope. A checkpointed layer casts its weights
// when it runs and again when it is recomputed, so they are never kept for the whole model
// (two bytes per layer parameter saved), and the recompute, which runs on the autograd engine's
// thread on CUDA, leaves no casts in that thread's cache, which is never cleared and would hand
// later steps the casts of weights the optimizer has since changed.
class NoCastCache {
 public:
  NoCastCache() : before_(at::autocast::is_autocast_cache_enabled()) { at::autocast::set_autocast_cache_enabled(false); }
  ~NoCastCache() { at::autocast::set_autocast_cache_enabled(before_); }

 private:
  bool before_;
};

// Whether the layer draws random numbers in training (LoRA dropout).
bool uses_dropout(DecoderLayerImpl& layer) {
  for (auto& [name, slot] : layer.lora_slots())
    if (slot->active() && slot->dropout > 0 && slot->A->is_training()) return true;
  return false;
}

// The attention bias, or undefined for the empty stand-in of plain causal attention.
at::Tensor real_bias(const at::Tensor& b) { return b.numel() == 0 ? at::Tensor() : b; }

struct LayerCheckpoint : public torch::autograd::Function<LayerCheckpoint> {
  // The layer travels as its address (the model outlives the graph built from its forward).
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                            const at::Tensor& bias, int64_t layer_address) {
    auto* layer = reinterpret_cast<DecoderLayerImpl*>(layer_address);
    const AutocastState autocast = AutocastState::capture();
    ctx->saved_data["layer"] = layer_address;
    for (size_t i = 0; i < autocast.on.size(); ++i) {
      ctx->saved_data["autocast_on" + std::to_string(i)] = autocast.on[i];
      ctx->saved_data["autocast_dtype" + std::to_string(i)] = static_cast<int64_t>(autocast.dtype[i]);
    }
    if (uses_dropout(*layer)) {
      at::Generator gen = at::globalContext().defaultGenerator(x.device());
      ctx->saved_data["rng"] = gen.get_state();
    }
    ctx->save_for_backward({x, cos, sin, bias});
    NoCastCache no_cache;
    return layer->forward(x, cos, sin, real_bias(bias), nullptr, nullptr, 0);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto* layer = reinterpret_cast<DecoderLayerImpl*>(ctx->saved_data["layer"].toInt());
    AutocastState autocast;
    for (size_t i = 0; i < autocast.on.size(); ++i) {
      autocast.on[i] = ctx->saved_data["autocast_on" + std::to_string(i)].toBool();
      autocast.dtype[i] = static_cast<at::ScalarType>(ctx->saved_data["autocast_dtype" + std::to_string(i)].toInt());
    }
    at::Tensor x = saved[0].detach().requires_grad_(saved[0].requires_grad());
    at::Tensor out;
    {
      at::AutoGradMode grad_on(true);
      AutocastRestore restore(autocast);
      NoCastCache no_cache;
      if (ctx->saved_data.count("rng")) {
        at::Generator gen = at::globalContext().defaultGenerator(x.device());
        auto before = gen.get_state();
        gen.set_state(ctx->saved_data["rng"].toTensor());
        out = layer->forward(x, saved[1], saved[2], real_bias(saved[3]), nullptr, nullptr, 0);
        gen.set_state(before);
      } else {
        out = layer->forward(x, saved[1], saved[2], real_bias(saved[3]), nullptr, nullptr, 0);
      }
    }
    torch::autograd::backward({out}, {grads[0]});
    return {x.requires_grad() ? x.grad() : at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor checkpointed_layer(DecoderLayerImpl& layer, const at::Tensor& x, const at::Tensor& cos,
                              const at::Tensor& sin, const at::Tensor& bias) {
  // The output must be part of the graph even when nothing before the layer trains (a frozen
  // embedding under LoRA): the input then takes part as a leaf whose gradient is dropped.
  at::Tensor input = x.requires_grad() ? x : x.detach().requires_grad_(true);
  // Every tensor argument must be defined: plain causal attention (no bias) travels as an empty one.
  const at::Tensor b = bias.defined() ? bias : at::empty({0}, x.options());
  return LayerCheckpoint::apply(input, cos, sin, b, reinterpret_cast<int64_t>(&layer));
}

}  // namespace cada::model
