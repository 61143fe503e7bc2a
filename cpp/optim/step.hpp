// The threaded multi-tensor driver (optim/step.cpp): one step of a rule over
// many tensors, and the whole-step checks and reductions of the offload phase.
#pragma once

#include <cstddef>
#include <vector>

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

// What a step does to the gradients before the rule sees them (the fused
// offload phase of loss-scaled training): unscale by `grad_scale` (1/loss
// scale), and with max_norm > 0 clip by the global norm as
// torch.nn.utils.clip_grad_norm_ does (g *= min(1, max_norm / (norm + 1e-6))).
// Both fold into one multiplier of the gradient inside the update loop: no pass
// over memory of their own.
struct GradientPhase {
  double grad_scale = 1.0;
  double max_norm = 0.0;      // 0: no clipping
  double norm = 0.0;          // out: the global norm of the unscaled gradients, when computed
  bool computed_norm = false;
};

// One step with the gradient phase (phase may be null: the plain step). With
// skip_if_nonfinite or clipping, one read pass over the gradients first (their
// norm: Inf or NaN when any element is); false, and nothing changed, when
// skip_if_nonfinite finds a non-finite one. Else run_step with every
// coefficients' grad_sign times the phase's multiplier; true.
bool run_phased_step(Rule rule, const TensorBuffers* tensors, std::size_t count,
                     std::vector<StepCoefficients> coefficients, bool skip_if_nonfinite, GradientPhase* phase);

// The roofline probe, for benchmarks (no update rule): moves exactly the bytes
// of a step over the same buffers — reads every given slot, writes every one
// but the gradient — with one add per buffer, threaded like a step.
void run_stream_probe(const TensorBuffers* tensors, std::size_t count);

// True when slot `slot` (kGrad, or a slot stored like the parameter) of every
// tensor holds only finite values.
bool all_finite(const TensorBuffers* tensors, std::size_t count, int slot);

// The sum of squares of every gradient element (a global gradient norm is its
// square root), in double; bitwise the same for any thread count and ISA
// (fixed blocks, partial sums combined in block order). Inf or NaN if any
// gradient element is.
double gradient_sum_squares(const TensorBuffers* tensors, std::size_t count);

}  // namespace fastopt
