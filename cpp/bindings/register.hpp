// One register_<family> function per kernel family; module.cpp calls each.
#pragma once
#include <pybind11/pybind11.h>

namespace fastopt::bindings {
void register_runtime(pybind11::module_& m);
void register_optim(pybind11::module_& m);
void register_loss(pybind11::module_& m);
void register_train(pybind11::module_& m);
void register_torch(pybind11::module_& m);
}  // namespace fastopt::bindings
