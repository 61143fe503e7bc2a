// Element types of every buffer fastopt reads or writes.
#pragma once

#include <cstddef>

namespace fastopt {

// Element types. The optimizer's arithmetic ("opmath") is float32 for f32, f16
// and bf16 buffers and float64 for f64 buffers; the loss kernels take f32/f64.
// u8 holds the codes of 8-bit optimizer state (optim/quantization.hpp).
enum class DType : int { f32, f64, f16, bf16, u8, count };
const char* dtype_name(DType dtype);
std::size_t dtype_size(DType dtype);

}  // namespace fastopt
