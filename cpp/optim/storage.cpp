#include "optim/storage.hpp"

#include <stdexcept>

#include "optim/quantization.hpp"

namespace fastopt {

StorageProblem storage_problem(const Storage& s, bool has_copy) {
  const std::string param = dtype_name(s.param);
  const bool low = s.param == DType::f16 || s.param == DType::bf16;
  if (s.param == DType::f64) {
    if (s.grad != DType::f64) return {kGrad, "float64 parameters take float64 gradients"};
    if (s.state != DType::f64) return {kFirstState, "float64 parameters keep float64 state"};
  } else if (s.param == DType::f32) {
    if (s.grad != DType::f32 && s.grad != DType::f16 && s.grad != DType::bf16)
      return {kGrad, "float32 parameters take float32, float16 or bfloat16 gradients"};
    if (s.state != DType::f32 && s.state != DType::u8)
      return {kFirstState, "float32 parameters keep float32 or 8-bit (uint8 codes) state"};
    if (has_copy && s.copy != DType::f16 && s.copy != DType::bf16)
      return {kParamCopy, "the parameter copy must be float16 or bfloat16"};
  } else if (low) {
    if (s.grad != s.param && s.grad != DType::f32)
      return {kGrad, param + " parameters take " + param + " or float32 gradients"};
    if (s.state != s.param && s.state != DType::f32 && s.state != DType::u8)
      return {kFirstState, param + " parameters keep float32, " + param + " or 8-bit (uint8 codes) state"};
  } else {
    return {kParam, "parameters must be float32, float64, float16 or bfloat16"};
  }
  if (has_copy && s.param != DType::f32)
    return {kParamCopy, "a low-precision copy is written for float32 parameters only (master-weight mode)"};
  return {};
}

void set_matrix_view(TensorBuffers& t, const std::size_t* dims, std::size_t ndim) {
  t.slices = t.rows = t.cols = 0;
  if (ndim < 2) return;
  t.slices = 1;
  for (std::size_t d = 0; d + 2 < ndim; ++d)
    if (__builtin_mul_overflow(t.slices, dims[d], &t.slices))
      throw std::invalid_argument("a parameter's shape overflows");
  t.rows = dims[ndim - 2];
  t.cols = dims[ndim - 1];
}

const char* state_shape_name(StateShape shape) {
  switch (shape) {
    case StateShape::elementwise: return "elementwise";
    case StateShape::tensor: return "tensor";
    case StateShape::row: return "row";
    case StateShape::col: return "col";
    case StateShape::unfactored: return "unfactored";
    case StateShape::block: return "block";
  }
  return "?";
}

bool keeps_state(StateShape shape, std::size_t ndim) {
  switch (shape) {
    case StateShape::row:
    case StateShape::col: return ndim >= 2;
    case StateShape::unfactored: return ndim < 2;
    default: return true;
  }
}

bool keeps_state(StateShape shape, const TensorBuffers& t) { return keeps_state(shape, t.slices > 0 ? 2 : 1); }

std::vector<std::size_t> state_dims(StateShape shape, const std::size_t* dims, std::size_t ndim) {
  if (shape == StateShape::tensor) return {};
  if (shape == StateShape::block) {
    std::size_t n = 1;
    for (std::size_t d = 0; d < ndim; ++d) n *= dims[d];  // the caller's array exists: no overflow
    return {quant_blocks(n)};
  }
  std::vector<std::size_t> out(dims, dims + ndim);
  if (shape == StateShape::row && ndim >= 2) out[ndim - 1] = 1;
  if (shape == StateShape::col && ndim >= 2) out[ndim - 2] = 1;
  return out;
}

std::size_t state_length(StateShape shape, const TensorBuffers& t) {
  const bool matrix = t.slices > 0;
  switch (shape) {
    case StateShape::elementwise: return t.n;
    case StateShape::tensor: return 1;
    case StateShape::row: return matrix ? t.slices * t.rows : 0;
    case StateShape::col: return matrix ? t.slices * t.cols : 0;
    case StateShape::unfactored: return matrix ? 0 : t.n;
    case StateShape::block: return quant_blocks(t.n);
  }
  return 0;
}

}  // namespace fastopt
