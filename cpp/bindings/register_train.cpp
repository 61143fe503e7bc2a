// Python bindings of the native training loop: argument checking (everything
// before the first update), GIL release, registration.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "loss/train_linear.hpp"
#include "loss_args.hpp"
#include "register.hpp"
#include "rule_args.hpp"
#include "tensor_group.hpp"

namespace fastopt::bindings {
namespace {

Sampling check_sampling(py::handle obj) {
  return static_cast<Sampling>(to_choice(obj, "sampling", {"epochs", "with_replacement"}));
}

LossKind check_loss(py::handle obj) {
  return to_choice(obj, "loss", {"softmax", "svm"}) == 0 ? LossKind::softmax : LossKind::hinge;
}

std::size_t positive_count(py::handle obj, const char* name) {
  const std::int64_t v = to_int(obj, name);
  if (v < 1) throw_value_error(std::string(name) + " must be an int >= 1, got " + std::to_string(v));
  return static_cast<std::size_t>(v);
}

// The number of updates of a run, refused (naming the count's argument) when
// it is beyond what one call makes.
std::size_t checked_updates(Sampling sampling, std::size_t n, std::size_t batch_size, std::size_t count,
                            const std::string& count_name) {
  const auto updates = updates_in(sampling, n, batch_size, count);
  if (!updates)
    throw_value_error(count_name + " = " + std::to_string(count) + " with " + std::to_string(n) +
                      " rows and batch_size = " + std::to_string(batch_size) + " makes more than " +
                      std::to_string(kMaxUpdatesPerCall) + " updates, the most one call makes; split the run " +
                      "into several calls (a SplitMix64 rng continues across them)");
  // One draw's rows are held at once: with replacement that is batch_size rows.
  if (!indices_in(sampling, n, batch_size, 1))
    throw_value_error("batch_size = " + std::to_string(batch_size) + " is more than " +
                      std::to_string(kMaxIndicesPerCall) + " rows");
  return *updates;
}

// The optimizer as fastopt.optim describes it (Optimizer._native_settings()):
// {"rule": name, "hypers": {hyperparameter: value}}.
RuleSettings check_optimizer(const py::dict& d) {
  if (!d.contains("rule") || !d.contains("hypers")) throw_value_error("optimizer settings need 'rule' and 'hypers'");
  RuleSettings s;
  s.spec = &check_rule(d["rule"]);
  const auto values = hyper_values(*s.spec, d["hypers"]);
  std::copy(values.begin(), values.end(), s.values);
  return s;
}

py::tuple train_linear_binding(TensorGroup& group, const py::dict& optimizer, py::handle lr_obj,
                               py::handle first_step_obj, py::handle X_obj, py::handle y_obj, py::handle loss_obj,
                               py::handle delta_obj, py::handle penalty_obj, py::handle reg_obj, py::handle l1_obj,
                               py::handle batch_obj, py::handle sampling_obj, py::handle count_obj,
                               const std::string& count_name, py::handle rng_obj, py::handle sample_weight_obj,
                               py::handle unpenalized_obj, py::handle intercept_obj) {
  TensorGroup::Claim claim(group);
  if (group.size() != 1) throw_value_error("the optimizer must hold exactly one parameter, W");
  const py::array& W = group.param(0);
  if (W.ndim() != 2) throw_value_error("W must be 2-D (D×C), got " + std::to_string(W.ndim()) + "-D");
  group.require_unchanged();
  const TensorBuffers& w = group.buffers(0);
  // The loop steps W with run_step, which also runs 8-bit state (float32 W).
  if (!w.storage.dequantized().direct(w.slot[kParamCopy] != nullptr))
    throw_type_error(std::string("W must be float32 or float64 with state of its dtype (or 8-bit state) and no "
                                 "copy, got ") + dtype_name(w.storage.param) + " W with " +
                     dtype_name(w.storage.state) + " state; train low-precision parameters with optimizer.step");
  const DType dtype = w.storage.param;
  const LinearArgs a = check_linear_args(W, dtype, X_obj, y_obj, reg_obj, penalty_obj, l1_obj, sample_weight_obj,
                                         unpenalized_obj, intercept_obj);
  // Nothing the loop writes (W, its optimizer state) may be what it reads (X, y).
  group.require_not_written(byte_range(a.X, ArgName("X")));
  group.require_not_written(a.y.source);
  const LossKind kind = check_loss(loss_obj);
  const double delta = check_delta(delta_obj);
  const std::size_t batch_size = positive_count(batch_obj, "batch_size");
  const std::size_t count = positive_count(count_obj, count_name.c_str());
  const Sampling sampling = check_sampling(sampling_obj);
  const std::int64_t first_step = to_int(first_step_obj, "first_step");
  const std::uint64_t rng_state = to_uint64(rng_obj, "rng_state");
  const RuleSettings settings = check_optimizer(optimizer);

  const std::size_t updates = checked_updates(sampling, a.N, batch_size, count, count_name);
  if (first_step < 1 || static_cast<std::uint64_t>(first_step) > static_cast<std::uint64_t>(INT64_MAX) - updates)
    throw_value_error("first_step must be in [1, 2**63 - updates], got " + std::to_string(first_step));
  // lr: one number for every update, or a list with one per update (a schedule's values).
  std::vector<double> lr;
  if (py::isinstance<py::list>(lr_obj)) {
    const py::list values = py::reinterpret_borrow<py::list>(lr_obj);
    if (values.size() != updates)
      throw_value_error("lr must hold one learning rate per update (" + std::to_string(updates) + "), got " +
                        std::to_string(values.size()));
    lr.reserve(updates);
    for (py::handle v : values) lr.push_back(to_double(v, "lr"));
  } else {
    lr.assign(updates, to_double(lr_obj, "lr"));
  }
  // Every update's coefficients are valid (coefficients_at throws naming the
  // hyperparameter otherwise), and the state they need is there, before the first update.
  for (std::size_t u = 0; u < updates; ++u) coefficients_at(settings, lr[u], first_step + static_cast<std::int64_t>(u));
  group.require_state_for(0, settings.values);

  const LinearProblem problem{kind, dtype, a.X.data(), a.y.values.data(), a.N, a.D, a.C,
                              delta, a.penalty, a.reg, a.l1_ratio, a.weights, a.intercept};
  py::array_t<double> losses(static_cast<py::ssize_t>(updates));
  SplitMix64 rng{rng_state};
  // Ctrl-C: Python's signal handlers run only with the GIL, so take it briefly
  // every 50 ms, stop after the current epoch (iteration) if one raised, and
  // hand the exception back for the caller to record the updates done and re-raise.
  py::object interrupt = py::none();
  auto last_check = std::chrono::steady_clock::now();
  const auto signal_raised = [&]() {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_check < std::chrono::milliseconds(50)) return false;
    last_check = now;
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() == 0) return false;
    interrupt = py::error_already_set().value();
    return true;
  };
  std::size_t done;
  {
    py::gil_scoped_release release;
    done = train_linear(problem, sampling, batch_size, count, rng, settings, lr.data(), first_step,
                        group.buffers(0), losses.mutable_data(), signal_raised);
  }
  const auto updates_done = static_cast<py::ssize_t>(*updates_in(sampling, a.N, batch_size, done));
  return py::make_tuple(losses[py::slice(0, updates_done, 1)], rng.state, interrupt);
}

}  // namespace

void register_train(py::module_& m) {
  using py::arg;
  m.attr("max_updates_per_call") = kMaxUpdatesPerCall;
  m.attr("max_indices_per_call") = kMaxIndicesPerCall;
  m.def("train_linear", &train_linear_binding, arg("group"), arg("optimizer"), arg("lr"), arg("first_step"),
        arg("X"), arg("y"), arg("loss"), arg("delta"), arg("penalty"), arg("reg"), arg("l1_ratio"),
        arg("batch_size"), arg("sampling"), arg("count"), arg("count_name"), arg("rng_state"),
        arg("sample_weight") = py::none(), arg("unpenalized_rows") = 0, arg("intercept") = false,
        "Minibatch training of W = group's only parameter. Returns (losses of the updates done, new\n"
        "rng_state, None) or, when a signal handler raised (Ctrl-C) mid-run, the same for the updates done\n"
        "so far and the exception, for the caller to raise.");
  m.def("train_updates", [](py::object sampling_obj, py::object n_obj, py::object batch_obj, py::object count_obj,
                            const std::string& count_name) {
    const Sampling sampling = check_sampling(sampling_obj);
    const std::int64_t n = to_int(n_obj, "n");
    if (n < 0) throw_value_error("n must be >= 0, got " + std::to_string(n));
    const std::size_t batch_size = positive_count(batch_obj, "batch_size");
    const std::size_t count = positive_count(count_obj, count_name.c_str());
    return checked_updates(sampling, static_cast<std::size_t>(n), batch_size, count, count_name);
  }, arg("sampling"), arg("n"), arg("batch_size"), arg("count"), arg("count_name") = "count",
     "Number of updates train_linear makes for `count` epochs or iterations over n rows.");
  m.def("minibatch_indices", [](py::object sampling_obj, py::object n_obj, py::object batch_obj,
                                py::object count_obj, py::object rng_obj) {
    const Sampling sampling = check_sampling(sampling_obj);
    const std::size_t n = positive_count(n_obj, "n");
    const std::size_t batch_size = positive_count(batch_obj, "batch_size");
    const std::size_t count = positive_count(count_obj, "count");
    const std::uint64_t rng_state = to_uint64(rng_obj, "rng_state");
    const auto total = indices_in(sampling, n, batch_size, count);
    if (!total)
      throw_value_error("n, batch_size and count ask for more than " + std::to_string(kMaxIndicesPerCall) +
                        " indices (count × " + std::string(sampling == Sampling::epochs ? "n" : "batch_size") +
                        "), the most one call returns");
    py::array_t<std::int64_t> idx(static_cast<py::ssize_t>(*total));
    SplitMix64 rng{rng_state};
    std::int64_t* out = idx.mutable_data();
    {
      py::gil_scoped_release release;
      draw_minibatch_indices(sampling, n, batch_size, count, rng, out);
    }
    return py::make_tuple(idx, rng.state);
  }, arg("sampling"), arg("n"), arg("batch_size"), arg("count"), arg("rng_state"),
     "The rows train_linear visits, concatenated (epochs: count·n; with_replacement: count·batch_size).");
}

}  // namespace fastopt::bindings
