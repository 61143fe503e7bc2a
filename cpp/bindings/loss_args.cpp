// Argument checking of the loss bindings (loss_args.hpp).
#include "loss_args.hpp"

#include <cmath>
#include <cstring>
#include <string>

namespace fastopt::bindings {

py::array float_array(py::handle obj, const char* name, int ndim, DType* dtype) {
  const ArgName arg(name);
  py::array a = as_ndarray(obj, arg);
  *dtype = float_dtype_of(a, arg);
  if (ndim > 0 && a.ndim() != ndim)
    throw_value_error(std::string(name) + " must be " + std::to_string(ndim) + "-D, got " +
                      std::to_string(a.ndim()) + "-D");
  const int flags = py::detail::array_proxy(a.ptr())->flags;
  const int wanted = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_;
  // A fresh copy (ascontiguousarray would return a contiguous but misaligned array as it is).
  if ((flags & wanted) != wanted) a = py::module_::import("numpy").attr("array")(a, py::arg("order") = "C");
  return a;
}

void require_same_dtype(DType a, const char* a_name, DType b, const char* b_name) {
  if (a != b)
    throw_type_error(std::string(a_name) + " and " + b_name + " must have the same dtype " +
                     "(float32 or float64); mixed dtypes are not supported");
}

Labels labels(py::handle obj, std::size_t N, std::size_t C) {
  if (is_refused_subclass(obj))
    throw_type_error("y is a " + type_name(obj) + "; pass plain integer labels (numpy.asarray(y))");
  py::array y = py::module_::import("numpy").attr("asarray")(obj);
  const char kind = y.dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw_value_error("y must hold integer class labels, got dtype " + py::str(py::handle(y.dtype())).cast<std::string>());
  if (y.ndim() != 1) throw_value_error("y must be 1-D, got " + std::to_string(y.ndim()) + "-D");
  if (static_cast<std::size_t>(y.shape(0)) != N)
    throw_value_error("y has " + std::to_string(y.shape(0)) + " labels but there are " + std::to_string(N) + " rows");
  if (kind == 'u' && y.itemsize() == 8) {  // uint64 above 2**63 would wrap to negative int64
    const py::object too_big = y.attr("__gt__")(py::int_(INT64_MAX)).attr("any")();
    if (too_big.cast<bool>()) throw_value_error("y holds a label outside [0, " + std::to_string(C) + ")");
  }
  // Always a private copy: the kernels index with these values while the GIL is
  // released, so neither the caller nor another thread may change them then.
  Labels out;
  out.source = byte_range(y, ArgName("y"));
  out.source_object = y;
  out.values = py::array_t<std::int64_t>(static_cast<py::ssize_t>(N));
  py::array_t<std::int64_t> dst = out.values;
  py::module_::import("numpy").attr("copyto")(dst, y, py::arg("casting") = "unsafe");
  const std::int64_t* data = out.values.data();
  for (std::size_t i = 0; i < N; ++i) {
    if (data[i] < 0 || static_cast<std::size_t>(data[i]) >= C)
      throw_value_error("y[" + std::to_string(i) + "] = " + std::to_string(data[i]) + " is outside [0, " +
                        std::to_string(C) + ")");
  }
  return out;
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
  return static_cast<PenaltyKind>(to_choice(kind, name, {"l2", "l1", "elastic_net"}));
}

double check_l1_ratio(py::handle obj) {
  const double r = to_double(obj, "l1_ratio");
  if (!(r >= 0.0 && r <= 1.0)) throw_value_error("l1_ratio must be in [0, 1], got " + std::to_string(r));
  return r;
}

namespace {
py::array_t<double> sample_weights(py::handle obj, std::size_t N, double* mean) {
  if (is_refused_subclass(obj))
    throw_type_error("sample_weight is a " + type_name(obj) + "; pass numpy.asarray(sample_weight)");
  const py::array given = py::array::ensure(obj);
  if (!given) {
    PyErr_Clear();
    throw_type_error("sample_weight must be an array of numbers, got " + type_name(obj));
  }
  const char kind = given.dtype().kind();
  if (kind != 'i' && kind != 'u' && kind != 'f')
    throw_type_error("sample_weight must hold real numbers, got dtype " + py::str(py::handle(given.dtype())).cast<std::string>());
  if (given.ndim() != 1 || static_cast<std::size_t>(given.shape(0)) != N)
    throw_value_error("sample_weight must have one weight per row of X (" + std::to_string(N) + "), got shape " +
                      py::str(py::handle(given.attr("shape"))).cast<std::string>());
  // A private copy: the kernels read it with the GIL released.
  py::array_t<double> w(static_cast<py::ssize_t>(N));
  w[py::slice(0, static_cast<py::ssize_t>(N), 1)] = given;
  const double* v = w.data();
  double sum = 0.0;
  for (std::size_t i = 0; i < N; ++i) {
    if (!(v[i] >= 0.0 && std::isfinite(v[i])))
      throw_value_error("sample_weight must be finite and >= 0; sample_weight[" + std::to_string(i) + "] is " +
                        std::to_string(v[i]));
    sum += v[i];
  }
  if (!(sum > 0.0 && std::isfinite(sum))) throw_value_error("sample_weight must have a positive, finite sum");
  *mean = sum / static_cast<double>(N);
  return w;
}
}  // namespace

LinearArgs check_linear_args(const py::array& W, DType w_dtype, py::handle X_obj, py::handle y_obj,
                             py::handle reg_obj, py::handle penalty_obj, py::handle l1_obj,
                             py::handle sample_weight_obj, py::handle unpenalized_obj, py::handle intercept_obj) {
  DType x_dtype;
  LinearArgs a;
  a.X = float_array(X_obj, "X", 2, &x_dtype);
  require_same_dtype(x_dtype, "X", w_dtype, "W");
  a.N = static_cast<std::size_t>(a.X.shape(0));
  a.D = static_cast<std::size_t>(a.X.shape(1));
  a.C = static_cast<std::size_t>(W.shape(1));
  a.intercept = to_bool(intercept_obj, "intercept");
  if (static_cast<std::size_t>(W.shape(0)) != a.D + (a.intercept ? 1 : 0))
    throw_value_error("X has " + std::to_string(a.D) + " columns but W has " + std::to_string(W.shape(0)) +
                      " rows; X is N×D and W is D×C" + (a.intercept ? " plus the intercepts' row: (D + 1)×C" : ""));
  if (a.N == 0) throw_value_error("X has no rows (N = 0): the mean loss is undefined");
  if (a.C == 0) throw_value_error("W has no columns (C = 0)");
  a.y = labels(y_obj, a.N, a.C);
  a.reg = check_reg(reg_obj);
  a.penalty = check_penalty(penalty_obj, "penalty");
  a.l1_ratio = check_l1_ratio(l1_obj);
  if (!sample_weight_obj.is_none()) {
    a.sample_weight = sample_weights(sample_weight_obj, a.N, &a.weights.mean_weight);
    a.weights.sample_weight = a.sample_weight.data();
  }
  const std::int64_t unpenalized = to_int(unpenalized_obj, "unpenalized_rows");
  const std::size_t W_rows = static_cast<std::size_t>(W.shape(0));
  if (unpenalized < 0 || static_cast<std::size_t>(unpenalized) > W_rows)
    throw_value_error("unpenalized_rows must be in [0, rows of W] = [0, " + std::to_string(W_rows) + "], got " +
                      std::to_string(unpenalized));
  a.weights.penalized_rows = W_rows - static_cast<std::size_t>(unpenalized);
  return a;
}

}  // namespace fastopt::bindings
