// The arrays of a multi-tensor optimizer, checked once (register_optim.cpp
// binds it as _core.TensorGroup; register_train.cpp trains through it).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "fastopt/optim.hpp"

namespace fastopt::bindings {

// One state buffer of every tensor: its slot, its name, and a sequence with
// one array per parameter (None: the optimizer does not keep this buffer).
struct StateArrays {
  int slot;
  std::string name;
  py::object arrays;
};

// A fixed set of tensors and their optimizer state, checked once; a step over
// all of them is one call. Gradients come per step or from a registered
// container (a list or dict the caller keeps filling), read again every step.
//
// Ownership: the group holds a reference to every parameter and state array,
// and a step holds one to every gradient it reads while the GIL is released,
// so no array can be freed under a running kernel. Before each step every held
// array is checked to be unchanged (CheckedArray).
class TensorGroup {
 public:
  // `spec` is the rule whose state the group holds (null for the roofline probe).
  TensorGroup(const RuleSpec* spec, const py::sequence& params, std::vector<StateArrays> states,
              const py::object& grads, const py::object& keys)
      : spec_(spec), states_(std::move(states)) {
    const std::size_t n = params.size();
    if (!keys.is_none()) {
      for (py::handle k : keys) keys_.push_back(py::reinterpret_borrow<py::object>(k));
      if (keys_.size() != n) throw_value_error("keys must have one entry per parameter");
    }
    for (const StateArrays& s : states_) {
      if (s.slot < kFirstState || s.slot >= kMaxSlots) throw_value_error("at most 3 state buffers");
      if (!s.arrays.is_none() && py::len(s.arrays) != n)
        throw_value_error(s.name + " must have one array per parameter");
    }
    tensors_.resize(n);
    std::vector<ByteRange> ranges;
    for (std::size_t i = 0; i < n; ++i) {
      DType dt;
      const ArgName p_name = name("params", i);
      py::array p = check_param(params[i], p_name, &dt, &ranges);
      if (i == 0) dtype_ = dt;
      if (dt != dtype_)
        throw_type_error(p_name.str() + " has dtype " + py::str(py::handle(p.dtype())).cast<std::string>() +
                         " but params[0] has dtype " +
                         py::str(py::handle(held_[0].array.dtype())).cast<std::string>() +
                         "; mixed dtypes are not supported");
      tensors_[i].slot[kParam] = p.mutable_data();
      tensors_[i].n = static_cast<std::size_t>(p.size());
      param_index_.push_back(held_.size());
      held_.emplace_back(p, p_name, true);
      for (const StateArrays& s : states_) {
        if (s.arrays.is_none()) continue;
        const ArgName s_name = name(s.name.c_str(), i);
        py::array a = check_like(py::sequence(s.arrays)[i], s_name, true, p, p_name, dtype_, &ranges);
        tensors_[i].slot[s.slot] = a.mutable_data();
        held_.emplace_back(a, s_name, true);
      }
    }
    require_disjoint(ranges);
    writable_ = std::move(ranges);
    if (!grads.is_none()) {
      std::vector<py::array> refs;
      bind_grads(grads, tensors_, &refs);  // checked now, so a mistake shows at construction
      registered_grads_ = grads;
    }
  }

  std::size_t size() const { return tensors_.size(); }
  const RuleSpec* spec() const { return spec_; }

  // ValueError unless the group holds every state buffer its rule uses with
  // these hyperparameter values (momentum_buffer when momentum > 0, ...).
  void require_state_for(const double* values) const {
    if (spec_ == nullptr || tensors_.empty()) return;
    for (std::size_t i = 0; i < spec_->states.size(); ++i) {
      if (spec_->needs_state(i, values) && tensors_[0].slot[kFirstState + i] == nullptr)
        throw_value_error(std::string("this optimizer has no '") + spec_->states[i].name +
                          "' state buffer, needed when " +
                          (spec_->states[i].needed_when ? spec_->states[i].needed_when : "") +
                          " is set; create the optimizer with it set");
    }
  }
  DType dtype() const { return dtype_; }
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

  // Checks every gradient, then (unless skipping on non-finite) updates every tensor.
  bool step(Rule rule, const StepCoefficients& c, const py::object& grads, bool skip_if_nonfinite) {
    Claim claim(*this);
    require_unchanged();
    std::vector<TensorBuffers> tensors = tensors_;
    std::vector<py::array> grad_refs;  // owned until the kernel is done
    if (!grads.is_none()) {
      bind_grads(grads, tensors, &grad_refs);
    } else if (!registered_grads_.is_none()) {
      bind_grads(registered_grads_, tensors, &grad_refs);
    } else {
      throw_value_error("grads is required: no gradient buffers were registered with grads=");
    }
    py::gil_scoped_release release;
    if (skip_if_nonfinite && !all_finite(dtype_, tensors.data(), tensors.size(), kGrad)) return false;
    if (rule == Rule::stream_probe) compact_state_slots(tensors);
    run_step(rule, dtype_, tensors.data(), tensors.size(), c);
    return true;
  }

  // ValueError if any parameter or state array changed since it was checked.
  void require_unchanged() const {
    for (const CheckedArray& a : held_) a.require_unchanged();
  }

  static void check_params(const py::sequence& params, const py::object& keys) {
    TensorGroup(nullptr, params, {}, py::none(), keys);
  }

 private:
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
      refs->push_back(check_like(g, name("grads", i), false, p, name("params", i), dtype_, &ranges));
      tensors[i].slot[kGrad] = const_cast<void*>(refs->back().data());
    }
    for (const ByteRange& r : ranges) require_outside(r, writable_);
  }

  static void compact_state_slots(std::vector<TensorBuffers>& tensors) {
    for (TensorBuffers& t : tensors) {
      int out = 2;
      for (int s = 2; s < kMaxSlots; ++s)
        if (t.slot[s] != nullptr) t.slot[out++] = t.slot[s];
      for (; out < kMaxSlots; ++out) t.slot[out] = nullptr;
    }
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
  DType dtype_ = DType::f32;
};

}  // namespace fastopt::bindings
