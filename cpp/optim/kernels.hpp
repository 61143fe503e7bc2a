// The optimizer's kernel tables: one per compiled ISA (optim/kernels/*.cpp),
// indexed by storage layout and rule.
#pragma once

#include <cstddef>
#include <cstdint>

#include "optim/coefficients.hpp"
#include "optim/quantization.hpp"
#include "optim/storage.hpp"

namespace fastopt {

// Applies a rule to elements [begin, end) of one tensor, single-threaded.
using SpanKernel = void (*)(const TensorBuffers& t, std::size_t begin, std::size_t end,
                            const StepCoefficients& c);
// True when every element of x[0, n) is finite.
using AllFiniteKernel = bool (*)(const void* x, std::size_t n);
// Sum of x[i]² over [0, n) in double, in an order fixed for every ISA (eight
// running sums, element i into sum i mod 8, combined in order).
using SumSquaresKernel = double (*)(const void* x, std::size_t n);

// 8-bit state (optim/quantization.hpp), one block of n <= kQuantBlock
// elements: out = map value of each code · absmax; and the codes of x with
// the block's new absmax (over its finite elements), returned.
using DequantizeKernel = void (*)(const std::uint8_t* codes, float absmax, float* out, std::size_t n,
                                  const QuantTable& map);
using QuantizeKernel = float (*)(const float* x, std::uint8_t* codes, std::size_t n, const QuantTable& map);

// L-BFGS's two-loop recursion, one fused pass per correction pair
// (lbfgs_direction below). x = -g, and Σ z[i]·x[i]; or x = (x + a·y)·h, and
// Σ z[i]·x[i] (z null: 0), the sums in double in the order of sum_squares (eight
// running sums): the same for every ISA.
using NegCopyDotKernel = double (*)(void* x, const void* g, const void* z, std::size_t n);
using AxpyScaleDotKernel = double (*)(void* x, double a, const void* y, double h, const void* z, std::size_t n);

// Storages that are not direct ("mixed": a float16/bfloat16 buffer, or the
// parameter copy) have kernels of their own: the rule's loop with widening
// loads and rounding stores (optim/kernels/rule_loops.hpp). Their list is made
// here from the dtype lists below; each ISA instantiates every rule for every
// entry (optim/kernels/mixed_precision.cpp), and mixed_layout() finds a
// storage's entry. A new layout is a new member of a list.
struct MixedLayout {
  DType param, grad, state, copy;
  bool has_copy, stochastic;
};
namespace mixed_layouts {
constexpr DType kLow[] = {DType::f16, DType::bf16};  // 16-bit parameters
constexpr bool kRoundings[] = {false, true};         // to nearest, stochastic
// Master-weight mode: float32 parameters and state, 16-bit or float32
// gradients, a 16-bit copy or none (float32 gradients without a copy are direct).
constexpr DType kMasterGrads[] = {DType::f32, DType::f16, DType::bf16};
constexpr DType kCopies[] = {DType::f16, DType::bf16};

constexpr int count() {
  int n = 0;
  for (DType p : kLow) (void)p, n += 2 * 2 * 2;  // gradient: its dtype or f32; state: f32 or its dtype; roundings
  for (DType g : kMasterGrads) n += (g == DType::f32 ? 0 : 1) + 2;  // no copy (unless f32), each copy
  return n;
}
}  // namespace mixed_layouts
constexpr int kMixedLayouts = mixed_layouts::count();

struct MixedLayoutList {
  MixedLayout entry[kMixedLayouts];
};
constexpr MixedLayoutList make_mixed_layouts() {
  using namespace mixed_layouts;
  MixedLayoutList out{};
  int n = 0;
  for (DType p : kLow)
    for (DType g : {p, DType::f32})
      for (DType s : {DType::f32, p})
        for (bool stochastic : kRoundings) out.entry[n++] = {p, g, s, DType::f32, false, stochastic};
  for (DType g : kMasterGrads) {
    if (g != DType::f32) out.entry[n++] = {DType::f32, g, DType::f32, DType::f32, false, false};
    for (DType c : kCopies) out.entry[n++] = {DType::f32, g, DType::f32, c, true, false};
  }
  return out;
}
constexpr MixedLayoutList kMixedLayoutList = make_mixed_layouts();

// The index of a storage's entry (stochastic rounding applies to 16-bit
// parameters only); -1: direct, or not a supported storage (storage_problem
// says why).
constexpr int mixed_layout(const Storage& s, bool has_copy, bool stochastic) {
  const bool low = s.param == DType::f16 || s.param == DType::bf16;
  for (int i = 0; i < kMixedLayouts; ++i) {
    const MixedLayout& l = kMixedLayoutList.entry[i];
    if (l.param == s.param && l.grad == s.grad && l.state == s.state && l.has_copy == has_copy &&
        (!has_copy || l.copy == s.copy) && l.stochastic == (stochastic && low))
      return i;
  }
  return -1;
}

// One table per compiled ISA (optim/kernels/full_precision.cpp and optim/kernels/mixed_precision.cpp,
// built once per ISA), indexed by rule.
struct OptimKernels {
  SpanKernel span[2][static_cast<int>(Rule::count)];              // direct: [DType f32/f64][Rule]
  SpanKernel mixed[kMixedLayouts][static_cast<int>(Rule::count)];  // [mixed_layout][Rule]
  // The roofline probe (run_stream_probe), per storage layout as a rule's loop.
  SpanKernel probe[2];                                             // direct: [DType f32/f64]
  SpanKernel probe_mixed[kMixedLayouts];                           // [mixed_layout]
  // ... and with 8-bit state: by the layout the state's float32 twin has (null
  // for layouts whose state is not float32).
  SpanKernel probe_8bit;                                           // direct float32
  SpanKernel probe_8bit_mixed[kMixedLayouts];                      // [mixed_layout]
  DequantizeKernel dequantize[2];                                  // [signed map]
  QuantizeKernel quantize[2];                                      // [signed map]
  AllFiniteKernel all_finite[static_cast<int>(DType::count)];     // [DType]
  SumSquaresKernel sum_squares[static_cast<int>(DType::count)];   // [DType]
  NegCopyDotKernel neg_copy_dot[2];                                // [DType f32/f64]
  AxpyScaleDotKernel axpy_scale_dot[2];                            // [DType f32/f64]
};
void fill_mixed_precision_kernels_baseline(OptimKernels& k);
void fill_mixed_precision_kernels_avx2(OptimKernels& k);
void fill_mixed_precision_kernels_avx512(OptimKernels& k);
const OptimKernels& optim_kernels_baseline();
const OptimKernels& optim_kernels_avx2();
const OptimKernels& optim_kernels_avx512();

}  // namespace fastopt
