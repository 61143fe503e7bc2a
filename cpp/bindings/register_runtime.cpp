// Bindings of the run-time configuration: ISA dispatch, threads, build info.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "arrays.hpp"
#include "optim/step.hpp"
#include "runtime/runtime.hpp"
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
  m.def("set_isa", [](py::object name) {
    if (!PyUnicode_Check(name.ptr())) throw_type_error("name must be a str, got " + type_name(name));
    set_active_isa(name.cast<std::string>());
  }, py::arg("name"));
  m.def("get_num_threads", &num_threads,
        "Threads the kernels use in the calling thread (1 in a child made by fork()).");
  m.def("set_num_threads", [](py::object n) {
    const std::int64_t v = to_int(n, "n");
    if (v < 1 || v > kMaxThreads)
      throw_value_error("n must be in [1, " + std::to_string(kMaxThreads) + "], got " + std::to_string(v));
    set_num_threads(static_cast<int>(v));
  }, py::arg("n"));
  m.def("in_forked_child", &in_forked_child,
        "True in a process made by fork() after fastopt was loaded (kernels run single-threaded there).");
  m.attr("max_threads") = kMaxThreads;
  // The strict scalar layer (arrays.hpp), for Python code that checks arguments.
  m.def("as_real", [](py::object obj, const std::string& name) { return to_double(obj, name.c_str()); },
        py::arg("obj"), py::arg("name"), "obj as a float if it is a real number (not a bool), else TypeError naming it.");
  m.def("as_int", [](py::object obj, const std::string& name) { return to_int(obj, name.c_str()); },
        py::arg("obj"), py::arg("name"), "obj as an int if it is an integer in int64 (not a bool), else TypeError/ValueError.");
  m.def("as_bool", [](py::object obj, const std::string& name) { return to_bool(obj, name.c_str()); },
        py::arg("obj"), py::arg("name"), "obj if it is a Python or NumPy bool, else TypeError naming it.");
  m.attr("parallel_min_elements") = kParallelMinElements;
  m.attr("block_elements") = kBlockElements;
  m.attr("compiler") = compiler_description();
  m.attr("openmp_version") = openmp_version();
#ifdef FASTOPT_VERSION
  m.attr("__version__") = FASTOPT_VERSION;
#endif
}

}  // namespace fastopt::bindings
