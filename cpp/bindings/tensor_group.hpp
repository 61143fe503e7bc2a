// The arrays of a multi-tensor optimizer, checked once (register_optim.cpp
// binds it as _core.TensorGroup; register_train.cpp trains through it).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "arrays.hpp"
#include "fastopt/optim.hpp"

namespace fastopt::bindings {

// A fixed set of tensors and their optimizer state, checked once; a step over
// all of them is one call. Gradients come per step or are registered once.
class TensorGroup {
 public:
  TensorGroup(const py::sequence& params, const py::sequence& states,
              const py::sequence& state_names, const py::object& grads, const py::object& keys) {
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
      if (py::len(states[s]) != n)
        throw_value_error(state_names_[s] + " must have one array per parameter");
    }
    tensors_.resize(n);
    params_.reserve(n);
    std::vector<ByteRange> ranges;
    for (std::size_t i = 0; i < n; ++i) {
      py::array p;
      DType dt;
      tensors_[i].slot[kParam] = check_param(params[i], name("params", i), &p, &dt, &ranges);
      if (i == 0) dtype_ = dt;
      if (dt != dtype_)
        throw_type_error(name("params", i).str() + " has dtype " +
                         py::str(py::handle(p.dtype())).cast<std::string>() + " but params[0] has dtype " +
                         py::str(py::handle(params_[0].dtype())).cast<std::string>() +
                         "; mixed dtypes are not supported");
      tensors_[i].n = static_cast<std::size_t>(p.size());
      params_.push_back(p);
      keep_alive_.push_back(p);
      for (std::size_t s = 0; s < states.size(); ++s) {
        if (states[s].is_none()) continue;
        py::handle arr = py::sequence(states[s])[i];
        tensors_[i].slot[2 + s] = check_like(arr, name(state_names_[s].c_str(), i), true, p,
                                             name("params", i), dtype_, &ranges);
        keep_alive_.push_back(py::reinterpret_borrow<py::array>(arr));
      }
    }
    require_disjoint(ranges);
    writable_ = std::move(ranges);
    if (!grads.is_none()) {
      bind_grads(grads, tensors_);
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
  const py::array& param(std::size_t i) const { return params_[i]; }
  // The parameter and state slots of tensor i (the gradient slot is unset
  // unless gradients were registered).
  const TensorBuffers& buffers(std::size_t i) const { return tensors_[i]; }
  // ValueError if `r` overlaps any array this group writes.
  void require_not_written(const ByteRange& r) const { require_outside(r, writable_); }

  // Checks every gradient, then (unless skipping on non-finite) updates every tensor.
  bool step(Rule rule, const StepCoefficients& c, const py::object& grads, bool skip_if_nonfinite) {
    std::vector<TensorBuffers> tensors = tensors_;
    if (!grads.is_none()) {
      bind_grads(grads, tensors);
    } else if (registered_grads_.is_none()) {
      throw_value_error("grads is required: no gradient buffers were registered with grads=");
    }
    require_still_writeable();
    py::gil_scoped_release release;
    if (skip_if_nonfinite && !all_finite(dtype_, tensors.data(), tensors.size(), kGrad)) return false;
    if (rule == Rule::stream_probe) compact_state_slots(tensors);
    run_step(rule, dtype_, tensors.data(), tensors.size(), c);
    return true;
  }

  void require_still_writeable() const {
    for (std::size_t i = 0; i < keep_alive_.size(); ++i)
      if (!keep_alive_[i].writeable())
        throw_value_error("an array of this optimizer became read-only after it was registered");
  }

 private:
  ArgName name(const char* base, std::size_t i) const {
    return ArgName{base, static_cast<std::ptrdiff_t>(i), keys_.empty() ? py::handle() : py::handle(keys_[i])};
  }

  void bind_grads(const py::object& grads, std::vector<TensorBuffers>& tensors) const {
    const std::size_t n = tensors.size();
    const bool by_key = !keys_.empty();
    if (by_key && !py::isinstance<py::dict>(grads))
      throw_type_error("grads must be a dict with the same keys as params");
    if (!by_key && (!py::isinstance<py::sequence>(grads) || py::isinstance<py::str>(grads) ||
                    py::isinstance<py::array>(grads)))
      throw_type_error("grads must be a list of arrays, one per parameter");
    if (py::len(grads) != n)
      throw_value_error("grads has " + std::to_string(py::len(grads)) + " entries but there are " +
                        std::to_string(n) + " parameters");
    std::vector<ByteRange> ranges;
    const py::dict as_dict = by_key ? py::reinterpret_borrow<py::dict>(grads) : py::dict();
    const py::sequence as_seq = by_key ? py::sequence() : py::reinterpret_borrow<py::sequence>(grads);
    for (std::size_t i = 0; i < n; ++i) {
      py::handle g;
      if (by_key) {
        g = PyDict_GetItemWithError(as_dict.ptr(), keys_[i].ptr());
        if (g.ptr() == nullptr) {
          if (PyErr_Occurred()) throw py::error_already_set();
          throw_value_error("grads is missing key " + py::repr(keys_[i]).cast<std::string>());
        }
      } else {
        g = as_seq[i];
      }
      tensors[i].slot[kGrad] =
          check_like(g, name("grads", i), false, params_[i], name("params", i), dtype_, &ranges);
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
  std::vector<py::array> params_;
  std::vector<py::array> keep_alive_;  // every written array
  std::vector<py::object> keys_;
  std::vector<std::string> state_names_;
  std::vector<ByteRange> writable_;  // sorted, disjoint
  py::object registered_grads_ = py::none();
  DType dtype_ = DType::f32;
};

}  // namespace fastopt::bindings
