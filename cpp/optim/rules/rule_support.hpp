// What a rule's file uses to declare itself (cpp/optim/rules/<name>.hpp):
// range shorthands and the coefficient helpers every rule shares. A rule file
// has two halves, chosen by FASTOPT_ISA: without it (optim/registry.cpp, compiled once)
// its registry entry — hyperparameters, state buffers, coefficient builder;
// with it (the kernel files, compiled once per ISA) its update loop over a
// storage layout L (optim/kernels/rule_loops.hpp provides Layout, ParamStore,
// slot_at). A rule's state buffer i lives in slot kFirstState + i.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "optim/registry.hpp"

namespace fastopt::rule_support {

constexpr Range kNonneg = Range::nonnegative, kPositive = Range::positive, kUnit = Range::unit_open,
                kClosed = Range::unit_closed, kFlag = Range::flag;

// Every rule has torch's `maximize`: it then steps on -g.
inline double maximize_sign(const RuleSpec& r, const double* h) {
  return r.value(h, "maximize") != 0.0 ? -1.0 : 1.0;
}

// state_dtype="int8": the quantization map of each elementwise state, in the
// rule's order (per-tensor states keep their dtype and are skipped).
constexpr QuantMap kSigned8 = QuantMap::signed_dynamic, kUnsigned8 = QuantMap::unsigned_dynamic;
inline void stored_in_8bit(RuleSpec& r, std::initializer_list<QuantMap> maps) {
  auto map = maps.begin();
  for (StateSpec& s : r.states)
    if (s.shape != StateShape::tensor && map != maps.end()) s.quant = *map++;
}

inline void require_step(std::int64_t step) {
  if (step < 1) throw std::invalid_argument("step must be >= 1, got " + std::to_string(step));
}

}  // namespace fastopt::rule_support
