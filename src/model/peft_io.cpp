#include "cada/model/peft_io.h"

#include <nlohmann/json.hpp>

#include <map>
#include <regex>
#include <set>

#include "cada/io/files.h"
#include "cada/io/safetensors.h"
#include "cada/util/error.h"
#include "cada/util/log.h"

namespace cada::model {

namespace {

constexpr const char* kPeftPrefix = "base_model.model.";

nlohmann::json read_adapter_config(const std::string& dir) {
  const std::string path = dir + "/" + kAdapterConfigName;
  auto j = nlohmann::json::parse(io::read_file(path), nullptr, false);
  CADA_CHECK(!j.is_discarded() && j.is_object(), path, ": not a JSON object");
  return j;
}

// The key's value unless it is absent or null.
const nlohmann::json* field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

// Refuses the PEFT options that change the computation in ways cada does not implement.
void check_supported(const nlohmann::json& j, const std::string& path) {
  const auto* type = field(j, "peft_type");
  CADA_CHECK(type && type->is_string() && type->get<std::string>() == "LORA", path,
             ": 'peft_type' must be \"LORA\" (cada loads LoRA adapters only)");
  auto is_false = [&](const char* k) { const auto* v = field(j, k); return !v || (v->is_boolean() && !v->get<bool>()); };
  auto is_empty = [&](const char* k) { const auto* v = field(j, k); return !v || v->empty(); };
  CADA_CHECK(is_false("use_dora"), path, ": 'use_dora' is true; cada does not compute DoRA adapters");
  CADA_CHECK(is_false("fan_in_fan_out"), path, ": 'fan_in_fan_out' is true; expected false (HF Linear layers)");
  CADA_CHECK(is_false("lora_bias"), path, ": 'lora_bias' is true; cada's adapters have no bias");
  const auto* bias = field(j, "bias");
  CADA_CHECK(!bias || (bias->is_string() && bias->get<std::string>() == "none"), path,
             ": 'bias' must be \"none\" (cada does not train the base layers' biases)");
  CADA_CHECK(is_empty("alpha_pattern"), path, ": 'alpha_pattern' is not supported (one lora_alpha for every layer)");
  const auto* task = field(j, "task_type");
  CADA_CHECK(!task || (task->is_string() && (task->get<std::string>() == "CAUSAL_LM" || task->get<std::string>() == "SEQ_CLS")),
             path, ": 'task_type' must be CAUSAL_LM or SEQ_CLS");
}

template <class T>
T number(const nlohmann::json& j, const char* key, T fallback, const std::string& path) {
  const auto* v = field(j, key);
  if (!v) return fallback;
  CADA_CHECK(v->is_number(), path, ": '", key, "' must be a number");
  return v->get<T>();
}

// "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight" -> (3, q_proj, A).
struct AdapterTensor {
  int64_t layer = -1;
  std::string proj;
  char which = 0;  // 'A' or 'B'
};
bool parse_adapter_name(const std::string& name, AdapterTensor* out) {
  static const std::regex re(R"(^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.lora_([AB])(\.default)?\.weight$)");
  std::smatch m;
  if (!std::regex_match(name, m, re)) return false;
  out->layer = std::stoll(m[1]);
  out->proj = m[3];
  out->which = m[4].str()[0];
  return true;
}

at::ScalarType scalar_type(io::DType d, const std::string& where) {
  switch (d) {
    case io::DType::F32: return at::kFloat;
    case io::DType::F16: return at::kHalf;
    case io::DType::BF16: return at::kBFloat16;
    default: CADA_FAIL(where, ": dtype ", io::dtype_name(d), " is not a floating-point weight dtype");
  }
}

at::Tensor view_tensor(const io::TensorView& tv, const std::string& where) {
  return at::from_blob(const_cast<uint8_t*>(tv.data), tv.shape, at::TensorOptions().dtype(scalar_type(tv.dtype, where)));
}

// modules_to_save as saved by PEFT: "score" / "classifier" (SEQ_CLS adds both), kept when the
// model has such a module.
std::vector<std::string> saved_modules(const nlohmann::json& j, TransformerImpl& model, const std::string& path) {
  std::vector<std::string> out;
  if (const auto* m = field(j, "modules_to_save")) {
    CADA_CHECK(m->is_array(), path, ": 'modules_to_save' must be a list of module names");
    for (const auto& v : *m) {
      const std::string name = v.get<std::string>();
      if (name == "score" && model.score) out.push_back(name);
      else if (name == "lm_head" && model.lm_head) out.push_back(name);
      else if (name != "classifier" && name != "score")
        CADA_FAIL(path, ": modules_to_save entry '", name, "' is not supported (expected score or lm_head)");
    }
  }
  return out;
}

// The short target names and layers that the file's adapters cover (for model.lora).
void describe_targets(const std::map<std::pair<int64_t, std::string>, int64_t>& ranks, int64_t num_layers,
                      LoraConfig* cfg) {
  std::set<std::string> names;
  std::set<int64_t> layers;
  for (const auto& [key, r] : ranks) names.insert(key.second), layers.insert(key.first);
  cfg->target_modules.clear();
  for (const auto& n : lora_target_names())
    if (names.count(n)) cfg->target_modules.push_back(n);
  cfg->layers.clear();
  if (static_cast<int64_t>(layers.size()) != num_layers) cfg->layers.assign(layers.begin(), layers.end());
}

}  // namespace

bool is_adapter_folder(const std::string& dir) { return io::file_exists(dir + "/" + kAdapterConfigName); }

void save_adapter(TransformerImpl& model, const std::string& dir, const std::string& base_model) {
  CADA_CHECK(model.has_lora(), "saving an adapter: the model has no LoRA adapters");
  io::make_dirs(dir);
  const LoraConfig& c = model.lora;
  std::vector<at::Tensor> keep;
  std::vector<io::TensorData> tensors;
  for (auto& [name, p] : lora_named_parameters(model)) {
    auto t = p.detach().to(at::kCPU, at::kFloat).contiguous();
    keep.push_back(t);
    tensors.push_back(io::TensorData{kPeftPrefix + name, io::DType::F32, std::vector<int64_t>(t.sizes().begin(), t.sizes().end()),
                                     t.data_ptr(), static_cast<size_t>(t.nbytes())});
  }
  io::write_safetensors(dir + "/" + kAdapterWeightsName, tensors, {{"format", "pt"}});
  nlohmann::json j = {
      {"peft_type", "LORA"}, {"task_type", model.config().is_sequence_classifier() ? "SEQ_CLS" : "CAUSAL_LM"},
      {"base_model_name_or_path", base_model.empty() ? model.lora.base_model : base_model}, {"r", c.r}, {"lora_alpha", c.alpha}, {"lora_dropout", c.dropout},
      {"use_rslora", c.rslora}, {"target_modules", c.targets()}, {"bias", "none"}, {"fan_in_fan_out", false},
      {"use_dora", false}, {"inference_mode", true}, {"init_lora_weights", true}, {"rank_pattern", nlohmann::json::object()},
      {"alpha_pattern", nlohmann::json::object()}, {"layers_pattern", nullptr}, {"revision", nullptr},
      {"layers_to_transform", c.layers.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.layers)},
      {"modules_to_save", c.modules_to_save.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.modules_to_save)}};
  io::atomic_write_file(dir + "/" + kAdapterConfigName, j.dump(2) + "\n");
}

int64_t load_adapter(TransformerImpl& model, const std::string& dir) {
  CADA_CHECK(!model.has_lora(), "loading adapter ", dir, ": the model already has LoRA adapters");
  const std::string cfg_path = dir + "/" + kAdapterConfigName;
  const std::string weights_path = dir + "/" + kAdapterWeightsName;
  const nlohmann::json j = read_adapter_config(dir);
  check_supported(j, cfg_path);
  CADA_CHECK(io::file_exists(weights_path), dir, ": ", kAdapterWeightsName, " is missing");
  auto file = io::SafetensorsFile::open(weights_path);
  LoraConfig c;
  c.r = number<int64_t>(j, "r", 8, cfg_path);
  c.alpha = number<double>(j, "lora_alpha", 8, cfg_path);
  c.dropout = number<double>(j, "lora_dropout", 0, cfg_path);
  if (const auto* rs = field(j, "use_rslora")) c.rslora = rs->is_boolean() && rs->get<bool>();
  CADA_CHECK(c.r > 0 && c.alpha > 0, cfg_path, ": 'r' and 'lora_alpha' must be positive");
  c.modules_to_save = saved_modules(j, model, cfg_path);
  // The adapted layers are those with weights in the file; ranks come from their shapes.
  std::map<std::pair<int64_t, std::string>, int64_t> ranks;
  const int64_t L = model.config().num_hidden_layers;
  for (const auto& name : file->names()) {
    AdapterTensor t;
    if (!parse_adapter_name(name, &t)) continue;
    CADA_CHECK(t.layer < L, weights_path, ": tensor '", name, "' names layer ", t.layer, " but the model has ", L);
    const auto& shape = file->get(name).shape;
    CADA_CHECK(shape.size() == 2, weights_path, ": tensor '", name, "' is not a matrix");
    ranks[{t.layer, t.proj}] = t.which == 'A' ? shape[0] : shape[1];
  }
  CADA_CHECK(!ranks.empty(), weights_path, ": holds no LoRA weights (expected names like "
             "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight)");
  freeze_for_lora(model, c.modules_to_save);
  for (const auto& [key, r] : ranks) {
    const double scaling = c.rslora ? c.alpha / std::sqrt(static_cast<double>(r)) : c.alpha / static_cast<double>(r);
    attach_lora_slot(model, key.first, key.second, r, scaling, c.dropout, nullptr);
  }
  describe_targets(ranks, L, &c);
  model.lora = c;
  model.lora_enabled = true;
  load_adapter_weights(model, dir);
  return static_cast<int64_t>(ranks.size());
}

void load_adapter_weights(TransformerImpl& model, const std::string& dir) {
  const std::string weights_path = dir + "/" + kAdapterWeightsName;
  CADA_CHECK(io::file_exists(weights_path), dir, ": ", kAdapterWeightsName, " is missing");
  auto file = io::SafetensorsFile::open(weights_path);
  torch::NoGradGuard ng;
  for (auto& [name, p] : lora_named_parameters(model)) {
    std::string key = kPeftPrefix + name;
    if (!file->contains(key)) {  // PEFT in memory: "...lora_A.default.weight"
      const std::string alt = std::regex_replace(key, std::regex(R"(\.(lora_[AB])\.weight$)"), ".$1.default.weight");
      CADA_CHECK(file->contains(alt), weights_path, ": lacks tensor '", key, "' that the adapter configuration implies");
      key = alt;
    }
    const auto& tv = file->get(key);
    std::vector<int64_t> want(p.sizes().begin(), p.sizes().end());
    CADA_CHECK(tv.shape == want, weights_path, ": tensor '", key, "' has the wrong shape for the model");
    p.copy_(view_tensor(tv, weights_path + ": tensor '" + key + "'").to(p.device(), p.scalar_type()));
  }
}

std::string adapter_base_model(const std::string& dir, const std::string& override_base) {
  if (!override_base.empty()) return override_base;
  const std::string path = dir + "/" + kAdapterConfigName;
  const nlohmann::json j = read_adapter_config(dir);
  const auto* base = field(j, "base_model_name_or_path");
  CADA_CHECK(base && base->is_string() && !base->get<std::string>().empty(), path,
             ": 'base_model_name_or_path' is empty; name the base model folder there (or with --base)");
  const std::string b = base->get<std::string>();
  if (io::is_directory(b)) return b;
  const std::string rel = io::join_path(dir, b);
  CADA_CHECK(io::is_directory(rel), path, ": base_model_name_or_path '", b,
             "' is not a folder here (nor relative to the adapter folder); download the base model and name its folder "
             "there (or with --base)");
  return rel;
}

ModelConfig adapter_model_config(const std::string& dir) {
  const std::string base = adapter_base_model(dir);
  const ModelConfig bc = ModelConfig::load(base);
  const nlohmann::json j = read_adapter_config(dir);
  const auto* task = field(j, "task_type");
  if (!task || !task->is_string() || task->get<std::string>() != "SEQ_CLS" || bc.is_sequence_classifier()) return bc;
  const std::string weights = dir + "/" + kAdapterWeightsName;
  auto file = io::SafetensorsFile::open(weights);
  const char* head = "base_model.model.score.weight";
  CADA_CHECK(file->contains(head), weights, ": a SEQ_CLS adapter over a causal model needs the score head (", head, ")");
  const int64_t pad = bc.pad_token_id ? *bc.pad_token_id : (bc.eos_token_ids.empty() ? 0 : bc.eos_token_ids[0]);
  return bc.as_classifier(file->get(head).shape[0], pad);
}

Transformer load_model_with_adapter(const std::string& dir, const LoadOptions& opts) {
  const std::string base = adapter_base_model(dir, opts.base_model);
  LoadOptions base_opts = opts;
  base_opts.base_model.clear();
  const ModelConfig cfg = adapter_model_config(dir);
  Transformer model{nullptr};
  if (cfg.is_sequence_classifier() && !ModelConfig::load(base).is_sequence_classifier()) {
    // A reward model's adapter over a causal LM: the classifier is built on the base and its score
    // head comes from the adapter file (modules_to_save).
    model = load_as_classifier(base, cfg.num_labels, cfg.pad_token_id.value_or(0), base_opts);
  } else {
    model = load_model(base, base_opts);
  }
  const int64_t n = load_adapter(*model, dir);
  model->lora.base_model = base;
  CADA_DEBUG("loaded ", n, " LoRA adapters from ", dir, " on base ", base);
  model->eval();
  return model;
}

}  // namespace cada::model
