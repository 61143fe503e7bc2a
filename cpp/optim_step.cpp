// The threaded multi-tensor driver shared by every optimizer. ISA-independent:
// the per-element work is in kernels/optim.cpp, reached through the active
// kernel table; the rules' scalars come from the registry (rules.cpp).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "fastopt/optim.hpp"
#include "fastopt/runtime.hpp"

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

}  // namespace

void run_step(Rule rule, DType dtype, const TensorBuffers* tensors, std::size_t count,
              const StepCoefficients& c) {
  const SpanKernel kernel = active_optim_kernels().span[static_cast<int>(dtype)][static_cast<int>(rule)];
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
  const AllFiniteKernel kernel = active_optim_kernels().all_finite[static_cast<int>(dtype)];
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
