// Adamax (Kingma & Ba 2015, section 7.1), as torch.optim.Adamax (t = step number from 1):
//   g += wd·p; m = β1·m + (1-β1)·g; u = max(β2·u, |g| + eps)
//   p -= lr / (1 - β1^t) · m / u
// max propagates NaN, as torch.maximum. State: exp_avg, exp_inf.
#pragma once

#include "optim/registry.hpp"

namespace fastopt::rules::adamax {

// The scalars of a step that are adamax's own (StepCoefficients::scalars).
struct Scalars {
  double beta1 = 0.0;
  double beta2 = 0.0;
  double eps = 0.0;
  double step_size = 0.0;  // lr / (1 - β1^t)
};

}  // namespace fastopt::rules::adamax

#ifndef FASTOPT_ISA  // ------------------------------------------------ the registry entry
#include <cmath>

#include "optim/rules/rule_support.hpp"

namespace fastopt::rules::adamax {
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
  c.weight_decay = r.value(h, "weight_decay");
  s.step_size = c.lr / (1.0 - std::pow(s.beta1, static_cast<double>(step)));
  return c;
}

// The rule's text in the Python API (RuleSpec::doc): its title, update rule and notes.
constexpr const char* kDoc = R"(Adamax (Kingma & Ba 2015, Adam with the infinity norm)

Update rule (``step`` = t counts from 1)::

    g = g + weight_decay * p
    m = beta1 * m + (1 - beta1) * g
    u = maximum(beta2 * u, abs(g) + eps)
    p -= lr / (1 - beta1**t) * m / u)";

inline RuleSpec spec() {
  RuleSpec r{Rule::adamax, "adamax", true,
             {{"lr", 2e-3, kNonneg, true, "learning rate"},
              {"beta1", 0.9, kUnit, true, "decay rate of the first moment"},
              {"beta2", 0.999, kUnit, true, "decay rate of the infinity norm"},
              {"eps", 1e-8, kNonneg, true, "added to ``abs(g)``"},
              {"weight_decay", 0.0, kNonneg, true, "coupled L2 penalty, added to the gradient"},
              {"maximize", 0.0, kFlag, true, "step on ``-g``, to maximize the objective"}},
             {{"exp_avg", "m", nullptr, nullptr},
              {"exp_inf", "u", nullptr, nullptr}},
             coefficients};
  stored_in_8bit(r, {kSigned8, kUnsigned8});
  r.doc = kDoc;
  r.api = "torch.optim.Adamax(lr, betas=(beta1, beta2), eps, weight_decay, foreach=None, *, maximize, "
          "differentiable=False, capturable=False)";
  return r;
}

}  // namespace fastopt::rules::adamax

#else  // ----------------------------------------------------- the update loop, per ISA

namespace fastopt {
namespace FASTOPT_ISA {
namespace {

template <class L, bool kWeightDecay>
void adamax_span(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  const rules::adamax::Scalars& s = c.scalars<rules::adamax::Scalars>();
  using T = typename L::opmath;
  using S = typename L::state;
  typename L::param* __restrict p = slot_at<typename L::param>(t, kParam, begin);
  const typename L::grad* __restrict g = slot_at<typename L::grad>(t, kGrad, begin);
  S* __restrict m = slot_at<S>(t, kFirstState, begin);      // exp_avg
  S* __restrict u = slot_at<S>(t, kFirstState + 1, begin);  // exp_inf
  const ParamStore<L> store_param(t, begin, c);
  const T wd = T(c.weight_decay), eps = T(s.eps), step_size = T(s.step_size);
  const T grad_sign = T(c.grad_sign);
  const T beta1 = T(s.beta1), one_minus_beta1 = T(1.0 - s.beta1), beta2 = T(s.beta2);
  const size_t n = end - begin;
  for (size_t i = 0; i < n; ++i) {
    const T param = load(p[i]);
    T grad = grad_sign * load(g[i]);
    if constexpr (kWeightDecay) grad += wd * param;
    const T mi = beta1 * load(m[i]) + one_minus_beta1 * grad;
    const T a = beta2 * load(u[i]), b = std::fabs(grad) + eps;
    const T ui = a >= b ? a : (b >= a ? b : a + b);  // NaN if either is (a + b), as np.maximum
    store(m + i, mi);
    store(u + i, ui);
    store_param(p, i, param - step_size * mi / ui);
  }
}

template <class L>
void adamax_step(const TensorBuffers& t, size_t b, size_t e, const StepCoefficients& c) {
  if (c.weight_decay != 0.0) adamax_span<L, true>(t, b, e, c);
  else adamax_span<L, false>(t, b, e, c);
}

}  // namespace
}  // namespace FASTOPT_ISA
}  // namespace fastopt

#endif
