#include "arrays.hpp"

#include <algorithm>
#include <limits>
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

std::string type_name(py::handle obj) {
  if (obj.is_none()) return "None";
  const py::handle type = py::handle(reinterpret_cast<PyObject*>(Py_TYPE(obj.ptr())));
  const std::string module = py::str(type.attr("__module__"));
  const std::string qualname = py::str(type.attr("__qualname__"));
  return module == "builtins" ? qualname : module + "." + qualname;
}

namespace {

// Classes looked up once and kept for the life of the process (never
// destroyed: their destructors would run after the interpreter is gone).
py::handle cached(const char* module, const char* attr) {
  return py::object(py::module_::import(module).attr(attr)).release();
}
py::handle numbers_real() {
  static py::handle cls = cached("numbers", "Real");
  return cls;
}
py::handle numbers_integral() {
  static py::handle cls = cached("numbers", "Integral");
  return cls;
}
py::handle numpy_bool() {
  static py::handle cls = cached("numpy", "bool_");
  return cls;
}
py::handle numpy_memmap() {
  static py::handle cls = cached("numpy", "memmap");
  return cls;
}

bool is_instance(py::handle obj, py::handle cls) {
  const int r = PyObject_IsInstance(obj.ptr(), cls.ptr());
  if (r < 0) throw py::error_already_set();
  return r == 1;
}

bool is_bool(py::handle obj) {
  if (PyBool_Check(obj.ptr())) return true;
  if (PyFloat_CheckExact(obj.ptr()) || PyLong_CheckExact(obj.ptr())) return false;
  return is_instance(obj, numpy_bool());
}

}  // namespace

std::string shape_str(const py::array& a) {
  std::ostringstream s;
  s << "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
  s << (a.ndim() == 1 ? ",)" : ")");
  return s.str();
}

namespace {

int array_flags(const py::array& a) { return py::detail::array_proxy(a.ptr())->flags; }

}  // namespace

double to_double(py::handle obj, const char* name) {
  // Fast paths for the common exact types; everything else through numbers.Real.
  if (PyFloat_CheckExact(obj.ptr())) return PyFloat_AS_DOUBLE(obj.ptr());
  if (is_bool(obj) || !(PyLong_CheckExact(obj.ptr()) || is_instance(obj, numbers_real())))
    throw_type_error(std::string(name) + " must be a real number (int or float), got " + type_name(obj));
  const double x = PyFloat_AsDouble(obj.ptr());
  if (x == -1.0 && PyErr_Occurred()) {
    const bool overflow = PyErr_ExceptionMatches(PyExc_OverflowError);
    PyErr_Clear();
    if (overflow) throw_value_error(std::string(name) + " is too large to be a float");
    throw_type_error(std::string(name) + " must be a real number (int or float), got " + type_name(obj));
  }
  return x;
}

std::int64_t to_int(py::handle obj, const char* name) {
  if (is_bool(obj) || !(PyLong_CheckExact(obj.ptr()) || is_instance(obj, numbers_integral())))
    throw_type_error(std::string(name) + " must be an int, got " + type_name(obj));
  py::object index = py::reinterpret_steal<py::object>(PyNumber_Index(obj.ptr()));
  if (!index) {
    PyErr_Clear();
    throw_type_error(std::string(name) + " must be an int, got " + type_name(obj));
  }
  int overflow = 0;
  const long long x = PyLong_AsLongLongAndOverflow(index.ptr(), &overflow);
  if (overflow != 0) throw_value_error(std::string(name) + " = " + py::str(index).cast<std::string>() +
                                       " is outside the int64 range");
  if (x == -1 && PyErr_Occurred()) throw py::error_already_set();
  return x;
}

std::uint64_t to_uint64(py::handle obj, const char* name) {
  if (is_bool(obj) || !is_instance(obj, numbers_integral()))
    throw_type_error(std::string(name) + " must be an int, got " + type_name(obj));
  py::object index = py::reinterpret_steal<py::object>(PyNumber_Index(obj.ptr()));
  if (!index) {
    PyErr_Clear();
    throw_type_error(std::string(name) + " must be an int, got " + type_name(obj));
  }
  const unsigned long long x = PyLong_AsUnsignedLongLong(index.ptr());
  if (x == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
    PyErr_Clear();
    throw_value_error(std::string(name) + " must be in [0, 2**64)");
  }
  return x;
}

bool to_bool(py::handle obj, const char* name) {
  if (!is_bool(obj)) throw_type_error(std::string(name) + " must be a bool (True or False), got " + type_name(obj));
  return PyObject_IsTrue(obj.ptr()) == 1;
}

int to_choice(py::handle obj, const char* name, std::initializer_list<const char*> choices) {
  std::string expected;
  for (const char* c : choices) expected += std::string(expected.empty() ? "" : ", ") + "'" + c + "'";
  if (!PyUnicode_Check(obj.ptr()))
    throw_type_error(std::string(name) + " must be a str (one of " + expected + "), got " + type_name(obj));
  const std::string value = obj.cast<std::string>();
  int i = 0;
  for (const char* c : choices) {
    if (value == c) return i;
    ++i;
  }
  throw_value_error(std::string(name) + " must be one of " + expected + ", got '" + value + "'");
}

bool is_refused_subclass(py::handle obj) {
  return py::isinstance<py::array>(obj) && Py_TYPE(obj.ptr()) != py::detail::npy_api::get().PyArray_Type_ &&
         !is_instance(obj, numpy_memmap());
}

py::array as_ndarray(py::handle obj, const ArgName& name) {
  if (!py::isinstance<py::array>(obj))
    throw_type_error(name.str() + " must be a numpy.ndarray, got " + type_name(obj));
  if (is_refused_subclass(obj))
    throw_type_error(name.str() + " is a " + type_name(obj) +
                     "; fastopt reads and writes plain numpy.ndarray data and would ignore what the subclass "
                     "adds (a mask, units, matrix semantics): pass numpy.asarray(" + name.str() + ") if that is meant");
  return py::reinterpret_borrow<py::array>(obj);
}

DType float_dtype_of(const py::array& a, const ArgName& name) {
  const py::dtype dt = a.dtype();
  const bool native = dt.byteorder() != '>';
  if (native && dt.num() == py::detail::npy_api::NPY_FLOAT_) return DType::f32;
  if (native && dt.num() == py::detail::npy_api::NPY_DOUBLE_) return DType::f64;
  throw_type_error(name.str() + " must have dtype float32 or float64 (native byte order), got " +
                   py::str(py::handle(dt)).cast<std::string>());
}

namespace {
// ml_dtypes registers bfloat16 as a user-defined NumPy type; its type number is
// assigned at import, so it is recognized by name (and remembered).
bool is_bfloat16(const py::dtype& dt) {
  static int known_num = -1;  // guarded by the GIL
  const int num = dt.num();
  if (num == known_num) return true;
  if (num < 256 || dt.itemsize() != 2) return false;  // 256: NPY_USERDEF
  const py::object type = dt.attr("type");
  const std::string name = py::str(type.attr("__name__"));
  const std::string module = py::str(type.attr("__module__"));
  if (name != "bfloat16" || module.rfind("ml_dtypes", 0) != 0) return false;
  known_num = num;
  return true;
}
}  // namespace

DType optim_dtype_of(const py::array& a, const ArgName& name) {
  const py::dtype dt = a.dtype();
  const bool native = dt.byteorder() != '>';
  if (native && dt.num() == py::detail::npy_api::NPY_FLOAT_) return DType::f32;
  if (native && dt.num() == py::detail::npy_api::NPY_DOUBLE_) return DType::f64;
  if (native && dt.num() == 23) return DType::f16;  // NPY_HALF
  if (is_bfloat16(dt)) return DType::bf16;
  throw_type_error(name.str() + " must have dtype float32, float64, float16 or bfloat16 (ml_dtypes; native byte "
                   "order), got " + py::str(py::handle(dt)).cast<std::string>());
}

void require_storage(const Storage& s, const TensorArrays& t) {
  const StorageProblem problem = storage_problem(s, t.copy != nullptr);
  if (problem.slot < 0) return;
  const py::array* culprit = t.param;
  const ArgName* culprit_name = &t.param_name;
  if (problem.slot == kGrad) culprit = t.grad, culprit_name = &t.grad_name;
  if (problem.slot == kFirstState) culprit = t.state, culprit_name = &t.state_name;
  if (problem.slot == kParamCopy) culprit = t.copy, culprit_name = &t.copy_name;
  auto dtype_str = [](const py::array* a) { return py::str(py::handle(a->dtype())).cast<std::string>(); };
  if (culprit == t.param || culprit == nullptr)
    throw_type_error(t.param_name.str() + " has dtype " + dtype_str(t.param) + ": " + problem.reason);
  throw_type_error(culprit_name->str() + " has dtype " + dtype_str(culprit) + " but " + t.param_name.str() +
                   " has dtype " + dtype_str(t.param) + ": " + problem.reason);
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
  if (r.begin == r.end) return;
  // Disjoint ranges sorted by begin have sorted ends too: find the first that ends after r begins.
  auto it = std::upper_bound(sorted_disjoint.begin(), sorted_disjoint.end(), r.begin,
                             [](const char* x, const ByteRange& b) { return x < b.end; });
  if (it != sorted_disjoint.end() && it->begin < r.end)
    throw_value_error(it->name.str() + " and " + r.name.str() +
                      " share memory; an array that is written must not be read through another argument");
}

ByteRange byte_range(const py::array& a, const ArgName& name) {
  const char* data = static_cast<const char*>(a.data());
  if (a.size() == 0) return {data, data, name};
  // Lowest and highest byte any element touches, whatever the strides' signs.
  py::ssize_t low = 0, high = static_cast<py::ssize_t>(a.itemsize());
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    const py::ssize_t extent = (a.shape(d) - 1) * a.strides(d);
    if (extent < 0) low += extent;
    else high += extent;
  }
  return {data + low, data + high, name};
}

namespace {
void check_layout(const py::array& a, const ArgName& name, bool writable, std::vector<ByteRange>* ranges) {
  const int flags = array_flags(a);
  if (!(flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_))
    throw_value_error(name.str() + " must be C-contiguous (use numpy.ascontiguousarray)");
  if (!(flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
    throw_value_error(name.str() + " must be aligned to its dtype");
  if (writable && !(flags & py::detail::npy_api::NPY_ARRAY_WRITEABLE_))
    throw_value_error(name.str() + " is read-only; it is updated in place and must be writeable");
  if (ranges != nullptr && a.size() > 0) ranges->push_back(byte_range(a, name));
}
}  // namespace

py::array check_param(py::handle obj, const ArgName& name, DType* dtype, std::vector<ByteRange>* ranges) {
  py::array a = as_ndarray(obj, name);
  *dtype = optim_dtype_of(a, name);
  check_layout(a, name, /*writable=*/true, ranges);
  return a;
}

py::array check_like(py::handle obj, const ArgName& name, bool writable, const py::array& ref,
                     const ArgName& ref_name, DType* dtype, std::vector<ByteRange>* ranges) {
  py::array a = as_ndarray(obj, name);
  *dtype = optim_dtype_of(a, name);
  bool same_shape = a.ndim() == ref.ndim();
  for (py::ssize_t i = 0; same_shape && i < a.ndim(); ++i) same_shape = a.shape(i) == ref.shape(i);
  if (!same_shape)
    throw_value_error(name.str() + " has shape " + shape_str(a) + " but " + ref_name.str() +
                      " has shape " + shape_str(ref));
  check_layout(a, name, writable, ranges);
  return a;
}

std::vector<std::size_t> dims_of(const py::array& a) {
  std::vector<std::size_t> dims(static_cast<std::size_t>(a.ndim()));
  for (py::ssize_t i = 0; i < a.ndim(); ++i) dims[static_cast<std::size_t>(i)] = static_cast<std::size_t>(a.shape(i));
  return dims;
}

py::array check_state(py::handle obj, const ArgName& name, StateShape shape, const py::array& ref,
                      const ArgName& ref_name, DType* dtype, std::vector<ByteRange>* ranges) {
  py::array a = as_ndarray(obj, name);
  const py::dtype dt = a.dtype();
  if (shape == StateShape::elementwise && dt.num() == py::detail::npy_api::NPY_UBYTE_) {
    *dtype = DType::u8;  // 8-bit codes (optim/quantization.hpp)
  } else if (shape == StateShape::block) {
    if (dt.num() != py::detail::npy_api::NPY_FLOAT_ || dt.byteorder() == '>')
      throw_type_error(name.str() + " must have dtype float32 (the absmax of each block of 8-bit state), got " +
                       py::str(py::handle(dt)).cast<std::string>());
    *dtype = DType::f32;
  } else {
    *dtype = optim_dtype_of(a, name);
  }
  if (shape == StateShape::elementwise) {
    bool same_shape = a.ndim() == ref.ndim();
    for (py::ssize_t i = 0; same_shape && i < a.ndim(); ++i) same_shape = a.shape(i) == ref.shape(i);
    if (!same_shape)
      throw_value_error(name.str() + " has shape " + shape_str(a) + " but " + ref_name.str() + " has shape " +
                        shape_str(ref));
  } else {
    const std::vector<std::size_t> ref_dims = dims_of(ref);
    const std::vector<std::size_t> want = state_dims(shape, ref_dims.data(), ref_dims.size());
    if (dims_of(a) != want) {
      std::string expected = "(";
      for (std::size_t i = 0; i < want.size(); ++i) expected += (i ? ", " : "") + std::to_string(want[i]);
      expected += want.size() == 1 ? ",)" : ")";
      throw_value_error(name.str() + " has shape " + shape_str(a) + " but a " + state_shape_name(shape) +
                        " state of " + ref_name.str() + " (shape " + shape_str(ref) + ") has shape " + expected);
    }
  }
  check_layout(a, name, /*writable=*/true, ranges);
  return a;
}

py::array check_scalar_state(py::handle obj, const ArgName& name, DType* dtype, std::vector<ByteRange>* ranges) {
  py::array a = as_ndarray(obj, name);
  *dtype = float_dtype_of(a, name);
  if (a.size() != 1)
    throw_value_error(name.str() + " must hold one number (a 0-d array), got shape " + shape_str(a));
  check_layout(a, name, /*writable=*/true, ranges);
  return a;
}

CheckedArray::CheckedArray(py::array a, ArgName n, bool w)
    : array(std::move(a)),
      data(const_cast<void*>(array.data())),
      nbytes(static_cast<std::size_t>(array.nbytes())),
      type_num(array.dtype().num()),
      writable(w),
      name(n) {}

void CheckedArray::require_unchanged() const {
  const int flags = array_flags(array);
  if (array.data() != data || static_cast<std::size_t>(array.nbytes()) != nbytes || array.dtype().num() != type_num ||
      !(flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_))
    throw_value_error(name.str() + " was resized, re-typed or re-shaped in place after the optimizer checked it; "
                      "create a new optimizer for the changed arrays");
  if (writable && !(flags & py::detail::npy_api::NPY_ARRAY_WRITEABLE_))
    throw_value_error(name.str() + " became read-only after the optimizer was created; it is updated in place");
}

}  // namespace fastopt::bindings
