// fastopt.torch's step without Python code per tensor (torch_view.hpp).
#include "torch_view.hpp"

#include <cmath>
#include <cstring>
#include <limits>
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
  PyObject* shape = PyUnicode_InternFromString("shape");
  PyObject* stride = PyUnicode_InternFromString("stride");
  PyObject* is_neg = PyUnicode_InternFromString("is_neg");
  PyObject* resolve_neg = PyUnicode_InternFromString("resolve_neg");
  PyObject* is_inference = PyUnicode_InternFromString("is_inference");
  PyObject* local_tensor = PyUnicode_InternFromString("_local_tensor");
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
bool call_true(py::handle obj, PyObject* name) { return call(obj, name).ptr() == Py_True; }
std::string str(py::handle obj) { return py::str(obj).cast<std::string>(); }
bool equal(py::handle a, py::handle b) {
  const int r = PyObject_RichCompareBool(a.ptr(), b.ptr(), Py_EQ);
  if (r < 0) throw py::error_already_set();
  return r == 1;
}

void* data_ptr(py::handle t) {
  const py::object v = call(t, names().data_ptr);
  void* p = PyLong_AsVoidPtr(v.ptr());
  if (p == nullptr && PyErr_Occurred()) throw py::error_already_set();
  return p;
}

// Sizes and strides (read only where needed: two more Python calls per tensor).
void add_layout(py::handle t, TensorMemory& m) {
  if (!m.strides.empty() || !m.sizes.empty()) return;
  for (py::handle d : attr(t, names().shape)) m.sizes.push_back(d.cast<py::ssize_t>());
  for (py::handle d : call(t, names().stride)) m.strides.push_back(d.cast<py::ssize_t>());
}

// Whether the elements fill their span without gaps or overlap: the strides of
// the dimensions of more than one element, in increasing order, are 1, then
// each the previous times its size (channels_last and any other permutation).
bool dense(const std::vector<py::ssize_t>& sizes, const std::vector<py::ssize_t>& strides) {
  std::vector<std::pair<py::ssize_t, py::ssize_t>> dims;  // (stride, size)
  for (std::size_t i = 0; i < sizes.size(); ++i)
    if (sizes[i] > 1) dims.push_back({strides[i], sizes[i]});
  std::sort(dims.begin(), dims.end());
  py::ssize_t expected = 1;
  for (const auto& d : dims) {
    if (d.first != expected) return false;
    expected *= d.second;
  }
  return true;
}

// The memory of torch tensor `t`, or a TypeError / ValueError naming it
// (`name()`, built only on the error path). A tensor with torch's negation bit
// (torch._neg_view) holds -x as x: refused here (its readers resolve it first).
template <class Name>
TensorMemory tensor_memory(py::handle given, const TorchTypes& types, const Name& name) {
  const Names& n = names();
  const py::object local = local_tensor(types, given);
  const py::handle t = local;
  if (!PyObject_TypeCheck(t.ptr(), types.tensor_base))
    throw_type_error(name() + " must be a torch.Tensor, got " + type_name(t));
  const py::object layout = attr(t, n.layout);
  if (!layout.is(types.strided))
    throw_type_error(name() + " is a " + str(layout) + " tensor; fastopt.torch takes dense gradients and parameters");
  if (attr(t, n.is_cpu).ptr() != Py_True)
    throw_value_error(name() + " is on " + str(attr(t, n.device)) + "; fastopt.torch updates CPU tensors");
  const py::object dtype = attr(t, n.dtype);
  int d = 0;
  while (d < 5 && !dtype.is(types.dtypes[d])) ++d;
  if (d == 5)
    throw_type_error(name() + " has dtype " + str(dtype) +
                     "; fastopt.torch takes float32, float64, float16 or bfloat16 (and uint8 8-bit state)");
  TensorMemory out{};
  out.contiguous = call_true(t, n.is_contiguous);
  if (!out.contiguous) add_layout(t, out);
  if (!out.contiguous && !dense(out.sizes, out.strides))
    throw_value_error(name() + " is not contiguous, nor dense in another order (as channels_last is); "
                      "fastopt.torch updates tensors in place and will not copy (an update of a copy would be lost)");
  if (call_true(t, n.is_neg))
    throw_value_error(name() + " has torch's negation bit set (a torch._neg_view of other memory); its memory "
                      "holds the negated values: pass t.resolve_neg()");
  const Py_ssize_t numel = PyLong_AsSsize_t(call(t, n.numel).ptr());
  if (numel < 0) throw py::error_already_set();
  const DType dt = static_cast<DType>(d);
  void* data = data_ptr(t);
  if (numel > 0 && data == nullptr) throw_value_error(name() + " has no storage (data_ptr() is 0)");
  if (reinterpret_cast<std::uintptr_t>(data) % dtype_size(dt) != 0)
    throw_value_error(name() + " is not aligned to its dtype");
  out.data = data;
  out.numel = static_cast<std::size_t>(numel);
  out.dtype = dt;
  return out;
}

std::string shape_of(const TensorMemory& m) {
  std::string s = "(";
  for (std::size_t i = 0; i < m.sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(m.sizes[i]);
  return s + (m.sizes.size() == 1 ? ",)" : ")");
}

std::string strides_str(const TensorMemory& m) {
  std::string s = "(";
  for (std::size_t i = 0; i < m.strides.size(); ++i) s += (i ? ", " : "") + std::to_string(m.strides[i]);
  return s + (m.strides.size() == 1 ? ",)" : ")");
}

std::string param_name(std::uint32_t group, std::uint32_t position) {
  return "param_groups[" + std::to_string(group) + "]['params'][" + std::to_string(position) + "]";
}

// A step count as torch keeps it: a one-element float32/float64 tensor (or an
// integer one, which torch also accepts). Its type for the driver (optim/step.hpp).
CountType count_type(const TorchTypes& types, py::handle step, const std::string& name) {
  if (!PyObject_TypeCheck(step.ptr(), types.tensor_base))
    throw_type_error(name + " must be a tensor, as torch keeps it; got " + type_name(step));
  const py::object dtype = attr(step, names().dtype);
  if (dtype.is(types.dtypes[0])) return CountType::float32;
  if (dtype.is(types.dtypes[1])) return CountType::float64;
  if (dtype.is(types.int_dtypes[0])) return CountType::int32;
  if (dtype.is(types.int_dtypes[1])) return CountType::int64;
  throw_type_error(name + " has dtype " + str(dtype) + "; a step count is a float32, float64, int32 or int64 tensor");
}

}  // namespace

// fastopt.torch's types tuple (see TorchTypes).
TorchTypes torch_types(py::handle types_obj) {
  if (!PyTuple_Check(types_obj.ptr())) throw_type_error("types: a tuple (see fastopt.torch._optimizer._torch_types)");
  const py::tuple t = py::reinterpret_borrow<py::tuple>(types_obj);
  if (t.size() != 8 || !PyType_Check(t[0].ptr())) throw_type_error("types: a tuple (see fastopt.torch._optimizer._torch_types)");
  TorchTypes types;
  types.tensor_base = reinterpret_cast<PyTypeObject*>(t[0].ptr());
  types.strided = t[1];
  const py::tuple dtypes = t[2], numpy_dtypes = t[3], ints = t[4];
  if (dtypes.size() != 5 || numpy_dtypes.size() != 5 || ints.size() != 2)
    throw_type_error("types: four float dtypes and uint8, their NumPy dtypes and two integer dtypes");
  for (int i = 0; i < 5; ++i) types.dtypes[i] = dtypes[i], types.numpy_dtypes[i] = numpy_dtypes[i];
  for (int i = 0; i < 2; ++i) types.int_dtypes[i] = ints[i];
  types.increment_version = t[5];
  types.inference_mode_enabled = t[6];
  if (!t[7].is_none()) {
    if (!PyType_Check(t[7].ptr())) throw_type_error("types: DTensor's class or None");
    types.dtensor = reinterpret_cast<PyTypeObject*>(t[7].ptr());
  }
  return types;
}

py::object local_tensor(const TorchTypes& types, py::handle t) {
  if (types.dtensor != nullptr && PyObject_TypeCheck(t.ptr(), types.dtensor)) return attr(t, names().local_tensor);
  return py::reinterpret_borrow<py::object>(t);
}

bool same_memory_order(const TensorMemory& a, const TensorMemory& b) {
  if (a.sizes != b.sizes) return false;
  for (std::size_t i = 0; i < a.sizes.size(); ++i)
    if (a.sizes[i] > 1 && a.strides[i] != b.strides[i]) return false;
  return true;
}

static Py_ssize_t numel_of(py::handle t) {
  const Py_ssize_t n = PyLong_AsSsize_t(call(t, names().numel).ptr());
  if (n < 0 && PyErr_Occurred()) throw py::error_already_set();
  return n;
}

TensorLayout::TensorLayout(py::handle t, void* data_, bool full)
    : tensor(py::reinterpret_borrow<py::object>(t)), data(data_), dtype(attr(t, names().dtype)), numel(numel_of(t)),
      strides(full ? call(t, names().stride) : py::none()) {}

bool TensorLayout::unchanged() const {
  const Names& n = names();
  if (data_ptr(tensor) != data || !attr(tensor, n.dtype).is(dtype) || numel_of(tensor) != numel) return false;
  if (strides.is_none()) return numel <= 1 || call_true(tensor, n.is_contiguous);  // one element: contiguous
  return equal(call(tensor, n.stride), strides) && !call_true(tensor, n.is_neg);
}

py::array tensor_array(const TorchTypes& types, py::handle given, const std::string& name) {
  const py::object local = local_tensor(types, given);
  const py::handle t = local;
  const TensorMemory m = tensor_memory(t, types, [&] { return name; });
  if (call_true(t, names().is_inference) &&
      checked(PyObject_CallNoArgs(types.inference_mode_enabled.ptr())).ptr() != Py_True)
    throw_value_error(name + " is an inference tensor (made under torch.inference_mode()); torch refuses to "
                      "update it in place outside inference mode, and so does fastopt.torch");
  const py::object dtype = types.numpy_dtypes[static_cast<int>(m.dtype)];
  if (dtype.is_none())
    throw_type_error(name + " is a bfloat16 tensor, which needs the ml_dtypes package: pip install \"fastopt[bf16]\"");
  // Dense in another order (channels_last): its memory as a vector, for the elementwise rules (the view checks
  // that the tensors stepped together share the order).
  std::vector<py::ssize_t> shape{static_cast<py::ssize_t>(m.numel)};
  if (m.contiguous) {
    shape.clear();
    for (py::handle d : attr(t, names().shape)) shape.push_back(d.cast<py::ssize_t>());
  }
  // An empty tensor may have no address; the array then has memory of its own, never read or written.
  return py::array(py::reinterpret_borrow<py::dtype>(dtype), shape, m.numel > 0 ? m.data : nullptr, t);
}

TorchView::TorchView(py::object types, py::object group, const py::sequence& params, const py::sequence& groups,
                     const py::sequence& positions, py::object state, const py::sequence& state_tensors,
                     const py::sequence& steps, const py::sequence& fixed_steps, const py::sequence& copies,
                     py::object counter)
    : types_(torch_types(types)), group_obj_(group), group_(&group.cast<TensorGroup&>()), state_(std::move(state)) {
  const std::size_t n = params.size();
  if (n != group_->size() || groups.size() != n || positions.size() != n || state_tensors.size() != n ||
      steps.size() != n || fixed_steps.size() != n || copies.size() != n)
    throw_value_error("TorchView: one entry per parameter of the group is needed");
  if (!PyDict_Check(state_.ptr())) throw_type_error("state must be a dict");
  counter_ = py::array_t<std::int64_t>::ensure(counter);
  if (!counter_ || !counter.is(counter_) || counter_.ndim() != 0 || !counter_.writeable())
    throw_type_error("counter must be a writeable 0-d int64 array");
  const RuleSpec& spec = *group_->spec();
  entries_.reserve(n);
  // The memory each tensor had when the group's arrays were made of it.
  auto record = [&](py::handle given, const void* expected, std::size_t numel, const std::string& what, bool full) {
    const py::object t = local_tensor(types_, given);
    void* data = data_ptr(t);
    if (numel > 0 && data != expected) throw_value_error(what + " is not the memory of the group's array");
    layouts_.emplace_back(t, data, full);
    written_.append(t);
  };
  for (std::size_t i = 0; i < n; ++i) {
    Entry e;
    e.param = params[i];
    e.group = static_cast<std::uint32_t>(to_int(groups[i], "groups"));
    e.position = static_cast<std::uint32_t>(to_int(positions[i], "positions"));
    const std::string name = param_name(e.group, e.position);
    const TensorBuffers& b = group_->buffers(i);
    record(e.param, b.slot[kParam], b.n, name, true);
    e.memory = tensor_memory(e.param, types_, [&] { return name; });
    add_layout(local_tensor(types_, e.param), e.memory);
    // Elementwise buffers stepped over their memory must hold the parameter's elements in its order.
    // Returns whether `t` is contiguous (else its strides are checked at every step).
    auto require_order = [&](py::handle t, const std::string& what) -> bool {
      TensorMemory m = tensor_memory(t, types_, [&] { return what; });
      add_layout(local_tensor(types_, t), m);
      if (m.sizes == e.memory.sizes && !same_memory_order(m, e.memory))
        throw_value_error(what + " has strides " + strides_str(m) + " but " + name + " has strides " +
                          strides_str(e.memory) + "; fastopt.torch steps them elementwise over their memory, "
                          "which needs one memory order (make the state with memory_format=torch.preserve_format)");
      return m.contiguous;
    };
    PyObject* dict = PyDict_GetItemWithError(state_.ptr(), e.param.ptr());
    if (dict == nullptr && PyErr_Occurred()) throw py::error_already_set();
    e.state = dict == nullptr ? py::none() : py::reinterpret_borrow<py::object>(dict);
    for (auto item : py::reinterpret_borrow<py::dict>(state_tensors[i])) {
      const std::string s_name = "state['" + str(item.first) + "'] of " + name;
      const void* memory = nullptr;
      std::size_t numel = 0;
      bool found = false;
      for (std::size_t k = 0; k < spec.states.size(); ++k) {
        const bool scalar = spec.is_scalar(k);
        if (!scalar && b.absmax[k] != nullptr && str(item.first) == std::string(spec.states[k].name) + "_absmax") {
          found = true;  // the absmax of 8-bit state k
          memory = b.absmax[k];
          numel = state_length(StateShape::block, b);
          continue;
        }
        if (str(item.first) != spec.states[k].name) continue;
        found = true;
        memory = scalar ? b.scalar[spec.scalar_index(k)] : b.slot[kFirstState + static_cast<int>(k)];
        numel = state_length(spec.states[k].shape, b);
      }
      if (!found) throw_value_error(s_name + ": the rule keeps no such state");
      const bool contiguous = numel <= 1 || require_order(item.second, s_name);
      record(item.second, memory, numel, s_name, /*full=*/!contiguous);
      e.state_tensors.emplace_back(py::reinterpret_borrow<py::object>(item.first),
                                   py::reinterpret_borrow<py::object>(item.second));
    }
    const py::object step = local_tensor(types_, steps[i]);
    if (!step.is_none()) {
      const std::string s_name = "state['step'] of " + name;
      e.step_count.type = count_type(types_, step, s_name);
      if (attr(step, names().is_cpu).ptr() != Py_True || !call_true(step, names().is_contiguous) ||
          PyLong_AsSsize_t(call(step, names().numel).ptr()) != 1 || call_true(step, names().is_neg))
        throw_value_error(s_name + " must be a one-element CPU tensor, as torch keeps it");
      e.step_tensor = py::reinterpret_borrow<py::object>(step);
      e.step_count.data = data_ptr(step);
      layouts_.emplace_back(step, e.step_count.data, false);
      written_.append(step);
    } else {
      e.step_tensor = py::none();
    }
    e.fixed = !fixed_steps[i].is_none();
    if (e.fixed) e.fixed_step = to_int(fixed_steps[i], "fixed_steps");
    else if (e.step_tensor.is_none()) throw_value_error(name + ": the rule counts steps but there is no state['step']");
    if (!copies[i].is_none()) {
      require_order(copies[i], "the copy of " + name);
      record(copies[i], b.slot[kParamCopy], b.n, "the copy of " + name, true);
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

// Every parameter, state, step and copy tensor is re-validated by address,
// dtype, shape and strides before each step: the view's arrays keep the tensor
// objects alive, not their memory, which share_memory_(), set_(), `.data =`
// or a storage's resize_() may move (see TensorLayout).
bool TorchView::memory_unchanged() const {
  for (const TensorLayout& l : layouts_)
    if (!l.unchanged()) return false;
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
    if (list == nullptr || !(PyList_Check(list) || PyTuple_Check(list))) return py::none();
    const py::object params = py::reinterpret_borrow<py::object>(list);  // held while its items are read
    const Py_ssize_t size = PySequence_Fast_GET_SIZE(list);
    for (Py_ssize_t pi = 0; pi < size; ++pi) {
      // Reading .grad may run Python code (a tensor subclass), which may change the list.
      if (PySequence_Fast_GET_SIZE(list) != size) return py::none();
      const py::object p = py::reinterpret_borrow<py::object>(PySequence_Fast_GET_ITEM(list, pi));
      py::object grad = attr(p, names().grad);
      if (grad.is_none()) continue;
      if (k == n || !p.is(entries_[k].param) || static_cast<std::uint32_t>(gi) != entries_[k].group ||
          static_cast<std::uint32_t>(pi) != entries_[k].position)
        return py::none();
      grads.push_back(std::move(grad));
      ++k;
    }
  }
  if (k != n || !state_unchanged(state) || !memory_unchanged()) return py::none();

  // Step numbers: the rule's (torch's state["step"] + 1, or the fixed one),
  // and the one stochastic rounding hashes (state["step"] + 1, or the
  // optimizer's counter + 1), which is new at every step.
  const py::tuple first = first_steps.is_none() ? py::tuple() : py::tuple(py::reinterpret_borrow<py::object>(first_steps));
  if (!first_steps.is_none() && first.size() != n) throw_value_error("first_steps: one entry per parameter");
  // The counts an applied step increments (by the driver): every state["step"], and the counter.
  std::vector<StepCount> counts;
  counts.reserve(n + 1);
  const StepCount counter{counter_.mutable_data(), CountType::int64};
  const std::int64_t counter_taken =
      checked_steps_taken(counter, [] { return std::string("the optimizer's step counter"); });
  std::vector<std::int64_t> step_of(n), rounding_of(n);
  for (std::size_t i = 0; i < n; ++i) {
    const Entry& e = entries_[i];
    std::int64_t counted = counter_taken + 1;
    if (!e.step_tensor.is_none()) {
      auto name = [&] { return "state['step'] of " + param_name(e.group, e.position); };
      counted = checked_steps_taken(e.step_count, name) + 1;
      counts.push_back(e.step_count);
    }
    step_of[i] = !e.fixed ? counted : first_steps.is_none() ? e.fixed_step : to_int(first[i], "first_steps");
    rounding_of[i] = counted;
  }
  counts.push_back(counter);

  // One set of coefficients per (param group, step number, rounding step) in use.
  const RuleSpec& spec = *group_->spec();
  if (!PyList_Check(hypers.ptr())) throw_type_error("hypers must be a list with one dict per parameter group");
  const py::list hyper_list = py::reinterpret_borrow<py::list>(hypers);
  std::vector<std::array<double, kMaxHypers>> values(group_->group_count());
  std::vector<bool> have_values(values.size(), false);
  struct Key {
    std::uint32_t group;
    std::int64_t step, rounding;
    bool operator!=(const Key& o) const { return group != o.group || step != o.step || rounding != o.rounding; }
  };
  std::vector<Key> sets;
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
    const Key key{g, step_of[i], rounding_of[i]};
    if (sets.empty() || sets[last] != key) {
      last = 0;
      while (last < sets.size() && sets[last] != key) ++last;
      if (last == sets.size()) {
        sets.push_back(key);
        coefficients.push_back(checked_coefficients(spec, values[g].data(), key.step));
        set_rounding(coefficients.back(), seed);
        coefficients.back().rounding_step = key.rounding;
      }
    }
    tensors[i] = group_->buffers(i);
    tensors[i].group = static_cast<std::uint32_t>(last);
  }

  for (std::size_t i = 0; i < n; ++i) {
    const Entry& e = entries_[i];
    auto name = [&] { return "the gradient of " + param_name(e.group, e.position); };
    // A gradient with the negation bit is read through a resolved copy (it is only read).
    grads[i] = local_tensor(types_, grads[i]);
    if (PyObject_TypeCheck(grads[i].ptr(), types_.tensor_base) && call_true(grads[i], names().is_neg))
      grads[i] = call(grads[i], names().resolve_neg);
    TensorMemory m = tensor_memory(grads[i], types_, name);
    if (!(m.contiguous && e.memory.contiguous)) {
      add_layout(grads[i], m);
      if (!same_memory_order(m, e.memory))
        throw_value_error(name() + " has shape " + shape_of(m) + " and strides " + strides_str(m) + " but the parameter "
                          "has shape " + shape_of(e.memory) + " and strides " + strides_str(e.memory) +
                          "; fastopt.torch steps them elementwise over their memory, which needs one memory order");
    }
    group_->bind_grad(tensors[i], m.dtype, m.data, m.numel, name);
  }
  // An applied step increments the counts (in the driver) and then, before any
  // Python code can run, autograd's version counters (as torch.optim's in-place
  // updates bump them, so a graph saved before the step refuses to backpropagate
  // through the old values).
  const bool applied =
      group_->step_bound(spec.rule, std::move(coefficients), tensors, skip_if_nonfinite, phase, counts);
  if (applied) {
    stepped_ = true;
    PyObject* bumped = PyObject_CallOneArg(types_.increment_version.ptr(), written_.ptr());
    if (bumped == nullptr) PyErr_Clear();  // cannot fail for these tensors; if it did, the step still stands
    Py_XDECREF(bumped);
  }
  return py::make_tuple(applied, phase == nullptr ? 0.0 : phase->norm);
}

}  // namespace fastopt::bindings
