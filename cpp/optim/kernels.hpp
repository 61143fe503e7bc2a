// The optimizer's kernel tables: one per compiled ISA (optim/kernels/*.cpp),
// indexed by storage layout and rule.
#pragma once

#include <cstddef>

#include "optim/coefficients.hpp"
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

// L-BFGS's two-loop recursion, one fused pass per correction pair
// (lbfgs_direction below). x = -g, and Σ z[i]·x[i]; or x = (x + a·y)·h, and
// Σ z[i]·x[i] (z null: 0), the sums in double in the order of sum_squares (eight
// running sums): the same for every ISA.
using NegCopyDotKernel = double (*)(void* x, const void* g, const void* z, std::size_t n);
using AxpyScaleDotKernel = double (*)(void* x, double a, const void* y, double h, const void* z, std::size_t n);

// Storages that are not direct ("mixed": a float16/bfloat16 buffer, or the
// parameter copy) have kernels of their own: the rule's loop with widening
// loads and rounding stores (optim/kernels/rule_loops.hpp). They are numbered:
//   0..15   float16/bfloat16 parameters: 8·(param bf16) + 4·(grad f32) + 2·(state f32) + stochastic
//   16..23  float32 parameters and state: 16 + 3·grad + copy - 1, grad 0 f32 / 1 f16 / 2 bf16,
//           copy 0 none / 1 f16 / 2 bf16 (grad f32 without copy is direct)
// -1: direct, or not a supported storage (storage_problem says why).
constexpr int kMixedLayouts = 24;
constexpr int mixed_layout(const Storage& s, bool has_copy, bool stochastic) {
  auto low_code = [](DType d) { return d == DType::f16 ? 1 : d == DType::bf16 ? 2 : d == DType::f32 ? 0 : -1; };
  if (s.param == DType::f16 || s.param == DType::bf16) {
    if (has_copy || (s.grad != s.param && s.grad != DType::f32) || (s.state != s.param && s.state != DType::f32))
      return -1;
    return 8 * (s.param == DType::bf16) + 4 * (s.grad == DType::f32) + 2 * (s.state == DType::f32) + (stochastic ? 1 : 0);
  }
  if (s.param != DType::f32 || s.state != DType::f32) return -1;
  const int grad = low_code(s.grad);
  const int copy = has_copy ? low_code(s.copy) : 0;
  if (grad < 0 || copy < 0 || (has_copy && copy == 0) || (grad == 0 && copy == 0)) return -1;
  return 16 + 3 * grad + copy - 1;
}

// One table per compiled ISA (optim/kernels/full_precision.cpp and optim/kernels/mixed_precision.cpp,
// built once per ISA), indexed by rule.
struct OptimKernels {
  SpanKernel span[2][static_cast<int>(Rule::count)];              // direct: [DType f32/f64][Rule]
  SpanKernel mixed[kMixedLayouts][static_cast<int>(Rule::count)];  // [mixed_layout][Rule]
  // The roofline probe (run_stream_probe), per storage layout as a rule's loop.
  SpanKernel probe[2];                                             // direct: [DType f32/f64]
  SpanKernel probe_mixed[kMixedLayouts];                           // [mixed_layout]
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
