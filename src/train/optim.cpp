#include "cada/train/optim.h"

#include <cmath>
#include <unordered_map>

#include "cada/io/files.h"
#include "cada/io/safetensors.h"
#include "cada/util/error.h"

namespace cada::train {

double lr_at(const OptimOptions& o, int64_t step, int64_t total) {
  if (o.warmup_steps > 0 && step < o.warmup_steps) return o.lr * (step + 1) / static_cast<double>(o.warmup_steps);
  if (o.schedule == "constant") return o.lr;
  const int64_t decay = std::max<int64_t>(1, total - o.warmup_steps);
  const double progress = std::min(1.0, (step - o.warmup_steps) / static_cast<double>(decay));
  double factor = o.schedule == "linear" ? 1.0 - progress : 0.5 * (1.0 + std::cos(M_PI * progress));
  return o.lr * (o.min_lr_ratio + (1.0 - o.min_lr_ratio) * factor);
}

std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<at::Tensor>& params, const OptimOptions& o) {
  CADA_CHECK(o.lr > 0, "optim.lr must be positive, got ", o.lr);
  auto opts = torch::optim::AdamWOptions(o.lr).betas({o.beta1, o.beta2}).eps(o.eps).weight_decay(o.weight_decay);
  return std::make_unique<torch::optim::AdamW>(params, opts);
}

void set_lr(torch::optim::Optimizer& opt, double lr) {
  for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
}

namespace {

constexpr const char* kOptimizerFormat = "cada-adamw-1";

// Name of each optimizer parameter, by tensor identity.
std::unordered_map<const void*, std::string> names_by_impl(const std::vector<std::pair<std::string, at::Tensor>>& names) {
  std::unordered_map<const void*, std::string> m;
  for (const auto& [name, t] : names) m[t.unsafeGetTensorImpl()] = name;
  return m;
}

std::string param_name(const std::unordered_map<const void*, std::string>& m, const at::Tensor& p) {
  auto it = m.find(p.unsafeGetTensorImpl());
  CADA_CHECK(it != m.end(), "optimizer state: an optimized parameter is not among the model's named parameters");
  return it->second;
}

torch::optim::AdamW& as_adamw(torch::optim::Optimizer& opt) {
  auto* a = dynamic_cast<torch::optim::AdamW*>(&opt);
  CADA_CHECK(a != nullptr, "optimizer state: only AdamW is supported");
  return *a;
}

}  // namespace

void save_optimizer_state(const std::string& dir, torch::optim::Optimizer& optimizer,
                          const std::vector<std::pair<std::string, at::Tensor>>& names) {
  auto& opt = as_adamw(optimizer);
  const auto by_impl = names_by_impl(names);
  nlohmann::json groups = nlohmann::json::array(), steps = nlohmann::json::object();
  std::vector<at::Tensor> keep;
  std::vector<io::TensorData> tensors;
  auto add = [&](const std::string& name, const at::Tensor& t) {
    auto c = t.detach().to(at::kCPU, at::kFloat).contiguous();
    keep.push_back(c);
    tensors.push_back({name, io::DType::F32, std::vector<int64_t>(c.sizes().begin(), c.sizes().end()), c.data_ptr(),
                       static_cast<size_t>(c.nbytes())});
  };
  for (auto& g : opt.param_groups()) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(g.options());
    nlohmann::json params = nlohmann::json::array();
    for (const auto& p : g.params()) {
      const std::string name = param_name(by_impl, p);
      params.push_back(name);
      auto it = opt.state().find(p.unsafeGetTensorImpl());
      if (it == opt.state().end()) continue;  // not updated yet
      const auto& st = static_cast<const torch::optim::AdamWParamState&>(*it->second);
      steps[name] = st.step();
      add(name + ".exp_avg", st.exp_avg());
      add(name + ".exp_avg_sq", st.exp_avg_sq());
      if (o.amsgrad() && st.max_exp_avg_sq().defined()) add(name + ".max_exp_avg_sq", st.max_exp_avg_sq());
    }
    groups.push_back({{"lr", o.lr()},
                      {"betas", {std::get<0>(o.betas()), std::get<1>(o.betas())}},
                      {"eps", o.eps()},
                      {"weight_decay", o.weight_decay()},
                      {"amsgrad", o.amsgrad()},
                      {"params", params}});
  }
  io::write_safetensors(dir + "/optimizer.safetensors", tensors, {{"format", kOptimizerFormat}});
  const nlohmann::json j = {{"format", kOptimizerFormat}, {"param_groups", groups}, {"step", steps}};
  io::atomic_write_file(dir + "/optimizer.json", j.dump(1) + "\n");
}

void load_optimizer_state(const std::string& dir, torch::optim::Optimizer& optimizer,
                          const std::vector<std::pair<std::string, at::Tensor>>& names) {
  auto& opt = as_adamw(optimizer);
  const std::string json_path = dir + "/optimizer.json", st_path = dir + "/optimizer.safetensors";
  CADA_CHECK(io::file_exists(json_path), json_path, ": missing (the checkpoint is incomplete; resume from another)");
  auto j = nlohmann::json::parse(io::read_file(json_path), nullptr, false);
  CADA_CHECK(!j.is_discarded() && j.is_object() && j.value("format", "") == kOptimizerFormat &&
                 j.contains("param_groups") && j["param_groups"].is_array() && j.contains("step") && j["step"].is_object(),
             json_path, ": not a ", kOptimizerFormat, " optimizer state (damaged or from another tool)");
  auto file = io::SafetensorsFile::open(st_path);
  const auto by_impl = names_by_impl(names);
  auto& groups = opt.param_groups();
  CADA_CHECK(j["param_groups"].size() == groups.size(), json_path, ": ", j["param_groups"].size(),
             " param groups saved, the optimizer has ", groups.size());
  torch::NoGradGuard ng;
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const auto& sg = j["param_groups"][gi];
    auto& o = static_cast<torch::optim::AdamWOptions&>(groups[gi].options());
    try {
      const auto& saved = sg.at("params");
      CADA_CHECK(saved.size() == groups[gi].params().size(), json_path, ": param group ", gi, " saved ", saved.size(),
                 " parameters, the optimizer has ", groups[gi].params().size());
      o.lr(sg.at("lr").get<double>()).eps(sg.at("eps").get<double>()).weight_decay(sg.at("weight_decay").get<double>());
      o.betas({sg.at("betas").at(0).get<double>(), sg.at("betas").at(1).get<double>()}).amsgrad(sg.at("amsgrad").get<bool>());
      for (size_t k = 0; k < saved.size(); ++k) {
        const auto& p = groups[gi].params()[k];
        const std::string name = param_name(by_impl, p);
        CADA_CHECK(saved[k].get<std::string>() == name, json_path, ": parameter ", k, " of group ", gi, " is '",
                   saved[k].get<std::string>(), "', the model's is '", name, "'");
        if (!j["step"].contains(name)) continue;
        auto tensor = [&](const std::string& key) {
          const io::TensorView& tv = file->get(name + "." + key);
          CADA_CHECK(tv.dtype == io::DType::F32 && tv.shape == std::vector<int64_t>(p.sizes().begin(), p.sizes().end()),
                     st_path, ": '", name, ".", key, "' does not match the parameter's shape");
          return at::from_blob(const_cast<uint8_t*>(tv.data), tv.shape, at::kFloat).to(p.device(), p.scalar_type(),
                                                                                      false, /*copy=*/true);
        };
        auto st = std::make_unique<torch::optim::AdamWParamState>();
        st->step(j["step"][name].get<int64_t>());
        st->exp_avg(tensor("exp_avg"));
        st->exp_avg_sq(tensor("exp_avg_sq"));
        if (o.amsgrad()) st->max_exp_avg_sq(tensor("max_exp_avg_sq"));
        opt.state()[p.unsafeGetTensorImpl()] = std::move(st);
      }
    } catch (const nlohmann::json::exception& e) {
      CADA_FAIL(json_path, ": param group ", gi, " is malformed (", e.what(), ")");
    }
  }
}

double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  std::vector<at::Tensor> grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return 0.0;
  std::vector<at::Tensor> norms;
  for (const auto& g : grads) norms.push_back(g.detach().to(at::kFloat).norm(2));
  const double total = at::stack(norms).norm(2).item<double>();
  if (max_norm > 0 && total > max_norm) {
    const double scale = max_norm / (total + 1e-6);
    for (auto& g : grads) g.mul_(scale);
  }
  return total;
}

}  // namespace cada::train
