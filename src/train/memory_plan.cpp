#include "cada/train/memory_plan.h"

#include <algorithm>
#include <cstdio>

#include "cada/model/lora.h"
#include "cada/util/error.h"

namespace cada::train {

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

std::string count(double n) {
  char buf[32];
  if (n >= 1e9) std::snprintf(buf, sizeof buf, "%.2fB", n / 1e9);
  else if (n >= 1e6) std::snprintf(buf, sizeof buf, "%.1fM", n / 1e6);
  else std::snprintf(buf, sizeof buf, "%.0f", n);
  return buf;
}

// 15.58 GiB, 412.3 MiB, 96.0 KiB.
std::string human(double bytes) {
  char buf[32];
  if (bytes >= kGiB) std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / kGiB);
  else if (bytes >= 1024.0 * 1024.0) std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / (1024.0 * 1024.0));
  else std::snprintf(buf, sizeof buf, "%.1f KiB", bytes / 1024.0);
  return buf;
}

// (in, out) of each projection of a decoder layer.
std::pair<int64_t, int64_t> projection_shape(const model::ModelConfig& m, const std::string& name) {
  const int64_t C = m.hidden_size, F = m.intermediate_size, q = m.num_attention_heads * m.head_dim,
                kv = m.num_key_value_heads * m.head_dim;
  if (name == "q_proj") return {C, q};
  if (name == "k_proj" || name == "v_proj") return {C, kv};
  if (name == "o_proj") return {q, C};
  if (name == "gate_proj" || name == "up_proj") return {C, F};
  if (name == "down_proj") return {F, C};
  CADA_FAIL("lora.target_modules: unknown projection '", name, "'");
}

int64_t adapted_layers(const model::ModelConfig& m, const model::LoraConfig& lora) {
  if (lora.layers.empty()) return m.num_hidden_layers;
  return std::count_if(lora.layers.begin(), lora.layers.end(),
                       [&](int64_t l) { return l >= 0 && l < m.num_hidden_layers; });
}

// The weights autocast keeps bf16 casts of during a forward and backward: every weight but the
// input embedding (a tied head reads the embedding matrix, so then it is cast too). Checkpointed
// layers cast without the cache (model/checkpointing.h): then the head and one layer at a time.
double cast_matrix_elems(const model::ModelConfig& m, int64_t parameters, bool checkpointing) {
  const double emb = static_cast<double>(m.vocab_size) * static_cast<double>(m.hidden_size);
  const bool tied = m.tie_word_embeddings && !m.is_sequence_classifier();
  const double all = static_cast<double>(parameters) - (tied ? 0.0 : emb);
  if (!checkpointing) return all;
  const double head = m.is_sequence_classifier() ? static_cast<double>(m.num_labels * m.hidden_size) : emb;
  const double layers = all - head - static_cast<double>(m.hidden_size);
  return head + layers / static_cast<double>(m.num_hidden_layers);
}

}  // namespace

int dtype_bytes(const std::string& dtype) {
  if (dtype == "float32") return 4;
  if (dtype == "bfloat16" || dtype == "float16") return 2;
  CADA_FAIL("unknown dtype '", dtype, "' (expected float32, bfloat16 or float16)");
}

c10::Device plan_device(const std::string& name) {
  try {
    return c10::Device(name);
  } catch (const std::exception&) {
    CADA_FAIL("device '", name, "': expected cpu, cuda or cuda:N");
  }
}

int64_t lora_trainable_parameters(const model::ModelConfig& m, const model::LoraConfig& lora) {
  if (!lora.enabled()) return 0;
  int64_t per_layer = 0;
  for (const auto& t : lora.targets()) {
    auto [in, out] = projection_shape(m, t);
    per_layer += lora.r * (in + out);
  }
  int64_t n = per_layer * adapted_layers(m, lora);
  for (const auto& s : lora.modules_to_save) {
    if (s == "score" && m.is_sequence_classifier()) n += m.num_labels * m.hidden_size;
    if (s == "lm_head" && !m.is_sequence_classifier()) n += m.vocab_size * m.hidden_size;
  }
  return n;
}

double layer_activation_bytes_per_token(const model::ModelConfig& m, int a) {
  const double C = static_cast<double>(m.hidden_size), F = static_cast<double>(m.intermediate_size),
               q = static_cast<double>(m.num_attention_heads * m.head_dim),
               kv = static_cast<double>(m.num_key_value_heads * m.head_dim);
  // The float32 residual stream and the two norms' float32 outputs, kept for their backward;
  // the norms' outputs in the compute dtype (inputs of q/k/v and gate/up); q, k, v; q and k
  // after RoPE; the attention output (o_proj's input); gate, up, act(gate) and the product
  // (down's input). Gemma-2's sandwich norms add two more.
  double b = 4.0 * (4.0 * C) + a * (2.0 * C + (q + 2.0 * kv) + (q + kv) + q + 4.0 * F);
  if (m.sandwich_norms) b += 4.0 * (4.0 * C);
  return b;
}

static double lora_layer_bytes_per_token(const model::ModelConfig& m, const model::LoraConfig& lora, int a) {
  if (!lora.enabled()) return 0;
  // Each adapter keeps the input of its A product in the compute dtype (a bf16 cast under
  // autocast), the dropout's mask when dropout > 0, and its rank-r middle.
  double b = 0;
  for (const auto& t : lora.targets()) {
    const double in = static_cast<double>(projection_shape(m, t).first);
    b += in * a + (lora.dropout > 0 ? in : 0.0) + static_cast<double>(lora.r) * a;
  }
  return b;
}

double activation_bytes_per_token(const model::ModelConfig& m, const model::LoraConfig& lora, int a,
                                  bool checkpointing) {
  const double L = static_cast<double>(m.num_hidden_layers);
  const double plain = layer_activation_bytes_per_token(m, a);
  const double adapted = plain + lora_layer_bytes_per_token(m, lora, a);
  const double n_adapted = static_cast<double>(lora.enabled() ? adapted_layers(m, lora) : 0);
  if (checkpointing) return L * 4.0 * static_cast<double>(m.hidden_size) + (n_adapted > 0 ? adapted : plain);
  return (L - n_adapted) * plain + n_adapted * adapted;
}

double MemoryPlan::total() const {
  double t = 0;
  for (const auto& i : items) t += i.bytes;
  return t;
}

double MemoryPlan::bytes(const std::string& name) const {
  for (const auto& i : items)
    if (i.name == name) return i.bytes;
  return 0;
}

std::string MemoryPlan::table() const {
  std::string out;
  char line[256];
  for (const auto& i : items) {
    std::snprintf(line, sizeof line, "  %-16s %11s  %s\n", i.name.c_str(), human(i.bytes).c_str(), i.detail.c_str());
    out += line;
  }
  std::snprintf(line, sizeof line, "  %-16s %11s  %s of %s parameters train\n", "total", human(total()).c_str(),
                count(static_cast<double>(trainable)).c_str(), count(static_cast<double>(parameters)).c_str());
  return out + line;
}

nlohmann::json MemoryPlan::to_json() const {
  nlohmann::json items_j = nlohmann::json::object();
  for (const auto& i : items) items_j[i.name] = i.bytes;
  return {{"parameters", parameters}, {"trainable", trainable}, {"total_bytes", total()}, {"items", items_j}};
}

MemoryPlan plan_memory(const MemoryPlanInput& in) {
  const auto& m = in.model;
  const auto& lora = in.trainable.lora;
  const at::Device dev = plan_device(in.device);
  MemoryPlan p;
  p.parameters = m.num_parameters();
  p.trainable = lora.enabled() ? lora_trainable_parameters(m, lora) : p.parameters;
  const double P = static_cast<double>(p.parameters), T = static_cast<double>(p.trainable);
  const std::string wdt = base_weights_dtype(in.trainable, dev);
  const int a = in.autocast ? 2 : 4;

  if (lora.enabled())
    p.items.push_back({"weights", P * dtype_bytes(wdt) + T * 4.0,
                       count(P) + " frozen in " + wdt + " + " + count(T) + " trainable in float32"});
  else
    p.items.push_back({"weights", P * 4.0, count(P) + " float32 master weights"});
  if (in.autocast && wdt == "float32")
    p.items.push_back({"autocast copies", cast_matrix_elems(m, p.parameters, in.trainable.gradient_checkpointing) * 2.0,
                       in.trainable.gradient_checkpointing ? "bf16 casts of the head and of the layer being run"
                                                           : "bf16 casts of the weights for a forward"});
  p.items.push_back({"gradients", T * 4.0, count(T) + " in float32"});
  p.items.push_back({"optimizer", T * 8.0, "AdamW's two float32 moments"});
  if (!in.reference_dtype.empty())
    p.items.push_back({"reference", P * dtype_bytes(in.reference_dtype), "a separate reference model in " + in.reference_dtype});
  if (!in.rollout_dtype.empty())
    p.items.push_back({"rollout copy", P * dtype_bytes(in.rollout_dtype), "the policy in " + in.rollout_dtype + " for generation"});
  if (in.kv_rows > 0) {
    const double per = 2.0 * m.num_hidden_layers * m.num_key_value_heads * m.head_dim * dtype_bytes(in.kv_dtype);
    p.items.push_back({"KV cache", per * in.kv_rows * in.kv_tokens,
                       std::to_string(in.kv_rows) + " rows x " + std::to_string(in.kv_tokens) + " tokens in " + in.kv_dtype});
  }
  const double tokens = static_cast<double>(in.micro_batch_rows * in.row_tokens);
  const bool ckpt = in.trainable.gradient_checkpointing;
  p.items.push_back({"activations", tokens * activation_bytes_per_token(m, lora, a, ckpt),
                     std::to_string(in.micro_batch_rows) + " x " + std::to_string(in.row_tokens) + " tokens" +
                         (ckpt ? ", checkpointed per layer" : "") + (a == 2 ? ", bf16" : ", float32")});
  if (in.lm_head) {
    const double V = static_cast<double>(m.vocab_size);
    const double rows = std::min(tokens, std::max(1.0, std::floor(static_cast<double>(in.logits_chunk_elems) / V)));
    p.items.push_back({"logits", rows * V * 4.0 * 3.0, "one chunk of " + count(rows) + " rows x " + count(V) +
                                                       " (logits, log-softmax, gradient)"});
  }
  return p;
}

std::string describe_peak(const kernels::MemoryPeak& peak, const MemoryPlan& plan) {
  if (peak.source == "peak RSS")
    return "memory after the first step: peak RSS " + human(peak.allocated_bytes) + " (plan " + human(plan.total()) +
           "; the process adds its libraries and data)";
  return "memory after the first step: peak " + human(peak.allocated_bytes) + " allocated, " +
         human(peak.reserved_bytes) + " reserved of " + human(peak.device_total_bytes) + " (plan " +
         human(plan.total()) + ")";
}

void add_peak_metrics(std::map<std::string, double>& m, const kernels::MemoryPeak& peak, const MemoryPlan& plan) {
  m["memory/peak_allocated_gib"] = peak.allocated_bytes / kGiB;
  m["memory/peak_reserved_gib"] = peak.reserved_bytes / kGiB;
  m["memory/plan_gib"] = plan.total() / kGiB;
  if (peak.device_total_bytes > 0) m["memory/device_gib"] = peak.device_total_bytes / kGiB;
}

}  // namespace cada::train
