// Adadelta (Zeiler 2012), as torch.optim.Adadelta:
//   g += wd·p; sq = ρ·sq + (1-ρ)·g²
//   δ = sqrt(acc + eps) / sqrt(sq + eps) · g; acc = ρ·acc + (1-ρ)·δ²
//   p -= lr·δ
// State: square_avg, acc_delta.
#pragma once

#include "optim/registry.hpp"

namespace fastopt::rules::adadelta {

// The scalars of a step that are adadelta's own (StepCoefficients::scalars).
struct Scalars {
  double alpha = 0.0;  // rho: the averages' decay
  double eps = 0.0;
};

}  // namespace fastopt::rules::adadelta

#ifndef FASTOPT_ISA  // ------------------------------------------------ the registry entry
#include "optim/rules/rule_support.hpp"

namespace fastopt::rules::adadelta {
using namespace rule_support;

inline StepCoefficients coefficients(const RuleSpec& r, const double* h, std::int64_t) {
  StepCoefficients c;
  Scalars& s = c.init_scalars<Scalars>();
  c.grad_sign = maximize_sign(r, h);
  c.lr = r.value(h, "lr");
  s.alpha = r.value(h, "rho");  // the averages' decay, as RMSprop's alpha
  s.eps = r.value(h, "eps");
  c.weight_decay = r.value(h, "weight_decay");
  return c;
}

// The rule's text in the Python API (RuleSpec::doc): its title, update rule and notes.
constexpr const char* kDoc = R"(Adadelta (Zeiler 2012)

Update rule::

    g = g + weight_decay * p
    square_avg = rho * square_avg + (1 - rho) * g * g
    delta = sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g
    acc_delta = rho * acc_delta + (1 - rho) * delta * delta
    p -= lr * delta)";

inline RuleSpec spec() {
  RuleSpec r{Rule::adadelta, "adadelta", false,
             {{"lr", 1.0, kNonneg, true, "scale of the update"},
              {"rho", 0.9, kClosed, true, "decay of the running averages"},
              {"eps", 1e-6, kNonneg, true, "added inside both square roots"},
              {"weight_decay", 0.0, kNonneg, true, "coupled L2 penalty, added to the gradient"},
              {"maximize", 0.0, kFlag, true, "step on ``-g``, to maximize the objective"}},
             {{"square_avg", "square_avg", nullptr, nullptr},
              {"acc_delta", "acc_delta", nullptr, nullptr}},
             coefficients};
  r.doc = kDoc;
  r.api = "torch.optim.Adadelta(lr, rho, eps, weight_decay, foreach=None, *, capturable=False, maximize, "
          "differentiable=False)";
  return r;
}

}  // namespace fastopt::rules::adadelta

#else  // ----------------------------------------------------- the update loop, per ISA

namespace fastopt {
namespace FASTOPT_ISA {
namespace {

template <class L, bool kWeightDecay>
void adadelta_span(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  const rules::adadelta::Scalars& s = c.scalars<rules::adadelta::Scalars>();
  using T = typename L::opmath;
  using S = typename L::state;
  typename L::param* __restrict p = slot_at<typename L::param>(t, kParam, begin);
  const typename L::grad* __restrict g = slot_at<typename L::grad>(t, kGrad, begin);
  S* __restrict square_avg = slot_at<S>(t, kFirstState, begin);
  S* __restrict acc_delta = slot_at<S>(t, kFirstState + 1, begin);
  const ParamStore<L> store_param(t, begin, c);
  const T lr = T(c.lr), wd = T(c.weight_decay), eps = T(s.eps);
  const T grad_sign = T(c.grad_sign);
  const T rho = T(s.alpha), one_minus_rho = T(1.0 - s.alpha);
  const size_t n = end - begin;
  for (size_t i = 0; i < n; ++i) {
    const T param = load(p[i]);
    T grad = grad_sign * load(g[i]);
    if constexpr (kWeightDecay) grad += wd * param;
    const T sq = rho * load(square_avg[i]) + one_minus_rho * grad * grad;
    const T acc = load(acc_delta[i]);
    const T delta = std::sqrt(acc + eps) / std::sqrt(sq + eps) * grad;
    store(square_avg + i, sq);
    store(acc_delta + i, rho * acc + one_minus_rho * delta * delta);
    store_param(p, i, param - lr * delta);
  }
}

template <class L>
void adadelta_step(const TensorBuffers& t, size_t b, size_t e, const StepCoefficients& c) {
  if (c.weight_decay != 0.0) adadelta_span<L, true>(t, b, e, c);
  else adadelta_span<L, false>(t, b, e, c);
}

}  // namespace
}  // namespace FASTOPT_ISA
}  // namespace fastopt

#endif
