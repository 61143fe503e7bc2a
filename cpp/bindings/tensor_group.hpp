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
  TensorGroup(const py::sequence& params, const py::sequence& states, const py::sequence& state_names,
              const py::object& grads, const py::object& keys) {
    const std::size_t n = params.size();
    if (!keys.is_none()) {
      for (py::handle k : keys) keys_.push_back(py::reinterpret_borrow<py::object>(k));
      if (keys_.size() != n) throw_value_error("keys must have one entry per parameter");
    }
    if (states.size() > static_cast<std::size_t>(kMaxSlots - 2) || states.size() != state_names.size())
      throw_value_error("states and state_names must have the same length, at most 3");
    for (py::handle name : state_names) state_names_.push_back(name.cast<std::string>());
    for (std::size_t s = 0; s < states.size(); ++s) {
      if (states[s].is_none()) continue;
      if (py::len(states[s]) != n) throw_value_error(state_names_[s] + " must have one array per parameter");
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
      for (std::size_t s = 0; s < states.size(); ++s) {
        if (states[s].is_none()) continue;
        const ArgName s_name = name(state_names_[s].c_str(), i);
        py::array a = check_like(py::sequence(states[s])[i], s_name, true, p, p_name, dtype_, &ranges);
        tensors_[i].slot[2 + s] = a.mutable_data();
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
  bool has_state(int slot) const { return tensors_.empty() || tensors_[0].slot[slot] != nullptr; }

  // ValueError unless this group holds every state buffer `rule` reads and
  // writes with coefficients `c` (momentum buffer, centered average, max_v).
  void require_state_for(Rule rule, const StepCoefficients& c) const {
    auto need = [&](int slot, const char* when) {
      if (!has_state(slot))
        throw_value_error("this optimizer has no " + std::string(slot == 2 ? "first" : "extra") +
                          " state buffer (slot " + std::to_string(slot) + "), required when " + when);
    };
    switch (rule) {
      case Rule::sgd_momentum: need(2, "momentum > 0"); break;
      case Rule::adagrad: need(2, "using Adagrad"); break;
      case Rule::rmsprop:
        need(2, "using RMSprop");
        if (c.momentum > 0) need(3, "momentum > 0");
        if (c.centered) need(4, "centered=True");
        break;
      case Rule::adam:
        need(2, "using Adam");
        need(3, "using Adam");
        if (c.amsgrad) need(4, "amsgrad=True");
        break;
      default: break;
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
        throw std::runtime_error("this optimizer is already running a step in another thread; an optimizer updates its arrays in place and cannot run two steps at once");
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
    TensorGroup(params, py::list(), py::list(), py::none(), keys);
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

  std::vector<TensorBuffers> tensors_;
  std::vector<CheckedArray> held_;        // every parameter and state array, referenced
  std::vector<std::size_t> param_index_;  // held_[param_index_[i]] is params[i]
  std::vector<py::object> keys_;
  std::vector<std::string> state_names_;  // not resized after construction: ArgNames point into it
  std::vector<ByteRange> writable_;       // sorted, disjoint
  py::object registered_grads_ = py::none();
  std::atomic<bool> busy_{false};
  DType dtype_ = DType::f32;
};

}  // namespace fastopt::bindings
