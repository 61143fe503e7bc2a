// Run-time configuration: ISA dispatch and OpenMP threads. Pure C++.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "loss/loss.hpp"
#include "optim/kernels.hpp"

namespace fastopt {

// Kernel paths, slowest first. A path is "compiled" when this build contains
// it and "supported" when, in addition, this CPU and OS can execute it.
enum class Isa : int { baseline, avx2, avx512, count };

const char* isa_name(Isa isa);
std::vector<Isa> compiled_isas();
std::vector<Isa> supported_isas();
Isa best_supported_isa();
Isa active_isa();
// Throws std::invalid_argument for an unknown or unsupported name.
void set_active_isa(const std::string& name);
const OptimKernels& active_optim_kernels();
const LossKernels& active_loss_kernels();

// Threads used for inputs of at least kParallelMinElements elements in total;
// smaller steps run on the calling thread (no fork/join for 1k elements).
//
// The count follows OpenMP's own setting for the calling thread, so
// omp_set_num_threads and threadpoolctl.threadpool_limits restrain it;
// set_num_threads(n) applies n to every thread (each takes it up on its next
// call, as torch does). In a child process made by fork() the count is 1:
// OpenMP's thread pool does not survive fork, and a parallel region there
// would wait forever for threads that do not exist.
constexpr std::size_t kParallelMinElements = std::size_t(1) << 16;
// The loss kernels count multiply-adds: below this many (a minibatch of 200
// digits, 200·65·10) a team's fork and join, cheap on idle cores, waits a
// scheduler slice for a thread when the cores are busy, and the work is tens
// of microseconds: it runs on the calling thread.
constexpr std::size_t kParallelMinMultiplyAdds = std::size_t(1) << 20;
int num_threads();
constexpr int kMaxThreads = 1024;
void set_num_threads(int n);  // 1 <= n <= kMaxThreads, else std::invalid_argument
bool in_forked_child();
int threads_for(std::size_t total_elements, std::size_t work_items);
int threads_for_multiply_adds(std::size_t multiply_adds, std::size_t work_items);

// Runs body(i) for i in [0, n) on `threads` OpenMP threads, statically
// scheduled. An exception escaping an OpenMP region terminates the process, so
// the first one thrown (std::bad_alloc from scratch space, say) is caught in
// the region and rethrown on the calling thread once all iterations are done.
template <class Body>
void parallel_for(std::int64_t n, int threads, const Body& body) {
  if (threads <= 1 || n <= 1) {  // no parallel region: its fork/join costs microseconds, as much as a small step
    for (std::int64_t i = 0; i < n; ++i) body(i);
    return;
  }
  std::exception_ptr error;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    try {
      body(i);
    } catch (...) {
#pragma omp critical(fastopt_parallel_for_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

std::string compiler_description();
int openmp_version();

}  // namespace fastopt
