// fastopt.torch's step without Python code per tensor (torch_view.hpp).
#include "torch_view.hpp"

#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "rule_args.hpp"

namespace fastopt::bindings {
namespace {

// Attribute and method names, interned once (the GIL is held).
struct Names {
  PyObject* grad = PyUnicode_InternFromString("grad");
  PyObject* params = PyUnicode_InternFromString("params");
  PyObject* step = PyUnicode_InternFromString("step");
  PyObject* layout = PyUnicode_InternFromString("layout");
  PyObject* is_cpu = PyUnicode_InternFromString("is_cpu");
  PyObject* dtype = PyUnicode_InternFromString("dtype");
  PyObject* device = PyUnicode_InternFromString("device");
  PyObject* is_contiguous = PyUnicode_InternFromString("is_contiguous");
  PyObject* numel = PyUnicode_InternFromString("numel");
  PyObject* data_ptr = PyUnicode_InternFromString("data_ptr");
  PyObject* detach = PyUnicode_InternFromString("detach");
  PyObject* numpy = PyUnicode_InternFromString("numpy");
};
const Names& names() {
  static const Names n;
  return n;
}

py::object checked(PyObject* result) {
  if (result == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(result);
}
py::object attr(py::handle obj, PyObject* name) { return checked(PyObject_GetAttr(obj.ptr(), name)); }
py::object call(py::handle obj, PyObject* name) { return checked(PyObject_CallMethodNoArgs(obj.ptr(), name)); }
std::string str(py::handle obj) { return py::str(obj).cast<std::string>(); }

void* data_ptr(py::handle t) {
  const py::object v = call(t, names().data_ptr);
  void* p = PyLong_AsVoidPtr(v.ptr());
  if (p == nullptr && PyErr_Occurred()) throw py::error_already_set();
  return p;
}

// The memory of torch tensor `t`, or a TypeError / ValueError naming it
// (`name()`, built only on the error path).
template <class Name>
TensorMemory tensor_memory(py::handle t, const TorchTypes& types, const Name& name) {
  const Names& n = names();
  if (!PyObject_TypeCheck(t.ptr(), types.tensor_base))
    throw_type_error(name() + " must be a torch.Tensor, got " + type_name(t));
  const py::object layout = attr(t, n.layout);
  if (!layout.is(types.strided))
    throw_type_error(name() + " is a " + str(layout) + " tensor; fastopt.torch takes dense gradients and parameters");
  if (attr(t, n.is_cpu).ptr() != Py_True)
    throw_value_error(name() + " is on " + str(attr(t, n.device)) + "; fastopt.torch updates CPU tensors");
  const py::object dtype = attr(t, n.dtype);
  int d = 0;
  while (d < 4 && !dtype.is(types.dtypes[d])) ++d;
  if (d == 4)
    throw_type_error(name() + " has dtype " + str(dtype) +
                     "; fastopt.torch takes float32, float64, float16 or bfloat16");
  if (call(t, n.is_contiguous).ptr() != Py_True)
    throw_value_error(name() + " is not contiguous; fastopt.torch updates tensors in place and will not copy "
                      "(an update of a copy would be lost)");
  const Py_ssize_t numel = PyLong_AsSsize_t(call(t, n.numel).ptr());
  if (numel < 0) throw py::error_already_set();
  const DType dt = static_cast<DType>(d);
  void* data = data_ptr(t);
  if (numel > 0 && data == nullptr) throw_value_error(name() + " has no storage (data_ptr() is 0)");
  if (reinterpret_cast<std::uintptr_t>(data) % dtype_size(dt) != 0)
    throw_value_error(name() + " is not aligned to its dtype");
  return {data, static_cast<std::size_t>(numel), dt};
}

std::string param_name(std::uint32_t group, std::uint32_t position) {
  return "param_groups[" + std::to_string(group) + "]['params'][" + std::to_string(position) + "]";
}

// fastopt.torch's (TensorBase, strided, (float32, float64, float16, bfloat16)).
TorchTypes torch_types(py::handle types_obj) {
  const py::tuple t = py::reinterpret_borrow<py::tuple>(types_obj);
  if (t.size() != 3 || !PyType_Check(t[0].ptr())) throw_type_error("types: (TensorBase, strided, dtypes)");
  TorchTypes types;
  types.tensor_base = reinterpret_cast<PyTypeObject*>(t[0].ptr());
  types.strided = t[1];
  const py::tuple dtypes = t[2];
  if (dtypes.size() != 4) throw_type_error("types: four dtypes (float32, float64, float16, bfloat16)");
  for (int i = 0; i < 4; ++i) types.dtypes[i] = dtypes[i];
  return types;
}

}  // namespace

TorchView::TorchView(py::object types, py::object group, const py::sequence& params, const py::sequence& groups,
                     const py::sequence& positions, py::object state, const py::sequence& state_tensors,
                     const py::sequence& steps, const py::sequence& copies)
    : types_(torch_types(types)), group_obj_(group), group_(&group.cast<TensorGroup&>()), state_(std::move(state)) {
  const std::size_t n = params.size();
  if (n != group_->size() || groups.size() != n || positions.size() != n || state_tensors.size() != n ||
      steps.size() != n || copies.size() != n)
    throw_value_error("TorchView: one entry per parameter of the group is needed");
  if (!PyDict_Check(state_.ptr())) throw_type_error("state must be a dict");
  const RuleSpec& spec = *group_->spec();
  entries_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    Entry e;
    e.param = params[i];
    e.group = static_cast<std::uint32_t>(to_int(groups[i], "groups"));
    e.position = static_cast<std::uint32_t>(to_int(positions[i], "positions"));
    const std::string name = param_name(e.group, e.position);
    const TensorBuffers& b = group_->buffers(i);
    auto same_memory = [&](void* data, int slot, const std::string& what) {
      if (data != b.slot[slot]) throw_value_error(what + " is not the memory of the group's array");
    };
    e.param_data = tensor_memory(e.param, types_, [&] { return name; }).data;
    same_memory(e.param_data, kParam, name);
    PyObject* dict = PyDict_GetItemWithError(state_.ptr(), e.param.ptr());
    if (dict == nullptr && PyErr_Occurred()) throw py::error_already_set();
    e.state = dict == nullptr ? py::none() : py::reinterpret_borrow<py::object>(dict);
    for (auto item : py::reinterpret_borrow<py::dict>(state_tensors[i])) {
      const std::string s_name = "state['" + str(item.first) + "'] of " + name;
      int slot = -1;
      for (std::size_t k = 0; k < spec.states.size(); ++k)
        if (str(item.first) == spec.states[k].name) slot = kFirstState + static_cast<int>(k);
      if (slot < 0) throw_value_error(s_name + ": the rule keeps no such state");
      void* data = tensor_memory(item.second, types_, [&] { return s_name; }).data;
      same_memory(data, slot, s_name);
      e.state_tensors.emplace_back(py::reinterpret_borrow<py::object>(item.first),
                                   py::reinterpret_borrow<py::object>(item.second));
    }
    const py::handle step = steps[i];
    if (PyObject_TypeCheck(step.ptr(), types_.tensor_base)) {
      const std::string s_name = "state['step'] of " + name;
      const TensorMemory m = tensor_memory(step, types_, [&] { return s_name; });
      if (m.numel != 1 || (m.dtype != DType::f32 && m.dtype != DType::f64))
        throw_type_error(s_name + " must be a one-element float32 or float64 tensor, as torch keeps it");
      e.step_tensor = py::reinterpret_borrow<py::object>(step);
      e.step_array = call(call(step, names().detach), names().numpy);  // holds its memory (see memory_unchanged)
      e.step_data = py::reinterpret_borrow<py::array>(e.step_array).mutable_data();
      e.step_is_double = m.dtype == DType::f64;
    } else {
      e.step_tensor = py::none();
      e.fixed_step = to_int(step, "steps");
    }
    if (copies[i].is_none()) {
      e.copy = py::none();
    } else {
      const std::string c_name = "the copy of " + name;
      e.copy = copies[i];
      e.copy_data = tensor_memory(e.copy, types_, [&] { return c_name; }).data;
      same_memory(e.copy_data, kParamCopy, c_name);
    }
    entries_.push_back(std::move(e));
  }
  Py_ssize_t pos = 0;
  PyObject *key, *value;
  while (PyDict_Next(state_.ptr(), &pos, &key, &value))
    snapshot_.emplace_back(py::reinterpret_borrow<py::object>(key), py::reinterpret_borrow<py::object>(value));
}

// The state dict is compared with its snapshot entry by entry in insertion
// order (no hashing: a tensor's __hash__ is Python code), so a replaced or
// removed state[p] is seen; then the view's state tensors in each state[p].
bool TorchView::state_unchanged(py::handle state) const {
  if (!state.is(state_) || PyDict_Size(state_.ptr()) != static_cast<Py_ssize_t>(snapshot_.size())) return false;
  Py_ssize_t pos = 0;
  PyObject *key, *value;
  for (const auto& [k, v] : snapshot_) {
    if (!PyDict_Next(state_.ptr(), &pos, &key, &value) || key != k.ptr() || value != v.ptr()) return false;
  }
  for (const Entry& e : entries_) {
    if (e.state.is_none()) continue;
    for (const auto& [key, tensor] : e.state_tensors)
      if (PyDict_GetItemWithError(e.state.ptr(), key.ptr()) != tensor.ptr()) return false;
    if (!e.step_tensor.is_none() && PyDict_GetItemWithError(e.state.ptr(), names().step) != e.step_tensor.ptr())
      return false;
    if (PyErr_Occurred()) throw py::error_already_set();
  }
  return true;
}

// `p.data = other` or set_() keep a parameter tensor object but move its
// memory; the step must then update the new memory, as torch's would (a new
// view is made). The memory itself cannot go away under the view: the group
// holds NumPy views of every parameter, state and copy, and the view one of
// every step tensor, which keep their storage alive, and torch refuses to
// resize a storage NumPy views. State tensors are the optimizer's own, and are
// not re-checked (a set_() on them would keep updating their old memory).
bool TorchView::memory_unchanged() const {
  for (const Entry& e : entries_) {
    if (data_ptr(e.param) != e.param_data) return false;
    if (!e.copy.is_none() && data_ptr(e.copy) != e.copy_data) return false;
  }
  return true;
}

py::object TorchView::step(py::handle param_groups, py::handle state, py::handle hypers, py::handle seed,
                           py::handle first_steps, bool skip_if_nonfinite, TensorGroup::GradientPhase* phase) {
  const std::size_t n = entries_.size();
  // The parameters with a gradient must be the view's, in order.
  if (!PyList_Check(param_groups.ptr())) throw_type_error("param_groups must be a list");
  std::vector<py::object> grads;
  grads.reserve(n);
  std::size_t k = 0;
  for (Py_ssize_t gi = 0; gi < PyList_GET_SIZE(param_groups.ptr()); ++gi) {
    const py::object group = py::reinterpret_borrow<py::object>(PyList_GET_ITEM(param_groups.ptr(), gi));
    if (!PyDict_Check(group.ptr())) return py::none();
    PyObject* list = PyDict_GetItemWithError(group.ptr(), names().params);
    if (list == nullptr && PyErr_Occurred()) throw py::error_already_set();
    if (list == nullptr || !PyList_Check(list)) return py::none();
    const py::object params = py::reinterpret_borrow<py::object>(list);
    for (Py_ssize_t pi = 0; pi < PyList_GET_SIZE(list); ++pi) {
      const py::object p = py::reinterpret_borrow<py::object>(PyList_GET_ITEM(list, pi));
      py::object grad = attr(p, names().grad);
      if (grad.is_none()) continue;
      if (k == n || !p.is(entries_[k].param) || static_cast<std::uint32_t>(gi) != entries_[k].group) return py::none();
      grads.push_back(std::move(grad));
      ++k;
    }
  }
  if (k != n || !state_unchanged(state) || !memory_unchanged()) return py::none();

  // Step numbers: torch's state["step"] + 1, or the fixed one.
  const py::tuple first = first_steps.is_none() ? py::tuple() : py::tuple(py::reinterpret_borrow<py::object>(first_steps));
  if (!first_steps.is_none() && first.size() != n) throw_value_error("first_steps: one entry per parameter");
  std::vector<std::int64_t> step_of(n);
  for (std::size_t i = 0; i < n; ++i) {
    const Entry& e = entries_[i];
    if (e.step_tensor.is_none()) {
      step_of[i] = first_steps.is_none() ? e.fixed_step : to_int(first[i], "first_steps");
      continue;
    }
    double v;
    if (e.step_is_double) {
      std::memcpy(&v, e.step_data, sizeof v);
    } else {
      float f;
      std::memcpy(&f, e.step_data, sizeof f);
      v = f;
    }
    if (!(v >= 0.0 && v < 9007199254740992.0) || v != std::floor(v))
      throw_value_error("state['step'] of " + param_name(e.group, e.position) + " is " + std::to_string(v) +
                        ": a step count is a whole number >= 0");
    step_of[i] = static_cast<std::int64_t>(v) + 1;
  }

  // One set of coefficients per (param group, step number) in use.
  const RuleSpec& spec = *group_->spec();
  if (!PyList_Check(hypers.ptr())) throw_type_error("hypers must be a list with one dict per parameter group");
  const py::list hyper_list = py::reinterpret_borrow<py::list>(hypers);
  std::vector<std::array<double, kMaxHypers>> values(group_->group_count());
  std::vector<bool> have_values(values.size(), false);
  std::vector<std::pair<std::uint32_t, std::int64_t>> sets;
  std::vector<StepCoefficients> coefficients;
  std::vector<TensorBuffers> tensors(n);
  std::size_t last = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t g = entries_[i].group;
    if (!have_values[g]) {
      if (g >= hyper_list.size()) throw_value_error("hypers: one dict per parameter group is needed");
      values[g] = hyper_values(spec, hyper_list[g]);
      group_->require_state_for(g, values[g].data());
      have_values[g] = true;
    }
    const std::pair<std::uint32_t, std::int64_t> key{g, step_of[i]};
    if (sets.empty() || sets[last] != key) {
      last = 0;
      while (last < sets.size() && sets[last] != key) ++last;
      if (last == sets.size()) {
        sets.push_back(key);
        coefficients.push_back(checked_coefficients(spec, values[g].data(), key.second));
        set_rounding(coefficients.back(), seed);
      }
    }
    tensors[i] = group_->buffers(i);
    tensors[i].group = static_cast<std::uint32_t>(last);
  }

  for (std::size_t i = 0; i < n; ++i) {
    const Entry& e = entries_[i];
    auto name = [&] { return "the gradient of " + param_name(e.group, e.position); };
    const TensorMemory m = tensor_memory(grads[i], types_, name);
    group_->bind_grad(tensors[i], m.dtype, m.data, m.numel, name);
  }
  const bool applied = group_->step_bound(spec.rule, std::move(coefficients), tensors, skip_if_nonfinite, phase);
  if (applied) {
    for (const Entry& e : entries_) {
      if (e.step_tensor.is_none()) continue;
      if (e.step_is_double) {
        double v;
        std::memcpy(&v, e.step_data, sizeof v);
        v += 1.0;
        std::memcpy(e.step_data, &v, sizeof v);
      } else {
        float f;
        std::memcpy(&f, e.step_data, sizeof f);
        f += 1.0f;
        std::memcpy(e.step_data, &f, sizeof f);
      }
    }
  }
  return py::make_tuple(applied, phase == nullptr ? 0.0 : phase->norm);
}

}  // namespace fastopt::bindings
