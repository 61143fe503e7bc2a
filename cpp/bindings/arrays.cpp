#include "arrays.hpp"

#include <algorithm>
#include <sstream>

namespace fastopt::bindings {

std::string ArgName::str() const {
  std::string s = base;
  if (key) return s + "[" + py::repr(key).cast<std::string>() + "]";
  if (index >= 0) return s + "[" + std::to_string(index) + "]";
  return s;
}

void throw_type_error(const std::string& msg) { throw py::type_error(msg); }
void throw_value_error(const std::string& msg) { throw py::value_error(msg); }

namespace {
std::string type_name(py::handle obj) { return Py_TYPE(obj.ptr())->tp_name; }

std::string shape_str(const py::array& a) {
  std::ostringstream s;
  s << "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
  s << (a.ndim() == 1 ? ",)" : ")");
  return s.str();
}
}  // namespace

double to_double(py::handle obj, const char* name) {
  if (PyUnicode_Check(obj.ptr()) || PyBytes_Check(obj.ptr()) || obj.is_none())
    throw_type_error(std::string(name) + " must be a real number, got " + type_name(obj));
  const double x = PyFloat_AsDouble(obj.ptr());
  if (x == -1.0 && PyErr_Occurred()) {
    PyErr_Clear();
    throw_type_error(std::string(name) + " must be a real number, got " + type_name(obj));
  }
  return x;
}

std::int64_t to_int(py::handle obj, const char* name) {
  if (PyBool_Check(obj.ptr()) || PyFloat_Check(obj.ptr()))
    throw_type_error(std::string(name) + " must be an integer, got " + type_name(obj));
  PyObject* index = PyNumber_Index(obj.ptr());
  if (index == nullptr) {
    PyErr_Clear();
    throw_type_error(std::string(name) + " must be an integer, got " + type_name(obj));
  }
  const long long x = PyLong_AsLongLong(index);
  Py_DECREF(index);
  if (x == -1 && PyErr_Occurred()) {
    PyErr_Clear();
    throw_value_error(std::string(name) + " is out of the int64 range");
  }
  return x;
}

bool to_bool(py::handle obj, const char* name) {
  const int truth = PyObject_IsTrue(obj.ptr());
  if (truth < 0) {
    PyErr_Clear();
    throw_type_error(std::string(name) + " must be a bool, got " + type_name(obj));
  }
  return truth != 0;
}

py::array as_ndarray(py::handle obj, const ArgName& name) {
  if (!py::isinstance<py::array>(obj))
    throw_type_error(name.str() + " must be a numpy.ndarray, got " + type_name(obj));
  return py::reinterpret_borrow<py::array>(obj);
}

DType float_dtype_of(const py::array& a, const ArgName& name) {
  const py::dtype dt = a.dtype();
  const bool native = dt.byteorder() != '>';
  if (native && dt.num() == py::detail::npy_api::NPY_FLOAT_) return DType::f32;
  if (native && dt.num() == py::detail::npy_api::NPY_DOUBLE_) return DType::f64;
  throw_type_error(name.str() + " must have dtype float32 or float64, got " +
                   py::str(py::handle(dt)).cast<std::string>());
}

void require_disjoint(std::vector<ByteRange>& ranges) {
  std::sort(ranges.begin(), ranges.end(),
            [](const ByteRange& a, const ByteRange& b) { return a.begin < b.begin; });
  std::size_t reach = 0;  // the range with the farthest end among those before i
  for (std::size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].begin < ranges[reach].end)
      throw_value_error(ranges[reach].name.str() + " and " + ranges[i].name.str() +
                        " share memory; every buffer of a step must be a separate array");
    if (ranges[i].end > ranges[reach].end) reach = i;
  }
}

void require_outside(const ByteRange& r, const std::vector<ByteRange>& sorted_disjoint) {
  // Disjoint ranges sorted by begin have sorted ends too: find the first that ends after r begins.
  auto it = std::upper_bound(sorted_disjoint.begin(), sorted_disjoint.end(), r.begin,
                             [](const char* x, const ByteRange& b) { return x < b.end; });
  if (it != sorted_disjoint.end() && it->begin < r.end)
    throw_value_error(it->name.str() + " and " + r.name.str() +
                      " share memory; every buffer of a step must be a separate array");
}

namespace {
void* check_layout(const py::array& a, const ArgName& name, bool writable,
                   std::vector<ByteRange>* ranges) {
  const int flags = py::detail::array_proxy(a.ptr())->flags;
  if (!(flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_))
    throw_value_error(name.str() + " must be C-contiguous (use numpy.ascontiguousarray)");
  if (!(flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
    throw_value_error(name.str() + " must be aligned to its dtype");
  if (writable && !(flags & py::detail::npy_api::NPY_ARRAY_WRITEABLE_))
    throw_value_error(name.str() + " is read-only; it is updated in place and must be writeable");
  void* data = const_cast<void*>(a.data());
  const auto nbytes = static_cast<std::size_t>(a.nbytes());
  if (ranges != nullptr && nbytes > 0)
    ranges->push_back({static_cast<const char*>(data), static_cast<const char*>(data) + nbytes, name});
  return data;
}
}  // namespace

void* check_param(py::handle obj, const ArgName& name, py::array* out, DType* dtype,
                  std::vector<ByteRange>* ranges) {
  *out = as_ndarray(obj, name);
  *dtype = float_dtype_of(*out, name);
  return check_layout(*out, name, /*writable=*/true, ranges);
}

void* check_like(py::handle obj, const ArgName& name, bool writable, const py::array& ref,
                 const ArgName& ref_name, DType ref_dtype, std::vector<ByteRange>* ranges) {
  const py::array a = as_ndarray(obj, name);
  const DType dt = float_dtype_of(a, name);
  if (dt != ref_dtype)
    throw_type_error(name.str() + " has dtype " + py::str(py::handle(a.dtype())).cast<std::string>() +
                     " but " + ref_name.str() + " has dtype " +
                     py::str(py::handle(ref.dtype())).cast<std::string>() + "; mixed dtypes are not supported");
  bool same_shape = a.ndim() == ref.ndim();
  for (py::ssize_t i = 0; same_shape && i < a.ndim(); ++i) same_shape = a.shape(i) == ref.shape(i);
  if (!same_shape)
    throw_value_error(name.str() + " has shape " + shape_str(a) + " but " + ref_name.str() +
                      " has shape " + shape_str(ref));
  return check_layout(a, name, writable, ranges);
}

}  // namespace fastopt::bindings
