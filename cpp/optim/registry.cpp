// The registry of update rules (optim.hpp), made of each rule's entry (the
// registry half of cpp/optim/rules/<name>.hpp: name, hyperparameters with
// defaults and ranges, state buffers, coefficient builder), and the checks and
// lookups every rule shares. Everything else (bindings, Python classes, the
// training loop) reads these entries. Adding a rule: docs/adding-a-rule.md.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>

#include "optim/registry.hpp"
#include "optim/rule_files.hpp"

namespace fastopt {
namespace {

[[noreturn]] void bad_value(const char* name, const char* requirement, double value) {
  std::ostringstream msg;
  msg << name << " must be " << requirement << ", got " << value;
  throw std::invalid_argument(msg.str());
}

// The registry, in rules.list's order: each rule's entry is the
// registry half of cpp/optim/rules/<name>.hpp.
// What every entry must satisfy for the bindings and kernels to hold its
// state: checked once, when the registry is built.
const RuleSpec& well_formed(const RuleSpec& r) {
  std::size_t elementwise = 0, scalars = 0;  // states in slots, and per-tensor ones
  bool factored = false;
  for (const StateSpec& s : r.states) {
    if (s.shape != StateShape::tensor && scalars > 0)
      throw std::logic_error(std::string(r.name) + ": states kept in slots come before per-tensor ones");
    (s.shape == StateShape::tensor ? scalars : elementwise) += 1;
    factored = factored || s.shape == StateShape::row || s.shape == StateShape::col ||
               s.shape == StateShape::unfactored;
  }
  // Factored state has no elementwise update: its rule reduces over whole tensors.
  if (factored && !r.is_multi_pass())
    throw std::logic_error(std::string(r.name) + ": factored state needs a multi-pass rule");
  if (r.is_multi_pass() && (r.passes.scratch == nullptr || r.passes.items == nullptr || r.per_tensor != nullptr))
    throw std::logic_error(std::string(r.name) +
                           ": a multi-pass rule gives its scratch size and work items, and keeps no per-tensor state");
  if (r.hypers.size() > static_cast<std::size_t>(kMaxHypers) || std::strcmp(r.hypers.at(0).name, "lr") != 0 ||
      elementwise > static_cast<std::size_t>(kStateEnd - kFirstState) ||
      scalars > static_cast<std::size_t>(kMaxScalars) || (scalars > 0) != (r.per_tensor != nullptr))
    throw std::logic_error(std::string(r.name) + ": an entry the registry cannot hold (optim.hpp's limits)");
  return r;
}

const std::vector<RuleSpec>& registry() {
#define FASTOPT_RULE_SPEC(name) well_formed(rules::name::spec()),
  static const std::vector<RuleSpec> rules = {FASTOPT_RULES(FASTOPT_RULE_SPEC)};
#undef FASTOPT_RULE_SPEC
  return rules;
}

void check_range(const HyperSpec& h, double x) {
  switch (h.range) {
    case Range::nonnegative:
      if (!(x >= 0.0 && std::isfinite(x))) bad_value(h.name, "a finite number >= 0", x);
      break;
    case Range::positive:
      if (!(x > 0.0 && std::isfinite(x))) bad_value(h.name, "a finite number > 0", x);
      break;
    case Range::unit_open:
      if (!(x >= 0.0 && x < 1.0)) bad_value(h.name, "in [0, 1)", x);
      break;
    case Range::unit_closed:
      if (!(x >= 0.0 && x <= 1.0)) bad_value(h.name, "in [0, 1]", x);
      break;
    case Range::flag:
      if (!(x == 0.0 || x == 1.0)) bad_value(h.name, "a bool", x);
      break;
    case Range::nonpositive:
      if (!(x <= 0.0 && std::isfinite(x))) bad_value(h.name, "a finite number <= 0", x);
      break;
    case Range::optional_nonnegative:
      if (!(std::isnan(x) || (x >= 0.0 && std::isfinite(x)))) bad_value(h.name, "None or a finite number >= 0", x);
      break;
    case Range::optional_positive:
      if (!(std::isnan(x) || (x > 0.0 && std::isfinite(x)))) bad_value(h.name, "None or a finite number > 0", x);
      break;
  }
}

}  // namespace

int RuleSpec::hyper_index(const char* hyper) const {
  for (std::size_t i = 0; i < hypers.size(); ++i)
    if (std::strcmp(hypers[i].name, hyper) == 0) return static_cast<int>(i);
  return -1;
}

double RuleSpec::value(const double* values, const char* hyper) const {
  const int i = hyper_index(hyper);
  if (i < 0) throw std::logic_error(std::string("rule ") + name + " has no hyperparameter " + hyper);
  return values[i];
}

bool RuleSpec::needs_state(std::size_t i, const double* values) const {
  return states[i].needed_when == nullptr || value(values, states[i].needed_when) != 0.0;
}

bool RuleSpec::stores_8bit() const {
  if (is_multi_pass()) return false;
  bool any = false;
  for (const StateSpec& s : states) {
    if (s.shape == StateShape::tensor) continue;
    if (s.shape != StateShape::elementwise || s.quant == QuantMap::none) return false;
    any = true;
  }
  return any;
}

int RuleSpec::scalar_index(std::size_t i) const {
  int k = 0;
  for (std::size_t j = 0; j < i; ++j) k += is_scalar(j) ? 1 : 0;
  return k;
}

TensorScalars::TensorScalars(const TensorBuffers& t) {
  for (int k = 0; k < kMaxScalars; ++k) {
    if (t.scalar[k] == nullptr) continue;
    dtype[k] = t.scalar_dtype[k];
    value[k] = dtype[k] == DType::f64 ? *static_cast<const double*>(t.scalar[k]) : *static_cast<const float*>(t.scalar[k]);
  }
}

void TensorScalars::store(const TensorBuffers& t) const {
  for (int k = 0; k < kMaxScalars; ++k) {
    if (t.scalar[k] == nullptr) continue;
    if (dtype[k] == DType::f64) *static_cast<double*>(t.scalar[k]) = value[k];
    else *static_cast<float*>(t.scalar[k]) = static_cast<float>(value[k]);
  }
}

void TensorScalars::set(int k, double x) {
  value[k] = dtype[k] == DType::f64 ? x : static_cast<double>(static_cast<float>(x));
}

double TensorScalars::scale(int k, double factor) {
  if (dtype[k] == DType::f64) return value[k] *= factor;
  return value[k] = static_cast<double>(static_cast<float>(value[k]) * static_cast<float>(factor));
}

const std::vector<RuleSpec>& rule_specs() { return registry(); }

const RuleSpec& rule_spec(Rule rule) {
  for (const RuleSpec& r : registry())
    if (r.rule == rule) return r;
  throw std::logic_error("rule_spec: not an optimizer rule");
}

const RuleSpec* find_rule(const std::string& name) {
  for (const RuleSpec& r : registry())
    if (name == r.name) return &r;
  return nullptr;
}

StepCoefficients checked_coefficients(const RuleSpec& spec, const double* values, std::int64_t step) {
  for (std::size_t i = 0; i < spec.hypers.size(); ++i) check_range(spec.hypers[i], values[i]);
  StepCoefficients c = spec.coefficients(spec, values, step);
  c.rounding_step = step;
  return c;
}

StepCoefficients coefficients_at(const RuleSettings& s, double lr, std::int64_t step) {
  double values[kMaxHypers];
  std::copy(s.values, s.values + kMaxHypers, values);
  values[0] = lr;  // hypers[0] is "lr" in every rule
  return checked_coefficients(*s.spec, values, step);
}

}  // namespace fastopt
