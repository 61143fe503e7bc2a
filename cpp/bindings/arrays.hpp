// The strict argument layer shared by every binding: the only place that
// decides what a valid array or scalar argument is. Every error is a
// TypeError or ValueError that names the argument and says what was expected.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "optim/storage.hpp"

namespace fastopt::bindings {

namespace py = pybind11;

// "p", "grads[3]" or "grads['w']"; built into a string only on the error path.
struct ArgName {
  explicit ArgName(const char* base_, std::ptrdiff_t index_ = -1, py::handle key_ = py::handle())
      : base(base_), index(index_), key(key_) {}
  const char* base;
  std::ptrdiff_t index;
  py::handle key;  // dict key, if any (borrowed)
  std::string str() const;
};

[[noreturn]] void throw_type_error(const std::string& msg);
[[noreturn]] void throw_value_error(const std::string& msg);
std::string type_name(py::handle obj);

// Scalars. A real number is a Python int or float, a NumPy integer or floating
// scalar, or any other numbers.Real; bools (Python or NumPy), complex numbers,
// strings and None are refused. An integer is an int or NumPy integer (not a
// bool, not a float). A flag is a Python or NumPy bool and nothing else.
double to_double(py::handle obj, const char* name);
std::int64_t to_int(py::handle obj, const char* name);
std::uint64_t to_uint64(py::handle obj, const char* name);  // in [0, 2**64)
bool to_bool(py::handle obj, const char* name);
// One of `choices` (a str); its index.
int to_choice(py::handle obj, const char* name, std::initializer_list<const char*> choices);

// The array behind `obj`: a numpy.ndarray or numpy.memmap, nothing converted
// (an in-place update of a temporary copy would be silently lost). Subclasses
// whose meaning differs from their data (masked arrays, matrix, ...) are refused.
py::array as_ndarray(py::handle obj, const ArgName& name);
// True for the subclasses as_ndarray refuses (for inputs converted by NumPy).
bool is_refused_subclass(py::handle obj);
// float32 or float64 in native byte order, else TypeError.
DType float_dtype_of(const py::array& a, const ArgName& name);
// The element type of an optimizer buffer: float32, float64, float16 or
// ml_dtypes.bfloat16, native byte order; else TypeError.
DType optim_dtype_of(const py::array& a, const ArgName& name);

struct ByteRange {
  const char* begin;
  const char* end;
  ArgName name;
};

// Raises ValueError naming two arguments whose memory overlaps. Sorts `ranges`.
void require_disjoint(std::vector<ByteRange>& ranges);
// Raises ValueError if `r` overlaps any of `sorted_disjoint` (sorted by begin).
void require_outside(const ByteRange& r, const std::vector<ByteRange>& sorted_disjoint);
// The bytes an array spans (empty for size 0); any strides.
ByteRange byte_range(const py::array& a, const ArgName& name);

// Checks one array of a tensor against the tensor's parameter `ref`: ndarray
// of an optimizer dtype (TypeError; which combinations are allowed is
// require_storage's business), same shape, C-contiguous, aligned, writeable
// when `writable` (ValueError). Returns the array and its dtype; appends its
// byte range.
py::array check_like(py::handle obj, const ArgName& name, bool writable, const py::array& ref,
                     const ArgName& ref_name, DType* dtype, std::vector<ByteRange>* ranges);
// A state buffer of shape `shape` (optim.hpp, StateShape) of the parameter
// `ref`: as check_like, with the shape state_dims() gives; an elementwise
// state may also be uint8 (8-bit codes), a block state (their absmax) is
// float32. Not for StateShape::tensor (check_scalar_state).
py::array check_state(py::handle obj, const ArgName& name, StateShape shape, const py::array& ref,
                      const ArgName& ref_name, DType* dtype, std::vector<ByteRange>* ranges);
// "(3, 4)", "(5,)" or "()".
std::string shape_str(const py::array& a);
// The dimensions of an array, for optim.hpp's shape functions.
std::vector<std::size_t> dims_of(const py::array& a);
// A per-tensor state (StateShape::tensor): a writeable, aligned float32 or
// float64 ndarray holding one number (0-d, as torch keeps it, or any shape of
// size 1). Appends its byte range.
py::array check_scalar_state(py::handle obj, const ArgName& name, DType* dtype, std::vector<ByteRange>* ranges);
// The same checks for the parameter itself (writeable).
py::array check_param(py::handle obj, const ArgName& name, DType* dtype, std::vector<ByteRange>* ranges);

// The arrays of one tensor and their names, for require_storage's message.
struct TensorArrays {
  const py::array* param;
  ArgName param_name;
  const py::array* grad = nullptr;  // null: not known yet (given per step)
  ArgName grad_name{""};
  const py::array* state = nullptr;  // the first state array, if any
  ArgName state_name{""};
  const py::array* copy = nullptr;
  ArgName copy_name{""};
};
// TypeError naming the array whose dtype the storage does not allow
// (storage_problem in optim.hpp), e.g. "g has dtype float64 but p has dtype
// float32: float32 parameters take float32, float16 or bfloat16 gradients".
void require_storage(const Storage& s, const TensorArrays& arrays);

// What an array looked like when it was checked. A held reference keeps its
// memory alive, but Python code may still change the array in place
// (ndarray.resize(refcheck=False), setting .dtype, .shape or .flags); a step
// refuses an array that no longer matches what was checked.
struct CheckedArray {
  py::array array;
  void* data;
  std::size_t nbytes;
  int type_num;
  bool writable;  // it was checked writeable and must still be
  ArgName name;
  CheckedArray(py::array a, ArgName n, bool w);
  void require_unchanged() const;
};

}  // namespace fastopt::bindings
