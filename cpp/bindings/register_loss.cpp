// Python bindings of the loss kernels: argument checking, GIL release,
// registration. Inputs are only read; outputs are new arrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>

#include "arrays.hpp"
#include "loss_args.hpp"
#include "loss/loss.hpp"
#include "register.hpp"

namespace fastopt::bindings {
namespace {

py::tuple linear_loss_binding(LossKind kind, py::handle W_obj, py::handle X_obj, py::handle y_obj,
                              py::handle reg_obj, double delta, py::handle penalty_obj, py::handle l1_obj,
                              py::handle sample_weight, py::handle unpenalized_rows, py::handle intercept) {
  DType w_dtype;
  const py::array W = float_array(W_obj, "W", 2, &w_dtype);
  const LinearArgs a = check_linear_args(W, w_dtype, X_obj, y_obj, reg_obj, penalty_obj, l1_obj, sample_weight,
                                         unpenalized_rows, intercept);
  py::array dW(W.dtype(), {W.shape(0), W.shape(1)});
  double loss;
  {
    py::gil_scoped_release release;
    loss = linear_loss(kind, w_dtype, W.data(), a.X.data(), a.y.values.data(), a.N, a.D, a.C, delta, a.penalty, a.reg,
                       a.l1_ratio, dW.mutable_data(), nullptr, a.weights, a.intercept);
  }
  return py::make_tuple(loss, dW);
}

py::tuple scores_loss_binding(LossKind kind, py::handle scores_obj, py::handle y_obj, double delta) {
  DType dtype;
  const py::array S = float_array(scores_obj, "scores", 2, &dtype);
  const auto N = static_cast<std::size_t>(S.shape(0)), C = static_cast<std::size_t>(S.shape(1));
  if (N == 0) throw_value_error("scores has no rows (N = 0): the mean loss is undefined");
  if (C == 0) throw_value_error("scores has no columns (C = 0)");
  const auto y = labels(y_obj, N, C);
  py::array dS(S.dtype(), {S.shape(0), S.shape(1)});
  double loss;
  {
    py::gil_scoped_release release;
    loss = scores_loss(kind, dtype, S.data(), y.values.data(), N, C, delta, dS.mutable_data());
  }
  return py::make_tuple(loss, dS);
}

// S = X·W[:D] (+ W[D] with intercept), N × C, W's dtype.
py::array linear_scores_binding(py::handle W_obj, py::handle X_obj, py::handle intercept_obj) {
  DType w_dtype, x_dtype;
  const py::array W = float_array(W_obj, "W", 2, &w_dtype);
  const py::array X = float_array(X_obj, "X", 2, &x_dtype);
  require_same_dtype(x_dtype, "X", w_dtype, "W");
  const bool intercept = to_bool(intercept_obj, "intercept");
  const auto N = static_cast<std::size_t>(X.shape(0)), D = static_cast<std::size_t>(X.shape(1));
  const auto C = static_cast<std::size_t>(W.shape(1));
  if (static_cast<std::size_t>(W.shape(0)) != D + (intercept ? 1 : 0))
    throw_value_error("X has " + std::to_string(D) + " columns but W has " + std::to_string(W.shape(0)) +
                      " rows; X is N×D and W is D×C" + (intercept ? " plus the intercepts' row: (D + 1)×C" : ""));
  if (C == 0) throw_value_error("W has no columns (C = 0)");
  py::array S(W.dtype(), {X.shape(0), W.shape(1)});
  if (N > 0) {
    py::gil_scoped_release release;
    linear_scores(w_dtype, W.data(), X.data(), N, D, C, intercept, S.mutable_data());
  }
  return S;
}

}  // namespace

void register_loss(py::module_& m) {
  using py::arg;
  m.def("softmax_loss", [](py::object W, py::object X, py::object y, py::object reg, py::object penalty,
                           py::object l1_ratio, py::object sample_weight, py::object unpenalized_rows,
                           py::object intercept) {
    return linear_loss_binding(LossKind::softmax, W, X, y, reg, 0.0, penalty, l1_ratio, sample_weight,
                               unpenalized_rows, intercept);
  }, arg("W"), arg("X"), arg("y"), arg("reg"), arg("penalty"), arg("l1_ratio"), arg("sample_weight") = py::none(),
     arg("unpenalized_rows") = 0, arg("intercept") = false);
  m.def("svm_loss", [](py::object W, py::object X, py::object y, py::object reg, py::object delta,
                       py::object penalty, py::object l1_ratio, py::object sample_weight, py::object unpenalized_rows,
                       py::object intercept) {
    return linear_loss_binding(LossKind::hinge, W, X, y, reg, check_delta(delta), penalty, l1_ratio, sample_weight,
                               unpenalized_rows, intercept);
  }, arg("W"), arg("X"), arg("y"), arg("reg"), arg("delta"), arg("penalty"), arg("l1_ratio"),
     arg("sample_weight") = py::none(), arg("unpenalized_rows") = 0, arg("intercept") = false);
  m.def("softmax_cross_entropy", [](py::object scores, py::object y) {
    return scores_loss_binding(LossKind::softmax, scores, y, 0.0);
  }, arg("scores"), arg("y"));
  m.def("multiclass_hinge", [](py::object scores, py::object y, py::object delta) {
    return scores_loss_binding(LossKind::hinge, scores, y, check_delta(delta));
  }, arg("scores"), arg("y"), arg("delta"));
  m.def("linear_scores", [](py::object W, py::object X, py::object intercept) {
    return linear_scores_binding(W, X, intercept);
  }, arg("W"), arg("X"), arg("intercept") = false);
  m.def("penalty", [](py::object W_obj, py::object reg_obj, py::object kind_obj, py::object l1_obj) {
    DType dtype;
    const py::array W = float_array(W_obj, "W", 0, &dtype);
    const double reg = check_reg(reg_obj);
    const PenaltyKind kind = check_penalty(kind_obj, "kind");
    const double l1_ratio = check_l1_ratio(l1_obj);
    py::array grad(W.dtype(), std::vector<py::ssize_t>(W.shape(), W.shape() + W.ndim()));
    double value;
    {
      py::gil_scoped_release release;
      value = penalty(dtype, kind, W.data(), static_cast<std::size_t>(W.size()), reg, l1_ratio, grad.mutable_data());
    }
    return py::make_tuple(value, grad);
  }, arg("W"), arg("reg"), arg("kind"), arg("l1_ratio"));
}

}  // namespace fastopt::bindings
