// The update rules' per-element loops, one template each, over a storage
// layout L (the element types of the parameter, gradient, state and parameter
// copy, the arithmetic type, the rounding of the parameter). Included by the
// per-ISA kernel files only: kernels/optim.cpp instantiates the direct layouts
// (float32, float64), kernels/mixed_precision.cpp the float16/bfloat16 ones.
//
// The loops are plain C++ written like the update rules in docs/design.md; the
// compiler vectorizes them for the target (check with -DFASTOPT_VEC_REPORT=ON).
// Options that change the loop body (weight decay, nesterov, centered,
// amsgrad) are template parameters, so each variant is a branch-free loop.
// Every value is loaded once (widened to L::opmath), computed in L::opmath and
// stored once (rounded to the buffer's type): one pass over memory, and for a
// low-precision layout exactly the float32 arithmetic of the float32 kernel.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "fastopt/isa_namespace.hpp"
#include "fastopt/low_precision.hpp"
#include "fastopt/optim.hpp"

namespace fastopt {
namespace FASTOPT_ISA {
namespace {

using std::size_t;
using low_precision::bfloat16_t;
using low_precision::float16_t;
using low_precision::load;
using low_precision::store;

struct NoCopy {};

// Element types of a tensor's buffers; the arithmetic is float64 for float64
// parameters and float32 otherwise ("opmath", as PyTorch's fused kernels).
template <class Param, class Grad, class State, class Copy = NoCopy, bool kStochastic = false>
struct Layout {
  using param = Param;
  using grad = Grad;
  using state = State;
  using copy = Copy;
  using opmath = std::conditional_t<std::is_same_v<Param, double>, double, float>;
  static constexpr bool has_copy = !std::is_same_v<Copy, NoCopy>;
  static constexpr bool stochastic = kStochastic;
};

template <class T>
T* slot_at(const TensorBuffers& t, int slot, size_t begin) {
  return static_cast<T*>(t.slot[slot]) + begin;
}

// Writes an updated parameter: rounded to nearest, or stochastically with the
// random bits of element `begin + i` (low_precision.hpp), and into the copy.
template <class L>
struct ParamStore {
  using copy_t = std::conditional_t<L::has_copy, typename L::copy, float>;
  copy_t* __restrict copy = nullptr;
  std::uint32_t first = 0, key = 0;

  ParamStore(const TensorBuffers& t, size_t begin, const StepCoefficients& c) {
    if constexpr (L::has_copy) copy = slot_at<copy_t>(t, kParamCopy, begin);
    if constexpr (L::stochastic) {
      first = static_cast<std::uint32_t>(begin);
      key = low_precision::stream_key(c.seed, c.rounding_step, t.stream, begin);
    }
  }

  FASTOPT_INLINE void operator()(typename L::param* __restrict p, size_t i, typename L::opmath value) const {
    if constexpr (L::stochastic) {
      const std::uint32_t index = first + static_cast<std::uint32_t>(i);
      low_precision::store_stochastic(p + i, value, low_precision::hash32(index ^ key));
    } else {
      store(p + i, value);
    }
    if constexpr (L::has_copy) store(copy + i, value);
  }
};

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
  using T = typename L::opmath;
  typename L::param* __restrict p = slot_at<typename L::param>(t, kParam, begin);
  const typename L::grad* __restrict g = slot_at<typename L::grad>(t, kGrad, begin);
  typename L::state* __restrict buf = slot_at<typename L::state>(t, sgd_slots::momentum_buffer, begin);
  const ParamStore<L> store_param(t, begin, c);
  const T lr = T(c.lr), wd = T(c.weight_decay), mu = T(c.momentum);
  const T grad_sign = T(c.grad_sign);
  const T damp = T(c.dampening_factor);  // 1 without dampening: exact, so bitwise the undamped rule
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

// g += wd·p; sum_sq += g²; p -= clr·g / (sqrt(sum_sq) + eps)
template <class L, bool kWeightDecay>
void adagrad_span(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  using T = typename L::opmath;
  typename L::param* __restrict p = slot_at<typename L::param>(t, kParam, begin);
  const typename L::grad* __restrict g = slot_at<typename L::grad>(t, kGrad, begin);
  typename L::state* __restrict sum_sq = slot_at<typename L::state>(t, adagrad_slots::sum, begin);
  const ParamStore<L> store_param(t, begin, c);
  const T clr = T(c.adagrad_lr), wd = T(c.weight_decay), eps = T(c.eps);
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

// torch.optim.RMSprop:
//   g += wd·p; sq = α·sq + (1-α)·g²
//   centered: ga = α·ga + (1-α)·g; avg = sqrt(sq - ga²) + eps   else avg = sqrt(sq) + eps
//   momentum: buf = μ·buf + g/avg; p -= lr·buf                  else p -= lr·g/avg
template <class L, bool kWeightDecay, bool kCentered, bool kMomentum>
void rmsprop_span(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  using T = typename L::opmath;
  using S = typename L::state;
  typename L::param* __restrict p = slot_at<typename L::param>(t, kParam, begin);
  const typename L::grad* __restrict g = slot_at<typename L::grad>(t, kGrad, begin);
  S* __restrict square_avg = slot_at<S>(t, rmsprop_slots::square_avg, begin);
  S* __restrict momentum_buf = kMomentum ? slot_at<S>(t, rmsprop_slots::momentum_buffer, begin) : nullptr;
  S* __restrict grad_avg = kCentered ? slot_at<S>(t, rmsprop_slots::grad_avg, begin) : nullptr;
  const ParamStore<L> store_param(t, begin, c);
  const T lr = T(c.lr), wd = T(c.weight_decay), eps = T(c.eps), mu = T(c.momentum);
  const T grad_sign = T(c.grad_sign);
  const T alpha = T(c.alpha), one_minus_alpha = T(1.0 - c.alpha);
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

// torch.optim.Adam / AdamW:
//   p *= 1 - lr·wd (AdamW only; param_decay = 1 for Adam)
//   g += wd·p (Adam only); m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²
//   amsgrad: max_v = max(max_v, v), used in place of v below
//   p -= step_size · m / (sqrt(v) / sqrt(1 - β2^t) + eps),  step_size = lr / (1 - β1^t)
template <class L, bool kWeightDecay, bool kAmsgrad>
void adam_span(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  using T = typename L::opmath;
  using S = typename L::state;
  typename L::param* __restrict p = slot_at<typename L::param>(t, kParam, begin);
  const typename L::grad* __restrict g = slot_at<typename L::grad>(t, kGrad, begin);
  S* __restrict m = slot_at<S>(t, adam_slots::exp_avg, begin);
  S* __restrict v = slot_at<S>(t, adam_slots::exp_avg_sq, begin);
  S* __restrict max_v = kAmsgrad ? slot_at<S>(t, adam_slots::max_exp_avg_sq, begin) : nullptr;
  const ParamStore<L> store_param(t, begin, c);
  const T wd = T(c.weight_decay), eps = T(c.eps), param_decay = T(c.param_decay);
  const T grad_sign = T(c.grad_sign);
  const T beta1 = T(c.beta1), one_minus_beta1 = T(1.0 - c.beta1);
  const T beta2 = T(c.beta2), one_minus_beta2 = T(1.0 - c.beta2);
  const T step_size = T(c.step_size), bias_correction2_sqrt = T(c.bias_correction2_sqrt);
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

// Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"):
//   p *= 1 - lr·wd (decoupled; param_decay = 1 without weight decay)
//   p -= lr · sign(β1·m + (1-β1)·g);  m = β2·m + (1-β2)·g
// sign(0) = 0 and sign(NaN) = NaN, as torch.sign.
template <class L>
void lion_span(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  using T = typename L::opmath;
  typename L::param* __restrict p = slot_at<typename L::param>(t, kParam, begin);
  const typename L::grad* __restrict g = slot_at<typename L::grad>(t, kGrad, begin);
  typename L::state* __restrict m = slot_at<typename L::state>(t, lion_slots::exp_avg, begin);
  const ParamStore<L> store_param(t, begin, c);
  const T lr = T(c.lr), param_decay = T(c.param_decay);
  const T grad_sign = T(c.grad_sign);
  const T beta1 = T(c.beta1), one_minus_beta1 = T(1.0 - c.beta1);
  const T beta2 = T(c.beta2), one_minus_beta2 = T(1.0 - c.beta2);
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

// Roofline probe: reads every non-null slot and writes all but the gradient,
// like a step, with one add per buffer. Slots 2.. are filled from 2 upwards.
template <class L, int kStates>
void stream_probe_span(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  using T = typename L::opmath;
  using S = typename L::state;
  typename L::param* __restrict p = slot_at<typename L::param>(t, kParam, begin);
  const typename L::grad* __restrict g = slot_at<typename L::grad>(t, kGrad, begin);
  S* __restrict s0 = kStates > 0 ? slot_at<S>(t, kFirstState, begin) : nullptr;
  S* __restrict s1 = kStates > 1 ? slot_at<S>(t, kFirstState + 1, begin) : nullptr;
  S* __restrict s2 = kStates > 2 ? slot_at<S>(t, kFirstState + 2, begin) : nullptr;
  const ParamStore<L> store_param(t, begin, c);
  const size_t n = end - begin;
  for (size_t i = 0; i < n; ++i) {
    const T x = load(g[i]);
    store_param(p, i, load(p[i]) + x);
    if constexpr (kStates > 0) store(s0 + i, load(s0[i]) + x);
    if constexpr (kStates > 1) store(s1 + i, load(s1[i]) + x);
    if constexpr (kStates > 2) store(s2 + i, load(s2[i]) + x);
  }
}

// Entry points: pick the loop variant once per span.
template <class L>
void sgd_step(const TensorBuffers& t, size_t b, size_t e, const StepCoefficients& c) {
  const bool wd = c.weight_decay != 0.0;
  if (c.momentum == 0.0) {
    if (wd) sgd_span<L, true>(t, b, e, c);
    else sgd_span<L, false>(t, b, e, c);
  } else if (c.nesterov) {
    if (wd) sgd_momentum_span<L, true, true>(t, b, e, c);
    else sgd_momentum_span<L, false, true>(t, b, e, c);
  } else {
    if (wd) sgd_momentum_span<L, true, false>(t, b, e, c);
    else sgd_momentum_span<L, false, false>(t, b, e, c);
  }
}

template <class L>
void adagrad_step(const TensorBuffers& t, size_t b, size_t e, const StepCoefficients& c) {
  if (c.weight_decay != 0.0) adagrad_span<L, true>(t, b, e, c);
  else adagrad_span<L, false>(t, b, e, c);
}

template <class L, bool kWeightDecay>
void rmsprop_step_wd(const TensorBuffers& t, size_t b, size_t e, const StepCoefficients& c) {
  const bool momentum = c.momentum > 0.0;
  if (c.centered) {
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

template <class L>
void adam_step(const TensorBuffers& t, size_t b, size_t e, const StepCoefficients& c) {
  const bool wd = c.weight_decay != 0.0;
  if (c.amsgrad) {
    if (wd) adam_span<L, true, true>(t, b, e, c);
    else adam_span<L, false, true>(t, b, e, c);
  } else {
    if (wd) adam_span<L, true, false>(t, b, e, c);
    else adam_span<L, false, false>(t, b, e, c);
  }
}

template <class L>
void stream_probe_step(const TensorBuffers& t, size_t b, size_t e, const StepCoefficients& c) {
  int states = 0;
  while (states < kStateEnd - kFirstState && t.slot[kFirstState + states] != nullptr) ++states;
  switch (states) {
    case 0: stream_probe_span<L, 0>(t, b, e, c); break;
    case 1: stream_probe_span<L, 1>(t, b, e, c); break;
    case 2: stream_probe_span<L, 2>(t, b, e, c); break;
    default: stream_probe_span<L, 3>(t, b, e, c); break;
  }
}

// Σ x², for gradient norms: eight running double sums (element i into sum
// i mod 8), so the order of the additions is the same on every ISA.
template <class G>
double sum_squares(const void* data, size_t n) {
  const G* __restrict x = static_cast<const G*>(data);
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (size_t j = 0; j < 8; ++j) {
      const double v = load(x[i + j]);
      acc[j] += v * v;
    }
  for (size_t j = 0; i + j < n; ++j) {
    const double v = load(x[i + j]);
    acc[j] += v * v;
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// Every rule's entry point for layout L, by name: table[rule].
template <class L>
void fill_rules(SpanKernel* table) {
  table[static_cast<int>(Rule::sgd)] = sgd_step<L>;
  table[static_cast<int>(Rule::adagrad)] = adagrad_step<L>;
  table[static_cast<int>(Rule::rmsprop)] = rmsprop_step<L>;
  table[static_cast<int>(Rule::adam)] = adam_step<L>;  // decoupled or not: the coefficients say
  table[static_cast<int>(Rule::adamw)] = adam_step<L>;
  table[static_cast<int>(Rule::lion)] = lion_span<L>;
  table[static_cast<int>(Rule::stream_probe)] = stream_probe_step<L>;
}

}  // namespace
}  // namespace FASTOPT_ISA
}  // namespace fastopt
