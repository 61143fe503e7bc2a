// Mixed-precision optimizer steps: float16 / bfloat16 buffers computed in float32.
//
// Compiled once per ISA, like kernels/optim.cpp. A span is processed in chunks
// of kChunk elements: every buffer not stored as float32 is widened into a
// stack buffer, the rule's float32 kernel runs on the chunk (the very kernel of
// float32 tensors, so each rule is still defined once), and the results are
// rounded back — parameters to nearest even or stochastically, state to nearest
// even — and, in master-weight mode, the updated float32 parameter is rounded
// into its low-precision copy. The chunks stay in L1: memory is passed over once.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "fastopt/isa_namespace.hpp"
#include "fastopt/low_precision.hpp"
#include "fastopt/optim.hpp"

namespace fastopt {
namespace FASTOPT_ISA {
namespace {

using std::size_t;
using std::uint16_t;
using std::uint32_t;
namespace lp = low_precision;

// Elements per chunk: six float32 rows of it (24 KiB at most) fit in L1. A
// multiple of every vector width; block starts (multiples of kBlockElements)
// are multiples of it, so a chunk never straddles a 2^32 element boundary.
constexpr size_t kChunk = 1024;
static_assert(kBlockElements % kChunk == 0, "chunks tile blocks");

void widen(DType dtype, const void* src, size_t begin, float* __restrict dst, size_t n) {
  const uint16_t* __restrict s = static_cast<const uint16_t*>(src) + begin;
  if (dtype == DType::f16) {
    for (size_t i = 0; i < n; ++i) dst[i] = lp::f16_to_float(s[i]);
  } else {
    for (size_t i = 0; i < n; ++i) dst[i] = lp::bf16_to_float(s[i]);
  }
}

void round_to_nearest(DType dtype, const float* __restrict src, void* dst, size_t begin, size_t n) {
  uint16_t* __restrict d = static_cast<uint16_t*>(dst) + begin;
  if (dtype == DType::f16) {
    for (size_t i = 0; i < n; ++i) d[i] = lp::float_to_f16(src[i]);
  } else {
    for (size_t i = 0; i < n; ++i) d[i] = lp::float_to_bf16(src[i]);
  }
}

// Element begin + i gets the random bits hash32(uint32(begin + i) ^ key).
void round_stochastically(DType dtype, const float* __restrict src, void* dst, size_t begin, size_t n,
                          uint32_t key) {
  uint16_t* __restrict d = static_cast<uint16_t*>(dst) + begin;
  const uint32_t first = static_cast<uint32_t>(begin);
  if (dtype == DType::f16) {
    for (size_t i = 0; i < n; ++i)
      d[i] = lp::float_to_f16_stochastic(src[i], lp::hash32((first + static_cast<uint32_t>(i)) ^ key));
  } else {
    for (size_t i = 0; i < n; ++i)
      d[i] = lp::float_to_bf16_stochastic(src[i], lp::hash32((first + static_cast<uint32_t>(i)) ^ key));
  }
}

DType stored_dtype(const Storage& s, int slot) {
  return slot == kParam ? s.param : slot == kGrad ? s.grad : s.state;
}

void mixed_span(SpanKernel opmath_kernel, const TensorBuffers& t, size_t begin, size_t end,
                const StepCoefficients& c) {
  alignas(64) float stage[kStateEnd][kChunk];
  for (size_t b = begin; b < end; b += kChunk) {
    const size_t n = std::min(kChunk, end - b);
    TensorBuffers chunk;
    chunk.n = n;
    for (int s = 0; s < kStateEnd; ++s) {
      if (t.slot[s] == nullptr) continue;
      const DType dtype = stored_dtype(t.storage, s);
      if (dtype == DType::f32) {
        chunk.slot[s] = static_cast<float*>(t.slot[s]) + b;
      } else {
        widen(dtype, t.slot[s], b, stage[s], n);
        chunk.slot[s] = stage[s];
      }
    }
    opmath_kernel(chunk, 0, n, c);
    for (int s = 0; s < kStateEnd; ++s) {
      const DType dtype = stored_dtype(t.storage, s);
      if (s == kGrad || t.slot[s] == nullptr || dtype == DType::f32) continue;
      if (s == kParam && c.stochastic_rounding)
        round_stochastically(dtype, stage[s], t.slot[s], b, n, lp::stream_key(c.seed, c.step, t.stream, b));
      else
        round_to_nearest(dtype, stage[s], t.slot[s], b, n);
    }
    if (t.slot[kParamCopy] != nullptr)
      round_to_nearest(t.storage.copy, static_cast<const float*>(chunk.slot[kParam]), t.slot[kParamCopy], b, n);
  }
}

// A 16-bit float is Inf or NaN when its exponent bits are all ones.
template <uint32_t kExponentMask>
bool all_finite_16(const void* data, size_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(data);
  uint32_t not_finite = 0;
#pragma omp simd reduction(| : not_finite)
  for (size_t i = 0; i < n; ++i) not_finite |= (x[i] & kExponentMask) == kExponentMask ? 1u : 0u;
  return not_finite == 0;
}

}  // namespace
}  // namespace FASTOPT_ISA

void FASTOPT_CONCAT(fill_mixed_precision_kernels_, FASTOPT_ISA)(OptimKernels& k) {
  k.mixed = FASTOPT_ISA::mixed_span;
  k.all_finite[static_cast<int>(DType::f16)] = FASTOPT_ISA::all_finite_16<0x7C00u>;
  k.all_finite[static_cast<int>(DType::bf16)] = FASTOPT_ISA::all_finite_16<0x7F80u>;
}

}  // namespace fastopt
