// cada merge-adapter: fold a LoRA adapter folder (PEFT's layout) into its base model and write a
// plain Hugging Face model folder (for vLLM, transformers without PEFT, or full fine-tuning).
#include "cada/model/loader.h"
#include "cada/model/lora.h"
#include "cada/model/peft_io.h"
#include "cada/io/files.h"
#include "cada/util/error.h"
#include "cada/util/log.h"
#include "command.h"

// A named namespace per command file: the files may be compiled as one (unity build).
namespace {
namespace cmd_merge_adapter {

struct Opts {
  std::string adapter, base, out;
  std::string dtype = "auto";
  size_t max_shard_size = size_t(5) << 30;
};

int run(const Opts& o) {
  using namespace cada;
  CADA_CHECK(model::is_adapter_folder(o.adapter), o.adapter, ": has no ", model::kAdapterConfigName,
             " (expected a LoRA adapter folder written by cada or PEFT)");
  const std::string base = model::adapter_base_model(o.adapter, o.base);
  model::LoadOptions lo{"cpu", "float32", base};
  auto net = model::load_model(o.adapter, lo);
  const int64_t r = net->lora.r;
  model::merge_lora(*net);
  const std::string dtype = o.dtype == "auto" ? model::ModelConfig::load(base).torch_dtype : o.dtype;
  model::save_model(net, o.out, model::parse_dtype(dtype.empty() ? "float32" : dtype), o.max_shard_size);
  // Tokenizer files: the adapter folder's (a trainer copies them there), else the base's.
  model::copy_tokenizer_files(base, o.out);
  model::copy_tokenizer_files(o.adapter, o.out);
  CADA_INFO("merged the LoRA adapter (r=", r, ") of ", o.adapter, " into ", base, "; wrote ", o.out, " (", dtype, ")");
  return 0;
}

CADA_REGISTER_COMMAND(cada::cli::CommandSpec{
    "merge-adapter", "Merge a LoRA adapter folder (PEFT layout) into its base model and write a plain model folder",
    [](CLI::App& sub) -> cada::cli::Runner {
      auto o = std::make_shared<Opts>();
      sub.add_option("--adapter", o->adapter, "adapter folder (adapter_config.json + adapter_model.safetensors)")->required();
      sub.add_option("--base", o->base, "base model folder (default: the adapter's base_model_name_or_path)");
      sub.add_option("--out", o->out, "output folder (Hugging Face layout)")->required();
      sub.add_option("--dtype", o->dtype, "auto (the base's dtype), float32, bfloat16 or float16");
      sub.add_option("--max-shard-size", o->max_shard_size, "bytes per weights file before sharding");
      return [o]() { return run(*o); };
    }});

}  // namespace cmd_merge_adapter
}  // namespace
