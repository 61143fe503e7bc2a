// L-BFGS's search direction (optim.hpp, lbfgs_direction): the two-loop
// recursion as fused passes (each pair's update with the next pair's dot
// product), threaded over fixed blocks. ISA-independent: the passes are the
// active kernel table's.
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "optim/lbfgs.hpp"
#include "optim/step.hpp"  // kBlockElements
#include "optim/kernels.hpp"
#include "runtime/runtime.hpp"

namespace fastopt {

namespace {

// One pass over [0, n) in blocks of kBlockElements; body(begin, end) returns the
// block's partial sum, and the partials are added in block order: the same sum
// for any thread count.
template <class Body>
double blocked_pass(std::size_t n, const Body& body) {
  const std::size_t blocks = (n + kBlockElements - 1) / kBlockElements;
  std::vector<double> partial(blocks, 0.0);
  auto one = [&](std::int64_t b) {
    const std::size_t begin = static_cast<std::size_t>(b) * kBlockElements;
    partial[static_cast<std::size_t>(b)] = body(begin, std::min(n, begin + kBlockElements));
  };
  const auto count = static_cast<std::int64_t>(blocks);
  if (n < kParallelMinElements || num_threads() == 1) {
    for (std::int64_t b = 0; b < count; ++b) one(b);
  } else {
    parallel_for(count, threads_for(n, blocks), one);
  }
  double sum = 0.0;
  for (double x : partial) sum += x;
  return sum;
}

}  // namespace

void lbfgs_direction(DType dtype, std::size_t n, const void* g, const void* const* s, const void* const* y,
                     const double* rho, std::size_t m, double h, void* d, double* al) {
  if (dtype != DType::f32 && dtype != DType::f64)
    throw std::invalid_argument("lbfgs_direction: float32 or float64 vectors");
  const OptimKernels& k = active_optim_kernels();
  const int t = static_cast<int>(dtype);
  const std::size_t size = dtype_size(dtype);
  auto at = [size](const void* p, std::size_t i) -> const void* {
    return p == nullptr ? nullptr : static_cast<const char*>(p) + i * size;
  };
  auto at_d = [size, d](std::size_t i) -> void* { return static_cast<char*>(d) + i * size; };
  // q = -g, with s_{m-1}·q
  double dot = blocked_pass(n, [&](std::size_t b, std::size_t e) {
    return k.neg_copy_dot[t](at_d(b), at(g, b), m > 0 ? at(s[m - 1], b) : nullptr, e - b);
  });
  if (m == 0) {  // d = h·q
    blocked_pass(n, [&](std::size_t b, std::size_t e) {
      return k.axpy_scale_dot[t](at_d(b), 0.0, nullptr, h, nullptr, e - b);
    });
    return;
  }
  // First loop, newest pair first: q -= al_i·y_i, with s_{i-1}·q; the last
  // pass also scales by h (r = h·q) and takes y_0·r for the second loop.
  for (std::size_t i = m; i-- > 0;) {
    al[i] = dot * rho[i];
    const void* next = i > 0 ? s[i - 1] : y[0];
    const double scale = i > 0 ? 1.0 : h;
    dot = blocked_pass(n, [&](std::size_t b, std::size_t e) {
      return k.axpy_scale_dot[t](at_d(b), -al[i], at(y[i], b), scale, at(next, b), e - b);
    });
  }
  // Second loop, oldest pair first: r += (al_i - be_i)·s_i, with y_{i+1}·r.
  for (std::size_t i = 0; i < m; ++i) {
    const double be = dot * rho[i];
    const void* next = i + 1 < m ? y[i + 1] : nullptr;
    dot = blocked_pass(n, [&](std::size_t b, std::size_t e) {
      return k.axpy_scale_dot[t](at_d(b), al[i] - be, at(s[i], b), 1.0, at(next, b), e - b);
    });
  }
}

}  // namespace fastopt
