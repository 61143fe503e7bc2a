// The threaded multi-tensor driver shared by every optimizer. ISA-independent:
// the per-element work is in optim/kernels/full_precision.cpp, reached through the active
// kernel table; the rules' scalars come from the registry (optim/registry.cpp).
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "optim/step.hpp"
#include "optim/kernels.hpp"
#include "optim/registry.hpp"
#include "runtime/runtime.hpp"

namespace fastopt {

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

// A multi-pass rule (RuleSpec::passes): every pass over all tensors' work
// items, each tensor with its own zeroed scratch. Items write only their own
// scratch slots and elements, so any thread may run any item.
void run_passes(const RuleSpec& spec, const std::vector<SpanKernel>& kernel, const TensorBuffers* tensors,
                std::size_t count, const StepCoefficients* coefficients) {
  std::vector<TensorBuffers> own(tensors, tensors + count);
  std::vector<std::size_t> offset(count + 1, 0);
  std::uint32_t groups = 0;
  for (std::size_t t = 0; t < count; ++t) {
    offset[t + 1] = offset[t] + (own[t].n > 0 ? spec.passes.scratch(own[t]) : 0);
    groups = std::max(groups, own[t].group + 1);
  }
  std::vector<double> scratch(offset[count], 0.0);
  for (std::size_t t = 0; t < count; ++t) own[t].scratch = scratch.data() + offset[t];
  std::vector<StepCoefficients> coef(coefficients, coefficients + groups);
  const std::size_t total = total_elements(tensors, count);
  std::vector<WorkItem> items;
  std::vector<std::pair<std::size_t, std::size_t>> ranges;
  for (int pass = 0; pass < spec.passes.count; ++pass) {
    for (StepCoefficients& c : coef) c.pass = pass;
    items.clear();
    for (std::size_t t = 0; t < count; ++t) {
      if (own[t].n == 0) continue;  // nothing to update, no state to advance
      ranges.clear();
      spec.passes.items(own[t], pass, ranges);
      for (const auto& r : ranges) items.push_back({t, r.first, r.second});
    }
    const auto n_items = static_cast<std::int64_t>(items.size());
    auto one = [&](std::int64_t i) {
      const WorkItem& w = items[static_cast<std::size_t>(i)];
      kernel[w.tensor](own[w.tensor], w.begin, w.end, coef[own[w.tensor].group]);
    };
    if (total < kParallelMinElements || num_threads() == 1 || n_items < 2) {
      for (std::int64_t i = 0; i < n_items; ++i) one(i);
    } else {
      parallel_for(n_items, threads_for(total, items.size()), one);
    }
  }
}

}  // namespace

void run_step(Rule rule, const TensorBuffers* tensors, std::size_t count, const StepCoefficients* coefficients) {
  // Each tensor's kernel: the rule's loop for its storage layout.
  const OptimKernels& kernels = active_optim_kernels();
  std::vector<SpanKernel> kernel(count);
  for (std::size_t t = 0; t < count; ++t) {
    const TensorBuffers& x = tensors[t];
    const bool has_copy = x.slot[kParamCopy] != nullptr;
    if (x.storage.direct(has_copy)) {
      kernel[t] = kernels.span[static_cast<int>(x.storage.param)][static_cast<int>(rule)];
    } else {
      const int layout = mixed_layout(x.storage, has_copy, coefficients[x.group].stochastic_rounding);
      if (layout < 0) throw std::invalid_argument("run_step: " + storage_problem(x.storage, has_copy).reason);
      kernel[t] = kernels.mixed[layout][static_cast<int>(rule)];
    }
  }
  const RuleSpec* spec = rule == Rule::stream_probe ? nullptr : &rule_spec(rule);
  if (spec != nullptr && spec->is_multi_pass()) {
    run_passes(*spec, kernel, tensors, count, coefficients);
    return;
  }
  // A rule with per-tensor state gives each tensor its own coefficients, made
  // (and its scalars advanced) here, before any update; the scalars are written
  // once every tensor's were accepted.
  std::vector<const StepCoefficients*> coef(count);
  std::vector<StepCoefficients> own;
  const auto per_tensor = spec == nullptr ? nullptr : spec->per_tensor;
  if (per_tensor != nullptr) {
    for (std::size_t t = 0; t < count; ++t)
      for (std::size_t i = 0; i < spec->states.size(); ++i)
        if (spec->is_scalar(i) && tensors[t].scalar[spec->scalar_index(i)] == nullptr)
          throw std::invalid_argument(std::string("run_step: a tensor has no '") + spec->states[i].name + "' state");
    own.reserve(count);
    std::vector<TensorScalars> scalars;
    scalars.reserve(count);
    for (std::size_t t = 0; t < count; ++t) {
      own.push_back(coefficients[tensors[t].group]);
      scalars.emplace_back(tensors[t]);
      per_tensor(own.back(), scalars.back());
    }
    for (std::size_t t = 0; t < count; ++t) scalars[t].store(tensors[t]);
  }
  for (std::size_t t = 0; t < count; ++t) coef[t] = own.empty() ? &coefficients[tensors[t].group] : &own[t];
  const std::size_t total = total_elements(tensors, count);
  if (total < kParallelMinElements || num_threads() == 1) {
    // Same blocks as the threaded path, so the result does not depend on it.
    for (std::size_t t = 0; t < count; ++t)
      for (std::size_t b = 0; b < tensors[t].n; b += kBlockElements)
        kernel[t](tensors[t], b, std::min(tensors[t].n, b + kBlockElements), *coef[t]);
    return;
  }
  const std::vector<WorkItem> items = cut_into_blocks(tensors, count);
  const int threads = threads_for(total, items.size());
  const auto n_items = static_cast<std::int64_t>(items.size());
  parallel_for(n_items, threads, [&](std::int64_t i) {
    const WorkItem& w = items[static_cast<std::size_t>(i)];
    kernel[w.tensor](tensors[w.tensor], w.begin, w.end, *coef[w.tensor]);
  });
}

bool all_finite(const TensorBuffers* tensors, std::size_t count, int slot) {
  const OptimKernels& kernels = active_optim_kernels();
  auto dtype_of = [slot](const TensorBuffers& t) { return slot == kGrad ? t.storage.grad : t.storage.param; };
  auto finite = [&](const TensorBuffers& t, std::size_t begin, std::size_t end) {
    const DType dtype = dtype_of(t);
    const char* base = static_cast<const char*>(t.slot[slot]);
    return kernels.all_finite[static_cast<int>(dtype)](base + begin * dtype_size(dtype), end - begin);
  };
  const std::size_t total = total_elements(tensors, count);
  if (total < kParallelMinElements || num_threads() == 1) {
    for (std::size_t t = 0; t < count; ++t)
      if (!finite(tensors[t], 0, tensors[t].n)) return false;
    return true;
  }
  const std::vector<WorkItem> items = cut_into_blocks(tensors, count);
  const int threads = threads_for(total, items.size());
  const auto n_items = static_cast<std::int64_t>(items.size());
  int all = 1;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(&& : all)
  for (std::int64_t i = 0; i < n_items; ++i) {
    const WorkItem& w = items[static_cast<std::size_t>(i)];
    all = all && finite(tensors[w.tensor], w.begin, w.end);
  }
  return all != 0;
}

double gradient_sum_squares(const TensorBuffers* tensors, std::size_t count) {
  const OptimKernels& kernels = active_optim_kernels();
  auto block_sum = [&](const TensorBuffers& t, std::size_t begin, std::size_t end) {
    const DType dtype = t.storage.grad;
    const char* base = static_cast<const char*>(t.slot[kGrad]);
    return kernels.sum_squares[static_cast<int>(dtype)](base + begin * dtype_size(dtype), end - begin);
  };
  // One partial per block, combined in block order: the same sum for any thread count.
  const std::vector<WorkItem> items = cut_into_blocks(tensors, count);
  std::vector<double> partial(items.size());
  const std::size_t total = total_elements(tensors, count);
  const auto n_items = static_cast<std::int64_t>(items.size());
  auto one = [&](std::int64_t i) {
    const WorkItem& w = items[static_cast<std::size_t>(i)];
    partial[static_cast<std::size_t>(i)] = block_sum(tensors[w.tensor], w.begin, w.end);
  };
  if (total < kParallelMinElements || num_threads() == 1) {
    for (std::int64_t i = 0; i < n_items; ++i) one(i);
  } else {
    parallel_for(n_items, threads_for(total, items.size()), one);
  }
  double sum = 0.0;
  for (double x : partial) sum += x;
  return sum;
}

}  // namespace fastopt
