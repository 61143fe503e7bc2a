#pragma once

#include <cstddef>

#include "runtime/dtype.hpp"

namespace fastopt {

// The L-BFGS search direction d = -H·g by the two-loop recursion (Nocedal &
// Wright, Alg. 7.4), as torch.optim.LBFGS computes it: m correction pairs
// (s_i, y_i) oldest first with rho_i = 1/(y_i·s_i), the initial scaling h
// (H_diag):
//   q = -g;  for i = m-1..0: al_i = rho_i·(s_i·q); q -= al_i·y_i
//   r = h·q; for i = 0..m-1: be_i = rho_i·(y_i·r); r += (al_i - be_i)·s_i;  d = r
// Every vector has n elements of `dtype` (f32 or f64); d may not overlap the
// others. One fused pass per pair and loop (the update of one pair with the
// dot product of the next), threaded over fixed blocks whose partial sums are
// added in block order: bitwise the same for any thread count and ISA. al (m
// values) is written too.
void lbfgs_direction(DType dtype, std::size_t n, const void* g, const void* const* s, const void* const* y,
                     const double* rho, std::size_t m, double h, void* d, double* al);

}  // namespace fastopt
