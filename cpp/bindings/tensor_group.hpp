// The arrays of a multi-tensor optimizer, checked once (register_optim.cpp
// binds it as _core.TensorGroup; register_train.cpp trains through it).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "optim/registry.hpp"
#include "optim/step.hpp"

namespace fastopt::bindings {

// One state buffer of every tensor: its slot (elementwise states) or scalar
// index (per-tensor states, -1 for the others), its name, and a sequence with
// one entry per parameter: an array, or None where the tensor's group does not
// keep this buffer (None for the whole sequence: no tensor keeps it).
struct StateArrays {
  int slot;
  std::string name;
  py::object arrays;
  int scalar = -1;
  bool absmax = false;  // the absmax of the 8-bit state in `slot` ("<state>_absmax")
};

// A fixed set of tensors and their optimizer state, checked once; a step over
// all of them is one call. Tensors belong to parameter groups (group i uses the
// i-th set of hyperparameters of a step); each may store its parameter, state
// and gradient in its own dtypes (optim.hpp, Storage) and carry a low-precision
// copy (master-weight mode). Gradients come per step or from a registered
// container (a list or dict the caller keeps filling), read again every step.
//
// Ownership: the group holds a reference to every parameter, state and copy
// array, and a step holds one to every gradient it reads while the GIL is
// released, so no array can be freed under a running kernel. Before each step
// every held array is checked to be unchanged (CheckedArray).
class TensorGroup {
 public:
  // `spec` is the rule whose state the group holds (null for the roofline probe).
  // `groups`: None (one group) or the group number of each parameter.
  // `copies`: None or, per parameter, a float16/bfloat16 array or None.
  TensorGroup(const RuleSpec* spec, const py::sequence& params, std::vector<StateArrays> states,
              const py::object& grads, const py::object& keys, const py::object& groups = py::none(),
              const py::object& copies = py::none())
      : spec_(spec), states_(std::move(states)) {
    const std::size_t n = params.size();
    if (n > std::numeric_limits<std::uint32_t>::max()) throw_value_error("params: too many arrays");
    if (!keys.is_none()) {
      for (py::handle k : keys) keys_.push_back(py::reinterpret_borrow<py::object>(k));
      if (keys_.size() != n) throw_value_error("keys must have one entry per parameter");
    }
    const py::tuple group_of = groups.is_none() ? py::tuple() : py::tuple(groups);
    if (!groups.is_none() && group_of.size() != n) throw_value_error("groups must have one entry per parameter");
    const py::tuple copy_of = copies.is_none() ? py::tuple() : py::tuple(copies);
    if (!copies.is_none() && copy_of.size() != n) throw_value_error("param_copies must have one entry per parameter");
    std::vector<py::tuple> state_of;
    for (const StateArrays& s : states_) {
      if (s.scalar >= kMaxScalars || (s.scalar < 0 && (s.slot < kFirstState || s.slot >= kStateEnd)))
        throw_value_error("at most 3 state buffers and 2 per-tensor states");
      state_of.push_back(s.arrays.is_none() ? py::tuple() : py::tuple(s.arrays));
      if (!s.arrays.is_none() && state_of.back().size() != n)
        throw_value_error(s.name + " must have one array per parameter");
    }
    tensors_.resize(n);
    std::vector<ByteRange> ranges;
    for (std::size_t i = 0; i < n; ++i) {
      TensorBuffers& t = tensors_[i];
      const ArgName p_name = name("params", i);
      py::array p = check_param(params[i], p_name, &t.storage.param, &ranges);
      t.slot[kParam] = p.mutable_data();
      t.n = static_cast<std::size_t>(p.size());
      const std::vector<std::size_t> dims = dims_of(p);
      set_matrix_view(t, dims.data(), dims.size());
      t.stream = i;
      if (!groups.is_none()) {
        const std::string group_name = "groups[" + std::to_string(i) + "]";
        const std::int64_t g = to_int(group_of[i], group_name.c_str());
        if (g < 0 || g > std::numeric_limits<std::int32_t>::max()) throw_value_error("groups: a group number is out of range");
        t.group = static_cast<std::uint32_t>(g);
        group_count_ = std::max<std::size_t>(group_count_, t.group + std::size_t(1));
      }
      param_index_.push_back(held_.size());
      held_.emplace_back(p, p_name, true);
      // The default the state check compares with when the tensor keeps no state.
      t.storage.state = t.storage.param == DType::f64 ? DType::f64 : DType::f32;
      TensorArrays named{&p, p_name};
      py::array first_state, copy;  // named points at these
      for (std::size_t k = 0; k < states_.size(); ++k) {
        const StateArrays& s = states_[k];
        if (s.arrays.is_none() || state_of[k][i].is_none()) continue;
        const ArgName s_name = name(s.name.c_str(), i);
        DType dtype;
        if (s.scalar >= 0) {
          py::array a = check_scalar_state(state_of[k][i], s_name, &t.scalar_dtype[s.scalar], &ranges);
          t.scalar[s.scalar] = a.mutable_data();
          held_.emplace_back(a, s_name, true);
          continue;
        }
        if (s.absmax) {
          py::array a = check_state(state_of[k][i], s_name, StateShape::block, p, p_name, &dtype, &ranges);
          t.absmax[s.slot - kFirstState] = static_cast<float*>(a.mutable_data());
          held_.emplace_back(a, s_name, true);
          continue;
        }
        const StateShape shape = spec_ == nullptr ? StateShape::elementwise
                                                  : spec_->states[static_cast<std::size_t>(s.slot - kFirstState)].shape;
        if (!keeps_state(shape, t))
          throw_value_error(s_name.str() + " must be None: a " + state_shape_name(shape) +
                            " state is kept by parameters of " +
                            (shape == StateShape::unfactored ? "fewer than 2" : "2 or more") + " dimensions, and " +
                            p_name.str() + " has shape " + shape_str(p));
        py::array a = check_state(state_of[k][i], s_name, shape, p, p_name, &dtype, &ranges);
        if (named.state != nullptr && dtype != t.storage.state)
          throw_type_error(s_name.str() + " has dtype " + dtype_name(dtype) + " but " + named.state_name.str() +
                           " has dtype " + dtype_name(t.storage.state) + ": all state buffers have one dtype");
        t.storage.state = dtype;
        t.slot[s.slot] = a.mutable_data();
        held_.emplace_back(a, s_name, true);
        if (named.state == nullptr) {
          first_state = a, named.state = &first_state, named.state_name = s_name;
          t.storage.grad = t.storage.param;  // gradients are checked per step
          require_storage(t.storage, named);
        }
      }
      if (!copies.is_none() && !copy_of[i].is_none()) {
        const ArgName c_name = name("param_copies", i);
        copy = check_like(copy_of[i], c_name, true, p, p_name, &t.storage.copy, &ranges);
        t.slot[kParamCopy] = copy.mutable_data();
        held_.emplace_back(copy, c_name, true);
        named.copy = &copy, named.copy_name = c_name;
      }
      // Gradients are checked per step; until then, check with one the storage allows.
      t.storage.grad = t.storage.param;
      require_storage(t.storage, named);
      require_8bit_pairs(t, i);
    }
    require_disjoint(ranges);
    writable_ = std::move(ranges);
    if (!grads.is_none()) {
      std::vector<py::array> refs;
      std::vector<TensorBuffers> tensors = tensors_;
      bind_grads(grads, tensors, &refs);  // checked now, so a mistake shows at construction
      registered_grads_ = grads;
    }
  }

  std::size_t size() const { return tensors_.size(); }
  const RuleSpec* spec() const { return spec_; }

  // Number of parameter groups (1 + the largest group number).
  std::size_t group_count() const { return group_count_; }

  // ValueError unless every tensor of group `group` holds each state buffer
  // its rule uses with these hyperparameter values (momentum_buffer when
  // momentum > 0, ...).
  void require_state_for(std::size_t group, const double* values) const {
    if (spec_ == nullptr) return;
    for (std::size_t i = 0; i < spec_->states.size(); ++i) {
      if (!spec_->needs_state(i, values)) continue;
      for (const TensorBuffers& t : tensors_) {
        const void* held = spec_->is_scalar(i) ? t.scalar[spec_->scalar_index(i)] : t.slot[kFirstState + i];
        if (t.group != group || held != nullptr || !keeps_state(spec_->states[i].shape, t)) continue;
        throw_value_error(std::string("parameter group ") + std::to_string(group) + " has no '" +
                          spec_->states[i].name + "' state buffer" +
                          (spec_->states[i].needed_when
                               ? std::string(", needed when ") + spec_->states[i].needed_when +
                                     " is set; create the optimizer (or add the group) with it set"
                               : std::string()));
      }
    }
  }
  const py::array& param(std::size_t i) const { return held_[param_index_[i]].array; }
  // The parameter and state slots of tensor i (the gradient slot is unset).
  const TensorBuffers& buffers(std::size_t i) const { return tensors_[i]; }
  // ValueError if `r` overlaps any array this group writes.
  void require_not_written(const ByteRange& r) const { require_outside(r, writable_); }

  // Claims the group for one step or training run; a second claim while one is
  // running (another thread, or a signal handler inside a run) is refused, since
  // two updates at once would interleave on the same memory.
  class Claim {
   public:
    explicit Claim(TensorGroup& g) : g_(g) {
      if (g_.busy_.exchange(true))
        throw std::runtime_error(
            "this optimizer is already running a step (from another thread, or a signal handler inside "
            "one); an optimizer updates its arrays in place and cannot run two steps at once");
    }
    ~Claim() { g_.busy_.store(false); }
    Claim(const Claim&) = delete;
    Claim& operator=(const Claim&) = delete;

   private:
    TensorGroup& g_;
  };

  // In a forked child no thread of the parent runs: a claim one held at the
  // fork is released (fastopt's at-fork handlers call this).
  void release_after_fork() { busy_.store(false); }

  using GradientPhase = fastopt::GradientPhase;  // the offload phase (optim/step.hpp)

  // Checks every gradient, then (unless skipping on non-finite) updates every
  // tensor; tensor t uses coefficients[t.group]. With skip_if_nonfinite or
  // clipping, one read pass over the gradients first (their norm: Inf or NaN
  // when any element is), then the update pass.
  // `counts` (optim/step.hpp): incremented by an applied step; their owner holds them.
  bool step(Rule rule, std::vector<StepCoefficients> coefficients, const py::object& grads, bool skip_if_nonfinite,
            GradientPhase* phase = nullptr, const std::vector<StepCount>& counts = {}) {
    if (coefficients.size() < group_count_) throw_value_error("one set of hyperparameters per group is needed");
    Claim claim(*this);
    require_unchanged();
    std::vector<py::array> grad_refs;  // owned until the kernel is done
    std::vector<TensorBuffers> tensors = with_grads(grads, &grad_refs);
    return run(rule, std::move(coefficients), tensors, skip_if_nonfinite, phase, counts);
  }

  // The roofline probe over the whole group (run_stream_probe): the bytes of one step of it.
  void stream_probe(const py::object& grads) {
    Claim claim(*this);
    require_unchanged();
    std::vector<py::array> grad_refs;
    std::vector<TensorBuffers> tensors = with_grads(grads, &grad_refs);
    py::gil_scoped_release release;
    run_stream_probe(tensors.data(), tensors.size());
  }

  // A step on gradients the caller bound (fastopt.torch reads torch tensors):
  // `tensors` is a copy of every buffers(i) with its gradient slot and dtype set
  // through bind_grad, and t.group the index of its coefficients. The caller
  // holds a reference to every gradient until this returns.
  bool step_bound(Rule rule, std::vector<StepCoefficients> coefficients, std::vector<TensorBuffers>& tensors,
                  bool skip_if_nonfinite, GradientPhase* phase, const std::vector<StepCount>& counts) {
    if (tensors.size() != tensors_.size()) throw_value_error("one gradient per parameter is needed");
    for (const TensorBuffers& t : tensors)
      if (t.group >= coefficients.size()) throw_value_error("a tensor has no set of hyperparameters");
    Claim claim(*this);
    require_unchanged();
    return run(rule, std::move(coefficients), tensors, skip_if_nonfinite, phase, counts);
  }

  // Checks a gradient of tensor t, `numel` elements of `dtype` at `data`
  // (the storage allows the dtype, the count is the parameter's, the memory
  // overlaps nothing the step writes) and sets it in `t`, a copy of buffers(i).
  // `name()` names the gradient in errors.
  template <class Name>
  void bind_grad(TensorBuffers& t, DType dtype, const void* data, std::size_t numel,
                 const Name& name) const {
    t.storage.grad = dtype;
    const StorageProblem problem = storage_problem(t.storage, t.slot[kParamCopy] != nullptr);
    if (problem.slot >= 0)
      throw_type_error(name() + " has dtype " + dtype_name(dtype) + " but its parameter has dtype " +
                       dtype_name(t.storage.param) + ": " + problem.reason);
    if (numel != t.n)
      throw_value_error(name() + " has " + std::to_string(numel) + " elements but its parameter has " +
                        std::to_string(t.n));
    const char* begin = static_cast<const char*>(data);
    const ByteRange range{begin, begin + numel * dtype_size(dtype), ArgName("")};
    auto it = std::upper_bound(writable_.begin(), writable_.end(), range.begin,
                               [](const char* x, const ByteRange& b) { return x < b.end; });
    if (numel > 0 && it != writable_.end() && it->begin < range.end)
      throw_value_error(it->name.str() + " and " + name() +
                        " share memory; an array that is written must not be read through another argument");
    t.slot[kGrad] = const_cast<void*>(data);
  }

  // ValueError if any parameter or state array changed since it was checked.
  void require_unchanged() const {
    for (const CheckedArray& a : held_) a.require_unchanged();
  }

  static void check_params(const py::sequence& params, const py::object& keys) {
    TensorGroup(nullptr, params, {}, py::none(), keys);
  }

 private:
  // 8-bit state: a rule that stores it, each state's codes with their absmax,
  // and absmax only beside codes.
  void require_8bit_pairs(const TensorBuffers& t, std::size_t i) const {
    for (const StateArrays& s : states_) {
      if (s.scalar >= 0 || s.absmax) continue;
      const int k = s.slot - kFirstState;
      const bool codes = t.slot[s.slot] != nullptr && t.storage.quantized();
      if (codes && spec_ != nullptr && !spec_->stores_8bit())
        throw_type_error(name(s.name.c_str(), i).str() + " has dtype uint8 (8-bit state), but " + spec_->name +
                         " keeps no state that 8 bits can hold");
      if (codes && t.absmax[k] == nullptr)
        throw_value_error(name((s.name + "_absmax").c_str(), i).str() + " is required with 8-bit " +
                          name(s.name.c_str(), i).str() + " (uint8 codes)");
    }
    for (const StateArrays& s : states_)
      if (s.absmax && t.absmax[s.slot - kFirstState] != nullptr &&
          !(t.slot[s.slot] != nullptr && t.storage.quantized()))
        throw_value_error(name(s.name.c_str(), i).str() + " is given but its state is not 8-bit (uint8 codes)");
  }

  ArgName name(const char* base, std::size_t i) const {
    return ArgName{base, static_cast<std::ptrdiff_t>(i), keys_.empty() ? py::handle() : py::handle(keys_[i])};
  }

  void bind_grads(const py::object& grads, std::vector<TensorBuffers>& tensors, std::vector<py::array>* refs) const {
    const std::size_t n = tensors.size();
    const bool by_key = !keys_.empty();
    if (by_key && !py::isinstance<py::dict>(grads))
      throw_type_error("grads must be a dict with the same keys as params, got " + type_name(grads));
    if (!by_key && !(py::isinstance<py::list>(grads) || py::isinstance<py::tuple>(grads)))
      throw_type_error("grads must be a list of arrays, one per parameter, got " + type_name(grads));
    // The items as they are now: checking them may run Python code (an ABC's
    // __instancecheck__), which must not be able to shrink what is indexed.
    const py::tuple items = by_key ? py::tuple() : py::tuple(grads);
    const std::size_t count = by_key ? py::len(grads) : items.size();
    if (count != n)
      throw_value_error("grads has " + std::to_string(count) + " entries but there are " + std::to_string(n) +
                        " parameters");
    std::vector<ByteRange> ranges;
    refs->reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      py::object g;
      if (by_key) {
        PyObject* item = PyDict_GetItemWithError(grads.ptr(), keys_[i].ptr());
        if (item == nullptr) {
          if (PyErr_Occurred()) throw py::error_already_set();
          throw_value_error("grads is missing key " + py::repr(keys_[i]).cast<std::string>());
        }
        g = py::reinterpret_borrow<py::object>(item);
      } else {
        g = items[i];
      }
      const py::array& p = param(i);
      const ArgName g_name = name("grads", i);
      refs->push_back(check_like(g, g_name, false, p, name("params", i), &tensors[i].storage.grad, &ranges));
      if (tensors[i].storage.grad != tensors[i].storage.param) {
        TensorArrays named{&p, name("params", i)};
        named.grad = &refs->back(), named.grad_name = g_name;
        require_storage(tensors[i].storage, named);
      }
      tensors[i].slot[kGrad] = const_cast<void*>(refs->back().data());
    }
    for (const ByteRange& r : ranges) require_outside(r, writable_);
  }

  bool run(Rule rule, std::vector<StepCoefficients> coefficients, std::vector<TensorBuffers>& tensors,
           bool skip_if_nonfinite, GradientPhase* phase, const std::vector<StepCount>& counts) {
    py::gil_scoped_release release;
    return run_counted_step(rule, tensors.data(), tensors.size(), std::move(coefficients), counts, skip_if_nonfinite,
                            phase);
  }

  // A copy of every tensor's buffers with its gradient bound: `grads`, or the registered ones.
  std::vector<TensorBuffers> with_grads(const py::object& grads, std::vector<py::array>* refs) {
    std::vector<TensorBuffers> tensors = tensors_;
    if (!grads.is_none()) {
      bind_grads(grads, tensors, refs);
    } else if (!registered_grads_.is_none()) {
      bind_grads(registered_grads_, tensors, refs);
    } else {
      throw_value_error("grads is required: no gradient buffers were registered with grads=");
    }
    return tensors;
  }

  const RuleSpec* spec_;
  std::vector<StateArrays> states_;  // not resized after construction: ArgNames point into the names
  std::vector<TensorBuffers> tensors_;
  std::vector<CheckedArray> held_;        // every parameter and state array, referenced
  std::vector<std::size_t> param_index_;  // held_[param_index_[i]] is params[i]
  std::vector<py::object> keys_;
  std::vector<ByteRange> writable_;       // sorted, disjoint
  py::object registered_grads_ = py::none();
  std::atomic<bool> busy_{false};
  std::size_t group_count_ = 1;
};

// The gradient phase of a step from Python: grad_scale (finite, > 0) and
// max_norm (None or finite, > 0), each error naming its argument.
inline TensorGroup::GradientPhase checked_phase(py::handle grad_scale, py::handle max_norm) {
  TensorGroup::GradientPhase phase;
  phase.grad_scale = to_double(grad_scale, "grad_scale");
  if (!std::isfinite(phase.grad_scale) || phase.grad_scale <= 0.0)
    throw_value_error("grad_scale must be finite and > 0, got " + std::to_string(phase.grad_scale));
  if (!max_norm.is_none()) {
    phase.max_norm = to_double(max_norm, "max_norm");
    if (!std::isfinite(phase.max_norm) || phase.max_norm <= 0.0)
      throw_value_error("max_norm must be finite and > 0, got " + std::to_string(phase.max_norm));
  }
  return phase;
}

}  // namespace fastopt::bindings
