#include "cada/model/loader.h"
#include "cada/model/peft_io.h"
#include "cada/util/launch.h"

#include <sched.h>

#include <algorithm>

#include <cstdlib>
#include <climits>
#include <cstdlib>
#include <set>
#include <thread>

#include "cada/kernels/gemm.h"
#include "cada/util/log.h"

#include "cada/io/checkpoint.h"
#include "cada/io/files.h"
#include "cada/util/error.h"

namespace cada::model {

at::ScalarType parse_dtype(const std::string& name) {
  if (name == "float32" || name == "fp32" || name == "f32") return at::kFloat;
  if (name == "bfloat16" || name == "bf16") return at::kBFloat16;
  if (name == "float16" || name == "fp16" || name == "f16" || name == "half") return at::kHalf;
  CADA_FAIL("unknown dtype '", name, "' (expected float32, bfloat16 or float16)");
}

std::string dtype_to_hf(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    default: CADA_FAIL("dtype ", c10::toString(t), " cannot be saved as model weights");
  }
}

at::Device parse_device(const std::string& name) {
  try {
    at::Device d(name);
    CADA_CHECK(d.is_cpu() || d.is_cuda(), "device '", name, "' is not supported (expected cpu or cuda[:N])");
    if (d.is_cuda()) {
      CADA_CHECK(torch::cuda::is_available(), "device '", name, "' was requested but no CUDA device is available");
      if (!d.has_index()) {
        // In a multi-process launch "cuda" is this process's GPU on its node: LOCAL_RANK.
        const int local = launch_from_env().local_rank;
        const int n = static_cast<int>(torch::cuda::device_count());
        d = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(n > 0 ? local % n : 0));
      }
    }
    return d;
  } catch (const c10::Error&) {
    CADA_FAIL("unknown device '", name, "' (expected cpu, cuda or cuda:N)");
  }
}

static at::ScalarType to_scalar(io::DType d, const std::string& where) {
  switch (d) {
    case io::DType::F32: return at::kFloat;
    case io::DType::F16: return at::kHalf;
    case io::DType::BF16: return at::kBFloat16;
    case io::DType::F64: return at::kDouble;
    default: CADA_FAIL(where, ": dtype ", io::dtype_name(d), " is not a floating-point weight dtype");
  }
}

static io::DType to_io(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return io::DType::F32;
    case at::kHalf: return io::DType::F16;
    case at::kBFloat16: return io::DType::BF16;
    default: CADA_FAIL("dtype ", c10::toString(t), " cannot be saved as model weights");
  }
}

static std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

Transformer load_model(const std::string& dir, const LoadOptions& opts) {
  if (is_adapter_folder(dir) && !io::file_exists(dir + "/config.json")) return load_model_with_adapter(dir, opts);
  ModelConfig cfg = ModelConfig::load(dir);
  auto reader = io::CheckpointReader::open(dir);
  const at::Device device = parse_device(opts.device);
  at::ScalarType dtype;
  if (opts.dtype == "auto") {
    dtype = device.is_cpu() ? at::kFloat : parse_dtype(cfg.torch_dtype);
  } else {
    dtype = parse_dtype(opts.dtype);
  }

  torch::NoGradGuard no_grad;
  Transformer model(cfg);
  std::vector<std::string> missing;
  std::set<std::string> used;
  for (auto& [name, param] : model->hf_named_parameters()) {
    if (!reader->contains(name)) {
      missing.push_back(name);
      continue;
    }
    used.insert(name);
    const io::TensorView& tv = reader->get(name);
    std::vector<int64_t> want(param.sizes().begin(), param.sizes().end());
    CADA_CHECK(tv.shape == want, dir, ": tensor '", name, "' has shape ", shape_str(tv.shape),
               " but config.json implies ", shape_str(want));
    auto src = at::from_blob(const_cast<uint8_t*>(tv.data), tv.shape,
                             at::TensorOptions().dtype(to_scalar(tv.dtype, dir + ": tensor '" + name + "'")));
    // Replace the freshly initialised parameter with the file's values, converted; the
    // float32 init tensor is released here, one tensor at a time.
    param.set_data(src.to(device, dtype, /*non_blocking=*/false, /*copy=*/true));
  }
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 5; ++i) list += (i ? ", " : "") + missing[i];
    if (missing.size() > 5) list += ", ...";
    CADA_FAIL(dir, ": ", missing.size(), " tensor(s) required by config.json are missing from the weights: ", list);
  }
  for (auto& buf : model->buffers()) buf.set_data(buf.to(device));
  std::vector<std::string> unexpected;
  for (const auto& name : reader->names()) {
    if (used.count(name) || name.find("rotary_emb.inv_freq") != std::string::npos) continue;
    if (name == "lm_head.weight" && cfg.tie_word_embeddings) continue;
    unexpected.push_back(name);
  }
  if (!unexpected.empty())
    CADA_WARN(dir, ": ", unexpected.size(), " tensor(s) in the checkpoint are not used by the model (first: ",
              unexpected.front(), ")");
  model->eval();
  return model;
}

Transformer load_as_classifier(const std::string& dir, int64_t num_labels, int64_t pad_id, const LoadOptions& opts) {
  const ModelConfig cfg = ModelConfig::load(dir).as_classifier(num_labels, pad_id);
  Transformer lm = load_model(dir, opts);
  Transformer rm(cfg);
  torch::NoGradGuard ng;
  auto src = lm->named_parameters();
  for (auto& item : rm->named_parameters()) {
    if (item.key().rfind("model.", 0) == 0) item.value().set_data(src[item.key()].detach());
  }
  rm->score->weight.set_data(at::zeros_like(rm->score->weight).to(parse_device(opts.device)));
  for (auto& buf : rm->buffers()) buf.set_data(buf.to(parse_device(opts.device)));
  rm->eval();
  return rm;
}

void save_model(Transformer& model, const std::string& dir, at::ScalarType dtype, size_t max_shard_bytes) {
  io::make_dirs(dir);
  std::vector<at::Tensor> keep;  // owns the converted tensors while writing
  std::vector<io::TensorData> tensors;
  for (auto& [name, param] : model->hf_named_parameters()) {
    auto t = param.detach().to(at::kCPU, dtype).contiguous();
    keep.push_back(t);
    tensors.push_back(io::TensorData{name, to_io(dtype), std::vector<int64_t>(t.sizes().begin(), t.sizes().end()),
                                     t.data_ptr(), static_cast<size_t>(t.nbytes())});
  }
  io::write_checkpoint(dir, tensors, max_shard_bytes);
  ModelConfig cfg = model->config();
  cfg.torch_dtype = dtype_to_hf(dtype);
  io::atomic_write_file(dir + "/config.json", cfg.to_json().dump(2) + "\n");
}

void init_weights(Transformer& model, uint64_t seed, double std) {
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& [name, p] : model->hf_named_parameters()) {
    const bool is_norm = name.find("norm.weight") != std::string::npos;
    const bool is_bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    if (is_norm) {
      p.fill_(model->config().norm_plus_one ? 0.0 : 1.0);  // Gemma's norms scale by (1 + w)
    } else if (is_bias) {
      p.zero_();
    } else {
      auto w = at::empty(p.sizes(), at::kFloat);
      w.normal_(0.0, std, gen);
      p.copy_(w);
    }
  }
}

// No std::filesystem here: libtorch.so exports its own copies of those symbols, and calls
// from a binary linked with libtorch can bind to them and crash.
static std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  return realpath(p.c_str(), buf) ? std::string(buf) : p;
}

void copy_tokenizer_files(const std::string& src_dir, const std::string& dst_dir) {
  io::make_dirs(dst_dir);
  if (real_path(src_dir) == real_path(dst_dir)) return;
  for (const char* f : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                        "generation_config.json", "chat_template.jinja", "added_tokens.json", "vocab.json",
                        "merges.txt"}) {
    const std::string src = src_dir + "/" + f;
    if (io::file_exists(src)) io::atomic_write_file(dst_dir + "/" + f, io::read_file(src));
  }
}

int configure_threads(int requested) {
  int n = requested;
  if (n <= 0) {
    if (const char* env = std::getenv("CADA_NUM_THREADS")) n = std::atoi(env);
  }
  if (n <= 0) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) n = CPU_COUNT(&set);
  }
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  if (requested <= 0 && !std::getenv("CADA_NUM_THREADS")) {
    // Processes of one multi-process launch share the node's cores.
    const int local = launch_from_env().local_world;
    if (local > 1) n = std::max(1, n / local);
  }
  at::set_num_threads(n);
  CADA_DEBUG("intra-op threads: ", n, "; CPU float32 matrix products: ", kernels::cpu_gemm_backend());
  return n;
}

}  // namespace cada::model
