#include "cada/train/trainable.h"

#include <cstdio>

#include "cada/model/loader.h"
#include "cada/model/peft_io.h"
#include "cada/util/error.h"
#include "cada/util/log.h"

namespace cada::train {

std::string frozen_weights_dtype(const TrainableOptions& o, const c10::Device& device) {
  if (o.base_dtype != "auto") return o.base_dtype;
  return device.is_cuda() ? "bfloat16" : "float32";
}

std::string base_weights_dtype(const TrainableOptions& o, const c10::Device& device) {
  return o.lora.enabled() ? frozen_weights_dtype(o, device) : "float32";
}

void make_trainable(model::TransformerImpl& model, const TrainableOptions& o, const std::string& base_dir) {
  if (o.lora.enabled() && !model.has_lora()) {
    model::attach_lora(model, o.lora);
    model.lora.base_model = base_dir;
  }
  model.gradient_checkpointing = o.gradient_checkpointing;
  model.train();
  CADA_INFO(describe_trainable(model), o.gradient_checkpointing ? "; activations recomputed per layer" : "");
}

model::Transformer load_trainable(const std::string& model_dir, const std::string& device, const TrainableOptions& o) {
  const at::Device dev = model::parse_device(device);
  model::Transformer net = model::load_model(model_dir, {device, base_weights_dtype(o, dev)});
  if (net->has_lora() && !o.lora.enabled()) {  // full fine-tuning of an adapted model: fold the adapters in
    CADA_INFO(model_dir, " is a LoRA adapter folder and lora.r is 0: training the merged model in full");
    model::merge_lora(*net);
  } else if (net->has_lora()) {
    CADA_INFO(model_dir, " is a LoRA adapter folder: its adapters continue training (lora.r and targets unused)");
  }
  std::string base = model_dir;
  if (model::is_adapter_folder(model_dir)) base = model::adapter_base_model(model_dir);
  make_trainable(*net, o, base);
  if (net->has_lora() && net->lora.base_model.empty()) net->lora.base_model = base;
  return net;
}

std::vector<at::Tensor> trainable_parameters(model::TransformerImpl& model) {
  std::vector<at::Tensor> out;
  for (auto& p : model.parameters())
    if (p.requires_grad()) out.push_back(p);
  return out;
}

static std::string count(double n) {
  char buf[32];
  if (n >= 1e9) std::snprintf(buf, sizeof buf, "%.2fB", n / 1e9);
  else if (n >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", n / 1e6);
  else std::snprintf(buf, sizeof buf, "%.0f", n);
  return buf;
}

std::string describe_trainable(model::TransformerImpl& model) {
  double total = 0, trained = 0;
  for (auto& p : model.parameters()) {
    total += static_cast<double>(p.numel());
    if (p.requires_grad()) trained += static_cast<double>(p.numel());
  }
  if (!model.has_lora()) return "all " + count(total) + " parameters train";
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.2f%%", 100.0 * trained / total);
  return "LoRA r=" + std::to_string(model.lora.r) + ": " + count(trained) + " of " + count(total) +
         " parameters train (" + pct + ")";
}

}  // namespace cada::train
