// Optimizer kernels for float16 / bfloat16 storage (the "mixed" layouts of
// optim/kernels.hpp's kMixedLayoutList): the rules of rule_loops.hpp with widening
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
#include <type_traits>
#include <utility>

#include "runtime/isa_namespace.hpp"
#include "optim/kernels/low_precision.hpp"
#include "optim/kernels.hpp"
#include "optim/registry.hpp"
#include "optim/step.hpp"
#include "optim/kernels/rule_loops.hpp"

namespace fastopt {
namespace FASTOPT_ISA {
namespace {

// The C++ type of a buffer of dtype D.
template <DType D>
struct TypeOf;
template <> struct TypeOf<DType::f32> { using type = float; };
template <> struct TypeOf<DType::f64> { using type = double; };
template <> struct TypeOf<DType::f16> { using type = float16_t; };
template <> struct TypeOf<DType::bf16> { using type = bfloat16_t; };

// Entry I of kMixedLayoutList as a storage layout type, and every rule's loop for it.
template <int I>
void fill_entry(OptimKernels& k) {
  constexpr MixedLayout m = kMixedLayoutList.entry[I];
  using Copy = std::conditional_t<m.has_copy, typename TypeOf<m.copy>::type, NoCopy>;
  using L = Layout<typename TypeOf<m.param>::type, typename TypeOf<m.grad>::type, typename TypeOf<m.state>::type,
                   Copy, m.stochastic>;
  fill_rules<L>(k.mixed[I], k.probe_mixed[I], m.state == DType::f32 ? &k.probe_8bit_mixed[I] : nullptr);
}

template <int... I>
void fill_entries(OptimKernels& k, std::integer_sequence<int, I...>) {
  (fill_entry<I>(k), ...);
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
  fill_entries(k, std::make_integer_sequence<int, kMixedLayouts>{});
  k.all_finite[static_cast<int>(DType::f16)] = all_finite_16<0x7C00u>;
  k.all_finite[static_cast<int>(DType::bf16)] = all_finite_16<0x7F80u>;
  k.sum_squares[static_cast<int>(DType::f16)] = sum_squares<float16_t>;
  k.sum_squares[static_cast<int>(DType::bf16)] = sum_squares<bfloat16_t>;
}

}  // namespace fastopt
