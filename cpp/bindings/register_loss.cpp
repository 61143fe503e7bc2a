// Python bindings of the loss kernels: argument checking, GIL release,
// registration. Inputs are only read; outputs are new arrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>

#include "arrays.hpp"
#include "fastopt/loss.hpp"
#include "register.hpp"

namespace fastopt::bindings {
namespace {

// A float32/float64 matrix with `ndim` dimensions, made C-contiguous (copied
// once if it is not: the kernels stream rows).
py::array float_array(py::handle obj, const char* name, int ndim, DType* dtype) {
  const ArgName arg(name);
  py::array a = as_ndarray(obj, arg);
  *dtype = float_dtype_of(a, arg);
  if (ndim > 0 && a.ndim() != ndim)
    throw_value_error(std::string(name) + " must be " + std::to_string(ndim) + "-D, got " +
                      std::to_string(a.ndim()) + "-D");
  const int flags = py::detail::array_proxy(a.ptr())->flags;
  const int wanted = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_;
  if ((flags & wanted) != wanted) a = py::module_::import("numpy").attr("ascontiguousarray")(a);
  return a;
}

void require_same_dtype(DType a, const char* a_name, DType b, const char* b_name) {
  if (a != b)
    throw_type_error(std::string(a_name) + " and " + b_name + " must have the same dtype " +
                     "(float32 or float64); mixed dtypes are not supported");
}

// Integer labels in [0, C), one per row, as a contiguous int64 array.
py::array_t<std::int64_t> labels(py::handle obj, std::size_t N, std::size_t C) {
  py::array y = py::module_::import("numpy").attr("asarray")(obj);
  const char kind = y.dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw_value_error("y must hold integer class labels, got dtype " + py::str(py::handle(y.dtype())).cast<std::string>());
  if (y.ndim() != 1) throw_value_error("y must be 1-D, got " + std::to_string(y.ndim()) + "-D");
  if (static_cast<std::size_t>(y.shape(0)) != N)
    throw_value_error("y has " + std::to_string(y.shape(0)) + " labels but there are " + std::to_string(N) + " rows");
  auto y64 = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(y);
  if (!y64) throw_value_error("y must hold integer class labels representable as int64");
  const std::int64_t* data = y64.data();
  for (std::size_t i = 0; i < N; ++i) {
    if (data[i] < 0 || static_cast<std::size_t>(data[i]) >= C)
      throw_value_error("y[" + std::to_string(i) + "] = " + std::to_string(data[i]) + " is outside [0, " +
                        std::to_string(C) + ")");
  }
  return y64;
}

double check_reg(py::handle obj) {
  const double reg = to_double(obj, "reg");
  if (!(reg >= 0.0 && std::isfinite(reg))) throw_value_error("reg must be a finite number >= 0, got " + std::to_string(reg));
  return reg;
}

double check_delta(py::handle obj) {
  const double delta = to_double(obj, "delta");
  if (!(delta >= 0.0 && std::isfinite(delta)))
    throw_value_error("delta must be a finite number >= 0, got " + std::to_string(delta));
  return delta;
}

PenaltyKind check_penalty(py::handle kind, const char* name) {
  if (!py::isinstance<py::str>(kind)) throw_type_error(std::string(name) + " must be a str");
  const std::string k = kind.cast<std::string>();
  if (k == "l2") return PenaltyKind::l2;
  if (k == "l1") return PenaltyKind::l1;
  if (k == "elastic_net") return PenaltyKind::elastic_net;
  throw_value_error(std::string(name) + " must be 'l2', 'l1' or 'elastic_net', got '" + k + "'");
}

double check_l1_ratio(py::handle obj) {
  const double r = to_double(obj, "l1_ratio");
  if (!(r >= 0.0 && r <= 1.0)) throw_value_error("l1_ratio must be in [0, 1], got " + std::to_string(r));
  return r;
}

py::tuple linear_loss_binding(LossKind kind, py::handle W_obj, py::handle X_obj, py::handle y_obj,
                              py::handle reg_obj, double delta, py::handle penalty_obj, py::handle l1_obj) {
  DType w_dtype, x_dtype;
  const py::array W = float_array(W_obj, "W", 2, &w_dtype);
  const py::array X = float_array(X_obj, "X", 2, &x_dtype);
  require_same_dtype(x_dtype, "X", w_dtype, "W");
  const auto N = static_cast<std::size_t>(X.shape(0)), D = static_cast<std::size_t>(X.shape(1));
  const auto C = static_cast<std::size_t>(W.shape(1));
  if (static_cast<std::size_t>(W.shape(0)) != D)
    throw_value_error("X has " + std::to_string(D) + " columns but W has " + std::to_string(W.shape(0)) +
                      " rows; X is N×D and W is D×C");
  if (N == 0) throw_value_error("X has no rows (N = 0): the mean loss is undefined");
  if (C == 0) throw_value_error("W has no columns (C = 0)");
  const auto y = labels(y_obj, N, C);
  const double reg = check_reg(reg_obj);
  const PenaltyKind penalty_kind = check_penalty(penalty_obj, "penalty");
  const double l1_ratio = check_l1_ratio(l1_obj);
  py::array dW(W.dtype(), {W.shape(0), W.shape(1)});
  double loss;
  {
    py::gil_scoped_release release;
    loss = linear_loss(kind, w_dtype, W.data(), X.data(), y.data(), N, D, C, delta, penalty_kind, reg, l1_ratio,
                       dW.mutable_data());
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
    loss = scores_loss(kind, dtype, S.data(), y.data(), N, C, delta, dS.mutable_data());
  }
  return py::make_tuple(loss, dS);
}

}  // namespace

void register_loss(py::module_& m) {
  using py::arg;
  m.def("softmax_loss", [](py::object W, py::object X, py::object y, py::object reg, py::object penalty,
                           py::object l1_ratio) {
    return linear_loss_binding(LossKind::softmax, W, X, y, reg, 0.0, penalty, l1_ratio);
  }, arg("W"), arg("X"), arg("y"), arg("reg"), arg("penalty"), arg("l1_ratio"));
  m.def("svm_loss", [](py::object W, py::object X, py::object y, py::object reg, py::object delta,
                       py::object penalty, py::object l1_ratio) {
    return linear_loss_binding(LossKind::hinge, W, X, y, reg, check_delta(delta), penalty, l1_ratio);
  }, arg("W"), arg("X"), arg("y"), arg("reg"), arg("delta"), arg("penalty"), arg("l1_ratio"));
  m.def("softmax_cross_entropy", [](py::object scores, py::object y) {
    return scores_loss_binding(LossKind::softmax, scores, y, 0.0);
  }, arg("scores"), arg("y"));
  m.def("multiclass_hinge", [](py::object scores, py::object y, py::object delta) {
    return scores_loss_binding(LossKind::hinge, scores, y, check_delta(delta));
  }, arg("scores"), arg("y"), arg("delta"));
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
