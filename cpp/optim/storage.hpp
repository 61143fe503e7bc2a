// How an optimizer's tensors are stored: the slots of a tensor's buffers, their
// dtypes (the supported storage layouts) and its shape as a stack of matrices.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/dtype.hpp"

namespace fastopt {

// Buffers of one tensor: the parameter, the gradient (only read), the rule's
// elementwise state buffers in its registry order (state i in slot
// kFirstState + i), and an optional low-precision copy of the parameter written
// after the update (master-weight mode). Unused optional slots are null. The
// parameter, gradient and copy have length n; a state buffer has
// state_length(its shape) elements. A rule's per-tensor state
// (StateShape::tensor: one number per tensor, such as NAdam's running product
// of momentum factors) is in `scalar`, each a float32 or float64 number (torch
// keeps a 0-d tensor).
constexpr int kParam = 0;
constexpr int kGrad = 1;
constexpr int kFirstState = 2;
constexpr int kStateEnd = 5;  // states are slots [kFirstState, kStateEnd)
constexpr int kParamCopy = 5;
constexpr int kMaxSlots = 6;
constexpr int kMaxScalars = 2;

// How a tensor's buffers are stored. The supported combinations
// (storage_problem() says why any other is refused):
//   param f64:       grad f64, state f64
//   param f32:       grad f32, f16 or bf16; state f32; copy f16 or bf16 (optional)
//   param f16/bf16:  grad the param's dtype or f32; state f32 or the param's dtype
// and, for f32, f16 and bf16 parameters, state u8: 8-bit codes with a float32
// absmax per block (optim/quantization.hpp), for rules whose elementwise state
// has a quantization map (StateSpec::quant).
struct Storage {
  DType param = DType::f32;
  DType grad = DType::f32;
  DType state = DType::f32;
  DType copy = DType::f32;  // of slot kParamCopy, when set
  // Every buffer in the opmath dtype: the rule's kernel runs on memory directly.
  bool direct(bool has_copy) const {
    return !has_copy && grad == param && state == param && (param == DType::f32 || param == DType::f64);
  }
  bool quantized() const { return state == DType::u8; }
  // The storage whose kernel updates a quantized tensor, block by block, on
  // its state dequantized to float32.
  Storage dequantized() const {
    Storage s = *this;
    if (quantized()) s.state = DType::f32;
    return s;
  }
};
// Why a storage is refused: the slot at fault (kParam, kGrad, kFirstState for
// the state, kParamCopy) and the rule it breaks; slot -1 when supported.
struct StorageProblem {
  int slot = -1;
  std::string reason;
};
StorageProblem storage_problem(const Storage& s, bool has_copy);

struct TensorBuffers {
  void* slot[kMaxSlots] = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
  // With 8-bit state (storage.state u8): the float32 absmax of every block of
  // state i's codes (StateShape::block, quant_blocks(n) of them).
  float* absmax[kStateEnd - kFirstState] = {nullptr, nullptr, nullptr};
  void* scalar[kMaxScalars] = {nullptr, nullptr};
  DType scalar_dtype[kMaxScalars] = {DType::f32, DType::f32};  // f32 or f64
  std::size_t n = 0;
  Storage storage;
  // A parameter of two or more dimensions (..., rows, cols) is also a stack of
  // `slices` matrices (factored state): n = slices·rows·cols. slices == 0 for
  // fewer dimensions.
  std::size_t slices = 0, rows = 0, cols = 0;
  std::uint32_t group = 0;   // index of this tensor's StepCoefficients in a step
  std::uint64_t stream = 0;  // stochastic rounding: the tensor's number in the hash
  double* scratch = nullptr;  // set by the driver for multi-pass rules (RuleSpec::passes)
  // The index in the whole tensor of the slots' element 0: nonzero for the
  // driver's view of a chunk of a quantized tensor, so stochastic rounding
  // draws the bits of each element's own index.
  std::size_t offset = 0;
};
// rows and cols of a parameter with these dimensions (outermost first).
void set_matrix_view(TensorBuffers& t, const std::size_t* dims, std::size_t ndim);

// The shape of a state buffer, relative to its parameter.
enum class StateShape : int {
  elementwise,  // one value per element: the parameter's shape
  tensor,       // one number per tensor (torch: a 0-d tensor), float32 or float64
  // Factored (Adafactor's second moment): a parameter of two or more dimensions
  // (..., m, n) keeps a row vector (..., m, 1) and a column vector (..., 1, n);
  // one of fewer dimensions keeps an elementwise buffer instead.
  row,
  col,
  unfactored,  // the parameter's shape, kept only by parameters of fewer than 2 dimensions
  // One float32 per block of kQuantBlock elements (quant_blocks(n), a 1-d
  // buffer): the absmax scales of an 8-bit elementwise state.
  block,
};
const char* state_shape_name(StateShape shape);
// Whether a parameter of `ndim` dimensions keeps a state of this shape.
bool keeps_state(StateShape shape, std::size_t ndim);
// The dimensions of such a state buffer (for StateShape::tensor: none, one number).
std::vector<std::size_t> state_dims(StateShape shape, const std::size_t* dims, std::size_t ndim);
bool keeps_state(StateShape shape, const TensorBuffers& t);
// Its number of elements for a tensor's buffers (0 when the tensor keeps none).
std::size_t state_length(StateShape shape, const TensorBuffers& t);

}  // namespace fastopt
