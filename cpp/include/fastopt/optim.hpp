// Optimizer kernels: the contract between the per-ISA kernel files, the
// threaded driver (optim_step.cpp) and the bindings. Pure C++, no pybind11.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "fastopt/rule_list.hpp"

namespace fastopt {

// Element types. The optimizer's arithmetic ("opmath") is float32 for f32, f16
// and bf16 buffers and float64 for f64 buffers; the loss kernels take f32/f64.
enum class DType : int { f32, f64, f16, bf16, count };
const char* dtype_name(DType dtype);
std::size_t dtype_size(DType dtype);

// The update rules of docs/design.md ("Optimizers — update rules"): one file
// each, cpp/optim/rules/<name>.hpp, named by cpp/optim/rules/rules.list, from
// which CMake generates FASTOPT_RULES (fastopt/rule_list.hpp). stream_probe is
// not an optimizer: it moves exactly the bytes of a step (reads every slot,
// writes every slot but the gradient) with trivial arithmetic, to measure the
// memory roofline.
#define FASTOPT_RULE_ENUM(name) name,
enum class Rule : int { FASTOPT_RULES(FASTOPT_RULE_ENUM) stream_probe, count };
#undef FASTOPT_RULE_ENUM

// Buffers of one tensor: the parameter, the gradient (only read), the rule's
// elementwise state buffers in its registry order (state i in slot
// kFirstState + i), and an optional low-precision copy of the parameter written
// after the update (master-weight mode). Unused optional slots are null. The
// parameter, gradient and copy have length n; a state buffer has
// state_length(its shape) elements. A rule's per-tensor state
// (StateShape::tensor: one number per tensor, such as NAdam's running product
// of momentum factors) is in `scalar`, each a float32 or float64 number (torch
// keeps a 0-d tensor).
constexpr int kParam = 0;
constexpr int kGrad = 1;
constexpr int kFirstState = 2;
constexpr int kStateEnd = 5;  // states are slots [kFirstState, kStateEnd)
constexpr int kParamCopy = 5;
constexpr int kMaxSlots = 6;
constexpr int kMaxScalars = 2;

// How a tensor's buffers are stored. The supported combinations
// (storage_problem() says why any other is refused):
//   param f64:       grad f64, state f64
//   param f32:       grad f32, f16 or bf16; state f32; copy f16 or bf16 (optional)
//   param f16/bf16:  grad the param's dtype or f32; state f32 or the param's dtype
struct Storage {
  DType param = DType::f32;
  DType grad = DType::f32;
  DType state = DType::f32;
  DType copy = DType::f32;  // of slot kParamCopy, when set
  // Every buffer in the opmath dtype: the rule's kernel runs on memory directly.
  bool direct(bool has_copy) const {
    return !has_copy && grad == param && state == param && (param == DType::f32 || param == DType::f64);
  }
};
// Why a storage is refused: the slot at fault (kParam, kGrad, kFirstState for
// the state, kParamCopy) and the rule it breaks; slot -1 when supported.
struct StorageProblem {
  int slot = -1;
  std::string reason;
};
StorageProblem storage_problem(const Storage& s, bool has_copy);

struct TensorBuffers {
  void* slot[kMaxSlots] = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
  void* scalar[kMaxScalars] = {nullptr, nullptr};
  DType scalar_dtype[kMaxScalars] = {DType::f32, DType::f32};  // f32 or f64
  std::size_t n = 0;
  Storage storage;
  // A parameter of two or more dimensions (..., rows, cols) is also a stack of
  // `slices` matrices (factored state): n = slices·rows·cols. slices == 0 for
  // fewer dimensions.
  std::size_t slices = 0, rows = 0, cols = 0;
  std::uint32_t group = 0;   // index of this tensor's StepCoefficients in a step
  std::uint64_t stream = 0;  // stochastic rounding: the tensor's number in the hash
  double* scratch = nullptr;  // set by the driver for multi-pass rules (RuleSpec::passes)
};
// rows and cols of a parameter with these dimensions (outermost first).
void set_matrix_view(TensorBuffers& t, const std::size_t* dims, std::size_t ndim);

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
  // (low_precision.hpp). rounding_step is the step number (set by
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

// Applies a rule to elements [begin, end) of one tensor, single-threaded.
using SpanKernel = void (*)(const TensorBuffers& t, std::size_t begin, std::size_t end,
                            const StepCoefficients& c);
// True when every element of x[0, n) is finite.
using AllFiniteKernel = bool (*)(const void* x, std::size_t n);
// Sum of x[i]² over [0, n) in double, in an order fixed for every ISA (eight
// running sums, element i into sum i mod 8, combined in order).
using SumSquaresKernel = double (*)(const void* x, std::size_t n);

// L-BFGS's two-loop recursion, one fused pass per correction pair
// (lbfgs_direction below). x = -g, and Σ z[i]·x[i]; or x = (x + a·y)·h, and
// Σ z[i]·x[i] (z null: 0), the sums in double in the order of sum_squares (eight
// running sums): the same for every ISA.
using NegCopyDotKernel = double (*)(void* x, const void* g, const void* z, std::size_t n);
using AxpyScaleDotKernel = double (*)(void* x, double a, const void* y, double h, const void* z, std::size_t n);

// Storages that are not direct ("mixed": a float16/bfloat16 buffer, or the
// parameter copy) have kernels of their own: the rule's loop with widening
// loads and rounding stores (kernels/optim_rules.hpp). They are numbered:
//   0..15   float16/bfloat16 parameters: 8·(param bf16) + 4·(grad f32) + 2·(state f32) + stochastic
//   16..23  float32 parameters and state: 16 + 3·grad + copy - 1, grad 0 f32 / 1 f16 / 2 bf16,
//           copy 0 none / 1 f16 / 2 bf16 (grad f32 without copy is direct)
// -1: direct, or not a supported storage (storage_problem says why).
constexpr int kMixedLayouts = 24;
constexpr int mixed_layout(const Storage& s, bool has_copy, bool stochastic) {
  auto low_code = [](DType d) { return d == DType::f16 ? 1 : d == DType::bf16 ? 2 : d == DType::f32 ? 0 : -1; };
  if (s.param == DType::f16 || s.param == DType::bf16) {
    if (has_copy || (s.grad != s.param && s.grad != DType::f32) || (s.state != s.param && s.state != DType::f32))
      return -1;
    return 8 * (s.param == DType::bf16) + 4 * (s.grad == DType::f32) + 2 * (s.state == DType::f32) + (stochastic ? 1 : 0);
  }
  if (s.param != DType::f32 || s.state != DType::f32) return -1;
  const int grad = low_code(s.grad);
  const int copy = has_copy ? low_code(s.copy) : 0;
  if (grad < 0 || copy < 0 || (has_copy && copy == 0) || (grad == 0 && copy == 0)) return -1;
  return 16 + 3 * grad + copy - 1;
}

// One table per compiled ISA (kernels/optim.cpp and kernels/mixed_precision.cpp,
// built once per ISA), indexed by rule.
struct OptimKernels {
  SpanKernel span[2][static_cast<int>(Rule::count)];              // direct: [DType f32/f64][Rule]
  SpanKernel mixed[kMixedLayouts][static_cast<int>(Rule::count)];  // [mixed_layout][Rule]
  AllFiniteKernel all_finite[static_cast<int>(DType::count)];     // [DType]
  SumSquaresKernel sum_squares[static_cast<int>(DType::count)];   // [DType]
  NegCopyDotKernel neg_copy_dot[2];                                // [DType f32/f64]
  AxpyScaleDotKernel axpy_scale_dot[2];                            // [DType f32/f64]
};
void fill_mixed_precision_kernels_baseline(OptimKernels& k);
void fill_mixed_precision_kernels_avx2(OptimKernels& k);
void fill_mixed_precision_kernels_avx512(OptimKernels& k);
const OptimKernels& optim_kernels_baseline();
const OptimKernels& optim_kernels_avx2();
const OptimKernels& optim_kernels_avx512();

// ------------------------------------------------------------- the registry
// Everything about a rule but its per-element loop: its name, hyperparameters
// (defaults, valid ranges), state buffers and coefficient builder. The
// bindings, the Python API and the training loop all read it from here.

// What values a hyperparameter takes.
enum class Range : int {
  nonnegative,  // finite, >= 0
  positive,     // finite, > 0
  unit_open,    // [0, 1)
  unit_closed,  // [0, 1]
  flag,         // 0 or 1 (a bool on the Python side)
  nonpositive,  // finite, <= 0
  optional_nonnegative,  // finite, >= 0, or None (NaN here): the rule's own default
};

struct HyperSpec {
  const char* name;
  double default_value;
  Range range;
  bool per_step;  // false: used only when the state is created (initial_accumulator_value)
};

// The shape of a state buffer, relative to its parameter.
enum class StateShape : int {
  elementwise,  // one value per element: the parameter's shape
  tensor,       // one number per tensor (torch: a 0-d tensor), float32 or float64
  // Factored (Adafactor's second moment): a parameter of two or more dimensions
  // (..., m, n) keeps a row vector (..., m, 1) and a column vector (..., 1, n);
  // one of fewer dimensions keeps an elementwise buffer instead.
  row,
  col,
  unfactored,  // the parameter's shape, kept only by parameters of fewer than 2 dimensions
};
const char* state_shape_name(StateShape shape);
// Whether a parameter of `ndim` dimensions keeps a state of this shape.
bool keeps_state(StateShape shape, std::size_t ndim);
// The dimensions of such a state buffer (for StateShape::tensor: none, one number).
std::vector<std::size_t> state_dims(StateShape shape, const std::size_t* dims, std::size_t ndim);
bool keeps_state(StateShape shape, const TensorBuffers& t);
// Its number of elements for a tensor's buffers (0 when the tensor keeps none).
std::size_t state_length(StateShape shape, const TensorBuffers& t);

struct StateSpec {
  const char* name;         // torch.optim's state key: "exp_avg"
  const char* arg;          // the functional API's argument: "m"
  const char* needed_when;  // nullptr: always; else the hyperparameter that must be nonzero
  const char* initial;      // nullptr: starts at `start`; else the hyperparameter it starts at
  StateShape shape = StateShape::elementwise;
  double start = 0.0;
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

  int hyper_index(const char* hyper) const;  // -1 if absent
  double value(const double* values, const char* hyper) const;
  // Whether state i is used with these hyperparameter values.
  bool needs_state(std::size_t i, const double* values) const;
  // Where state i lives: slot kFirstState + i (elementwise states, which come
  // first), or scalar i - (number of elementwise states).
  bool is_scalar(std::size_t i) const { return states[i].shape == StateShape::tensor; }
  bool is_multi_pass() const { return passes.count > 0; }
  int scalar_index(std::size_t i) const;
};

// The optimizer rules, in Rule order (stream_probe is not one).
const std::vector<RuleSpec>& rule_specs();
const RuleSpec& rule_spec(Rule rule);
const RuleSpec* find_rule(const std::string& name);  // nullptr if unknown

// std::invalid_argument naming the first value outside its Range, or any value
// the rule refuses; then the step's scalars.
StepCoefficients checked_coefficients(const RuleSpec& spec, const double* values, std::int64_t step);

// A rule and its hyperparameter values, for loops that step many times in
// native code (train.hpp): coefficients_at() rebuilds the per-step scalars for
// any lr and step exactly as a single step does.
struct RuleSettings {
  const RuleSpec* spec = nullptr;
  double values[kMaxHypers] = {};
};
StepCoefficients coefficients_at(const RuleSettings& s, double lr, std::int64_t step);

// Runs one step of `rule` over all tensors with the active ISA's kernels;
// tensor t uses coefficients[t.group]. Tensors are cut into fixed blocks of
// kBlockElements, so every element is computed by the same instructions
// whatever the thread count: results are bitwise identical for any number of
// threads. Releases nothing: callers release the GIL.
constexpr std::size_t kBlockElements = 8192;
void run_step(Rule rule, const TensorBuffers* tensors, std::size_t count, const StepCoefficients* coefficients);

// The L-BFGS search direction d = -H·g by the two-loop recursion (Nocedal &
// Wright, Alg. 7.4), as torch.optim.LBFGS computes it: m correction pairs
// (s_i, y_i) oldest first with rho_i = 1/(y_i·s_i), the initial scaling h
// (H_diag):
//   q = -g;  for i = m-1..0: al_i = rho_i·(s_i·q); q -= al_i·y_i
//   r = h·q; for i = 0..m-1: be_i = rho_i·(y_i·r); r += (al_i - be_i)·s_i;  d = r
// Every vector has n elements of `dtype` (f32 or f64); d may not overlap the
// others. One fused pass per pair and loop (the update of one pair with the
// dot product of the next), threaded over fixed blocks whose partial sums are
// added in block order: bitwise the same for any thread count and ISA. al (m
// values) is written too.
void lbfgs_direction(DType dtype, std::size_t n, const void* g, const void* const* s, const void* const* y,
                     const double* rho, std::size_t m, double h, void* d, double* al);

// True when slot `slot` (kGrad, or a slot stored like the parameter) of every
// tensor holds only finite values.
bool all_finite(const TensorBuffers* tensors, std::size_t count, int slot);

// The sum of squares of every gradient element (a global gradient norm is its
// square root), in double; bitwise the same for any thread count and ISA
// (fixed blocks, partial sums combined in block order). Inf or NaN if any
// gradient element is.
double gradient_sum_squares(const TensorBuffers* tensors, std::size_t count);

}  // namespace fastopt
