// cada init-model: a fresh randomly initialised model folder in the HF layout, with a
// tokenizer copied from another folder or trained on a corpus.
#include <fstream>
#include <iterator>

#include "cada/io/files.h"
#include "cada/io/jsonl.h"
#include "cada/model/loader.h"
#include "cada/text/tokenizer.h"
#include "cada/util/log.h"
#include "command.h"

// A named namespace per command file: the files may be compiled as one (unity build).
namespace {
namespace cmd_init_model {

struct Opts {
  std::string preset = "tiny";
  std::string config;            // HF config.json overriding the preset
  std::string tokenizer;         // copy the tokenizer of this folder
  std::string train_tokenizer;   // or train one on this corpus (.jsonl with "text", or .txt)
  int vocab_size = 2048;
  std::string out;
  uint64_t seed = 0;
  std::string dtype = "float32";
};

// Architecture presets (Llama layout, tied embeddings). vocab_size comes from the tokenizer.
struct Preset {
  const char* name;
  int hidden, intermediate, layers, heads, kv_heads, max_positions;
};
constexpr Preset kPresets[] = {
    {"mini", 192, 512, 4, 4, 2, 512},     // about 2M parameters: the quickstart's base (scripts/pipeline.sh)
    {"tiny", 256, 688, 6, 4, 2, 512},     // about 5M parameters: the project's laptop default
    {"small", 768, 2048, 12, 12, 4, 2048},  // about 100M parameters (with a 32k vocabulary)
};

nlohmann::json preset_config(const std::string& name) {
  std::string names;  // "mini, tiny or small"
  const size_t n = std::size(kPresets);
  for (size_t i = 0; i < n; ++i) {
    const Preset& p = kPresets[i];
    if (name == p.name)
      return {{"hidden_size", p.hidden}, {"intermediate_size", p.intermediate}, {"num_hidden_layers", p.layers},
              {"num_attention_heads", p.heads}, {"num_key_value_heads", p.kv_heads},
              {"max_position_embeddings", p.max_positions}, {"tie_word_embeddings", true}};
    names += (i == 0 ? "" : i + 1 == n ? " or " : ", ") + std::string(p.name);
  }
  CADA_FAIL("unknown preset '", name, "' (expected ", names, ")");
}

std::vector<std::string> corpus_lines(const std::string& path) {
  std::vector<std::string> lines;
  auto split = [&](const std::string& doc) {
    size_t s = 0;
    while (s <= doc.size()) {
      size_t e = doc.find('\n', s);
      if (e == std::string::npos) e = doc.size();
      if (e > s) lines.push_back(doc.substr(s, e - s));
      s = e + 1;
    }
  };
  if (path.size() > 6 && path.substr(path.size() - 6) == ".jsonl") {
    for (const auto& r : cada::io::read_jsonl(path)) {
      CADA_CHECK(r.contains("text") && r["text"].is_string(), path, ": every record needs a 'text' string");
      split(r["text"].get<std::string>());
    }
  } else {
    split(cada::io::read_file(path));
  }
  CADA_CHECK(!lines.empty(), path, ": the corpus is empty");
  return lines;
}

int run(const Opts& o) {
  using namespace cada;
  CADA_CHECK(o.tokenizer.empty() != o.train_tokenizer.empty(),
             "give exactly one of --tokenizer DIR or --train-tokenizer CORPUS");
  io::make_dirs(o.out);
  if (!o.tokenizer.empty()) {
    model::copy_tokenizer_files(o.tokenizer, o.out);
  } else {
    CADA_INFO("training a sentencepiece tokenizer (", o.vocab_size, " pieces) on ", o.train_tokenizer);
    text::train_sentencepiece(corpus_lines(o.train_tokenizer), o.vocab_size, o.out,
                              {"<|system|>", "<|user|>", "<|assistant|>", "<|end|>"});
  }
  auto tok = text::load_tokenizer(o.out);

  nlohmann::json cfg = o.config.empty() ? preset_config(o.preset)
                                        : nlohmann::json::parse(io::read_file(o.config), nullptr, false);
  CADA_CHECK(!cfg.is_discarded() && cfg.is_object(), o.config, ": not a JSON object");
  if (!cfg.contains("model_type")) cfg["model_type"] = "llama";
  // A config's own vocab_size may exceed the tokenizer's: real checkpoints pad their embedding
  // rows (Qwen2.5: 151936 rows for 151665 tokens), and shape benchmarks need the real head.
  if (cfg.contains("vocab_size")) {
    CADA_CHECK(cfg["vocab_size"].is_number_integer() && cfg["vocab_size"].get<int64_t>() >= tok->vocab_size(), o.config,
               ": vocab_size must be an integer of at least the tokenizer's ", tok->vocab_size(), " tokens");
  } else {
    cfg["vocab_size"] = tok->vocab_size();
  }
  if (tok->bos_id) cfg["bos_token_id"] = *tok->bos_id;
  if (tok->eos_id) cfg["eos_token_id"] = *tok->eos_id;
  if (tok->pad_id) cfg["pad_token_id"] = *tok->pad_id;
  cfg["torch_dtype"] = o.dtype;
  auto mc = model::ModelConfig::from_json(cfg, o.config.empty() ? "preset " + o.preset : o.config);

  model::Transformer net(mc);
  model::init_weights(net, o.seed);
  model::save_model(net, o.out, model::parse_dtype(o.dtype));
  nlohmann::json gen = {{"_from_model_config", true}};
  if (tok->bos_id) gen["bos_token_id"] = *tok->bos_id;
  if (!tok->stop_ids.empty()) gen["eos_token_id"] = tok->stop_ids;
  if (tok->pad_id) gen["pad_token_id"] = *tok->pad_id;
  io::atomic_write_file(o.out + "/generation_config.json", gen.dump(2) + "\n");
  CADA_INFO("wrote ", o.out, " (", mc.num_parameters(), " parameters, vocab ", mc.vocab_size, ")");
  return 0;
}

CADA_REGISTER_COMMAND(cada::cli::CommandSpec{
    "init-model", "Create a randomly initialised model folder (HF layout) from a preset or config.json",
    [](CLI::App& sub) -> cada::cli::Runner {
      auto o = std::make_shared<Opts>();
      sub.add_option("--preset", o->preset, "architecture preset: mini (~2M), tiny (~5M) or small (~100M)");
      sub.add_option("--config", o->config,
                     "HF config.json to use instead of the preset (its vocab_size, when given, may exceed the "
                     "tokenizer's: padded embedding rows)");
      sub.add_option("--tokenizer", o->tokenizer, "copy the tokenizer files of this model folder");
      sub.add_option("--train-tokenizer", o->train_tokenizer,
                     "train a sentencepiece tokenizer on this corpus (.jsonl with 'text', or plain text)");
      sub.add_option("--vocab-size", o->vocab_size, "pieces of the trained tokenizer");
      sub.add_option("--out", o->out, "output model folder")->required();
      sub.add_option("--seed", o->seed, "initialisation seed");
      sub.add_option("--dtype", o->dtype, "float32, bfloat16 or float16 on disk");
      return [o]() { return run(*o); };
    }});

}  // namespace cmd_init_model
}  // namespace
