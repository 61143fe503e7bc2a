// Optimizer update kernels on float32 and float64 buffers ("direct" layouts):
// one fused pass over memory per step.
//
// This file is compiled once per ISA (CMakeLists.txt: baseline, avx2, avx512)
// with -DFASTOPT_ISA=<name>; everything lands in namespace fastopt::<name>, so
// fastopt::avx2::adam_span<Layout<float, ...>, ...> is the AVX2+FMA fp32 Adam
// kernel. The loops themselves, one template per rule, are in optim_rules.hpp;
// kernels/mixed_precision.cpp instantiates them for float16/bfloat16 storage.
#include <cstddef>

#include "fastopt/isa_namespace.hpp"
#include "fastopt/optim.hpp"
#include "optim_rules.hpp"

namespace fastopt {
namespace FASTOPT_ISA {
namespace {

using std::size_t;

// x - x is 0 for finite x and NaN for ±inf or NaN; the sum is 0 iff all are finite.
template <class T>
bool all_finite(const void* data, size_t n) {
  const T* x = static_cast<const T*>(data);
  T acc = 0;
#pragma omp simd reduction(+ : acc)
  for (size_t i = 0; i < n; ++i) acc += x[i] - x[i];
  return acc == T(0);
}

OptimKernels make_kernels() {
  OptimKernels k{};
  fill_rules<Layout<float, float, float>>(k.span[static_cast<int>(DType::f32)]);
  fill_rules<Layout<double, double, double>>(k.span[static_cast<int>(DType::f64)]);
  k.all_finite[static_cast<int>(DType::f32)] = all_finite<float>;
  k.all_finite[static_cast<int>(DType::f64)] = all_finite<double>;
  k.sum_squares[static_cast<int>(DType::f32)] = sum_squares<float>;
  k.sum_squares[static_cast<int>(DType::f64)] = sum_squares<double>;
  FASTOPT_CONCAT(fill_mixed_precision_kernels_, FASTOPT_ISA)(k);  // float16 / bfloat16 storage
  return k;
}

const OptimKernels kKernels = make_kernels();

}  // namespace
}  // namespace FASTOPT_ISA

const OptimKernels& FASTOPT_CONCAT(optim_kernels_, FASTOPT_ISA)() { return FASTOPT_ISA::kKernels; }

}  // namespace fastopt
