// fastopt._core: the compiled half of fastopt. Public API lives in Python.
#include <pybind11/pybind11.h>

#include "register.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "fastopt native kernels (private; use the fastopt package)";
  fastopt::bindings::register_runtime(m);
  fastopt::bindings::register_optim(m);
  fastopt::bindings::register_loss(m);
  fastopt::bindings::register_train(m);
  fastopt::bindings::register_torch(m);
}
