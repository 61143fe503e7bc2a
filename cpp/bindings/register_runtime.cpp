// Bindings of the run-time configuration: ISA dispatch, threads, build info.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "fastopt/runtime.hpp"
#include "register.hpp"

namespace fastopt::bindings {
namespace py = pybind11;

namespace {
std::vector<std::string> names(const std::vector<Isa>& isas) {
  std::vector<std::string> out;
  for (Isa isa : isas) out.emplace_back(isa_name(isa));
  return out;
}
}  // namespace

void register_runtime(py::module_& m) {
  m.def("compiled_isas", [] { return names(compiled_isas()); },
        "Kernel paths compiled into this build, slowest first.");
  m.def("supported_isas", [] { return names(supported_isas()); },
        "Compiled kernel paths this CPU can execute, slowest first.");
  m.def("get_isa", [] { return std::string(isa_name(active_isa())); }, "The active kernel path.");
  m.def("set_isa", [](const std::string& name) { set_active_isa(name); }, py::arg("name"));
  m.def("get_num_threads", &num_threads);
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.attr("parallel_min_elements") = kParallelMinElements;
  m.attr("block_elements") = kBlockElements;
  m.attr("compiler") = compiler_description();
  m.attr("openmp_version") = openmp_version();
#ifdef FASTOPT_VERSION
  m.attr("__version__") = FASTOPT_VERSION;
#endif
}

}  // namespace fastopt::bindings
