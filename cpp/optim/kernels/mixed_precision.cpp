// Optimizer kernels for float16 / bfloat16 storage ("mixed" layouts, numbered
// as optim/kernels.hpp's mixed_layout): the rules of rule_loops.hpp with widening
// loads, float32 arithmetic and rounding stores, in one pass over memory.
//
// Compiled once per ISA, like optim/kernels/full_precision.cpp. The layouts:
//   - float16/bfloat16 parameters, gradients in their dtype or float32, state
//     in float32 or their dtype, rounded to nearest or stochastically;
//   - master-weight mode: float32 parameters and state, float32/float16/
//     bfloat16 gradients, and an optional float16/bfloat16 copy of the updated
//     parameters (rounded to nearest) written in the same loop.
#include <cstddef>
#include <cstdint>

#include "runtime/isa_namespace.hpp"
#include "optim/kernels/low_precision.hpp"
#include "optim/kernels.hpp"
#include "optim/registry.hpp"
#include "optim/step.hpp"
#include "optim/kernels/rule_loops.hpp"

namespace fastopt {
namespace FASTOPT_ISA {
namespace {

template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, bfloat16_t>) return DType::bf16;
  else if constexpr (std::is_same_v<T, float16_t>) return DType::f16;
  else if constexpr (std::is_same_v<T, double>) return DType::f64;
  else return DType::f32;
}

template <class L>
constexpr int index_of() {
  Storage s;
  s.param = dtype_of<typename L::param>();
  s.grad = dtype_of<typename L::grad>();
  s.state = dtype_of<typename L::state>();
  s.copy = L::has_copy ? dtype_of<typename L::copy>() : DType::f32;
  return mixed_layout(s, L::has_copy, L::stochastic);
}

template <class L>
void fill_layout(OptimKernels& k) {
  constexpr int index = index_of<L>();
  static_assert(index >= 0 && index < kMixedLayouts, "a mixed layout has a table entry");
  fill_rules<L>(k.mixed[index], k.probe_mixed[index]);
}

// Low-precision parameters P: gradients P or float32, state float32 or P, two roundings.
template <class P>
void fill_low_precision(OptimKernels& k) {
  fill_layout<Layout<P, P, float, NoCopy, false>>(k);
  fill_layout<Layout<P, P, float, NoCopy, true>>(k);
  fill_layout<Layout<P, P, P, NoCopy, false>>(k);
  fill_layout<Layout<P, P, P, NoCopy, true>>(k);
  fill_layout<Layout<P, float, float, NoCopy, false>>(k);
  fill_layout<Layout<P, float, float, NoCopy, true>>(k);
  fill_layout<Layout<P, float, P, NoCopy, false>>(k);
  fill_layout<Layout<P, float, P, NoCopy, true>>(k);
}

// Master weights: float32 parameters and state, gradients G, copy C (or none).
template <class G>
void fill_master(OptimKernels& k) {
  if constexpr (!std::is_same_v<G, float>) fill_layout<Layout<float, G, float, NoCopy>>(k);
  fill_layout<Layout<float, G, float, float16_t>>(k);
  fill_layout<Layout<float, G, float, bfloat16_t>>(k);
}

// A 16-bit float is Inf or NaN when its exponent bits are all ones.
template <std::uint32_t kExponentMask>
bool all_finite_16(const void* data, std::size_t n) {
  const std::uint16_t* x = static_cast<const std::uint16_t*>(data);
  std::uint32_t not_finite = 0;
#pragma omp simd reduction(| : not_finite)
  for (std::size_t i = 0; i < n; ++i) not_finite |= (x[i] & kExponentMask) == kExponentMask ? 1u : 0u;
  return not_finite == 0;
}

}  // namespace
}  // namespace FASTOPT_ISA

void FASTOPT_CONCAT(fill_mixed_precision_kernels_, FASTOPT_ISA)(OptimKernels& k) {
  using namespace FASTOPT_ISA;
  fill_low_precision<float16_t>(k);
  fill_low_precision<bfloat16_t>(k);
  fill_master<float>(k);
  fill_master<float16_t>(k);
  fill_master<bfloat16_t>(k);
  k.all_finite[static_cast<int>(DType::f16)] = all_finite_16<0x7C00u>;
  k.all_finite[static_cast<int>(DType::bf16)] = all_finite_16<0x7F80u>;
  k.sum_squares[static_cast<int>(DType::f16)] = sum_squares<float16_t>;
  k.sum_squares[static_cast<int>(DType::bf16)] = sum_squares<bfloat16_t>;
}

}  // namespace fastopt
