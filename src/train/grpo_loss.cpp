#include "cada/train/grpo_loss.h"

#include "cada/kernels/ops.h"
#include "cada/util/error.h"

namespace cada::train {

void validate(const AdvantageOptions& a, const PolicyLossOptions& p) {
  CADA_CHECK(a.estimator == "grpo" || a.estimator == "rloo", "advantage.estimator '", a.estimator,
             "' is not one of grpo, rloo");
  CADA_CHECK(a.scale_rewards == "group" || a.scale_rewards == "batch" || a.scale_rewards == "none",
             "advantage.scale_rewards '", a.scale_rewards, "' is not one of group, batch, none");
  CADA_CHECK(p.loss_type == "grpo" || p.loss_type == "bnpo" || p.loss_type == "dr_grpo" || p.loss_type == "dapo",
             "loss.loss_type '", p.loss_type, "' is not one of grpo, bnpo, dr_grpo, dapo");
  CADA_CHECK(p.importance_sampling_level == "token" || p.importance_sampling_level == "sequence",
             "loss.importance_sampling_level '", p.importance_sampling_level, "' is not one of token, sequence");
  CADA_CHECK(p.kl_estimator == "k1" || p.kl_estimator == "k2" || p.kl_estimator == "k3", "loss.kl_estimator '",
             p.kl_estimator, "' is not one of k1, k2, k3");
  CADA_CHECK(p.epsilon_low >= 0 && p.epsilon_low < 1, "loss.epsilon_low must be in [0, 1)");
  CADA_CHECK(p.epsilon_high >= 0, "loss.epsilon_high must be >= 0");
  CADA_CHECK(p.dual_clip == 0 || p.dual_clip > 1, "loss.dual_clip must be 0 (off) or > 1");
  CADA_CHECK(p.beta >= 0, "loss.beta must be >= 0");
  CADA_CHECK(p.max_completion_length > 0, "loss.max_completion_length must be positive");
}

AdvantageResult compute_advantages(const at::Tensor& rewards, int64_t G, const AdvantageOptions& opts) {
  CADA_CHECK(rewards.dim() == 1 && G >= 2 && rewards.size(0) % G == 0, "rewards (", rewards.sizes(),
             ") must split into groups of G = ", G, " >= 2");
  auto r = rewards.to(at::kFloat);
  auto grouped = r.view({-1, G});
  auto mean = grouped.mean(1, true);
  auto gstd = grouped.std(1, /*unbiased=*/true, true);  // (groups,1)
  AdvantageResult res;
  res.group_std = gstd.squeeze(1);
  res.zero_std_groups = at::isclose(res.group_std, at::zeros_like(res.group_std)).sum().item<int64_t>();
  // r - mean(group), divided by the group's std for scale_rewards "group": the group-advantage
  // kernel (CUDA when the rewards are there, else its CPU reference).
  const bool by_group = opts.scale_rewards == "group";
  auto adv = kernels::group_advantages(r, G, by_group, opts.eps);
  if (opts.estimator == "rloo") adv = adv * (static_cast<double>(G) / (G - 1));  // r_i - mean of the other G-1
  if (opts.scale_rewards == "batch") adv = adv / (r.std(/*unbiased=*/true) + opts.eps);
  res.advantages = adv.reshape({-1});
  return res;
}

at::Tensor kl_estimate(const at::Tensor& logp, const at::Tensor& ref, const std::string& estimator) {
  auto d = ref - logp;
  if (estimator == "k1") return -d;
  if (estimator == "k2") return 0.5 * d * d;
  return at::exp(d) - d - 1;
}

LossOutput policy_loss(const LossInputs& in, const PolicyLossOptions& o) {
  const auto& logp = in.logps;
  const auto& mask = in.mask;
  auto old = in.old_logps.defined() ? in.old_logps : logp.detach();
  auto adv = in.advantages.dim() == 1 ? in.advantages.unsqueeze(1) : in.advantages;  // (B,1)
  auto log_ratio = logp - old;
  at::Tensor log_w = log_ratio;
  if (o.importance_sampling_level == "sequence")
    log_w = ((log_ratio * mask).sum(-1) / mask.sum(-1).clamp_min(1.0)).unsqueeze(-1);  // (B,1)
  auto coef_1 = at::exp(log_w);
  auto coef_2 = at::clamp(coef_1, 1 - o.epsilon_low, 1 + o.epsilon_high);
  auto c1 = o.delta ? at::clamp_max(coef_1, *o.delta) : coef_1;
  auto per_token = -at::minimum(c1 * adv, coef_2 * adv);
  if (o.dual_clip > 0)  // verl: for A < 0 the loss is bounded by -c * A
    per_token = at::where(adv < 0, at::minimum(per_token, -adv * o.dual_clip), per_token);
  at::Tensor kl;
  if (o.beta != 0) {
    CADA_CHECK(in.ref_logps.defined(), "beta > 0 needs reference log-probs");
    kl = kl_estimate(logp, in.ref_logps, o.kl_estimator);
    per_token = per_token + o.beta * kl;
  }
  const double accum = static_cast<double>(in.grad_accum_steps);
  at::Tensor loss;
  if (o.loss_type == "grpo") {
    loss = ((per_token * mask).sum(-1) / mask.sum(-1).clamp_min(1.0)).mean();
  } else if (o.loss_type == "bnpo") {
    loss = (per_token * mask).sum() / mask.sum().clamp_min(1.0);
  } else if (o.loss_type == "dr_grpo") {
    loss = (per_token * mask).sum() / static_cast<double>(per_token.size(0) * o.max_completion_length);
  } else {  // dapo: token mean over the whole generation batch
    CADA_CHECK(in.num_items_in_batch > 0, "dapo needs the number of completion tokens in the generation batch");
    loss = (per_token * mask).sum() / in.num_items_in_batch;
  }
  LossOutput out;
  out.policy_loss = loss.item<double>();
  if (o.loss_type != "dapo") loss = loss / accum;
  auto masked_mean = [&](const at::Tensor& x) {
    if (x.size(1) == 1) return x.mean().item<double>();
    return ((x * mask).sum() / mask.sum().clamp_min(1.0)).item<double>();
  };
  if (in.entropies.defined()) {
    out.entropy = masked_mean(in.entropies.detach());
    if (o.entropy_coef != 0)
      loss = loss - o.entropy_coef * (in.entropies * mask).sum() / mask.sum().clamp_min(1.0) / accum;
  }
  if (kl.defined()) out.kl = masked_mean(kl.detach());
  auto c = coef_1.detach();
  auto low = (c < 1 - o.epsilon_low).logical_and(adv < 0).to(at::kFloat);
  auto high = (c > 1 + o.epsilon_high).logical_and(adv > 0).to(at::kFloat);
  out.clip_low = masked_mean(low);
  out.clip_high = masked_mean(high);
  out.clip_region = masked_mean(low.logical_or(high).to(at::kFloat));
  out.loss = loss;
  return out;
}

}  // namespace cada::train
