// RMSProp, as torch.optim.RMSprop (eps outside the square root):
//   g += wd·p; sq = α·sq + (1-α)·g²
//   centered: ga = α·ga + (1-α)·g; avg = sqrt(sq - ga²) + eps   else avg = sqrt(sq) + eps
//   momentum: buf = μ·buf + g/avg; p -= lr·buf                  else p -= lr·g/avg
// State: square_avg; momentum_buffer (momentum > 0); grad_avg (centered).
#pragma once

#include "optim/registry.hpp"

namespace fastopt::rules::rmsprop {

// The scalars of a step that are rmsprop's own (StepCoefficients::scalars).
struct Scalars {
  double alpha = 0.0;
  double eps = 0.0;
  double momentum = 0.0;
  bool centered = false;
};

}  // namespace fastopt::rules::rmsprop

#ifndef FASTOPT_ISA  // ------------------------------------------------ the registry entry
#include "optim/rules/rule_support.hpp"

namespace fastopt::rules::rmsprop {
using namespace rule_support;

inline StepCoefficients coefficients(const RuleSpec& r, const double* h, std::int64_t) {
  StepCoefficients c;
  Scalars& s = c.init_scalars<Scalars>();
  c.grad_sign = maximize_sign(r, h);
  c.lr = r.value(h, "lr");
  s.alpha = r.value(h, "alpha");
  s.eps = r.value(h, "eps");
  c.weight_decay = r.value(h, "weight_decay");
  s.momentum = r.value(h, "momentum");
  s.centered = r.value(h, "centered") != 0.0;
  return c;
}

// The rule's text in the Python API (RuleSpec::doc): its title, update rule and notes.
constexpr const char* kDoc = R"(RMSProp (Tieleman & Hinton 2012; eps outside the square root)

Update rule::

    g = g + weight_decay * p
    square_avg = alpha * square_avg + (1 - alpha) * g * g
    if centered:
        grad_avg = alpha * grad_avg + (1 - alpha) * g
        avg = sqrt(square_avg - grad_avg ** 2) + eps
    else:
        avg = sqrt(square_avg) + eps
    if momentum > 0:
        momentum_buf = momentum * momentum_buf + g / avg
        p -= lr * momentum_buf
    else:
        p -= lr * g / avg)";

inline RuleSpec spec() {
  RuleSpec r{Rule::rmsprop, "rmsprop", false,
             {{"lr", 1e-2, kNonneg, true, "learning rate"},
              {"alpha", 0.99, kClosed, true, "smoothing constant of the averages"},
              {"eps", 1e-8, kPositive, true, "added to the denominator"},
              {"weight_decay", 0.0, kNonneg, true, "coupled L2 penalty, added to the gradient"},
              {"momentum", 0.0, kNonneg, true, "momentum factor"},
              {"centered", 0.0, kFlag, true, "normalise by an estimate of the gradient's variance"},
              {"maximize", 0.0, kFlag, true, "step on ``-g``, to maximize the objective"}},
             {{"square_avg", "square_avg", nullptr, nullptr},
              {"momentum_buffer", "momentum_buf", "momentum", nullptr},
              {"grad_avg", "grad_avg", "centered", nullptr}},
             coefficients};
  stored_in_8bit(r, {kUnsigned8, kSigned8, kSigned8});
  r.doc = kDoc;
  r.api = "torch.optim.RMSprop(lr, alpha, eps, weight_decay, momentum, centered, capturable=False, foreach=None, "
          "maximize, differentiable=False)";
  return r;
}

}  // namespace fastopt::rules::rmsprop

#else  // ----------------------------------------------------- the update loop, per ISA

namespace fastopt {
namespace FASTOPT_ISA {
namespace {

template <class L, bool kWeightDecay, bool kCentered, bool kMomentum>
void rmsprop_span(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  const rules::rmsprop::Scalars& s = c.scalars<rules::rmsprop::Scalars>();
  using T = typename L::opmath;
  using S = typename L::state;
  typename L::param* __restrict p = slot_at<typename L::param>(t, kParam, begin);
  const typename L::grad* __restrict g = slot_at<typename L::grad>(t, kGrad, begin);
  S* __restrict square_avg = slot_at<S>(t, kFirstState, begin);
  S* __restrict momentum_buf = kMomentum ? slot_at<S>(t, kFirstState + 1, begin) : nullptr;
  S* __restrict grad_avg = kCentered ? slot_at<S>(t, kFirstState + 2, begin) : nullptr;
  const ParamStore<L> store_param(t, begin, c);
  const T lr = T(c.lr), wd = T(c.weight_decay), eps = T(s.eps), mu = T(s.momentum);
  const T grad_sign = T(c.grad_sign);
  const T alpha = T(s.alpha), one_minus_alpha = T(1.0 - s.alpha);
  const size_t n = end - begin;
  for (size_t i = 0; i < n; ++i) {
    const T param = load(p[i]);
    T grad = grad_sign * load(g[i]);
    if constexpr (kWeightDecay) grad += wd * param;
    const T sq = alpha * load(square_avg[i]) + one_minus_alpha * grad * grad;
    store(square_avg + i, sq);
    T avg;
    if constexpr (kCentered) {
      const T ga = alpha * load(grad_avg[i]) + one_minus_alpha * grad;
      store(grad_avg + i, ga);
      avg = std::sqrt(sq - ga * ga) + eps;
    } else {
      avg = std::sqrt(sq) + eps;
    }
    if constexpr (kMomentum) {
      const T b = mu * load(momentum_buf[i]) + grad / avg;
      store(momentum_buf + i, b);
      store_param(p, i, param - lr * b);
    } else {
      store_param(p, i, param - lr * grad / avg);
    }
  }
}

template <class L, bool kWeightDecay>
void rmsprop_step_wd(const TensorBuffers& t, size_t b, size_t e, const StepCoefficients& c) {
  const rules::rmsprop::Scalars& s = c.scalars<rules::rmsprop::Scalars>();
  const bool momentum = s.momentum > 0.0;
  if (s.centered) {
    if (momentum) rmsprop_span<L, kWeightDecay, true, true>(t, b, e, c);
    else rmsprop_span<L, kWeightDecay, true, false>(t, b, e, c);
  } else {
    if (momentum) rmsprop_span<L, kWeightDecay, false, true>(t, b, e, c);
    else rmsprop_span<L, kWeightDecay, false, false>(t, b, e, c);
  }
}

template <class L>
void rmsprop_step(const TensorBuffers& t, size_t b, size_t e, const StepCoefficients& c) {
  if (c.weight_decay != 0.0) rmsprop_step_wd<L, true>(t, b, e, c);
  else rmsprop_step_wd<L, false>(t, b, e, c);
}

}  // namespace
}  // namespace FASTOPT_ISA
}  // namespace fastopt

#endif
