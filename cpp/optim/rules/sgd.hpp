// SGD, as torch.optim.SGD:
//   g += wd·p
//   momentum > 0: buf = μ·buf + (1 - dampening)·g  (undamped at step 1: buf starts at g, as torch)
//                 g = g + μ·buf if nesterov else buf
//   p -= lr·g
// The step number matters only with dampening (step 0 means "not given").
// State: momentum_buffer (with momentum > 0).
#pragma once

#include "optim/registry.hpp"

namespace fastopt::rules::sgd {

// The scalars of a step that are sgd's own (StepCoefficients::scalars).
struct Scalars {
  double momentum = 0.0;
  bool nesterov = false;
  double dampening_factor = 1.0;  // 1 - dampening (1 at the first step)
};

}  // namespace fastopt::rules::sgd

#ifndef FASTOPT_ISA  // ------------------------------------------------ the registry entry
#include "optim/rules/rule_support.hpp"

namespace fastopt::rules::sgd {
using namespace rule_support;

inline StepCoefficients coefficients(const RuleSpec& r, const double* h, std::int64_t step) {
  StepCoefficients c;
  Scalars& s = c.init_scalars<Scalars>();
  c.grad_sign = maximize_sign(r, h);
  c.lr = r.value(h, "lr");
  s.momentum = r.value(h, "momentum");
  c.weight_decay = r.value(h, "weight_decay");
  s.nesterov = r.value(h, "nesterov") != 0.0;
  const double dampening = r.value(h, "dampening");
  if (s.nesterov && s.momentum == 0.0)
    throw std::invalid_argument("nesterov=True requires momentum > 0, got momentum=0");
  if (s.nesterov && dampening != 0.0)
    throw std::invalid_argument("nesterov=True requires dampening = 0, got dampening=" + std::to_string(dampening));
  if (dampening != 0.0 && step < 1)
    throw std::invalid_argument("step is required (>= 1) when dampening is set: the first step is not dampened");
  s.dampening_factor = step == 1 ? 1.0 : 1.0 - dampening;
  return c;
}

// The rule's text in the Python API (RuleSpec::doc): its title, update rule and notes.
constexpr const char* kDoc = R"(Stochastic gradient descent with optional (Nesterov) momentum

Update rule (``buf`` starts at zero; the functions :func:`sgd` and
:func:`sgd_momentum` are this rule without and with momentum)::

    g = g + weight_decay * p
    if momentum > 0:
        buf = momentum * buf + (1 - dampening) * g     (buf = g at the first step)
        g = g + momentum * buf   if nesterov,  else  buf
    p -= lr * g

With momentum this is the lecture's ``v = rho * v - lr * dx; x += v`` with
``v = -lr * buf`` at constant lr; with ``nesterov=True``, the lecture's change
of variables ``v_prev = v; v = rho * v - lr * dx; x += -rho * v_prev + (1 + rho) * v``.)";

inline RuleSpec spec() {
  RuleSpec r{Rule::sgd, "sgd", false,
             {{"lr", 1e-3, kNonneg, true, "learning rate"},
              {"momentum", 0.0, kNonneg, true, "momentum factor (the lecture's rho)"},
              {"weight_decay", 0.0, kNonneg, true, "coupled L2 penalty, added to the gradient"},
              {"nesterov", 0.0, kFlag, true, "Nesterov momentum (needs momentum > 0 and no dampening)"},
              {"dampening", 0.0, kClosed, true, "dampening of the momentum (none at the first step, as torch)"},
              {"maximize", 0.0, kFlag, true, "step on ``-g``, to maximize the objective"}},
             {{"momentum_buffer", "buf", "momentum", nullptr}},
             coefficients};
  stored_in_8bit(r, {kSigned8});
  r.doc = kDoc;
  r.api = "torch.optim.SGD(lr, momentum, dampening, weight_decay, nesterov, *, maximize, foreach=None, "
          "differentiable=False, fused=None)";
  return r;
}

}  // namespace fastopt::rules::sgd

#else  // ----------------------------------------------------- the update loop, per ISA

namespace fastopt {
namespace FASTOPT_ISA {
namespace {

// g += wd·p; p -= lr·g
template <class L, bool kWeightDecay>
void sgd_span(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  using T = typename L::opmath;
  typename L::param* __restrict p = slot_at<typename L::param>(t, kParam, begin);
  const typename L::grad* __restrict g = slot_at<typename L::grad>(t, kGrad, begin);
  const ParamStore<L> store_param(t, begin, c);
  const T lr = T(c.lr), wd = T(c.weight_decay);
  const T grad_sign = T(c.grad_sign);  // -1 to maximize (exact: x·±1 rounds to itself)
  const size_t n = end - begin;
  for (size_t i = 0; i < n; ++i) {
    const T param = load(p[i]);
    T grad = grad_sign * load(g[i]);
    if constexpr (kWeightDecay) grad += wd * param;
    store_param(p, i, param - lr * grad);
  }
}

// g += wd·p; buf = μ·buf + (1-dampening)·g; p -= lr·(g + μ·buf if nesterov else buf)
template <class L, bool kWeightDecay, bool kNesterov>
void sgd_momentum_span(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  const rules::sgd::Scalars& s = c.scalars<rules::sgd::Scalars>();
  using T = typename L::opmath;
  typename L::param* __restrict p = slot_at<typename L::param>(t, kParam, begin);
  const typename L::grad* __restrict g = slot_at<typename L::grad>(t, kGrad, begin);
  typename L::state* __restrict buf = slot_at<typename L::state>(t, kFirstState, begin);  // momentum_buffer
  const ParamStore<L> store_param(t, begin, c);
  const T lr = T(c.lr), wd = T(c.weight_decay), mu = T(s.momentum);
  const T grad_sign = T(c.grad_sign);
  const T damp = T(s.dampening_factor);  // 1 without dampening: exact, so bitwise the undamped rule
  const size_t n = end - begin;
  for (size_t i = 0; i < n; ++i) {
    const T param = load(p[i]);
    T grad = grad_sign * load(g[i]);
    if constexpr (kWeightDecay) grad += wd * param;
    const T b = mu * load(buf[i]) + damp * grad;
    store(buf + i, b);
    if constexpr (kNesterov) {
      store_param(p, i, param - lr * (grad + mu * b));
    } else {
      store_param(p, i, param - lr * b);
    }
  }
}

// The loop variant, picked once per span.
template <class L>
void sgd_step(const TensorBuffers& t, size_t b, size_t e, const StepCoefficients& c) {
  const rules::sgd::Scalars& s = c.scalars<rules::sgd::Scalars>();
  const bool wd = c.weight_decay != 0.0;
  if (s.momentum == 0.0) {
    if (wd) sgd_span<L, true>(t, b, e, c);
    else sgd_span<L, false>(t, b, e, c);
  } else if (s.nesterov) {
    if (wd) sgd_momentum_span<L, true, true>(t, b, e, c);
    else sgd_momentum_span<L, false, true>(t, b, e, c);
  } else {
    if (wd) sgd_momentum_span<L, true, false>(t, b, e, c);
    else sgd_momentum_span<L, false, false>(t, b, e, c);
  }
}

}  // namespace
}  // namespace FASTOPT_ISA
}  // namespace fastopt

#endif
