// Adam, as torch.optim.Adam (t = step number from 1):
//   decoupled_weight_decay: p *= 1 - lr·wd   (torch's AdamW)   else g += wd·p
//   m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²
//   amsgrad: max_v = max(max_v, v), used in place of v below
//   p -= step_size · m / (sqrt(v) / sqrt(1 - β2^t) + eps),  step_size = lr / (1 - β1^t)
// State: exp_avg, exp_avg_sq; max_exp_avg_sq (amsgrad).
#pragma once

#include "optim/registry.hpp"

namespace fastopt::rules::adam {

// The scalars of a step that are adam's own (StepCoefficients::scalars).
struct Scalars {
  double beta1 = 0.0;
  double beta2 = 0.0;
  double eps = 0.0;
  bool amsgrad = false;
  double step_size = 0.0;  // lr / (1 - β1^t)
  double bias_correction2_sqrt = 1.0;  // sqrt(1 - β2^t)
};

}  // namespace fastopt::rules::adam

#ifndef FASTOPT_ISA  // ------------------------------------------------ the registry entry
#include <cmath>

#include "optim/rules/rule_support.hpp"

namespace fastopt::rules::adam {
using namespace rule_support;

// Adam's scalars; AdamW's (adamw.hpp) with decoupled = true.
inline StepCoefficients adam_like(const RuleSpec& r, const double* h, std::int64_t step, bool decoupled) {
  require_step(step);
  StepCoefficients c;
  Scalars& s = c.init_scalars<Scalars>();
  c.grad_sign = maximize_sign(r, h);
  c.lr = r.value(h, "lr");
  s.beta1 = r.value(h, "beta1");
  s.beta2 = r.value(h, "beta2");
  s.eps = r.value(h, "eps");
  s.amsgrad = r.value(h, "amsgrad") != 0.0;
  const double t = static_cast<double>(step);
  s.step_size = c.lr / (1.0 - std::pow(s.beta1, t));
  s.bias_correction2_sqrt = std::sqrt(1.0 - std::pow(s.beta2, t));
  const double wd = r.value(h, "weight_decay");
  if (decoupled) {
    c.param_decay = 1.0 - c.lr * wd;
  } else {
    c.weight_decay = wd;
  }
  return c;
}

inline StepCoefficients coefficients(const RuleSpec& r, const double* h, std::int64_t step) {
  return adam_like(r, h, step, r.value(h, "decoupled_weight_decay") != 0.0);
}

// The rule's text in the Python API (RuleSpec::doc): its title, update rule and notes.
constexpr const char* kDoc = R"(Adam (Kingma & Ba 2015)

Update rule (``step`` = t counts from 1)::

    p *= 1 - lr * weight_decay               if decoupled_weight_decay (AdamW)
    g = g + weight_decay * p                 otherwise
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    if amsgrad:
        max_v = maximum(max_v, v);  v_hat = max_v
    else:
        v_hat = v
    p -= lr / (1 - beta1**t) * m / (sqrt(v_hat) / sqrt(1 - beta2**t) + eps))";

inline RuleSpec spec() {
  RuleSpec r{Rule::adam, "adam", true,
             {{"lr", 1e-3, kNonneg, true, "learning rate"},
              {"beta1", 0.9, kUnit, true, "decay rate of the first moment"},
              {"beta2", 0.999, kUnit, true, "decay rate of the second moment"},
              {"eps", 1e-8, kPositive, true, "added to the denominator"},
              {"weight_decay", 0.0, kNonneg, true,
                "L2 penalty: added to the gradient, or decays p with ``decoupled_weight_decay``"},
              {"amsgrad", 0.0, kFlag, true, "use the running maximum of ``v`` (kept in ``max_v``)"},
              {"maximize", 0.0, kFlag, true, "step on ``-g``, to maximize the objective"},
              {"decoupled_weight_decay", 0.0, kFlag, true,
                "AdamW-style decay of the parameters instead of the coupled L2 term"}},
             {{"exp_avg", "m", nullptr, nullptr},
              {"exp_avg_sq", "v", nullptr, nullptr},
              {"max_exp_avg_sq", "max_v", "amsgrad", nullptr}},
             coefficients};
  stored_in_8bit(r, {kSigned8, kUnsigned8, kUnsigned8});
  r.doc = kDoc;
  r.api = "torch.optim.Adam(lr, betas=(beta1, beta2), eps, weight_decay, amsgrad, *, foreach=None, maximize, "
          "capturable=False, differentiable=False, fused=None, decoupled_weight_decay)";
  return r;
}

}  // namespace fastopt::rules::adam

#else  // ----------------------------------------------------- the update loop, per ISA

namespace fastopt {
namespace FASTOPT_ISA {
namespace {

template <class L, bool kWeightDecay, bool kAmsgrad>
void adam_span(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  const rules::adam::Scalars& s = c.scalars<rules::adam::Scalars>();
  using T = typename L::opmath;
  using S = typename L::state;
  typename L::param* __restrict p = slot_at<typename L::param>(t, kParam, begin);
  const typename L::grad* __restrict g = slot_at<typename L::grad>(t, kGrad, begin);
  S* __restrict m = slot_at<S>(t, kFirstState, begin);
  S* __restrict v = slot_at<S>(t, kFirstState + 1, begin);
  S* __restrict max_v = kAmsgrad ? slot_at<S>(t, kFirstState + 2, begin) : nullptr;
  const ParamStore<L> store_param(t, begin, c);
  const T wd = T(c.weight_decay), eps = T(s.eps), param_decay = T(c.param_decay);
  const T grad_sign = T(c.grad_sign);
  const T beta1 = T(s.beta1), one_minus_beta1 = T(1.0 - s.beta1);
  const T beta2 = T(s.beta2), one_minus_beta2 = T(1.0 - s.beta2);
  const T step_size = T(s.step_size), bias_correction2_sqrt = T(s.bias_correction2_sqrt);
  const size_t n = end - begin;
  for (size_t i = 0; i < n; ++i) {
    const T param = load(p[i]) * param_decay;
    T grad = grad_sign * load(g[i]);
    if constexpr (kWeightDecay) grad += wd * param;
    const T mi = beta1 * load(m[i]) + one_minus_beta1 * grad;
    const T vi = beta2 * load(v[i]) + one_minus_beta2 * grad * grad;
    store(m + i, mi);
    store(v + i, vi);
    T v_used = vi;
    if constexpr (kAmsgrad) {
      // NaN-propagating like np.maximum / torch.maximum when v is NaN.
      const T previous = load(max_v[i]);
      v_used = previous >= vi ? previous : vi;
      store(max_v + i, v_used);
    }
    const T denom = std::sqrt(v_used) / bias_correction2_sqrt + eps;
    store_param(p, i, param - step_size * mi / denom);
  }
}

// Decoupled or not: the coefficients say (param_decay, weight_decay).
template <class L>
void adam_step(const TensorBuffers& t, size_t b, size_t e, const StepCoefficients& c) {
  const rules::adam::Scalars& s = c.scalars<rules::adam::Scalars>();
  const bool wd = c.weight_decay != 0.0;
  if (s.amsgrad) {
    if (wd) adam_span<L, true, true>(t, b, e, c);
    else adam_span<L, false, true>(t, b, e, c);
  } else {
    if (wd) adam_span<L, true, false>(t, b, e, c);
    else adam_span<L, false, false>(t, b, e, c);
  }
}

}  // namespace
}  // namespace FASTOPT_ISA
}  // namespace fastopt

#endif
