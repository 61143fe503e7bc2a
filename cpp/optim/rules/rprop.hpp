// Rprop (Riedmiller & Braun 1993), as torch.optim.Rprop:
//   s = g·prev;  f = etaplus if s > 0, etaminus if s < 0, 1 if s = 0 (NaN stays NaN)
//   step_size = clamp(step_size·f, step_size_min, step_size_max)
//   g = 0 where f = etaminus (the sign flipped: no step, and no flip counted next time)
//   p -= sign(g)·step_size;  prev = g
// lr is only the value step_size starts at. State: prev, step_size.
#pragma once

#include "optim/registry.hpp"

namespace fastopt::rules::rprop {

// The scalars of a step that are rprop's own (StepCoefficients::scalars).
struct Scalars {
  double etaminus = 0.0;
  double etaplus = 0.0;
  double step_size_min = 0.0;
  double step_size_max = 0.0;
};

}  // namespace fastopt::rules::rprop

#ifndef FASTOPT_ISA  // ------------------------------------------------ the registry entry
#include <string>

#include "optim/rules/rule_support.hpp"

namespace fastopt::rules::rprop {
using namespace rule_support;

inline StepCoefficients coefficients(const RuleSpec& r, const double* h, std::int64_t) {
  StepCoefficients c;
  Scalars& s = c.init_scalars<Scalars>();
  c.grad_sign = maximize_sign(r, h);
  c.lr = r.value(h, "lr");
  s.etaminus = r.value(h, "etaminus");
  s.etaplus = r.value(h, "etaplus");
  s.step_size_min = r.value(h, "step_size_min");
  s.step_size_max = r.value(h, "step_size_max");
  if (!(s.etaminus < 1.0 && 1.0 < s.etaplus))
    throw std::invalid_argument("etaminus and etaplus must satisfy 0 < etaminus < 1 < etaplus, got etaminus=" +
                                std::to_string(s.etaminus) + ", etaplus=" + std::to_string(s.etaplus));
  return c;
}

// The rule's text in the Python API (RuleSpec::doc): its title, update rule and notes.
constexpr const char* kDoc = R"(Rprop (Riedmiller & Braun 1993)

Update rule, per element (``step_size`` starts at ``lr``)::

    s = g * prev
    f = etaplus where s > 0, etaminus where s < 0, 1 where s == 0
    step_size = clip(step_size * f, step_size_min, step_size_max)
    g = 0 where f == etaminus
    p -= sign(g) * step_size
    prev = g)";

inline RuleSpec spec() {
  RuleSpec r{Rule::rprop, "rprop", false,
             {{"lr", 1e-2, kNonneg, false, "the step size every element starts at (not read by a step)"},
              {"etaminus", 0.5, kPositive, true, "factor of the step size where the gradient's sign flips, below 1"},
              {"etaplus", 1.2, kPositive, true, "factor of the step size where it stays, above 1"},
              {"step_size_min", 1e-6, kNonneg, true, "smallest step size"},
              {"step_size_max", 50.0, kNonneg, true, "largest step size"},
              {"maximize", 0.0, kFlag, true, "step on ``-g``, to maximize the objective"}},
             {{"prev", "prev", nullptr, nullptr},
              {"step_size", "step_size", nullptr, "lr"}},
             coefficients};
  r.doc = kDoc;
  r.api = "torch.optim.Rprop(lr, etas=(etaminus, etaplus), step_sizes=(step_size_min, step_size_max), *, "
          "capturable=False, foreach=None, maximize, differentiable=False)";
  return r;
}

}  // namespace fastopt::rules::rprop

#else  // ----------------------------------------------------- the update loop, per ISA

namespace fastopt {
namespace FASTOPT_ISA {
namespace {

template <class L>
void rprop_step(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  const rules::rprop::Scalars& s = c.scalars<rules::rprop::Scalars>();
  using T = typename L::opmath;
  using S = typename L::state;
  typename L::param* __restrict p = slot_at<typename L::param>(t, kParam, begin);
  const typename L::grad* __restrict g = slot_at<typename L::grad>(t, kGrad, begin);
  S* __restrict prev = slot_at<S>(t, kFirstState, begin);
  S* __restrict step_size = slot_at<S>(t, kFirstState + 1, begin);
  const ParamStore<L> store_param(t, begin, c);
  const T grad_sign = T(c.grad_sign);
  const T etaminus = T(s.etaminus), etaplus = T(s.etaplus);
  const T lo = T(s.step_size_min), hi = T(s.step_size_max);
  const size_t n = end - begin;
  for (size_t i = 0; i < n; ++i) {
    const T grad = grad_sign * load(g[i]);
    const T s = grad * load(prev[i]);
    // Flat selects (vectorizable); NaN stays NaN, as torch's sign and clamp.
    T factor = s > T(0) ? etaplus : T(1);
    factor = s < T(0) ? etaminus : factor;
    factor = s != s ? s : factor;
    T size = load(step_size[i]) * factor;
    size = size < lo ? lo : size;
    size = size > hi ? hi : size;
    const T kept = factor == etaminus ? T(0) : grad;
    const T positive = kept > T(0) ? T(1) : T(0);
    const T negative = kept < T(0) ? T(1) : T(0);
    T sign = positive - negative;
    sign = kept != kept ? kept : sign;
    store(step_size + i, size);
    store(prev + i, kept);
    store_param(p, i, load(p[i]) - sign * size);
  }
}

}  // namespace
}  // namespace FASTOPT_ISA
}  // namespace fastopt

#endif
