// Python bindings of the optimizer kernels: argument checking, GIL release,
// registration. Every check runs before any array is written. Arguments are
// taken as Python objects and converted by the strict layer (arrays.hpp), so
// every error names its argument.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "arrays.hpp"
#include "fastopt/optim.hpp"
#include "register.hpp"
#include "tensor_group.hpp"

namespace fastopt::bindings {
namespace {

struct SlotArg {
  const char* name;
  py::handle obj;
  bool used;  // false: an optional buffer this step does not need (left unchecked)
};

// One tensor: slot 0 is the parameter, slot 1 the (read-only) gradient. The
// caller's arguments hold a reference to every array for the whole call.
void run_single(Rule rule, const std::vector<SlotArg>& slots, const StepCoefficients& c) {
  DType dtype;
  std::vector<ByteRange> ranges;
  TensorBuffers t;
  const ArgName param_name{slots[kParam].name};
  const py::array param = check_param(slots[kParam].obj, param_name, &dtype, &ranges);
  t.slot[kParam] = const_cast<void*>(param.data());
  for (std::size_t s = 1; s < slots.size(); ++s) {
    if (!slots[s].used) continue;
    const py::array a = check_like(slots[s].obj, ArgName{slots[s].name}, /*writable=*/s != kGrad, param,
                                   param_name, dtype, &ranges);
    t.slot[s] = const_cast<void*>(a.data());
  }
  require_disjoint(ranges);
  t.n = static_cast<std::size_t>(param.size());
  py::gil_scoped_release release;
  run_step(rule, dtype, &t, 1, c);
}

// An optional buffer that the options in use require: ValueError if None.
bool required(py::handle obj, const char* name, const char* when) {
  if (obj.is_none()) throw_value_error(std::string(name) + " is required when " + when);
  return true;
}

// Hyperparameters converted in argument order, so the first bad one is the one reported.
struct Sgd {
  double lr, momentum;
  bool nesterov;
  double weight_decay;
  Sgd(py::handle lr_, py::handle momentum_, py::handle nesterov_, py::handle wd_)
      : lr(to_double(lr_, "lr")),
        momentum(to_double(momentum_, "momentum")),
        nesterov(to_bool(nesterov_, "nesterov")),
        weight_decay(to_double(wd_, "weight_decay")) {}
  bool plain() const { return momentum == 0.0 && !nesterov; }
  StepCoefficients coefficients() const {
    return plain() ? sgd_coefficients(lr, weight_decay) : sgd_momentum_coefficients(lr, momentum, nesterov, weight_decay);
  }
};

struct Adagrad {
  double lr, eps, weight_decay, lr_decay;
  Adagrad(py::handle lr_, py::handle eps_, py::handle wd_, py::handle lr_decay_)
      : lr(to_double(lr_, "lr")),
        eps(to_double(eps_, "eps")),
        weight_decay(to_double(wd_, "weight_decay")),
        lr_decay(to_double(lr_decay_, "lr_decay")) {}
  StepCoefficients coefficients(std::int64_t step) const {
    return adagrad_coefficients(lr, eps, weight_decay, lr_decay, step);
  }
};

struct Rmsprop {
  double lr, alpha, eps, weight_decay, momentum;
  bool centered;
  Rmsprop(py::handle lr_, py::handle alpha_, py::handle eps_, py::handle wd_, py::handle momentum_,
          py::handle centered_)
      : lr(to_double(lr_, "lr")),
        alpha(to_double(alpha_, "alpha")),
        eps(to_double(eps_, "eps")),
        weight_decay(to_double(wd_, "weight_decay")),
        momentum(to_double(momentum_, "momentum")),
        centered(to_bool(centered_, "centered")) {}
  StepCoefficients coefficients() const {
    return rmsprop_coefficients(lr, alpha, eps, weight_decay, momentum, centered);
  }
};

struct Adam {
  double lr, beta1, beta2, eps, weight_decay;
  bool amsgrad, decoupled;
  Adam(py::handle lr_, py::handle beta1_, py::handle beta2_, py::handle eps_, py::handle wd_, py::handle amsgrad_,
       py::handle decoupled_)
      : lr(to_double(lr_, "lr")),
        beta1(to_double(beta1_, "beta1")),
        beta2(to_double(beta2_, "beta2")),
        eps(to_double(eps_, "eps")),
        weight_decay(to_double(wd_, "weight_decay")),
        amsgrad(to_bool(amsgrad_, "amsgrad")),
        decoupled(to_bool(decoupled_, "decoupled")) {}
  StepCoefficients coefficients(std::int64_t step) const {
    return adam_coefficients(lr, beta1, beta2, eps, weight_decay, amsgrad, decoupled, step);
  }
};

}  // namespace

void register_optim(py::module_& m) {
  using py::arg;

  // --- single-tensor steps (the public functions in fastopt.functional) -------
  m.def("sgd", [](py::object p, py::object g, py::object lr, py::object weight_decay) {
    const auto c = sgd_coefficients(to_double(lr, "lr"), to_double(weight_decay, "weight_decay"));
    run_single(Rule::sgd, {{"p", p, true}, {"g", g, true}}, c);
  }, arg("p"), arg("g"), arg("lr"), arg("weight_decay"));

  m.def("sgd_momentum", [](py::object p, py::object g, py::object buf, py::object lr, py::object momentum,
                           py::object nesterov, py::object weight_decay) {
    const Sgd h(lr, momentum, nesterov, weight_decay);
    const auto c = sgd_momentum_coefficients(h.lr, h.momentum, h.nesterov, h.weight_decay);
    run_single(Rule::sgd_momentum, {{"p", p, true}, {"g", g, true}, {"buf", buf, true}}, c);
  }, arg("p"), arg("g"), arg("buf"), arg("lr"), arg("momentum"), arg("nesterov"), arg("weight_decay"));

  m.def("adagrad", [](py::object p, py::object g, py::object sum_sq, py::object lr, py::object eps,
                      py::object weight_decay, py::object lr_decay, py::object step) {
    const Adagrad h(lr, eps, weight_decay, lr_decay);
    const auto c = h.coefficients(to_int(step, "step"));
    run_single(Rule::adagrad, {{"p", p, true}, {"g", g, true}, {"sum_sq", sum_sq, true}}, c);
  }, arg("p"), arg("g"), arg("sum_sq"), arg("lr"), arg("eps"), arg("weight_decay"), arg("lr_decay"),
     arg("step"));

  m.def("rmsprop", [](py::object p, py::object g, py::object square_avg, py::object momentum_buf,
                      py::object grad_avg, py::object lr, py::object alpha, py::object eps,
                      py::object weight_decay, py::object momentum, py::object centered) {
    const auto c = Rmsprop(lr, alpha, eps, weight_decay, momentum, centered).coefficients();
    const bool buf = c.momentum > 0 && required(momentum_buf, "momentum_buf", "momentum > 0");
    const bool avg = c.centered && required(grad_avg, "grad_avg", "centered=True");
    run_single(Rule::rmsprop, {{"p", p, true}, {"g", g, true}, {"square_avg", square_avg, true},
                               {"momentum_buf", momentum_buf, buf}, {"grad_avg", grad_avg, avg}}, c);
  }, arg("p"), arg("g"), arg("square_avg"), arg("momentum_buf"), arg("grad_avg"), arg("lr"),
     arg("alpha"), arg("eps"), arg("weight_decay"), arg("momentum"), arg("centered"));

  m.def("adam", [](py::object p, py::object g, py::object m_, py::object v, py::object max_v,
                   py::object step, py::object lr, py::object beta1, py::object beta2, py::object eps,
                   py::object weight_decay, py::object amsgrad, py::object decoupled) {
    const std::int64_t t = to_int(step, "step");
    const auto c = Adam(lr, beta1, beta2, eps, weight_decay, amsgrad, decoupled).coefficients(t);
    const bool vmax = c.amsgrad && required(max_v, "max_v", "amsgrad=True");
    run_single(Rule::adam,
               {{"p", p, true}, {"g", g, true}, {"m", m_, true}, {"v", v, true}, {"max_v", max_v, vmax}}, c);
  }, arg("p"), arg("g"), arg("m"), arg("v"), arg("max_v"), arg("step"), arg("lr"), arg("beta1"),
     arg("beta2"), arg("eps"), arg("weight_decay"), arg("amsgrad"), arg("decoupled"));

  m.def("stream_probe", [](py::object p, py::object g, py::object states_obj) {
    if (!(py::isinstance<py::list>(states_obj) || py::isinstance<py::tuple>(states_obj)))
      throw_type_error("states must be a list of arrays, got " + type_name(states_obj));
    const py::sequence states = states_obj;
    if (states.size() > static_cast<std::size_t>(kMaxSlots - 2)) throw_value_error("states: at most 3 arrays");
    static const char* names[] = {"states[0]", "states[1]", "states[2]"};
    std::vector<SlotArg> slots{{"p", p, true}, {"g", g, true}};
    for (std::size_t s = 0; s < states.size(); ++s) slots.push_back({names[s], states[s], true});
    run_single(Rule::stream_probe, slots, StepCoefficients{});
  }, arg("p"), arg("g"), arg("states"),
     "Roofline probe: p += g and s += g for each s in states, threaded like a step.\n"
     "Moves the bytes of an optimizer step with the same buffers.");

  // --- hyperparameter checks (constructors and load_state_dict use these) -----
  m.def("check_sgd_hyperparameters", [](py::object lr, py::object momentum, py::object nesterov, py::object wd) {
    Sgd(lr, momentum, nesterov, wd).coefficients();
  }, arg("lr"), arg("momentum"), arg("nesterov"), arg("weight_decay"));
  m.def("check_adagrad_hyperparameters", [](py::object lr, py::object eps, py::object wd, py::object lr_decay) {
    Adagrad(lr, eps, wd, lr_decay).coefficients(1);
  }, arg("lr"), arg("eps"), arg("weight_decay"), arg("lr_decay"));
  m.def("check_rmsprop_hyperparameters", [](py::object lr, py::object alpha, py::object eps, py::object wd,
                                            py::object momentum, py::object centered) {
    Rmsprop(lr, alpha, eps, wd, momentum, centered).coefficients();
  }, arg("lr"), arg("alpha"), arg("eps"), arg("weight_decay"), arg("momentum"), arg("centered"));
  m.def("check_adam_hyperparameters", [](py::object lr, py::object beta1, py::object beta2, py::object eps,
                                         py::object wd, py::object amsgrad) {
    Adam(lr, beta1, beta2, eps, wd, amsgrad, py::bool_(false)).coefficients(1);
  }, arg("lr"), arg("beta1"), arg("beta2"), arg("eps"), arg("weight_decay"), arg("amsgrad"));

  // --- multi-tensor steps (fastopt.optim) ---------------------------------------
  py::class_<TensorGroup>(m, "TensorGroup",
                          "Arrays of a multi-tensor optimizer, checked once; steps are one native call.")
      .def(py::init<py::sequence, py::sequence, py::sequence, py::object, py::object>(), arg("params"),
           arg("states"), arg("state_names"), arg("grads") = py::none(), arg("keys") = py::none())
      .def_static("check_params", &TensorGroup::check_params, arg("params"), arg("keys") = py::none(),
                  "The checks of the constructor on the parameters alone (before state is allocated).")
      .def("__len__", &TensorGroup::size)
      .def("require_unchanged", &TensorGroup::require_unchanged)
      .def("sgd", [](TensorGroup& grp, py::object grads, py::object lr, py::object momentum, py::object nesterov,
                     py::object wd, py::object skip) {
        const Sgd h(lr, momentum, nesterov, wd);
        const bool skip_nonfinite = to_bool(skip, "skip_if_nonfinite");
        const StepCoefficients c = h.coefficients();
        if (h.plain()) return grp.step(Rule::sgd, c, grads, skip_nonfinite);
        grp.require_state_for(Rule::sgd_momentum, c);
        return grp.step(Rule::sgd_momentum, c, grads, skip_nonfinite);
      }, arg("grads"), arg("lr"), arg("momentum"), arg("nesterov"), arg("weight_decay"), arg("skip_if_nonfinite"))
      .def("adagrad", [](TensorGroup& grp, py::object grads, py::object lr, py::object eps, py::object wd,
                         py::object lr_decay, py::object step, py::object skip) {
        const Adagrad h(lr, eps, wd, lr_decay);
        const StepCoefficients c = h.coefficients(to_int(step, "step"));
        const bool skip_nonfinite = to_bool(skip, "skip_if_nonfinite");
        grp.require_state_for(Rule::adagrad, c);
        return grp.step(Rule::adagrad, c, grads, skip_nonfinite);
      }, arg("grads"), arg("lr"), arg("eps"), arg("weight_decay"), arg("lr_decay"), arg("step"),
         arg("skip_if_nonfinite"))
      .def("rmsprop", [](TensorGroup& grp, py::object grads, py::object lr, py::object alpha, py::object eps,
                         py::object wd, py::object momentum, py::object centered, py::object skip) {
        const StepCoefficients c = Rmsprop(lr, alpha, eps, wd, momentum, centered).coefficients();
        const bool skip_nonfinite = to_bool(skip, "skip_if_nonfinite");
        grp.require_state_for(Rule::rmsprop, c);
        return grp.step(Rule::rmsprop, c, grads, skip_nonfinite);
      }, arg("grads"), arg("lr"), arg("alpha"), arg("eps"), arg("weight_decay"), arg("momentum"),
         arg("centered"), arg("skip_if_nonfinite"))
      .def("adam", [](TensorGroup& grp, py::object grads, py::object lr, py::object beta1, py::object beta2,
                      py::object eps, py::object wd, py::object amsgrad, py::object decoupled, py::object step,
                      py::object skip) {
        const Adam h(lr, beta1, beta2, eps, wd, amsgrad, decoupled);
        const StepCoefficients c = h.coefficients(to_int(step, "step"));
        const bool skip_nonfinite = to_bool(skip, "skip_if_nonfinite");
        grp.require_state_for(Rule::adam, c);
        return grp.step(Rule::adam, c, grads, skip_nonfinite);
      }, arg("grads"), arg("lr"), arg("beta1"), arg("beta2"), arg("eps"), arg("weight_decay"),
         arg("amsgrad"), arg("decoupled"), arg("step"), arg("skip_if_nonfinite"))
      .def("stream_probe", [](TensorGroup& grp, py::object grads) {
        grp.step(Rule::stream_probe, StepCoefficients{}, grads, false);
      }, arg("grads") = py::none(),
         "Roofline probe over the whole group: moves the bytes of one step of it.");
}

}  // namespace fastopt::bindings
