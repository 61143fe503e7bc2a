#include "rule_args.hpp"

#include <cmath>
#include <string>

namespace fastopt::bindings {

namespace {
std::string rule_names() {
  std::string known;
  for (const RuleSpec& r : rule_specs()) known += std::string(known.empty() ? "'" : ", '") + r.name + "'";
  return known;
}
}  // namespace

const RuleSpec& check_rule(py::handle name) {
  if (!PyUnicode_Check(name.ptr()))
    throw_type_error("rule must be a str (one of " + rule_names() + "), got " + type_name(name));
  for (const RuleSpec& r : rule_specs())
    if (PyUnicode_CompareWithASCIIString(name.ptr(), r.name) == 0) return r;
  throw_value_error("rule must be one of " + rule_names() + ", got '" + name.cast<std::string>() + "'");
}

std::array<double, kMaxHypers> hyper_values(const RuleSpec& spec, py::handle hypers) {
  if (!PyDict_Check(hypers.ptr())) throw_type_error("hyperparameters must be a dict, got " + type_name(hypers));
  std::array<double, kMaxHypers> values{};
  std::array<bool, kMaxHypers> given{};
  // Our own copy: converting a value may run Python code (Fraction.__float__),
  // which must not be able to change the dict being iterated.
  const py::object own = py::reinterpret_steal<py::object>(PyDict_Copy(hypers.ptr()));
  if (!own) throw py::error_already_set();
  PyObject *key, *value;
  Py_ssize_t pos = 0;
  while (PyDict_Next(own.ptr(), &pos, &key, &value)) {
    std::size_t i = 0;
    while (i < spec.hypers.size() &&
           !(PyUnicode_Check(key) && PyUnicode_CompareWithASCIIString(key, spec.hypers[i].name) == 0))
      ++i;
    if (i == spec.hypers.size())
      throw_value_error(std::string(spec.name) + " has no hyperparameter " + py::repr(key).cast<std::string>());
    const HyperSpec& h = spec.hypers[i];
    if (h.range == Range::flag) values[i] = to_bool(value, h.name) ? 1.0 : 0.0;
    else if (is_optional(h.range) && value == Py_None) values[i] = std::nan("");  // "not given"
    else values[i] = to_double(value, h.name);
    if (is_optional(h.range) && value != Py_None && std::isnan(values[i]))
      throw_value_error(std::string(h.name) + " must be None or a finite number, got nan");
    given[i] = true;
  }
  for (std::size_t i = 0; i < spec.hypers.size(); ++i)
    if (!given[i]) values[i] = spec.hypers[i].default_value;
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
    case Range::nonpositive: return "nonpositive";
    case Range::optional_nonnegative: return "optional nonnegative";
    case Range::optional_positive: return "optional positive";
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
      const py::object value = h.range == Range::flag        ? py::object(py::bool_(h.default_value != 0.0))
                               : std::isnan(h.default_value) ? py::object(py::none())
                                                             : py::object(py::float_(h.default_value));
      hypers.append(py::dict(py::arg("name") = h.name, py::arg("default") = value,
                             py::arg("range") = range_name(h.range), py::arg("per_step") = h.per_step,
                             py::arg("doc") = h.doc));
    }
    for (const StateSpec& s : r.states)
      states.append(py::dict(py::arg("name") = s.name, py::arg("arg") = s.arg,
                             py::arg("needed_when") = or_none(s.needed_when), py::arg("initial") = or_none(s.initial),
                             py::arg("shape") = state_shape_name(s.shape),
                             py::arg("start") = s.start,
                             py::arg("map8") = or_none(s.quant == QuantMap::signed_dynamic     ? "signed"
                                                       : s.quant == QuantMap::unsigned_dynamic ? "unsigned"
                                                                                               : nullptr)));
    out.append(py::dict(py::arg("name") = r.name, py::arg("uses_step") = r.uses_step, py::arg("hypers") = hypers,
                        py::arg("states") = states, py::arg("doc") = r.doc, py::arg("api") = r.api,
                        py::arg("stores_8bit") = r.stores_8bit()));
  }
  return out;
}

void set_rounding(StepCoefficients& c, py::handle seed) {
  c.stochastic_rounding = !seed.is_none();
  c.seed = seed.is_none() ? 0 : to_uint64(seed, "stochastic_rounding_seed");
}

}  // namespace fastopt::bindings
