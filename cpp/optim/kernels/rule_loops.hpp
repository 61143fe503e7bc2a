// The toolkit of the update rules' per-element loops — a storage layout L (the
// element types of the parameter, gradient, state and parameter copy, the
// arithmetic type, the rounding of the parameter), the parameter store, slot
// access — and each ISA's table of them. The loops themselves, one template per
// rule, are the FASTOPT_ISA halves of cpp/optim/rules/<name>.hpp, included
// here. Included by the per-ISA kernel files only: optim/kernels/full_precision.cpp
// instantiates the direct layouts (float32, float64),
// optim/kernels/mixed_precision.cpp the float16/bfloat16 ones.
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

#include "runtime/isa_namespace.hpp"
#include "optim/kernels/low_precision.hpp"
#include "optim/kernels.hpp"
#include "optim/quantization.hpp"
#include "optim/registry.hpp"
#include "optim/step.hpp"

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
// random bits of element `begin + i` (optim/kernels/low_precision.hpp), and into the copy.
template <class L>
struct ParamStore {
  using copy_t = std::conditional_t<L::has_copy, typename L::copy, float>;
  copy_t* __restrict copy = nullptr;
  std::uint32_t first = 0, key = 0;

  ParamStore(const TensorBuffers& t, size_t begin, const StepCoefficients& c) {
    if constexpr (L::has_copy) copy = slot_at<copy_t>(t, kParamCopy, begin);
    if constexpr (L::stochastic) {
      first = static_cast<std::uint32_t>(t.offset + begin);
      key = low_precision::stream_key(c.seed, c.rounding_step, t.stream, t.offset + begin);
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

// ... with 8-bit state: every code and absmax of the given states read and
// written once, with the parameter update of the layout (L's state is unused).
template <class L>
void stream_probe_8bit_step(const TensorBuffers& t, size_t begin, size_t end, const StepCoefficients& c) {
  typename L::param* __restrict p = slot_at<typename L::param>(t, kParam, begin);
  const typename L::grad* __restrict g = slot_at<typename L::grad>(t, kGrad, begin);
  const ParamStore<L> store_param(t, begin, c);
  const size_t n = end - begin;
  for (size_t i = 0; i < n; ++i) store_param(p, i, load(p[i]) + load(g[i]));
  for (int s = kFirstState; s < kStateEnd; ++s) {
    if (t.slot[s] == nullptr) continue;
    std::uint8_t* __restrict q = slot_at<std::uint8_t>(t, s, begin);
    for (size_t i = 0; i < n; ++i) q[i] = static_cast<std::uint8_t>(q[i] + 1u);
    float* __restrict scale = t.absmax[s - kFirstState];
    for (size_t b = begin / kQuantBlock; b < quant_blocks(end); ++b) scale[b] += 1.0f;
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

}  // namespace
}  // namespace FASTOPT_ISA
}  // namespace fastopt

// Every rule's update loop (the FASTOPT_ISA half of cpp/optim/rules/<name>.hpp):
// <name>_step<L>, in this namespace, with the toolkit above.
#include "optim/rule_files.hpp"

namespace fastopt {
namespace FASTOPT_ISA {
namespace {

// Every rule's entry point for layout L, by name: table[rule] (from rules.list);
// and the roofline probe's.
template <class L>
void fill_rules(SpanKernel* table, SpanKernel& probe, SpanKernel* probe_8bit = nullptr) {
#define FASTOPT_RULE_KERNEL(name) table[static_cast<int>(Rule::name)] = name##_step<L>;
  FASTOPT_RULES(FASTOPT_RULE_KERNEL)
#undef FASTOPT_RULE_KERNEL
  probe = stream_probe_step<L>;
  if (probe_8bit != nullptr) *probe_8bit = stream_probe_8bit_step<L>;
}

}  // namespace
}  // namespace FASTOPT_ISA
}  // namespace fastopt
