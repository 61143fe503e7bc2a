// Python bindings of the optimizer kernels: argument checking, GIL release,
// registration. Every check runs before any array is written.
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
  py::handle obj;  // None: slot unused
};

// One tensor: slot 0 is the parameter, slot 1 the (read-only) gradient.
void run_single(Rule rule, const std::vector<SlotArg>& slots, const StepCoefficients& c) {
  py::array param;
  DType dtype;
  std::vector<ByteRange> ranges;
  TensorBuffers t;
  const ArgName param_name{slots[kParam].name};
  t.slot[kParam] = check_param(slots[kParam].obj, param_name, &param, &dtype, &ranges);
  for (std::size_t s = 1; s < slots.size(); ++s) {
    if (slots[s].obj.is_none()) continue;
    t.slot[s] = check_like(slots[s].obj, ArgName{slots[s].name}, /*writable=*/s != kGrad, param,
                           param_name, dtype, &ranges);
  }
  require_disjoint(ranges);
  t.n = static_cast<std::size_t>(param.size());
  py::gil_scoped_release release;
  run_step(rule, dtype, &t, 1, c);
}

py::handle required(py::handle obj, const char* name, const char* when) {
  if (obj.is_none()) throw_value_error(std::string(name) + " is required when " + when);
  return obj;
}

}  // namespace

void register_optim(py::module_& m) {
  using py::arg;

  // --- single-tensor steps (the public functions in fastopt.functional) -------
  m.def("sgd", [](py::object p, py::object g, py::object lr, py::object weight_decay) {
    const auto c = sgd_coefficients(to_double(lr, "lr"), to_double(weight_decay, "weight_decay"));
    run_single(Rule::sgd, {{"p", p}, {"g", g}}, c);
  }, arg("p"), arg("g"), arg("lr"), arg("weight_decay"));

  m.def("sgd_momentum", [](py::object p, py::object g, py::object buf, py::object lr,
                           py::object momentum, py::object nesterov, py::object weight_decay) {
    const auto c = sgd_momentum_coefficients(to_double(lr, "lr"), to_double(momentum, "momentum"),
                                             to_bool(nesterov, "nesterov"),
                                             to_double(weight_decay, "weight_decay"));
    run_single(Rule::sgd_momentum, {{"p", p}, {"g", g}, {"buf", buf}}, c);
  }, arg("p"), arg("g"), arg("buf"), arg("lr"), arg("momentum"), arg("nesterov"), arg("weight_decay"));

  m.def("adagrad", [](py::object p, py::object g, py::object sum_sq, py::object lr, py::object eps,
                      py::object weight_decay, py::object lr_decay, py::object step) {
    const auto c = adagrad_coefficients(to_double(lr, "lr"), to_double(eps, "eps"),
                                        to_double(weight_decay, "weight_decay"),
                                        to_double(lr_decay, "lr_decay"), to_int(step, "step"));
    run_single(Rule::adagrad, {{"p", p}, {"g", g}, {"sum_sq", sum_sq}}, c);
  }, arg("p"), arg("g"), arg("sum_sq"), arg("lr"), arg("eps"), arg("weight_decay"), arg("lr_decay"),
     arg("step"));

  m.def("rmsprop", [](py::object p, py::object g, py::object square_avg, py::object momentum_buf,
                      py::object grad_avg, py::object lr, py::object alpha, py::object eps,
                      py::object weight_decay, py::object momentum, py::object centered) {
    const auto c = rmsprop_coefficients(to_double(lr, "lr"), to_double(alpha, "alpha"),
                                        to_double(eps, "eps"), to_double(weight_decay, "weight_decay"),
                                        to_double(momentum, "momentum"), to_bool(centered, "centered"));
    py::handle buf = c.momentum > 0 ? required(momentum_buf, "momentum_buf", "momentum > 0") : py::none();
    py::handle avg = c.centered ? required(grad_avg, "grad_avg", "centered=True") : py::none();
    run_single(Rule::rmsprop,
               {{"p", p}, {"g", g}, {"square_avg", square_avg}, {"momentum_buf", buf}, {"grad_avg", avg}}, c);
  }, arg("p"), arg("g"), arg("square_avg"), arg("momentum_buf"), arg("grad_avg"), arg("lr"),
     arg("alpha"), arg("eps"), arg("weight_decay"), arg("momentum"), arg("centered"));

  m.def("adam", [](py::object p, py::object g, py::object m_, py::object v, py::object max_v,
                   py::object step, py::object lr, py::object beta1, py::object beta2, py::object eps,
                   py::object weight_decay, py::object amsgrad, py::object decoupled) {
    const auto c = adam_coefficients(to_double(lr, "lr"), to_double(beta1, "beta1"),
                                     to_double(beta2, "beta2"), to_double(eps, "eps"),
                                     to_double(weight_decay, "weight_decay"), to_bool(amsgrad, "amsgrad"),
                                     to_bool(decoupled, "decoupled"), to_int(step, "step"));
    py::handle vmax = c.amsgrad ? required(max_v, "max_v", "amsgrad=True") : py::none();
    run_single(Rule::adam, {{"p", p}, {"g", g}, {"m", m_}, {"v", v}, {"max_v", vmax}}, c);
  }, arg("p"), arg("g"), arg("m"), arg("v"), arg("max_v"), arg("step"), arg("lr"), arg("beta1"),
     arg("beta2"), arg("eps"), arg("weight_decay"), arg("amsgrad"), arg("decoupled"));

  m.def("stream_probe", [](py::object p, py::object g, py::sequence states) {
    if (states.size() > static_cast<std::size_t>(kMaxSlots - 2)) throw_value_error("states: at most 3 arrays");
    static const char* names[] = {"states[0]", "states[1]", "states[2]"};
    std::vector<SlotArg> slots{{"p", p}, {"g", g}};
    for (std::size_t s = 0; s < states.size(); ++s) slots.push_back({names[s], states[s]});
    run_single(Rule::stream_probe, slots, StepCoefficients{});
  }, arg("p"), arg("g"), arg("states"),
     "Roofline probe: p += g and s += g for each s in states, threaded like a step.\n"
     "Moves the bytes of an optimizer step with the same buffers.");

  // --- hyperparameter checks (the optimizers' constructors use these) ----------
  m.def("check_sgd_hyperparameters", [](double lr, double momentum, bool nesterov, double wd) {
    sgd_momentum_coefficients(lr, momentum, nesterov, wd);
  }, arg("lr"), arg("momentum"), arg("nesterov"), arg("weight_decay"));
  m.def("check_adagrad_hyperparameters", [](double lr, double eps, double wd, double lr_decay) {
    adagrad_coefficients(lr, eps, wd, lr_decay, 1);
  }, arg("lr"), arg("eps"), arg("weight_decay"), arg("lr_decay"));
  m.def("check_rmsprop_hyperparameters",
        [](double lr, double alpha, double eps, double wd, double momentum, bool centered) {
          rmsprop_coefficients(lr, alpha, eps, wd, momentum, centered);
        }, arg("lr"), arg("alpha"), arg("eps"), arg("weight_decay"), arg("momentum"), arg("centered"));
  m.def("check_adam_hyperparameters", [](double lr, double beta1, double beta2, double eps, double wd) {
    adam_coefficients(lr, beta1, beta2, eps, wd, false, false, 1);
  }, arg("lr"), arg("beta1"), arg("beta2"), arg("eps"), arg("weight_decay"));

  // --- multi-tensor steps (fastopt.optim) ---------------------------------------
  py::class_<TensorGroup>(m, "TensorGroup",
                          "Arrays of a multi-tensor optimizer, checked once; steps are one native call.")
      .def(py::init<py::sequence, py::sequence, py::sequence, py::object, py::object>(), arg("params"),
           arg("states"), arg("state_names"), arg("grads") = py::none(), arg("keys") = py::none())
      .def("__len__", &TensorGroup::size)
      .def("sgd", [](TensorGroup& grp, py::object grads, double lr, double momentum, bool nesterov,
                     double wd, bool skip) {
        if (momentum == 0.0 && !nesterov) return grp.step(Rule::sgd, sgd_coefficients(lr, wd), grads, skip);
        const auto c = sgd_momentum_coefficients(lr, momentum, nesterov, wd);
        grp.require_state_for(Rule::sgd_momentum, c);
        return grp.step(Rule::sgd_momentum, c, grads, skip);
      }, arg("grads"), arg("lr"), arg("momentum"), arg("nesterov"), arg("weight_decay"),
         arg("skip_if_nonfinite"))
      .def("adagrad", [](TensorGroup& grp, py::object grads, double lr, double eps, double wd,
                         double lr_decay, std::int64_t step, bool skip) {
        const auto c = adagrad_coefficients(lr, eps, wd, lr_decay, step);
        grp.require_state_for(Rule::adagrad, c);
        return grp.step(Rule::adagrad, c, grads, skip);
      }, arg("grads"), arg("lr"), arg("eps"), arg("weight_decay"), arg("lr_decay"), arg("step"),
         arg("skip_if_nonfinite"))
      .def("rmsprop", [](TensorGroup& grp, py::object grads, double lr, double alpha, double eps,
                         double wd, double momentum, bool centered, bool skip) {
        const auto c = rmsprop_coefficients(lr, alpha, eps, wd, momentum, centered);
        grp.require_state_for(Rule::rmsprop, c);
        return grp.step(Rule::rmsprop, c, grads, skip);
      }, arg("grads"), arg("lr"), arg("alpha"), arg("eps"), arg("weight_decay"), arg("momentum"),
         arg("centered"), arg("skip_if_nonfinite"))
      .def("adam", [](TensorGroup& grp, py::object grads, double lr, double beta1, double beta2,
                      double eps, double wd, bool amsgrad, bool decoupled, std::int64_t step, bool skip) {
        const auto c = adam_coefficients(lr, beta1, beta2, eps, wd, amsgrad, decoupled, step);
        grp.require_state_for(Rule::adam, c);
        return grp.step(Rule::adam, c, grads, skip);
      }, arg("grads"), arg("lr"), arg("beta1"), arg("beta2"), arg("eps"), arg("weight_decay"),
         arg("amsgrad"), arg("decoupled"), arg("step"), arg("skip_if_nonfinite"))
      .def("stream_probe", [](TensorGroup& grp, py::object grads) {
        grp.step(Rule::stream_probe, StepCoefficients{}, grads, false);
      }, arg("grads") = py::none(),
         "Roofline probe over the whole group: moves the bytes of one step of it.");
}

}  // namespace fastopt::bindings
