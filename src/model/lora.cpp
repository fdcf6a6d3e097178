#include "cada/model/lora.h"

#include <cmath>
#include <algorithm>
#include <set>

#include "cada/model/transformer.h"
#include "cada/util/error.h"

namespace cada::model {

const std::vector<std::string>& lora_target_names() {
  static const std::vector<std::string> names{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  return names;
}

double LoraConfig::scaling() const {
  CADA_CHECK(r > 0, "LoRA scaling of rank ", r);
  return rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
}

std::vector<std::string> LoraConfig::targets(const std::string& where) const {
  std::vector<std::string> out;
  for (const auto& t : target_modules) {
    if (t == "all-linear") return lora_target_names();
    bool known = false;
    for (const auto& n : lora_target_names()) known = known || n == t;
    CADA_CHECK(known, where, ": '", t, "' is not a linear layer of the model (expected q_proj, k_proj, v_proj, "
               "o_proj, gate_proj, up_proj, down_proj or all-linear)");
    out.push_back(t);
  }
  CADA_CHECK(!out.empty(), where, ": lists no module to adapt");
  return out;
}

bool is_lora_parameter_name(const std::string& name) {
  return name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos;
}

at::Tensor LoraSlot::delta(const at::Tensor& x, at::ScalarType out_dtype) const {
  const at::Tensor& wa = A->weight;
  // Under autocast the products run in the autocast dtype; otherwise in the adapter's own.
  at::Tensor in = x.scalar_type() == wa.scalar_type() ? x : x.to(wa.scalar_type());
  if (dropout > 0) in = at::dropout(in, dropout, A->is_training());
  auto y = at::linear(at::linear(in, wa), B->weight) * scaling;
  return y.scalar_type() == out_dtype ? y : y.to(out_dtype);
}

namespace {

bool layer_selected(const LoraConfig& cfg, int64_t layer) {
  if (cfg.layers.empty()) return true;
  for (int64_t l : cfg.layers)
    if (l == layer) return true;
  return false;
}

}  // namespace

void freeze_for_lora(TransformerImpl& model, const std::vector<std::string>& modules_to_save) {
  std::set<std::string> keep(modules_to_save.begin(), modules_to_save.end());
  for (const auto& m : modules_to_save)
    CADA_CHECK(m == "score" || m == "lm_head", "lora.modules_to_save: '", m, "' is not supported (expected score or lm_head)");
  for (auto& item : model.named_parameters()) {
    const std::string& name = item.key();
    item.value().requires_grad_(keep.count(name.substr(0, name.find('.'))) != 0);
  }
}

void attach_lora_slot(TransformerImpl& model, int64_t layer, const std::string& proj, int64_t r, double scaling,
                      double dropout, at::Generator* gen) {
  auto* dl = model.model->layers[layer]->as<DecoderLayerImpl>();
  auto slots = dl->lora_slots();
  auto projs = dl->projections();
  size_t i = 0;
  while (i < slots.size() && slots[i].first != proj) ++i;
  CADA_CHECK(i < slots.size(), "LoRA: '", proj, "' is not a projection of a decoder layer");
  LoraSlot& s = *slots[i].second;
  CADA_CHECK(!s.A, "LoRA: layer ", layer, " ", proj, " already has an adapter");
  torch::NoGradGuard ng;
  torch::nn::Linear& base = *projs[i].second;
  const int64_t in = base->weight.size(1), out = base->weight.size(0);
  const auto opts = at::TensorOptions().dtype(at::kFloat).device(base->weight.device());
  s.A = base->register_module("lora_A", torch::nn::Linear(torch::nn::LinearOptions(in, r).bias(false)));
  s.B = base->register_module("lora_B", torch::nn::Linear(torch::nn::LinearOptions(r, out).bias(false)));
  // nn.Linear's default: Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in)).
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  auto a = gen ? at::empty({r, in}, at::kFloat).uniform_(-bound, bound, *gen) : at::zeros({r, in}, at::kFloat);
  s.A->weight.set_data(a.to(opts));
  s.B->weight.set_data(at::zeros({out, r}, opts));
  s.A->weight.requires_grad_(true);
  s.B->weight.requires_grad_(true);
  s.scaling = scaling;
  s.dropout = dropout;
  s.enabled = &model.lora_enabled;
  s.A->train(model.is_training());
  s.B->train(model.is_training());
}

int64_t attach_lora(TransformerImpl& model, const LoraConfig& cfg) {
  CADA_CHECK(cfg.enabled(), "lora.r must be at least 1 to attach adapters");
  CADA_CHECK(!model.has_lora(), "the model already has LoRA adapters");
  const auto targets = cfg.targets();
  const int64_t L = model.config().num_hidden_layers;
  for (int64_t l : cfg.layers)
    CADA_CHECK(l >= 0 && l < L, "lora.layers: layer ", l, " does not exist (the model has ", L, " layers)");
  freeze_for_lora(model, cfg.modules_to_save);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(cfg.seed);
  int64_t adapted = 0;
  for (int64_t l = 0; l < L; ++l) {
    if (!layer_selected(cfg, l)) continue;
    for (const auto& name : lora_target_names()) {  // a fixed order: the same draws for the same config
      if (std::find(targets.begin(), targets.end(), name) == targets.end()) continue;
      attach_lora_slot(model, l, name, cfg.r, cfg.scaling(), cfg.dropout, &gen);
      ++adapted;
    }
  }
  model.lora = cfg;
  model.lora_enabled = true;
  return adapted;
}

std::vector<std::pair<std::string, at::Tensor>> lora_named_parameters(TransformerImpl& model) {
  std::set<std::string> saved(model.lora.modules_to_save.begin(), model.lora.modules_to_save.end());
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& item : model.named_parameters()) {
    const std::string& name = item.key();
    if (is_lora_parameter_name(name) || saved.count(name.substr(0, name.find('.'))))
      out.emplace_back(name, item.value());
  }
  return out;
}

AdaptersOff::AdaptersOff(TransformerImpl& model) : model_(model), was_(model.lora_enabled) {
  model_.lora_enabled = false;
}

AdaptersOff::~AdaptersOff() { model_.lora_enabled = was_; }

void merge_lora(TransformerImpl& model) {
  CADA_CHECK(model.has_lora(), "merge: the model has no LoRA adapters");
  torch::NoGradGuard ng;
  for (int64_t l = 0; l < model.config().num_hidden_layers; ++l) {
    auto* layer = model.model->layers[l]->as<DecoderLayerImpl>();
    auto slots = layer->lora_slots();
    auto projs = layer->projections();
    for (size_t i = 0; i < slots.size(); ++i) {
      LoraSlot& s = *slots[i].second;
      if (!s.A) continue;
      torch::nn::Linear& base = *projs[i].second;
      auto delta = at::matmul(s.B->weight.to(at::kFloat), s.A->weight.to(at::kFloat)) * s.scaling;  // (out,in)
      base->weight.copy_((base->weight.to(at::kFloat) + delta).to(base->weight.scalar_type()));
      base->unregister_module("lora_A");
      base->unregister_module("lora_B");
      s = LoraSlot();
    }
  }
  for (auto& p : model.parameters()) p.requires_grad_(true);
  model.lora = LoraConfig();
  model.lora_enabled = true;
}

}  // namespace cada::model
