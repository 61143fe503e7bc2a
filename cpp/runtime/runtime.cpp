// CPU feature detection -> kernel table, and the thread setting.
#include <omp.h>
#include <pthread.h>

#include <atomic>
#include <stdexcept>
#include <string>

#include "runtime/runtime.hpp"

namespace fastopt {
namespace {

bool isa_compiled(Isa isa) {
  switch (isa) {
    case Isa::baseline: return true;
#ifdef FASTOPT_HAVE_AVX2
    case Isa::avx2: return true;
#endif
#ifdef FASTOPT_HAVE_AVX512
    case Isa::avx512: return true;
#endif
    default: return false;
  }
}

// __builtin_cpu_supports also checks that the OS saves the wider registers
// (XGETBV), so a reported feature is one the process can use.
bool isa_supported_by_cpu(Isa isa) {
  switch (isa) {
    case Isa::baseline: return true;
#if defined(__x86_64__) || defined(_M_X64)
    case Isa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::avx512:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
#endif
    default: return false;
  }
}

struct KernelTables {
  const OptimKernels* optim;
  const LossKernels* loss;
};

KernelTables tables_for(Isa isa) {
  switch (isa) {
#ifdef FASTOPT_HAVE_AVX2
    case Isa::avx2: return {&optim_kernels_avx2(), &loss_kernels_avx2()};
#endif
#ifdef FASTOPT_HAVE_AVX512
    case Isa::avx512: return {&optim_kernels_avx512(), &loss_kernels_avx512()};
#endif
    default: return {&optim_kernels_baseline(), &loss_kernels_baseline()};
  }
}

std::atomic<int> g_active_isa{static_cast<int>(best_supported_isa())};
// set_num_threads' value and a generation count: a thread whose last seen
// generation is older applies the value to its own OpenMP setting first.
std::atomic<int> g_num_threads{omp_get_max_threads()};
std::atomic<unsigned> g_threads_generation{0};
thread_local unsigned t_threads_generation = 0;

std::atomic<bool> g_forked_child{false};
void mark_forked_child() { g_forked_child.store(true); }
// Registered once when the module loads; runs in the child after every fork().
[[maybe_unused]] const int g_atfork_registered = pthread_atfork(nullptr, nullptr, mark_forked_child);

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::baseline: return "baseline";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    default: return "unknown";
  }
}

std::vector<Isa> compiled_isas() {
  std::vector<Isa> out;
  for (int i = 0; i < static_cast<int>(Isa::count); ++i)
    if (isa_compiled(static_cast<Isa>(i))) out.push_back(static_cast<Isa>(i));
  return out;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa isa : compiled_isas())
    if (isa_supported_by_cpu(isa)) out.push_back(isa);
  return out;
}

Isa best_supported_isa() { return supported_isas().back(); }

Isa active_isa() { return static_cast<Isa>(g_active_isa.load(std::memory_order_relaxed)); }

void set_active_isa(const std::string& name) {
  for (Isa isa : compiled_isas()) {
    if (name != isa_name(isa)) continue;
    if (!isa_supported_by_cpu(isa))
      throw std::invalid_argument("isa '" + name + "' is compiled in but not supported by this CPU");
    g_active_isa.store(static_cast<int>(isa));
    return;
  }
  std::string known;
  for (Isa isa : compiled_isas()) known += std::string(known.empty() ? "" : ", ") + isa_name(isa);
  throw std::invalid_argument("isa '" + name + "' is not one of the compiled paths (" + known + ")");
}

const OptimKernels& active_optim_kernels() { return *tables_for(active_isa()).optim; }
const LossKernels& active_loss_kernels() { return *tables_for(active_isa()).loss; }

bool in_forked_child() { return g_forked_child.load(); }

int num_threads() {
  if (in_forked_child()) return 1;
  const unsigned generation = g_threads_generation.load();
  if (t_threads_generation != generation) {
    omp_set_num_threads(g_num_threads.load());
    t_threads_generation = generation;
  }
  return omp_get_max_threads();
}

void set_num_threads(int n) {
  if (n < 1 || n > kMaxThreads)
    throw std::invalid_argument("n must be in [1, " + std::to_string(kMaxThreads) + "], got " + std::to_string(n));
  g_num_threads.store(n);
  t_threads_generation = g_threads_generation.fetch_add(1) + 1;
  omp_set_num_threads(n);
}

int threads_for(std::size_t total_elements, std::size_t work_items) {
  if (total_elements < kParallelMinElements || work_items < 2) return 1;
  const std::size_t n = static_cast<std::size_t>(num_threads());
  return static_cast<int>(n < work_items ? n : work_items);
}

int threads_for_multiply_adds(std::size_t multiply_adds, std::size_t work_items) {
  if (multiply_adds < kParallelMinMultiplyAdds || work_items < 2) return 1;
  const std::size_t n = static_cast<std::size_t>(num_threads());
  return static_cast<int>(n < work_items ? n : work_items);
}

std::string compiler_description() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("gcc ") + __VERSION__;
#else
  return "unknown";
#endif
}

int openmp_version() { return _OPENMP; }

}  // namespace fastopt
