// AdamW, as torch.optim.AdamW: Adam (adam.hpp) with decoupled weight decay,
// p *= 1 - lr·wd before the step; weight_decay defaults to 1e-2. Same state.
#pragma once

#include "optim/rules/adam.hpp"

#ifndef FASTOPT_ISA  // ------------------------------------------------ the registry entry

namespace fastopt::rules::adamw {
using namespace rule_support;

inline StepCoefficients coefficients(const RuleSpec& r, const double* h, std::int64_t step) {
  return adam::adam_like(r, h, step, true);
}

inline RuleSpec spec() {
  return {Rule::adamw, "adamw", true,
          {{"lr", 1e-3, kNonneg, true}, {"beta1", 0.9, kUnit, true}, {"beta2", 0.999, kUnit, true},
           {"eps", 1e-8, kPositive, true}, {"weight_decay", 1e-2, kNonneg, true}, {"amsgrad", 0.0, kFlag, true},
           {"maximize", 0.0, kFlag, true}},
          {{"exp_avg", "m", nullptr, nullptr}, {"exp_avg_sq", "v", nullptr, nullptr},
           {"max_exp_avg_sq", "max_v", "amsgrad", nullptr}},
          coefficients};
}

}  // namespace fastopt::rules::adamw

#else  // ----------------------------------------------------- the update loop, per ISA

namespace fastopt {
namespace FASTOPT_ISA {
namespace {

template <class L>
void adamw_step(const TensorBuffers& t, size_t b, size_t e, const StepCoefficients& c) {
  adam_step<L>(t, b, e, c);
}

}  // namespace
}  // namespace FASTOPT_ISA
}  // namespace fastopt

#endif
