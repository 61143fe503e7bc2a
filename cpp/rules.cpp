// The registry of update rules (optim.hpp): each rule's name, hyperparameters
// with defaults and ranges, state buffers, and coefficient builder, defined
// once. The per-element loops are in kernels/optim.cpp; everything else
// (bindings, Python classes, the training loop) reads these entries.
//
// Adding a rule: an entry here, a span kernel and its table slot in
// kernels/optim.cpp, its slot names in optim.hpp, a reference function in
// python/fastopt/reference/optim.py, and the public function and class in
// python/fastopt/functional.py and optim.py.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>

#include "fastopt/optim.hpp"

namespace fastopt {
namespace {

[[noreturn]] void bad_value(const char* name, const char* requirement, double value) {
  std::ostringstream msg;
  msg << name << " must be " << requirement << ", got " << value;
  throw std::invalid_argument(msg.str());
}

// Every rule has torch's `maximize`: it then steps on -g.
double maximize_sign(const RuleSpec& r, const double* h) { return r.value(h, "maximize") != 0.0 ? -1.0 : 1.0; }

void require_step(std::int64_t step) {
  if (step < 1) throw std::invalid_argument("step must be >= 1, got " + std::to_string(step));
}

// g += wd·p; buf = μ·buf + (1 - dampening)·g; p -= lr·(g + μ·buf if nesterov else buf)
// (momentum 0: p -= lr·g). As torch, the first step applies no dampening (torch
// starts the buffer at g; ours starts at 0, so step 1 uses a factor of 1): with
// dampening, the step number is needed (step 0 here means "not given").
StepCoefficients sgd(const RuleSpec& r, const double* h, std::int64_t step) {
  StepCoefficients c;
  c.grad_sign = maximize_sign(r, h);
  c.lr = r.value(h, "lr");
  c.momentum = r.value(h, "momentum");
  c.weight_decay = r.value(h, "weight_decay");
  c.nesterov = r.value(h, "nesterov") != 0.0;
  const double dampening = r.value(h, "dampening");
  if (c.nesterov && c.momentum == 0.0)
    throw std::invalid_argument("nesterov=True requires momentum > 0, got momentum=0");
  if (c.nesterov && dampening != 0.0)
    throw std::invalid_argument("nesterov=True requires dampening = 0, got dampening=" + std::to_string(dampening));
  if (dampening != 0.0 && step < 1)
    throw std::invalid_argument("step is required (>= 1) when dampening is set: the first step is not dampened");
  c.dampening_factor = step == 1 ? 1.0 : 1.0 - dampening;
  return c;
}

// g += wd·p; sum += g²; p -= lr/(1 + (t-1)·lr_decay) · g/(sqrt(sum) + eps)
StepCoefficients adagrad(const RuleSpec& r, const double* h, std::int64_t step) {
  require_step(step);
  StepCoefficients c;
  c.grad_sign = maximize_sign(r, h);
  c.lr = r.value(h, "lr");
  c.weight_decay = r.value(h, "weight_decay");
  c.eps = r.value(h, "eps");
  c.adagrad_lr = c.lr / (1.0 + static_cast<double>(step - 1) * r.value(h, "lr_decay"));
  return c;
}

// torch.optim.RMSprop (eps outside the square root)
StepCoefficients rmsprop(const RuleSpec& r, const double* h, std::int64_t) {
  StepCoefficients c;
  c.grad_sign = maximize_sign(r, h);
  c.lr = r.value(h, "lr");
  c.alpha = r.value(h, "alpha");
  c.eps = r.value(h, "eps");
  c.weight_decay = r.value(h, "weight_decay");
  c.momentum = r.value(h, "momentum");
  c.centered = r.value(h, "centered") != 0.0;
  return c;
}

// torch.optim.Adam (coupled weight decay) and AdamW (decoupled: p *= 1 - lr·wd first)
StepCoefficients adam_like(const RuleSpec& r, const double* h, std::int64_t step, bool decoupled) {
  require_step(step);
  StepCoefficients c;
  c.grad_sign = maximize_sign(r, h);
  c.lr = r.value(h, "lr");
  c.beta1 = r.value(h, "beta1");
  c.beta2 = r.value(h, "beta2");
  c.eps = r.value(h, "eps");
  c.amsgrad = r.value(h, "amsgrad") != 0.0;
  const double t = static_cast<double>(step);
  c.step_size = c.lr / (1.0 - std::pow(c.beta1, t));
  c.bias_correction2_sqrt = std::sqrt(1.0 - std::pow(c.beta2, t));
  const double wd = r.value(h, "weight_decay");
  if (decoupled) {
    c.param_decay = 1.0 - c.lr * wd;
  } else {
    c.weight_decay = wd;
  }
  return c;
}
StepCoefficients adam(const RuleSpec& r, const double* h, std::int64_t step) {
  return adam_like(r, h, step, r.value(h, "decoupled_weight_decay") != 0.0);
}
StepCoefficients adamw(const RuleSpec& r, const double* h, std::int64_t step) { return adam_like(r, h, step, true); }

// Lion (Chen et al. 2023): p *= 1 - lr·wd; p -= lr·sign(β1·m + (1-β1)·g); m = β2·m + (1-β2)·g
StepCoefficients lion(const RuleSpec& r, const double* h, std::int64_t) {
  StepCoefficients c;
  c.grad_sign = maximize_sign(r, h);
  c.lr = r.value(h, "lr");
  c.beta1 = r.value(h, "beta1");
  c.beta2 = r.value(h, "beta2");
  c.param_decay = 1.0 - c.lr * r.value(h, "weight_decay");
  return c;
}

constexpr Range kNonneg = Range::nonnegative, kPositive = Range::positive, kUnit = Range::unit_open,
                kClosed = Range::unit_closed, kFlag = Range::flag;

const std::vector<RuleSpec>& registry() {
  static const std::vector<RuleSpec> rules = {
      {Rule::sgd, "sgd", false,
       {{"lr", 1e-3, kNonneg, true}, {"momentum", 0.0, kNonneg, true}, {"weight_decay", 0.0, kNonneg, true},
        {"nesterov", 0.0, kFlag, true}, {"dampening", 0.0, kClosed, true}, {"maximize", 0.0, kFlag, true}},
       {{"momentum_buffer", "buf", "momentum", nullptr}},
       sgd},
      {Rule::adagrad, "adagrad", true,
       {{"lr", 1e-2, kNonneg, true}, {"lr_decay", 0.0, kNonneg, true}, {"weight_decay", 0.0, kNonneg, true},
        {"initial_accumulator_value", 0.0, kNonneg, false}, {"eps", 1e-10, kPositive, true},
        {"maximize", 0.0, kFlag, true}},
       {{"sum", "sum_sq", nullptr, "initial_accumulator_value"}},
       adagrad},
      {Rule::rmsprop, "rmsprop", false,
       {{"lr", 1e-2, kNonneg, true}, {"alpha", 0.99, kClosed, true}, {"eps", 1e-8, kPositive, true},
        {"weight_decay", 0.0, kNonneg, true}, {"momentum", 0.0, kNonneg, true}, {"centered", 0.0, kFlag, true},
        {"maximize", 0.0, kFlag, true}},
       {{"square_avg", "square_avg", nullptr, nullptr},
        {"momentum_buffer", "momentum_buf", "momentum", nullptr},
        {"grad_avg", "grad_avg", "centered", nullptr}},
       rmsprop},
      {Rule::adam, "adam", true,
       {{"lr", 1e-3, kNonneg, true}, {"beta1", 0.9, kUnit, true}, {"beta2", 0.999, kUnit, true},
        {"eps", 1e-8, kPositive, true}, {"weight_decay", 0.0, kNonneg, true}, {"amsgrad", 0.0, kFlag, true},
        {"maximize", 0.0, kFlag, true}, {"decoupled_weight_decay", 0.0, kFlag, true}},  // torch's: True is AdamW
       {{"exp_avg", "m", nullptr, nullptr}, {"exp_avg_sq", "v", nullptr, nullptr},
        {"max_exp_avg_sq", "max_v", "amsgrad", nullptr}},
       adam},
      {Rule::adamw, "adamw", true,
       {{"lr", 1e-3, kNonneg, true}, {"beta1", 0.9, kUnit, true}, {"beta2", 0.999, kUnit, true},
        {"eps", 1e-8, kPositive, true}, {"weight_decay", 1e-2, kNonneg, true}, {"amsgrad", 0.0, kFlag, true},
        {"maximize", 0.0, kFlag, true}},
       {{"exp_avg", "m", nullptr, nullptr}, {"exp_avg_sq", "v", nullptr, nullptr},
        {"max_exp_avg_sq", "max_v", "amsgrad", nullptr}},
       adamw},
      // Defaults of DeepSpeed's CPU Lion and lion-pytorch.
      {Rule::lion, "lion", false,
       {{"lr", 1e-4, kNonneg, true}, {"beta1", 0.9, kUnit, true}, {"beta2", 0.99, kUnit, true},
        {"weight_decay", 0.0, kNonneg, true}, {"maximize", 0.0, kFlag, true}},
       {{"exp_avg", "m", nullptr, nullptr}},
       lion},
  };
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
