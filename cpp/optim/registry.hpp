// The registry of update rules: everything about a rule but its per-element
// loop — its name, hyperparameters (defaults, valid ranges, texts), state
// buffers (names, shapes), coefficient builder and the Python API's texts. The
// bindings, the generated Python API and the training loop all read it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "optim/coefficients.hpp"
#include "optim/quantization.hpp"
#include "optim/storage.hpp"

namespace fastopt {

// What values a hyperparameter takes.
enum class Range : int {
  nonnegative,  // finite, >= 0
  positive,     // finite, > 0
  unit_open,    // [0, 1)
  unit_closed,  // [0, 1]
  flag,         // 0 or 1 (a bool on the Python side)
  nonpositive,  // finite, <= 0
  optional_nonnegative,  // finite, >= 0, or None (NaN here): the rule's own default
  optional_positive,     // finite, > 0, or None (NaN here)
};
constexpr bool is_optional(Range r) { return r == Range::optional_nonnegative || r == Range::optional_positive; }

struct HyperSpec {
  const char* name;
  double default_value;
  Range range;
  bool per_step;  // false: used only when the state is created (initial_accumulator_value)
  const char* doc = "";  // what it is, for the Python API's docstrings (the range is added to it)
};

struct StateSpec {
  const char* name;         // torch.optim's state key: "exp_avg"
  const char* arg;          // the functional API's argument: "m"
  const char* needed_when;  // nullptr: always; else the hyperparameter that must be nonzero
  const char* initial;      // nullptr: starts at `start`; else the hyperparameter it starts at
  StateShape shape = StateShape::elementwise;
  double start = 0.0;
  // How it is stored with state_dtype="int8" (optim/quantization.hpp): the
  // signed map for moments of either sign, the unsigned one for those >= 0;
  // none for state that 8 bits cannot hold (a rule with such elementwise state
  // keeps float state).
  QuantMap quant = QuantMap::none;
};

constexpr int kMaxHypers = 12;

// A tensor's per-tensor state as numbers: value k is the rule's k-th
// StateShape::tensor state. Arithmetic on it runs in its dtype, as torch's
// in-place ops on a 0-d tensor do. The driver reads every tensor's scalars,
// lets the rule advance them, and writes them back only when every tensor's
// were accepted: a refused step changes nothing.
struct TensorScalars {
  double value[kMaxScalars] = {0.0, 0.0};
  DType dtype[kMaxScalars] = {DType::f32, DType::f32};
  explicit TensorScalars(const TensorBuffers& t);
  void store(const TensorBuffers& t) const;
  double get(int k) const { return value[k]; }
  void set(int k, double x);  // rounded to the scalar's dtype
  // x *= factor in the scalar's dtype (float32: the factor rounded to float32
  // first, as torch multiplies a float32 tensor by a Python number); the new x.
  double scale(int k, double factor);
};

struct RuleSpec {
  Rule rule;
  const char* name;       // "adam"
  bool uses_step;         // its coefficients depend on the step number
  std::vector<HyperSpec> hypers;  // hypers[0] is always "lr"
  std::vector<StateSpec> states;  // state i lives in slot kFirstState + i
  // Checks the values (in `hypers` order; ranges are checked before) and
  // precomputes the scalars of step `step`. std::invalid_argument naming the
  // hyperparameter on a value the ranges allow but the rule does not.
  StepCoefficients (*coefficients)(const RuleSpec& spec, const double* values, std::int64_t step);
  // Rules with per-tensor state: before a tensor's update, advances its
  // scalars and completes its copy of the step's coefficients (the driver
  // calls it once per tensor and step, before any update); std::invalid_argument
  // on a state the rule cannot step from. nullptr for the other rules.
  void (*per_tensor)(StepCoefficients& c, TensorScalars& s) = nullptr;
  // Rules whose update needs whole-tensor reductions (Adafactor's norms and
  // factored means) run as `passes.count` passes over every tensor instead of
  // one. Pass k calls the rule's kernel with StepCoefficients::pass = k on each
  // work item `passes.items(t, k)` gives (a tensor's items may run on any
  // thread, in any order; an item [0, 0) is a per-tensor step between passes);
  // the kernel keeps its partial results in t.scratch (`passes.scratch(t)`
  // doubles per tensor, zeroed), one slot per item, and combines them in a
  // fixed order: the result is the same for any thread count.
  struct Passes {
    int count = 0;
    std::size_t (*scratch)(const TensorBuffers& t) = nullptr;
    void (*items)(const TensorBuffers& t, int pass, std::vector<std::pair<std::size_t, std::size_t>>& out) = nullptr;
  };
  Passes passes = {};
  // The Python API, generated from the registry (tools/generate_api.py):
  // `doc` is the rule's title line, a blank line, then its update rule and notes
  // (reStructuredText, naming state buffers by their functional arguments);
  // `api` is its class's constructor after `params`, in torch's argument order:
  //   "torch.optim.NAdam(lr, betas=(beta1, beta2), eps, ..., *, foreach=None, maximize)"
  // A hyperparameter takes its registry default; `name=(h1, h2)` is a pair of
  // them (torch's betas); `name=<literal>` is an argument of torch's only
  // accepted at that default (foreach, fused, ...). Without the `torch.optim.`
  // prefix the class is fastopt's own (Lion).
  const char* doc = "";
  const char* api = "";

  int hyper_index(const char* hyper) const;  // -1 if absent
  double value(const double* values, const char* hyper) const;
  // Whether state i is used with these hyperparameter values.
  bool needs_state(std::size_t i, const double* values) const;
  // Where state i lives: slot kFirstState + i (elementwise states, which come
  // first), or scalar i - (number of elementwise states).
  bool is_scalar(std::size_t i) const { return states[i].shape == StateShape::tensor; }
  bool is_multi_pass() const { return passes.count > 0; }
  // Whether its state can be stored in 8 bits: a single-pass rule whose
  // elementwise states all have a quantization map (and it has one at least).
  bool stores_8bit() const;
  int scalar_index(std::size_t i) const;
};

// The optimizer rules, in Rule order.
const std::vector<RuleSpec>& rule_specs();
const RuleSpec& rule_spec(Rule rule);
const RuleSpec* find_rule(const std::string& name);  // nullptr if unknown

// std::invalid_argument naming the first value outside its Range, or any value
// the rule refuses; then the step's scalars.
StepCoefficients checked_coefficients(const RuleSpec& spec, const double* values, std::int64_t step);

// A rule and its hyperparameter values, for loops that step many times in
// native code (loss/train_linear.hpp): coefficients_at() rebuilds the per-step scalars for
// any lr and step exactly as a single step does.
struct RuleSettings {
  const RuleSpec* spec = nullptr;
  double values[kMaxHypers] = {};
};
StepCoefficients coefficients_at(const RuleSettings& s, double lr, std::int64_t step);

}  // namespace fastopt
