// Argument checking shared by every binding: the only place that decides what
// a valid array or scalar argument is. Errors name the argument.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <string>
#include <vector>

#include "fastopt/optim.hpp"

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

// Scalars: accepts anything with __float__ / __index__; TypeError naming it otherwise.
double to_double(py::handle obj, const char* name);
std::int64_t to_int(py::handle obj, const char* name);
bool to_bool(py::handle obj, const char* name);

// The array behind `obj`, which must be a numpy.ndarray (no implicit copies:
// an in-place update of a temporary would be silently lost).
py::array as_ndarray(py::handle obj, const ArgName& name);
// float32 or float64 in native byte order, else TypeError.
DType float_dtype_of(const py::array& a, const ArgName& name);

struct ByteRange {
  const char* begin;
  const char* end;
  ArgName name;
};

// Raises ValueError naming two arguments whose memory overlaps. Sorts `ranges`.
void require_disjoint(std::vector<ByteRange>& ranges);
// Raises ValueError if `r` overlaps any of `sorted_disjoint` (sorted by begin).
void require_outside(const ByteRange& r, const std::vector<ByteRange>& sorted_disjoint);

// Checks one array of a tensor against the tensor's parameter `ref`: ndarray,
// same dtype (TypeError), same shape, C-contiguous, aligned, writeable when
// `writable` (ValueError). Returns its data pointer; appends its byte range.
void* check_like(py::handle obj, const ArgName& name, bool writable, const py::array& ref,
                 const ArgName& ref_name, DType ref_dtype, std::vector<ByteRange>* ranges);
// The same checks for the parameter itself (dtype float32/float64, writeable).
void* check_param(py::handle obj, const ArgName& name, py::array* out, DType* dtype,
                  std::vector<ByteRange>* ranges);

}  // namespace fastopt::bindings
