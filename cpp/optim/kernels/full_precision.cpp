// Optimizer update kernels on float32 and float64 buffers ("direct" layouts):
// one fused pass over memory per step.
//
// This file is compiled once per ISA (CMakeLists.txt: baseline, avx2, avx512)
// with -DFASTOPT_ISA=<name>; everything lands in namespace fastopt::<name>, so
// fastopt::avx2::adam_span<Layout<float, ...>, ...> is the AVX2+FMA fp32 Adam
// kernel. The loops themselves, one template per rule, are in rule_loops.hpp;
// optim/kernels/mixed_precision.cpp instantiates them for float16/bfloat16 storage.
#include <cstddef>

#include "runtime/isa_namespace.hpp"
#include "optim/kernels.hpp"
#include "optim/registry.hpp"
#include "optim/step.hpp"
#include "optim/kernels/rule_loops.hpp"
#include "optim/kernels/quantize.hpp"

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

template <class T>
double sum_products(const T* __restrict x, const T* __restrict z, size_t n) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (size_t j = 0; j < 8; ++j) acc[j] += double(z[i + j]) * double(x[i + j]);
  for (size_t j = 0; i + j < n; ++j) acc[j] += double(z[i + j]) * double(x[i + j]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// The passes of L-BFGS's two-loop recursion: the update of x and a dot product
// with the new x in one pass, eight running double sums as sum_squares.
template <class T>
double neg_copy_dot(void* x_, const void* g_, const void* z_, size_t n) {
  T* __restrict x = static_cast<T*>(x_);
  const T* __restrict g = static_cast<const T*>(g_);
  const T* __restrict z = static_cast<const T*>(z_);
  if (z == nullptr) {
    for (size_t i = 0; i < n; ++i) x[i] = -g[i];
    return 0.0;
  }
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (size_t j = 0; j < 8; ++j) {
      x[i + j] = -g[i + j];
      acc[j] += double(z[i + j]) * double(x[i + j]);
    }
  for (size_t j = 0; i + j < n; ++j) {
    x[i + j] = -g[i + j];
    acc[j] += double(z[i + j]) * double(x[i + j]);
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

template <class T>
double axpy_scale_dot(void* x_, double a_, const void* y_, double h_, const void* z_, size_t n) {
  T* __restrict x = static_cast<T*>(x_);
  const T* __restrict y = static_cast<const T*>(y_);
  const T* __restrict z = static_cast<const T*>(z_);
  const T a = T(a_), h = T(h_);
  if (y == nullptr) {  // x = x·h alone (no correction pair yet)
    for (size_t i = 0; i < n; ++i) x[i] = x[i] * h;
    return z == nullptr ? 0.0 : sum_products(x, z, n);
  }
  if (z == nullptr) {  // the last pass: no dot product follows
    for (size_t i = 0; i < n; ++i) x[i] = (x[i] + a * y[i]) * h;
    return 0.0;
  }
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (size_t j = 0; j < 8; ++j) {
      x[i + j] = (x[i + j] + a * y[i + j]) * h;
      acc[j] += double(z[i + j]) * double(x[i + j]);
    }
  for (size_t j = 0; i + j < n; ++j) {
    x[i + j] = (x[i + j] + a * y[i + j]) * h;
    acc[j] += double(z[i + j]) * double(x[i + j]);
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

OptimKernels make_kernels() {
  OptimKernels k{};
  fill_rules<Layout<float, float, float>>(k.span[static_cast<int>(DType::f32)], k.probe[static_cast<int>(DType::f32)],
                                         &k.probe_8bit);
  k.dequantize[0] = dequantize_block<false>;
  k.dequantize[1] = dequantize_block<true>;
  k.quantize[0] = quantize_block<false>;
  k.quantize[1] = quantize_block<true>;
  fill_rules<Layout<double, double, double>>(k.span[static_cast<int>(DType::f64)],
                                             k.probe[static_cast<int>(DType::f64)]);
  k.all_finite[static_cast<int>(DType::f32)] = all_finite<float>;
  k.all_finite[static_cast<int>(DType::f64)] = all_finite<double>;
  k.sum_squares[static_cast<int>(DType::f32)] = sum_squares<float>;
  k.sum_squares[static_cast<int>(DType::f64)] = sum_squares<double>;
  k.neg_copy_dot[static_cast<int>(DType::f32)] = neg_copy_dot<float>;
  k.neg_copy_dot[static_cast<int>(DType::f64)] = neg_copy_dot<double>;
  k.axpy_scale_dot[static_cast<int>(DType::f32)] = axpy_scale_dot<float>;
  k.axpy_scale_dot[static_cast<int>(DType::f64)] = axpy_scale_dot<double>;
  FASTOPT_CONCAT(fill_mixed_precision_kernels_, FASTOPT_ISA)(k);  // float16 / bfloat16 storage
  return k;
}

const OptimKernels kKernels = make_kernels();

}  // namespace
}  // namespace FASTOPT_ISA

const OptimKernels& FASTOPT_CONCAT(optim_kernels_, FASTOPT_ISA)() { return FASTOPT_ISA::kKernels; }

}  // namespace fastopt
