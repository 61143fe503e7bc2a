// AdaGrad, as torch.optim.Adagrad (t = step number from 1):
//   g += wd·p; sum += g²; p -= lr / (1 + (t-1)·lr_decay) · g / (sqrt(sum) + eps)
// State: sum, starting at initial_accumulator_value.
#pragma once

#include "optim/registry.hpp"

namespace fastopt::rules::adagrad {

// The scalars of a step that are adagrad's own (StepCoefficients::scalars).
struct Scalars {
  double eps = 0.0;
  double adagrad_lr = 0.0;  // lr / (1 + (step - 1)·lr_decay)
};

}  // namespace fastopt::rules::adagrad

#ifndef FASTOPT_ISA  // ------------------------------------------------ the registry entry
#include "optim/rules/rule_support.hpp"

namespace fastopt::rules::adagrad {
using namespace rule_support;

inline StepCoefficients coefficients(const RuleSpec& r, const double* h, std::int64_t step) {
  require_step(step);
  StepCoefficients c;
  Scalars& s = c.init_scalars<Scalars>();
  c.grad_sign = maximize_sign(r, h);
  c.lr = r.value(h, "lr");
  c.weight_decay = r.value(h, "weight_decay");
  s.eps = r.value(h, "eps");
  s.adagrad_lr = c.lr / (1.0 + static_cast<double>(step - 1) * r.value(h, "lr_decay"));
  return c;
}

// The rule's text in the Python API (RuleSpec::doc): its title, update rule and notes.
constexpr const char* kDoc = R"(AdaGrad (Duchi et al. 2011)

Update rule (``step`` counts from 1; ``sum_sq`` starts at ``initial_accumulator_value``)::

    g = g + weight_decay * p
    sum_sq += g * g
    p -= lr / (1 + (step - 1) * lr_decay) * g / (sqrt(sum_sq) + eps))";

inline RuleSpec spec() {
  RuleSpec r{Rule::adagrad, "adagrad", true,
             {{"lr", 1e-2, kNonneg, true, "learning rate"},
              {"lr_decay", 0.0, kNonneg, true, "decay of the learning rate with the step number"},
              {"weight_decay", 0.0, kNonneg, true, "coupled L2 penalty, added to the gradient"},
              {"initial_accumulator_value", 0.0, kNonneg, false, "the value ``sum_sq`` starts at"},
              {"eps", 1e-10, kPositive, true, "added to the denominator"},
              {"maximize", 0.0, kFlag, true, "step on ``-g``, to maximize the objective"}},
             {{"sum", "sum_sq", nullptr, "initial_accumulator_value"}},
             coefficients};
  stored_in_8bit(r, {kUnsigned8});
  r.doc = kDoc;
  r.api = "torch.optim.Adagrad(lr, lr_decay, weight_decay, initial_accumulator_value, eps, foreach=None, *, "
          "maximize, differentiable=False, fused=None)";
  return r;
}

}  // namespace fastopt::rules::adagrad

#else  // ----------------------------------------------------- the update loop, per ISA

namespace fastopt {
namespace FASTOPT_ISA {
namespace {

// g += wd·p; sum_sq += g²; p -= clr·g / (sqrt(sum_sq) + eps)
template <class L, bool kWeightDecay>
void adagrad_span(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  const rules::adagrad::Scalars& s = c.scalars<rules::adagrad::Scalars>();
  using T = typename L::opmath;
  typename L::param* __restrict p = slot_at<typename L::param>(t, kParam, begin);
  const typename L::grad* __restrict g = slot_at<typename L::grad>(t, kGrad, begin);
  typename L::state* __restrict sum_sq = slot_at<typename L::state>(t, kFirstState, begin);  // sum
  const ParamStore<L> store_param(t, begin, c);
  const T clr = T(s.adagrad_lr), wd = T(c.weight_decay), eps = T(s.eps);
  const T grad_sign = T(c.grad_sign);
  const size_t n = end - begin;
  for (size_t i = 0; i < n; ++i) {
    const T param = load(p[i]);
    T grad = grad_sign * load(g[i]);
    if constexpr (kWeightDecay) grad += wd * param;
    const T s = load(sum_sq[i]) + grad * grad;
    store(sum_sq + i, s);
    store_param(p, i, param - clr * grad / (std::sqrt(s) + eps));
  }
}

template <class L>
void adagrad_step(const TensorBuffers& t, size_t b, size_t e, const StepCoefficients& c) {
  if (c.weight_decay != 0.0) adagrad_span<L, true>(t, b, e, c);
  else adagrad_span<L, false>(t, b, e, c);
}

}  // namespace
}  // namespace FASTOPT_ISA
}  // namespace fastopt

#endif
