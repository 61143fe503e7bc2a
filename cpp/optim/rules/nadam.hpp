// NAdam (Dozat 2016, "Incorporating Nesterov Momentum into Adam"), as
// torch.optim.NAdam (t = step number from 1):
//   decoupled_weight_decay: p *= 1 - lr·wd   else g += wd·p
//   μt = β1·(1 - ½·0.96^(t·ψ)),  μt+1 likewise (ψ = momentum_decay)
//   mu_product *= μt                       (per tensor, in its dtype)
//   m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²
//   denom = sqrt(v / (1 - β2^t)) + eps
//   p += (-lr·(1-μt) / (1 - mu_product))·g / denom
//      + (-lr·μt+1 / (1 - mu_product·μt+1))·m / denom
// State: exp_avg, exp_avg_sq; mu_product (one number per tensor, starts at 1).
#pragma once

#include "optim/registry.hpp"

namespace fastopt::rules::nadam {

// The scalars of a step that are nadam's own (StepCoefficients::scalars).
struct Scalars {
  double beta1 = 0.0;
  double beta2 = 0.0;
  double eps = 0.0;
  double bias_correction2 = 1.0;  // 1 - β2^t
  double mu = 0.0;  // μt, this step's momentum factor
  double mu_next = 0.0;  // μt+1
  double grad_coefficient = 0.0;  // per tensor: the multiplier of g / denom
  double momentum_coefficient = 0.0;  // per tensor: the multiplier of m / denom
};

}  // namespace fastopt::rules::nadam

#ifndef FASTOPT_ISA  // ------------------------------------------------ the registry entry
#include <cmath>

#include "optim/rules/rule_support.hpp"

namespace fastopt::rules::nadam {
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
  const double t = static_cast<double>(step), psi = r.value(h, "momentum_decay");
  s.bias_correction2 = 1.0 - std::pow(s.beta2, t);
  s.mu = s.beta1 * (1.0 - 0.5 * std::pow(0.96, t * psi));
  s.mu_next = s.beta1 * (1.0 - 0.5 * std::pow(0.96, (t + 1.0) * psi));
  return c;
}

// The tensor's mu_product advances by μt; the multipliers of g and m follow,
// in torch's order of operations.
inline void per_tensor(StepCoefficients& c, TensorScalars& numbers) {
  Scalars& s = c.scalars<Scalars>();
  const double mu_product = numbers.scale(0, s.mu);
  const double mu_product_next = mu_product * s.mu_next;
  if (!(mu_product < 1.0 && mu_product_next < 1.0))
    throw std::invalid_argument("state 'mu_product' must stay below 1, got " + std::to_string(mu_product) +
                                " (with beta1 this close to 1 its float32 product rounds to 1)");
  s.grad_coefficient = (-c.lr * (1.0 - s.mu)) / (1.0 - mu_product);
  s.momentum_coefficient = (-c.lr * s.mu_next) / (1.0 - mu_product_next);
}

// The rule's text in the Python API (RuleSpec::doc): its title, update rule and notes.
constexpr const char* kDoc = R"(NAdam (Dozat 2016, Adam with Nesterov momentum)

Update rule (``step`` = t counts from 1)::

    p *= 1 - lr * weight_decay               if decoupled_weight_decay
    g = g + weight_decay * p                 otherwise
    mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    mu_product *= mu_t                       (one number per tensor, in its dtype)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    denom = sqrt(v / (1 - beta2**t)) + eps
    p += -lr * (1 - mu_t) / (1 - mu_product) * g / denom
    p += -lr * mu_next / (1 - mu_product * mu_next) * m / denom)";

inline RuleSpec spec() {
  RuleSpec r{Rule::nadam, "nadam", true,
             {{"lr", 2e-3, kNonneg, true, "learning rate"},
              {"beta1", 0.9, kUnit, true, "decay rate of the first moment"},
              {"beta2", 0.999, kUnit, true, "decay rate of the second moment"},
              {"eps", 1e-8, kNonneg, true, "added to the denominator"},
              {"weight_decay", 0.0, kNonneg, true,
                "L2 penalty: added to the gradient, or decays p with ``decoupled_weight_decay``"},
              {"momentum_decay", 4e-3, kNonneg, true, "how fast the momentum factor approaches beta1"},
              {"maximize", 0.0, kFlag, true, "step on ``-g``, to maximize the objective"},
              {"decoupled_weight_decay", 0.0, kFlag, true,
                "AdamW-style decay of the parameters instead of the coupled L2 term"}},
             {{"exp_avg", "m", nullptr, nullptr},
              {"exp_avg_sq", "v", nullptr, nullptr},
              {"mu_product", "mu_product", nullptr, nullptr, StateShape::tensor, 1.0}},
             coefficients, per_tensor};
  stored_in_8bit(r, {kSigned8, kUnsigned8});
  r.doc = kDoc;
  r.api = "torch.optim.NAdam(lr, betas=(beta1, beta2), eps, weight_decay, momentum_decay, "
          "decoupled_weight_decay, *, foreach=None, maximize, capturable=False, differentiable=False)";
  return r;
}

}  // namespace fastopt::rules::nadam

#else  // ----------------------------------------------------- the update loop, per ISA

namespace fastopt {
namespace FASTOPT_ISA {
namespace {

template <class L, bool kWeightDecay>
void nadam_span(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  const rules::nadam::Scalars& s = c.scalars<rules::nadam::Scalars>();
  using T = typename L::opmath;
  using S = typename L::state;
  typename L::param* __restrict p = slot_at<typename L::param>(t, kParam, begin);
  const typename L::grad* __restrict g = slot_at<typename L::grad>(t, kGrad, begin);
  S* __restrict m = slot_at<S>(t, kFirstState, begin);      // exp_avg
  S* __restrict v = slot_at<S>(t, kFirstState + 1, begin);  // exp_avg_sq
  const ParamStore<L> store_param(t, begin, c);
  const T wd = T(c.weight_decay), eps = T(s.eps), param_decay = T(c.param_decay);
  const T grad_sign = T(c.grad_sign);
  const T beta1 = T(s.beta1), one_minus_beta1 = T(1.0 - s.beta1);
  const T beta2 = T(s.beta2), one_minus_beta2 = T(1.0 - s.beta2);
  const T bias_correction2 = T(s.bias_correction2);
  const T a = T(s.grad_coefficient), b = T(s.momentum_coefficient);
  const size_t n = end - begin;
  for (size_t i = 0; i < n; ++i) {
    const T param = load(p[i]) * param_decay;
    T grad = grad_sign * load(g[i]);
    if constexpr (kWeightDecay) grad += wd * param;
    const T mi = beta1 * load(m[i]) + one_minus_beta1 * grad;
    const T vi = beta2 * load(v[i]) + one_minus_beta2 * grad * grad;
    store(m + i, mi);
    store(v + i, vi);
    const T denom = std::sqrt(vi / bias_correction2) + eps;
    store_param(p, i, (param + a * (grad / denom)) + b * (mi / denom));
  }
}

template <class L>
void nadam_step(const TensorBuffers& t, size_t b, size_t e, const StepCoefficients& c) {
  if (c.weight_decay != 0.0) nadam_span<L, true>(t, b, e, c);
  else nadam_span<L, false>(t, b, e, c);
}

}  // namespace
}  // namespace FASTOPT_ISA
}  // namespace fastopt

#endif
