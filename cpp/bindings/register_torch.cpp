// Python binding of fastopt.torch's native view (torch_view.hpp).
#include <pybind11/pybind11.h>

#include "arrays.hpp"
#include "register.hpp"
#include "torch_view.hpp"

namespace fastopt::bindings {

void register_torch(py::module_& m) {
  using py::arg;
  m.def("tensor_array", [](py::object types, py::object tensor, const std::string& name) {
    return tensor_array(torch_types(types), tensor, name);
  }, arg("types"), arg("tensor"), arg("name"),
     "A NumPy array over a torch tensor's memory (private; fastopt.torch's views): checked as a\n"
     "parameter or state tensor, without Tensor.numpy() (which makes the storage non-resizable).");
  py::class_<TorchView>(m, "TorchView",
                        "fastopt.torch's view of an optimizer's tensors: a step reads the gradients and step\n"
                        "counts of torch tensors with no Python code per tensor (private).")
      .def(py::init<py::object, py::object, const py::sequence&, const py::sequence&, const py::sequence&,
                    py::object, const py::sequence&, const py::sequence&, const py::sequence&, const py::sequence&,
                    py::object>(),
           arg("types"), arg("group"), arg("params"), arg("groups"), arg("positions"), arg("state"),
           arg("state_tensors"), arg("steps"), arg("fixed_steps"), arg("copies"), arg("counter"))
      .def("step", [](TorchView& view, py::object param_groups, py::object state, py::object hypers,
                      py::object seed, py::object first_steps, py::object grad_scale, py::object max_norm,
                      py::object skip) {
        const bool skip_nonfinite = to_bool(skip, "skip_if_nonfinite");
        TensorGroup::GradientPhase phase = checked_phase(grad_scale, max_norm);
        const bool plain = phase.grad_scale == 1.0 && max_norm.is_none() && !skip_nonfinite;
        return view.step(param_groups, state, hypers, seed, first_steps, skip_nonfinite, plain ? nullptr : &phase);
      }, arg("param_groups"), arg("state"), arg("hypers"), arg("seed") = py::none(), arg("first_steps") = py::none(),
         arg("grad_scale") = 1.0, arg("max_norm") = py::none(), arg("skip_if_nonfinite") = false,
         "One step, or None (nothing changed) when the view is no longer the optimizer's. Every\n"
         "gradient is multiplied by grad_scale; with max_norm, clipped by the global norm; with\n"
         "skip_if_nonfinite, nothing changes when a gradient is not finite. Returns (applied, norm).")
      .def_property_readonly("stepped", &TorchView::stepped, "True once a step of this view changed the tensors.")
      .def("after_fork", &TorchView::after_fork,
           "In a forked child: release the claim of a step a thread of the parent was running.");
}

}  // namespace fastopt::bindings
