// ASGD (averaged SGD; Polyak & Juditsky 1992), as torch.optim.ASGD (t = step
// number from 1; eta and mu are the tensor's state, read before this step):
//   g += wd·p
//   p = p·(1 - λ·eta) - eta·g
//   ax = p                     if mu == 1 (before averaging starts; the p of
//                              the update's arithmetic, before a 16-bit p is rounded)
//   ax += (p - ax)·mu          otherwise
//   eta = lr / (1 + λ·lr·t)^α;  mu = 1 / max(1, t - t0)   (for the next step)
// State: ax; eta (one number per tensor, starts at lr) and mu (starts at 1).
#pragma once

#include "optim/registry.hpp"

namespace fastopt::rules::asgd {

// The scalars of a step that are asgd's own (StepCoefficients::scalars).
struct Scalars {
  double lambd = 0.0;
  double next_eta = 0.0;  // the state's values for the next step
  double next_average_weight = 1.0;
  double eta = 0.0;  // per tensor, from its state: this step's
  double average_weight = 1.0;  // per tensor: mu, ax's averaging weight
};

}  // namespace fastopt::rules::asgd

#ifndef FASTOPT_ISA  // ------------------------------------------------ the registry entry
#include <algorithm>
#include <cmath>

#include "optim/rules/rule_support.hpp"

namespace fastopt::rules::asgd {
using namespace rule_support;

inline StepCoefficients coefficients(const RuleSpec& r, const double* h, std::int64_t step) {
  require_step(step);
  StepCoefficients c;
  Scalars& s = c.init_scalars<Scalars>();
  c.grad_sign = maximize_sign(r, h);
  c.lr = r.value(h, "lr");
  s.lambd = r.value(h, "lambd");
  c.weight_decay = r.value(h, "weight_decay");
  const double t = static_cast<double>(step);
  s.next_eta = c.lr / std::pow(1.0 + s.lambd * c.lr * t, r.value(h, "alpha"));
  s.next_average_weight = 1.0 / std::max(1.0, t - r.value(h, "t0"));
  return c;
}

// This step uses the tensor's eta and mu; they then take the next step's values.
inline void per_tensor(StepCoefficients& c, TensorScalars& numbers) {
  Scalars& s = c.scalars<Scalars>();
  s.eta = numbers.get(0);
  s.average_weight = numbers.get(1);
  numbers.set(0, s.next_eta);
  numbers.set(1, s.next_average_weight);
}

// The rule's text in the Python API (RuleSpec::doc): its title, update rule and notes.
constexpr const char* kDoc = R"(Averaged SGD (Polyak & Juditsky 1992)

Update rule (``step`` = t counts from 1; ``eta`` and ``mu`` as they are before the step)::

    g = g + weight_decay * p
    p = p * (1 - lambd * eta) - eta * g
    ax = p                                   if mu == 1
    ax += (p - ax) * mu                      otherwise
    eta = lr / (1 + lambd * lr * t) ** alpha    (for the next step)
    mu = 1 / max(1, t - t0))";

inline RuleSpec spec() {
  RuleSpec r{Rule::asgd, "asgd", true,
             {{"lr", 1e-2, kNonneg, true, "learning rate"},
              {"lambd", 1e-4, kNonneg, true, "decay of the learning rate"},
              {"alpha", 0.75, kNonneg, true, "power of the learning rate's decay"},
              {"t0", 1e6, kNonneg, true, "the step at which averaging starts"},
              {"weight_decay", 0.0, kNonneg, true, "coupled L2 penalty, added to the gradient"},
              {"maximize", 0.0, kFlag, true, "step on ``-g``, to maximize the objective"}},
             {{"ax", "ax", nullptr, nullptr},
              {"eta", "eta", nullptr, "lr", StateShape::tensor},
              {"mu", "mu", nullptr, nullptr, StateShape::tensor, 1.0}},
             coefficients, per_tensor};
  r.doc = kDoc;
  r.api = "torch.optim.ASGD(lr, lambd, alpha, t0, weight_decay, foreach=None, maximize, differentiable=False, "
          "capturable=False)";
  return r;
}

}  // namespace fastopt::rules::asgd

#else  // ----------------------------------------------------- the update loop, per ISA

namespace fastopt {
namespace FASTOPT_ISA {
namespace {

template <class L, bool kWeightDecay, bool kAveraging>
void asgd_span(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  const rules::asgd::Scalars& s = c.scalars<rules::asgd::Scalars>();
  using T = typename L::opmath;
  using S = typename L::state;
  typename L::param* __restrict p = slot_at<typename L::param>(t, kParam, begin);
  const typename L::grad* __restrict g = slot_at<typename L::grad>(t, kGrad, begin);
  S* __restrict ax = slot_at<S>(t, kFirstState, begin);
  const ParamStore<L> store_param(t, begin, c);
  const T wd = T(c.weight_decay), grad_sign = T(c.grad_sign);
  const T decay = T(1.0 - s.lambd * s.eta), minus_eta = T(-s.eta), mu = T(s.average_weight);
  auto one = [&](size_t i) __attribute__((always_inline)) {
    const T param = load(p[i]);
    T grad = grad_sign * load(g[i]);
    if constexpr (kWeightDecay) grad += wd * param;
    const T updated = param * decay + minus_eta * grad;
    store_param(p, i, updated);
    // ax averages the updated value in opmath (before a 16-bit parameter's rounding).
    if constexpr (kAveraging) {
      const T a = load(ax[i]);
      store(ax + i, a + (updated - a) * mu);
    } else {
      store(ax + i, updated);
    }
  };
  const size_t n = end - begin;
  if constexpr (kAveraging) {
    for (size_t i = 0; i < n; ++i) one(i);
  } else {
    // ax is only written: a store-only stream runs far below the bandwidth of
    // one that is also read, unless its lines are fetched ahead.
    constexpr size_t kLine = 64 / sizeof(S), kAhead = 16 * kLine;
    for (size_t c = 0; c < n; c += kLine) {
      __builtin_prefetch(ax + std::min(c + kAhead, n - 1), 1, 3);
      const size_t e = std::min(n, c + kLine);
      for (size_t i = c; i < e; ++i) one(i);
    }
  }
}

template <class L>
void asgd_step(const TensorBuffers& t, size_t b, size_t e, const StepCoefficients& c) {
  const rules::asgd::Scalars& s = c.scalars<rules::asgd::Scalars>();
  const bool wd = c.weight_decay != 0.0, averaging = s.average_weight != 1.0;
  if (averaging) {
    if (wd) asgd_span<L, true, true>(t, b, e, c);
    else asgd_span<L, false, true>(t, b, e, c);
  } else {
    if (wd) asgd_span<L, true, false>(t, b, e, c);
    else asgd_span<L, false, false>(t, b, e, c);
  }
}

}  // namespace
}  // namespace FASTOPT_ISA
}  // namespace fastopt

#endif
