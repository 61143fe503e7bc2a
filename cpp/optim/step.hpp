// The threaded multi-tensor driver (optim/step.cpp): one step of a rule over
// many tensors, and the whole-step checks and reductions of the offload phase.
#pragma once

#include <cstddef>

#include "optim/coefficients.hpp"
#include "optim/storage.hpp"

namespace fastopt {

// Runs one step of `rule` over all tensors with the active ISA's kernels;
// tensor t uses coefficients[t.group]. Tensors are cut into fixed blocks of
// kBlockElements, so every element is computed by the same instructions
// whatever the thread count: results are bitwise identical for any number of
// threads. Releases nothing: callers release the GIL.
constexpr std::size_t kBlockElements = 8192;
void run_step(Rule rule, const TensorBuffers* tensors, std::size_t count, const StepCoefficients* coefficients);

// True when slot `slot` (kGrad, or a slot stored like the parameter) of every
// tensor holds only finite values.
bool all_finite(const TensorBuffers* tensors, std::size_t count, int slot);

// The sum of squares of every gradient element (a global gradient norm is its
// square root), in double; bitwise the same for any thread count and ISA
// (fixed blocks, partial sums combined in block order). Inf or NaN if any
// gradient element is.
double gradient_sum_squares(const TensorBuffers* tensors, std::size_t count);

}  // namespace fastopt
