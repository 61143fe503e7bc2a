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

// The rule's text in the Python API (RuleSpec::doc): its title, update rule and notes.
constexpr const char* kDoc = R"(AdamW (Loshchilov & Hutter 2019, Adam with decoupled weight decay)

Update rule (``step`` = t counts from 1)::

    p *= 1 - lr * weight_decay
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    v_hat = max_v = maximum(max_v, v)  if amsgrad,  else  v
    p -= lr / (1 - beta1**t) * m / (sqrt(v_hat) / sqrt(1 - beta2**t) + eps))";

inline RuleSpec spec() {
  RuleSpec r{Rule::adamw, "adamw", true,
             {{"lr", 1e-3, kNonneg, true, "learning rate"},
              {"beta1", 0.9, kUnit, true, "decay rate of the first moment"},
              {"beta2", 0.999, kUnit, true, "decay rate of the second moment"},
              {"eps", 1e-8, kPositive, true, "added to the denominator"},
              {"weight_decay", 1e-2, kNonneg, true, "decoupled weight decay"},
              {"amsgrad", 0.0, kFlag, true, "use the running maximum of ``v`` (kept in ``max_v``)"},
              {"maximize", 0.0, kFlag, true, "step on ``-g``, to maximize the objective"}},
             {{"exp_avg", "m", nullptr, nullptr},
              {"exp_avg_sq", "v", nullptr, nullptr},
              {"max_exp_avg_sq", "max_v", "amsgrad", nullptr}},
             coefficients};
  stored_in_8bit(r, {kSigned8, kUnsigned8, kUnsigned8});
  r.doc = kDoc;
  r.api = "torch.optim.AdamW(lr, betas=(beta1, beta2), eps, weight_decay, amsgrad, *, maximize, foreach=None, "
          "capturable=False, differentiable=False, fused=None)";
  return r;
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
