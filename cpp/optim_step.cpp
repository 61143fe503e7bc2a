// Hyperparameter validation, per-step scalars, and the threaded multi-tensor
// driver shared by every optimizer. ISA-independent: the per-element work is
// in kernels/optim.cpp, reached through the active kernel table.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastopt/optim.hpp"
#include "fastopt/runtime.hpp"

namespace fastopt {
namespace {

[[noreturn]] void bad_value(const char* name, const char* requirement, double value) {
  std::ostringstream msg;
  msg << name << " must be " << requirement << ", got " << value;
  throw std::invalid_argument(msg.str());
}

void require_nonnegative(const char* name, double x) {
  if (!(x >= 0.0 && std::isfinite(x))) bad_value(name, "a finite number >= 0", x);
}
void require_positive(const char* name, double x) {
  if (!(x > 0.0 && std::isfinite(x))) bad_value(name, "a finite number > 0", x);
}
void require_unit_interval(const char* name, double x) {  // [0, 1)
  if (!(x >= 0.0 && x < 1.0)) bad_value(name, "in [0, 1)", x);
}
void require_step(std::int64_t step) {
  if (step < 1) throw std::invalid_argument("step must be >= 1, got " + std::to_string(step));
}

}  // namespace

StepCoefficients sgd_coefficients(double lr, double weight_decay) {
  require_nonnegative("lr", lr);
  require_nonnegative("weight_decay", weight_decay);
  StepCoefficients c;
  c.lr = lr;
  c.weight_decay = weight_decay;
  return c;
}

StepCoefficients sgd_momentum_coefficients(double lr, double momentum, bool nesterov,
                                           double weight_decay) {
  StepCoefficients c = sgd_coefficients(lr, weight_decay);
  require_nonnegative("momentum", momentum);
  if (nesterov && momentum == 0.0)
    throw std::invalid_argument("nesterov=True requires momentum > 0, got momentum=0");
  c.momentum = momentum;
  c.nesterov = nesterov;
  return c;
}

StepCoefficients adagrad_coefficients(double lr, double eps, double weight_decay,
                                      double lr_decay, std::int64_t step) {
  StepCoefficients c = sgd_coefficients(lr, weight_decay);
  require_positive("eps", eps);
  require_nonnegative("lr_decay", lr_decay);
  require_step(step);
  c.eps = eps;
  c.adagrad_lr = lr / (1.0 + static_cast<double>(step - 1) * lr_decay);
  return c;
}

StepCoefficients rmsprop_coefficients(double lr, double alpha, double eps, double weight_decay,
                                      double momentum, bool centered) {
  StepCoefficients c = sgd_coefficients(lr, weight_decay);
  if (!(alpha >= 0.0 && alpha <= 1.0)) bad_value("alpha", "in [0, 1]", alpha);
  require_positive("eps", eps);
  require_nonnegative("momentum", momentum);
  c.alpha = alpha;
  c.eps = eps;
  c.momentum = momentum;
  c.centered = centered;
  return c;
}

StepCoefficients adam_coefficients(double lr, double beta1, double beta2, double eps,
                                   double weight_decay, bool amsgrad, bool decoupled,
                                   std::int64_t step) {
  require_nonnegative("lr", lr);
  require_unit_interval("beta1", beta1);
  require_unit_interval("beta2", beta2);
  require_positive("eps", eps);
  require_nonnegative("weight_decay", weight_decay);
  require_step(step);
  StepCoefficients c;
  c.lr = lr;
  c.beta1 = beta1;
  c.beta2 = beta2;
  c.eps = eps;
  c.amsgrad = amsgrad;
  const double t = static_cast<double>(step);
  c.step_size = lr / (1.0 - std::pow(beta1, t));
  c.bias_correction2_sqrt = std::sqrt(1.0 - std::pow(beta2, t));
  if (decoupled) {
    c.param_decay = 1.0 - lr * weight_decay;
  } else {
    c.weight_decay = weight_decay;
  }
  return c;
}

StepCoefficients coefficients_at(const OptimizerSettings& s, double lr, std::int64_t step) {
  switch (s.rule) {
    case Rule::sgd: return sgd_coefficients(lr, s.weight_decay);
    case Rule::sgd_momentum: return sgd_momentum_coefficients(lr, s.momentum, s.nesterov, s.weight_decay);
    case Rule::adagrad: return adagrad_coefficients(lr, s.eps, s.weight_decay, s.lr_decay, step);
    case Rule::rmsprop: return rmsprop_coefficients(lr, s.alpha, s.eps, s.weight_decay, s.momentum, s.centered);
    case Rule::adam:
      return adam_coefficients(lr, s.beta1, s.beta2, s.eps, s.weight_decay, s.amsgrad, s.decoupled, step);
    default: throw std::invalid_argument("coefficients_at: not an optimizer rule");
  }
}

namespace {

struct WorkItem {
  std::size_t tensor, begin, end;
};

std::vector<WorkItem> cut_into_blocks(const TensorBuffers* tensors, std::size_t count) {
  std::vector<WorkItem> items;
  for (std::size_t t = 0; t < count; ++t)
    for (std::size_t b = 0; b < tensors[t].n; b += kBlockElements)
      items.push_back({t, b, std::min(tensors[t].n, b + kBlockElements)});
  return items;
}

std::size_t total_elements(const TensorBuffers* tensors, std::size_t count) {
  std::size_t total = 0;
  for (std::size_t t = 0; t < count; ++t) total += tensors[t].n;
  return total;
}

}  // namespace

void run_step(Rule rule, DType dtype, const TensorBuffers* tensors, std::size_t count,
              const StepCoefficients& c) {
  const OptimKernels& table = active_optim_kernels();
  const SpanKernel kernel =
      (dtype == DType::f32 ? table.f32 : table.f64)[static_cast<int>(rule)];
  const std::size_t total = total_elements(tensors, count);
  if (total < kParallelMinElements || num_threads() == 1) {
    // Same blocks as the threaded path, so the result does not depend on it.
    for (std::size_t t = 0; t < count; ++t)
      for (std::size_t b = 0; b < tensors[t].n; b += kBlockElements)
        kernel(tensors[t], b, std::min(tensors[t].n, b + kBlockElements), c);
    return;
  }
  const std::vector<WorkItem> items = cut_into_blocks(tensors, count);
  const int threads = threads_for(total, items.size());
  const auto n_items = static_cast<std::int64_t>(items.size());
  parallel_for(n_items, threads, [&](std::int64_t i) {
    const WorkItem& w = items[static_cast<std::size_t>(i)];
    kernel(tensors[w.tensor], w.begin, w.end, c);
  });
}

bool all_finite(DType dtype, const TensorBuffers* tensors, std::size_t count, int slot) {
  const OptimKernels& table = active_optim_kernels();
  const AllFiniteKernel kernel = dtype == DType::f32 ? table.all_finite_f32 : table.all_finite_f64;
  const std::size_t elem = dtype == DType::f32 ? sizeof(float) : sizeof(double);
  const std::size_t total = total_elements(tensors, count);
  if (total < kParallelMinElements || num_threads() == 1) {
    for (std::size_t t = 0; t < count; ++t)
      if (!kernel(tensors[t].slot[slot], tensors[t].n)) return false;
    return true;
  }
  const std::vector<WorkItem> items = cut_into_blocks(tensors, count);
  const int threads = threads_for(total, items.size());
  const auto n_items = static_cast<std::int64_t>(items.size());
  int finite = 1;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(&& : finite)
  for (std::int64_t i = 0; i < n_items; ++i) {
    const WorkItem& w = items[static_cast<std::size_t>(i)];
    const char* base = static_cast<const char*>(tensors[w.tensor].slot[slot]);
    finite = finite && kernel(base + w.begin * elem, w.end - w.begin);
  }
  return finite != 0;
}

}  // namespace fastopt
