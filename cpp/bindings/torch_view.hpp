// fastopt.torch's native half: the tensors of a torch optimizer as a
// TensorGroup, and a step that reads every parameter's gradient and step count
// and checks the cached view is still the optimizer's, with no Python code per
// tensor. Torch tensors are read through torch's Python API (data_ptr(),
// shape, stride(), ...): fastopt builds and loads without libtorch.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "tensor_group.hpp"

namespace fastopt::bindings {

// The torch objects a tensor's attributes are compared with, given by
// fastopt.torch (_torch_types): torch._C.TensorBase (every tensor type derives
// from it), torch.strided, the torch dtypes of float32, float64, float16,
// bfloat16 and uint8 (8-bit state's codes) and the NumPy dtypes the group's
// arrays take for them (None for bfloat16 without ml_dtypes), the integer dtypes a step count may have
// (int32, int64), torch._C._increment_version and
// torch.is_inference_mode_enabled.
struct TorchTypes {
  PyTypeObject* tensor_base = nullptr;
  py::object strided;
  std::array<py::object, 5> dtypes;        // indexed by DType
  std::array<py::object, 5> numpy_dtypes;  // indexed by DType
  std::array<py::object, 2> int_dtypes;    // int32, int64
  py::object increment_version;
  py::object inference_mode_enabled;
  PyTypeObject* dtensor = nullptr;  // torch.distributed.tensor.DTensor, when torch has it
};
TorchTypes torch_types(py::handle types_obj);
// The tensor whose memory `t` is: `t` itself, or a DTensor's local shard (FSDP2's
// parameters, gradients and state; an elementwise step over each rank's shard is the
// step of the whole tensor).
py::object local_tensor(const TorchTypes& types, py::handle t);

// Where a dense, contiguous CPU tensor of an optimizer dtype keeps its elements.
struct TensorMemory {
  void* data;
  std::size_t numel;
  DType dtype;
  // Contiguous, or dense and non-overlapping in another order (channels_last):
  // then its memory is numel elements from data, and its strides say the order.
  bool contiguous;
  std::vector<py::ssize_t> sizes, strides;
};
// Whether two tensors' elements lie in memory in the same order (equal sizes,
// equal strides of every dimension of more than one element): an elementwise
// update over their memory then pairs the same elements.
bool same_memory_order(const TensorMemory& a, const TensorMemory& b);

// What a tensor looked like when a view was made of it. Python code may move
// a tensor's memory between steps without replacing the tensor object
// (share_memory_(), set_(), `.data = other`, a pickled state_dict put in a
// torch.multiprocessing queue): a step uses the view only while every tensor
// still has this address, dtype and element count and is contiguous (which
// keeps every write inside the tensor's own memory), and each parameter and
// copy also has its strides and no negation bit (`p.data = p.data.t()` or a
// torch._neg_view keep the address). Strides and the count of a contiguous
// tensor give its shape; reading `shape` itself costs several times more (a
// new torch.Size per call), and the check runs for every tensor every step.
struct TensorLayout {
  py::object tensor;
  void* data = nullptr;
  py::object dtype;
  Py_ssize_t numel = 0;
  py::object strides;  // parameters and copies: stride() when made; None otherwise
  TensorLayout() = default;
  TensorLayout(py::handle t, void* data_, bool full);
  bool unchanged() const;
};

// A NumPy array over the memory of torch tensor `t` (checked as a parameter or
// state tensor: dense, CPU, contiguous, an optimizer dtype, no negation bit,
// not an inference tensor outside inference mode), keeping `t` alive. Made
// from the address, not with Tensor.numpy(), which would make the tensor's
// storage non-resizable for good. TypeError / ValueError naming it `name`.
py::array tensor_array(const TorchTypes& types, py::handle t, const std::string& name);

// The cached view of fastopt.torch's optimizer over the parameters that had a
// gradient when it was made (the "entries", in param_groups order). A step
// walks param_groups, and proceeds only if the parameters with gradients, their
// state dicts and tensors, and every tensor's layout (TensorLayout) are those
// of the view; otherwise it returns None and changes nothing, and
// fastopt.torch makes a new view. The view holds a reference to every tensor
// it names.
class TorchView {
 public:
  // `group`: the TensorGroup over tensor_array()s of the same tensors (its
  //   parameter i is entry i), made with `groups` as its group numbers.
  // `params`, `groups`, `positions`: entry i is param_groups[groups[i]]["params"][positions[i]].
  // `state`: the optimizer's state dict; `state_tensors[i]`: {name: tensor} of
  //   the state buffers entry i's step uses.
  // `steps[i]`: state[p]["step"] (a one-element float or integer tensor,
  //   incremented by each applied step), or None where torch keeps no step.
  // `fixed_steps[i]`: None when the rule's step number is state["step"] + 1,
  //   else the step number the rule always uses.
  // `copies[i]`: the 16-bit copy of master-weight mode, or None.
  // `counter`: a 0-d int64 array owned by the optimizer, incremented by each
  //   applied step: the step number stochastic rounding hashes for entries
  //   with no state["step"] (torch's SGD, Lion), so every step has new bits.
  TorchView(py::object types, py::object group, const py::sequence& params, const py::sequence& groups,
            const py::sequence& positions, py::object state, const py::sequence& state_tensors,
            const py::sequence& steps, const py::sequence& fixed_steps, const py::sequence& copies,
            py::object counter);

  // One step with the hyperparameters `hypers` (a list: one dict per param
  // group) and stochastic rounding seed `seed` (None: to nearest). Without
  // `phase`, `grad_scale` multiplies every gradient (GradScaler's 1/scale).
  // `first_steps`: None, or per entry the step number this call uses instead
  // of the fixed one (the step that creates SGD's momentum buffer).
  // Returns None when the view is stale (nothing changed), else (applied, norm).
  // An applied step also counts itself (step tensors, the counter) and bumps
  // the autograd version of every tensor it wrote before it returns, so no
  // Python code runs between the update and its bookkeeping.
  py::object step(py::handle param_groups, py::handle state, py::handle hypers, py::handle seed,
                  py::handle first_steps, bool skip_if_nonfinite, TensorGroup::GradientPhase* phase);

  // True once a step of this view has changed the tensors.
  bool stepped() const { return stepped_; }
  // A forked child inherits a claim a thread of the parent held: release it.
  void after_fork() { group_->release_after_fork(); }

 private:
  struct Entry {
    py::object param;
    std::uint32_t group;
    std::uint32_t position;
    py::object state;  // state[param] (a dict) when made; None when it held no dict
    std::vector<std::pair<py::object, py::object>> state_tensors;  // (name, tensor)
    py::object step_tensor;  // None: no state["step"]
    StepCount step_count;    // its memory and dtype
    bool fixed = false;  // the rule's step number is fixed_step, not state["step"] + 1
    std::int64_t fixed_step = 0;
    TensorMemory memory{};  // the parameter's, when made (its gradient must have the same order)
  };

  bool state_unchanged(py::handle state) const;
  bool memory_unchanged() const;

  TorchTypes types_;
  py::object group_obj_;
  TensorGroup* group_;
  py::object state_;
  std::vector<std::pair<py::object, py::object>> snapshot_;  // state_'s items when made, in order
  std::vector<Entry> entries_;
  std::vector<TensorLayout> layouts_;  // every tensor the view reads or writes but the gradients
  py::list written_;                   // every tensor a step writes (for autograd's version counters)
  py::array_t<std::int64_t> counter_;
  bool stepped_ = false;
};

}  // namespace fastopt::bindings
