// Run-time configuration: ISA dispatch and OpenMP threads. Pure C++.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "fastopt/loss.hpp"
#include "fastopt/optim.hpp"

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
constexpr std::size_t kParallelMinElements = std::size_t(1) << 16;
int num_threads();
void set_num_threads(int n);  // n >= 1, else std::invalid_argument
int threads_for(std::size_t total_elements, std::size_t work_items);

std::string compiler_description();
int openmp_version();

}  // namespace fastopt
