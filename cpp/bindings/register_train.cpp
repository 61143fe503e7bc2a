// Python bindings of the native training loop: argument checking (everything
// before the first update), GIL release, registration.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>

#include "arrays.hpp"
#include "fastopt/train.hpp"
#include "loss_args.hpp"
#include "register.hpp"
#include "tensor_group.hpp"

namespace fastopt::bindings {
namespace {

Sampling check_sampling(const std::string& name) {
  if (name == "epochs") return Sampling::epochs;
  if (name == "with_replacement") return Sampling::with_replacement;
  throw_value_error("sampling must be 'epochs' or 'with_replacement', got '" + name + "'");
}

LossKind check_loss(const std::string& name) {
  if (name == "softmax") return LossKind::softmax;
  if (name == "svm") return LossKind::hinge;
  throw_value_error("loss must be 'softmax' or 'svm', got '" + name + "'");
}

std::size_t positive_count(py::handle obj, const char* name) {
  const std::int64_t v = to_int(obj, name);
  if (v < 1) throw_value_error(std::string(name) + " must be an int >= 1, got " + std::to_string(v));
  return static_cast<std::size_t>(v);
}

// The optimizer as fastopt.optim describes it (Optimizer._native_settings()).
OptimizerSettings check_optimizer(const py::dict& d) {
  OptimizerSettings s;
  const std::string rule = py::str(d["rule"]);
  if (rule == "sgd") s.rule = Rule::sgd;
  else if (rule == "sgd_momentum") s.rule = Rule::sgd_momentum;
  else if (rule == "adagrad") s.rule = Rule::adagrad;
  else if (rule == "rmsprop") s.rule = Rule::rmsprop;
  else if (rule == "adam") s.rule = Rule::adam;
  else throw_value_error("optimizer rule '" + rule + "' is not supported by the training loop");
  auto number = [&](const char* key, double* out) {
    if (d.contains(key)) *out = to_double(d[key], key);
  };
  auto flag = [&](const char* key, bool* out) {
    if (d.contains(key)) *out = to_bool(d[key], key);
  };
  number("weight_decay", &s.weight_decay);
  number("momentum", &s.momentum);
  flag("nesterov", &s.nesterov);
  number("eps", &s.eps);
  number("lr_decay", &s.lr_decay);
  number("alpha", &s.alpha);
  flag("centered", &s.centered);
  number("beta1", &s.beta1);
  number("beta2", &s.beta2);
  flag("amsgrad", &s.amsgrad);
  flag("decoupled", &s.decoupled);
  return s;
}

py::tuple train_linear_binding(TensorGroup& group, const py::dict& optimizer, py::handle lr_obj,
                               py::handle first_step_obj, py::handle X_obj, py::handle y_obj,
                               const std::string& loss, py::handle delta_obj, py::handle penalty_obj,
                               py::handle reg_obj, py::handle l1_obj, py::handle batch_obj,
                               const std::string& sampling_name, py::handle count_obj, std::uint64_t rng_state) {
  if (group.size() != 1) throw_value_error("the optimizer must hold exactly one parameter, W");
  const py::array& W = group.param(0);
  if (W.ndim() != 2) throw_value_error("W must be 2-D (D×C), got " + std::to_string(W.ndim()) + "-D");
  group.require_still_writeable();
  const LinearArgs a = check_linear_args(W, group.dtype(), X_obj, y_obj, reg_obj, penalty_obj, l1_obj);
  const char* x_begin = static_cast<const char*>(a.X.data());
  group.require_not_written(ByteRange{x_begin, x_begin + a.X.nbytes(), ArgName("X")});
  const LossKind kind = check_loss(loss);
  const double delta = check_delta(delta_obj);
  const std::size_t batch_size = positive_count(batch_obj, "batch_size");
  const std::size_t count = positive_count(count_obj, "count");
  const Sampling sampling = check_sampling(sampling_name);
  const std::int64_t first_step = to_int(first_step_obj, "first_step");
  const OptimizerSettings settings = check_optimizer(optimizer);

  const std::size_t updates = updates_in(sampling, a.N, batch_size, count);
  auto lr = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(lr_obj);
  if (!lr || lr.ndim() != 1 || static_cast<std::size_t>(lr.shape(0)) != updates)
    throw_value_error("lr must hold one learning rate per update (" + std::to_string(updates) + ")");
  // Every update's coefficients are valid, and the state they need is there, before the first update.
  for (std::size_t u = 0; u < updates; ++u) {
    const StepCoefficients c = coefficients_at(settings, lr.data()[u], first_step + static_cast<std::int64_t>(u));
    if (u == 0) group.require_state_for(settings.rule, c);
  }

  const LinearProblem problem{kind, group.dtype(), a.X.data(), a.y.data(), a.N, a.D, a.C,
                              delta, a.penalty, a.reg, a.l1_ratio};
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
  const auto updates_done = static_cast<py::ssize_t>(updates_in(sampling, a.N, batch_size, done));
  return py::make_tuple(losses[py::slice(0, updates_done, 1)], rng.state, interrupt);
}

}  // namespace

void register_train(py::module_& m) {
  using py::arg;
  m.def("train_linear", &train_linear_binding, arg("group"), arg("optimizer"), arg("lr"), arg("first_step"),
        arg("X"), arg("y"), arg("loss"), arg("delta"), arg("penalty"), arg("reg"), arg("l1_ratio"),
        arg("batch_size"), arg("sampling"), arg("count"), arg("rng_state"),
        "Minibatch training of W = group's only parameter. Returns (losses of the updates done, new\n"
        "rng_state, None) or, when a signal handler raised (Ctrl-C) mid-run, the same for the updates done\n"
        "so far and the exception, for the caller to raise.");
  m.def("train_updates", [](const std::string& sampling_name, py::handle n_obj, py::handle batch_obj,
                            py::handle count_obj) {
    const Sampling sampling = check_sampling(sampling_name);
    const std::int64_t n = to_int(n_obj, "n");
    if (n < 0) throw_value_error("n must be >= 0, got " + std::to_string(n));
    return updates_in(sampling, static_cast<std::size_t>(n), positive_count(batch_obj, "batch_size"),
                      positive_count(count_obj, "count"));
  }, arg("sampling"), arg("n"), arg("batch_size"), arg("count"),
     "Number of updates train_linear makes for `count` epochs or iterations over n rows.");
  m.def("minibatch_indices", [](const std::string& sampling_name, py::handle n_obj, py::handle batch_obj,
                                py::handle count_obj, std::uint64_t rng_state) {
    const Sampling sampling = check_sampling(sampling_name);
    const std::size_t n = positive_count(n_obj, "n");
    const std::size_t batch_size = positive_count(batch_obj, "batch_size");
    const std::size_t count = positive_count(count_obj, "count");
    const std::size_t per_draw = sampling == Sampling::epochs ? n : batch_size;
    py::array_t<std::int64_t> idx(static_cast<py::ssize_t>(count * per_draw));
    SplitMix64 rng{rng_state};
    draw_minibatch_indices(sampling, n, batch_size, count, rng, idx.mutable_data());
    return py::make_tuple(idx, rng.state);
  }, arg("sampling"), arg("n"), arg("batch_size"), arg("count"), arg("rng_state"),
     "The rows train_linear visits, concatenated (epochs: count·n; with_replacement: count·batch_size).");
}

}  // namespace fastopt::bindings
