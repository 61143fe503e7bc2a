// Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"):
//   p *= 1 - lr·wd (decoupled); p -= lr · sign(β1·m + (1-β1)·g); m = β2·m + (1-β2)·g
// sign(0) = 0 and sign(NaN) = NaN, as torch.sign. Defaults of DeepSpeed's CPU
// Lion and lion-pytorch. State: exp_avg.
#pragma once

#include "optim/registry.hpp"

namespace fastopt::rules::lion {

// The scalars of a step that are lion's own (StepCoefficients::scalars).
struct Scalars {
  double beta1 = 0.0;
  double beta2 = 0.0;
};

}  // namespace fastopt::rules::lion

#ifndef FASTOPT_ISA  // ------------------------------------------------ the registry entry
#include "optim/rules/rule_support.hpp"

namespace fastopt::rules::lion {
using namespace rule_support;

inline StepCoefficients coefficients(const RuleSpec& r, const double* h, std::int64_t) {
  StepCoefficients c;
  Scalars& s = c.init_scalars<Scalars>();
  c.grad_sign = maximize_sign(r, h);
  c.lr = r.value(h, "lr");
  s.beta1 = r.value(h, "beta1");
  s.beta2 = r.value(h, "beta2");
  c.param_decay = 1.0 - c.lr * r.value(h, "weight_decay");
  return c;
}

// The rule's text in the Python API (RuleSpec::doc): its title, update rule and notes.
constexpr const char* kDoc = R"(Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms")

Update rule (decoupled weight decay; ``sign(0) = 0``)::

    p *= 1 - lr * weight_decay
    p -= lr * sign(beta1 * m + (1 - beta1) * g)
    m = beta2 * m + (1 - beta2) * g

Defaults are those of DeepSpeed's CPU Lion and lion-pytorch. Every element
moves by exactly ``lr`` (or 0), so Lion wants a learning rate 3-10x smaller
than AdamW's and a weight decay 3-10x larger.)";

inline RuleSpec spec() {
  RuleSpec r{Rule::lion, "lion", false,
             {{"lr", 1e-4, kNonneg, true, "learning rate"},
              {"beta1", 0.9, kUnit, true, "interpolation between momentum and gradient in the update's sign"},
              {"beta2", 0.99, kUnit, true, "decay rate of the momentum"},
              {"weight_decay", 0.0, kNonneg, true, "decoupled weight decay"},
              {"maximize", 0.0, kFlag, true, "step on ``-g``, to maximize the objective"}},
             {{"exp_avg", "m", nullptr, nullptr}},
             coefficients};
  stored_in_8bit(r, {kSigned8});
  r.doc = kDoc;
  r.api = "Lion(lr, betas=(beta1, beta2), weight_decay, *, maximize)";
  return r;
}

}  // namespace fastopt::rules::lion

#else  // ----------------------------------------------------- the update loop, per ISA

namespace fastopt {
namespace FASTOPT_ISA {
namespace {

template <class L>
void lion_step(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  const rules::lion::Scalars& s = c.scalars<rules::lion::Scalars>();
  using T = typename L::opmath;
  typename L::param* __restrict p = slot_at<typename L::param>(t, kParam, begin);
  const typename L::grad* __restrict g = slot_at<typename L::grad>(t, kGrad, begin);
  typename L::state* __restrict m = slot_at<typename L::state>(t, kFirstState, begin);  // exp_avg
  const ParamStore<L> store_param(t, begin, c);
  const T lr = T(c.lr), param_decay = T(c.param_decay);
  const T grad_sign = T(c.grad_sign);
  const T beta1 = T(s.beta1), one_minus_beta1 = T(1.0 - s.beta1);
  const T beta2 = T(s.beta2), one_minus_beta2 = T(1.0 - s.beta2);
  const size_t n = end - begin;
  for (size_t i = 0; i < n; ++i) {
    const T grad = grad_sign * load(g[i]);
    const T moment = load(m[i]);
    const T direction = beta1 * moment + one_minus_beta1 * grad;
    // Flat selects, not a nested ?: (which GCC does not if-convert for SSE2).
    const T positive = direction > T(0) ? T(1) : T(0);
    const T negative = direction < T(0) ? T(1) : T(0);
    T sign = positive - negative;
    sign = direction != direction ? direction : sign;  // NaN stays NaN
    store_param(p, i, load(p[i]) * param_decay - lr * sign);
    store(m + i, beta2 * moment + one_minus_beta2 * grad);
  }
}

}  // namespace
}  // namespace FASTOPT_ISA
}  // namespace fastopt

#endif
