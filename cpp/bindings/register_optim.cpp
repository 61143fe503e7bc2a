// Python bindings of the optimizer kernels: argument checking, GIL release,
// registration. One binding serves every rule of the registry (optim.hpp):
// rules, hyperparameters and state buffers are looked up by name, so adding a
// rule needs nothing here. Every check runs before any array is written.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "loss_args.hpp"
#include "optim/lbfgs.hpp"
#include "optim/quantization.hpp"
#include "optim/registry.hpp"
#include "optim/step.hpp"
#include "register.hpp"
#include "rule_args.hpp"
#include "tensor_group.hpp"

namespace fastopt::bindings {
namespace {

struct SlotArg {
  const char* name;
  py::handle obj;
  bool used;  // false: an optional buffer this step does not need (left unchecked)
  StateShape shape = StateShape::elementwise;
  py::handle absmax = py::none();  // of 8-bit state: "<name>_absmax"
};

// One tensor: slot 0 is the parameter, slot 1 the (read-only) gradient, then
// the elementwise states; kParamCopy the optional low-precision copy;
// `scalars` the per-tensor states, in the rule's order. The caller's
// arguments hold a reference to every array for the whole call.
// `run(t)` runs on the checked buffers, the GIL released.
template <class Run>
void run_single(const RuleSpec* spec, const std::vector<SlotArg>& slots, const std::vector<SlotArg>& scalars, Run run) {
  std::vector<ByteRange> ranges;
  TensorBuffers t;
  const ArgName param_name{slots[kParam].name};
  const py::array param = check_param(slots[kParam].obj, param_name, &t.storage.param, &ranges);
  t.slot[kParam] = const_cast<void*>(param.data());
  const std::vector<std::size_t> dims = dims_of(param);
  set_matrix_view(t, dims.data(), dims.size());
  std::vector<py::array> arrays(slots.size());
  TensorArrays named{&param, param_name};
  t.storage.state = t.storage.param == DType::f64 ? DType::f64 : DType::f32;  // until a state array says
  for (std::size_t s = 1; s < slots.size(); ++s) {
    if (!slots[s].used) continue;
    const ArgName name{slots[s].name};
    const StateShape shape = slots[s].shape;
    if (!keeps_state(shape, t)) {  // a factored state, or its stand-in, that this parameter's shape has not
      if (!slots[s].obj.is_none())
        throw_value_error(name.str() + " must be None: a " + state_shape_name(shape) +
                          " state is kept by parameters of " +
                          (shape == StateShape::unfactored ? "fewer than 2" : "2 or more") + " dimensions, and " +
                          param_name.str() + " has shape " + shape_str(param));
      continue;
    }
    if (shape != StateShape::elementwise && slots[s].obj.is_none())
      throw_value_error(name.str() + " is required for " + param_name.str() + " of shape " + shape_str(param));
    DType dtype;
    arrays[s] = s >= kFirstState && s < kStateEnd
                    ? check_state(slots[s].obj, name, shape, param, param_name, &dtype, &ranges)
                    : check_like(slots[s].obj, name, /*writable=*/s != kGrad, param, param_name, &dtype, &ranges);
    t.slot[s] = const_cast<void*>(arrays[s].data());
    if (s == kGrad) {
      t.storage.grad = dtype, named.grad = &arrays[s], named.grad_name = name;
    } else if (static_cast<int>(s) == kParamCopy) {
      t.storage.copy = dtype, named.copy = &arrays[s], named.copy_name = name;
    } else if (named.state == nullptr) {
      t.storage.state = dtype, named.state = &arrays[s], named.state_name = name;
      require_storage(t.storage, named);  // so the first state array of a wrong dtype is the one named
    } else if (dtype != t.storage.state) {
      throw_type_error(name.str() + " has dtype " + dtype_name(dtype) + " but " + named.state_name.str() +
                       " has dtype " + dtype_name(t.storage.state) + ": all state buffers have one dtype");
    }
  }
  require_storage(t.storage, named);
  // 8-bit state: a rule that stores it, each state's codes with their absmax.
  std::vector<py::array> absmax_arrays;
  std::vector<std::string> absmax_names;  // the ArgNames in `ranges` point into these
  absmax_names.reserve(kStateEnd - kFirstState);
  for (std::size_t s = kFirstState; s < slots.size() && static_cast<int>(s) < kStateEnd; ++s) {
    if (!slots[s].used) continue;  // a buffer this step does not use: its absmax is not read either
    absmax_names.push_back(std::string(slots[s].name) + "_absmax");
    const std::string& absmax_name = absmax_names.back();
    const bool has_codes = t.slot[s] != nullptr && t.storage.quantized();
    if (!has_codes) {
      if (!slots[s].absmax.is_none())
        throw_value_error(absmax_name + " is given but " + slots[s].name +
                          " is not 8-bit state (uint8 codes): give it only with uint8 " + slots[s].name);
      continue;
    }
    if (spec != nullptr && !spec->stores_8bit())
      throw_type_error(std::string(slots[s].name) + " has dtype uint8 (8-bit state), but " + spec->name +
                       " keeps no state that 8 bits can hold");
    if (slots[s].absmax.is_none())
      throw_value_error(absmax_name + " is required with 8-bit " + slots[s].name + " (uint8 codes)");
    DType dtype;
    absmax_arrays.push_back(
        check_state(slots[s].absmax, ArgName{absmax_name.c_str()}, StateShape::block, param, param_name, &dtype, &ranges));
    t.absmax[s - kFirstState] = static_cast<float*>(absmax_arrays.back().mutable_data());
  }
  std::vector<py::array> scalar_arrays;
  for (std::size_t k = 0; k < scalars.size(); ++k) {
    scalar_arrays.push_back(check_scalar_state(scalars[k].obj, ArgName{scalars[k].name}, &t.scalar_dtype[k], &ranges));
    t.scalar[k] = scalar_arrays.back().mutable_data();
  }
  require_disjoint(ranges);
  t.n = static_cast<std::size_t>(param.size());
  py::gil_scoped_release release;
  run(t);
}

// The step number (an int); 0 when not given to a rule that does not always
// use one (sgd needs it only with dampening, and says so).
std::int64_t step_of(const RuleSpec& spec, py::handle step) {
  if (!spec.uses_step && step.is_none()) return 0;
  return to_int(step, "step");
}

// One step of `rule` on one tensor: arrays {"p": ..., "g": ..., <state arg>: ...}.
// {"p_copy": ...} adds the parameter copy of master-weight mode.
void single_step(py::handle rule, py::handle arrays_obj, py::handle hypers, py::handle step, py::handle seed) {
  const RuleSpec& spec = check_rule(rule);
  if (!PyDict_Check(arrays_obj.ptr())) throw_type_error("arrays must be a dict, got " + type_name(arrays_obj));
  const py::dict arrays = py::reinterpret_borrow<py::dict>(arrays_obj);
  const auto values = hyper_values(spec, hypers);
  StepCoefficients c = checked_coefficients(spec, values.data(), step_of(spec, step));
  set_rounding(c, seed);
  auto get = [&](const char* key) -> py::handle {
    PyObject* v = PyDict_GetItemString(arrays.ptr(), key);
    return v == nullptr ? py::handle(Py_None) : py::handle(v);
  };
  std::vector<SlotArg> slots{{"p", get("p"), true}, {"g", get("g"), true}}, scalars;
  for (std::size_t i = 0; i < spec.states.size(); ++i) {
    const StateSpec& s = spec.states[i];
    const bool used = spec.needs_state(i, values.data());
    if (used && s.needed_when != nullptr && get(s.arg).is_none())
      throw_value_error(std::string(s.arg) + " is required when " + s.needed_when + " is set");
    const std::string absmax = std::string(s.arg) + "_absmax";
    (spec.is_scalar(i) ? scalars : slots).push_back({s.arg, get(s.arg), used, s.shape, get(absmax.c_str())});
  }
  if (!get("p_copy").is_none()) {
    slots.resize(kParamCopy, SlotArg{"", py::none(), false});
    slots.push_back({"p_copy", get("p_copy"), true});
  }
  run_single(&spec, slots, scalars, [&](const TensorBuffers& t) { run_step(spec.rule, &t, 1, &c); });
}

// The state buffers of a group by torch's names: {name: [one array per parameter] or None}.
std::vector<StateArrays> named_states(const RuleSpec& spec, py::handle states_obj) {
  if (!PyDict_Check(states_obj.ptr())) throw_type_error("states must be a dict, got " + type_name(states_obj));
  const py::dict states = py::reinterpret_borrow<py::dict>(states_obj);
  std::vector<StateArrays> out;
  for (auto item : states) {
    const std::string name = py::str(item.first);
    int slot = -1, scalar = -1;
    bool absmax = false;
    for (std::size_t i = 0; i < spec.states.size(); ++i) {
      if (name == spec.states[i].name) {
        if (spec.is_scalar(i)) scalar = spec.scalar_index(i);
        else slot = kFirstState + static_cast<int>(i);
      } else if (!spec.is_scalar(i) && name == std::string(spec.states[i].name) + "_absmax") {
        slot = kFirstState + static_cast<int>(i), absmax = true;
      }
    }
    if (slot < 0 && scalar < 0) throw_value_error(std::string(spec.name) + " keeps no state named '" + name + "'");
    out.push_back({slot, name, py::reinterpret_borrow<py::object>(item.second), scalar, absmax});
  }
  return out;
}

// A per-group argument: the list's i-th entry, or the value itself for a
// group count of one given without a list.
py::object per_group(py::handle value, std::size_t groups, const char* name) {
  if (PyList_Check(value.ptr()) || PyTuple_Check(value.ptr())) {
    const py::sequence seq = py::reinterpret_borrow<py::sequence>(value);
    if (seq.size() != groups)
      throw_value_error(std::string(name) + " has " + std::to_string(seq.size()) + " entries but there are " +
                        std::to_string(groups) + " parameter groups");
    return py::tuple(seq);
  }
  if (groups != 1) throw_type_error(std::string(name) + " must be a list with one entry per parameter group");
  return py::make_tuple(value);
}

// The step counts of fastopt.optim: a writeable, C-contiguous 1-d int64 array with
// one count per parameter group (steps taken). The driver increments them with an
// applied step before control returns to Python (optim/step.hpp, run_counted_step),
// so an interrupt cannot separate the update from its count.
std::vector<StepCount> group_counts(py::handle counts, std::size_t groups) {
  if (counts.is_none()) return {};
  auto a = py::array_t<std::int64_t>::ensure(counts);
  if (!a || !counts.is(a) || a.ndim() != 1 || static_cast<std::size_t>(a.shape(0)) != groups || !a.writeable() ||
      !(a.flags() & py::array::c_style))
    throw_type_error("counts must be a writeable int64 array with one entry per parameter group");
  std::vector<StepCount> out(groups);
  for (std::size_t g = 0; g < groups; ++g) {
    out[g] = {a.mutable_data(static_cast<py::ssize_t>(g)), CountType::int64};
    checked_steps_taken(out[g], [g] { return "counts[" + std::to_string(g) + "]"; });
  }
  return out;
}

// One step's coefficients per group, every value checked before any is used, and
// the counts the step increments. `step`: the step number of each group, or None
// with `counts` (group_counts), whose steps taken + 1 it then is.
struct GroupStep {
  std::vector<StepCoefficients> coefficients;
  std::vector<StepCount> counts;
};
GroupStep group_step(const TensorGroup& grp, py::handle hypers, py::handle step, py::handle seeds,
                     py::handle counts) {
  const RuleSpec& spec = *grp.spec();
  const std::size_t groups = grp.group_count();
  const py::tuple h = per_group(hypers, groups, "hypers");
  GroupStep out;
  out.counts = group_counts(counts, groups);
  py::tuple steps;
  if (counts.is_none()) {
    steps = per_group(step, groups, "step");
  } else {
    if (!step.is_none()) throw_type_error("step and counts: give one of them");
    steps = py::tuple(groups);
    for (std::size_t g = 0; g < groups; ++g) steps[g] = py::int_(steps_taken(out.counts[g]) + 1);
  }
  const py::tuple seed = seeds.is_none() ? py::tuple() : py::tuple(per_group(seeds, groups, "stochastic_rounding_seeds"));
  for (std::size_t g = 0; g < groups; ++g) {
    const auto values = hyper_values(spec, h[g]);
    out.coefficients.push_back(checked_coefficients(spec, values.data(), step_of(spec, steps[g])));
    set_rounding(out.coefficients.back(), seeds.is_none() ? py::handle(Py_None) : py::handle(seed[g]));
    grp.require_state_for(g, values.data());
  }
  return out;
}

// L-BFGS's two-loop recursion into `d` (optim.hpp, lbfgs_direction): g, every
// s_i and y_i read, float32 or float64 like d, d's shape, contiguous; d written
// and sharing memory with none of them; one finite number per pair in rho.
py::list lbfgs_direction_binding(py::handle g, py::handle s_obj, py::handle y_obj, py::handle rho_obj,
                                 py::handle h_obj, py::handle d_obj) {
  std::vector<ByteRange> written, read;
  DType dtype;
  const ArgName d_name{"d"};
  const py::array d = check_param(d_obj, d_name, &dtype, &written);
  if (dtype != DType::f32 && dtype != DType::f64)
    throw_type_error(std::string("d must have dtype float32 or float64, got ") + dtype_name(dtype));
  auto vector = [&](py::handle obj, const ArgName& name) {
    DType dt;
    py::array a = check_like(obj, name, false, d, d_name, &dt, &read);
    if (dt != dtype)
      throw_type_error(name.str() + " has dtype " + dtype_name(dt) + " but d has dtype " + dtype_name(dtype));
    return a;
  };
  auto sequence = [](py::handle obj, const char* name) {
    if (!(PyList_Check(obj.ptr()) || PyTuple_Check(obj.ptr())))
      throw_type_error(std::string(name) + " must be a list, got " + type_name(obj));
    return py::tuple(py::reinterpret_borrow<py::object>(obj));
  };
  const py::tuple s_items = sequence(s_obj, "s"), y_items = sequence(y_obj, "y"), rho_items = sequence(rho_obj, "rho");
  const std::size_t m = s_items.size();
  if (y_items.size() != m || rho_items.size() != m)
    throw_value_error("s, y and rho must have one entry per correction pair (" + std::to_string(m) + " in s, " +
                      std::to_string(y_items.size()) + " in y, " + std::to_string(rho_items.size()) + " in rho)");
  std::vector<py::array> held{vector(g, ArgName{"g"})};
  std::vector<const void*> s_data(m), y_data(m);
  std::vector<double> rho(m), al(m);
  for (std::size_t i = 0; i < m; ++i) {
    held.push_back(vector(s_items[i], ArgName("s", static_cast<std::ptrdiff_t>(i))));
    s_data[i] = held.back().data();
    held.push_back(vector(y_items[i], ArgName("y", static_cast<std::ptrdiff_t>(i))));
    y_data[i] = held.back().data();
    const std::string rho_name = "rho[" + std::to_string(i) + "]";
    rho[i] = to_double(rho_items[i], rho_name.c_str());
    if (!std::isfinite(rho[i])) throw_value_error(rho_name + " must be finite");
  }
  const double h = to_double(h_obj, "h");
  if (!std::isfinite(h)) throw_value_error("h must be finite");
  for (const ByteRange& r : read) require_outside(r, written);
  const std::size_t n = static_cast<std::size_t>(d.size());
  void* out = const_cast<void*>(d.data());
  {
    py::gil_scoped_release release;
    lbfgs_direction(dtype, n, held[0].data(), s_data.data(), y_data.data(), rho.data(), m, h, out, al.data());
  }
  py::list result;
  for (double a : al) result.append(a);
  return result;
}

}  // namespace

void register_optim(py::module_& m) {
  using py::arg;

  m.def("rules", &describe_rules,
        "The registry of update rules: for each, its name, whether it uses the step number, its\n"
        "hyperparameters (name, default, range, per_step) and state buffers (name, functional argument,\n"
        "the hyperparameter they are needed for, the one they start at).");
  m.def("step", [](py::object rule, py::object arrays, py::object hypers, py::object step, py::object seed) {
    single_step(rule, arrays, hypers, step, seed);
  }, arg("rule"), arg("arrays"), arg("hypers"), arg("step") = py::none(),
     arg("stochastic_rounding_seed") = py::none(),
     "One step of `rule` in place on one tensor: arrays {'p', 'g', <state arguments>, optional 'p_copy'}.\n"
     "float16/bfloat16 parameters are rounded to nearest even, or stochastically when a seed is given.");
  m.def("check_hyperparameters", [](py::object rule, py::object hypers) {
    const RuleSpec& spec = check_rule(rule);
    const auto values = hyper_values(spec, hypers);
    checked_coefficients(spec, values.data(), 1);
  }, arg("rule"), arg("hypers"), "TypeError / ValueError naming the first invalid hyperparameter.");
  m.def("needed_states", [](py::object rule, py::object hypers) {
    const RuleSpec& spec = check_rule(rule);
    const auto values = hyper_values(spec, hypers);
    py::list out;
    for (std::size_t i = 0; i < spec.states.size(); ++i)
      if (spec.needs_state(i, values.data())) out.append(spec.states[i].name);
    return out;
  }, arg("rule"), arg("hypers"), "Names of the state buffers the rule uses with these hyperparameters.");

  m.def("lbfgs_direction", &lbfgs_direction_binding, arg("g"), arg("s"), arg("y"), arg("rho"), arg("h"), arg("d"),
        "L-BFGS's search direction d = -H·g by the two-loop recursion (torch.optim.LBFGS's), in place\n"
        "into d; s, y: the correction pairs oldest first, rho[i] = 1/(y_i·s_i), h the initial scaling.\n"
        "Returns al (one number per pair). Bitwise the same for any thread count and ISA.");
  // --- 8-bit state (optim/quantization.hpp) --------------------------------------
  m.attr("quant_block_elements") = kQuantBlock;
  m.def("quantize_blockwise", [](py::object x_obj, py::object is_signed) {
    const QuantMap map = to_bool(is_signed, "signed") ? QuantMap::signed_dynamic : QuantMap::unsigned_dynamic;
    DType dtype;
    const py::array x = float_array(x_obj, "x", 0, &dtype);  // a contiguous, aligned copy if it is not
    if (dtype != DType::f32) throw_type_error("x must have dtype float32, got float64");
    const std::size_t n = static_cast<std::size_t>(x.size());
    py::array_t<std::uint8_t> codes(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    py::array_t<float> absmax(static_cast<py::ssize_t>(quant_blocks(n)));
    {
      py::gil_scoped_release release;
      quantize_buffer(static_cast<const float*>(x.data()), codes.mutable_data(), absmax.mutable_data(), n, map);
    }
    return py::make_tuple(codes, absmax);
  }, arg("x"), arg("signed"),
     "8-bit codes of a float32 array and the float32 absmax of each block of 256 elements:\n"
     "(codes, absmax), the codes with x's shape. signed: the signed dynamic map, else the unsigned one.");
  m.def("dequantize_blockwise", [](py::object codes_obj, py::object absmax_obj, py::object is_signed) {
    const QuantMap map = to_bool(is_signed, "signed") ? QuantMap::signed_dynamic : QuantMap::unsigned_dynamic;
    const py::array c = as_ndarray(codes_obj, ArgName{"codes"});
    if (c.dtype().num() != py::detail::npy_api::NPY_UBYTE_)
      throw_type_error("codes must have dtype uint8, got " + py::str(py::handle(c.dtype())).cast<std::string>());
    auto codes = py::array_t<std::uint8_t, py::array::c_style>::ensure(c);
    DType dtype;
    const py::array absmax = float_array(absmax_obj, "absmax", 0, &dtype);  // contiguous and aligned
    if (dtype != DType::f32) throw_type_error("absmax must have dtype float32, got float64");
    const std::size_t n = static_cast<std::size_t>(codes.size());
    if (absmax.ndim() != 1 || static_cast<std::size_t>(absmax.size()) != quant_blocks(n))
      throw_value_error("absmax must be 1-d with one number per block of 256 codes (" +
                        std::to_string(quant_blocks(n)) + "), got shape " + shape_str(absmax));
    py::array_t<float> out(std::vector<py::ssize_t>(codes.shape(), codes.shape() + codes.ndim()));
    {
      py::gil_scoped_release release;
      dequantize_buffer(codes.data(), static_cast<const float*>(absmax.data()), out.mutable_data(), n, map);
    }
    return out;
  }, arg("codes"), arg("absmax"), arg("signed"),
     "The float32 values of 8-bit codes: map[code] * absmax of its block (quantize_blockwise's inverse).");
  m.def("quant_map", [](py::object is_signed) {
    const QuantTable& t = quant_table(to_bool(is_signed, "signed") ? QuantMap::signed_dynamic : QuantMap::unsigned_dynamic);
    py::array_t<float> out(256);
    std::copy(t.value, t.value + 256, out.mutable_data());
    return out;
  }, arg("signed"), "The 256 values of the signed or unsigned dynamic quantization map, by code.");

  m.def("stream_probe", [](py::object p, py::object g, py::object states_obj) {
    if (!(py::isinstance<py::list>(states_obj) || py::isinstance<py::tuple>(states_obj)))
      throw_type_error("states must be a list of arrays, got " + type_name(states_obj));
    const py::sequence states = states_obj;
    if (states.size() > static_cast<std::size_t>(kStateEnd - kFirstState)) throw_value_error("states: at most 3 arrays");
    static const char* names[] = {"states[0]", "states[1]", "states[2]"};
    std::vector<SlotArg> slots{{"p", p, true}, {"g", g, true}};
    for (std::size_t s = 0; s < states.size(); ++s) slots.push_back({names[s], states[s], true});
    run_single(nullptr, slots, {}, [](const TensorBuffers& t) { run_stream_probe(&t, 1); });
  }, arg("p"), arg("g"), arg("states"),
     "Roofline probe: p += g and s += g for each s in states, threaded like a step.\n"
     "Moves the bytes of an optimizer step with the same buffers.");

  // --- multi-tensor steps (fastopt.optim) ---------------------------------------
  py::class_<TensorGroup>(m, "TensorGroup",
                          "Arrays of a multi-tensor optimizer, checked once; steps are one native call.")
      .def(py::init([](py::object rule, py::sequence params, py::object states, py::object grads, py::object keys,
                       py::object groups, py::object copies) {
             const RuleSpec& spec = check_rule(rule);
             return new TensorGroup(&spec, params, named_states(spec, states), grads, keys, groups, copies);
           }),
           arg("rule"), arg("params"), arg("states"), arg("grads") = py::none(), arg("keys") = py::none(),
           arg("groups") = py::none(), arg("param_copies") = py::none(),
           "`groups`: the parameter group of each parameter (default: all in group 0);\n"
           "`param_copies`: per parameter, None or a float16/bfloat16 array the updated parameter is\n"
           "rounded into after every step (float32 parameters: master-weight mode).")
      .def_static("probe", [](py::sequence params, py::sequence states, py::object grads, py::object copies,
                              py::object absmax) {
        if (states.size() > static_cast<std::size_t>(kStateEnd - kFirstState)) throw_value_error("states: at most 3");
        const py::sequence scales = absmax.is_none() ? py::sequence(py::list()) : py::sequence(absmax);
        if (!absmax.is_none() && scales.size() != states.size())
          throw_value_error("absmax must have one entry per state buffer");
        std::vector<StateArrays> slots;
        for (std::size_t s = 0; s < states.size(); ++s) {
          slots.push_back({kFirstState + static_cast<int>(s), "states[" + std::to_string(s) + "]",
                           py::reinterpret_borrow<py::object>(states[s])});
          if (!absmax.is_none())
            slots.push_back({kFirstState + static_cast<int>(s), "absmax[" + std::to_string(s) + "]",
                             py::reinterpret_borrow<py::object>(scales[s]), -1, true});
        }
        return new TensorGroup(nullptr, params, std::move(slots), grads, py::none(), py::none(), copies);
      }, arg("params"), arg("states"), arg("grads") = py::none(), arg("param_copies") = py::none(),
         arg("absmax") = py::none(),
         "A group for the roofline probe only: `states` lists the state buffers' arrays; with 8-bit\n"
         "state (uint8 codes), `absmax` lists each one's absmax arrays.")
      .def_static("check_params", &TensorGroup::check_params, arg("params"), arg("keys") = py::none(),
                  "The checks of the constructor on the parameters alone (before state is allocated).")
      .def("__len__", &TensorGroup::size)
      .def("require_unchanged", &TensorGroup::require_unchanged)
      .def("release_after_fork", &TensorGroup::release_after_fork,
           "In a forked child: release the claim of a step a thread of the parent was running.")
      .def("step", [](TensorGroup& grp, py::object hypers, py::object step, py::object grads, py::object skip,
                      py::object seeds, py::object counts) {
        if (grp.spec() == nullptr) throw_value_error("this group is for the roofline probe only");
        GroupStep s = group_step(grp, hypers, step, seeds, counts);
        const bool skip_nonfinite = to_bool(skip, "skip_if_nonfinite");
        return grp.step(grp.spec()->rule, std::move(s.coefficients), grads, skip_nonfinite, nullptr, s.counts);
      }, arg("hypers"), arg("step"), arg("grads"), arg("skip_if_nonfinite"),
         arg("stochastic_rounding_seeds") = py::none(), arg("counts") = py::none(),
         "One step of the rule over every tensor; False (nothing changed) when skipping non-finite\n"
         "gradients. With several groups, `hypers`, `step` and `stochastic_rounding_seeds` are lists\n"
         "with one entry per group (a seed of None: round to nearest even). With `counts` (an int64\n"
         "array of each group's steps taken; `step` None) the step numbers are counts + 1, and an\n"
         "applied step increments counts before it returns.")
      .def("offload_step", [](TensorGroup& grp, py::object hypers, py::object step, py::object grads,
                              py::object seeds, py::object grad_scale, py::object max_norm, py::object counts) {
        if (grp.spec() == nullptr) throw_value_error("this group is for the roofline probe only");
        GroupStep s = group_step(grp, hypers, step, seeds, counts);
        TensorGroup::GradientPhase phase = checked_phase(grad_scale, max_norm);
        const bool applied = grp.step(grp.spec()->rule, std::move(s.coefficients), grads, true, &phase, s.counts);
        return py::make_tuple(applied, phase.norm);
      }, arg("hypers"), arg("step"), arg("grads"), arg("stochastic_rounding_seeds") = py::none(),
         arg("grad_scale") = 1.0, arg("max_norm") = py::none(), arg("counts") = py::none(),
         "The fused offload phase: the global norm of grads * grad_scale (one read pass); if it is\n"
         "not finite, nothing changes; else the step with every gradient multiplied by grad_scale\n"
         "and, with max_norm, by min(1, max_norm / (norm + 1e-6)) (torch's clip_grad_norm_), in the\n"
         "update pass (with param_copies, the 16-bit copies are written there too).\n"
         "Returns (applied, norm).")
      .def("stream_probe", [](TensorGroup& grp, py::object grads) { grp.stream_probe(grads); },
         arg("grads") = py::none(),
         "Roofline probe over the whole group: moves the bytes of one step of it.");
}

}  // namespace fastopt::bindings
