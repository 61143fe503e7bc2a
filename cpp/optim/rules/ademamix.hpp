// AdEMAMix (Pagliardini, Ablin & Grangier 2024): Adam whose numerator mixes a
// second, slow EMA of the gradient (β3 near 1) into the fast one, with the
// paper's warm-up schedules of α and β3; defaults of bitsandbytes' AdEMAMix.
// Weight decay is decoupled, as AdamW's. State: exp_avg, exp_avg_slow, exp_avg_sq.
#pragma once

#include "optim/registry.hpp"

namespace fastopt::rules::ademamix {

// The scalars of a step that are ademamix's own (StepCoefficients::scalars).
struct Scalars {
  double beta1 = 0.0;
  double beta2 = 0.0;
  double beta3 = 0.0;  // this step's, after its schedule
  double eps = 0.0;
  double step_size = 0.0;  // lr / (1 - β1^t)
  double slow_step_size = 0.0;  // lr · α_t
  double bias_correction2_sqrt = 1.0;  // sqrt(1 - β2^t)
};

}  // namespace fastopt::rules::ademamix

#ifndef FASTOPT_ISA  // ------------------------------------------------ the registry entry
#include <algorithm>
#include <cmath>

#include "optim/rules/rule_support.hpp"

namespace fastopt::rules::ademamix {
using namespace rule_support;

inline StepCoefficients coefficients(const RuleSpec& r, const double* h, std::int64_t step) {
  require_step(step);
  StepCoefficients c;
  Scalars& s = c.init_scalars<Scalars>();
  c.grad_sign = maximize_sign(r, h);
  c.lr = r.value(h, "lr");
  s.beta1 = r.value(h, "beta1");
  s.beta2 = r.value(h, "beta2");
  s.beta3 = r.value(h, "beta3");
  s.eps = r.value(h, "eps");
  const double t = static_cast<double>(step);
  double alpha = r.value(h, "alpha");
  const double t_alpha = r.value(h, "t_alpha"), t_beta3 = r.value(h, "t_beta3");
  if (!std::isnan(t_alpha)) alpha = std::min(t * alpha / t_alpha, alpha);  // None: NaN
  if (!std::isnan(t_beta3)) {
    // The schedule raises β3 from β1 (its denominator then stays below zero).
    if (!(s.beta1 > 0.0 && s.beta1 <= s.beta3))
      throw std::invalid_argument("t_beta3 needs 0 < beta1 <= beta3 (the schedule raises beta3 from beta1), got "
                                  "beta1=" + std::to_string(s.beta1) + ", beta3=" + std::to_string(s.beta3));
    const double ln_beta1 = std::log(s.beta1), ln_beta3 = std::log(s.beta3), scale = t / t_beta3;
    s.beta3 = std::min(std::exp(ln_beta1 * ln_beta3 / ((1.0 - scale) * ln_beta3 + scale * ln_beta1)), s.beta3);
  }
  s.step_size = c.lr / (1.0 - std::pow(s.beta1, t));
  s.slow_step_size = c.lr * alpha;
  s.bias_correction2_sqrt = std::sqrt(1.0 - std::pow(s.beta2, t));
  c.param_decay = 1.0 - c.lr * r.value(h, "weight_decay");
  return c;
}

// The rule's text in the Python API (RuleSpec::doc): its title, update rule and notes.
constexpr const char* kDoc = R"(AdEMAMix (Pagliardini, Ablin & Grangier 2024, "The AdEMAMix Optimizer: Better, Faster, Older")

Update rule (``step`` = t counts from 1; ``m_slow`` is the slow EMA)::

    alpha_t = min(t * alpha / t_alpha, alpha)          (alpha if t_alpha is None)
    s = t / t_beta3                                      (beta3_t = beta3 if t_beta3 is None)
    beta3_t = min(exp(log(beta1) * log(beta3) / ((1 - s) * log(beta3) + s * log(beta1))), beta3)
    p *= 1 - lr * weight_decay
    m = beta1 * m + (1 - beta1) * g
    m_slow = beta3_t * m_slow + (1 - beta3_t) * g
    v = beta2 * v + (1 - beta2) * g * g
    p -= (lr / (1 - beta1**t) * m + lr * alpha_t * m_slow) / (sqrt(v) / sqrt(1 - beta2**t) + eps)

Adam's update with a second, slow EMA of the gradient (``beta3`` near 1) added
to the numerator: it keeps using gradients thousands of steps old. The paper
warms ``alpha`` and ``beta3`` up over ``t_alpha`` and ``t_beta3`` steps (both
often the run's length); defaults and schedules are bitsandbytes' AdEMAMix, with
the weight decay decoupled as AdamW's.)";

inline RuleSpec spec() {
  RuleSpec r{Rule::ademamix, "ademamix", true,
             {{"lr", 1e-3, kNonneg, true, "learning rate"},
              {"beta1", 0.9, kUnit, true, "decay rate of the fast first moment"},
              {"beta2", 0.999, kUnit, true, "decay rate of the second moment"},
              {"beta3", 0.9999, kUnit, true, "decay rate of the slow first moment (after its warm-up)"},
              {"alpha", 5.0, kNonneg, true, "weight of the slow first moment (after its warm-up)"},
              {"t_alpha", std::nan(""), Range::optional_positive, true,
                "length of alpha's linear warm-up, in steps (None: no warm-up)"},
              {"t_beta3", std::nan(""), Range::optional_positive, true,
                "length of beta3's warm-up from beta1, in steps (None: no warm-up)"},
              {"eps", 1e-8, kPositive, true, "added to the denominator"},
              {"weight_decay", 1e-2, kNonneg, true, "decoupled weight decay"},
              {"maximize", 0.0, kFlag, true, "step on ``-g``, to maximize the objective"}},
             {{"exp_avg", "m", nullptr, nullptr},
              {"exp_avg_slow", "m_slow", nullptr, nullptr},
              {"exp_avg_sq", "v", nullptr, nullptr}},
             coefficients};
  stored_in_8bit(r, {kSigned8, kSigned8, kUnsigned8});
  r.doc = kDoc;
  r.api = "AdEMAMix(lr, betas=(beta1, beta2, beta3), alpha, t_alpha, t_beta3, eps, weight_decay, *, maximize)";
  return r;
}

}  // namespace fastopt::rules::ademamix

#else  // ----------------------------------------------------- the update loop, per ISA

namespace fastopt {
namespace FASTOPT_ISA {
namespace {

template <class L>
void ademamix_step(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  const rules::ademamix::Scalars& s = c.scalars<rules::ademamix::Scalars>();
  using T = typename L::opmath;
  using S = typename L::state;
  typename L::param* __restrict p = slot_at<typename L::param>(t, kParam, begin);
  const typename L::grad* __restrict g = slot_at<typename L::grad>(t, kGrad, begin);
  S* __restrict m = slot_at<S>(t, kFirstState, begin);           // exp_avg
  S* __restrict m_slow = slot_at<S>(t, kFirstState + 1, begin);  // exp_avg_slow
  S* __restrict v = slot_at<S>(t, kFirstState + 2, begin);       // exp_avg_sq
  const ParamStore<L> store_param(t, begin, c);
  const T param_decay = T(c.param_decay), grad_sign = T(c.grad_sign), eps = T(s.eps);
  const T beta1 = T(s.beta1), one_minus_beta1 = T(1.0 - s.beta1);
  const T beta2 = T(s.beta2), one_minus_beta2 = T(1.0 - s.beta2);
  const T beta3 = T(s.beta3), one_minus_beta3 = T(1.0 - s.beta3);
  const T step_size = T(s.step_size), slow_step_size = T(s.slow_step_size);
  const T bias_correction2_sqrt = T(s.bias_correction2_sqrt);
  const size_t n = end - begin;
  for (size_t i = 0; i < n; ++i) {
    const T param = load(p[i]) * param_decay;
    const T grad = grad_sign * load(g[i]);
    const T mi = beta1 * load(m[i]) + one_minus_beta1 * grad;
    const T si = beta3 * load(m_slow[i]) + one_minus_beta3 * grad;
    const T vi = beta2 * load(v[i]) + one_minus_beta2 * grad * grad;
    store(m + i, mi);
    store(m_slow + i, si);
    store(v + i, vi);
    const T denom = std::sqrt(vi) / bias_correction2_sqrt + eps;
    store_param(p, i, param - (step_size * mi + slow_step_size * si) / denom);
  }
}

}  // namespace
}  // namespace FASTOPT_ISA
}  // namespace fastopt

#endif
