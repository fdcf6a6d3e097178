#include "cada/model/config.h"
#include "cada/model/peft_io.h"
#include "cada/io/files.h"

#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>

#include "cada/util/error.h"

namespace cada::model {
namespace {

using nlohmann::json;

// Typed access that names the file and key on a wrong type.
struct Reader {
  const json& j;
  const std::string& source;

  bool has(const char* key) const { return j.contains(key) && !j.at(key).is_null(); }
  int64_t i64(const char* key, int64_t def) const {
    if (!has(key)) return def;
    const json& v = j.at(key);
    CADA_CHECK(v.is_number_integer(), source, ": key '", key, "' must be an integer, got ", v.dump());
    return v.get<int64_t>();
  }
  double f64(const char* key, double def) const {
    if (!has(key)) return def;
    const json& v = j.at(key);
    CADA_CHECK(v.is_number(), source, ": key '", key, "' must be a number, got ", v.dump());
    return v.get<double>();
  }
  bool boolean(const char* key, bool def) const {
    if (!has(key)) return def;
    const json& v = j.at(key);
    CADA_CHECK(v.is_boolean(), source, ": key '", key, "' must be true or false, got ", v.dump());
    return v.get<bool>();
  }
  std::string str(const char* key, const std::string& def) const {
    if (!has(key)) return def;
    const json& v = j.at(key);
    CADA_CHECK(v.is_string(), source, ": key '", key, "' must be a string, got ", v.dump());
    return v.get<std::string>();
  }
};

void positive(int64_t v, const char* key, const std::string& source) {
  CADA_CHECK(v > 0, source, ": key '", key, "' must be positive, got ", v);
}


bool family_known(const std::string& t) {
  return t == "llama" || t == "qwen2" || t == "mistral" || t == "qwen3" || t == "gemma" || t == "gemma2";
}

std::string default_architecture(const std::string& t) {
  if (t == "qwen2") return "Qwen2ForCausalLM";
  if (t == "mistral") return "MistralForCausalLM";
  if (t == "qwen3") return "Qwen3ForCausalLM";
  if (t == "gemma") return "GemmaForCausalLM";
  if (t == "gemma2") return "Gemma2ForCausalLM";
  return "LlamaForCausalLM";
}

// Per-layer windows as transformers reads them: "layer_types" when given (a "sliding_attention"
// layer uses `window`, 0 = none), else `sliding(i)`.
std::vector<int64_t> layer_windows(const Reader& r, int64_t layers, int64_t window,
                                   const std::function<bool(int64_t)>& sliding) {
  std::vector<int64_t> out(static_cast<size_t>(layers), 0);
  if (r.has("layer_types")) {
    const json& v = r.j.at("layer_types");
    CADA_CHECK(v.is_array() && static_cast<int64_t>(v.size()) == layers, r.source,
               ": key 'layer_types' must be a list of num_hidden_layers (", layers, ") strings");
    for (int64_t i = 0; i < layers; ++i) {
      const json& e = v[static_cast<size_t>(i)];
      CADA_CHECK(e.is_string() && (e == "full_attention" || e == "sliding_attention"), r.source,
                 ": layer_types[", i, "] must be \"full_attention\" or \"sliding_attention\", got ", e.dump());
      if (e == "sliding_attention") out[static_cast<size_t>(i)] = window;
    }
  } else {
    for (int64_t i = 0; i < layers; ++i)
      if (sliding(i)) out[static_cast<size_t>(i)] = window;
  }
  return out;
}

// The options that differ between the families: activation, q/k norms, Gemma's norms and
// embedding scale, soft-capping, attention scale and per-layer windows.
void read_family(const Reader& r, ModelConfig& c) {
  const std::string& t = c.model_type;
  const std::string& source = r.source;
  if (t == "gemma") {
    c.hidden_act = r.str("hidden_activation", r.str("hidden_act", "gelu_pytorch_tanh"));
    if (c.hidden_act == "gelu") c.hidden_act = "gelu_pytorch_tanh";  // as transformers maps Gemma's legacy value
  } else if (t == "gemma2") {
    c.hidden_act = r.str("hidden_activation", "gelu_pytorch_tanh");
  } else {
    c.hidden_act = r.str("hidden_act", "silu");
  }
  CADA_CHECK(c.hidden_act == "silu" || c.hidden_act == "gelu_pytorch_tanh" || c.hidden_act == "gelu", source,
             ": activation '", c.hidden_act, "' is not supported (expected silu, gelu_pytorch_tanh or gelu)");
  c.attention_scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  CADA_CHECK(!r.boolean("use_bidirectional_attention", false), source,
             ": use_bidirectional_attention=true is not supported (expected a causal decoder)");
  if (t == "qwen3") {
    c.qk_norm = true;
    const bool use = r.boolean("use_sliding_window", false);
    const int64_t window = use && r.has("sliding_window") ? r.i64("sliding_window", 4096) : 0;
    const int64_t first = r.i64("max_window_layers", 28);
    c.layer_windows = layer_windows(r, c.num_hidden_layers, window, [&](int64_t i) { return i >= first; });
  } else if (t == "gemma" || t == "gemma2") {
    c.norm_plus_one = true;
    c.scale_embeddings = true;
  }
  if (t == "gemma2") {
    c.sandwich_norms = true;
    const double scalar = r.f64("query_pre_attn_scalar", 256);
    CADA_CHECK(scalar > 0, source, ": key 'query_pre_attn_scalar' must be positive, got ", scalar);
    c.attention_scale = 1.0 / std::sqrt(scalar);
    // A null cap (or none given in a file that names it) means no soft-capping.
    auto cap = [&](const char* key, double def) { return r.j.contains(key) ? r.f64(key, 0) : def; };
    c.attn_logit_softcapping = cap("attn_logit_softcapping", 50.0);
    c.final_logit_softcapping = cap("final_logit_softcapping", 30.0);
    const int64_t window = r.j.contains("sliding_window") ? r.i64("sliding_window", 0) : 4096;
    c.layer_windows = layer_windows(r, c.num_hidden_layers, window, [](int64_t i) { return (i + 1) % 2 == 1; });
  }
  for (int64_t w : c.layer_windows) CADA_CHECK(w >= 0, source, ": key 'sliding_window' must not be negative");
  CADA_CHECK(c.attn_logit_softcapping >= 0 && c.final_logit_softcapping >= 0, source,
             ": soft-capping values must be positive (or null for none)");
}

}  // namespace

namespace {

// config.json's architecture (or the family's default): a causal LM or a sequence classifier.
// Returns whether it is a sequence classifier.
bool read_architecture(const Reader& r, const json& j, const std::string& source, ModelConfig& c) {
  if (r.has("architectures")) {
    CADA_CHECK(j.at("architectures").is_array() && !j.at("architectures").empty() &&
                   j.at("architectures")[0].is_string(),
               source, ": key 'architectures' must be a non-empty list of strings");
    c.architecture = j.at("architectures")[0].get<std::string>();
  } else {
    c.architecture = default_architecture(c.model_type);
  }
  const bool causal = c.architecture.size() > 11 &&
                      c.architecture.compare(c.architecture.size() - 11, 11, "ForCausalLM") == 0;
  const bool seqcls = c.architecture.find("ForSequenceClassification") != std::string::npos;
  CADA_CHECK(causal || seqcls, source, ": architecture '", c.architecture,
             "' is not supported (expected *ForCausalLM or *ForSequenceClassification)");
  return seqcls;
}

// Vocabulary, widths, layer and head counts, head_dim (the families' own defaults), biases.
void read_sizes(const Reader& r, const std::string& source, ModelConfig& c) {
  c.vocab_size = r.i64("vocab_size", 32000);
  c.hidden_size = r.i64("hidden_size", 4096);
  c.intermediate_size = r.i64("intermediate_size", 11008);
  c.num_hidden_layers = r.i64("num_hidden_layers", 32);
  c.num_attention_heads = r.i64("num_attention_heads", 32);
  c.num_key_value_heads = r.i64("num_key_value_heads", c.num_attention_heads);
  for (auto [v, k] : {std::pair{c.vocab_size, "vocab_size"}, {c.hidden_size, "hidden_size"},
                      {c.intermediate_size, "intermediate_size"}, {c.num_hidden_layers, "num_hidden_layers"},
                      {c.num_attention_heads, "num_attention_heads"},
                      {c.num_key_value_heads, "num_key_value_heads"}})
    positive(v, k, source);
  CADA_CHECK(c.num_attention_heads % c.num_key_value_heads == 0, source, ": num_attention_heads (",
             c.num_attention_heads, ") must be a multiple of num_key_value_heads (", c.num_key_value_heads, ")");
  const bool gemma = c.model_type == "gemma" || c.model_type == "gemma2";
  if (r.has("head_dim")) {
    c.head_dim = r.i64("head_dim", 0);
  } else if (gemma || c.model_type == "qwen3") {
    c.head_dim = gemma ? 256 : 128;  // transformers' class defaults, not hidden_size / heads
  } else {
    CADA_CHECK(c.hidden_size % c.num_attention_heads == 0, source, ": hidden_size (", c.hidden_size,
               ") is not divisible by num_attention_heads (", c.num_attention_heads, ") and no head_dim is given");
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  positive(c.head_dim, "head_dim", source);
  CADA_CHECK(c.head_dim % 2 == 0, source, ": head_dim must be even for rotary embeddings, got ", c.head_dim);
  c.max_position_embeddings = r.i64("max_position_embeddings", 2048);
  positive(c.max_position_embeddings, "max_position_embeddings", source);
  c.rms_norm_eps = r.f64("rms_norm_eps", 1e-6);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", gemma);
  if (c.model_type == "qwen2") {
    c.attention_bias = true;  // Qwen2 always has q/k/v bias and no o_proj bias
    c.o_proj_bias = false;
    CADA_CHECK(!r.boolean("use_sliding_window", false), source,
               ": use_sliding_window=true is not supported (expected false)");
  } else {
    c.attention_bias = r.boolean("attention_bias", false);
    c.o_proj_bias = c.attention_bias;
    c.mlp_bias = r.boolean("mlp_bias", false);
  }
}

void read_rope(const Reader& r, const json& j, const std::string& source, ModelConfig& c) {
  // Rotary parameters: transformers >= 5 writes "rope_parameters" (with rope_theta inside);
  // older files write "rope_theta" and "rope_scaling".
  c.rope_theta = r.f64("rope_theta", 10000.0);
  const json* rope = nullptr;
  std::string rope_key;
  if (r.has("rope_parameters")) {
    rope = &j.at("rope_parameters");
    rope_key = "rope_parameters";
  } else if (r.has("rope_scaling")) {
    rope = &j.at("rope_scaling");
    rope_key = "rope_scaling";
  }
  if (rope) {
    CADA_CHECK(rope->is_object(), source, ": key '", rope_key, "' must be an object");
    std::string sub_source = source + " (" + rope_key + ")";
    Reader rr{*rope, sub_source};
    c.rope_theta = rr.f64("rope_theta", c.rope_theta);
    std::string type = rr.str("rope_type", rr.str("type", "default"));
    if (type == "default") {
      c.rope_scaling.type = "";
    } else if (type == "linear" || type == "llama3") {
      c.rope_scaling.type = type;
      c.rope_scaling.factor = rr.f64("factor", 1.0);
      CADA_CHECK(c.rope_scaling.factor > 0, sub_source, ": factor must be positive");
      if (type == "llama3") {
        c.rope_scaling.low_freq_factor = rr.f64("low_freq_factor", 1.0);
        c.rope_scaling.high_freq_factor = rr.f64("high_freq_factor", 4.0);
        c.rope_scaling.original_max_position_embeddings = rr.i64("original_max_position_embeddings", 8192);
        CADA_CHECK(c.rope_scaling.high_freq_factor != c.rope_scaling.low_freq_factor, sub_source,
                   ": high_freq_factor must differ from low_freq_factor");
      }
    } else {
      CADA_FAIL(sub_source, ": rope type '", type, "' is not supported (expected default, linear or llama3)");
    }
  }
  CADA_CHECK(c.rope_theta > 0, source, ": rope_theta must be positive");
}

// eos (an integer or a list), bos and pad token ids, each inside the vocabulary.
void read_token_ids(const Reader& r, const json& j, const std::string& source, ModelConfig& c) {
  auto ids = [&](const char* key) {
    std::vector<int64_t> out;
    if (!r.has(key)) return out;
    const json& v = j.at(key);
    if (v.is_number_integer()) {
      out.push_back(v.get<int64_t>());
    } else {
      CADA_CHECK(v.is_array(), source, ": key '", key, "' must be an integer or a list of integers");
      for (const auto& e : v) {
        CADA_CHECK(e.is_number_integer(), source, ": key '", key, "' must contain integers only");
        out.push_back(e.get<int64_t>());
      }
    }
    return out;
  };
  c.eos_token_ids = ids("eos_token_id");
  if (auto b = ids("bos_token_id"); !b.empty()) c.bos_token_id = b[0];
  if (auto p = ids("pad_token_id"); !p.empty()) c.pad_token_id = p[0];
  for (int64_t id : c.eos_token_ids)
    CADA_CHECK(id >= 0 && id < c.vocab_size, source, ": eos_token_id ", id, " is outside the vocabulary (vocab_size ",
               c.vocab_size, ")");
  CADA_CHECK(!c.bos_token_id || (*c.bos_token_id >= 0 && *c.bos_token_id < c.vocab_size), source, ": bos_token_id ",
             c.bos_token_id.value_or(0), " is outside the vocabulary (vocab_size ", c.vocab_size, ")");
  if (c.pad_token_id && *c.pad_token_id < 0) c.pad_token_id.reset();  // -1: none, as some configs write
  CADA_CHECK(!c.pad_token_id || *c.pad_token_id < c.vocab_size, source, ": pad_token_id ", c.pad_token_id.value_or(0),
             " is outside the vocabulary (vocab_size ", c.vocab_size, ")");
}

// Sizes that no real model has overflow the parameter count: refused here, naming them.
void check_plausible_size(const std::string& source, const ModelConfig& c) {
  const double C = static_cast<double>(c.hidden_size), F = static_cast<double>(c.intermediate_size);
  const double D = static_cast<double>(c.head_dim), H = static_cast<double>(c.num_attention_heads);
  const double params = static_cast<double>(c.vocab_size) * C * 2 +
                        static_cast<double>(c.num_hidden_layers) * (3 * C * F + 4 * C * H * D);
  CADA_CHECK(params < 1e14, source, ": the sizes (hidden_size ", c.hidden_size, ", intermediate_size ",
             c.intermediate_size, ", num_hidden_layers ", c.num_hidden_layers, ", vocab_size ", c.vocab_size,
             ") give about ", params, " parameters, far beyond any model; check them");
}

// A sequence classifier's label count: num_labels, else id2label's size, else 2 (transformers).
void read_num_labels(const Reader& r, const json& j, const std::string& source, ModelConfig& c) {
  if (r.has("num_labels")) {
    c.num_labels = r.i64("num_labels", 1);
  } else if (r.has("id2label")) {
    CADA_CHECK(j.at("id2label").is_object(), source, ": key 'id2label' must be an object");
    c.num_labels = static_cast<int64_t>(j.at("id2label").size());
  } else {
    c.num_labels = 2;  // transformers' PretrainedConfig default
  }
  positive(c.num_labels, "num_labels", source);
}

}  // namespace

ModelConfig ModelConfig::from_json(const json& j, const std::string& source) {
  CADA_CHECK(j.is_object(), source, ": expected a JSON object");
  Reader r{j, source};
  ModelConfig c;
  c.raw = j;
  c.model_type = r.str("model_type", "");
  CADA_CHECK(family_known(c.model_type), source, ": model_type '", c.model_type,
             "' is not supported (expected llama, qwen2, mistral, qwen3, gemma or gemma2)");
  const bool seqcls = read_architecture(r, j, source, c);
  read_sizes(r, source, c);
  if (c.model_type == "mistral" && r.has("sliding_window")) c.sliding_window = r.i64("sliding_window", 4096);
  read_family(r, c);
  read_rope(r, j, source, c);
  c.torch_dtype = r.str("dtype", r.str("torch_dtype", "float32"));
  read_token_ids(r, j, source, c);
  check_plausible_size(source, c);
  if (seqcls) read_num_labels(r, j, source, c);
  return c;
}

ModelConfig ModelConfig::load(const std::string& model_dir) {
  const std::string path = model_dir + "/config.json";
  // A LoRA adapter folder (model/peft_io.h) has the configuration of its base model.
  if (!io::file_exists(path) && is_adapter_folder(model_dir)) return adapter_model_config(model_dir);
  std::ifstream in(path);
  CADA_CHECK(in.good(), path, ": cannot open the model config (expected a Hugging Face model folder with config.json)");
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  CADA_CHECK(!j.is_discarded(), path, ": not valid JSON");
  return from_json(j, path);
}

ModelConfig ModelConfig::as_classifier(int64_t num_labels, int64_t pad_id) const {
  CADA_CHECK(!is_sequence_classifier(), "config.json: ", architecture, " is already a sequence classifier");
  json cj = raw;
  std::string arch = architecture;
  const auto at = arch.find("ForCausalLM");
  CADA_CHECK(at != std::string::npos, "config.json: architecture ", arch, " is not a causal LM");
  arch.replace(at, 11, "ForSequenceClassification");
  cj["architectures"] = {arch};
  cj["num_labels"] = num_labels;
  cj.erase("id2label");
  cj.erase("label2id");
  if (!cj.contains("pad_token_id") || cj["pad_token_id"].is_null()) cj["pad_token_id"] = pad_id;
  return from_json(cj, "config.json (as a classifier)");
}

json ModelConfig::to_json() const {
  json j = raw.is_object() ? raw : json::object();
  j["model_type"] = model_type;
  j["architectures"] = json::array({architecture});
  j["torch_dtype"] = torch_dtype;
  if (j.contains("dtype")) j["dtype"] = torch_dtype;
  if (model_type == "qwen3" || model_type == "gemma" || model_type == "gemma2") {
    // The values this config was read with, so that transformers reads the same model back
    // whatever its class defaults.
    j["head_dim"] = head_dim;
    j["tie_word_embeddings"] = tie_word_embeddings;
    j[model_type == "gemma2" ? "hidden_activation" : "hidden_act"] = hidden_act;
    if (model_type != "gemma") {
      json types = json::array();
      int64_t window = 0;
      for (int64_t w : layer_windows) {
        types.push_back(w > 0 ? "sliding_attention" : "full_attention");
        window = std::max(window, w);
      }
      j["layer_types"] = types;
      if (window > 0) j["sliding_window"] = window;
      if (model_type == "qwen3") j["use_sliding_window"] = window > 0;
    }
    if (model_type == "gemma2") {
      if (!j.contains("query_pre_attn_scalar")) j["query_pre_attn_scalar"] = 256;  // the default it was read with
      j["attn_logit_softcapping"] = attn_logit_softcapping > 0 ? json(attn_logit_softcapping) : json(nullptr);
      j["final_logit_softcapping"] = final_logit_softcapping > 0 ? json(final_logit_softcapping) : json(nullptr);
    }
  }
  if (num_labels > 0 && !j.contains("id2label")) {
    json id2label = json::object(), label2id = json::object();
    for (int64_t i = 0; i < num_labels; ++i) {
      id2label[std::to_string(i)] = "LABEL_" + std::to_string(i);
      label2id["LABEL_" + std::to_string(i)] = i;
    }
    j["id2label"] = id2label;
    j["label2id"] = label2id;
  }
  return j;
}

int64_t ModelConfig::num_parameters() const {
  const int64_t C = hidden_size, F = intermediate_size, D = head_dim;
  const int64_t q = num_attention_heads * D, kv = num_key_value_heads * D;
  int64_t attn = C * q + 2 * C * kv + q * C;
  if (attention_bias) attn += q + 2 * kv;
  if (o_proj_bias) attn += C;
  int64_t mlp = 3 * C * F + (mlp_bias ? 2 * F + C : 0);
  if (qk_norm) attn += 2 * D;
  int64_t layer = attn + mlp + (sandwich_norms ? 4 : 2) * C;
  int64_t total = vocab_size * C + num_hidden_layers * layer + C;
  if (num_labels > 0) total += num_labels * C;
  else if (!tie_word_embeddings) total += vocab_size * C;
  return total;
}

}  // namespace cada::model

namespace cada::model {

bool ModelConfig::plain_llama_layers() const {
  for (int64_t l = 0; l < num_hidden_layers; ++l)
    if (window(l) != window(0)) return false;
  return hidden_act == "silu" && !qk_norm && !norm_plus_one && !scale_embeddings && !sandwich_norms &&
         attn_logit_softcapping == 0 && final_logit_softcapping == 0 &&
         std::abs(softmax_scale() * std::sqrt(static_cast<double>(head_dim)) - 1.0) < 1e-12;
}

double ModelConfig::softmax_scale() const {
  return attention_scale > 0 ? attention_scale : 1.0 / std::sqrt(static_cast<double>(head_dim));
}

int64_t ModelConfig::window(int64_t layer) const {
  if (layer_windows.empty()) return sliding_window.value_or(0);
  return layer_windows.at(static_cast<size_t>(layer));
}

int64_t ModelConfig::min_window() const {
  int64_t out = 0;
  for (int64_t l = 0; l < num_hidden_layers; ++l)
    if (int64_t w = window(l); w > 0 && (out == 0 || w < out)) out = w;
  return out;
}

}  // namespace cada::model
