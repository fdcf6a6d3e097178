// cada info: what a model folder holds.
#include <filesystem>
#include <iostream>
#include <sstream>

#include "cada/io/checkpoint.h"
#include "cada/io/files.h"
#include "cada/io/safetensors.h"
#include "cada/model/config.h"
#include "cada/text/chat_template.h"
#include "cada/text/tokenizer.h"
#include "cada/util/error.h"
#include "cada/model/loader.h"
#include "cada/model/peft_io.h"
#include "cada/util/memory.h"
#include "command.h"

// A named namespace per command file: the files may be compiled as one (unity build).
namespace {
namespace cmd_info {

struct Opts {
  std::string model;
  bool json = false;
};

// An adapter folder's settings and size: what `cada info` adds before describing its base.
nlohmann::json adapter_summary(const std::string& dir) {
  using namespace cada;
  const std::string path = dir + "/" + model::kAdapterConfigName;
  auto c = nlohmann::json::parse(io::read_file(path), nullptr, false);
  CADA_CHECK(c.is_object(), path, ": not a JSON object");
  int64_t params = 0;
  auto st = io::SafetensorsFile::open(dir + "/" + model::kAdapterWeightsName);
  for (const auto& name : st->names()) params += st->get(name).numel();
  nlohmann::json a = {{"base", model::adapter_base_model(dir)}, {"parameters", params}};
  for (const char* k : {"peft_type", "task_type", "r", "lora_alpha", "lora_dropout", "use_rslora", "target_modules",
                        "layers_to_transform", "modules_to_save"})
    if (c.contains(k) && !c[k].is_null()) a[k] = c[k];
  return a;
}

// The weights on disk: parameters stored and used, dtypes, bytes. Throws when they do not fit
// config.json (a model that fits comfortably in memory is loaded first, so that the loader names
// the tensor).
nlohmann::json weights_summary(const std::string& dir, const cada::model::ModelConfig& cfg) {
  using namespace cada;
  auto reader = io::CheckpointReader::open(dir);
  std::map<std::string, int64_t> file_dtypes;
  int64_t stored_params = 0, used_params = 0;
  for (const auto& name : reader->names()) {
    const auto& tv = reader->get(name);
    file_dtypes[io::dtype_name(tv.dtype)] += tv.numel();
    stored_params += tv.numel();
    const bool unused = name.find("rotary_emb.inv_freq") != std::string::npos ||
                        (name == "lm_head.weight" && cfg.tie_word_embeddings);
    if (!unused) used_params += tv.numel();
  }
  if (used_params != cfg.num_parameters() &&
      static_cast<double>(cfg.num_parameters()) * 4 < 0.25 * static_cast<double>(util::host_available_bytes()))
    model::load_model(dir);
  CADA_CHECK(used_params == cfg.num_parameters(), dir, ": the weights hold ", used_params,
             " parameters but config.json implies ", cfg.num_parameters(),
             "; the folder cannot be loaded (weights and config.json from different models?)");
  return {{"stored_parameters", stored_params}, {"file_dtypes", file_dtypes}, {"weight_bytes", reader->total_bytes()}};
}

// What sets the family apart from the plain Llama layer, and the per-layer windows if any.
void add_features(nlohmann::json& j, const cada::model::ModelConfig& cfg) {
  std::vector<std::string> f;
  if (cfg.qk_norm) f.push_back("q/k norm");
  if (cfg.norm_plus_one) f.push_back("(1 + w) norms, scaled embeddings");
  if (cfg.sandwich_norms) f.push_back("post-attention/feedforward norms");
  auto num = [](double v) {
    std::ostringstream os;
    os << v;
    return os.str();
  };
  if (cfg.attn_logit_softcapping > 0) f.push_back("attention soft-cap " + num(cfg.attn_logit_softcapping));
  if (cfg.final_logit_softcapping > 0) f.push_back("final soft-cap " + num(cfg.final_logit_softcapping));
  std::vector<int64_t> windows;
  int64_t sliding = 0;
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    windows.push_back(cfg.window(l));
    sliding += cfg.window(l) > 0;
  }
  if (sliding > 0) {
    j["layer_windows"] = windows;
    f.push_back("sliding window " + std::to_string(cfg.min_window()) + " on " + std::to_string(sliding) + " of " +
                std::to_string(cfg.num_hidden_layers) + " layers");
  }
  j["features"] = f;
}

nlohmann::json architecture_json(const cada::model::ModelConfig& cfg) {
  nlohmann::json j;
  j["architecture"] = cfg.architecture;
  j["model_type"] = cfg.model_type;
  j["layers"] = cfg.num_hidden_layers;
  j["hidden_size"] = cfg.hidden_size;
  j["intermediate_size"] = cfg.intermediate_size;
  j["attention_heads"] = cfg.num_attention_heads;
  j["kv_heads"] = cfg.num_key_value_heads;
  j["head_dim"] = cfg.head_dim;
  j["vocab_size"] = cfg.vocab_size;
  j["max_position_embeddings"] = cfg.max_position_embeddings;
  j["rope_theta"] = cfg.rope_theta;
  j["rope_scaling"] = cfg.rope_scaling.type.empty() ? "none" : cfg.rope_scaling.type;
  j["tie_word_embeddings"] = cfg.tie_word_embeddings;
  j["qkv_bias"] = cfg.attention_bias;
  j["activation"] = cfg.hidden_act;
  add_features(j, cfg);
  j["parameters"] = cfg.num_parameters();
  j["config_dtype"] = cfg.torch_dtype;
  if (cfg.num_labels > 0) j["num_labels"] = cfg.num_labels;
  return j;
}

// The tokenizer and the chat template cada renders with (and where it came from), or the reason
// there is none.
void add_text_setup(nlohmann::json& j, const std::string& dir) {
  using namespace cada;
  try {
    auto tok = text::load_tokenizer(dir);
    j["tokenizer"] = {{"kind", tok->kind()}, {"vocab_size", tok->vocab_size()}};
    if (tok->bos_id) j["tokenizer"]["bos"] = tok->id_to_token(*tok->bos_id);
    if (tok->eos_id) j["tokenizer"]["eos"] = tok->id_to_token(*tok->eos_id);
  } catch (const cada::Error& e) {
    j["tokenizer"] = nullptr;
    j["tokenizer_error"] = e.what();
  }
  try {
    auto t = text::load_chat_template(dir);
    const std::string builtin = text::detect_chat_template(dir);
    j["chat_template"] = {{"kind", t->name()}, {"source", t->origin}};
    if (builtin != "jinja") j["chat_template"]["matches_builtin"] = builtin;
  } catch (const cada::Error& e) {
    j["chat_template"] = nullptr;
    j["chat_template_error"] = e.what();
  }
}

std::string millions(int64_t n) { return std::to_string(n / 1000000) + "." + std::to_string((n / 100000) % 10) + "M"; }

void print_text(const std::string& folder, const nlohmann::json& j, const cada::model::ModelConfig& cfg,
                const std::string& weights_dir) {
  std::cout << "model            " << folder << "\n";
  if (j.contains("adapter")) {
    const auto& a = j["adapter"];
    std::cout << "adapter          " << a.value("peft_type", std::string("LORA")) << " r=" << a.value("r", int64_t(0))
              << " alpha=" << a.value("lora_alpha", 0.0) << " on " << a.value("target_modules", nlohmann::json()).dump()
              << ", " << millions(a["parameters"].get<int64_t>()) << " parameters"
              << (a.contains("task_type") ? ", " + a["task_type"].get<std::string>() : "") << "\n"
              << "base             " << weights_dir << "\n";
  }
  std::cout << "architecture     " << cfg.architecture << " (" << cfg.model_type << ")\n"
            << "parameters       " << millions(cfg.num_parameters()) << " (" << cfg.num_parameters() << ")\n"
            << "layers           " << cfg.num_hidden_layers << ", hidden " << cfg.hidden_size << ", mlp "
            << cfg.intermediate_size << "\n"
            << "attention        " << cfg.num_attention_heads << " heads, " << cfg.num_key_value_heads
            << " kv heads, head_dim " << cfg.head_dim << (cfg.attention_bias ? ", qkv bias" : "") << "\n"
            << "rope             theta " << cfg.rope_theta << ", scaling " << j["rope_scaling"].get<std::string>()
            << "\n"
            << "layer            " << cfg.hidden_act;
  for (const auto& f : j["features"]) std::cout << ", " << f.get<std::string>();
  std::cout << "\n"
            << "vocab            " << cfg.vocab_size << (cfg.tie_word_embeddings ? " (tied embeddings)" : "") << "\n"
            << "dtype            " << cfg.torch_dtype << " (files:";
  for (const auto& [d, n] : j["file_dtypes"].items()) std::cout << " " << d;
  std::cout << ", " << j["weight_bytes"].get<double>() / (1024.0 * 1024.0) << " MiB)\n";
  if (j["tokenizer"].is_null())
    std::cout << "tokenizer        none (" << j["tokenizer_error"].get<std::string>() << ")\n";
  else
    std::cout << "tokenizer        " << j["tokenizer"]["kind"].get<std::string>() << ", "
              << j["tokenizer"]["vocab_size"] << " tokens\n";
  std::cout << "chat template    "
            << (j["chat_template"].is_null() ? "none (" + j["chat_template_error"].get<std::string>() + ")"
                                             : j["chat_template"]["source"].get<std::string>())
            << "\n";
}

int run(const Opts& o) {
  using namespace cada;
  // An adapter folder: its adapter, then the base model it names.
  nlohmann::json adapter;
  std::string weights_dir = o.model;
  if (model::is_adapter_folder(o.model)) {
    adapter = adapter_summary(o.model);
    weights_dir = adapter["base"].get<std::string>();
  }
  // The tokenizer and template: the folder's own, else (a PEFT adapter folder) the base's.
  std::string text_dir = o.model;
  if (!adapter.is_null() && !io::file_exists(o.model + "/tokenizer.json") && !io::file_exists(o.model + "/tokenizer.model"))
    text_dir = weights_dir;
  const auto cfg = model::ModelConfig::load(weights_dir);
  nlohmann::json j = architecture_json(cfg);
  j.update(weights_summary(weights_dir, cfg));
  if (!adapter.is_null()) j["adapter"] = adapter;
  add_text_setup(j, text_dir);
  if (o.json) std::cout << j.dump(2) << "\n";
  else print_text(o.model, j, cfg, weights_dir);
  return 0;
}

CADA_REGISTER_COMMAND(cada::cli::CommandSpec{
    "info", "Architecture, parameter count, dtype, tokenizer and chat template of a model folder",
    [](CLI::App& sub) -> cada::cli::Runner {
      auto o = std::make_shared<Opts>();
      sub.add_option("--model", o->model, "Hugging Face model folder")->required();
      sub.add_flag("--json", o->json, "print JSON instead of text");
      return [o]() { return run(*o); };
    }});

}  // namespace cmd_info
}  // namespace
