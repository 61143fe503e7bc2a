// RAdam (Liu et al. 2020, "On the Variance of the Adaptive Learning Rate and
// Beyond"), as torch.optim.RAdam (t = step number from 1):
//   decoupled_weight_decay: p *= 1 - lr·wd   else g += wd·p
//   m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²
//   ρ∞ = 2/(1-β2) - 1; ρt = ρ∞ - 2t·β2^t/(1-β2^t)
//   ρt > 5: p -= m/(1-β1^t) · lr · (sqrt(1-β2^t) / (sqrt(v) + eps)) · r,
//           r = sqrt((ρt-4)(ρt-2)ρ∞ / ((ρ∞-4)(ρ∞-2)ρt))
//   else:   p -= m/(1-β1^t) · lr
// State: exp_avg, exp_avg_sq.
#pragma once

#include "optim/registry.hpp"

namespace fastopt::rules::radam {

// The scalars of a step that are radam's own (StepCoefficients::scalars).
struct Scalars {
  double beta1 = 0.0;
  double beta2 = 0.0;
  double eps = 0.0;
  double bias_correction1 = 1.0;  // 1 - β1^t
  double bias_correction2_sqrt = 1.0;  // sqrt(1 - β2^t)
  bool rectified = false;  // ρt > 5
  double rectification = 1.0;  // r_t (when rectified)
};

}  // namespace fastopt::rules::radam

#ifndef FASTOPT_ISA  // ------------------------------------------------ the registry entry
#include <cmath>

#include "optim/rules/rule_support.hpp"

namespace fastopt::rules::radam {
using namespace rule_support;

inline StepCoefficients coefficients(const RuleSpec& r, const double* h, std::int64_t step) {
  require_step(step);
  StepCoefficients c;
  Scalars& s = c.init_scalars<Scalars>();
  c.grad_sign = maximize_sign(r, h);
  c.lr = r.value(h, "lr");
  s.beta1 = r.value(h, "beta1");
  s.beta2 = r.value(h, "beta2");
  s.eps = r.value(h, "eps");
  const double wd = r.value(h, "weight_decay");
  if (r.value(h, "decoupled_weight_decay") != 0.0) {
    c.param_decay = 1.0 - c.lr * wd;
  } else {
    c.weight_decay = wd;
  }
  const double t = static_cast<double>(step);
  const double beta2_t = std::pow(s.beta2, t);
  const double bias_correction2 = 1.0 - beta2_t;
  s.bias_correction1 = 1.0 - std::pow(s.beta1, t);
  s.bias_correction2_sqrt = std::sqrt(bias_correction2);
  const double rho_inf = 2.0 / (1.0 - s.beta2) - 1.0;
  const double rho_t = rho_inf - 2.0 * t * beta2_t / bias_correction2;
  s.rectified = rho_t > 5.0;
  if (s.rectified)
    s.rectification = std::sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t));
  return c;
}

// The rule's text in the Python API (RuleSpec::doc): its title, update rule and notes.
constexpr const char* kDoc = R"(RAdam (Liu et al. 2020, rectified Adam)

Update rule (``step`` = t counts from 1)::

    p *= 1 - lr * weight_decay               if decoupled_weight_decay
    g = g + weight_decay * p                 otherwise
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)
    m_hat = m / (1 - beta1**t)
    if rho_t > 5:
        r = sqrt((rho_t - 4) (rho_t - 2) rho_inf / ((rho_inf - 4) (rho_inf - 2) rho_t))
        p -= m_hat * lr * (sqrt(1 - beta2**t) / (sqrt(v) + eps)) * r
    else:
        p -= m_hat * lr)";

inline RuleSpec spec() {
  RuleSpec r{Rule::radam, "radam", true,
             {{"lr", 1e-3, kNonneg, true, "learning rate"},
              {"beta1", 0.9, kUnit, true, "decay rate of the first moment"},
              {"beta2", 0.999, kUnit, true, "decay rate of the second moment"},
              {"eps", 1e-8, kNonneg, true, "added to ``sqrt(v)``"},
              {"weight_decay", 0.0, kNonneg, true,
                "L2 penalty: added to the gradient, or decays p with ``decoupled_weight_decay``"},
              {"maximize", 0.0, kFlag, true, "step on ``-g``, to maximize the objective"},
              {"decoupled_weight_decay", 0.0, kFlag, true,
                "AdamW-style decay of the parameters instead of the coupled L2 term"}},
             {{"exp_avg", "m", nullptr, nullptr},
              {"exp_avg_sq", "v", nullptr, nullptr}},
             coefficients};
  stored_in_8bit(r, {kSigned8, kUnsigned8});
  r.doc = kDoc;
  r.api = "torch.optim.RAdam(lr, betas=(beta1, beta2), eps, weight_decay, decoupled_weight_decay, *, "
          "foreach=None, maximize, capturable=False, differentiable=False)";
  return r;
}

}  // namespace fastopt::rules::radam

#else  // ----------------------------------------------------- the update loop, per ISA

namespace fastopt {
namespace FASTOPT_ISA {
namespace {

template <class L, bool kWeightDecay, bool kRectified>
void radam_span(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  const rules::radam::Scalars& s = c.scalars<rules::radam::Scalars>();
  using T = typename L::opmath;
  using S = typename L::state;
  typename L::param* __restrict p = slot_at<typename L::param>(t, kParam, begin);
  const typename L::grad* __restrict g = slot_at<typename L::grad>(t, kGrad, begin);
  S* __restrict m = slot_at<S>(t, kFirstState, begin);      // exp_avg
  S* __restrict v = slot_at<S>(t, kFirstState + 1, begin);  // exp_avg_sq
  const ParamStore<L> store_param(t, begin, c);
  const T lr = T(c.lr), wd = T(c.weight_decay), eps = T(s.eps), param_decay = T(c.param_decay);
  const T grad_sign = T(c.grad_sign);
  const T beta1 = T(s.beta1), one_minus_beta1 = T(1.0 - s.beta1);
  const T beta2 = T(s.beta2), one_minus_beta2 = T(1.0 - s.beta2);
  const T bias_correction1 = T(s.bias_correction1), bias_correction2_sqrt = T(s.bias_correction2_sqrt);
  const T rect = T(s.rectification);
  const size_t n = end - begin;
  for (size_t i = 0; i < n; ++i) {
    const T param = load(p[i]) * param_decay;
    T grad = grad_sign * load(g[i]);
    if constexpr (kWeightDecay) grad += wd * param;
    const T mi = beta1 * load(m[i]) + one_minus_beta1 * grad;
    const T vi = beta2 * load(v[i]) + one_minus_beta2 * grad * grad;
    store(m + i, mi);
    store(v + i, vi);
    const T m_hat = mi / bias_correction1;
    if constexpr (kRectified) {
      store_param(p, i, param - m_hat * lr * (bias_correction2_sqrt / (std::sqrt(vi) + eps)) * rect);
    } else {
      store_param(p, i, param - m_hat * lr);
    }
  }
}

template <class L>
void radam_step(const TensorBuffers& t, size_t b, size_t e, const StepCoefficients& c) {
  const rules::radam::Scalars& s = c.scalars<rules::radam::Scalars>();
  const bool wd = c.weight_decay != 0.0;
  if (s.rectified) {
    if (wd) radam_span<L, true, true>(t, b, e, c);
    else radam_span<L, false, true>(t, b, e, c);
  } else {
    if (wd) radam_span<L, true, false>(t, b, e, c);
    else radam_span<L, false, false>(t, b, e, c);
  }
}

}  // namespace
}  // namespace FASTOPT_ISA
}  // namespace fastopt

#endif
