// cada convert: re-save a model folder in another dtype or shard size (HF layout).
#include "cada/model/loader.h"
#include "cada/util/log.h"
#include "command.h"

// A named namespace per command file: the files may be compiled as one (unity build).
namespace {
namespace cmd_convert {

struct Opts {
  std::string model, out;
  std::string dtype = "bfloat16";
  size_t max_shard_size = size_t(5) << 30;
};

int run(const Opts& o) {
  using namespace cada;
  auto net = model::load_model(o.model, {"cpu", "float32"});
  model::save_model(net, o.out, model::parse_dtype(o.dtype), o.max_shard_size);
  model::copy_tokenizer_files(o.model, o.out);
  CADA_INFO("wrote ", o.out, " (", o.dtype, ")");
  return 0;
}

CADA_REGISTER_COMMAND(cada::cli::CommandSpec{
    "convert", "Re-save a model folder in another dtype or shard size (Hugging Face layout)",
    [](CLI::App& sub) -> cada::cli::Runner {
      auto o = std::make_shared<Opts>();
      sub.add_option("--model", o->model, "input Hugging Face model folder")->required();
      sub.add_option("--out", o->out, "output folder")->required();
      sub.add_option("--dtype", o->dtype, "float32, bfloat16 or float16");
      sub.add_option("--max-shard-size", o->max_shard_size, "bytes per weights file before sharding");
      return [o]() { return run(*o); };
    }});

}  // namespace cmd_convert
}  // namespace
