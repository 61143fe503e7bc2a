// fastopt.torch's native half: the tensors of a torch optimizer as a
// TensorGroup, and a step that reads every parameter's gradient and step count
// and checks the cached view is still the optimizer's, with no Python code per
// tensor. Torch tensors are read through torch's Python API (data_ptr(),
// is_contiguous(), ...): fastopt builds and loads without libtorch.
#pragma once

#include <pybind11/pybind11.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "tensor_group.hpp"

namespace fastopt::bindings {

// The torch objects a tensor's attributes are compared with, given by
// fastopt.torch: torch._C.TensorBase (every tensor type derives from it),
// torch.strided, and the torch dtypes of float32, float64, float16, bfloat16.
struct TorchTypes {
  PyTypeObject* tensor_base = nullptr;
  py::object strided;
  std::array<py::object, 4> dtypes;  // indexed by DType
};

// Where a dense, contiguous CPU tensor of an optimizer dtype keeps its elements.
struct TensorMemory {
  void* data;
  std::size_t numel;
  DType dtype;
};

// The cached view of fastopt.torch's optimizer over the parameters that had a
// gradient when it was made (the "entries", in param_groups order). A step
// walks param_groups, and proceeds only if the parameters with gradients, their
// state dicts and tensors, and the tensors' memory are those of the view;
// otherwise it returns None and changes nothing, and fastopt.torch makes a new
// view. The view holds a reference to every tensor it names.
class TorchView {
 public:
  // `group`: the TensorGroup over NumPy views of the same tensors (its
  //   parameter i is entry i), made with `groups` as its group numbers.
  // `params`, `groups`, `positions`: entry i is param_groups[groups[i]]["params"][positions[i]].
  // `state`: the optimizer's state dict; `state_tensors[i]`: {name: tensor} of
  //   the state buffers entry i's step uses.
  // `steps[i]`: state[p]["step"] (a one-element float32/float64 tensor, read
  //   and incremented by each step), or an int: the step number it always uses.
  // `copies[i]`: the 16-bit copy of master-weight mode, or None.
  TorchView(py::object types, py::object group, const py::sequence& params, const py::sequence& groups,
            const py::sequence& positions, py::object state, const py::sequence& state_tensors,
            const py::sequence& steps, const py::sequence& copies);

  // One step with the hyperparameters `hypers` (a list: one dict per param
  // group) and stochastic rounding seed `seed` (None: to nearest). Without
  // `phase`, `grad_scale` multiplies every gradient (GradScaler's 1/scale).
  // `first_steps`: None, or per entry the step number this call uses instead
  // of the fixed one (the step that creates SGD's momentum buffer).
  // Returns None when the view is stale (nothing changed), else (applied, norm).
  py::object step(py::handle param_groups, py::handle state, py::handle hypers, py::handle seed,
                  py::handle first_steps, bool skip_if_nonfinite, TensorGroup::GradientPhase* phase);

 private:
  struct Entry {
    py::object param;
    std::uint32_t group;
    std::uint32_t position;
    py::object state;  // state[param] (a dict) when made; None when it held no dict
    std::vector<std::pair<py::object, py::object>> state_tensors;  // (name, tensor)
    void* param_data;
    py::object step_tensor;  // None: fixed_step
    void* step_data = nullptr;
    bool step_is_double = false;
    py::object step_array;  // a NumPy view of step_tensor: keeps its memory
    std::int64_t fixed_step = 0;
    py::object copy;
    void* copy_data = nullptr;
  };

  bool state_unchanged(py::handle state) const;
  bool memory_unchanged() const;

  TorchTypes types_;
  py::object group_obj_;
  TensorGroup* group_;
  py::object state_;
  std::vector<std::pair<py::object, py::object>> snapshot_;  // state_'s items when made, in order
  std::vector<Entry> entries_;
};

}  // namespace fastopt::bindings
