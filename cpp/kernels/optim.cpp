// Optimizer update kernels, one fused pass over memory per step, on float32 or
// float64 buffers (float16 / bfloat16 storage: kernels/mixed_precision.cpp,
// which runs these float32 kernels on widened chunks).
//
// This file is compiled once per ISA (CMakeLists.txt: baseline, avx2, avx512)
// with -DFASTOPT_ISA=<name>; everything lands in namespace fastopt::<name>, so
// fastopt::avx2::adam_span<float, ...> is the AVX2+FMA fp32 Adam kernel. The
// loops are plain C++ written like the update rules in docs/design.md; the compiler
// vectorizes them for the target (check with -DFASTOPT_VEC_REPORT=ON). Options
// that change the loop body (weight decay, nesterov, centered, amsgrad) are
// template parameters, so each variant is a branch-free loop.
#include <cmath>
#include <cstddef>

#include "fastopt/isa_namespace.hpp"
#include "fastopt/optim.hpp"


namespace fastopt {
namespace FASTOPT_ISA {
namespace {

using std::size_t;

template <class T>
T* slot_at(const TensorBuffers& t, int slot, size_t begin) {
  return static_cast<T*>(t.slot[slot]) + begin;
}

// g += wd·p; p -= lr·g
template <class T, bool kWeightDecay>
void sgd_span(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  T* __restrict p = slot_at<T>(t, kParam, begin);
  const T* __restrict g = slot_at<T>(t, kGrad, begin);
  const T lr = T(c.lr), wd = T(c.weight_decay);
  const T grad_sign = T(c.grad_sign);  // -1 to maximize (exact: x·±1 rounds to itself)
  const size_t n = end - begin;
  for (size_t i = 0; i < n; ++i) {
    T grad = grad_sign * g[i];
    if constexpr (kWeightDecay) grad += wd * p[i];
    p[i] -= lr * grad;
  }
}

// g += wd·p; buf = μ·buf + (1-dampening)·g; p -= lr·(g + μ·buf if nesterov else buf)
template <class T, bool kWeightDecay, bool kNesterov>
void sgd_momentum_span(const TensorBuffers& t, size_t begin, size_t end,
                       const StepCoefficients& c) {
  T* __restrict p = slot_at<T>(t, kParam, begin);
  const T* __restrict g = slot_at<T>(t, kGrad, begin);
  T* __restrict buf = slot_at<T>(t, sgd_slots::momentum_buffer, begin);
  const T lr = T(c.lr), wd = T(c.weight_decay), mu = T(c.momentum);
  const T grad_sign = T(c.grad_sign);  // -1 to maximize (exact: x·±1 rounds to itself)
  const T damp = T(c.dampening_factor);  // 1 without dampening: exact, so bitwise the undamped rule
  const size_t n = end - begin;
  for (size_t i = 0; i < n; ++i) {
    T grad = grad_sign * g[i];
    if constexpr (kWeightDecay) grad += wd * p[i];
    const T b = mu * buf[i] + damp * grad;
    buf[i] = b;
    if constexpr (kNesterov) {
      p[i] -= lr * (grad + mu * b);
    } else {
      p[i] -= lr * b;
    }
  }
}

// g += wd·p; sum_sq += g²; p -= clr·g / (sqrt(sum_sq) + eps)
template <class T, bool kWeightDecay>
void adagrad_span(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  T* __restrict p = slot_at<T>(t, kParam, begin);
  const T* __restrict g = slot_at<T>(t, kGrad, begin);
  T* __restrict sum_sq = slot_at<T>(t, adagrad_slots::sum, begin);
  const T clr = T(c.adagrad_lr), wd = T(c.weight_decay), eps = T(c.eps);
  const T grad_sign = T(c.grad_sign);  // -1 to maximize (exact: x·±1 rounds to itself)
  const size_t n = end - begin;
  for (size_t i = 0; i < n; ++i) {
    T grad = grad_sign * g[i];
    if constexpr (kWeightDecay) grad += wd * p[i];
    const T s = sum_sq[i] + grad * grad;
    sum_sq[i] = s;
    p[i] -= clr * grad / (std::sqrt(s) + eps);
  }
}

// torch.optim.RMSprop:
//   g += wd·p; sq = α·sq + (1-α)·g²
//   centered: ga = α·ga + (1-α)·g; avg = sqrt(sq - ga²) + eps   else avg = sqrt(sq) + eps
//   momentum: buf = μ·buf + g/avg; p -= lr·buf                  else p -= lr·g/avg
template <class T, bool kWeightDecay, bool kCentered, bool kMomentum>
void rmsprop_span(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  T* __restrict p = slot_at<T>(t, kParam, begin);
  const T* __restrict g = slot_at<T>(t, kGrad, begin);
  T* __restrict square_avg = slot_at<T>(t, rmsprop_slots::square_avg, begin);
  T* __restrict momentum_buf = kMomentum ? slot_at<T>(t, rmsprop_slots::momentum_buffer, begin) : nullptr;
  T* __restrict grad_avg = kCentered ? slot_at<T>(t, rmsprop_slots::grad_avg, begin) : nullptr;
  const T lr = T(c.lr), wd = T(c.weight_decay), eps = T(c.eps), mu = T(c.momentum);
  const T grad_sign = T(c.grad_sign);  // -1 to maximize (exact: x·±1 rounds to itself)
  const T alpha = T(c.alpha), one_minus_alpha = T(1.0 - c.alpha);
  const size_t n = end - begin;
  for (size_t i = 0; i < n; ++i) {
    T grad = grad_sign * g[i];
    if constexpr (kWeightDecay) grad += wd * p[i];
    const T sq = alpha * square_avg[i] + one_minus_alpha * grad * grad;
    square_avg[i] = sq;
    T avg;
    if constexpr (kCentered) {
      const T ga = alpha * grad_avg[i] + one_minus_alpha * grad;
      grad_avg[i] = ga;
      avg = std::sqrt(sq - ga * ga) + eps;
    } else {
      avg = std::sqrt(sq) + eps;
    }
    if constexpr (kMomentum) {
      const T b = mu * momentum_buf[i] + grad / avg;
      momentum_buf[i] = b;
      p[i] -= lr * b;
    } else {
      p[i] -= lr * grad / avg;
    }
  }
}

// torch.optim.Adam / AdamW:
//   p *= 1 - lr·wd (AdamW only; param_decay = 1 for Adam)
//   g += wd·p (Adam only); m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²
//   amsgrad: max_v = max(max_v, v), used in place of v below
//   p -= step_size · m / (sqrt(v) / sqrt(1 - β2^t) + eps),  step_size = lr / (1 - β1^t)
template <class T, bool kWeightDecay, bool kAmsgrad>
void adam_span(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  T* __restrict p = slot_at<T>(t, kParam, begin);
  const T* __restrict g = slot_at<T>(t, kGrad, begin);
  T* __restrict m = slot_at<T>(t, adam_slots::exp_avg, begin);
  T* __restrict v = slot_at<T>(t, adam_slots::exp_avg_sq, begin);
  T* __restrict max_v = kAmsgrad ? slot_at<T>(t, adam_slots::max_exp_avg_sq, begin) : nullptr;
  const T wd = T(c.weight_decay), eps = T(c.eps), param_decay = T(c.param_decay);
  const T grad_sign = T(c.grad_sign);  // -1 to maximize (exact: x·±1 rounds to itself)
  const T beta1 = T(c.beta1), one_minus_beta1 = T(1.0 - c.beta1);
  const T beta2 = T(c.beta2), one_minus_beta2 = T(1.0 - c.beta2);
  const T step_size = T(c.step_size), bias_correction2_sqrt = T(c.bias_correction2_sqrt);
  const size_t n = end - begin;
  for (size_t i = 0; i < n; ++i) {
    const T param = p[i] * param_decay;
    T grad = grad_sign * g[i];
    if constexpr (kWeightDecay) grad += wd * param;
    const T mi = beta1 * m[i] + one_minus_beta1 * grad;
    const T vi = beta2 * v[i] + one_minus_beta2 * grad * grad;
    m[i] = mi;
    v[i] = vi;
    T v_used = vi;
    if constexpr (kAmsgrad) {
      // NaN-propagating like np.maximum / torch.maximum when v is NaN.
      v_used = max_v[i] >= vi ? max_v[i] : vi;
      max_v[i] = v_used;
    }
    const T denom = std::sqrt(v_used) / bias_correction2_sqrt + eps;
    p[i] = param - step_size * mi / denom;
  }
}

// Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"):
//   p *= 1 - lr·wd (decoupled; param_decay = 1 without weight decay)
//   p -= lr · sign(β1·m + (1-β1)·g);  m = β2·m + (1-β2)·g
// sign(0) = 0 and sign(NaN) = NaN, as torch.sign.
template <class T>
void lion_span(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  T* __restrict p = slot_at<T>(t, kParam, begin);
  const T* __restrict g = slot_at<T>(t, kGrad, begin);
  T* __restrict m = slot_at<T>(t, lion_slots::exp_avg, begin);
  const T lr = T(c.lr), param_decay = T(c.param_decay);
  const T grad_sign = T(c.grad_sign);  // -1 to maximize (exact: x·±1 rounds to itself)
  const T beta1 = T(c.beta1), one_minus_beta1 = T(1.0 - c.beta1);
  const T beta2 = T(c.beta2), one_minus_beta2 = T(1.0 - c.beta2);
  const size_t n = end - begin;
  for (size_t i = 0; i < n; ++i) {
    const T grad = grad_sign * g[i];
    const T direction = beta1 * m[i] + one_minus_beta1 * grad;
    // Flat selects, not a nested ?: (which GCC does not if-convert for SSE2).
    const T positive = direction > T(0) ? T(1) : T(0);
    const T negative = direction < T(0) ? T(1) : T(0);
    T sign = positive - negative;
    sign = direction != direction ? direction : sign;  // NaN stays NaN
    p[i] = p[i] * param_decay - lr * sign;
    m[i] = beta2 * m[i] + one_minus_beta2 * grad;
  }
}

// Roofline probe: reads every non-null slot and writes all but the gradient,
// like a step, with one add per buffer. Slots 2.. are filled from 2 upwards.
template <class T, int kStates>
void stream_probe_span(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients&) {
  T* __restrict p = slot_at<T>(t, kParam, begin);
  const T* __restrict g = slot_at<T>(t, kGrad, begin);
  T* __restrict s0 = kStates > 0 ? slot_at<T>(t, kFirstState, begin) : nullptr;
  T* __restrict s1 = kStates > 1 ? slot_at<T>(t, kFirstState + 1, begin) : nullptr;
  T* __restrict s2 = kStates > 2 ? slot_at<T>(t, kFirstState + 2, begin) : nullptr;
  const size_t n = end - begin;
  for (size_t i = 0; i < n; ++i) {
    const T x = g[i];
    p[i] += x;
    if constexpr (kStates > 0) s0[i] += x;
    if constexpr (kStates > 1) s1[i] += x;
    if constexpr (kStates > 2) s2[i] += x;
  }
}

// Entry points: pick the loop variant once per span.
template <class T>
void sgd_step(const TensorBuffers& t, size_t b, size_t e, const StepCoefficients& c) {
  const bool wd = c.weight_decay != 0.0;
  if (c.momentum == 0.0) {
    if (wd) sgd_span<T, true>(t, b, e, c);
    else sgd_span<T, false>(t, b, e, c);
  } else if (c.nesterov) {
    if (wd) sgd_momentum_span<T, true, true>(t, b, e, c);
    else sgd_momentum_span<T, false, true>(t, b, e, c);
  } else {
    if (wd) sgd_momentum_span<T, true, false>(t, b, e, c);
    else sgd_momentum_span<T, false, false>(t, b, e, c);
  }
}

template <class T>
void adagrad_step(const TensorBuffers& t, size_t b, size_t e, const StepCoefficients& c) {
  if (c.weight_decay != 0.0) adagrad_span<T, true>(t, b, e, c);
  else adagrad_span<T, false>(t, b, e, c);
}

template <class T, bool kWeightDecay>
void rmsprop_step_wd(const TensorBuffers& t, size_t b, size_t e, const StepCoefficients& c) {
  const bool momentum = c.momentum > 0.0;
  if (c.centered) {
    if (momentum) rmsprop_span<T, kWeightDecay, true, true>(t, b, e, c);
    else rmsprop_span<T, kWeightDecay, true, false>(t, b, e, c);
  } else {
    if (momentum) rmsprop_span<T, kWeightDecay, false, true>(t, b, e, c);
    else rmsprop_span<T, kWeightDecay, false, false>(t, b, e, c);
  }
}

template <class T>
void rmsprop_step(const TensorBuffers& t, size_t b, size_t e, const StepCoefficients& c) {
  if (c.weight_decay != 0.0) rmsprop_step_wd<T, true>(t, b, e, c);
  else rmsprop_step_wd<T, false>(t, b, e, c);
}

template <class T>
void adam_step(const TensorBuffers& t, size_t b, size_t e, const StepCoefficients& c) {
  const bool wd = c.weight_decay != 0.0;
  if (c.amsgrad) {
    if (wd) adam_span<T, true, true>(t, b, e, c);
    else adam_span<T, false, true>(t, b, e, c);
  } else {
    if (wd) adam_span<T, true, false>(t, b, e, c);
    else adam_span<T, false, false>(t, b, e, c);
  }
}

template <class T>
void stream_probe_step(const TensorBuffers& t, size_t b, size_t e, const StepCoefficients& c) {
  int states = 0;
  while (states < kStateEnd - kFirstState && t.slot[kFirstState + states] != nullptr) ++states;
  switch (states) {
    case 0: stream_probe_span<T, 0>(t, b, e, c); break;
    case 1: stream_probe_span<T, 1>(t, b, e, c); break;
    case 2: stream_probe_span<T, 2>(t, b, e, c); break;
    default: stream_probe_span<T, 3>(t, b, e, c); break;
  }
}

// x - x is 0 for finite x and NaN for ±inf or NaN; the sum is 0 iff all are finite.
template <class T>
bool all_finite(const void* data, size_t n) {
  const T* x = static_cast<const T*>(data);
  T acc = 0;
#pragma omp simd reduction(+ : acc)
  for (size_t i = 0; i < n; ++i) acc += x[i] - x[i];
  return acc == T(0);
}

// The table, filled by name: span[dtype][rule].
template <class T>
void fill(OptimKernels& k, DType dtype) {
  SpanKernel* span = k.span[static_cast<int>(dtype)];
  span[static_cast<int>(Rule::sgd)] = sgd_step<T>;
  span[static_cast<int>(Rule::adagrad)] = adagrad_step<T>;
  span[static_cast<int>(Rule::rmsprop)] = rmsprop_step<T>;
  span[static_cast<int>(Rule::adam)] = adam_step<T>;    // decoupled or not: the coefficients say
  span[static_cast<int>(Rule::adamw)] = adam_step<T>;
  span[static_cast<int>(Rule::lion)] = lion_span<T>;
  span[static_cast<int>(Rule::stream_probe)] = stream_probe_step<T>;
  k.all_finite[static_cast<int>(dtype)] = all_finite<T>;
}

OptimKernels make_kernels() {
  OptimKernels k{};
  fill<float>(k, DType::f32);
  fill<double>(k, DType::f64);
  FASTOPT_CONCAT(fill_mixed_precision_kernels_, FASTOPT_ISA)(k);  // float16 / bfloat16 storage
  return k;
}

const OptimKernels kKernels = make_kernels();

}  // namespace
}  // namespace FASTOPT_ISA

const OptimKernels& FASTOPT_CONCAT(optim_kernels_, FASTOPT_ISA)() { return FASTOPT_ISA::kKernels; }

}  // namespace fastopt
