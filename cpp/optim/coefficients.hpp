// The update rules' enumeration and the scalars of one step, shared by the
// registry (which computes them), the driver and the per-ISA loops.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>

#include "optim/rule_list.hpp"

namespace fastopt {

// The update rules of docs/design.md ("Optimizers — update rules"): one file
// each, cpp/optim/rules/<name>.hpp, named by cpp/optim/rules/rules.list, from
// which CMake generates FASTOPT_RULES (optim/rule_list.hpp).
#define FASTOPT_RULE_ENUM(name) name,
enum class Rule : int { FASTOPT_RULES(FASTOPT_RULE_ENUM) count };
#undef FASTOPT_RULE_ENUM

// Scalars of one step, computed once per call in double; kernels cast them to
// the array dtype, so elementwise math runs in float32 for float32 arrays. The
// fields here are those every rule and the driver share; a rule's own scalars
// (beta1, its bias corrections, ...) are the `Scalars` struct of its file,
// kept in `own` by value (init_scalars in its coefficient builder, scalars()
// in its loop).
struct StepCoefficients {
  double grad_sign = 1.0;     // -1 with maximize=True: every rule ascends on -g, as torch
  double lr = 0.0;
  double weight_decay = 0.0;  // coupled L2: g += wd * p (0 for AdamW)
  double param_decay = 1.0;   // decoupled: p *= 1 - lr * wd before the step
  int pass = 0;               // multi-pass rules (RuleSpec::passes): the pass of this call
  // Rounding of float16/bfloat16 parameters: to nearest even, or stochastic
  // with random bits hash(seed, rounding_step, stream, element index)
  // (optim/kernels/low_precision.hpp). rounding_step is the step number (set by
  // checked_coefficients) unless the caller counts steps another way (torch's
  // SGD and Lion keep no step: fastopt.torch counts them): it must differ
  // between steps, or every step would round with the same bits.
  bool stochastic_rounding = false;
  std::uint64_t seed = 0;
  std::int64_t rounding_step = 0;

  static constexpr std::size_t kOwnBytes = 12 * sizeof(double);
  alignas(double) unsigned char own[kOwnBytes] = {};
  // The rule's scalars, value-initialized (its defaults); then scalars<S>().
  template <class S>
  S& init_scalars() {
    static_assert(std::is_trivially_copyable_v<S> && sizeof(S) <= kOwnBytes && alignof(S) <= alignof(double),
                  "a rule's Scalars must be a small struct of numbers");
    return *new (own) S{};
  }
  template <class S>
  S& scalars() { return *std::launder(reinterpret_cast<S*>(own)); }
  template <class S>
  const S& scalars() const { return *std::launder(reinterpret_cast<const S*>(own)); }
};

}  // namespace fastopt
