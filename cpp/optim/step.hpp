// The threaded multi-tensor driver (optim/step.cpp): one step of a rule over
// many tensors, and the whole-step checks and reductions of the offload phase.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
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

// A step count as its owner keeps it: the number of steps taken, read for the
// next step's number (taken + 1) and incremented by run_counted_step. fastopt.optim
// keeps an int64 per parameter group; fastopt.torch, torch's state["step"] (a
// one-element float32, float64, int32 or int64 tensor) and the optimizer's own
// int64 counter.
enum class CountType : std::uint8_t { float32, float64, int32, int64 };
struct StepCount {
  void* data = nullptr;
  CountType type = CountType::int64;
};

// The steps taken, or -1 unless the count is a whole number >= 0 below a
// limit at which its increment is still exact and in range (2^53 for the
// float types, as torch keeps step counts; INT32_MAX and INT64_MAX - 1).
std::int64_t steps_taken(const StepCount& count) noexcept;
double count_value(const StepCount& count) noexcept;  // the count as a number, for messages

// steps_taken, or std::invalid_argument naming it (`name()`) when it is -1.
template <class Name>
std::int64_t checked_steps_taken(const StepCount& count, const Name& name) {
  const std::int64_t taken = steps_taken(count);
  if (taken < 0)
    throw std::invalid_argument(name() + " is " + std::to_string(count_value(count)) +
                                ": a step count is a whole number >= 0");
  return taken;
}

// run_phased_step, then, when the step was applied, every count + 1 before it
// returns: the update and its count are never apart. std::invalid_argument, and
// nothing changed, if a count is out of steps_taken's range (callers check
// them first with checked_steps_taken, which names them).
bool run_counted_step(Rule rule, const TensorBuffers* tensors, std::size_t count,
                      std::vector<StepCoefficients> coefficients, const std::vector<StepCount>& counts,
                      bool skip_if_nonfinite, GradientPhase* phase);

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
