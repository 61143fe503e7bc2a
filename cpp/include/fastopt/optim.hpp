// Optimizer kernels: the contract between the per-ISA kernel files, the
// threaded driver (optim_step.cpp) and the bindings. Pure C++, no pybind11.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fastopt {

enum class DType { f32, f64 };

// The update rules of docs/design.md ("Optimizers — update rules"). AdamW is
// Rule::adam with a decoupled decay factor. stream_probe is not an optimizer:
// it moves exactly the bytes of a step (reads every slot, writes every slot but
// the gradient) with trivial arithmetic, to measure the memory roofline.
enum class Rule : int { sgd, sgd_momentum, adagrad, rmsprop, adam, stream_probe, count };

// Buffers of one tensor in a fixed slot order; unused optional slots are null.
//   sgd:           p, g
//   sgd_momentum:  p, g, momentum_buf
//   adagrad:       p, g, sum_sq
//   rmsprop:       p, g, square_avg, momentum_buf?, grad_avg?
//   adam(w):       p, g, m, v, max_v?
// The gradient is only read. All slots share one dtype and length n.
constexpr int kParam = 0;
constexpr int kGrad = 1;
constexpr int kMaxSlots = 5;

struct TensorBuffers {
  void* slot[kMaxSlots] = {nullptr, nullptr, nullptr, nullptr, nullptr};
  std::size_t n = 0;
};

// Scalars of one step, computed once per call in double; kernels cast them to
// the array dtype, so elementwise math runs in float32 for float32 arrays.
struct StepCoefficients {
  double lr = 0.0;
  double weight_decay = 0.0;  // coupled L2: g += wd * p (0 for AdamW)
  double momentum = 0.0;      // sgd_momentum, rmsprop
  double alpha = 0.0;         // rmsprop smoothing constant
  double beta1 = 0.0, beta2 = 0.0;
  double eps = 0.0;
  double adagrad_lr = 0.0;             // lr / (1 + (step - 1) * lr_decay)
  double step_size = 0.0;              // adam: lr / (1 - beta1^step)
  double bias_correction2_sqrt = 1.0;  // adam: sqrt(1 - beta2^step)
  double param_decay = 1.0;            // adamw: p *= 1 - lr * wd before the step
  bool nesterov = false;
  bool centered = false;
  bool amsgrad = false;
};

// Applies a rule to elements [begin, end) of one tensor, single-threaded.
using SpanKernel = void (*)(const TensorBuffers& t, std::size_t begin, std::size_t end,
                            const StepCoefficients& c);
// True when every element of x[0, n) is finite.
using AllFiniteKernel = bool (*)(const void* x, std::size_t n);

struct OptimKernels {
  SpanKernel f32[static_cast<int>(Rule::count)];
  SpanKernel f64[static_cast<int>(Rule::count)];
  AllFiniteKernel all_finite_f32;
  AllFiniteKernel all_finite_f64;
};

// One table per compiled ISA (defined in kernels/optim.cpp, built once per ISA).
const OptimKernels& optim_kernels_baseline();
const OptimKernels& optim_kernels_avx2();
const OptimKernels& optim_kernels_avx512();

// Coefficient builders: validate hyperparameters (std::invalid_argument naming
// the argument, which pybind11 raises as ValueError) and precompute scalars.
StepCoefficients sgd_coefficients(double lr, double weight_decay);
StepCoefficients sgd_momentum_coefficients(double lr, double momentum, bool nesterov,
                                           double weight_decay);
StepCoefficients adagrad_coefficients(double lr, double eps, double weight_decay,
                                      double lr_decay, std::int64_t step);
StepCoefficients rmsprop_coefficients(double lr, double alpha, double eps, double weight_decay,
                                      double momentum, bool centered);
StepCoefficients adam_coefficients(double lr, double beta1, double beta2, double eps,
                                   double weight_decay, bool amsgrad, bool decoupled,
                                   std::int64_t step);

// Hyperparameters of a stateful optimizer, for loops that step many times in
// native code (train.hpp): coefficients_at() rebuilds the per-step scalars for
// any lr and step exactly as the single-step entry points do.
struct OptimizerSettings {
  Rule rule = Rule::sgd;
  double weight_decay = 0.0;
  double momentum = 0.0;  // sgd_momentum, rmsprop
  bool nesterov = false;
  double eps = 0.0;
  double lr_decay = 0.0;  // adagrad
  double alpha = 0.0;     // rmsprop
  bool centered = false;
  double beta1 = 0.0, beta2 = 0.0;
  bool amsgrad = false;
  bool decoupled = false;  // adamw
};
StepCoefficients coefficients_at(const OptimizerSettings& s, double lr, std::int64_t step);

// Runs one step of `rule` over all tensors with the active ISA's kernels.
// Tensors are cut into fixed blocks of kBlockElements, so every element is
// computed by the same instructions whatever the thread count: results are
// bitwise identical for any number of threads. Releases nothing: callers
// release the GIL.
constexpr std::size_t kBlockElements = 8192;
void run_step(Rule rule, DType dtype, const TensorBuffers* tensors, std::size_t count,
              const StepCoefficients& c);

// True when slot `slot` of every tensor holds only finite values.
bool all_finite(DType dtype, const TensorBuffers* tensors, std::size_t count, int slot);

}  // namespace fastopt
