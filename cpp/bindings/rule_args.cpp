#include "rule_args.hpp"

#include <string>

namespace fastopt::bindings {

const RuleSpec& check_rule(py::handle name) {
  std::string known;
  for (const RuleSpec& r : rule_specs()) known += std::string(known.empty() ? "'" : ", '") + r.name + "'";
  if (!PyUnicode_Check(name.ptr())) throw_type_error("rule must be a str (one of " + known + "), got " + type_name(name));
  const RuleSpec* spec = find_rule(name.cast<std::string>());
  if (spec == nullptr) throw_value_error("rule must be one of " + known + ", got '" + name.cast<std::string>() + "'");
  return *spec;
}

std::array<double, kMaxHypers> hyper_values(const RuleSpec& spec, py::handle hypers) {
  if (!PyDict_Check(hypers.ptr())) throw_type_error("hyperparameters must be a dict, got " + type_name(hypers));
  const py::dict d = py::reinterpret_borrow<py::dict>(hypers);
  for (auto item : d) {
    if (!PyUnicode_Check(item.first.ptr()) || spec.hyper_index(item.first.cast<std::string>().c_str()) < 0)
      throw_value_error(std::string(spec.name) + " has no hyperparameter " + py::repr(item.first).cast<std::string>());
  }
  std::array<double, kMaxHypers> values{};
  for (std::size_t i = 0; i < spec.hypers.size(); ++i) {
    const HyperSpec& h = spec.hypers[i];
    PyObject* v = PyDict_GetItemString(d.ptr(), h.name);  // borrowed; the dict holds it
    if (v == nullptr) {
      values[i] = h.default_value;
    } else if (h.range == Range::flag) {
      values[i] = to_bool(v, h.name) ? 1.0 : 0.0;
    } else {
      values[i] = to_double(v, h.name);
    }
  }
  return values;
}

namespace {
const char* range_name(Range r) {
  switch (r) {
    case Range::nonnegative: return "nonnegative";
    case Range::positive: return "positive";
    case Range::unit_open: return "[0, 1)";
    case Range::unit_closed: return "[0, 1]";
    case Range::flag: return "flag";
  }
  return "?";
}
py::object or_none(const char* s) { return s == nullptr ? py::object(py::none()) : py::object(py::str(s)); }
}  // namespace

py::list describe_rules() {
  py::list out;
  for (const RuleSpec& r : rule_specs()) {
    py::list hypers, states;
    for (const HyperSpec& h : r.hypers) {
      const py::object value = h.range == Range::flag ? py::object(py::bool_(h.default_value != 0.0))
                                                      : py::object(py::float_(h.default_value));
      hypers.append(py::dict(py::arg("name") = h.name, py::arg("default") = value,
                             py::arg("range") = range_name(h.range), py::arg("per_step") = h.per_step));
    }
    for (const StateSpec& s : r.states)
      states.append(py::dict(py::arg("name") = s.name, py::arg("arg") = s.arg,
                             py::arg("needed_when") = or_none(s.needed_when), py::arg("initial") = or_none(s.initial)));
    out.append(py::dict(py::arg("name") = r.name, py::arg("uses_step") = r.uses_step, py::arg("hypers") = hypers,
                        py::arg("states") = states));
  }
  return out;
}

}  // namespace fastopt::bindings
